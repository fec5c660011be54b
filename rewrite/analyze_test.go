package rewrite

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestRelations(t *testing.T) {
	a := newTestAnalyzer(t)
	cases := []struct {
		sql  string
		rels []string
		may  bool
	}{
		{"SELECT 1", nil, false},
		{"SELECT * FROM orders o JOIN staging s ON true", []string{"orders", "staging"}, false},
		{"SELECT * FROM orders WHERE id IN (SELECT client_id FROM clients)", []string{"clients", "orders"}, true},
		{"WITH x AS (SELECT * FROM public.clients) SELECT * FROM x", []string{"x", "public.clients"}, true},
		{"INSERT INTO clients (email) VALUES ($1) ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING id", []string{"clients"}, true},
		{"UPDATE orders SET note = 'x' FROM other.clients c WHERE c.id = orders.client_id", []string{"orders", "other.clients"}, true},
		{`DELETE FROM "Mixed Case"."Patients"`, []string{"Mixed Case.Patients"}, true},
		{"COPY clients FROM STDIN", []string{"clients"}, true},
		{"TRUNCATE clients, orders", []string{"clients", "orders"}, true},
		{"SELECT * FROM CLIENTS", []string{"clients"}, true},
		{`SELECT * FROM "CLIENTS"`, []string{"CLIENTS"}, false},
		{"EXECUTE p", nil, false},
		{"EXECUTE p('x')", nil, true},
		{"DO $$BEGIN PERFORM 1; END$$", nil, false},
		{"DO $$BEGIN UPDATE Clients SET email = 'x'; END$$", nil, true},
		{"SELECT my_func('x')", nil, false},
		{"ALTER INDEX notes RENAME TO clients", []string{"notes"}, true},
		{"ALTER TABLE notes RENAME TO notes2", []string{"notes"}, false},
		{"ALTER TYPE t RENAME ATTRIBUTE a TO b CASCADE", []string{"t"}, true},
		{"ALTER TYPE t ALTER ATTRIBUTE a TYPE text CASCADE", []string{"t"}, true},
		{"ALTER TYPE t ADD ATTRIBUTE a text", []string{"t"}, false},
	}
	for _, tc := range cases {
		an, err := a.Analyze(tc.sql)
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		var got []string
		for _, r := range an.Relations() {
			got = append(got, r.String())
		}
		if !slices.Equal(got, tc.rels) || an.MayInvolvePolicy() != tc.may {
			t.Errorf("%s: relations %q may %t, want %q %t", tc.sql, got, an.MayInvolvePolicy(), tc.rels, tc.may)
		}
	}
}

func TestExtraNames(t *testing.T) {
	a := NewAnalyzer(testPolicy(t), Options{ExtraNames: []string{"clients_2024"}})
	an, err := a.Analyze("INSERT INTO clients_2024 (email) VALUES ($1)")
	if err != nil {
		t.Fatal(err)
	}
	if !an.MayInvolvePolicy() {
		t.Fatal("extra name not watched")
	}
	// The resolver says the partition is the policy table.
	p := an.Plan(func(n RelName) Relation {
		return Relation{Kind: RelTable, Schema: "public", Name: "clients"}
	})
	if got := summary(an.SQL(), p); !slices.Equal(got, []string{"param $1 public.clients.email write"}) {
		t.Errorf("got %q", got)
	}
}

func TestParseError(t *testing.T) {
	a := newTestAnalyzer(t)
	for _, tc := range []struct {
		sql string
		may bool
	}{
		{"SELEC 1", false},
		{"INSERT INTO clients VALUES ('secret-value'", true},
		{"insert into CLIENTS values ('x' 'y')", true},
		{"SELECT 'unterminated", false},
		{"SELECT 1 /* clients */ FROM", true},
		{"SELECT 1;\x00 INSERT INTO clients VALUES ('x')", true},
	} {
		an, err := a.Analyze(tc.sql)
		var pe *ParseError
		if an != nil || !errors.As(err, &pe) || !errors.Is(err, ErrParse) {
			t.Fatalf("%q: got %v, %v", tc.sql, an, err)
		}
		if pe.MayInvolvePolicy != tc.may {
			t.Errorf("%q: MayInvolvePolicy %t", tc.sql, pe.MayInvolvePolicy)
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "'x'") {
			t.Errorf("%q: error shows statement text: %v", tc.sql, err)
		}
		if pe.Cursor < -1 || pe.Cursor > len(tc.sql) {
			t.Errorf("%q: cursor %d", tc.sql, pe.Cursor)
		}
		// Cached: the same error again without parsing.
		before := a.CacheStats().Hits
		if _, err2 := a.Analyze(tc.sql); err2 != err {
			t.Errorf("%q: second error %v", tc.sql, err2)
		}
		if a.CacheStats().Hits != before+1 {
			t.Errorf("%q: parse error not cached", tc.sql)
		}
	}
}

func TestCache(t *testing.T) {
	a := NewAnalyzer(testPolicy(t), Options{CacheSize: 2})
	an1, _ := a.Analyze("SELECT 1")
	an1b, _ := a.Analyze("SELECT 1")
	if an1 != an1b {
		t.Fatal("cache hit returned a new analysis")
	}
	a.Analyze("SELECT 2")
	a.Analyze("SELECT 1") // most recent now; SELECT 2 is the oldest
	a.Analyze("SELECT 3") // evicts SELECT 2
	if an, _ := a.Analyze("SELECT 1"); an != an1 {
		t.Error("recently used entry evicted")
	}
	st := a.CacheStats()
	if st.Len != 2 || st.Cap != 2 || st.Evictions != 1 || st.Hits != 3 || st.Misses != 3 {
		t.Errorf("stats %+v", st)
	}
	a.Analyze("SELECT 2")
	if st := a.CacheStats(); st.Misses != 4 {
		t.Errorf("evicted entry still cached: %+v", st)
	}

	long := "SELECT '" + strings.Repeat("x", 100) + "'"
	b := NewAnalyzer(testPolicy(t), Options{MaxCachedSQL: 50})
	b.Analyze(long)
	b.Analyze(long)
	if st := b.CacheStats(); st.Hits != 0 || st.Len != 0 {
		t.Errorf("long statement cached: %+v", st)
	}
	c := NewAnalyzer(testPolicy(t), Options{CacheSize: -1})
	x, _ := c.Analyze("SELECT 1")
	y, _ := c.Analyze("SELECT 1")
	if x == y || c.CacheStats() != (CacheStats{}) {
		t.Error("disabled cache still caches")
	}
}

func TestPlanMemo(t *testing.T) {
	a := newTestAnalyzer(t)
	an, _ := a.Analyze("SELECT id FROM clients WHERE email = $1")
	r := MapResolver(testRelations)
	p1 := an.Plan(r)
	if p2 := an.Plan(r); p2 != p1 {
		t.Error("same resolution re-planned")
	}
	// search_path now finds another clients table first.
	other := func(n RelName) Relation {
		return Relation{Kind: RelTable, Schema: "other", Name: "clients", Columns: []string{"id", "email"}}
	}
	p3 := an.Plan(other)
	if p3 == p1 || len(p3.Params()) != 0 {
		t.Errorf("different resolution: %v", summary(an.SQL(), p3))
	}
	if p4 := an.Plan(r); p4 == p3 || len(p4.Params()) != 1 {
		t.Error("back to the first resolution")
	}
	allocs := testing.AllocsPerRun(100, func() { an.Plan(r) })
	if allocs != 0 {
		t.Errorf("memoized Plan allocates %v times", allocs)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	a := newTestAnalyzer(t)
	sql := "SELECT id FROM clients WHERE email = $1"
	a.Analyze(sql)
	if allocs := testing.AllocsPerRun(100, func() { a.Analyze(sql) }); allocs != 0 {
		t.Errorf("cache hit allocates %v times", allocs)
	}
}

func TestConcurrentUse(t *testing.T) {
	a := NewAnalyzer(testPolicy(t), Options{CacheSize: 16})
	r := MapResolver(testRelations)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				sql := fmt.Sprintf("SELECT id FROM clients WHERE email = $1 AND id = %d", (i+g)%40)
				an, err := a.Analyze(sql)
				if err != nil {
					t.Error(err)
					return
				}
				if p := an.Plan(r); len(p.Params()) != 1 {
					t.Errorf("params %v", p.Params())
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestNewPolicy(t *testing.T) {
	if _, err := NewPolicy([]ColumnSpec{{Table: "t", Column: "c"}, {Schema: "public", Table: "t", Column: "c"}}); !errors.Is(err, ErrPolicy) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := NewPolicy([]ColumnSpec{{Table: "", Column: "c"}}); !errors.Is(err, ErrPolicy) {
		t.Errorf("empty table: %v", err)
	}
	if _, err := NewPolicy([]ColumnSpec{{Table: "t", Column: "c", Mode: 7}}); !errors.Is(err, ErrPolicy) {
		t.Errorf("bad mode: %v", err)
	}
	p := testPolicy(t)
	c := p.Lookup("public", "clients", "email")
	if c == nil || c.String() != "public.clients.email" || c.Mode() != Deterministic || c.AssociatedData() != "public.clients.email" || p.Columns()[c.Index()] != c {
		t.Errorf("lookup: %v", c)
	}
	if !p.HasTable("public", "clients") || p.HasTable("other", "clients") || p.Lookup("public", "clients", "id") != nil {
		t.Error("HasTable/Lookup")
	}
}

func TestRejectionMessages(t *testing.T) {
	a := newTestAnalyzer(t)
	cases := map[string]string{
		"SELECT id FROM clients WHERE email LIKE 'SECRET%'":         "column public.clients.email: LIKE cannot work on encrypted values (deterministic encryption supports only = and <>)",
		"SELECT id FROM clients WHERE phone = 'SECRET'":             "column public.clients.phone: = needs deterministic encryption (search: equality) but the column is randomized",
		"SELECT id FROM clients ORDER BY email":                     "column public.clients.email: ORDER BY cannot sort encrypted values",
		"SELECT lower(email) FROM clients":                          "column public.clients.email: function lower() cannot work on encrypted values",
		"INSERT INTO clients (email) VALUES (upper('SECRET'))":      "column public.clients.email: the value written comes from the result of upper() and would be stored unencrypted; only parameters, literals, NULL, DEFAULT and values of the same column can be written",
		"SELECT email FROM clients UNION SELECT 'SECRET'":           "column public.clients.email: returned through UNION, so the proxy cannot tell it is this column and decrypt it; return the column itself",
		"SELECT id FROM clients WHERE email > 'SECRET'":             "column public.clients.email: range comparison > cannot work on encrypted values (deterministic encryption supports only = and <>)",
		"INSERT INTO clients (email) VALUES ('SECRET'::varchar(9))": "column public.clients.email: a cast to varchar(n) cannot carry an encrypted value (only text and varchar without a length keep it intact)",
	}
	for sql, want := range cases {
		err := plan(t, a, sql).Check(false)
		var r *Rejection
		if !errors.As(err, &r) || !errors.Is(err, ErrUnsupported) {
			t.Fatalf("%s: %v", sql, err)
		}
		if err.Error() != want {
			t.Errorf("%s:\n got %s\nwant %s", sql, err, want)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: message shows a value", sql)
		}
		if r.SQLState() != "0A000" {
			t.Errorf("%s: SQLSTATE %s", sql, r.SQLState())
		}
	}
}

func TestCheckRelaxesReadsOnly(t *testing.T) {
	a := newTestAnalyzer(t)
	read := plan(t, a, "SELECT lower(email) FROM clients WHERE email = $1")
	if read.Check(false) == nil || read.Check(true) != nil {
		t.Error("read rejection not relaxable")
	}
	if len(read.Params()) != 1 {
		t.Error("relaxed plan lost its parameter")
	}
	write := plan(t, a, "UPDATE clients SET email = lower($1)")
	if write.Check(true) == nil {
		t.Error("write rejection relaxed")
	}
	if p := plan(t, a, "SELECT id FROM clients WHERE id = 1"); !p.Passthrough() || p.Check(false) != nil {
		t.Error("plain statement not passthrough")
	}
	if p := plan(t, a, "SELECT id FROM clients WHERE email = $1"); p.Passthrough() {
		t.Error("statement with a policy parameter is passthrough")
	}
}

func TestUnresolvedPolicyName(t *testing.T) {
	a := newTestAnalyzer(t)
	unknown := func(RelName) Relation { return Relation{} }
	an, _ := a.Analyze("INSERT INTO clients (email) VALUES ($1)")
	p := an.Plan(unknown)
	rs := p.Rejections()
	if len(rs) != 1 || rs[0].Reason != ReasonUnresolvedRelation || rs[0].Relaxable || p.Check(true) == nil {
		t.Errorf("write: %v", summary(an.SQL(), p))
	}
	an, _ = a.Analyze("SELECT * FROM clients")
	if rs := an.Plan(unknown).Rejections(); len(rs) != 1 || !rs[0].Relaxable {
		t.Errorf("read: %v", rs)
	}
	an, _ = a.Analyze("SELECT * FROM orders")
	if rs := an.Plan(unknown).Rejections(); len(rs) != 0 {
		t.Errorf("non-policy name: %v", rs)
	}
}

// TestMayMentionIsConservative: whenever analysis finds that a statement
// may involve the policy, the text scan must have said so too.
func TestMayMentionIsConservative(t *testing.T) {
	a := NewAnalyzer(testPolicyForMention(t), Options{})
	for _, sql := range []string{
		"select * from clients", "SELECT * FROM CLIENTS", `select * from "clients"`, "select * from public.Clients c",
		`select * from U&"cl\0069ents"`, "execute p('x')", "EXECUTE p($1)", "do $$ begin insert into clients values ('x'); end $$",
		"with x as (insert into clients (first_name) values ('a') returning 1) select * from x",
		"select 1", "select abalance from pgbench_accounts where aid = 5", "update pgbench_branches set bbalance = bbalance + 1",
		// Capitals outside ASCII are not folded, a quote inside a quoted
		// name is doubled: the text holds neither name as configured.
		`insert into "Ärzte" (name) values ('x')`, `INSERT INTO public."Ärzte" (name) VALUES ($1)`,
		`insert into "Odd ""Name""" (note) values ('x')`, `select note from public."Odd ""Name""" o`,
		// They change what statement names run, which the proxy follows.
		"prepare q as select 1", "DEALLOCATE q", "deallocate all", "discard all",
	} {
		an, err := a.Analyze(sql)
		if err != nil {
			continue
		}
		if an.MayInvolvePolicy() && !a.MayMention(sql) {
			t.Errorf("%q: MayInvolvePolicy but not MayMention", sql)
		}
	}
	if a.MayMention("select abalance from pgbench_accounts where aid = 5") {
		t.Error("pgbench's select is said to mention the policy")
	}
	for _, sql := range []string{"prepare q as select 1", "deallocate q", "discard all"} {
		if an, err := a.Analyze(sql); err != nil || !an.MayInvolvePolicy() {
			t.Errorf("%q: MayInvolvePolicy false (%v): the proxy would not follow the statement name", sql, err)
		}
	}
}

func testPolicyForMention(t testing.TB) *Policy {
	t.Helper()
	p, err := NewPolicy([]ColumnSpec{{Schema: "public", Table: "clients", Column: "first_name"},
		{Schema: "public", Table: "Ärzte", Column: "name"}, {Schema: "public", Table: `Odd "Name"`, Column: "note"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzMayMention: for any text that parses, MayInvolvePolicy implies
// MayMention.
func FuzzMayMention(f *testing.F) {
	for _, s := range []string{"select * from clients", `select * from U&"cl\0069ents"`, "execute p(1)", "select 1",
		`select * from "Ärzte"`, `select * from "Odd ""Name"""`} {
		f.Add(s)
	}
	a := NewAnalyzer(testPolicyForMention(f), Options{CacheSize: -1})
	f.Fuzz(func(t *testing.T, sql string) {
		an, err := a.Analyze(sql)
		if err == nil && an.MayInvolvePolicy() && !a.MayMention(sql) {
			t.Fatalf("%q: MayInvolvePolicy but not MayMention", sql)
		}
	})
}

// WritesCatalog finds a write to a system catalog wherever the statement
// puts it, and however the catalog's name is spelled.
func TestWritesCatalog(t *testing.T) {
	a := newTestAnalyzer(t)
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{"UPDATE pg_class SET relname = 'x' WHERE oid = 1", true},
		{"UPDATE pg_catalog.pg_trigger SET tgrelid = 1", true},
		{`UPDATE U&"pg!005fclass" UESCAPE '!' SET relname = 'x'`, true},
		{"WITH x AS (UPDATE pg_class SET relname = 'x' RETURNING 1) SELECT * FROM x", true},
		{"PREPARE p AS UPDATE pg_class SET relname = 'x'", true},
		{"EXPLAIN ANALYZE UPDATE pg_class SET relname = 'x'", true},
		{"COPY (UPDATE pg_class SET relname = 'x' RETURNING 1) TO STDOUT", true},
		{"CREATE TABLE t AS WITH x AS (UPDATE pg_class SET relname = 'x' RETURNING 1) SELECT * FROM x", true},
		{"CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC UPDATE pg_class SET relname = 'x'; END", true},
		{"COPY pg_trigger FROM STDIN", true},
		{"SELECT relname FROM pg_class", false},
		{"UPDATE clients SET email = (SELECT relname FROM pg_class LIMIT 1)", false},
		{"COPY pg_class TO STDOUT", false},
		{"UPDATE other.pg_class SET a = 1", false},
	} {
		if got := a.WritesCatalog(tc.sql); got != tc.want {
			t.Errorf("WritesCatalog(%q) = %t, want %t", tc.sql, got, tc.want)
		}
	}
}
