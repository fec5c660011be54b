package rewrite

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// otherStrings returns sql with the content of every string shapeOf finds
// replaced (longer, with a doubled quote, so every offset after it moves),
// or false when shapeOf does not take sql.
func otherStrings(sql string) (string, bool) {
	_, spans, ok := shapeOf(sql)
	if !ok || len(spans) == 0 {
		return "", false
	}
	var b strings.Builder
	last := 0
	for i, s := range spans {
		b.WriteString(sql[last:s.start])
		fmt.Fprintf(&b, "'v%d''%s'", i, strings.Repeat("w", i+3))
		last = s.end
	}
	b.WriteString(sql[last:])
	return b.String(), true
}

// samePlans fails unless p and q plan the same statement: every field
// equal, with empty and nil slices alike.
func samePlans(t *testing.T, sql string, shaped, full *Plan) {
	t.Helper()
	norm := func(p *Plan) Plan {
		c := *p
		for _, s := range []any{&c.stmts, &c.params, &c.literals, &c.rejections, &c.notes, &c.columns, &c.qualified, &c.splices} {
			v := reflect.ValueOf(s).Elem()
			if v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
		}
		return c
	}
	if a, b := norm(shaped), norm(full); !reflect.DeepEqual(a, b) {
		t.Errorf("the plan by shape differs from the plan by parse of\n%s\nshape: %+v\nparse: %+v", sql, a, b)
	}
}

// checkShape plans a text of sql's shape with other strings twice, through
// a (which has analysed sql, so by shape) and through a parse, and fails
// unless both plans are the same.
func checkShape(t *testing.T, a *Analyzer, sql string) {
	t.Helper()
	other, ok := otherStrings(sql)
	if !ok {
		return
	}
	if _, err := a.Analyze(sql); err != nil {
		return
	}
	full, err := NewAnalyzer(a.pol, Options{CacheSize: -1}).Analyze(other)
	if err != nil {
		t.Errorf("%s parses, but not with other strings:\n%s\n%v", sql, other, err)
		return
	}
	an, err := a.Analyze(other)
	if err != nil {
		t.Fatal(err)
	}
	samePlans(t, other, an.Plan(MapResolver(testRelations)), full.Plan(MapResolver(testRelations)))
}

func TestShapeCache(t *testing.T) {
	a := newTestAnalyzer(t)
	const first = "INSERT INTO clients (first_name, email) VALUES ('ann', 'a@x.org')"
	const second = "INSERT INTO clients (first_name, email) VALUES ('bo''b', 'b@example.org')"
	plan(t, a, first)
	before := a.CacheStats()
	p := plan(t, a, second)
	after := a.CacheStats()
	if after.ShapeHits != before.ShapeHits+1 || after.Misses != before.Misses {
		t.Errorf("a text of a known shape was parsed: %+v then %+v", before, after)
	}
	got := summary(second, p)
	want := []string{
		`literal 'bo''b'="bo'b" public.clients.first_name write`,
		`literal 'b@example.org'="b@example.org" public.clients.email write`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}

	for _, tc := range []struct {
		name, sql string
		shaped    bool
	}{
		{"no strings", "SELECT 1", false},
		{"utility", "SET application_name = 'x'", false},
		{"backslash", "SELECT first_name FROM clients WHERE email = 'a\\'", false},
		{"continued", "SELECT first_name FROM clients WHERE email = 'a'\n'b'", false},
		{"UESCAPE", `INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ('a')`, false},
		{"dollar quote stays", "SELECT $$x$$, first_name FROM clients WHERE email = 'a'", true},
		{"select", "SELECT first_name FROM clients WHERE email = 'a'", true},
	} {
		a := newTestAnalyzer(t)
		plan(t, a, tc.sql)
		other, ok := otherStrings(tc.sql)
		if !ok {
			if tc.shaped {
				t.Errorf("%s: not shaped", tc.name)
			}
			continue
		}
		plan(t, a, other)
		if got := a.CacheStats().ShapeHits == 1; got != tc.shaped {
			t.Errorf("%s: by shape %t, want %t", tc.name, got, tc.shaped)
		}
		checkShape(t, a, tc.sql)
	}
}

// Invalid UTF-8 is not shaped: the parser refuses it, so a text with it must
// not take the plan of a valid one.
func TestShapeInvalidUTF8(t *testing.T) {
	if _, _, ok := shapeOf("SELECT first_name FROM clients WHERE email = 'a\xff'"); ok {
		t.Error("invalid UTF-8 shaped")
	}
}

// The escape string of U&'…' is a string of its own, which decides the
// value of the one before it: not moved.
func TestShapeUnicodeEscape(t *testing.T) {
	a := newTestAnalyzer(t)
	plan(t, a, "INSERT INTO clients (first_name) VALUES (U&'!0041' UESCAPE '!')")
	const other = "INSERT INTO clients (first_name) VALUES (U&'!0041' UESCAPE '#')"
	full, err := NewAnalyzer(a.pol, Options{CacheSize: -1}).Analyze(other)
	if err != nil {
		t.Fatal(err)
	}
	samePlans(t, other, plan(t, a, other), full.Plan(MapResolver(testRelations)))
}

// A whole-table function's argument is read for what it names: a plan
// built from it is not moved to another text.
func TestShapeConstContent(t *testing.T) {
	a := newTestAnalyzer(t)
	p := plan(t, a, "SELECT query_to_xml('SELECT 1', true, false, '')")
	if !p.constContent {
		t.Fatal("constContent not set")
	}
	p = plan(t, a, "SELECT query_to_xml('SELECT email FROM clients', true, false, '')")
	if len(p.Rejections()) == 0 {
		t.Error("a query naming a policy table in a string was planned by the shape of one that did not")
	}
}

// FuzzShape: the strings shapeOf leaves out of a shape are exactly the
// '…' string constants PostgreSQL's own lexer (libpg_query's scanner)
// finds there, so two texts of one shape differ in string constants only.
func FuzzShape(f *testing.F) {
	for _, s := range []string{
		"INSERT INTO clients (first_name) VALUES ('a''b')",
		"SELECT 'a' -- 'b'\n, /* 'c' /* 'd' */ */ 'e', \"x'y\", $1, $$'$$, E'q', U&'!0041' UESCAPE '!', B'01', N'n', text'x'",
		"SELECT 'a'\n'b'",
		"select $a$ ' $a$, 'x'",
		"SELECT x'1f', 'y'",
		"SELECT 1'x'",
		"SELECT 'unterminated",
		"SELECT \"unterminated",
		"SELECT /* unterminated 'x'",
		"SELECT 'a' /* c */ 'b'",
		"SELECT a$b, 'c'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		_, spans, ok := shapeOf(sql)
		if !ok {
			return
		}
		res, err := pg_query.Scan(sql)
		if err != nil {
			return // the server refuses it too; not cached (parse error)
		}
		var want []span
		for _, tk := range res.Tokens {
			if tk.Token != pg_query.Token_SCONST || int(tk.Start) >= len(sql) || sql[tk.Start] != '\'' {
				continue
			}
			want = append(want, span{int(tk.Start), int(tk.End)})
		}
		if !reflect.DeepEqual(spans, want) && !(len(spans) == 0 && len(want) == 0) {
			t.Fatalf("%q: shapeOf strings %v, PostgreSQL's lexer %v", sql, spans, want)
		}
	})
}
