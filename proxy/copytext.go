package proxy

import (
	"bytes"
	"errors"
	"fmt"
)

// COPY's text format (the default of COPY FROM STDIN and psql's \copy):
// one row per line, fields separated by the delimiter (tab by default),
// backslash escapes, \N for NULL, and a line "\." that ends the data.
// The proxy rewrites the fields of policy columns: on the way in it
// decodes each one, encrypts it and writes the envelope, escaped; on the way
// out the reverse. Other fields cross unchanged.

// copyCodec rewrites the policy fields of one COPY's data: copyText or
// copyBinary.
type copyCodec interface {
	// in rewrites CopyData bytes from the client, enc encrypting a field;
	// final means the client sent CopyDone.
	in(dst, data []byte, final bool, enc func(pc *policyColumn, dst, plain []byte) ([]byte, error)) ([]byte, error)
	// out rewrites a CopyData from PostgreSQL, dec decrypting a field.
	out(dst, data []byte, dec func(pc *policyColumn, dst, env []byte) ([]byte, error)) ([]byte, error)
}

// copyText is the layout of one COPY's rows.
type copyText struct {
	delim byte
	null  []byte
	cols  []*policyColumn // by field; nil entries are not encrypted
	// in: bytes of a row not yet ended by a newline
	pending []byte
	header  bool // the first line is a header (HEADER, PostgreSQL 15), passed as is
	lines   int  // lines seen
	done    bool // the end-of-data line was seen
}

func newCopyText(delimiter, null string, nullSet, header bool, cols []*policyColumn) (*copyText, error) {
	ct := &copyText{delim: '\t', null: []byte(`\N`), header: header, cols: cols}
	if delimiter != "" {
		if len(delimiter) != 1 || delimiter[0] == '\\' || delimiter[0] == '\n' || delimiter[0] == '\r' {
			return nil, errors.New("COPY's DELIMITER must be one character other than backslash and newline")
		}
		ct.delim = delimiter[0]
	}
	if nullSet {
		ct.null = []byte(null)
	}
	return ct, nil
}

// in takes CopyData bytes from the client and returns the complete rows
// among them (and before them) rewritten; a row split across messages is
// held until its end arrives. final flushes a last row without newline.
func (ct *copyText) in(dst, data []byte, final bool, enc func(pc *policyColumn, dst, plain []byte) ([]byte, error)) ([]byte, error) {
	buf := data
	if len(ct.pending) > 0 {
		ct.pending = append(ct.pending, data...)
		buf = ct.pending
	}
	for len(buf) > 0 {
		nl := lineEnd(buf)
		if nl < 0 && !final {
			break
		}
		line, rest := buf, []byte(nil)
		if nl >= 0 {
			line, rest = buf[:nl+1], buf[nl+1:]
		}
		var err error
		if dst, err = ct.row(dst, line, func(pc *policyColumn, dst, field []byte) ([]byte, error) {
			plain, err := unescapeCopyText(nil, field)
			if err != nil {
				return nil, err
			}
			env, err := enc(pc, nil, plain)
			if err != nil {
				return nil, err
			}
			return escapeCopyText(dst, env, ct.delim), nil
		}); err != nil {
			return nil, err
		}
		buf = rest
	}
	ct.pending = append(ct.pending[:0], buf...)
	return dst, nil
}

// cutLineEnd splits a line into its body and its "\n" or "\r\n" end.
func cutLineEnd(line []byte) (body, eol []byte) {
	body = line
	if n := len(body); n > 0 && body[n-1] == '\n' {
		body, eol = body[:n-1], body[n-1:]
		if n := len(body); n > 0 && body[n-1] == '\r' {
			body, eol = body[:n-1], line[n-1:]
		}
	}
	return body, eol
}

// lineEnd returns the index of the newline that ends the first line of b,
// or -1. A backslash makes the next byte data, newline included, as for
// PostgreSQL.
func lineEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '\n':
			return i
		}
	}
	return -1
}

// out rewrites one row that PostgreSQL sent (COPY TO sends a row per
// message), with dec turning an envelope into plaintext.
func (ct *copyText) out(dst, row []byte, dec func(pc *policyColumn, dst, env []byte) ([]byte, error)) ([]byte, error) {
	return ct.row(dst, row, func(pc *policyColumn, dst, field []byte) ([]byte, error) {
		env, err := unescapeCopyText(nil, field)
		if err != nil {
			return nil, err
		}
		plain, err := dec(pc, nil, env)
		if err != nil {
			return nil, err
		}
		return escapeCopyText(dst, plain, ct.delim), nil
	})
}

// row rewrites the policy fields of one line (with its line end, if any).
func (ct *copyText) row(dst, line []byte, field func(pc *policyColumn, dst, field []byte) ([]byte, error)) ([]byte, error) {
	body, eol := cutLineEnd(line)
	ct.lines++
	if ct.done {
		// PostgreSQL ignores what follows the end marker: so it is not
		// sent at all.
		return dst, nil
	}
	if bytes.Equal(body, []byte(`\.`)) {
		ct.done = true
		return append(dst, line...), nil
	}
	// A carriage return not escaped ends the line for PostgreSQL when the
	// data has CR line ends, and is an error otherwise: either way the
	// proxy's lines would not be PostgreSQL's.
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '\r':
			return nil, errors.New("a carriage return that is not escaped (write \\r): use \\n or \\r\\n line ends")
		}
	}
	if ct.header && ct.lines == 1 {
		return append(dst, line...), nil
	}
	i := 0
	for start := 0; ; i++ {
		end := start
		for end < len(body) && body[end] != ct.delim {
			if body[end] == '\\' {
				end++
			}
			end++
		}
		end = min(end, len(body))
		f := body[start:end]
		if i >= len(ct.cols) {
			// PostgreSQL refuses the row, and its error quotes the line:
			// the extra fields must not cross in plaintext.
			return nil, fmt.Errorf("a line has more fields than the COPY's %d columns", len(ct.cols))
		}
		if ct.cols[i] != nil && !bytes.Equal(f, ct.null) {
			var err error
			if dst, err = field(ct.cols[i], dst, f); err != nil {
				return nil, fmt.Errorf("field %d: %w", i+1, err)
			}
		} else {
			dst = append(dst, f...)
		}
		if end >= len(body) {
			break
		}
		dst = append(dst, ct.delim)
		start = end + 1
	}
	return append(dst, eol...), nil
}

// unescapeCopyText decodes COPY text escapes as PostgreSQL does.
func unescapeCopyText(dst, f []byte) ([]byte, error) {
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(f) {
			return nil, errors.New("a backslash ends the field")
		}
		switch c = f[i]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && hexVal(f[i+1]) >= 0 {
				v = v<<4 | hexVal(f[i+1])
				i++
				n++
			}
			if n == 0 {
				dst = append(dst, 'x')
			} else {
				dst = append(dst, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
				v = v<<3 | int(f[i+1]-'0')
				i++
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// escapeCopyText writes v escaped for COPY text, as PostgreSQL's COPY TO
// does for the characters that matter.
func escapeCopyText(dst, v []byte, delim byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case delim:
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
