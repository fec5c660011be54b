package rewrite

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// canonicalNumeric matches numeric constants whose text is what the server
// prints for them (numeric output keeps the written scale).
var canonicalNumeric = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// constProblem says why a constant cannot be encrypted as the value the
// server would store, or "".
func constProblem(k *pg_query.A_Const) string {
	switch v := k.Val.(type) {
	case *pg_query.A_Const_Sval, *pg_query.A_Const_Ival, *pg_query.A_Const_Boolval:
		return ""
	case *pg_query.A_Const_Fval:
		if canonicalNumeric.MatchString(v.Fval.Fval) {
			return ""
		}
		return "a numeric literal in exponent, hexadecimal or abbreviated form"
	case *pg_query.A_Const_Bsval:
		return "a bit-string literal"
	}
	return "a constant of unknown form"
}

// constValue returns the text the server would store for the constant in a
// text column, and its kind.
func constValue(k *pg_query.A_Const) (string, ConstKind) {
	switch v := k.Val.(type) {
	case *pg_query.A_Const_Sval:
		return v.Sval.Sval, ConstString
	case *pg_query.A_Const_Ival:
		return strconv.FormatInt(int64(v.Ival.Ival), 10), ConstInteger
	case *pg_query.A_Const_Fval:
		return numericText(v.Fval.Fval), ConstNumeric
	case *pg_query.A_Const_Boolval:
		if v.Boolval.Boolval {
			return "true", ConstBoolean
		}
		return "false", ConstBoolean
	}
	return "", 0
}

// numericText returns the text PostgreSQL's numeric type gives the
// numeric literal s (as written, with a folded minus sign). Of the forms
// that are encrypted at all (canonicalNumeric; constProblem refuses the
// others), only a negative zero reads otherwise: numeric has no negative
// zero, so -0.0 is 0.0.
func numericText(s string) string {
	if rest, ok := strings.CutPrefix(s, "-"); ok && strings.Trim(rest, "0.") == "" {
		return rest
	}
	return s
}

// scan runs PostgreSQL's lexer over the text once.
func (p *planner) scan() []*pg_query.ScanToken {
	if !p.scanned {
		p.scanned = true
		if r, err := pg_query.Scan(p.sql); err == nil {
			p.tokens = r.Tokens
		}
	}
	return p.tokens
}

// constExtent returns the byte range of the constant's tokens starting at
// loc: the string token (with a UESCAPE clause), the number with its folded
// minus signs, or the boolean keyword.
func (p *planner) constExtent(loc int32) (int, int, bool) {
	toks := p.scan()
	i := sort.Search(len(toks), func(i int) bool { return toks[i].Start >= loc })
	if i == len(toks) || toks[i].Start != loc {
		return 0, 0, false
	}
	start := int(loc)
	for i < len(toks) && toks[i].Token == pg_query.Token_ASCII_45 { // '-' folded into the constant
		i++
	}
	if i == len(toks) {
		return 0, 0, false
	}
	t := toks[i]
	switch t.Token {
	case pg_query.Token_SCONST, pg_query.Token_ICONST, pg_query.Token_FCONST,
		pg_query.Token_TRUE_P, pg_query.Token_FALSE_P:
		return start, int(t.End), true
	case pg_query.Token_USCONST:
		end := int(t.End)
		if i+2 < len(toks) && toks[i+1].Token == pg_query.Token_UESCAPE && toks[i+2].Token == pg_query.Token_SCONST {
			end = int(toks[i+2].End)
		}
		return start, end, true
	}
	return 0, 0, false
}

// literal builds the Literal of a bound constant site.
func (p *planner) literal(s *site) (Literal, bool) {
	start, end, ok := p.constExtent(s.loc)
	if !ok {
		p.stmt = s.stmt
		p.reject(ReasonUnencryptableValue, s.bindings[0].col, "a constant whose text could not be located", false, s.loc)
		return Literal{}, false
	}
	v, kind := constValue(s.konst)
	return Literal{Start: start, End: end, Value: v, Kind: kind}, true
}

// castProblem says why a cast to tn would not carry an encrypted value
// unchanged, or "". Only text and varchar without a length are accepted
// (array of them when array is true).
func castProblem(tn *pg_query.TypeName, array bool) string {
	if tn == nil {
		return "a cast to an unknown type"
	}
	ns := names(tn.Names)
	if len(ns) == 2 && ns[0] == "pg_catalog" {
		ns = ns[1:]
	}
	typ := ""
	if len(ns) == 1 {
		typ = ns[0]
	}
	desc := "a cast to " + typ
	if typ == "" {
		desc = "a cast to a user-defined type"
	}
	if tn.Setof || tn.PctType {
		return desc
	}
	if typ != "text" && typ != "varchar" {
		if typ == "bpchar" {
			return "a cast to char(n)"
		}
		return desc
	}
	if len(tn.Typmods) > 0 {
		return "a cast to " + typ + "(n)"
	}
	if (len(tn.ArrayBounds) > 0) != array {
		if array {
			return "a cast to " + typ + " where an array is expected"
		}
		return "a cast to an array type"
	}
	return ""
}
