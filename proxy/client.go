package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

var timeZero time.Time

func deadline(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}

// tlsRecordHandshake is the first byte of a TLS ClientHello: a client using
// PostgreSQL 17's sslnegotiation=direct starts with it instead of SSLRequest.
const tlsRecordHandshake = 0x16

// prefixConn reads the bytes a bufio.Reader already took off a connection
// before reading the connection itself.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// handle runs one client connection from its first byte to its close, and
// then calls s.wg.Done. A session that an event loop adopts is finished by
// the loop: this goroutine returns at once, and an idle session keeps no
// stack of its own.
func (s *Server) handle(conn net.Conn) {
	ctx, cancelCtx := context.WithTimeout(s.startups, s.startupTimeout())
	conn.SetDeadline(deadline(ctx))
	// A Shutdown during the login ends it: reads and writes fail at once.
	stopCut := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	cancel := func() { stopCut(); cancelCtx() }

	client, startup, err := s.negotiate(ctx, conn)
	if err != nil {
		if !errors.Is(err, errHandled) && !isClosed(err) {
			s.m.Error(metrics.ErrClientProtocol)
			s.log.Info("client startup failed", "remote", conn.RemoteAddr().String(), "err", err)
		}
		cancel()
		conn.Close()
		s.wg.Done()
		return
	}
	sess := &session{
		srv:    s,
		id:     s.nextID.Add(1),
		client: client,
		track:  newTracker(),
	}
	sess.onEnd(s.wg.Done)
	sess.onEnd(func() { conn.Close() })
	sess.onEnd(cancel)
	if client != conn {
		sess.onEnd(func() { client.Close() })
	}
	if !s.addSession(sess) {
		client.Write(errorMessage("FATAL", codeAdminShutdown, "pgcrypt-proxy is shutting down", "Reconnect; another instance will take the connection."))
		sess.finish()
		return
	}
	sess.onEnd(func() { s.removeSession(sess) })
	s.m.ConnectionsTotal.Inc()
	s.m.ConnectionsActive.Inc()
	sess.onEnd(s.m.ConnectionsActive.Dec)
	if !sess.run(ctx, cancel, startup) {
		sess.finish()
	}
}

// errHandled marks a connection that ended normally during negotiation (a
// cancel request, or a client that gave up).
var errHandled = errors.New("handled")

// negotiate answers SSLRequest and GSSENCRequest packets, handles direct TLS
// and cancel requests, and returns the (possibly TLS) client connection with
// its StartupMessage packet.
func (s *Server) negotiate(ctx context.Context, conn net.Conn) (net.Conn, []byte, error) {
	br := bufio.NewReaderSize(conn, 512)
	first, err := br.Peek(1)
	if err != nil {
		return nil, nil, errHandled
	}
	var client net.Conn = conn
	var src io.Reader = br
	if first[0] == tlsRecordHandshake {
		if s.opts.ClientTLS == nil {
			s.m.Error(metrics.ErrClientTLS)
			return nil, nil, errors.New("client started TLS directly (sslnegotiation=direct) but client_tls is not configured")
		}
		tc, err := s.serverTLS(ctx, &prefixConn{Conn: conn, r: br}, true)
		if err != nil {
			return nil, nil, err
		}
		client, src = tc, tc
	}
	tlsDone := client != conn
	for {
		code, packet, err := wire.ReadStartup(src)
		if err != nil {
			if isClosed(err) || errors.Is(err, io.EOF) {
				return nil, nil, errHandled
			}
			return nil, nil, fmt.Errorf("reading startup packet: %w", err)
		}
		switch code {
		case wire.CodeSSLRequest:
			if tlsDone || s.opts.ClientTLS == nil {
				if _, err := client.Write([]byte{'N'}); err != nil {
					return nil, nil, err
				}
				continue
			}
			// Bytes sent after SSLRequest but before the handshake would be
			// taken as if they came over TLS (CVE-2021-23214): refuse them.
			if br.Buffered() > 0 {
				return nil, nil, errors.New("client sent data after SSLRequest before the TLS handshake")
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return nil, nil, err
			}
			tc, err := s.serverTLS(ctx, conn, false)
			if err != nil {
				return nil, nil, err
			}
			client, src, tlsDone = tc, tc, true
		case wire.CodeGSSENCRequest:
			if _, err := client.Write([]byte{'N'}); err != nil {
				return nil, nil, err
			}
		case wire.CodeCancel:
			s.forwardCancel(packet)
			return nil, nil, errHandled
		case wire.CodeProtocol30, wire.CodeProtocol32:
			if err := s.requireTLS(client, tlsDone); err != nil {
				return nil, nil, err
			}
			if !tlsDone && br.Buffered() > 0 {
				// Keep what the client pipelined after its StartupMessage.
				client = &prefixConn{Conn: conn, r: io.MultiReader(bytesReader(br), conn)}
			}
			return client, packet, nil
		default:
			if code>>16 != 3 {
				client.Write(errorMessage("FATAL", codeProtocolViolation,
					fmt.Sprintf("unsupported frontend protocol %d.%d", code>>16, code&0xffff), ""))
				return nil, nil, fmt.Errorf("unsupported protocol or request code %d", code)
			}
			// A 3.x minor version we do not know: PostgreSQL answers with
			// NegotiateProtocolVersion, so let it.
			if err := s.requireTLS(client, tlsDone); err != nil {
				return nil, nil, err
			}
			if !tlsDone && br.Buffered() > 0 {
				client = &prefixConn{Conn: conn, r: io.MultiReader(bytesReader(br), conn)}
			}
			return client, packet, nil
		}
	}
}

// requireTLS refuses a StartupMessage of any protocol version that did not
// come over TLS, when client_tls.mode is require.
func (s *Server) requireTLS(client net.Conn, tlsDone bool) error {
	if tlsDone || !s.opts.RequireClientTLS {
		return nil
	}
	s.m.Error(metrics.ErrClientTLS)
	client.Write(errorMessage("FATAL", codeInvalidAuthorization,
		"pgcrypt-proxy accepts only TLS connections (client_tls.mode is require): no encryption",
		"Connect with sslmode=require, verify-ca or verify-full."))
	return errors.New("client did not start TLS, and client_tls.mode is require")
}

// bytesReader returns what br has buffered; br is not read again after.
func bytesReader(br *bufio.Reader) io.Reader {
	b, _ := br.Peek(br.Buffered())
	return bytes.NewReader(b)
}

func (s *Server) serverTLS(ctx context.Context, conn net.Conn, direct bool) (*tls.Conn, error) {
	tc := tls.Server(conn, s.opts.ClientTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.m.Error(metrics.ErrClientTLS)
		return nil, fmt.Errorf("TLS handshake with client: %w", err)
	}
	if direct && tc.ConnectionState().NegotiatedProtocol != "postgresql" {
		s.m.Error(metrics.ErrClientTLS)
		return nil, errors.New("direct TLS without the ALPN protocol \"postgresql\"")
	}
	return tc, nil
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
