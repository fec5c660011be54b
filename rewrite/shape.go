package rewrite

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Statements with their values written as literals (psycopg2, PDO with
// emulated prepares, Rails without prepared statements) are new text on
// every call: the exact-text cache misses and each one would be parsed.
// Their shape (the text with the contents of its '…' strings left out) is
// the same from call to call, so the Analyzer also caches analyses by
// shape. A text whose shape was analysed before gets an Analysis that
// shares the earlier text's parse tree, and its plan is the earlier plan
// with the literals' values and every offset moved to the new text: no
// parse, no scan.
//
// That is only right when nothing in the analysis depends on what the
// strings hold. So shapes are taken only of texts whose every statement is
// SELECT, INSERT, UPDATE, DELETE or MERGE (no DO or function bodies, COPY
// options or EXECUTE arguments, which are strings the analysis reads); the
// planner marks a plan that read a string constant for any other purpose
// than its value (a whole-table function's argument: Plan.constContent),
// and such a plan is built again from a full parse of the new text. Only
// strings are left out: numbers and booleans stay in the shape, as the
// analysis reads some of them (ORDER BY 1) and checks the form of others.

// shapeOf returns sql's shape and the spans of its plain '…' strings (the
// quotes included), as plainLiterals lexes them; ok is false when it would
// take more than that to be sure: a backslash (an escape with
// standard_conforming_strings off, or a byte of a multi-byte character in
// SJIS and kin), a NUL, invalid UTF-8 (which the parser refuses), UESCAPE
// (its string is not a value: it decides what a U&"…" name or U&'…'
// string before it spells), an unterminated string, or one continued on a
// new line. Other strings (E'…', U&'…', dollar quotes) stay in the shape
// as they are.
func shapeOf(sql string) (key string, spans []span, ok bool) {
	if strings.IndexByte(sql, '\\') >= 0 || strings.IndexByte(sql, 0) >= 0 || !utf8.ValidString(sql) || containsFold(sql, "uescape") {
		return "", nil, false
	}
	spans = plainLiterals(sql)
	if len(spans) == 0 {
		return sql, nil, true
	}
	var b strings.Builder
	b.Grow(len(sql))
	last := 0
	for _, l := range spans {
		if l.end < 0 || l.end != quotedEnd(sql, l.start, false) {
			return "", nil, false
		}
		b.WriteString(sql[last:l.start])
		b.WriteString("''")
		last = l.end
	}
	b.WriteString(sql[last:])
	return b.String(), spans, true
}

// stringValue is the value of the plain '…' string s (quotes included).
func stringValue(s string) string {
	s = s[1 : len(s)-1]
	if strings.Contains(s, "''") {
		return strings.ReplaceAll(s, "''", "'")
	}
	return s
}

// offsetMap moves byte offsets of one text to another of the same shape.
type offsetMap struct{ from, to []span }

// move returns x's place in the other text; false for an offset strictly
// inside a string, which has none.
func (m offsetMap) move(x int) (int, bool) {
	k := sort.Search(len(m.from), func(i int) bool { return m.from[i].end > x }) // spans ending at or before x: k
	if k < len(m.from) && m.from[k].start < x {
		return 0, false
	}
	if k == 0 {
		return x, true
	}
	return x + m.to[k-1].end - m.from[k-1].end, true
}

// reshaped returns p, the plan of a text with string spans from, moved to
// sql, a text of the same shape with string spans to: the literals that
// are those strings take the new values. It returns nil when p cannot be
// moved (see shape.go's comment).
func (p *Plan) reshaped(sql string, from, to []span) *Plan {
	if p.constContent {
		return nil
	}
	m := offsetMap{from, to}
	ok := true
	move := func(x int) int {
		y, good := m.move(x)
		ok = ok && good
		return y
	}
	q := &Plan{params: p.params, notes: p.notes}
	for _, st := range p.stmts {
		if st.Copy != nil || len(st.Execute) > 0 {
			// Not in the texts Analyze shapes (dmlOnly); kept so a
			// change there cannot move COPY options or EXECUTE
			// arguments unseen.
			return nil
		}
		st.Start, st.End = move(st.Start), move(st.End)
		q.stmts = append(q.stmts, st)
	}
	for _, l := range p.literals {
		// The first string that ends inside or after the literal: its
		// value is that string's only if their ranges are the same (not
		// U&'…' UESCAPE '!', whose value the escape string decides).
		k := sort.Search(len(from), func(i int) bool { return from[i].end > l.Start })
		if k < len(from) && from[k].start < l.End {
			if from[k].start != l.Start || from[k].end != l.End || l.Kind != ConstString {
				return nil
			}
			l.Start, l.End, l.Value = to[k].start, to[k].end, stringValue(sql[to[k].start:to[k].end])
		} else {
			l.Start, l.End = move(l.Start), move(l.End)
		}
		q.literals = append(q.literals, l)
	}
	for _, r := range p.rejections {
		if r.Location >= 0 {
			r.Location = move(r.Location)
		}
		q.rejections = append(q.rejections, r)
	}
	for _, c := range p.columns {
		c.At = move(c.At)
		q.columns = append(q.columns, c)
	}
	for _, c := range p.qualified {
		c.At = move(c.At)
		q.qualified = append(q.qualified, c)
	}
	for _, s := range p.splices {
		if k := sort.Search(len(from), func(i int) bool { return from[i].end > s.Start }); k < len(from) && from[k].start < s.End {
			return nil // a string inside a replaced piece
		}
		s.Start, s.End = move(s.Start), move(s.End)
		q.splices = append(q.splices, s)
	}
	if !ok {
		return nil
	}
	return q
}
