package proxy

import (
	"bytes"
	"errors"
	"fmt"
)

// COPY's CSV format (FORMAT csv; psql's `\copy … csv`): fields separated
// by the delimiter (a comma by default), a field may be quoted (a double
// quote by default), and inside quotes the escape character (the quote by
// default) makes the next quote or escape literal, while delimiters and
// newlines are data. An unquoted field equal to the NULL string (empty by
// default) is NULL; a quoted one is a value. The proxy parses each record
// as PostgreSQL does, encrypts a policy field's value and writes the
// envelope quoted; on the way out it decrypts and quotes where needed.
// Other fields cross byte for byte.

// copyCSV is the layout of one CSV COPY's records.
type copyCSV struct {
	delim, quote, escape byte
	null                 []byte
	cols                 []*policyColumn // by field; nil entries are not encrypted
	header               bool            // the first record is a header, passed as is
	records              int             // records seen
	pending              []byte          // bytes of a record not yet whole
	done                 bool            // the end-of-data line was seen

	fields []csvField // scratch
	value  []byte     // scratch
}

type csvField struct {
	raw    []byte // as read, quotes and escapes included
	quoted bool
}

func newCopyCSV(delimiter, quote, escape, null string, header bool, cols []*policyColumn) (*copyCSV, error) {
	cc := &copyCSV{delim: ',', quote: '"', null: []byte{}, header: header, cols: cols}
	one := func(name, v string, dst *byte) error {
		if v == "" {
			return nil
		}
		if len(v) != 1 || v[0] == '\n' || v[0] == '\r' {
			return fmt.Errorf("COPY's %s must be one single-byte character other than a newline", name)
		}
		*dst = v[0]
		return nil
	}
	if err := one("DELIMITER", delimiter, &cc.delim); err != nil {
		return nil, err
	}
	if err := one("QUOTE", quote, &cc.quote); err != nil {
		return nil, err
	}
	cc.escape = cc.quote
	if err := one("ESCAPE", escape, &cc.escape); err != nil {
		return nil, err
	}
	if cc.delim == cc.quote {
		return nil, errors.New("COPY's DELIMITER and QUOTE must differ")
	}
	if null != "" {
		cc.null = []byte(null)
	}
	return cc, nil
}

// in takes CopyData bytes from the client and returns the whole records
// among them rewritten; final (CopyDone) flushes a last record without a
// newline.
func (cc *copyCSV) in(dst, data []byte, final bool, enc func(pc *policyColumn, dst, plain []byte) ([]byte, error)) ([]byte, error) {
	dst, err := cc.rewrite(dst, data, final, false, enc)
	if err != nil {
		return nil, err
	}
	if final && len(cc.pending) > 0 {
		return nil, errors.New("the COPY data ends inside a quoted CSV field")
	}
	return dst, nil
}

// out rewrites a CopyData from PostgreSQL (a record each).
func (cc *copyCSV) out(dst, data []byte, dec func(pc *policyColumn, dst, env []byte) ([]byte, error)) ([]byte, error) {
	return cc.rewrite(dst, data, true, true, dec)
}

// rewrite rewrites the whole records in pending+data. Envelopes going to
// PostgreSQL are always quoted; plaintext going to the client is quoted
// where PostgreSQL would quote it (out).
func (cc *copyCSV) rewrite(dst, data []byte, final, out bool, field func(pc *policyColumn, dst, v []byte) ([]byte, error)) ([]byte, error) {
	buf := data
	if len(cc.pending) > 0 {
		cc.pending = append(cc.pending, data...)
		buf = cc.pending
	}
	for len(buf) > 0 {
		n, complete, open := cc.recordLen(buf)
		if !complete && (!final || open) {
			break // the record goes on in the next message (or never ends)
		}
		var err error
		if dst, err = cc.record(dst, buf[:n], out, field); err != nil {
			return nil, err
		}
		buf = buf[n:]
	}
	cc.pending = append(cc.pending[:0], buf...)
	return dst, nil
}

// recordLen returns the length of the record at the start of b, its line
// end included, whether a line end outside quotes ended it, and, when not,
// whether b ends inside a quoted field. Quotes and escapes are tracked as
// PostgreSQL's CSV line reader does.
func (cc *copyCSV) recordLen(b []byte) (n int, complete, open bool) {
	in, esc := false, false
	for i, c := range b {
		if in && c == cc.escape && cc.escape != cc.quote {
			esc = !esc
			continue
		}
		if c == cc.quote && !esc {
			in = !in
		} else if c == '\n' && !in {
			return i + 1, true, false
		}
		esc = false
	}
	return len(b), false, in
}

// record rewrites one record (with its line end, if any).
func (cc *copyCSV) record(dst, line []byte, out bool, field func(pc *policyColumn, dst, v []byte) ([]byte, error)) ([]byte, error) {
	body, eol := cutLineEnd(line)
	cc.records++
	if cc.done {
		// PostgreSQL ignores what follows the end marker: so it is not
		// sent at all.
		return dst, nil
	}
	if bytes.Equal(body, []byte(`\.`)) && len(eol) > 0 {
		// Without a line end after it, PostgreSQL reads it as a value.
		cc.done = true
		return append(dst, line...), nil
	}
	fields, err := cc.split(body)
	if err != nil {
		return nil, err
	}
	if cc.header && cc.records == 1 {
		return append(dst, line...), nil
	}
	if len(fields) != len(cc.cols) {
		return nil, fmt.Errorf("a record has %d fields where the COPY lists %d columns", len(fields), len(cc.cols))
	}
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, cc.delim)
		}
		pc := cc.cols[i]
		if pc == nil || (!f.quoted && bytes.Equal(f.raw, cc.null)) {
			dst = append(dst, f.raw...)
			continue
		}
		cc.value = cc.unquote(cc.value[:0], f.raw)
		v, err := field(pc, nil, cc.value)
		if err != nil {
			return nil, fmt.Errorf("field %d: %w", i+1, err)
		}
		if out && !cc.needsQuotes(v) {
			dst = append(dst, v...)
		} else {
			dst = cc.writeQuoted(dst, v)
		}
	}
	return append(dst, eol...), nil
}

// split cuts a record into its fields as PostgreSQL's CSV reader does: a
// quote may open anywhere in a field.
func (cc *copyCSV) split(body []byte) ([]csvField, error) {
	fields := cc.fields[:0]
	start := 0
	in, quoted := false, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case in:
			if c == cc.escape && i+1 < len(body) && (body[i+1] == cc.quote || body[i+1] == cc.escape) && cc.escape != cc.quote {
				i++
			} else if c == cc.quote {
				if cc.escape == cc.quote && i+1 < len(body) && body[i+1] == cc.quote {
					i++ // a doubled quote is a literal quote
				} else {
					in = false
				}
			}
		case c == cc.delim:
			fields = append(fields, csvField{raw: body[start:i], quoted: quoted})
			start, quoted = i+1, false
		case c == cc.quote:
			in, quoted = true, true
		case c == '\r':
			// PostgreSQL would take it for the line end (of a file with
			// CR line ends) or refuse it; either way the records would
			// not be the ones the proxy sees.
			return nil, errors.New("a carriage return outside quotes: use \\n or \\r\\n line ends")
		}
	}
	if in {
		return nil, errors.New("a quoted CSV field is not closed")
	}
	fields = append(fields, csvField{raw: body[start:], quoted: quoted})
	cc.fields = fields
	return fields, nil
}

// unquote returns a field's value: quotes removed, escapes resolved.
func (cc *copyCSV) unquote(dst, raw []byte) []byte {
	in := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !in {
			if c == cc.quote {
				in = true
			} else {
				dst = append(dst, c)
			}
			continue
		}
		if c == cc.escape && i+1 < len(raw) && (raw[i+1] == cc.quote || raw[i+1] == cc.escape) {
			if cc.escape != cc.quote || raw[i+1] == cc.quote {
				dst = append(dst, raw[i+1])
				i++
				continue
			}
		}
		if c == cc.quote {
			in = false
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// needsQuotes reports whether PostgreSQL's COPY TO would quote v: when it
// reads as the NULL string or as the end marker, or holds the delimiter,
// the quote or a line end.
func (cc *copyCSV) needsQuotes(v []byte) bool {
	if bytes.Equal(v, cc.null) || (len(cc.cols) == 1 && bytes.Equal(v, []byte(`\.`))) {
		return true
	}
	for _, c := range v {
		if c == cc.delim || c == cc.quote || c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// writeQuoted writes v as a quoted field.
func (cc *copyCSV) writeQuoted(dst, v []byte) []byte {
	dst = append(dst, cc.quote)
	for _, c := range v {
		if c == cc.quote || c == cc.escape {
			dst = append(dst, cc.escape)
		}
		dst = append(dst, c)
	}
	return append(dst, cc.quote)
}
