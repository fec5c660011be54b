package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// The server side of an encrypting session: each answer is matched with the
// expectation of the client message it answers, so the proxy knows which
// statement a DataRow comes from (drivers that cache statements do not
// describe them again), which answers are its own, and which error to show
// in place of a poison message's.

// backend handles one server message of an encrypting session.
func (s *session) backend(typ byte, n int) error {
	sp := s.pol
	pl, err := s.track.Server(typ)
	if err != nil {
		// Out of step: guessing which rows belong to which statement
		// could decrypt the wrong ones or pass envelopes on. End the
		// session, as pgconn does.
		return &wire.ProtocolError{Type: typ, Length: n + 4, Reason: err.Error()}
	}
	switch {
	case pl.Async: // notice, notification, parameter status
		if typ == 'S' {
			body, err := s.sr.Body(n)
			if err != nil {
				return err
			}
			sp.noteParameter(body)
			return s.cw.Message(typ, body)
		}
		if sp.inner != nil || sp.swallow {
			return s.sr.CopyBody(discard{}, n)
		}
		return s.forward(s.sr, s.cw, typ, n)
	case pl.Unsolicited:
		// A FATAL error while idle (a terminated backend,
		// idle_session_timeout) is relayed.
		body, err := s.sr.Body(n)
		if err != nil {
			return err
		}
		s.noteError(body)
		return s.cw.Message(typ, body)
	}
	cur := s.track.Current()
	if cur.inner != nil {
		sp.inner = cur.inner
	}
	k := pl.Kind
	hide := cur.hidden || sp.swallow

	switch typ {
	case 'Z':
		body, err := s.sr.Body(n)
		if err != nil {
			return err
		}
		if len(body) == 1 {
			sp.txFailed.Store(body[0] == 'E')
		}
		if cur.copy != nil {
			cur.copy.ended()
		}
		if !cur.start.IsZero() && !cur.hidden {
			s.srv.m.QueryDuration.Observe(time.Since(cur.start).Seconds())
		}
		if !cur.hidden {
			sp.groupsDone.Add(1)
		}
		if sp.inner != nil {
			close(sp.inner.done)
			sp.inner = nil
		}
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
		return s.cw.Message(typ, body)

	case 'E':
		body, err := s.sr.Body(n)
		if err != nil {
			return err
		}
		s.noteError(body)
		if cur.audit != nil {
			if cur.reject == nil { // a refusal was audited when made
				s.auditDone(cur.audit, nil, sqlstate(body), nil)
			}
			cur.audit = nil // what follows an error does not run
		}
		if cur.copy != nil {
			cur.copy.statementEnded(k == track.Execute) // an error ends a COPY
		}
		if sp.inner != nil {
			var e pgproto3.ErrorResponse
			if e.Decode(body) == nil {
				sp.inner.res.err = fmt.Errorf("%s (SQLSTATE %s)", e.Message, e.Code)
				sp.inner.res.code, sp.inner.res.msg = e.Code, e.Message
			} else {
				sp.inner.res.err = errors.New("the server returned an error")
			}
		}
		if cur.reject != nil {
			body = cur.reject[5:]
			cur.reject = nil
		}
		sp.groupFailed = true
		if k == track.Parse {
			for _, st := range cur.prepared {
				st.settle(outcomeFailed)
			}
		}
		// The proxy's own Describe before an Execute fails as the
		// Execute would (a portal that does not exist, an aborted
		// transaction), and the Execute is then skipped: the client gets
		// the error in its place.
		ownDescribe := cur.hidden && k == track.DescribePortal && !sp.swallow
		if (hide && !ownDescribe) || sp.inner != nil {
			return nil
		}
		return s.cw.Message(typ, body)

	case 'T':
		body, err := s.sr.Body(n)
		if err != nil {
			return err
		}
		shape := s.rowShapeOf(body)
		switch k {
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
		if hide {
			return nil
		}
		return s.cw.Message(typ, body)

	case 'D':
		if cur.audit != nil {
			cur.audit.rows++
		}
		var shape *rowShape
		switch k {
		case track.Execute:
			if cur.portal != nil {
				shape = cur.portal.rowShape()
			}
		case track.Query:
			shape = sp.rows
		}
		if sp.inner != nil {
			body, err := s.sr.Body(n)
			if err != nil {
				return err
			}
			return s.captureRow(body)
		}
		if hide {
			return s.sr.CopyBody(discard{}, n)
		}
		if shape == nil || !shape.any {
			return s.forward(s.sr, s.cw, typ, n)
		}
		body, err := s.sr.Body(n)
		if err != nil {
			return err
		}
		out, err := s.decryptRowOff(body, shape)
		if err != nil {
			return s.decryptFailed(err)
		}
		return s.cw.Message(typ, out)

	case '1', '2', '3', 'n', 's', 'C', 'I', 'V':
		var body []byte // read only for the audit log
		if cur.audit != nil && (typ == 'C' || typ == 's' || typ == 'I') {
			var err error
			if body, err = s.sr.Body(n); err != nil {
				return err
			}
			s.auditAnswered(cur, k, typ, body)
		}
		switch {
		case typ == '1' && k == track.Parse:
			for _, st := range cur.prepared {
				st.settle(outcomeOK)
			}
		case typ == 'n' && k == track.DescribeStatement && cur.stmt != nil:
			cur.stmt.shape.Store(noPolicyRows)
		case typ == 'n' && k == track.DescribePortal && cur.portal != nil:
			cur.portal.shape.Store(noPolicyRows)
		}
		if cur.copy != nil && (typ == 'C' || typ == 'I' || typ == 's') {
			cur.copy.statementEnded(k == track.Execute)
		}
		if k == track.Query && (typ == 'C' || typ == 'I') {
			sp.rows, sp.copyOut = nil, nil
		}
		switch {
		case (hide || sp.inner != nil) && body != nil:
			return nil
		case hide || sp.inner != nil:
			return s.sr.CopyBody(discard{}, n)
		case body != nil:
			return s.cw.Message(typ, body)
		}
		return s.forward(s.sr, s.cw, typ, n)

	case 'G': // CopyInResponse
		if cur.copy != nil {
			cur.copy.started()
		}
		if hide || sp.inner != nil {
			return s.sr.CopyBody(discard{}, n)
		}
		return s.forward(s.sr, s.cw, typ, n)

	case 'H': // CopyOutResponse
		if k == track.Query {
			sp.copyOut = cur.copyOut
		}
		if hide || sp.inner != nil {
			return s.sr.CopyBody(discard{}, n)
		}
		return s.forward(s.sr, s.cw, typ, n)

	case 'd': // CopyData of a COPY TO
		if sp.copyOut == nil || hide || sp.inner != nil {
			if hide || sp.inner != nil {
				return s.sr.CopyBody(discard{}, n)
			}
			return s.forward(s.sr, s.cw, typ, n)
		}
		body, err := s.sr.Body(n)
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
		return s.cw.Message(typ, out)

	case 't':
		// ParameterDescription: the first half of a statement Describe.
		if hide {
			return s.sr.CopyBody(discard{}, n)
		}
		return s.forward(s.sr, s.cw, typ, n)

	default: // COPY messages and anything newer: relay
		if hide || sp.inner != nil {
			return s.sr.CopyBody(discard{}, n)
		}
		return s.forward(s.sr, s.cw, typ, n)
	}
}

// rowShapeOf maps a RowDescription's fields to policy columns by table OID
// and attribute number, so aliases, joins, RETURNING, subqueries and views
// all follow the column itself.
func (s *session) rowShapeOf(body []byte) *rowShape {
	cat := s.pol.cat.Load()
	if cat == nil || len(body) < 2 {
		return noPolicyRows
	}
	nf := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	var shape *rowShape
	for i := 0; i < nf; i++ {
		z := 0
		for z < len(rest) && rest[z] != 0 {
			z++
		}
		if z+1+18 > len(rest) {
			return noPolicyRows // malformed: the client's driver will complain
		}
		f := rest[z+1:]
		oid := binary.BigEndian.Uint32(f)
		attnum := int16(binary.BigEndian.Uint16(f[4:]))
		if oid > cat.maxOID && cat.byOID[oid] == nil {
			// A relation newer than the catalog: perhaps a policy table
			// recreated on another connection. Re-read before the next
			// statement.
			s.pol.catalogSuspect.Store(true)
		}
		if pc := cat.cols[colKey{oid, attnum}]; pc != nil {
			if shape == nil {
				shape = &rowShape{cols: make([]*policyColumn, nf), any: true}
			}
			shape.cols[i] = pc
		} else if r := cat.byOID[oid]; r != nil && r.policy && attnum > r.maxAttnum {
			// A column of a policy table added (or dropped and added
			// again) on another connection since the catalog was read: it
			// may be a policy column, which the proxy cannot tell. Refuse
			// the rows rather than pass them on; the catalog is read again
			// before the next statement.
			s.pol.catalogSuspect.Store(true)
			if shape == nil {
				shape = &rowShape{cols: make([]*policyColumn, nf), any: true}
			}
			shape.stale = r.schema + "." + r.name
		}
		rest = f[18:]
	}
	if shape == nil {
		return noPolicyRows
	}
	return shape
}

// decryptRow returns the DataRow body with policy values decrypted.
// Plaintext still stored in a policy column (before backfill) is passed
// through and counted.
func (s *session) decryptRow(body []byte, shape *rowShape) ([]byte, error) {
	sp := s.pol
	if shape.stale != "" {
		return nil, &staleCatalogError{table: shape.stale}
	}
	if len(body) < 2 {
		return nil, &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "short DataRow"}
	}
	start := time.Now()
	nf := int(binary.BigEndian.Uint16(body))
	out := append(sp.outBuf[:0], body[:2]...)
	rest := body[2:]
	for i := 0; i < nf; i++ {
		if len(rest) < 4 {
			return nil, &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "truncated DataRow"}
		}
		l := int32(binary.BigEndian.Uint32(rest))
		if l < 0 {
			out = append(out, rest[:4]...)
			rest = rest[4:]
			continue
		}
		if int(l) > len(rest)-4 {
			return nil, &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "truncated DataRow"}
		}
		v := rest[4 : 4+l]
		rest = rest[4+l:]
		var pc *policyColumn
		if i < len(shape.cols) {
			pc = shape.cols[i]
		}
		if pc == nil {
			out = append(out, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
			out = append(out, v...)
			continue
		}
		plain, err := decryptField(pc, sp.plainBuf[:0], v)
		if err != nil {
			return nil, err
		}
		sp.plainBuf = plain
		pl := len(plain)
		out = append(out, byte(pl>>24), byte(pl>>16), byte(pl>>8), byte(pl))
		out = append(out, plain...)
	}
	sp.outBuf = out
	s.srv.m.DecryptDuration.Observe(time.Since(start).Seconds())
	return out, nil
}

// decryptFailed replaces the rest of the group's answer with an error that
// names the column, and keeps the connection usable.
func (s *session) decryptFailed(err error) error {
	var de *cipher.DecryptError
	var se *staleCatalogError
	var code, msg, hint string
	switch {
	case errors.As(err, &de):
		s.srv.m.Error(metrics.ErrDecrypt)
		s.log.Warn("stored value does not decrypt", "column", de.Column, "key_id", de.KeyID, "reason", de.Reason.String())
		code, msg = "XX001", "pgcrypt-proxy: "+de.Error()
		hint = "The value was written under a key the proxy does not have, altered, or copied from another column. Statements after this one in the same pipeline have run."
	case errors.As(err, &se):
		s.log.Info("result has columns the catalog does not know; refused", "table", se.table)
		code, msg = "55000", "pgcrypt-proxy: "+se.Error()
		hint = "Run the statement again: the proxy reads the table's columns first. Statements after this one in the same pipeline have run."
	default:
		return err
	}
	s.pol.swallow = true
	if cur := s.track.Current(); cur != nil && cur.audit != nil {
		s.auditDone(cur.audit, nil, code, nil)
		cur.audit = nil // the rest of the answer is dropped
	}
	_, err = s.cw.Write(errorMessage("ERROR", code, msg, hint))
	return err
}

// staleCatalogError refuses the rows of a result that has a column of a
// policy table added since the proxy read the catalog.
type staleCatalogError struct{ table string }

func (e *staleCatalogError) Error() string {
	return "the result has a column of " + e.table + " added since the proxy read its columns (on another connection), which may be encrypted"
}

// captureRow keeps a row of the proxy's own query.
func (s *session) captureRow(body []byte) error {
	in := s.pol.inner
	if len(in.res.sets) == 0 {
		in.res.sets = append(in.res.sets, nil)
	}
	if len(body) < 2 {
		return &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "short DataRow"}
	}
	nf := int(binary.BigEndian.Uint16(body))
	row := make([][]byte, 0, nf)
	rest := body[2:]
	for range nf {
		if len(rest) < 4 {
			return &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "truncated DataRow"}
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			row = append(row, nil)
			continue
		}
		if int(l) > len(rest) {
			return &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "truncated DataRow"}
		}
		row = append(row, append([]byte{}, rest[:l]...))
		rest = rest[l:]
	}
	last := len(in.res.sets) - 1
	in.res.sets[last] = append(in.res.sets[last], row)
	return nil
}

// noteParameter watches standard_conforming_strings (with it off, a
// backslash in '...' is an escape and the proxy's literal offsets would be
// wrong, so statements with policy literals are refused) and
// client_encoding (PostgreSQL converts text between encodings, which it
// cannot do for envelopes, so sessions must use UTF8 to touch policy
// columns).
func (sp *sessionPolicy) noteParameter(body []byte) {
	name, rest, err := cstring(body)
	if err != nil {
		return
	}
	value, _, _ := cstring(rest)
	switch name {
	case "standard_conforming_strings":
		sp.nonStandardStrings.Store(value != "on")
	case "client_encoding":
		sp.nonUTF8.Store(value != "UTF8")
	case "application_name":
		sp.auditApp.Store(&value)
	}
}
