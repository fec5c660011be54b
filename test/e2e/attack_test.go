package e2e

// The attacker's suite (#10): statements built to make PostgreSQL see a
// value of a policy column differently from the proxy. Each case marks the
// value that must never reach the server in plaintext with SECRET (made
// unique per case), runs with log_statement = all, and checks afterwards:
//
//   - the marker never crossed the wire to PostgreSQL (a tap records every
//     byte the proxy sends), is not in the server log, and is nowhere in a
//     pg_dump of the database (tables, defaults, constraints, indexes,
//     views, policies, triggers);
//   - no result row the client received holds an envelope;
//   - the session is still usable, or was ended with an error.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// flight is messages sent together (a pipeline); the client then reads
// until every Query and Sync among them is answered.
type flight []pgproto3.FrontendMessage

// q is a simple-protocol Query.
func q(sql string) pgproto3.FrontendMessage { return &pgproto3.Query{String: sql} }

// ext is Parse, Bind and Execute of sql (unnamed) with text parameters;
// follow it with sync().
func ext(sql string, params ...string) []pgproto3.FrontendMessage {
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	return []pgproto3.FrontendMessage{
		&pgproto3.Parse{Query: sql},
		&pgproto3.Bind{Parameters: vals},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
	}
}

func syncMsg() pgproto3.FrontendMessage { return &pgproto3.Sync{} }

// fl builds a flight from messages and message lists.
func fl(parts ...any) flight {
	var f flight
	for _, p := range parts {
		switch x := p.(type) {
		case pgproto3.FrontendMessage: // *directly too
			f = append(f, x)
		case []pgproto3.FrontendMessage:
			f = append(f, x...)
		case string:
			f = append(f, q(x))
		default:
			panic(fmt.Sprintf("fl: %T", p))
		}
	}
	return f
}

// setConfigOID is pg_catalog.set_config(text, text, boolean).
const setConfigOID = 2078

func callSetConfig(name, value string) pgproto3.FrontendMessage {
	return &pgproto3.FunctionCall{Function: setConfigOID, ArgFormatCodes: []uint16{0},
		Arguments: [][]byte{[]byte(name), []byte(value), []byte("false")}}
}

type attackCase struct {
	name    string
	ddl     string   // run directly before the proxy session starts
	flights []flight // through the proxy, in order
	// plainOK: the statement legitimately sends the marker to a table that
	// is not a policy table (the one the proxy resolved); then only the
	// policy columns are checked for plaintext.
	plainOK bool
	// storedOnly: a documented limit lets the marker reach the server (a
	// schema change by another connection inside a REPEATABLE READ
	// transaction); the case installs a guard constraint, and only the
	// database is checked for it.
	storedOnly bool
	// maxAge, when set, is the proxy's CatalogMaxAge.
	maxAge time.Duration
	// echoes: the server legitimately returns envelopes the proxy wrote
	// (EXPLAIN, current_query(), pg_stats): ciphertext, never plaintext,
	// and a documented limit; only the leak checks apply.
	echoes bool
	// outputs: also look for envelopes in COPY data and in the texts of
	// errors and notices the client receives.
	outputs bool
	// check, when set, runs afterwards on the direct connection.
	check func(t *testing.T, f *encFixture)
}

// columnType fails unless table.column (in public) has type typ: a
// statement that should have been refused changed it.
func columnType(table, column, typ string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var got string
		err := f.direct.QueryRow(testCtx(t), "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = ('public.'||$1)::regclass AND attname = $2", table, column).Scan(&got)
		if err != nil || got != typ {
			t.Errorf("public.%s.%s: type %q (%v), want %s: the table or column was changed", table, column, got, err, typ)
		}
	}
}

// directly is a step of a flight run on a direct connection to
// PostgreSQL (another connection, not through the proxy).
type directly struct{ pgproto3.Query }

func direct(sql string) *directly { return &directly{pgproto3.Query{String: sql}} }

// noTable fails when relation name exists: a statement that should have
// been refused created it.
func noTable(name string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var n int
		if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM pg_class WHERE relname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s was created: the statement copied encrypted columns out of the policy", name)
		}
	}
}

// envelopeIn finds an envelope anywhere in a value (XML, JSON, text).
var envelopeIn = regexp.MustCompile(`v[0-9]+:(siv:)?[A-Za-z0-9+/]{16}`)

// insClients writes v (SQL) as clients.first_name.
func insClients(v string) string {
	return "INSERT INTO clients (workspace_id, first_name, last_name) SELECT id, " + v + ", 'x' FROM workspaces"
}

// tenantLikePublic gives tenant.clients the columns public.clients has, so
// a statement meant for one runs on the other.
const tenantLikePublic = "; ALTER TABLE tenant.clients ADD workspace_id uuid, ADD last_name text"

// A function that changes a setting when called, as a user function may.
const sneakyFunction = `; CREATE FUNCTION sneaky(name text, val text) RETURNS text LANGUAGE sql AS $$ SELECT set_config(name, val, false) $$`

// A trigger function that stores its first argument in first_name.
const argTrigger = `; CREATE FUNCTION put_arg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.first_name := TG_ARGV[0]; RETURN NEW; END $$`

func attackCases() []attackCase {
	return []attackCase{
		// 1. Settings changed behind the proxy's back: the search_path.
		{name: "path/pipelined_set_config_query", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("SELECT set_config('search_path', 'public', false)", insClients("'SECRET'")),
		}},
		{name: "path/pipelined_set_config_extended", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(ext("SELECT set_config('search_path', 'public', false)"), ext(insClients("'SECRET'")), syncMsg()),
		}},
		{name: "path/pipelined_set_config_param", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(ext("SELECT set_config('search_path', 'public', false)"), ext(insClients("$1"), "SECRET"), syncMsg()),
		}},
		{name: "path/same_query_qualified_call", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("SELECT pg_catalog.\"set_config\"('search_path', 'public', false); " + insClients("'SECRET'")),
		}},
		{name: "path/function_call_message", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(callSetConfig("search_path", "public"), q(insClients("'SECRET'"))),
		}},
		{name: "path/function_call_message_then_wait", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(callSetConfig("search_path", "public")),
			fl(insClients("'SECRET'")),
			fl(ext(insClients("$1"), "SECRET"), syncMsg()),
		}},
		{name: "path/user_function", ddl: tenantLikePublic + sneakyFunction, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("SELECT sneaky('search_path', 'public')"),
			fl(insClients("'SECRET'")),
		}},
		{name: "path/user_function_same_query", ddl: tenantLikePublic + sneakyFunction, plainOK: true, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("SELECT sneaky('search_path', 'public'); " + insClients("'SECRET'")),
		}},
		{name: "path/temp_table_shadow", plainOK: true, flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text)"),
			fl("SELECT set_config('search_path', 'public', false)", "INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "path/pipelined_set_search_path", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("SET search_path = public", insClients("'SECRET'")),
		}},
		// 1. Settings: how literals are lexed.
		{name: "lex/pipelined_set_config_scs", flights: []flight{
			fl("SELECT set_config('standard_conforming_strings', 'off', false)",
				`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`),
		}},
		{name: "lex/function_call_scs", flights: []flight{
			fl(callSetConfig("standard_conforming_strings", "off"),
				q(`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`)),
		}},
		{name: "lex/user_function_scs", ddl: sneakyFunction, flights: []flight{
			fl("SELECT sneaky('standard_conforming_strings', 'off')",
				`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`),
		}},
		{name: "lex/extended_set_config_scs", flights: []flight{
			fl(ext("SELECT set_config('standard_conforming_strings', 'off', false)"),
				ext(`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`), syncMsg()),
		}},
		{name: "lex/set_spacing", flights: []flight{
			fl("SET\tstandard_conforming_strings\n=\toff",
				`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`),
		}},
		{name: "lex/set_names_spacing", flights: []flight{
			fl("SET  NAMES 'SJIS'", "INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "lex/known_off_backslash", flights: []flight{
			fl("SET standard_conforming_strings = off"),
			fl(`INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`),
		}},
		// 2. DDL on policy tables.
		{name: "ddl/set_default", flights: []flight{fl("ALTER TABLE clients ALTER COLUMN first_name SET DEFAULT 'SECRET'")}},
		{name: "ddl/set_default_expr", flights: []flight{fl("ALTER TABLE clients ALTER COLUMN first_name SET DEFAULT upper('SECRET')")}},
		{name: "ddl/add_column_default", flights: []flight{fl("ALTER TABLE legacy_notes DROP COLUMN body, ADD COLUMN body text DEFAULT 'SECRET'")}},
		{name: "ddl/type_using", ddl: "; INSERT INTO legacy_notes (id) VALUES (1)", flights: []flight{fl("ALTER TABLE legacy_notes ALTER COLUMN body TYPE text USING 'SECRET'")}},
		{name: "ddl/type_using_concat", ddl: "; INSERT INTO legacy_notes (id) VALUES (1)", flights: []flight{fl("ALTER TABLE legacy_notes ALTER COLUMN body TYPE varchar USING coalesce(body, 'SECRET')")}},
		{name: "ddl/check", flights: []flight{fl("ALTER TABLE clients ADD CONSTRAINT c CHECK (first_name <> 'SECRET')")}},
		{name: "ddl/check_deterministic", flights: []flight{fl("ALTER TABLE clients ADD CHECK (email <> 'SECRET' OR email IS NULL)")}},
		{name: "ddl/partial_index", flights: []flight{fl("CREATE INDEX ON clients (id) WHERE first_name = 'SECRET'")}},
		{name: "ddl/partial_index_deterministic", flights: []flight{fl("CREATE INDEX ON clients (id) WHERE email = 'SECRET'")}},
		{name: "ddl/expression_index", flights: []flight{fl("CREATE INDEX ON clients ((first_name || 'SECRET'))")}},
		{name: "ddl/expression_index_plain_column", flights: []flight{fl("CREATE INDEX ON clients ((notes || 'x')) WHERE email IN ('SECRET')")}},
		{name: "ddl/row_security", flights: []flight{fl("CREATE POLICY p ON clients USING (first_name = 'SECRET')")}},
		{name: "ddl/row_security_check", flights: []flight{fl("CREATE POLICY p ON clients FOR INSERT WITH CHECK (email = 'SECRET')")}},
		{name: "ddl/alter_row_security", ddl: "; CREATE POLICY p ON clients USING (true)", flights: []flight{fl("ALTER POLICY p ON clients USING (first_name = 'SECRET')")}},
		{name: "ddl/view", flights: []flight{fl("CREATE VIEW v AS SELECT id FROM clients WHERE email = 'SECRET'")}},
		{name: "ddl/view_literal_column", flights: []flight{fl("CREATE VIEW v AS SELECT id, 'SECRET' AS first_name FROM clients")}},
		{name: "ddl/materialized_view", flights: []flight{fl("CREATE MATERIALIZED VIEW v AS SELECT id FROM clients WHERE first_name = 'SECRET'")}},
		{name: "ddl/rule", flights: []flight{fl("CREATE RULE r AS ON INSERT TO clients DO ALSO NOTIFY x")}},
		{name: "ddl/trigger_args", ddl: argTrigger, flights: []flight{
			fl("CREATE TRIGGER t BEFORE INSERT ON clients FOR EACH ROW EXECUTE FUNCTION put_arg('SECRET')"),
			fl(insClients("'y'")),
		}},
		{name: "ddl/trigger_when", ddl: argTrigger, flights: []flight{
			fl("CREATE TRIGGER t BEFORE INSERT ON clients FOR EACH ROW WHEN (NEW.first_name = 'SECRET') EXECUTE FUNCTION put_arg('z')"),
		}},
		{name: "ddl/generated_column", flights: []flight{fl("ALTER TABLE clients ADD COLUMN g text GENERATED ALWAYS AS (first_name || 'SECRET') STORED")}},
		{name: "ddl/domain_default", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{fl("CREATE DOMAIN d AS text DEFAULT 'SECRET'"), fl("ALTER TABLE legacy_notes ALTER body TYPE d")}},
		{name: "ddl/rename_table_then_write", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("ALTER TABLE legacy_notes RENAME TO notes2"),
			fl("INSERT INTO notes2 (body) VALUES ('SECRET')"),
		}},
		{name: "ddl/rename_column_then_write", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("ALTER TABLE legacy_notes RENAME COLUMN body TO b2"),
			fl("INSERT INTO legacy_notes (b2) VALUES ('SECRET')"),
		}},
		{name: "ddl/set_schema_then_write", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("ALTER TABLE legacy_notes SET SCHEMA tenant"),
			fl("INSERT INTO tenant.legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "ddl/rename_schema_then_write", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("ALTER SCHEMA public RENAME TO pub2"),
			fl("INSERT INTO pub2.legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "ddl/rename_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl("SELECT body FROM legacy_notes"),
			fl(direct("ALTER TABLE legacy_notes RENAME TO notes3; CREATE TABLE legacy_notes (id int, body text)")),
			// The next catalog check (at once here; at most CatalogMaxAge
			// later by default) finds the policy table's OID under its new
			// name.
			fl("INSERT INTO notes3 (body) VALUES ('SECRET')"),
			fl("INSERT INTO public.notes3 (body) VALUES ('SECRET')"),
		}},
		{name: "ddl/create_table_as", check: noTable("copy1"), flights: []flight{
			fl("CREATE TABLE copy1 AS SELECT body FROM legacy_notes"),
		}},
		{name: "ddl/select_into", check: noTable("copy2"), flights: []flight{fl("SELECT first_name INTO copy2 FROM clients WHERE email = 'SECRET'")}},
		{name: "ddl/create_table_as_execute", check: noTable("copy3"), flights: []flight{
			fl("PREPARE s AS SELECT email FROM clients"), fl("CREATE TABLE copy3 AS EXECUTE s"),
		}},
		// 3. One value, one role.
		{name: "role/cte_write_and_return", flights: []flight{
			fl("WITH v(x) AS (VALUES ('SECRET')), i AS (INSERT INTO legacy_notes (body) SELECT x FROM v) SELECT x FROM v"),
		}},
		{name: "role/cte_write_and_plain_column", flights: []flight{
			fl("WITH v(x) AS (SELECT 'SECRET'::text) INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT w.id, v.x, 'y', v.x FROM v, workspaces w"),
		}},
		{name: "role/cte_write_and_function", flights: []flight{
			fl("WITH v(x) AS (SELECT 'SECRET'::text) INSERT INTO legacy_notes (body) SELECT x FROM v WHERE length(x) > 2"),
		}},
		{name: "role/cte_write_and_like", flights: []flight{
			fl("WITH v(x) AS (SELECT $1::text) INSERT INTO legacy_notes (body) SELECT x FROM v WHERE x LIKE 'S%'"),
			fl(ext("WITH v(x) AS (SELECT $1::text) INSERT INTO legacy_notes (body) SELECT x FROM v WHERE x LIKE 'S%'", "SECRET"), syncMsg()),
		}},
		{name: "role/param_write_and_plain", flights: []flight{
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, $1, 'y', $1 FROM workspaces", "SECRET"), syncMsg()),
		}},
		{name: "role/param_compare_and_compare_plain", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = $1 AND $1 = 'SECRET'", "SECRET"), syncMsg()),
		}},
		{name: "role/values_compare_and_return", flights: []flight{
			fl("SELECT v.x FROM (VALUES ('SECRET')) v(x) WHERE v.x IN (SELECT email FROM clients)"),
		}},
		{name: "role/returning_expression", flights: []flight{
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1) RETURNING $1::text || ''", "SECRET"), syncMsg()),
		}},
		{name: "role/subquery_twice", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT s.x FROM (SELECT 'SECRET' AS x) s UNION ALL SELECT lower(s.x) FROM (SELECT 'SECRET' AS x) s"),
		}},
		{name: "role/update_from_values", ddl: "; INSERT INTO legacy_notes (id) VALUES (7)", flights: []flight{
			fl("UPDATE legacy_notes SET body = v.x FROM (VALUES ('SECRET')) v(x) WHERE legacy_notes.id = 7 RETURNING v.x"),
		}},
		// 4. Values parsed as PostgreSQL parses them.
		{name: "array/whitespace", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", "{\v SECRET\f}"), syncMsg()),
		}},
		{name: "array/quoted", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", `{"SECRET" , "a\"b"}`), syncMsg()),
		}},
		{name: "array/dimensions", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", `[1:1]={SECRET}`), syncMsg()),
		}},
		{name: "array/nested", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", `{{SECRET}}`), syncMsg()),
		}},
		{name: "array/malformed", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", `{SECRET`), syncMsg()),
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", `{"SECRET"x}`), syncMsg()),
		}},
		{name: "null/nullif_param", flights: []flight{
			fl(ext("INSERT INTO legacy_notes (body) VALUES (NULLIF($1, 'x'))", "SECRET"), syncMsg()),
		}},
		// 5. Whole-table functions.
		{name: "xml/table_to_xml", ddl: "; INSERT INTO legacy_notes (body) VALUES ('v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==')", flights: []flight{
			fl("SELECT table_to_xml('legacy_notes', true, false, '')"),
			fl("SELECT table_to_xml('public.legacy_notes'::regclass, true, false, '')"),
			fl("SELECT query_to_xml('select body from legacy_notes', true, false, '')"),
			fl("SELECT schema_to_xml('public', true, false, '')"),
			fl("SELECT database_to_xml(true, false, '')"),
			fl("BEGIN", "DECLARE c CURSOR FOR SELECT body FROM legacy_notes", "SELECT cursor_to_xml('c', 10, true, false, '')", "ROLLBACK"),
			fl("SELECT table_to_xmlschema('legacy_notes', true, false, '')"),
		}},
	}
}

func TestAttackSuite(t *testing.T) {
	runAttacks(t, 0, slices.Concat(attackCases(), attackCases2(), attackCases3()))
}

// attackParallel is how many attack cases run at once. Each waits mostly on
// PostgreSQL and pg_dump, so a few at a time use both cores.
const attackParallel = 4

// runAttacks runs cases as subtests of t, with markers numbered from base.
// Cases that change the cluster for everyone (ALTER SYSTEM, roles) or
// depend on timing run first, one at a time; the rest share attackParallel
// slots. Each case has its own database, proxy and marker, so they cannot
// see each other's values.
func runAttacks(t *testing.T, base int, cases []attackCase) {
	slots := make(chan struct{}, attackParallel)
	for i, c := range cases {
		marker := markerFor(base + i)
		t.Run(c.name, func(t *testing.T) {
			if clusterWide(c) {
				t.Cleanup(resetSystem)
			} else {
				t.Parallel()
				slots <- struct{}{}
				defer func() { <-slots }()
			}
			runAttack(t, c, marker)
		})
	}
}

// markerFor is the marker of the case runAttacks numbers n.
func markerFor(n int) string { return fmt.Sprintf("SECRET_%d_x", n) }

// caseMarkers gives a round's checks the marker of the running case (by
// its subtest name), so they can look for the very value the leak checks
// look for.
type caseMarkers map[string]string

// note records the markers runAttacks(t, base, cases) gives.
func (m caseMarkers) note(base int, cases []attackCase) {
	for i, c := range cases {
		m[c.name] = markerFor(base + i)
	}
}

func (m caseMarkers) of(t *testing.T) string {
	name := t.Name()[strings.IndexByte(t.Name(), '/')+1:]
	mk, ok := m[name]
	if !ok {
		t.Fatalf("no marker for case %q", name)
	}
	return mk
}

// clusterWide reports whether a case touches what every database shares
// (configuration, roles) or relies on timing, and so must run alone.
func clusterWide(c attackCase) bool {
	if c.maxAge > 0 {
		return true
	}
	texts := []string{c.ddl}
	for _, fli := range c.flights {
		for _, m := range fli {
			switch m := m.(type) {
			case *pgproto3.Query:
				texts = append(texts, m.String)
			case *directly:
				texts = append(texts, m.String)
			case *pgproto3.Parse:
				texts = append(texts, m.Query)
			case *pgproto3.FunctionCall:
				return true // it may call set_config or pg_reload_conf
			}
		}
	}
	s := strings.ToLower(strings.Join(texts, "\n"))
	s = strings.ReplaceAll(s, "user mapping", "")
	return clusterWord.MatchString(s)
}

var clusterWord = regexp.MustCompile(`alter\s+system|pg_reload_conf|pg_sleep|\b(create|alter|drop)\s+(role|user|group)\b`)

// mark replaces SECRET in every message with the case's marker.
func mark(m pgproto3.FrontendMessage, marker string) pgproto3.FrontendMessage {
	r := func(s string) string { return strings.ReplaceAll(s, "SECRET", marker) }
	rb := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("SECRET"), []byte(marker)) }
	switch x := m.(type) {
	case *pgproto3.Query:
		return &pgproto3.Query{String: r(x.String)}
	case *pgproto3.Parse:
		return &pgproto3.Parse{Name: x.Name, Query: r(x.Query), ParameterOIDs: x.ParameterOIDs}
	case *pgproto3.Bind:
		cp := *x
		cp.Parameters = nil
		for _, p := range x.Parameters {
			cp.Parameters = append(cp.Parameters, rb(p))
		}
		return &cp
	case *pgproto3.CopyData:
		return &pgproto3.CopyData{Data: rb(x.Data)}
	case *pgproto3.FunctionCall:
		cp := *x
		cp.Arguments = nil
		for _, a := range x.Arguments {
			cp.Arguments = append(cp.Arguments, rb(a))
		}
		return &cp
	}
	return m
}

func runAttack(t *testing.T, c attackCase, marker string) {
	addr, tap := startTap(t)
	f := newEncFixtureFunc(t, seedColumns(), false, strings.ReplaceAll(c.ddl, "SECRET", marker), func(o *proxy.Options) {
		o.Upstream = addr
		if c.maxAge > 0 {
			o.CatalogMaxAge = c.maxAge
		}
	})
	ctx := testCtx(t)
	if _, err := f.direct.Exec(ctx, "ALTER DATABASE "+f.db+" SET log_statement = 'all'"); err != nil {
		t.Fatal(err)
	}
	logStart := logSize(t)
	fe, conn := failRaw(t, f)
	closed := false
	for fi, fli := range c.flights {
		want := 0
		for _, m := range fli {
			if d, ok := m.(*directly); ok {
				if _, err := f.direct.Exec(ctx, d.String); err != nil {
					t.Fatal(err)
				}
				continue
			}
			switch m.(type) {
			case *pgproto3.Query, *pgproto3.Sync, *pgproto3.FunctionCall:
				want++
			}
			fe.Send(mark(m, marker))
		}
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		for n := 0; n < want && !closed; n++ {
			ms, err := untilZ(t, fe)
			for _, m := range ms {
				switch m := m.(type) {
				case *pgproto3.DataRow:
					for _, v := range m.Values {
						if !c.echoes && (cipher.LooksLikeEnvelope(v) || envelopeIn.Match(v)) {
							t.Errorf("flight %d: CIPHERTEXT returned to the client: %.60q", fi, v)
						}
					}
				case *pgproto3.CopyData:
					if c.outputs && envelopeIn.Match(m.Data) {
						t.Errorf("flight %d: CIPHERTEXT in COPY data: %.80q", fi, m.Data)
					}
				case *pgproto3.ErrorResponse:
					t.Logf("flight %d: %s %s: %s", fi, m.Severity, m.Code, m.Message)
					if strings.Contains(m.Message, marker) || strings.Contains(m.Detail, marker) {
						t.Logf("(the error text carries the client's own value)")
					}
					if c.outputs && !c.echoes && envelopeIn.MatchString(m.Message+m.Detail+m.Where) {
						t.Errorf("flight %d: ENVELOPE in an error: %s / %s", fi, m.Message, m.Detail)
					}
				case *pgproto3.NoticeResponse:
					if c.outputs && !c.echoes && envelopeIn.MatchString(m.Message+m.Detail) {
						t.Errorf("flight %d: ENVELOPE in a notice: %s / %s", fi, m.Message, m.Detail)
					}
				}
			}
			if err != nil {
				// The proxy may end a session it can no longer follow, but
				// only with an error the client sees first.
				if !hasFatal(ms) {
					t.Fatalf("flight %d: connection lost without an error: %v", fi, err)
				}
				closed = true
			}
		}
	}
	if !closed {
		conn.SetDeadline(time.Now().Add(8 * time.Second))
		ms := rawQuery(t, fe, "SELECT 1")
		if len(rowsOfAll(ms)) != 1 {
			t.Errorf("session not usable afterwards: %v", ms)
		}
	}
	if c.check != nil {
		c.check(t, f)
	}
	if c.plainOK {
		noPolicyPlaintext(t, f, marker)
		return
	}
	if tap.has(marker) && !c.storedOnly {
		t.Errorf("LEAK: %s was sent to PostgreSQL", marker)
	}
	if l := logSince(t, logStart); strings.Contains(l, marker) && !c.storedOnly {
		t.Errorf("LEAK: %s is in the server log", marker)
	}
	if dump := pgDump(t, f.db); strings.Contains(dump, marker) {
		t.Errorf("LEAK: %s is stored in the database:\n%s", marker, grepLines(dump, marker))
	}
	_ = ctx
}

// noPolicyPlaintext fails when a policy column holds the marker.
func noPolicyPlaintext(t *testing.T, f *encFixture, marker string) {
	t.Helper()
	ctx := testCtx(t)
	for table, cols := range map[string]string{"legacy_notes": "body", "clients": "concat(first_name, last_name, email, phone, medical_history)"} {
		var exists bool
		if err := f.direct.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", "public."+table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			continue // a case dropped it; its columns hold nothing
		}
		var n int
		if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM public."+table+" WHERE "+cols+" LIKE '%'||$1||'%'", marker).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("LEAK: %s stored in a policy column of %s", marker, table)
		}
	}
}

func hasFatal(ms []pgproto3.BackendMessage) bool {
	for _, m := range ms {
		if e, ok := m.(*pgproto3.ErrorResponse); ok && (e.Severity == "FATAL" || e.Severity == "ERROR") {
			return true
		}
	}
	return false
}

func rowsOfAll(ms []pgproto3.BackendMessage) []*pgproto3.DataRow {
	var out []*pgproto3.DataRow
	for _, m := range ms {
		if d, ok := m.(*pgproto3.DataRow); ok {
			out = append(out, d)
		}
	}
	return out
}

func logSize(t *testing.T) int64 {
	if pg.LogFile == "" {
		return 0
	}
	st, err := os.Stat(pg.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// logSince returns the server log written since offset off.
func logSince(t *testing.T, off int64) string {
	if pg.LogFile == "" {
		return ""
	}
	b, err := os.ReadFile(pg.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) < off {
		return string(b)
	}
	return string(b[off:])
}

// pgDump returns a plain-text dump of database db, schema and data.
func pgDump(t *testing.T, db string) string {
	t.Helper()
	bin := filepath.Join(pg.BinDir(), "pg_dump")
	if _, err := os.Stat(bin); err != nil {
		bin = "pg_dump"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--no-owner", "-d", pg.SuperConnString(db)).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	return string(out)
}

func grepLines(s, needle string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, needle) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// storedLegacyBody reads legacy_notes row id through the proxy and checks
// that it is absent (the statement was refused) or valid UTF-8 that starts
// with prefix (a round's marker) and ends with one of suffixes: what
// PostgreSQL would have stored without the proxy (or what a documented
// limit allows).
func storedLegacyBody(prefix string, id int, suffixes ...string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var got string
		err := f.connect(t, pgx.QueryExecModeExec).QueryRow(testCtx(t), "SELECT body FROM legacy_notes WHERE id = $1", id).Scan(&got)
		if err == pgx.ErrNoRows {
			return
		}
		if err != nil {
			t.Errorf("WRONG: reading row %d: %v", id, err)
			return
		}
		if utf8.ValidString(got) && strings.HasPrefix(got, prefix) {
			for _, s := range suffixes {
				if strings.HasSuffix(got, s) {
					return
				}
			}
		}
		t.Errorf("WRONG: row %d reads %q (valid UTF-8: %t), want the marker then one of %q, as PostgreSQL would have stored it", id, got, utf8.ValidString(got), suffixes)
	}
}

// noLegacyRow checks that none of the legacy_notes rows ids was stored:
// PostgreSQL refuses their values (22021).
func noLegacyRow(ids ...int) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		for _, id := range ids {
			var n int
			if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM legacy_notes WHERE id = $1", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				var raw []byte
				f.connect(t, pgx.QueryExecModeExec).QueryRow(testCtx(t), "SELECT body FROM legacy_notes WHERE id = $1", id).Scan(&raw)
				t.Errorf("WRONG: row %d was stored (reads %q through the proxy); PostgreSQL refuses that value (22021)", id, raw)
			}
		}
	}
}

// allChecks runs every check.
func allChecks(cs ...func(t *testing.T, f *encFixture)) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		for _, c := range cs {
			c(t, f)
		}
	}
}
