package rewrite

import (
	"errors"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestLiteralForms(t *testing.T) {
	a := newTestAnalyzer(t)
	cases := []struct {
		lit   string // literal as written after "email = "
		token string // expected SQL[Start:End]
		value string
		kind  ConstKind
	}{
		{`'plain'`, `'plain'`, "plain", ConstString},
		{`'it''s'`, `'it''s'`, "it's", ConstString},
		{`''`, `''`, "", ConstString},
		{`E'tab\there\\ \'q\''`, `E'tab\there\\ \'q\''`, "tab\there\\ 'q'", ConstString},
		{`e'\x41\101\u00e9'`, `e'\x41\101\u00e9'`, "AAé", ConstString},
		{`U&'d\0061t\+000061'`, `U&'d\0061t\+000061'`, "data", ConstString},
		{`U&'d!0061t' UESCAPE '!'`, `U&'d!0061t' UESCAPE '!'`, "dat", ConstString},
		{`$$dollar 'quoted'$$`, `$$dollar 'quoted'$$`, "dollar 'quoted'", ConstString},
		{`$tag$ $$ nested $tag$`, `$tag$ $$ nested $tag$`, " $$ nested ", ConstString},
		{"'con'\n  'tinued'", "'con'\n  'tinued'", "continued", ConstString},
		{`'x'::text`, `'x'`, "x", ConstString},
		{`CAST('x' AS character varying)`, `'x'`, "x", ConstString},
		{`text 'typed'`, `'typed'`, "typed", ConstString},
		{`'é€😀'`, `'é€😀'`, "é€😀", ConstString},
		{`42`, `42`, "42", ConstInteger},
		{`-42`, `-42`, "-42", ConstInteger},
		{`- 7`, `- 7`, "-7", ConstInteger},
		{`0x2A`, `0x2A`, "42", ConstInteger},
		{`1_000`, `1_000`, "1000", ConstInteger},
		{`12345678901`, `12345678901`, "12345678901", ConstNumeric},
		{`3.50`, `3.50`, "3.50", ConstNumeric},
		{`-0.5`, `-0.5`, "-0.5", ConstNumeric},
		{`true`, `true`, "true", ConstBoolean},
		{`FALSE`, `FALSE`, "false", ConstBoolean},
	}
	for _, tc := range cases {
		sql := "SELECT id FROM clients WHERE email = " + tc.lit + " AND id = 1"
		p := plan(t, a, sql)
		if len(p.Rejections()) > 0 {
			t.Errorf("%s: rejected: %v", tc.lit, p.Rejections()[0].Error())
			continue
		}
		lits := p.Literals()
		if len(lits) != 1 {
			t.Errorf("%s: %d literals", tc.lit, len(lits))
			continue
		}
		l := lits[0]
		if got := sql[l.Start:l.End]; got != tc.token || l.Value != tc.value || l.Kind != tc.kind {
			t.Errorf("%s: token %q value %q kind %v, want %q %q %v", tc.lit, got, l.Value, l.Kind, tc.token, tc.value, tc.kind)
		}
		out, err := p.Rewrite(sql, []string{"v1:siv:AAAA"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "'v1:siv:AAAA'") || strings.Contains(out, tc.value+"'") && tc.value != "" && tc.value != "x" {
			t.Errorf("%s: rewritten to %s", tc.lit, out)
		}
		if _, err := pg_query.Parse(out); err != nil {
			t.Errorf("%s: rewritten text does not parse: %v\n%s", tc.lit, err, out)
		}
	}
}

func TestUnencryptableLiterals(t *testing.T) {
	a := newTestAnalyzer(t)
	for _, lit := range []string{"1e3", ".5", "1_000.5", "B'1010'", "X'FF'", "'x'::varchar(3)", "'x'::char(3)", "'2020-01-01'::date", "date '2020-01-01'", "'x'::text[]"} {
		sql := "INSERT INTO clients (email) VALUES (" + lit + ")"
		p := plan(t, a, sql)
		if len(p.Literals()) != 0 || p.Check(true) == nil {
			t.Errorf("%s: literals %v, check %v", lit, p.Literals(), p.Check(true))
		}
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"":             "''",
		"abc":          "'abc'",
		"it's":         "'it''s'",
		`back\slash`:   `E'back\\slash'`,
		`'\`:           `E'''\\'`,
		"v1:siv:AB+/=": "'v1:siv:AB+/='",
		"multi\nline":  "'multi\nline'",
	} {
		if got := QuoteLiteral(in); got != want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", in, got, want)
		}
		// The parser must read it back as the same value.
		tree, err := pg_query.Parse("SELECT " + QuoteLiteral(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val.GetAConst().GetSval().GetSval()
		if got != in {
			t.Errorf("QuoteLiteral(%q) parses back as %q", in, got)
		}
	}
}

func TestRewrite(t *testing.T) {
	a := newTestAnalyzer(t)
	sql := "INSERT INTO clients (email, phone, first_name) VALUES ('a@x', E'5\\n', $$Ann$$); SELECT id FROM clients WHERE email IN ('b', U&'\\0063')"
	p := plan(t, a, sql)
	repl := []string{"E1", "E2", "it's", `b\s`, "E5"}
	got, err := p.Rewrite(sql, repl)
	if err != nil {
		t.Fatal(err)
	}
	want := `INSERT INTO clients (email, phone, first_name) VALUES ('E1', 'E2', 'it''s'); SELECT id FROM clients WHERE email IN (E'b\\s', 'E5')`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := p.Rewrite(sql, repl[:2]); !errors.Is(err, ErrRewrite) {
		t.Errorf("short replacements: %v", err)
	}
	if _, err := p.Rewrite(sql, []string{"a", "b", "c\x00", "d", "e"}); !errors.Is(err, ErrRewrite) {
		t.Errorf("NUL replacement: %v", err)
	}
	if _, err := Rewrite("x", []Literal{{Start: 0, End: 5}}, []string{"a"}); !errors.Is(err, ErrRewrite) {
		t.Errorf("out of range: %v", err)
	}
}

func TestRewriteKeepsTokensApart(t *testing.T) {
	a := newTestAnalyzer(t)
	// A typed literal directly after its type name: the replacement must
	// not fuse with the identifier (E'...' would read as "textE").
	sql := `SELECT id FROM clients WHERE email = text'x'`
	p := plan(t, a, sql)
	out, err := p.Rewrite(sql, []string{`a\b`})
	if err != nil {
		t.Fatal(err)
	}
	if out != `SELECT id FROM clients WHERE email = text E'a\\b'` {
		t.Errorf("got %s", out)
	}
	if _, err := pg_query.Parse(out); err != nil {
		t.Error(err)
	}
}

func TestLiteralStringHidesValue(t *testing.T) {
	l := Literal{Start: 1, End: 9, Value: "secret-value", Kind: ConstString, Use: UseWrite}
	for _, s := range []string{l.String(), l.GoString()} {
		if strings.Contains(s, "secret") {
			t.Errorf("%s shows the value", s)
		}
	}
}

// TestRewriteRoundTrip replaces literals of every form in every context and
// checks that the rewritten text parses and carries the replacements for
// the same columns.
func TestRewriteRoundTrip(t *testing.T) {
	a := newTestAnalyzer(t)
	forms := []string{`'a''b'`, `E'\\x\''`, `U&'\0041'`, `U&'!0041' UESCAPE '!'`, `$$d$$`, `$q$e$q$`, "'f'\n'g'", `-1`, `0x10`, `2.50`, `true`, `'h'::text`, `CAST('i' AS varchar)`, `text'j'`}
	templates := []string{
		"INSERT INTO clients (email, phone) VALUES ({L}, {L})",
		"INSERT INTO clients (email) VALUES ({L}) ON CONFLICT (email) DO UPDATE SET phone = {L}",
		"UPDATE clients SET phone={L} WHERE email={L}",
		"SELECT id FROM clients WHERE email IN ({L},{L}) OR email = ANY(ARRAY[{L}])",
		"WITH v(x) AS (VALUES ({L})) INSERT INTO clients (email) SELECT x FROM v",
		"DELETE FROM clients WHERE email={L};SELECT 1;INSERT INTO legacy_notes (body) VALUES ({L})",
		"MERGE INTO clients c USING (SELECT 1) s ON c.email = {L} WHEN NOT MATCHED THEN INSERT (email) VALUES ({L})",
	}
	pol := a.Policy()
	for _, tpl := range templates {
		for _, f := range forms {
			sql := strings.ReplaceAll(tpl, "{L}", f)
			p := plan(t, a, sql)
			if err := p.Check(false); err != nil {
				t.Errorf("%s: %v", sql, err)
				continue
			}
			if want := strings.Count(tpl, "{L}"); len(p.Literals()) != want {
				t.Errorf("%s: %d literals, want %d", sql, len(p.Literals()), want)
				continue
			}
			checkLiterals(t, pol, sql, p, true)
		}
	}
}
