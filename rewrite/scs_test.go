package rewrite

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestLiteralsDependOnSCS(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{`SELECT 'a'`, false},
		{`SELECT 'C:\path'`, false}, // the backslash changes the value, not where the literal ends
		{`SELECT 'a\\'`, false},     // off: one escaped backslash, then the same quote
		{`SELECT 'a\'`, true},       // off: the quote is escaped and the literal goes on
		{`SELECT 1 WHERE 'q' = 'a\' -- ' UNION ALL SELECT 2, 'x' --`, true},
		{`SELECT E'a\'b'`, false},                 // an escape string lexes the same either way
		{`SELECT N'a\'`, true},                    // N'…' is a plain literal
		{`SELECT text 'a\'`, true},                // so is a typed one
		{`SELECT U&'a\' , 'b'`, false},            // U&'…' takes no backslash escapes
		{`SELECT B'01', X'1\'`, false},            // nor bit strings (the server rejects this one)
		{`SELECT $$a\'$$, 'b'`, false},            // dollar quotes
		{`SELECT $t$ 'a\' $t$`, false},            // a quote inside a dollar quote
		{`SELECT $1, 'a\'`, true},                 // a parameter is no dollar quote
		{`SELECT "a\'" FROM t`, false},            // a quoted identifier
		{`SELECT 1 -- 'a\'` + "\n", false},        // a comment
		{`SELECT /* /* 'a\' */ 'b\' */ 1`, false}, // nested comments
		{`SELECT /* 'a\' */ 'b\'`, true},
		{`SELECT a$b'c\'`, true}, // a name with $ in it, then a typed literal
		{`SELECT 'it''s\'`, true},
	} {
		if got := LiteralsDependOnSCS(c.sql); got != c.want {
			t.Errorf("%s: %v, want %v", c.sql, got, c.want)
		}
	}
}

// FuzzPlainLiterals: the literals the scan finds are those libpg_query's
// scanner finds, where it accepts the text.
func FuzzPlainLiterals(f *testing.F) {
	for _, s := range []string{
		`SELECT 'a', E'b\'', N'c', text 'd', U&'e', B'01', X'1f', $$f$$, $t$g$t$, 'h''i', 'x' /* 'y' */ "z'", 'a\'`,
		`INSERT INTO t VALUES ('a' -- c` + "\n" + `, $1, 'b''')`,
		`SELECT /* /* */ 'x' */ 'y'`, `SELECT a$b'c'`, `SELECT 1e'x'`, `SELECT e'x'`, `SELECT u&"a" uescape '!'`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if strings.IndexByte(sql, 0) >= 0 {
			return // the C scanner stops at NUL; the proxy refuses such text
		}
		res, err := pg_query.Scan(sql)
		if err != nil {
			return
		}
		var want []span
		for _, tk := range res.Tokens {
			if tk.Token == pg_query.Token_SCONST && sql[tk.Start] == '\'' {
				want = append(want, span{int(tk.Start), int(tk.End)})
			}
		}
		got := plainLiterals(sql)
		if len(got) != len(want) {
			t.Fatalf("%q: found %v, the scanner %v", sql, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: found %v, the scanner %v", sql, got, want)
			}
		}
	})
}
