package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// Why a session is being torn down from outside its server-side loop. The
// server-side loop owns writes to the client, so it is the one that tells the
// client.
const (
	abortNone int32 = iota
	abortClientGone
	abortClientProtocol
	abortShutdown
	abortPolicyChanged // a reload changed the policy's tables or columns
)

// streamThreshold is the body size above which a message the proxy does not
// need to inspect is streamed through instead of being held whole.
const streamThreshold = 256 << 10

type session struct {
	srv    *Server
	id     uint64
	client net.Conn
	server net.Conn
	log    *slog.Logger

	cr, sr *wire.Reader
	cw, sw *wire.Writer

	key    cancelKey
	hasKey bool
	track  *track.Tracker[expectation] // what each server message answers

	// Client-side loop only.
	groupStart time.Time // first message of the current extended-protocol group

	// Server-side loop only.
	lastFatal bool // the last ErrorResponse relayed was FATAL or PANIC

	// pol is nil for a pure relay; see frontend.go and backend.go.
	pol        *sessionPolicy
	audit      auditSession  // set when Options.Audit is
	serverDone chan struct{} // closed when the server-side loop ends

	abortWhy atomic.Int32
	abortErr atomic.Pointer[string] // message for abortClientProtocol

	// lp is set while an event loop runs the session (see loop_linux.go).
	lp atomic.Pointer[loopSession]

	ends []func() // see onEnd
}

// abort makes both loops stop: it records why and closes the server
// connection, which wakes the server-side loop. Safe from any goroutine.
func (s *session) abort(why int32) {
	s.abortWhy.CompareAndSwap(abortNone, why)
	s.closeServer()
}

// closeServer and closeClient close a side's connection, waking the loop
// that reads it.
func (s *session) closeServer() {
	if ls := s.lp.Load(); ls != nil {
		ls.closeServer()
	} else if s.server != nil {
		s.server.Close()
	}
}

func (s *session) closeClient() {
	if ls := s.lp.Load(); ls != nil {
		ls.closeClient()
	} else {
		s.client.Close()
	}
}

// onEnd adds f to what finish runs, in reverse order, when the session
// is over.
func (s *session) onEnd(f func()) { s.ends = append(s.ends, f) }

// finish runs what onEnd added, last first. It is called once: by the
// goroutine that ran the session, or by the event loop that adopted it.
func (s *session) finish() {
	for i := len(s.ends) - 1; i >= 0; i-- {
		s.ends[i]()
	}
	s.ends = nil
}

// run serves the session; ctx bounds its startup, and startupDone (its
// cancel) is called once the session is ready, so that an idle session
// holds no timer. It reports whether an event loop adopted the session,
// which then calls finish; otherwise the caller does, on return.
func (s *session) run(ctx context.Context, startupDone context.CancelFunc, startup []byte) (adopted bool) {
	srv := s.srv
	s.log = srv.log.With("session", s.id)
	s.cw = srv.bufs.NewWriter(s.client)
	s.cr = srv.bufs.NewReader(readWaiter(s.client), srv.opts.MaxMessageBytes)
	s.onEnd(s.cr.Release)

	dctx, cancel := context.WithTimeout(ctx, srv.opts.ConnectTimeout)
	start := time.Now()
	server, err := dialUpstream(dctx, srv.opts.Upstream, srv.opts.UpstreamTLS)
	cancel()
	if err != nil {
		kind := metrics.ErrUpstreamConnect
		var ue *upstreamError
		if errors.As(err, &ue) && ue.step == "tls" {
			kind = metrics.ErrUpstreamTLS
		}
		srv.m.Error(kind)
		s.log.Warn("cannot reach PostgreSQL", "upstream", srv.opts.Upstream, "err", err)
		s.sendFatal(codeCannotConnect, "pgcrypt-proxy cannot reach PostgreSQL: "+err.Error(), "")
		return
	}
	srv.m.UpstreamConnect.Observe(time.Since(start).Seconds())
	s.server = server
	s.onEnd(func() { server.Close() })
	if s.abortWhy.Load() != abortNone { // shut down while we dialled
		return false
	}
	server.SetDeadline(deadline(ctx))
	s.sw = srv.bufs.NewWriter(server)
	s.sr = srv.bufs.NewReader(readWaiter(server), srv.opts.MaxMessageBytes)
	s.onEnd(s.sr.Release)

	if p := srv.policy.Load(); p != nil {
		user, db, app := startupParams(startup)
		s.pol = &sessionPolicy{p: p, database: db, stmts: map[string]*statement{}, portals: map[string]*portal{}}
		if srv.opts.Audit != nil {
			s.audit = auditSession{user: user, database: db, client: s.client.RemoteAddr().String()}
			s.pol.auditApp.Store(&app)
		}
	}
	if _, err := server.Write(startup); err != nil {
		srv.m.Error(metrics.ErrUpstreamLost)
		s.sendFatal(codeConnectionFailure, "pgcrypt-proxy lost PostgreSQL during startup: "+err.Error(), "")
		return
	}
	if err := s.authenticate(); err != nil {
		if !errors.Is(err, errHandled) {
			s.log.Info("startup ended", "err", err)
		}
		return
	}
	if s.hasKey {
		s.onEnd(func() { srv.cancels.forget(s.key) })
	}
	startupDone() // before the deadlines are lifted: a Shutdown now drains the session
	s.client.SetDeadline(timeZero)
	server.SetDeadline(timeZero)
	s.log.Debug("session ready")
	return s.relay()
}

// sendFatal tells the client why its connection ends. Only for use before the
// relay loops run, or from the server-side loop.
func (s *session) sendFatal(code, msg, hint string) {
	if ls := s.lp.Load(); ls != nil {
		ls.setClientWriteDeadline(time.Now().Add(5 * time.Second))
	} else {
		s.client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	}
	s.cw.Write(errorMessage("FATAL", code, msg, hint))
	s.cw.Flush()
}

// authenticate relays the authentication exchange unchanged until the
// server's first ReadyForQuery. It removes SCRAM-SHA-256-PLUS from the
// offered mechanisms (channel binding names the TLS channel, and the
// client's channel ends at the proxy) and swaps the cancel key.
func (s *session) authenticate() error {
	for {
		typ, body, err := s.sr.Next()
		if err != nil {
			return s.upstreamFailed(err, "during authentication")
		}
		switch typ {
		case 'R':
			if len(body) < 4 {
				return s.upstreamFailed(&wire.ProtocolError{Type: typ, Length: len(body) + 4, Reason: "short authentication request"}, "")
			}
			code := binary.BigEndian.Uint32(body)
			if code == 10 { // AuthenticationSASL
				body = withoutPlusMechanisms(body)
			}
			if err := s.cw.Message(typ, body); err != nil {
				return err
			}
			switch code {
			case 0, 12: // AuthenticationOk, SASLFinal: nothing to answer
			default: // password, md5, SASL, SASLContinue, GSS...: relay the answer
				if err := s.cw.Flush(); err != nil {
					return err
				}
				if err := s.relayAuthResponse(); err != nil {
					return err
				}
			}
		case 'K':
			if len(body) < 8 {
				return s.upstreamFailed(&wire.ProtocolError{Type: typ, Length: len(body) + 4, Reason: "short BackendKeyData"}, "")
			}
			pid := binary.BigEndian.Uint32(body)
			key, secret, err := s.srv.cancels.issue(pid, body[4:])
			if err != nil {
				return err
			}
			s.key, s.hasKey = key, true
			out := make([]byte, 4, 4+len(secret))
			binary.BigEndian.PutUint32(out, pid)
			if err := s.cw.Message('K', append(out, secret...)); err != nil {
				return err
			}
		case 'E':
			if strings.HasPrefix(parseError(body).code, "28") {
				s.srv.m.Error(metrics.ErrAuthFailed)
			} else {
				s.srv.m.Error(metrics.ErrBackend)
			}
			if _, clientTLS := s.client.(*tls.Conn); clientTLS {
				body = withChannelBindingHint(body)
			}
			s.cw.Message(typ, body)
			s.cw.Flush()
			return errHandled
		case 'Z':
			if err := s.cw.Message(typ, body); err != nil {
				return err
			}
			return s.cw.Flush()
		default: // ParameterStatus, NoticeResponse, NegotiateProtocolVersion
			if typ == 'S' && s.pol != nil {
				s.pol.noteParameter(body)
			}
			if err := s.cw.Message(typ, body); err != nil {
				return err
			}
		}
	}
}

// relayAuthResponse forwards the client's answer to an authentication
// request.
func (s *session) relayAuthResponse() error {
	typ, body, err := s.cr.Next()
	if err != nil {
		if isClosed(err) {
			return errHandled // e.g. psql closing to prompt for a password
		}
		return s.clientFailed(err)
	}
	if typ != 'p' {
		if typ == 'X' {
			return errHandled
		}
		return s.clientFailed(fmt.Errorf("expected a password message, got %q", typ))
	}
	if err := s.sw.Message(typ, body); err != nil {
		return err
	}
	return s.sw.Flush()
}

// withChannelBindingHint explains PostgreSQL's "SCRAM channel binding
// negotiation error": a client on TLS to the proxy that was not offered
// SCRAM-SHA-256-PLUS says it supports channel binding ("y"), and a server on
// TLS to the proxy that does support it must refuse that as a downgrade.
// Binding cannot cross a proxy that terminates TLS, so the client has to
// turn it off.
func withChannelBindingHint(body []byte) []byte {
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil || !strings.Contains(e.Message, "channel binding") {
		return body
	}
	e.Hint = "pgcrypt-proxy terminates the client's TLS, so SCRAM channel binding cannot reach PostgreSQL: add channel_binding=disable to the client's connection string."
	out, err := e.Encode(nil)
	if err != nil {
		return body
	}
	return out[5:]
}

// withoutPlusMechanisms rewrites an AuthenticationSASL body without the
// channel-binding (-PLUS) mechanisms.
func withoutPlusMechanisms(body []byte) []byte {
	out := make([]byte, 4, len(body))
	copy(out, body[:4])
	rest := body[4:]
	for len(rest) > 0 && rest[0] != 0 {
		end := 0
		for end < len(rest) && rest[end] != 0 {
			end++
		}
		mech := rest[:end]
		if !strings.HasSuffix(string(mech), "-PLUS") {
			out = append(out, mech...)
			out = append(out, 0)
		}
		if end >= len(rest) {
			break
		}
		rest = rest[end+1:]
	}
	return append(out, 0)
}

func (s *session) clientFailed(err error) error {
	s.srv.m.Error(metrics.ErrClientProtocol)
	s.sendFatal(codeProtocolViolation, "pgcrypt-proxy: "+err.Error(), "")
	return errHandled
}

func (s *session) upstreamFailed(err error, when string) error {
	var pe *wire.ProtocolError
	if errors.As(err, &pe) {
		s.srv.m.Error(metrics.ErrUpstreamProto)
		s.sendFatal(codeProtocolViolation, "pgcrypt-proxy: invalid message from PostgreSQL: "+pe.Error(), "")
	} else {
		s.srv.m.Error(metrics.ErrUpstreamLost)
		s.sendFatal(codeConnectionFailure, strings.TrimSpace("pgcrypt-proxy lost the connection to PostgreSQL "+when), "")
	}
	return errHandled
}
