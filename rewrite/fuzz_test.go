package rewrite

import (
	"strconv"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

var fuzzSeeds = []string{
	"INSERT INTO clients (first_name, email) VALUES ($1, $2) RETURNING id, email",
	"INSERT INTO clients VALUES (1, 'a', E'b\\'', $$c$$, U&'d\\0061t' UESCAPE '\\', -5, 1.5, true)",
	"INSERT INTO clients (email) VALUES ('a') ON CONFLICT (email) DO UPDATE SET phone = 'p', email = EXCLUDED.email",
	"UPDATE clients c SET email = $1, phone = o.phone FROM clients o WHERE c.email = 'x' AND o.id = c.id",
	"WITH x AS (INSERT INTO clients (email) VALUES ('a') RETURNING *) SELECT * FROM x WHERE email IN ('b', $1)",
	"SELECT email, count(*) FROM clients WHERE email = ANY(ARRAY['a', $1]) GROUP BY email ORDER BY 2",
	"SELECT * FROM clients a JOIN clients b USING (email) WHERE a.email = text 'x' OR b.email = CAST('y' AS varchar)",
	"COPY clients (email, phone) FROM STDIN WITH (FORMAT csv)",
	"COPY (SELECT email FROM clients WHERE email = 'x') TO STDOUT",
	"MERGE INTO clients c USING staging s ON c.email = 'k' WHEN NOT MATCHED THEN INSERT (email) VALUES ('v')",
	"PREPARE p AS SELECT * FROM clients WHERE email = $1; EXECUTE p('a'); DEALLOCATE p",
	"SELECT CASE email WHEN 'a' THEN phone END, COALESCE(email, 'z') FROM clients UNION SELECT 'x', 'y'",
	"DO $$ BEGIN INSERT INTO clients VALUES ('x'); END $$",
	"SELECT * FROM clients WHERE email = 'a'\n'b' AND phone LIKE 'c%'",
	"select * from clients where email = 'a';select 1",
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	pol := testPolicy(f)
	a := NewAnalyzer(pol, Options{CacheSize: 64})
	known := MapResolver(testRelations)
	// Every name is the clients table, without a column list.
	blind := func(RelName) Relation { return Relation{Kind: RelTable, Schema: "public", Name: "clients"} }
	f.Fuzz(func(t *testing.T, sql string) {
		an, err := a.Analyze(sql)
		if err != nil {
			return
		}
		_ = an.MayInvolvePolicy()
		for i, r := range []Resolver{known, blind} {
			p := an.Plan(r)
			_ = p.Check(false)
			for _, rj := range p.Rejections() {
				_ = rj.Error()
			}
			checkLiterals(t, pol, sql, p, i == 0)
		}
	})
}

// checkLiterals verifies that the plan's literals are ordered, in range, and
// that replacing them gives text that parses and denotes the replacements.
func checkLiterals(t *testing.T, pol *Policy, sql string, p *Plan, check bool) {
	lits := p.Literals()
	if len(lits) == 0 {
		return
	}
	repl := make([]string, len(lits))
	prev := 0
	for i, l := range lits {
		if l.Start < prev || l.End <= l.Start || l.End > len(sql) {
			t.Fatalf("literal %d at %d-%d (prev end %d, len %d)", i, l.Start, l.End, prev, len(sql))
		}
		prev = l.End
		repl[i] = "r'" + strconv.Itoa(i) + `\`
	}
	out, err := p.Rewrite(sql, repl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg_query.Parse(out); err != nil {
		t.Fatalf("rewritten text does not parse: %v\nin:  %q\nout: %q", err, sql, out)
	}
	// Analysed again with the same resolution, the rewritten text has the
	// replacements where the literals were.
	if !check {
		return
	}
	an, err := NewAnalyzer(pol, Options{CacheSize: -1}).Analyze(out)
	if err != nil {
		t.Fatal(err)
	}
	lits2 := an.Plan(MapResolver(testRelations)).Literals()
	if len(lits2) != len(repl) {
		t.Fatalf("rewritten text has %d literals, want %d\nin:  %q\nout: %q", len(lits2), len(repl), sql, out)
	}
	for i, l := range lits2 {
		if l.Value != repl[i] || l.Column != lits[i].Column {
			t.Fatalf("literal %d: %q for %s, want %q for %s\nin:  %q\nout: %q", i, l.Value, l.Column, repl[i], lits[i].Column, sql, out)
		}
	}
}
