package proxy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// The client's side of COPY FROM STDIN: which Query may start one, the
// codec for policy columns, and the CopyData, CopyDone and CopyFail
// messages.

// mayCopyFromStdin reports whether sql may run COPY FROM STDIN (it has both
// words), so that the proxy follows whether the server is copying.
func mayCopyFromStdin(sql string) bool {
	return rewrite.MentionsAnyWord(sql, []string{"copy"}) && rewrite.MentionsAnyWord(sql, []string{"stdin"})
}

// frontendCopyMessage handles the client's CopyData, CopyDone and
// CopyFail (see sessionPolicy.copySeq).
func (s *session) frontendCopyMessage(typ byte, n int) error {
	sp := s.pol
	switch {
	case sp.copyIn != nil:
		return s.frontendCopy(typ, n)
	case sp.copySeq != 0 && !sp.copyPolicy:
		// Relayed as it is only into a COPY the server has started for
		// this Query or Execute: if none runs (it failed, never started,
		// or the message that was to start it interrupted a COPY of
		// policy columns), the data may be that COPY's plaintext.
		running, ok := s.settleCopy()
		if !ok {
			return errors.New("the connection to PostgreSQL ended")
		}
		if !running {
			return s.cr.CopyBody(discard{}, n)
		}
		if typ != 'd' {
			sp.copyEnds++
		}
		return s.forward(s.cr, s.sw, typ, n)
	default:
		return s.cr.CopyBody(discard{}, n)
	}
}

// copyPlan returns the codec for a COPY of policy columns to or from the
// client (from: data comes from the client), or nil when the statements
// hold none. One such COPY per query, in text or binary format.
func (s *session) copyPlan(p *rewrite.Plan) (copyCodec, bool, error) {
	var found *rewrite.Copy
	copies := 0
	for _, st := range p.Statements() {
		if st.Kind != rewrite.StmtCopy || st.Copy == nil || !st.Copy.Stdio {
			continue
		}
		copies++
		if st.Copy.Columns != nil {
			found = st.Copy
		}
	}
	if found == nil {
		return nil, false, nil
	}
	if copies > 1 {
		return nil, false, errors.New("a query with several COPY statements cannot copy encrypted columns; send them one at a time")
	}
	if found.Invalid != "" {
		return nil, false, fmt.Errorf("COPY of encrypted columns with options PostgreSQL will refuse (%s): the proxy will not guess how the data reads", found.Invalid)
	}
	if !utf8Encoding(found.Encoding) {
		return nil, false, errors.New("COPY of encrypted columns needs its data in UTF8, the session's encoding: leave out ENCODING or give UTF8")
	}
	if found.Default != "" || found.ForceNull {
		return nil, false, errors.New("COPY of encrypted columns cannot take DEFAULT, FORCE_NULL or FORCE_NOT_NULL: the proxy would have to judge which values are NULL as the server does; leave them out, or use INSERT with parameters")
	}
	cols := make([]*policyColumn, len(found.Columns))
	for i, c := range found.Columns {
		if c != nil {
			cols[i] = s.pol.p.column(c)
		}
	}
	switch found.Format {
	case rewrite.CopyBinary:
		return newCopyBinary(cols), found.From, nil
	case rewrite.CopyCSV:
		cc, err := newCopyCSV(found.Delimiter, found.Quote, found.Escape, found.Null, found.Header, cols)
		if err != nil {
			return nil, false, err
		}
		return cc, found.From, nil
	}
	ct, err := newCopyText(found.Delimiter, found.Null, found.NullSet, found.Header, cols)
	if err != nil {
		return nil, false, err
	}
	return ct, found.From, nil
}

// utf8Encoding reports whether a COPY ENCODING option ("" when not given)
// names UTF8, however spelled.
func utf8Encoding(name string) bool {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(name))
	return n == "" || n == "utf8" || n == "unicode"
}

// frontendCopy rewrites the client's COPY data for policy columns. A value
// that cannot be encrypted ends the COPY with CopyFail, so nothing of it is
// stored.
func (s *session) frontendCopy(typ byte, n int) error {
	sp := s.pol
	body, err := s.cr.Body(n)
	if err != nil {
		return err
	}
	if typ == 'f' {
		sp.copyIn = nil // COPY data after the end goes nowhere
		sp.copyEnds++
		return s.sw.Message(typ, body)
	}
	start := time.Now()
	out, err := s.copyInOff(sp.copyBuf[:0], body, typ == 'c')
	s.srv.m.EncryptDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		sp.copyIn = nil // what the client sends of this COPY from now on is dropped
		sp.copyEnds++
		msg := "pgcrypt-proxy: cannot encrypt COPY data: " + err.Error()
		return s.sw.Message('f', append([]byte(msg), 0))
	}
	sp.copyBuf = out
	if len(out) > 0 {
		if err := s.sw.Message('d', out); err != nil {
			return err
		}
	}
	if typ == 'c' {
		sp.copyIn = nil // COPY data after the end goes nowhere
		sp.copyEnds++
		return s.sw.Message(typ, body)
	}
	return nil
}
