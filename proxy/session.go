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

// errParked is how a direction run by an event loop returns when the
// loop retired it while idle; the loop starts it again (see
// loopSession.idle).
var errParked = errors.New("idle direction retired by the event loop")

// relay runs the two directions until either side ends: on an event loop
// when there is one and both connections are plain sockets, else on a
// goroutine each.
func (s *session) relay() (adopted bool) {
	s.serverDone = make(chan struct{})
	started := false
	c2s := func() {
		var err error
		if !started { // not when the loop restarts an idle direction
			started = true
			err = s.startPolicy()
		}
		if err == nil {
			err = s.clientToServer()
		}
		if err == errParked {
			return
		}
		s.endFromClient(err)
	}
	s2c := func() {
		if s.serverToClient() {
			return // parked
		}
		close(s.serverDone)
		// The server side is gone or told the client why: unblock the
		// client-side loop.
		s.closeClient()
	}
	if l := s.srv.loopFor(s.id); l != nil {
		if _, ok := l.adopt(s, c2s, s2c); ok {
			return true
		}
	}
	done := make(chan struct{}, 2)
	go func() {
		c2s()
		done <- struct{}{}
	}()
	go func() {
		s2c()
		done <- struct{}{}
	}()
	<-done
	<-done
	return false
}

// endFromClient classifies why the client-side loop stopped (nil: the
// client sent Terminate) and stops the server side accordingly.
func (s *session) endFromClient(err error) {
	var pe *wire.ProtocolError
	switch {
	case err == nil: // Terminate, already forwarded
		s.abortWhy.CompareAndSwap(abortNone, abortClientGone)
		s.closeServer()
		return
	case errors.As(err, &pe):
		s.srv.m.Error(metrics.ErrClientProtocol)
		msg := "pgcrypt-proxy: " + pe.Error()
		s.abortErr.Store(&msg)
		s.log.Info("client protocol error", "err", err)
		s.abortWhy.CompareAndSwap(abortNone, abortClientProtocol)
	default:
		s.abortWhy.CompareAndSwap(abortNone, abortClientGone)
	}
	// Say goodbye so PostgreSQL does not log an unexpected EOF.
	s.sw.Write([]byte{'X', 0, 0, 0, 4})
	s.sw.Flush()
	s.closeServer()
}

// clientToServer relays client messages. It returns nil after Terminate.
func (s *session) clientToServer() error {
	m := s.srv.m
	for {
		if s.cr.Buffered() == 0 {
			if s.sw.Buffered() > 0 {
				if err := s.sw.Flush(); err != nil {
					return err
				}
				m.BytesIn.Add(float64(s.sw.TakeWritten()))
			}
			if ls := s.lp.Load(); ls != nil && ls.idleClient(s.cr) {
				return errParked
			}
		}
		typ, n, err := s.cr.Header()
		if err != nil {
			return err
		}
		if typ == 'X' {
			// Mark the end as the client's before PostgreSQL can close its
			// side, so the server-side loop does not take that for a loss.
			s.abortWhy.CompareAndSwap(abortNone, abortClientGone)
			if err := s.forward(s.cr, s.sw, typ, n); err != nil {
				return err
			}
			s.sw.Flush()
			m.BytesIn.Add(float64(s.sw.TakeWritten()))
			return nil
		}
		if s.pol != nil {
			if err := s.frontend(typ, n); err != nil {
				return err
			}
			continue
		}
		if s.srv.policy.Load() != nil {
			// A reload gave a policy to a proxy that had none: this
			// session would go on sending the new columns in plaintext.
			s.abortWhy.CompareAndSwap(abortNone, abortPolicyChanged)
			s.log.Info("a policy was loaded; session without one ended")
			return errPolicyChanged
		}
		s.trackGroup(typ)
		if err := s.forward(s.cr, s.sw, typ, n); err != nil {
			return err
		}
	}
}

// trackGroup records when a query starts and, for the messages that end a
// group, the expectation of its ReadyForQuery.
func (s *session) trackGroup(typ byte) {
	switch typ {
	case 'Q':
		s.track.Send(track.Query, expectation{start: time.Now()})
	case 'F':
		s.track.Send(track.FunctionCall, expectation{start: time.Now()})
	case 'S':
		s.track.Send(track.Sync, expectation{start: s.takeGroupStart()})
	case 'P', 'B', 'E', 'D', 'C':
		s.groupStarted()
	}
}

func (s *session) groupStarted() {
	if s.groupStart.IsZero() {
		s.groupStart = time.Now()
	}
}

// takeGroupStart returns when the current group began and ends it.
func (s *session) takeGroupStart() time.Time {
	t := s.groupStart
	if t.IsZero() {
		t = time.Now()
	}
	s.groupStart = time.Time{}
	return t
}

// serverToClient relays server messages until the server connection ends,
// then tells the client why if the client is still there. It reports
// parked when the event loop retired it while idle instead (errParked).
func (s *session) serverToClient() (parked bool) {
	m := s.srv.m
	err := func() error {
		for {
			if s.sr.Buffered() == 0 {
				if s.cw.Buffered() > 0 {
					if err := s.cw.Flush(); err != nil {
						return &clientWriteError{err}
					}
					m.BytesOut.Add(float64(s.cw.TakeWritten()))
				}
				if ls := s.lp.Load(); ls != nil && ls.idleServer(s.sr) {
					return errParked
				}
			}
			typ, n, err := s.sr.Header()
			if err != nil {
				return err
			}
			if s.pol != nil {
				if err := s.backend(typ, n); err != nil {
					return err
				}
				continue
			}
			switch typ {
			case 'Z':
				// A pure relay tells the tracker only of the messages
				// ReadyForQuery answers, for the latency metric.
				if _, err := s.track.Server('Z'); err == nil {
					m.QueryDuration.Observe(time.Since(s.track.Current().start).Seconds())
				}
			case 'E':
				body, err := s.sr.Body(n)
				if err != nil {
					return err
				}
				s.noteError(body)
				if err := s.cw.Message(typ, body); err != nil {
					return &clientWriteError{err}
				}
				continue
			}
			if err := s.forward(s.sr, s.cw, typ, n); err != nil {
				return err
			}
		}
	}()
	if err == errParked {
		return true
	}
	s.cw.Flush()
	m.BytesOut.Add(float64(s.cw.TakeWritten()))
	var cwe *clientWriteError
	if errors.As(err, &cwe) {
		s.abortWhy.CompareAndSwap(abortNone, abortClientGone)
		return false
	}
	switch s.abortWhy.Load() {
	case abortClientGone:
	case abortClientProtocol:
		msg := "pgcrypt-proxy: protocol violation"
		if p := s.abortErr.Load(); p != nil {
			msg = *p
		}
		s.sendFatal(codeProtocolViolation, msg, "")
	case abortShutdown:
		m.Error(metrics.ErrShutdown)
		s.sendFatal(codeAdminShutdown, "terminating connection because pgcrypt-proxy is shutting down", "Reconnect; another instance will take the connection.")
	case abortPolicyChanged:
		s.sendFatal(codeAdminShutdown, "terminating connection because pgcrypt-proxy's encryption policy was reloaded with other tables or columns", "Reconnect: a new session encrypts and decrypts under the new policy.")
	default:
		if s.lastFatal && isClosed(err) {
			return // PostgreSQL said why itself
		}
		var pe *wire.ProtocolError
		if errors.As(err, &pe) {
			m.Error(metrics.ErrUpstreamProto)
			s.log.Warn("invalid message from PostgreSQL", "err", err)
			s.sendFatal(codeProtocolViolation, "pgcrypt-proxy: invalid message from PostgreSQL: "+pe.Error(), "")
			return
		}
		m.Error(metrics.ErrUpstreamLost)
		s.log.Warn("lost the connection to PostgreSQL", "err", err)
		s.sendFatal(codeConnectionFailure, "pgcrypt-proxy lost the connection to PostgreSQL", "The server closed the connection or the network failed; reconnect.")
	}
	return false
}

// noteError counts an ErrorResponse from PostgreSQL and remembers whether
// it ends the connection.
func (s *session) noteError(body []byte) errorFields {
	s.srv.m.Error(metrics.ErrBackend)
	f := parseError(body)
	s.lastFatal = f.fatal()
	return f
}

type clientWriteError struct{ err error }

func (e *clientWriteError) Error() string { return "writing to client: " + e.err.Error() }
func (e *clientWriteError) Unwrap() error { return e.err }

// forward relays one message whose header has been read: small ones as a
// slice of the read buffer, large ones streamed.
func (s *session) forward(r *wire.Reader, w *wire.Writer, typ byte, n int) error {
	if n > streamThreshold {
		if err := w.Header(typ, n); err != nil {
			return err
		}
		return r.CopyBody(w, n)
	}
	body, err := r.Body(n)
	if err != nil {
		return err
	}
	return w.Message(typ, body)
}
