package rewrite

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Fingerprint returns libpg_query's fingerprint of a statement: a hex
// string that identifies its parse tree with constants, parameters and
// names of prepared statements left out, so every run of one query of the
// application has one fingerprint, whatever its values. It is "" for text
// that does not parse.
//
// libpg_query leaves out constants (A_Const) but hashes the strings of
// some other nodes: a DO block's or a function's body, a trigger's
// arguments. A fingerprint of those would let whoever reads the audit log
// test guesses of a value, so every string token is emptied first.
func Fingerprint(sql string) string {
	fp, err := pg_query.Fingerprint(withoutStrings(sql))
	if err != nil {
		return ""
	}
	return fp
}

// withoutStrings returns sql with every string constant ('…', E'…',
// U&'…', $$…$$, B'…', X'…') emptied, as libpg_query's scanner finds them.
func withoutStrings(sql string) string {
	if !strings.ContainsAny(sql, "'$") {
		return sql
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		return sql // does not parse either
	}
	var b strings.Builder
	at := 0
	for _, tok := range res.Tokens {
		var empty string
		switch tok.Token {
		case pg_query.Token_SCONST, pg_query.Token_USCONST:
			empty = "''"
		case pg_query.Token_BCONST:
			empty = "b''"
		case pg_query.Token_XCONST:
			empty = "x''"
		default:
			continue
		}
		if int(tok.Start) < at || int(tok.End) > len(sql) {
			return sql
		}
		b.WriteString(sql[at:tok.Start])
		b.WriteString(empty)
		at = int(tok.End)
	}
	if at == 0 {
		return sql
	}
	b.WriteString(sql[at:])
	return b.String()
}
