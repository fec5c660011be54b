package proxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
)

// answer is one server message that answers a client message: the tracker
// has placed it, and a handler of its family acts on it.
type answer struct {
	typ  byte
	n    int          // body length
	kind track.Kind   // the client message it answers
	cur  *expectation // that message's expectation
	hide bool         // the client does not see it: the proxy's own message, or swallowed
}

// backend handles one server message of an encrypting session.
func (s *session) backend(typ byte, n int) error {
	pl, err := s.track.Server(typ)
	if err != nil {
		// Out of step: guessing which rows belong to which statement
		// could decrypt the wrong ones or pass envelopes on. End the
		// session, as pgconn does.
		return &wire.ProtocolError{Type: typ, Length: n + 4, Reason: err.Error()}
	}
	if pl.Async || pl.Unsolicited {
		return s.backendAside(typ, n)
	}
	sp := s.pol
	a := answer{typ: typ, n: n, kind: pl.Kind, cur: s.track.Current()}
	if a.cur.inner != nil {
		sp.inner = a.cur.inner
	}
	a.hide = a.cur.hidden || sp.swallow || sp.inner != nil
	switch typ {
	case 'Z':
		err = s.backendReady(a)
	case 'E':
		err = s.backendError(a)
	case 'T':
		err = s.backendRowDescription(a)
	case 'D':
		err = s.backendDataRow(a)
	case 'G', 'H', 'W', 'd', 'c':
		err = s.backendCopy(a)
	default: // '1', '2', '3', 't', 'n', 's', 'C', 'I', 'V'
		err = s.backendComplete(a)
	}
	if err == nil && pl.Last {
		// What the answer settles (a statement's outcome, the proxy's
		// own query's result) is recorded: the client side may go on.
		s.track.Settle()
	}
	return err
}

// pass forwards the answer to the client, or drops it when hidden.
func (s *session) pass(a answer) error {
	if a.hide {
		return s.sr.CopyBody(discard{}, a.n)
	}
	return s.forward(s.sr, s.cw, a.typ, a.n)
}

// backendAside handles what answers nothing: NoticeResponse,
// NotificationResponse, ParameterStatus, and an ErrorResponse with nothing
// outstanding (a FATAL error while idle: a terminated backend,
// idle_session_timeout), which is relayed.
func (s *session) backendAside(typ byte, n int) error {
	sp := s.pol
	switch typ {
	case 'S', 'E':
		body, err := s.sr.Body(n)
		if err != nil {
			return err
		}
		if typ == 'S' {
			sp.noteParameter(body)
			body = redactCStrings(body, 0) // set_config('application_name', …) in a trigger
		} else {
			s.noteError(body)
			body = redactEnvelopes(body)
		}
		return s.cw.Message(typ, body)
	}
	if sp.inner != nil || sp.swallow {
		return s.sr.CopyBody(discard{}, n)
	}
	if typ == 'N' || typ == 'A' {
		body, err := s.sr.Body(n)
		if err != nil {
			return err
		}
		if typ == 'A' {
			// pg_notify(…, NEW.body) in a trigger made on the server.
			return s.cw.Message(typ, redactCStrings(body, 4))
		}
		return s.cw.Message(typ, redactEnvelopes(body))
	}
	return s.forward(s.sr, s.cw, typ, n)
}

// backendReady ends a group: ReadyForQuery settles what the group's
// statements made and ends the proxy's own query.
func (s *session) backendReady(a answer) error {
	sp, cur := s.pol, a.cur
	body, err := s.sr.Body(a.n)
	if err != nil {
		return err
	}
	if len(body) == 1 {
		s.track.Ready(body[0])
		if cur.inner != nil {
			cur.inner.res.status = body[0]
		}
	}
	if !cur.start.IsZero() && !cur.hidden {
		s.srv.m.QueryDuration.Observe(time.Since(cur.start).Seconds())
	}
	sp.inner = nil
	for _, st := range cur.prepared {
		if sp.groupFailed {
			st.settle(outcomeUncertain)
		} else {
			st.settle(outcomeOK)
		}
	}
	sp.rows, sp.groupFailed = nil, false
	swallowed := sp.swallow
	sp.swallow = false
	if cur.hidden && !swallowed {
		return nil
	}
	return s.cw.Message(a.typ, body)
}

// backendError handles an ErrorResponse that answers a client message; a
// poison message's is replaced by the proxy's own.
func (s *session) backendError(a answer) error {
	sp, cur := s.pol, a.cur
	body, err := s.sr.Body(a.n)
	if err != nil {
		return err
	}
	f := s.noteError(body)
	if cur.audit != nil {
		if cur.reject == nil { // a refusal was audited when made
			s.auditDone(cur.audit, nil, f.code, nil)
		}
		cur.audit = nil // what follows an error does not run
	}
	if sp.inner != nil {
		sp.inner.res.err = fmt.Errorf("%s (SQLSTATE %s)", f.message, f.code)
		if f.code == "" {
			sp.inner.res.err = errors.New("the server returned an error")
		}
		sp.inner.res.code, sp.inner.res.msg = f.code, f.message
		return nil
	}
	if cur.reject != nil {
		body = cur.reject[5:]
		cur.reject = nil
	} else {
		body = redactEnvelopes(body)
	}
	sp.groupFailed = true
	if a.kind == track.Parse || a.kind == track.Execute {
		for _, st := range cur.prepared {
			st.settle(outcomeFailed)
		}
	}
	// The proxy's own Describe before an Execute fails as the Execute
	// would (a portal that does not exist, an aborted transaction), and
	// the Execute is then skipped: the client gets the error in its place.
	ownDescribe := cur.hidden && a.kind == track.DescribePortal && !sp.swallow
	if a.hide && !ownDescribe {
		return nil
	}
	return s.cw.Message(a.typ, body)
}

// backendRowDescription learns which columns of the rows to come are
// encrypted.
func (s *session) backendRowDescription(a answer) error {
	sp, cur := s.pol, a.cur
	body, err := s.sr.Body(a.n)
	if err != nil {
		return err
	}
	shape := s.rowShapeOf(body)
	switch a.kind {
	case track.DescribeStatement:
		if cur.stmt != nil {
			cur.stmt.shape.Store(shape)
		}
	case track.DescribePortal:
		if cur.portal != nil {
			cur.portal.shape.Store(shape)
		}
	case track.Query:
		sp.rows = shape
		if sp.inner != nil {
			sp.inner.res.sets = append(sp.inner.res.sets, nil)
			return nil
		}
	}
	if a.hide {
		return nil
	}
	return s.cw.Message(a.typ, body)
}

// backendDataRow decrypts a row's policy columns.
func (s *session) backendDataRow(a answer) error {
	sp, cur := s.pol, a.cur
	if cur.audit != nil {
		cur.audit.rows++
	}
	if sp.inner != nil {
		body, err := s.sr.Body(a.n)
		if err != nil {
			return err
		}
		return s.captureRow(body)
	}
	var shape *rowShape
	switch a.kind {
	case track.Execute:
		if cur.portal != nil {
			shape = cur.portal.rowShape()
		}
	case track.Query:
		shape = sp.rows
	}
	if a.hide || shape == nil || !shape.any {
		return s.pass(a)
	}
	body, err := s.sr.Body(a.n)
	if err != nil {
		return err
	}
	out, err := s.decryptRowOff(body, shape)
	if err != nil {
		return s.decryptFailed(err)
	}
	return s.cw.Message(a.typ, out)
}

// backendCopy decrypts the data of a COPY TO of policy columns.
func (s *session) backendCopy(a answer) error {
	sp, cur := s.pol, a.cur
	switch a.typ {
	case 'H': // CopyOutResponse
		if a.kind == track.Query {
			sp.copyOut = cur.copyOut
		}
	case 'd': // CopyData of a COPY TO
		if sp.copyOut == nil || a.hide {
			break
		}
		body, err := s.sr.Body(a.n)
		if err != nil {
			return err
		}
		start := time.Now()
		out, err := s.copyOutOff(sp.rowBuf[:0], body)
		s.srv.m.DecryptDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			sp.copyOut = nil
			return s.decryptFailed(err)
		}
		sp.rowBuf = out
		return s.cw.Message(a.typ, out)
	}
	return s.pass(a)
}

// backendComplete handles the answers that complete a client message
// (ParseComplete, BindComplete, CloseComplete, NoData, CommandComplete,
// EmptyQueryResponse, PortalSuspended, FunctionCallResponse) or describe a
// statement's parameters (ParameterDescription).
func (s *session) backendComplete(a answer) error {
	sp, cur, typ := s.pol, a.cur, a.typ
	var body []byte // read only for the audit log
	if cur.audit != nil && (typ == 'C' || typ == 's' || typ == 'I') {
		var err error
		if body, err = s.sr.Body(a.n); err != nil {
			return err
		}
		s.auditAnswered(cur, a.kind, typ, body)
	}
	switch {
	case typ == '1', typ == 'C' && a.kind == track.Execute:
		for _, st := range cur.prepared {
			st.settle(outcomeOK)
		}
	case typ == 'n' && a.kind == track.DescribeStatement && cur.stmt != nil:
		cur.stmt.shape.Store(noPolicyRows)
	case typ == 'n' && a.kind == track.DescribePortal && cur.portal != nil:
		cur.portal.shape.Store(noPolicyRows)
	}
	if a.kind == track.Query && (typ == 'C' || typ == 'I') {
		sp.rows, sp.copyOut = nil, nil
	}
	switch {
	case body == nil:
		return s.pass(a)
	case a.hide:
		return nil
	}
	return s.cw.Message(typ, body)
}
