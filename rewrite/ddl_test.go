package rewrite

import (
	"strings"
	"testing"
)

// DDL on policy tables (#10): values a statement stores in the catalog are
// encrypted where that is exactly right and refused otherwise, never
// relaxed. Also: values with a second role (grouped before a randomized
// write), and functions that reach past the proxy.
func TestDDL(t *testing.T) {
	runCases(t, []planCase{
		{"default is a write", "ALTER TABLE clients ALTER COLUMN phone SET DEFAULT '5'", []string{`literal '5'="5" public.clients.phone write`}},
		{"default expression", "ALTER TABLE clients ALTER COLUMN phone SET DEFAULT upper('x')", []string{`reject plaintext_write public.clients.phone`}},
		{"plain default", "ALTER TABLE clients ALTER COLUMN id SET DEFAULT 0", nil},
		{"check on randomized", "ALTER TABLE clients ADD CHECK (phone <> 'x')", []string{`reject randomized_equality public.clients.phone`}},
		{"check on deterministic", "ALTER TABLE clients ADD CHECK (email <> 'x')", []string{`literal 'x'="x" public.clients.email compare`}},
		{"partial index", "CREATE INDEX ON clients (id) WHERE email = 'x'", []string{`literal 'x'="x" public.clients.email compare`}},
		{"expression index", "CREATE INDEX ON clients ((phone || 'x'))", []string{`reject operator public.clients.phone`}},
		{"unique randomized", "CREATE UNIQUE INDEX ON clients (phone)", []string{`reject schema_change public.clients.phone`}},
		{"unique deterministic", "CREATE UNIQUE INDEX ON clients (email)", nil},
		{"row security", "CREATE POLICY p ON clients USING (email = current_user)", []string{`reject incomparable public.clients.email`}},
		{"trigger args", "CREATE TRIGGER t BEFORE INSERT ON clients FOR EACH ROW EXECUTE FUNCTION f('x')", []string{`reject schema_change`}},
		{"trigger when", "CREATE TRIGGER t BEFORE INSERT ON clients FOR EACH ROW WHEN (NEW.email = 'x') EXECUTE FUNCTION f()", []string{`literal 'x'="x" public.clients.email compare`, `reject schema_change`}},
		{"trigger on policy table", "CREATE TRIGGER t BEFORE INSERT ON clients FOR EACH ROW EXECUTE FUNCTION f()", []string{`reject schema_change`}},
		{"trigger elsewhere", "CREATE TRIGGER t BEFORE INSERT ON workspaces FOR EACH ROW EXECUTE FUNCTION f('x')", nil},
		{"new trigger function", "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.first_name := 'x'; RETURN NEW; END$$", nil},
		{"trigger function naming a policy table", "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO clients (first_name) VALUES (NEW.x); RETURN NEW; END$$", []string{`reject opaque_code`}},
		{"replaced trigger function (refused by the proxy from its catalog)", "CREATE OR REPLACE FUNCTION f() RETURNS pg_catalog.trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$", nil},
		{"replaced trigger function running dynamic SQL", "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN EXECUTE 'select 1'; RETURN NEW; END$$", []string{`reject opaque_code`}},
		{"replaced plain function", "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$SELECT 1$$", nil},
		{"trigger function made in a DO block", "DO $$BEGIN CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $b$BEGIN RETURN NEW; END$b$; END$$", []string{`reject opaque_code`}},
		{"statement names changed in a DO block", "DO $$BEGIN DEALLOCATE p; PREPARE p AS SELECT 1; END$$", []string{`reject opaque_code`}},
		{"statement names changed in a function", "CREATE FUNCTION g() RETURNS void LANGUAGE sql AS $$DISCARD ALL$$", []string{`reject opaque_code`}},
		{"trigger made in a function", "CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $$BEGIN CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW EXECUTE FUNCTION f(); END$$", []string{`reject opaque_code`}},
		{"rename table", "ALTER TABLE clients RENAME TO c2", []string{`reject schema_change`}},
		{"rename column", "ALTER TABLE clients RENAME COLUMN phone TO p2", []string{`reject schema_change public.clients.phone`}},
		{"rename plain column", "ALTER TABLE clients RENAME COLUMN id TO id2", nil},
		{"type using", "ALTER TABLE clients ALTER COLUMN phone TYPE varchar(20)", []string{`reject cast public.clients.phone`}},
		{"view", "CREATE VIEW v AS SELECT id FROM clients", []string{`reject schema_change`}},
		{"generated", "ALTER TABLE clients ADD COLUMN g text GENERATED ALWAYS AS (phone) STORED", []string{`reject operator public.clients.phone`}},
		{"dblink", "SELECT dblink_exec('dbname=x', $1)", []string{"reject whole_table"}},
		{"query_to_xml of a policy table", "SELECT query_to_xml('select phone from clients', true, false, '')", []string{"reject whole_table"}},
		{"query_to_xml elsewhere", "SELECT query_to_xml('select 1', true, false, '')", nil},
		{"distinct before a randomized write", "INSERT INTO clients (phone) SELECT DISTINCT x FROM (VALUES ('a'), ('a')) v(x)", []string{"reject randomized_grouping public.clients.phone", "reject randomized_grouping public.clients.phone"}},
		{"union before a randomized write", "INSERT INTO clients (phone) SELECT $1 UNION SELECT $2", []string{"reject randomized_grouping public.clients.phone", "reject randomized_grouping public.clients.phone"}},
		{"union before a deterministic write", "INSERT INTO clients (email) SELECT 'a' UNION SELECT 'b'", []string{`literal 'a'="a" public.clients.email write`, `literal 'b'="b" public.clients.email write`}},
		{"like including defaults", "CREATE TABLE copy1 (LIKE clients INCLUDING ALL)", []string{"reject schema_change"}},
		{"like excluding defaults", "CREATE TABLE copy2 (LIKE clients)", nil},
		{"child then its use", "CREATE TABLE kid () INHERITS (clients); INSERT INTO kid (phone) VALUES ('x')", []string{"reject schema_change", "note unknown_relation kid write"}},
		{"attach then the parent's use", "ALTER TABLE p ATTACH PARTITION clients FOR VALUES IN (1); SELECT * FROM p", []string{"reject schema_change", "note unknown_relation p"}},
		{"renamed by a column alias", "SELECT 1 FROM clients AS c(a, b, cc, d, e) WHERE c.email = 'x'", []string{"reject ambiguous_column public.clients.email"}},
		{"child then its DDL", "CREATE TABLE n3 () INHERITS (clients); ALTER TABLE n3 ALTER phone SET DEFAULT 'x'", []string{"reject schema_change"}},
		{"policy table made a child", "ALTER TABLE clients INHERIT base", []string{"reject schema_change"}},
		{"policy table made a partition", "CREATE TABLE clients PARTITION OF p FOR VALUES IN (1)", []string{"reject schema_change"}},
		{"partition of a plain table", "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)", nil},
		{"rename through ALTER INDEX", "ALTER INDEX clients RENAME TO c2", []string{"reject schema_change"}},
		{"rename into a policy name through ALTER VIEW", "ALTER VIEW v RENAME TO legacy_notes", []string{"reject schema_change", "note unknown_relation v write"}},
		{"attribute rename through ALTER TYPE", "ALTER TYPE clients RENAME ATTRIBUTE extra TO phone", []string{"reject schema_change public.clients.phone"}},
		{"column rename through ALTER VIEW", "ALTER VIEW clients RENAME COLUMN phone TO p2", []string{"reject schema_change public.clients.phone"}},
		{"default through ALTER VIEW", "ALTER VIEW clients ALTER COLUMN id SET DEFAULT 0", nil},
		{"moved into a policy name", "ALTER TABLE other.x SET SCHEMA public", []string{"note unknown_relation other.x write"}},
		{"moved onto a policy table's name", "ALTER TABLE other.legacy_notes SET SCHEMA public", []string{"reject unresolved_relation", "reject schema_change", "note unknown_relation other.legacy_notes write"}},
		{"rename into a policy name", "ALTER INDEX notes9 RENAME TO legacy_notes", []string{"reject schema_change", "note unknown_relation notes9 write"}},
		{"typed policy table", "ALTER TABLE legacy_notes OF t12", []string{"reject schema_change"}},
		{"policy table created typed", "CREATE TABLE legacy_notes OF t12", []string{"reject schema_change"}},
		{"type rename cascade", "ALTER TYPE t12 RENAME ATTRIBUTE body TO b2 CASCADE", []string{"reject schema_change"}},
		{"type retype cascade", "ALTER TYPE t12 ALTER ATTRIBUTE body TYPE name CASCADE", []string{"reject schema_change"}},
		{"schema elements", "CREATE SCHEMA s CREATE VIEW v AS SELECT phone FROM public.clients", []string{"reject schema_change"}},
		{"schema elements elsewhere", "CREATE SCHEMA s CREATE TABLE t (a int)", nil},
		{"create table defaults", "CREATE TABLE clients (phone text DEFAULT 'x', email text CHECK (email <> 'y'))", []string{`literal 'x'="x" public.clients.phone write`, `reject schema_change public.clients.email`}},
	})
}

// Unqualified names that may denote a policy table, when relations of that
// name exist in more than one schema, are written out with the schema they
// resolved to.
func TestQualify(t *testing.T) {
	a := newTestAnalyzer(t)
	shadowed := map[RelName]Relation{}
	for k, v := range testRelations {
		v.Shadowed = true
		shadowed[k] = v
	}
	planShadowed := func(t *testing.T, a *Analyzer, sql string) *Plan {
		an, err := a.Analyze(sql)
		if err != nil {
			t.Fatal(err)
		}
		return an.Plan(MapResolver(shadowed))
	}
	if p := plan(t, a, "SELECT phone FROM clients"); len(p.Qualifications()) != 0 {
		t.Errorf("qualified a name only one schema has: %v", p.Qualifications())
	}
	for _, tc := range []struct{ sql, want string }{
		{"SELECT phone FROM clients WHERE email = $1", `SELECT phone FROM "public".clients WHERE email = $1`},
		{"INSERT INTO clients AS c (phone) VALUES ($1)", `INSERT INTO "public".clients AS c (phone) VALUES ($1)`},
		{"WITH clients AS (SELECT 1) SELECT * FROM clients", "WITH clients AS (SELECT 1) SELECT * FROM clients"},
		{"SELECT 1 FROM public.clients", "SELECT 1 FROM public.clients"},
		{"UPDATE ONLY clients SET phone = $1", `UPDATE ONLY "public".clients SET phone = $1`},
	} {
		p := planShadowed(t, a, tc.sql)
		if got := WithColumnLists(tc.sql, p.Insertions()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.sql, got, tc.want)
		}
		if strings.Contains(tc.want, `"public".`) {
			if p2 := planShadowed(t, a, tc.want); len(p2.Qualifications()) != 0 {
				t.Errorf("%s: qualified again", tc.want)
			}
		}
	}
}

// CREATE OR REPLACE FUNCTION … RETURNS trigger names the function it
// replaces, for the proxy to refuse when a trigger on a policy table runs
// one of that name; CREATE FUNCTION and functions of other types do not.
func TestTriggerFunction(t *testing.T) {
	az := newTestAnalyzer(t)
	for sql, want := range map[string]string{
		"CREATE OR REPLACE FUNCTION s.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$": "touch",
		`CREATE OR REPLACE FUNCTION "Touch"() RETURNS pg_catalog.trigger LANGUAGE plpgsql AS $$BEGIN END$$`:  "Touch",
		"CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$":              "",
		"CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$SELECT 1$$":                            "",
	} {
		p := plan(t, az, sql)
		if got := p.Statements()[0].TriggerFunction; got != want {
			t.Errorf("%s: TriggerFunction %q, want %q", sql, got, want)
		}
	}
}
