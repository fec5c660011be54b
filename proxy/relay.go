package proxy

import (
	"errors"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// The two directions of a session: the client-side loop, which relays
// (or, with a policy, rewrites) what the client sends, and the server-side
// loop, which relays (or decrypts) what PostgreSQL answers.

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
