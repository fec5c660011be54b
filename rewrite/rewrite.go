package rewrite

import (
	"errors"
	"fmt"
	"strings"
)

// ErrRewrite reports replacements that do not fit the literals.
var ErrRewrite = errors.New("rewrite: cannot rewrite statement")

// QuoteLiteral returns s as an SQL string literal that means s whatever
// standard_conforming_strings is: '...' with ' doubled, or, when s
// contains a backslash, E'...' with ' and \ doubled. s must not contain a
// NUL byte (no SQL literal can).
func QuoteLiteral(s string) string {
	var b strings.Builder
	appendQuoted(&b, s)
	return b.String()
}

func appendQuoted(b *strings.Builder, s string) {
	esc := strings.IndexByte(s, '\\') >= 0
	b.Grow(len(s) + 3)
	if esc {
		b.WriteByte('E')
	}
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\'' || (esc && c == '\\') {
			b.WriteByte(c)
		}
		b.WriteByte(c)
	}
	b.WriteByte('\'')
}

// Rewrite returns the statement text with the literals replaced by the
// quoted replacement values: SQL[l.Start:l.End] becomes
// QuoteLiteral(replacements[i]) for lits[i]. The literals must be sorted by
// Start and not overlap (as Plan.Literals are).
//
// Offsets come from PostgreSQL's own lexer run with
// standard_conforming_strings = on, the server default since 9.1. With
// standard_conforming_strings = off a backslash in a plain '...' literal is
// an escape and the token boundaries may differ: the proxy must not rewrite
// (it should reject) statements with literals for policy columns in a
// session where the server reported standard_conforming_strings = off. The
// output quoting itself is valid under both settings.
func Rewrite(sql string, lits []Literal, replacements []string) (string, error) {
	if len(lits) != len(replacements) {
		return "", fmt.Errorf("%w: %d literals, %d replacements", ErrRewrite, len(lits), len(replacements))
	}
	vals := make([][]string, len(replacements))
	for i := range replacements {
		vals[i] = replacements[i : i+1 : i+1]
	}
	return RewriteAll(sql, lits, vals, nil)
}

// RewriteAll returns the statement text with the literals replaced and the
// splices applied (both sorted by Start, not overlapping). vals[i] holds
// the envelopes of lits[i]: one, or one per key version for a compared
// literal of a column under several, written as its Expand says:
// ANY (ARRAY['e1', 'e2']), ALL (...), or 'e1', 'e2' in a list. A Joined
// literal becomes one literal of its envelopes joined by commas.
func RewriteAll(sql string, lits []Literal, vals [][]string, splices []Splice) (string, error) {
	if len(lits) != len(vals) {
		return "", fmt.Errorf("%w: %d literals, %d replacements", ErrRewrite, len(lits), len(vals))
	}
	var b strings.Builder
	size := len(sql)
	for _, v := range vals {
		for _, r := range v {
			size += len(r) + 5
		}
		size += 16
	}
	for _, sp := range splices {
		size += len(sp.Text)
	}
	b.Grow(size)
	pos := 0
	i, j := 0, 0
	for i < len(lits) || j < len(splices) {
		if j < len(splices) && (i == len(lits) || splices[j].Start < lits[i].Start) {
			sp := splices[j]
			if sp.Start < pos || sp.End < sp.Start || sp.End > len(sql) {
				return "", fmt.Errorf("%w: splice %d at %d-%d out of order or out of range", ErrRewrite, j, sp.Start, sp.End)
			}
			b.WriteString(sql[pos:sp.Start])
			if sp.Start > 0 && isIdentByte(sql[sp.Start-1]) {
				b.WriteByte(' ')
			}
			b.WriteString(sp.Text)
			pos = sp.End
			j++
			continue
		}
		l, v := lits[i], vals[i]
		if l.Start < pos || l.End < l.Start || l.End > len(sql) {
			return "", fmt.Errorf("%w: literal %d at %d-%d out of order or out of range", ErrRewrite, i, l.Start, l.End)
		}
		if len(v) == 0 {
			return "", fmt.Errorf("%w: no replacement for literal %d", ErrRewrite, i)
		}
		for _, r := range v {
			if strings.IndexByte(r, 0) >= 0 {
				return "", fmt.Errorf("%w: replacement %d contains a NUL byte", ErrRewrite, i)
			}
		}
		b.WriteString(sql[pos:l.Start])
		// A literal directly after an identifier character or another
		// literal would fuse with it (E'' would read as part of a name).
		if l.Start > 0 && isIdentByte(sql[l.Start-1]) {
			b.WriteByte(' ')
		}
		switch {
		case l.Joined:
			appendQuoted(&b, strings.Join(v, ","))
		case len(v) == 1:
			appendQuoted(&b, v[0])
		case l.Expand == ExpandAny || l.Expand == ExpandAll:
			if l.Expand == ExpandAny {
				b.WriteString("ANY (ARRAY[")
			} else {
				b.WriteString("ALL (ARRAY[")
			}
			appendList(&b, v)
			b.WriteString("])")
		case l.Expand == ExpandList:
			appendList(&b, v)
		default:
			return "", fmt.Errorf("%w: literal %d cannot take %d values", ErrRewrite, i, len(v))
		}
		pos = l.End
		i++
	}
	b.WriteString(sql[pos:])
	return b.String(), nil
}

func appendList(b *strings.Builder, v []string) {
	for k, r := range v {
		if k > 0 {
			b.WriteString(", ")
		}
		appendQuoted(b, r)
	}
}

// Rewrite is Rewrite(sql, p.Literals(), replacements).
func (p *Plan) Rewrite(sql string, replacements []string) (string, error) {
	return Rewrite(sql, p.literals, replacements)
}

func isIdentByte(c byte) bool { return identBytes[c] }

// identBytes[c] is whether c may continue an unquoted name: a table
// lookup, as the word scans run it over every byte of every statement.
var identBytes = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '_' || c == '$' || c >= 0x80 || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
	}
	return t
}()
