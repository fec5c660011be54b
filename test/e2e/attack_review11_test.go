package e2e

// An eleventh round of the attacker's suite (see attack_test.go), written
// by a review helper against commit 4edf99a. Its theme is the shape cache
// (rewrite/shape.go, rewrite/analyzer.go Analyze and Analysis.Plan): two
// texts that differ only in what their plain '…' strings hold share one
// parse tree and plan. Each case primes the shape with a harmless text in
// an earlier flight, then sends a text of the same shape whose strings
// mean something else: a name, a query, a row, a value of another form.
// Some cases check the values stored (decrypted with the fixture's keys),
// not only the leak checks.

import (
	"slices"
	"testing"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// decryptedBodies returns the legacy_notes.body values decrypted with the
// fixture's keys, sorted; one that does not decrypt fails the test.
func decryptedBodies(t *testing.T, f *encFixture) []string {
	kr, err := cipher.NewKeyring("v1", f.keys)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kr.Column("public.legacy_notes.body", cipher.Randomized, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.direct.Query(testCtx(t), "SELECT body FROM public.legacy_notes WHERE body IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := []string{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		pt, err := c.Decrypt(nil, []byte(raw))
		if err != nil {
			t.Errorf("WRONG VALUE: stored body %.60q does not decrypt: %v", raw, err)
			continue
		}
		got = append(got, string(pt))
	}
	slices.Sort(got)
	return got
}

// legacyBodies fails unless the decrypted legacy_notes.body values are
// exactly want (in any order): a plan moved to a text of the same shape
// stored the envelope of another value.
func legacyBodies(want ...string) func(t *testing.T, f *encFixture) {
	return legacyBodiesOneOf(want)
}

// legacyBodiesOneOf is legacyBodies with several acceptable outcomes (an
// empty set: the statements were refused).
func legacyBodiesOneOf(sets ...[]string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		got := decryptedBodies(t, f)
		for _, w := range sets {
			ww := append([]string{}, w...)
			slices.Sort(ww)
			if slices.Equal(got, ww) {
				return
			}
		}
		t.Errorf("WRONG VALUE: legacy_notes.body decrypts to %q, want one of %q", got, sets)
	}
}

// A row the whole-table functions would show (as an envelope).
const note11 = "INSERT INTO legacy_notes (body) VALUES ('x')"

func attackCases11() []attackCase {
	return []attackCase{
		// A. Whole-table functions: the string names what is read.
		{name: "shape11/table_to_xml_name", flights: []flight{
			fl(note11),
			fl("SELECT table_to_xml('workspaces', true, false, '')"),
			fl("SELECT table_to_xml('legacy_notes', true, false, '') WHERE 'SECRET' <> ''"),
		}},
		{name: "shape11/query_to_xml_cast_chain", flights: []flight{
			fl(note11),
			fl("SELECT query_to_xml('select 1'::text::varchar, true, false, '')"),
			fl("SELECT query_to_xml('select body from legacy_notes'::text::varchar, true, false, '')"),
		}},
		{name: "shape11/query_to_xml_in_cte", flights: []flight{
			fl(note11),
			fl("WITH x AS (SELECT query_to_xml('select 1', true, false, '') AS t) SELECT t FROM x"),
			fl("WITH x AS (SELECT query_to_xml('select body from legacy_notes', true, false, '') AS t) SELECT t FROM x"),
		}},
		{name: "shape11/query_to_xml_in_lateral", flights: []flight{
			fl(note11),
			fl("SELECT t FROM workspaces, LATERAL (SELECT query_to_xml('select 1', true, false, '') AS t) s"),
			fl("SELECT t FROM workspaces, LATERAL (SELECT query_to_xml('select body from legacy_notes', true, false, '') AS t) s"),
		}},
		{name: "shape11/query_to_xml_in_limit", outputs: true, flights: []flight{
			fl(note11),
			fl("SELECT 1 LIMIT query_to_xml('select 1', true, false, '')::text::int"),
			fl("SELECT 1 LIMIT query_to_xml('select body from legacy_notes', true, false, '')::text::int"),
		}},
		{name: "shape11/query_to_xml_in_order_by", outputs: true, flights: []flight{
			fl(note11),
			fl("SELECT 1 ORDER BY query_to_xml('select 1', true, false, '')::text::int"),
			fl("SELECT 1 ORDER BY query_to_xml('select body from legacy_notes', true, false, '')::text::int"),
		}},
		{name: "shape11/query_to_xml_in_values", flights: []flight{
			fl(note11),
			fl("VALUES (query_to_xml('select 1', true, false, ''))"),
			fl("VALUES (query_to_xml('select body from legacy_notes', true, false, ''))"),
		}},
		{name: "shape11/query_to_xml_in_insert_returning", flights: []flight{
			fl(note11),
			fl("INSERT INTO workspaces (name) VALUES ('w11') RETURNING query_to_xml('select 1', true, false, '')"),
			fl("INSERT INTO workspaces (name) VALUES ('w12') RETURNING query_to_xml('select body from legacy_notes', true, false, '')"),
		}},
		{name: "shape11/ts_stat_query", flights: []flight{
			fl(note11),
			fl("SELECT * FROM ts_stat('select to_tsvector(''simple'', ''a'')')"),
			fl("SELECT * FROM ts_stat('select to_tsvector(''simple'', body) from legacy_notes')"),
		}},
		{name: "shape11/ts_rewrite_query", flights: []flight{
			fl(note11),
			fl("SELECT ts_rewrite('a'::tsquery, 'select ''a''::tsquery, ''b''::tsquery')"),
			fl("SELECT ts_rewrite('a'::tsquery, 'select plainto_tsquery(''simple'', body), ''b''::tsquery from legacy_notes')"),
		}},
		{name: "shape11/schema_to_xml", flights: []flight{
			fl(note11),
			fl("SELECT schema_to_xml('tenant', true, false, '')"),
			fl("SELECT schema_to_xml('public', true, false, '')"),
		}},
		{name: "shape11/table_to_xml_regclass", flights: []flight{
			fl(note11),
			fl("SELECT table_to_xml('workspaces'::regclass, true, false, '')"),
			fl("SELECT table_to_xml('legacy_notes'::regclass, true, false, '')"),
		}},

		// B. Strings read as rows of a policy table: the value reaches
		// the table without being a literal of the column.
		{name: "shape11/row_literal_insert", flights: []flight{
			fl("INSERT INTO legacy_notes SELECT ('(901,x)'::legacy_notes).*"),
			fl("INSERT INTO legacy_notes SELECT ('(902,SECRET)'::legacy_notes).*"),
		}},
		{name: "shape11/row_literal_update", ddl: "; INSERT INTO legacy_notes (id) VALUES (5)", flights: []flight{
			fl("UPDATE legacy_notes SET (id, body) = (SELECT ('(5,x)'::legacy_notes).*) WHERE id = 5"),
			fl("UPDATE legacy_notes SET (id, body) = (SELECT ('(5,SECRET)'::legacy_notes).*) WHERE id = 5"),
		}},
		{name: "shape11/json_populate_record_insert", flights: []flight{
			fl(`INSERT INTO legacy_notes SELECT * FROM json_populate_record(null::legacy_notes, '{"id": 903, "body": "x"}')`),
			fl(`INSERT INTO legacy_notes SELECT * FROM json_populate_record(null::legacy_notes, '{"id": 904, "body": "SECRET"}')`),
		}},
		{name: "shape11/jsonb_populate_record_field", flights: []flight{
			fl(`INSERT INTO legacy_notes (body) SELECT (jsonb_populate_record(null::legacy_notes, '{"body": "x"}')).body`),
			fl(`INSERT INTO legacy_notes (body) SELECT (jsonb_populate_record(null::legacy_notes, '{"body": "SECRET"}')).body`),
		}},
		{name: "shape11/json_to_record_insert", flights: []flight{
			fl(`INSERT INTO clients (workspace_id, first_name, last_name) SELECT w.id, r.f, 'y' FROM workspaces w, json_to_record('{"f": "x"}') AS r(f text)`),
			fl(`INSERT INTO clients (workspace_id, first_name, last_name) SELECT w.id, r.f, 'y' FROM workspaces w, json_to_record('{"f": "SECRET"}') AS r(f text)`),
		}},
		{name: "shape11/populate_record_row_literal", flights: []flight{
			fl(`INSERT INTO legacy_notes SELECT (r).* FROM (VALUES ('(905,x)'::legacy_notes)) v(r)`),
			fl(`INSERT INTO legacy_notes SELECT (r).* FROM (VALUES ('(906,SECRET)'::legacy_notes)) v(r)`),
		}},
		{name: "shape11/row_literal_compare", flights: []flight{
			fl(`SELECT id FROM legacy_notes l WHERE l = '(1,x)'::legacy_notes`),
			fl(`SELECT id FROM legacy_notes l WHERE l = '(1,SECRET)'::legacy_notes`),
		}},
		{name: "shape11/row_literal_compare_clients_email", flights: []flight{
			fl(`SELECT id FROM legacy_notes l WHERE (l.id, l.body) = (SELECT ('(1,x)'::legacy_notes).*)`),
			fl(`SELECT id FROM legacy_notes l WHERE (l.id, l.body) = (SELECT ('(1,SECRET)'::legacy_notes).*)`),
		}},

		// C. Values of another form: the moved plan keeps the first
		// value's meaning.
		{name: "shape11/n_prefix_trailing_space", check: legacyBodiesOneOf(nil, []string{"x", "y"}), flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES (N'y')"),
			fl("INSERT INTO legacy_notes (body) VALUES (N'x  ')"),
		}},
		{name: "shape11/values_moved", check: legacyBodies("a", "b''c", "d e", "gamma", "it's"), flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('it''s')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('b''''c')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('d e')"),
			fl("INSERT INTO legacy_notes (body) VALUES (/* 'q' */ 'gamma' -- 'r'\n)"),
		}},
		{name: "shape11/values_moved_multi", check: legacyBodies("a1", "a2", "b1", "b''''b2"), flights: []flight{
			fl("SELECT 'zz'; INSERT INTO legacy_notes (body) VALUES ('a1'), ('a2')"),
			fl("SELECT 'z''z''z'; INSERT INTO legacy_notes (body) VALUES ('b1'), ('b''''''''b2')"),
		}},
		{name: "shape11/no_column_list", check: legacyBodies("p", "q"), flights: []flight{
			fl("INSERT INTO legacy_notes VALUES (DEFAULT, 'p')"),
			fl("INSERT INTO legacy_notes VALUES (DEFAULT, 'q')"),
		}},
		{name: "shape11/insert_select_string_join", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT 'x' || ' y'"),
			fl("INSERT INTO legacy_notes (body) SELECT 'SECRET' || ' y'"),
		}},
		{name: "shape11/deterministic_in_list", flights: []flight{
			fl("SELECT id FROM clients WHERE email IN ('a', 'b') AND last_name = 'c'"),
			fl("SELECT id FROM clients WHERE email IN ('SECRET', 'b') AND last_name = 'SECRET'"),
		}},
		{name: "shape11/array_literal_any", flights: []flight{
			fl("SELECT id FROM clients WHERE email = ANY('{a}')"),
			fl("SELECT id FROM clients WHERE email = ANY('{SECRET,b}')"),
		}},
		{name: "shape11/array_constructor", flights: []flight{
			fl("SELECT id FROM clients WHERE email = ANY(ARRAY['a'])"),
			fl("SELECT id FROM clients WHERE email = ANY(ARRAY['SECRET'])"),
		}},
		{name: "shape11/unknown_polymorphic", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT coalesce('x', 'y')"),
			fl("INSERT INTO legacy_notes (body) SELECT coalesce('SECRET', 'y')"),
		}},
		{name: "shape11/adjacent_cast_token", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a'::text'b')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'::text'b')"),
		}},
		{name: "shape11/dollar_ident", flights: []flight{
			fl("SELECT a$'x' FROM legacy_notes"),
			fl("INSERT INTO legacy_notes (body) SELECT a$'SECRET' FROM legacy_notes"),
		}},
		{name: "shape11/pg15_join_across_comment", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x' --c\n)"),
			fl("INSERT INTO legacy_notes (body) SELECT 'a' --c\n'SECRET'"),
		}},
		{name: "shape11/pg15_join_across_comment_cr", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT 'a' , 'b'"),
			fl("INSERT INTO legacy_notes (body) SELECT 'a' --c\r'SECRET'"),
		}},
		{name: "shape11/cast_error_echo", outputs: true, flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES ('1', 'x')"),
			fl("INSERT INTO legacy_notes (id, body) VALUES ('zz', 'SECRET')"),
		}},
		{name: "shape11/set_config_search_path", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("SELECT set_config('search_path', 'tenant, public', false)"),
			fl("SELECT set_config('search_path', 'public', false)", insClients("'SECRET'")),
		}},
		{name: "shape11/set_config_same_text", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("SELECT set_config('search_path', 'tenant, public', false); " + insClients("'x'")),
			fl("SELECT set_config('search_path', 'public', false); " + insClients("'SECRET'")),
		}},
		{name: "shape11/to_regclass_in_where", flights: []flight{
			fl("SELECT id FROM clients WHERE to_regclass('workspaces') IS NOT NULL AND email = 'x'"),
			fl("SELECT id FROM clients WHERE to_regclass('legacy_notes') IS NOT NULL AND email = 'SECRET'"),
		}},
		{name: "shape11/extended_shape", flights: []flight{
			fl(ext("INSERT INTO legacy_notes (body) SELECT $1 WHERE 'a' <> 'b'", "x"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (body) SELECT $1 WHERE 'yy' <> 'b'", "SECRET"), syncMsg()),
		}},
	}
}

func TestAttackSuite11(t *testing.T) { runAttacks(t, 11000, attackCases11()) }
