package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// The server side of an encrypting session: each answer is matched with the
// expectation of the client message it answers, so the proxy knows which
// statement a DataRow comes from (drivers that cache statements do not
// describe them again), which answers are its own, and which error to show
// in place of a poison message's.

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
		pc := cat.cols[colKey{oid, attnum}]
		if cat.oldCols != nil {
			// Values there were written as the column the proxy first
			// knew there (read by a cursor opened before a rename, say).
			if old := cat.oldCols[colKey{oid, attnum}]; old != nil {
				pc = old
			}
		}
		if pc != nil {
			if shape == nil {
				shape = &rowShape{cols: make([]*policyColumn, nf), any: true}
			}
			shape.cols[i] = pc
			if typ, ok := cat.notText[pc.rc]; ok {
				shape.stale = &staleCatalogError{table: pc.name, why: "has type " + typ + ", which returns envelopes in another form than text; change it back to text"}
			}
		} else if from, ok := cat.derived[colKey{oid, attnum}]; ok {
			if shape == nil {
				shape = &rowShape{cols: make([]*policyColumn, nf), any: true}
			}
			shape.stale = &staleCatalogError{table: from, why: "a generated column of the result is computed from, on its ciphertext; drop the generated column"}
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
			shape.stale = &staleCatalogError{table: r.schema + "." + r.name}
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
	if shape.stale != nil {
		return nil, shape.stale
	}
	f, err := readRow(body)
	if err != nil {
		return nil, err
	}
	if f.count != len(shape.cols) {
		// PostgreSQL never does this; fields past the description would
		// be relayed undecrypted.
		return nil, &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: fmt.Sprintf("a row of %d fields after a description of %d", f.count, len(shape.cols))}
	}
	start := time.Now()
	out := append(sp.outBuf[:0], body[:2]...)
	for i := range f.count {
		v, null, err := f.next()
		if err != nil {
			return nil, err
		}
		var pc *policyColumn
		if i < len(shape.cols) {
			pc = shape.cols[i]
		}
		if pc != nil && !null {
			if v, err = decryptField(pc, sp.plainBuf[:0], v); err != nil {
				return nil, err
			}
			sp.plainBuf = v
		}
		out = appendField(out, v, null)
	}
	sp.outBuf = out
	s.srv.m.DecryptDuration.Observe(time.Since(start).Seconds())
	return out, nil
}

// rowFields reads a DataRow body field by field: the one reader of
// DataRows.
type rowFields struct {
	body  []byte
	rest  []byte
	count int
}

func readRow(body []byte) (rowFields, error) {
	if len(body) < 2 {
		return rowFields{}, &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "short DataRow"}
	}
	return rowFields{body: body, rest: body[2:], count: int(binary.BigEndian.Uint16(body))}, nil
}

// next returns the next field's value, or null for a NULL.
func (f *rowFields) next() (v []byte, null bool, err error) {
	if len(f.rest) < 4 {
		return nil, false, f.truncated()
	}
	l := int32(binary.BigEndian.Uint32(f.rest))
	f.rest = f.rest[4:]
	if l < 0 {
		return nil, true, nil
	}
	if int(l) > len(f.rest) {
		return nil, false, f.truncated()
	}
	v, f.rest = f.rest[:l], f.rest[l:]
	return v, false, nil
}

func (f *rowFields) truncated() error {
	return &wire.ProtocolError{Type: 'D', Length: len(f.body) + 4, Reason: "truncated DataRow"}
}

// appendField appends a DataRow field: its length, then its value.
func appendField(out, v []byte, null bool) []byte {
	if null {
		return append(out, 0xff, 0xff, 0xff, 0xff)
	}
	l := len(v)
	out = append(out, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	return append(out, v...)
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
		code, msg = "55000", "pgcrypt-proxy: "+se.Error()
		if se.why != "" {
			s.log.Warn("result has a policy column the proxy cannot decrypt as the schema stands; refused", "column", se.table)
			hint = "Change the column's type back to text on the server, or take it out of the policy. Statements after this one in the same pipeline have run."
		} else {
			s.log.Info("result has columns the catalog does not know; refused", "table", se.table)
			hint = "Run the statement again: the proxy reads the table's columns first. Statements after this one in the same pipeline have run."
		}
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
// policy table added since the proxy read the catalog, or (why) a policy
// column whose values it cannot decrypt as the schema stands.
type staleCatalogError struct{ table, why string }

func (e *staleCatalogError) Error() string {
	if e.why != "" {
		return "the result has policy column " + e.table + ", which " + e.why
	}
	return "the result has a column of " + e.table + " added since the proxy read its columns (on another connection), which may be encrypted"
}

// captureRow keeps a row of the proxy's own query.
func (s *session) captureRow(body []byte) error {
	in := s.pol.inner
	if len(in.res.sets) == 0 {
		in.res.sets = append(in.res.sets, nil)
	}
	f, err := readRow(body)
	if err != nil {
		return err
	}
	row := make([][]byte, 0, f.count)
	for range f.count {
		v, null, err := f.next()
		if err != nil {
			return err
		}
		if !null {
			v = append([]byte{}, v...)
		}
		row = append(row, v)
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

// redactedEnvelope stands in for an envelope in a server's message text.
const redactedEnvelope = "<encrypted>"

// redactEnvelopes returns the body of an ErrorResponse or NoticeResponse
// with every envelope in its fields replaced by redactedEnvelope: details
// such as "Failing row contains (…)" and "Key (email)=(…)" quote stored
// values, and the client must never receive an envelope. The body is
// returned as it is when it has none.
func redactEnvelopes(body []byte) []byte {
	return redactFields(body, 0, 1)
}

// redactCStrings is redactEnvelopes for a body of NUL-terminated strings
// after skip bytes (NotificationResponse: a process ID first;
// ParameterStatus: none).
func redactCStrings(body []byte, skip int) []byte {
	return redactFields(body, skip, 0)
}

// redactFields replaces the envelopes in body's NUL-terminated fields,
// which start at skip, each after a code byte when code is 1
// (ErrorResponse, NoticeResponse: a 0 byte ends them).
func redactFields(body []byte, skip, code int) []byte {
	var out []byte
	pos := 0 // body[:pos] is in out, or needs no change when out is nil
	for i := skip; i < len(body) && (code == 0 || body[i] != 0); {
		z := bytes.IndexByte(body[i+code:], 0)
		if z < 0 {
			break // malformed: relayed as it is, the client reads it as such
		}
		start := i + code
		field := body[start : start+z]
		for off := 0; ; {
			s, e := cipher.FindEnvelope(field[off:])
			if s < 0 {
				break
			}
			if out == nil {
				out = make([]byte, 0, len(body))
			}
			out = append(out, body[pos:start+off+s]...)
			out = append(out, redactedEnvelope...)
			pos, off = start+off+e, off+e
		}
		i = start + z + 1
	}
	if out == nil {
		return body
	}
	return append(out, body[pos:]...)
}
