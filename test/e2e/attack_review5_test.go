package e2e

// A fifth round of the attacker's suite (see attack_test.go), written by a
// fourth review helper. Its main themes:
//
//   - the parser differential between the proxy (libpg_query, the
//     PostgreSQL 17 grammar) and the server the tests run (PostgreSQL 15):
//     system_user is a reserved keyword in 16 and later, a plain name in
//     15, so a text may fail to parse in the proxy and be relayed, or
//     parse into another tree;
//   - policy tables named without their name in the text (U&"…" escapes,
//     E'…' escapes in function bodies, views created elsewhere);
//   - composite values (a row literal cast to a policy table's row type);
//   - settings changed by a configuration reload, which the server
//     reports only after the next statement has run;
//   - prepared statements, cursors, COPY, the extended protocol, DDL.
//
// Cases marked "leaked before the fix" got plaintext to the server or
// envelopes to the client until the commits that followed this review.

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// directInt fails unless query, run on the direct connection, returns want.
func directInt(query string, want int) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var n int
		if err := f.direct.QueryRow(testCtx(t), query).Scan(&n); err != nil {
			t.Errorf("%s: %v", query, err)
			return
		}
		if n != want {
			t.Errorf("%s = %d, want %d: wrong result", query, n, want)
		}
	}
}

// both runs two checks.
func both(a, b func(t *testing.T, f *encFixture)) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) { a(t, f); b(t, f) }
}

// bodiesViaProxy fails unless each legacy_notes row whose id is in want
// reads back, through the proxy, as want[id]: the value the server would
// have stored for the literal written.
func bodiesViaProxy(want map[int]string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		conn := f.connect(t, pgx.QueryExecModeSimpleProtocol)
		rows, err := conn.Query(testCtx(t), "SELECT id, body FROM legacy_notes")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int
			var body *string
			if err := rows.Scan(&id, &body); err != nil {
				t.Fatal(err)
			}
			if w, ok := want[id]; ok {
				switch {
				case body == nil:
					t.Errorf("legacy_notes id %d reads back as NULL, want %q", id, w)
				case *body != w:
					t.Errorf("legacy_notes id %d reads back as %q, want %q: the literal was encrypted as another value than PostgreSQL would store", id, *body, w)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Error(err)
		}
	}
}

// A view over legacy_notes created on the server directly (a migration).
const directView = "; CREATE VIEW nv5 AS SELECT id, body FROM legacy_notes"

// A role and a schema named after it, holding a plain legacy_notes, for
// search_path = "$user", public.
const userSchema = `; DO $$ BEGIN CREATE ROLE attack5_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE SCHEMA attack5_app AUTHORIZATION attack5_app; CREATE TABLE attack5_app.legacy_notes (id serial PRIMARY KEY, body text);
GRANT ALL ON ALL TABLES IN SCHEMA attack5_app, public TO attack5_app; GRANT ALL ON ALL SEQUENCES IN SCHEMA attack5_app, public TO attack5_app`

// The payload of the lexing cases in attack_test.go: under
// standard_conforming_strings = on, 'SECRET' is in a comment; under off, it
// is a value written to legacy_notes.body.
const scsPayload = `INSERT INTO legacy_notes (id, body) SELECT 1, 'x' WHERE 'a\' <> 'b' -- ' <> 'c' UNION ALL SELECT 2, 'SECRET' --`

// scsPayloadValid is valid SQL under both settings. On: the backslash
// literal 'a\' is compared with 'q' (nothing to encrypt, no row) and the
// rest is a comment. Off: 'a\' -- ' is one string, and the row (2,
// 'SECRET') is inserted, unencrypted.
const scsPayloadValid = `INSERT INTO legacy_notes (id, body) SELECT 1, NULL WHERE 'q' = 'a\' -- ' UNION ALL SELECT 2, 'SECRET' --`

func attackCases5() []attackCase {
	return []attackCase{
		// A. Parser differential: system_user is reserved in the proxy's
		// grammar (PostgreSQL 16+), a plain name on a PostgreSQL 15
		// server. A text the proxy cannot parse and that does not spell a
		// policy table's name is relayed as it is.
		// Leaked before the fix: relayed unparsed (U&-escaped name), plaintext stored in legacy_notes.body.
		{name: "diff5/hidden_name_system_user_alias", flights: []flight{
			fl(`INSERT INTO U&"legacy\005fnotes" (body) SELECT 'SECRET' FROM workspaces AS system_user`),
		}},
		// Leaked before the fix: as above, without a backslash (UESCAPE).
		{name: "diff5/hidden_name_uescape_no_backslash", flights: []flight{
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) SELECT 'SECRET' FROM workspaces system_user`),
		}},
		// Leaked before the fix: a syntax error with an escaped name is relayed: plaintext in the server log.
		{name: "diff5/hidden_name_syntax_error_logged", flights: []flight{
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ('SECRET') oops`),
		}},
		// Leaked before the fix: the parse-error path ignores view names: plaintext written through the view.
		{name: "diff5/direct_view_parse_error", ddl: directView, flights: []flight{
			fl("INSERT INTO nv5 (body) SELECT 'SECRET' FROM workspaces AS system_user"),
		}},
		// Leaked before the fix: a view named system_user cannot be parsed by the proxy at all.
		{name: "diff5/direct_view_named_system_user", ddl: `; CREATE VIEW "system_user" AS SELECT id, body FROM legacy_notes`, flights: []flight{
			fl("INSERT INTO system_user (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: the proxy sees SYSTEM_USER = 'x', the server s.system_user (email) = 'x'.
		{name: "diff5/system_user_column_compared", flights: []flight{
			fl("SELECT count(*) FROM (SELECT email AS system_user FROM clients) s WHERE system_user = 'SECRET'"),
		}},
		// Leaked before the fix: as above, a pattern on a randomized column.
		{name: "diff5/system_user_column_like", flights: []flight{
			fl("SELECT count(*) FROM (SELECT last_name AS system_user FROM clients) s WHERE system_user LIKE 'SECRET%'"),
		}},
		{name: "diff5/system_user_column_written", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT system_user FROM (SELECT 'SECRET'::text AS system_user) s"),
		}},
		// Leaked before the fix: ciphertext copied into a plain column, then returned to the client.
		{name: "diff5/system_user_copy_out", flights: []flight{
			fl(seedRows),
			fl("INSERT INTO tenant.clients (first_name) SELECT system_user FROM (SELECT first_name AS system_user FROM clients) s"),
			fl("SELECT first_name FROM tenant.clients"),
		}},
		// Leaked before the fix: an untraceable policy column returned as system_user: envelopes to the client.
		{name: "diff5/system_user_untraceable_output", flights: []flight{
			fl(seedRows),
			fl("SELECT system_user FROM (SELECT email AS system_user FROM clients UNION ALL SELECT email FROM clients) s"),
		}},
		// Leaked before the fix: COPY TO of the same: envelopes in the COPY data.
		{name: "diff5/system_user_copy_to", outputs: true, flights: []flight{
			fl(seedRows),
			fl(q("COPY (SELECT system_user FROM (SELECT CASE WHEN true THEN email END AS system_user FROM clients) s) TO STDOUT")),
		}},
		// Leaked before the fix: a json_value(text) user function: PostgreSQL 17 grammar needs two arguments.
		{name: "diff5/json_value_user_function", ddl: "; CREATE FUNCTION json_value(text) RETURNS text LANGUAGE sql AS 'SELECT $1'", flights: []flight{
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES (json_value('SECRET'))`),
		}},
		// Leaked before the fix: PostgreSQL 15 continues a string across a line holding
		// only a comment ('a'\n-- c\n'b'); the proxy's parser does not, so
		// with the table name escaped the COPY is relayed and its rows are
		// stored unencrypted.
		{name: "diff5/hidden_name_copy_continuation", flights: []flight{
			fl(q("COPY U&\"legacy!005fnotes\" UESCAPE '!' (id, body) FROM STDIN (DELIMITER ','\n-- c\n'')"), copyData("1,SECRET\n"), copyDone()),
		}},
		{name: "diff5/hex_and_underscore_numbers", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (0x10, 'SECRET')"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (1_000, 'SECRET')"),
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET' AND id IS NOT NULL AND 0x1 = 1"),
		}},
		{name: "diff5/keyword_names_parse_in_both", flights: []flight{
			fl("SELECT count(*) FROM (SELECT email AS json, email AS path, email AS plan FROM clients) s WHERE json = 'SECRET' AND path = 'SECRET' AND plan IN ('SECRET')"),
			fl("SELECT count(*) FROM (SELECT email AS system_user FROM clients) s WHERE s.system_user = 'SECRET'"),
		}},

		// B. Code the server runs later, its table named without its
		// name: E'…' escapes in a body string, U&"…" inside a body,
		// dynamic SQL.
		// Leaked before the fix: DO body in an E'' string: the text has no policy name and is relayed unanalysed.
		{name: "opaque5/do_escape_string_name", flights: []flight{
			fl(`DO E'BEGIN INSERT INTO legacy\137notes (body) VALUES (''SECRET''); END'`),
		}},
		// Leaked before the fix: doMentionsPolicy does not look for U&"…" (textMentionsPolicy does).
		{name: "opaque5/do_uescape_name", flights: []flight{
			fl(`DO $$BEGIN INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ('SECRET'); END$$`),
		}},
		// Leaked before the fix: dynamic SQL builds the name; the DO block is relayed.
		{name: "opaque5/do_dynamic_name", flights: []flight{
			fl(`DO $$BEGIN EXECUTE format('INSERT INTO %I (body) VALUES (%L)', 'legacy' || '_notes', 'SECRET'); END$$`),
		}},
		// Leaked before the fix: function body in an E'' string: created, then writes plaintext.
		{name: "opaque5/function_escape_body", flights: []flight{
			fl(`CREATE FUNCTION f5() RETURNS void LANGUAGE sql AS E'INSERT INTO legacy\137notes (body) VALUES (''SECRET'')'`),
			fl("SELECT f5()"),
		}},
		// Leaked before the fix: procedure body in an E'' string, then CALL.
		{name: "opaque5/procedure_escape_body", flights: []flight{
			fl(`CREATE PROCEDURE p5() LANGUAGE sql AS E'INSERT INTO legacy\137notes (body) VALUES (''SECRET'')'`),
			fl("CALL p5()"),
		}},
		{name: "opaque5/function_quoted_name", flights: []flight{
			fl(`CREATE FUNCTION f6() RETURNS void LANGUAGE plpgsql AS $$BEGIN INSERT INTO "legacy_notes" (body) VALUES ('SECRET'); END$$`),
			fl("SELECT f6()"),
		}},
		{name: "opaque5/function_begin_atomic", flights: []flight{
			fl("CREATE FUNCTION f7() RETURNS void LANGUAGE sql BEGIN ATOMIC INSERT INTO legacy_notes (body) VALUES ('SECRET'); END"),
			fl("SELECT f7()"),
		}},
		// Leaked before the fix: a trigger function on a plain table created with an E'' body copies the plain value into legacy_notes.
		{name: "opaque5/trigger_function_escape_body", plainOK: true, flights: []flight{
			fl(`CREATE FUNCTION tf5() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN INSERT INTO legacy\137notes (body) VALUES (NEW.first_name); RETURN NEW; END'`),
			fl("CREATE TRIGGER t5 AFTER INSERT ON tenant.clients FOR EACH ROW EXECUTE FUNCTION tf5()"),
			fl("INSERT INTO tenant.clients (first_name) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: ts_stat runs SQL text; with the name escaped the query is relayed and returns envelopes.
		{name: "opaque5/ts_stat_escaped_name", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(`SELECT word FROM ts_stat(E'SELECT array_to_tsvector(ARRAY[body]) FROM legacy\137notes')`),
		}},
		// Leaked before the fix: ts_stat is not among the whole-table functions: the query in its argument returns envelopes.
		{name: "opaque5/ts_stat_plain_name", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("SELECT word FROM ts_stat('SELECT array_to_tsvector(ARRAY[body]) FROM legacy_notes')"),
		}},
		// Leaked before the fix: query_to_xml of a view created elsewhere: textMentionsPolicy knows only policy names.
		{name: "xml5/query_to_xml_direct_view", ddl: directView, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("SELECT query_to_xml('SELECT body FROM nv5', true, false, '')"),
		}},
		// Leaked before the fix: table_to_xml of an inheritance parent of legacy_notes.
		{name: "xml5/table_to_xml_parent", ddl: "; CREATE TABLE base5 (id int, body text); ALTER TABLE legacy_notes INHERIT base5", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("SELECT table_to_xml('base5', true, false, '')"),
		}},
		// Leaked before the fix: schema_to_xml of a schema holding a view over a policy table.
		{name: "xml5/schema_to_xml_view_schema", ddl: "; CREATE VIEW tenant.nv AS SELECT body FROM public.legacy_notes", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("SELECT schema_to_xml('tenant', true, false, '')"),
		}},
		{name: "xml5/query_to_xml_escape_and_param", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(`SELECT query_to_xml(E'SELECT body FROM legacy\137notes', true, false, '')`),
			fl(ext("SELECT query_to_xml($1, true, false, '')", "SELECT body FROM legacy_notes"), syncMsg()),
			fl(ext("SELECT table_to_xml($1::regclass, true, false, '')", "legacy_notes"), syncMsg()),
		}},

		// C. Composite values: a row literal of a policy table's row type
		// is plaintext, not stored ciphertext.
		// A field of a row literal is plaintext, not stored ciphertext of body.
		{name: "comp5/row_literal_field_written", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) SELECT (r).id, (r).body FROM (SELECT '(5,SECRET)'::legacy_notes AS r) s"),
		}},
		{name: "comp5/row_literal_field_direct", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES (('(5,SECRET)'::legacy_notes).body)"),
			fl("UPDATE legacy_notes SET body = ('(1,SECRET)'::legacy_notes).body"),
		}},
		// A plain composite column's field is plaintext, not stored ciphertext.
		{name: "comp5/composite_column_copied", plainOK: true, ddl: "; CREATE TABLE holder5 (r legacy_notes); INSERT INTO holder5 VALUES ('(5,SECRET)'); INSERT INTO legacy_notes (id) VALUES (1)", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) SELECT (r).id, (r).body FROM holder5"),
			fl("UPDATE legacy_notes SET body = (h.r).body FROM holder5 h WHERE legacy_notes.id = 1"),
		}},
		{name: "comp5/whole_row_compared_literal", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes n WHERE n = '(1,SECRET)'"),
			fl("SELECT count(*) FROM legacy_notes n WHERE n IN ('(1,SECRET)')"),
			fl("SELECT count(*) FROM legacy_notes n WHERE n.* IS NOT DISTINCT FROM '(1,SECRET)'::legacy_notes"),
			fl("SELECT count(*) FROM legacy_notes WHERE legacy_notes = '(1,SECRET)'"),
		}},
		{name: "comp5/whole_row_compared_row", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes n WHERE n = ROW(1, 'SECRET')::legacy_notes"),
			fl("SELECT count(*) FROM clients c WHERE (c.id, c.email) = (SELECT id, 'SECRET' FROM clients LIMIT 1)"),
		}},
		{name: "comp5/row_literal_star_update", ddl: "; INSERT INTO legacy_notes (id) VALUES (7)", flights: []flight{
			fl("UPDATE legacy_notes SET (id, body) = (SELECT ('(7,SECRET)'::legacy_notes).*)"),
		}},
		{name: "comp5/populate_record_field", flights: []flight{
			fl(`INSERT INTO legacy_notes (body) SELECT (jsonb_populate_record(NULL::legacy_notes, '{"body": "SECRET"}')).body`),
		}},
		// email compared with a field of a record built from plaintext JSON.
		{name: "comp5/populate_record_compared", flights: []flight{
			fl(`SELECT count(*) FROM clients c WHERE c.email = (jsonb_populate_record(NULL::clients, '{"email": "SECRET"}')).email`),
		}},

		// D. Names.
		{name: "name5/catalog_qualified", flights: []flight{
			fl("INSERT INTO otherdb.public.legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT count(*) FROM otherdb.public.clients WHERE email = 'SECRET'"),
		}},
		// search_path = public, pg_temp puts the temporary table last.
		{name: "name5/temp_table_after_public", flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text)"),
			fl("SET search_path = public, pg_temp"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		{name: "name5/temp_dropped_in_pipeline", flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text)"),
			fl("SELECT count(*) FROM legacy_notes"),
			fl(ext("DROP TABLE pg_temp.legacy_notes"), ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
			fl("SELECT count(*) FROM pg_temp.legacy_notes"), // still there: the pipeline was refused and rolled back
			fl("DROP TABLE pg_temp.legacy_notes; INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT count(*) FROM pg_temp.legacy_notes"),
			fl("DROP TABLE pg_temp.legacy_notes", "INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		// A statement prepared while a temporary table shadows the policy
		// table: PostgreSQL re-plans it after the DROP, by name.
		{name: "name5/prepared_on_temp_then_dropped", flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text)"),
			fl("PREPARE tp5 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl(parseNamed("tq5", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl("DROP TABLE pg_temp.legacy_notes"),
			fl("EXECUTE tp5('SECRET')"),
			fl(bindNamed("tq5", "SECRET"), syncMsg()),
		}},
		{name: "name5/pg_temp_explicit", plainOK: true, flights: []flight{
			fl("CREATE TEMP TABLE legacy_notes (id int, body text)"),
			fl("INSERT INTO pg_temp.legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT body FROM pg_temp.legacy_notes"),
			fl("INSERT INTO public.legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "name5/dollar_user_set_local_role", ddl: userSchema, flights: []flight{
			fl(`SET search_path = "$user", public`),
			fl("BEGIN"), fl("SET LOCAL ROLE attack5_app"), fl("SELECT count(*) FROM legacy_notes"), fl("COMMIT"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		{name: "name5/dollar_user_session_authorization", ddl: userSchema, flights: []flight{
			fl(`SET search_path = "$user", public`),
			fl("SET SESSION AUTHORIZATION attack5_app"), fl("SELECT count(*) FROM legacy_notes"),
			fl("RESET SESSION AUTHORIZATION"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "name5/alias_swap", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes clients, clients legacy_notes WHERE legacy_notes.email = 'SECRET'"),
			fl("SELECT count(*) FROM legacy_notes clients, clients legacy_notes WHERE clients.body = 'SECRET'"),
			fl("UPDATE clients legacy_notes SET phone = 'SECRET' FROM legacy_notes clients WHERE clients.id = 1"),
		}},
		{name: "name5/cte_named_like_policy_table", plainOK: true, check: directInt("SELECT count(*) FROM tenant.clients WHERE first_name LIKE 'SECRET%'", 1), flights: []flight{
			fl("WITH clients AS (SELECT 'SECRET'::text AS first_name) INSERT INTO tenant.clients (first_name) SELECT first_name FROM clients"),
		}},
		{name: "name5/only_and_star_forms", flights: []flight{
			fl("SELECT count(*) FROM ONLY (clients) WHERE email = 'SECRET'"),
			fl("SELECT count(*) FROM clients* WHERE email = 'SECRET'"),
			fl("DELETE FROM ONLY (legacy_notes) WHERE body = 'SECRET'"),
			fl("UPDATE legacy_notes* SET body = 'SECRET' WHERE id = 1"),
		}},
		{name: "name5/unicode_qualified", check: wholeEnvelopes, flights: []flight{
			fl(`INSERT INTO U&"public".U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ('SECRET')`),
			fl(`INSERT INTO U&"public"."legacy_notes" (body) VALUES ('SECRET')`),
		}},
		// Leaked before the fix: the column list is written between U&"…" and UESCAPE; the
		// rewritten text no longer parses, names no policy table in plain
		// letters and is relayed: plaintext on the wire and in the log.
		{name: "name5/uescape_no_column_list", flights: []flight{
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' VALUES (DEFAULT, 'SECRET')`),
		}},
		// Refused (over-refusal: the column list lands before the comment),
		// but nothing leaks.
		{name: "name5/comment_before_alias_no_column_list", flights: []flight{
			fl("INSERT INTO legacy_notes /* c */ AS n VALUES (DEFAULT, 'SECRET')"),
		}},

		// E. Literal values: the envelope must hold the text PostgreSQL
		// would have stored.
		{name: "value5/literal_forms_as_stored", check: bodiesViaProxy(map[int]string{1: "1.50", 2: "0.5", 3: "1", 4: "7", 6: "5", 7: "-5",
			8: "9223372036854775808", 9: "-2147483648", 10: "0.100", 11: "true", 12: "-5", 13: "AAAA", 14: "AA", 15: "ab", 16: `a\b`, 17: "a'b", 18: "x$y", 19: "0", 20: "0.00"}), flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 1.50)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (2, .5)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (3, 1.)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (4, 007)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (6, +5)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (7, - 5)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (8, 9223372036854775808)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (9, -2147483648)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (10, 00.100)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (11, TRUE)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (12, -(5))"),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (13, E'\x41\101\u0041\U00000041')`),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (14, U&'\0041\+000041')`),
			fl("INSERT INTO legacy_notes (id, body) VALUES (15, 'a'\n-- c\n'b')"),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (16, E'a\\b')`),
			fl("INSERT INTO legacy_notes (id, body) VALUES (17, $q$a'b$q$)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (18, $$x$y$$)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (19, -0)"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (20, -00.00)"),
		}},

		// Leaked before the fix: PostgreSQL stores numeric -0.0 as 0.0; the proxy encrypts the folded text "-0.0".
		{name: "value5/negative_zero_numeric", check: bodiesViaProxy(map[int]string{5: "0.0"}), flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (5, -0.0)"),
		}},

		// E. Writes.
		// One literal reaching a policy column and a plain one under
		// two names.
		{name: "role5/one_literal_two_names", flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT w.id, s.a, 'y', s.b FROM workspaces w, (SELECT v.x AS a, v.x AS b FROM (VALUES ('SECRET')) v(x)) s"),
			fl("INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT w.id, v.x, 'y', l.y FROM workspaces w, (VALUES ('SECRET')) v(x), LATERAL (SELECT v.x AS y) l"),
			fl("WITH v(x) AS (VALUES ('SECRET')) INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT w.id, a.x, 'y', b.x FROM workspaces w, v a, v b"),
			fl("SELECT notes, first_name FROM clients"),
		}},
		{name: "role5/update_both_columns", flights: []flight{
			fl(seedRows),
			fl("UPDATE clients SET first_name = v.x, notes = v.x FROM (VALUES ('SECRET')) v(x)"),
			fl("UPDATE clients SET (first_name, notes) = (SELECT v.x, v.x FROM (VALUES ('SECRET')) v(x))"),
			fl(ext("UPDATE clients SET (first_name, notes) = ROW($1, $1)", "SECRET"), syncMsg()),
			fl("SELECT notes FROM clients"),
		}},
		{name: "write5/table_source", flights: []flight{
			fl("WITH v(b) AS (VALUES ('SECRET')) INSERT INTO legacy_notes (body) TABLE v"),
			fl("WITH v(b) AS (VALUES ('SECRET')) INSERT INTO legacy_notes (body) SELECT * FROM v"),
		}},
		{name: "write5/overriding_system_and_defaults", check: wholeEnvelopes, flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) OVERRIDING SYSTEM VALUE VALUES (5, 'SECRET')"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (DEFAULT, DEFAULT), (DEFAULT, 'SECRET')"),
		}},
		{name: "write5/on_conflict_excluded_to_plain", flights: []flight{
			fl(seedRows),
			fl("INSERT INTO clients (id, workspace_id, first_name, last_name) SELECT c.id, c.workspace_id, 'SECRET', 'y' FROM clients c ON CONFLICT (id) DO UPDATE SET notes = EXCLUDED.first_name RETURNING notes"),
			fl("INSERT INTO clients (id, workspace_id, first_name, last_name) SELECT c.id, c.workspace_id, 'SECRET', 'y' FROM clients c ON CONFLICT (id) DO UPDATE SET (phone, notes) = ROW(EXCLUDED.phone, EXCLUDED.last_name) RETURNING notes"),
			fl("SELECT notes FROM clients"),
		}},
		{name: "write5/update_multi_subquery_copy_out", flights: []flight{
			fl(seedRows),
			fl("UPDATE clients SET (notes, phone) = (SELECT c2.phone, 'SECRET' FROM clients c2 LIMIT 1)"),
			fl("SELECT notes FROM clients"),
		}},
		{name: "write5/update_row_plain_into_policy", plainOK: true, flights: []flight{
			fl(seedRows),
			fl("UPDATE clients SET notes = 'SECRET'"),
			fl("UPDATE clients SET (first_name, last_name) = (notes, 'x')"),
			fl("UPDATE clients SET (first_name, last_name) = (SELECT notes, 'x')"),
			fl("UPDATE clients SET (first_name, last_name) = ROW(notes, 'x')"),
		}},
		// Leaked before the fix: MERGE … INSERT into a plain column is not checked (storePlain): ciphertext copied out.
		{name: "write5/merge_copy_out", flights: []flight{
			fl(seedRows),
			fl("MERGE INTO tenant.clients t USING clients c ON false WHEN NOT MATCHED THEN INSERT (first_name) VALUES (c.first_name)"),
			fl("SELECT first_name FROM tenant.clients"),
		}},
		// Leaked before the fix: the literal is written to first_name (encrypted) and notes (plain): notes gets the envelope.
		{name: "write5/merge_one_value_two_roles", flights: []flight{
			fl("MERGE INTO clients c USING (SELECT w.id, 'SECRET' AS x FROM workspaces w) s ON false WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, notes) VALUES (s.id, s.x, 'b', s.x)"),
			fl("SELECT notes FROM clients"),
		}},
		// The parameter or literal is compared with email and stored in notes.
		{name: "write5/merge_param_compared_and_stored_plain", flights: []flight{
			fl(ext("MERGE INTO clients c USING (SELECT id FROM workspaces) s ON c.email = $1 WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, notes) VALUES (s.id, 'a', 'b', $1)", "SECRET"), syncMsg()),
			fl("MERGE INTO clients c USING (SELECT w.id, 'SECRET' AS e FROM workspaces w) s ON c.email = s.e WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, notes) VALUES (s.id, 'a', 'b', s.e)"),
			fl("SELECT notes FROM clients"),
		}},
		{name: "write5/writable_cte_copy_out", flights: []flight{
			fl("WITH i AS (INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING body) INSERT INTO tenant.clients (first_name) SELECT body FROM i"),
			fl("WITH i AS (INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING body) UPDATE tenant.clients SET first_name = i.body FROM i"),
			fl("SELECT first_name FROM tenant.clients"),
		}},
		{name: "write5/merge_forms", ddl: "; INSERT INTO legacy_notes (id) VALUES (1)", check: wholeEnvelopes, flights: []flight{
			fl("MERGE INTO legacy_notes t USING (VALUES (2, 'SECRET')) s(i, b) ON t.id = s.i WHEN NOT MATCHED THEN INSERT (id, body) OVERRIDING USER VALUE VALUES (s.i, s.b)"),
			fl("MERGE INTO legacy_notes t USING (SELECT 1 AS i) s ON t.id = s.i WHEN MATCHED THEN UPDATE SET (body, id) = ROW('SECRET', t.id)"),
			fl("MERGE INTO legacy_notes t USING (SELECT 9 AS i) s ON t.id = s.i WHEN NOT MATCHED THEN INSERT VALUES (s.i, 'SECRET')"),
		}},
		{name: "write5/returning_expressions", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING body || ''"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING COALESCE(body, 'x')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING CASE WHEN true THEN body END"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING *, body AS b2"),
		}},
		{name: "write5/values_scalar_subquery", check: wholeEnvelopes, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ((SELECT 'SECRET'))"),
			fl("INSERT INTO legacy_notes (body) VALUES ((SELECT x FROM (VALUES ('SECRET')) v(x)))"),
		}},
		// The server would sort envelopes: the written row is not the
		// one ORDER BY … LIMIT picks on plaintext.
		{name: "write5/insert_select_order_limit", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET'), ('b')) v(x) ORDER BY 1 LIMIT 1"),
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET'), ('b')) v(x) ORDER BY x DESC LIMIT 1"),
		}},
		{name: "write5/cte_update_returning_into_plain", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("WITH u AS (UPDATE legacy_notes SET body = body RETURNING body) INSERT INTO tenant.clients (first_name) SELECT body FROM u"),
			fl("SELECT first_name FROM tenant.clients"),
		}},
		{name: "write5/generated_policy_column", flights: []flight{
			fl("ALTER TABLE legacy_notes DROP COLUMN body, ADD COLUMN body text GENERATED ALWAYS AS ('SECRET' || id::text) STORED"),
			fl("INSERT INTO legacy_notes (id) VALUES (1)"),
		}},
		{name: "write5/cross_column_self_join", flights: []flight{
			fl(seedRows),
			fl("UPDATE clients c SET phone = o.first_name FROM clients o WHERE o.id = c.id"),
			fl("UPDATE clients c SET phone = o.email FROM clients o WHERE o.id = c.id AND c.email = 'SECRET'"),
		}},
		{name: "write5/typed_literals_truncating", check: wholeEnvelopes, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES (char 'SECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES (character varying(4) 'SECRET')"),
			fl(`INSERT INTO legacy_notes (body) VALUES ("char" 'SECRET')`),
			fl("INSERT INTO legacy_notes (body) VALUES (name 'SECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES (varchar 'SECRET')"),
		}},

		// F. Comparisons and reads.
		{name: "cmp5/exists_values_correlated", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE EXISTS (SELECT 1 FROM (VALUES ('SECRET')) v(x) WHERE v.x = clients.email)"),
			fl("SELECT count(*) FROM clients c JOIN LATERAL (SELECT 'SECRET'::varchar AS e) s ON s.e = c.email"),
			fl("SELECT count(*) FROM clients WHERE email IN (VALUES ('SECRET'), ('b'))"),
		}},
		{name: "cmp5/array_expressions", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE email = ANY(ARRAY['SECRET'] || ARRAY['b'])"),
			fl("SELECT count(*) FROM clients WHERE email = ANY(array_append(ARRAY['a'], 'SECRET'))"),
			fl("SELECT count(*) FROM clients WHERE email = ANY('{SECRET}'::text[] || '{}')"),
			fl("SELECT count(*) FROM clients WHERE email = ANY(ARRAY[NULLIF('SECRET', '')])"),
		}},
		{name: "cmp5/aggregates_and_grouping", flights: []flight{
			fl("SELECT bool_or(email = 'SECRET') FROM clients"),
			fl("SELECT count(*) FILTER (WHERE email IN ('SECRET')) FROM clients GROUP BY workspace_id HAVING bool_or(email = 'SECRET')"),
			fl("SELECT email, count(*) FROM clients GROUP BY GROUPING SETS ((email), ()) HAVING GROUPING(email) = 0 AND email = 'SECRET'"),
			fl("SELECT count(*) FROM clients WHERE GREATEST(email, 'SECRET') = email"),
		}},
		{name: "cmp5/param_two_types", flights: []flight{
			fl(ext("SELECT count(*) FROM clients WHERE email = $1::varchar OR notes = $1::text", "SECRET"), syncMsg()),
			fl(ext("SELECT count(*) FROM clients WHERE email = format('%s', $1)", "SECRET"), syncMsg()),
			fl(ext("SELECT count(*) FROM clients WHERE email = $1 AND jsonb_build_object('e', $1) IS NOT NULL", "SECRET"), syncMsg()),
		}},
		{name: "cmp5/param_null_wrappers", check: directInt("SELECT count(*) FROM legacy_notes WHERE body IS NOT NULL AND id IN (1, 2, 3)", 0), flights: []flight{
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (1, NULLIF($1, $2))", "SECRET", "SECRET"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (2, CASE WHEN $1 = '' THEN NULL ELSE $1 END)", ""), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (3, COALESCE(NULLIF($1::text, ''), NULL))", ""), syncMsg()),
		}},
		{name: "cmp5/literal_null_wrappers", check: directInt("SELECT count(*) FROM legacy_notes WHERE body IS NOT NULL AND id IN (4, 5)", 0), flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (4, NULLIF('', ''))"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (5, (SELECT 'SECRET' WHERE false))"),
		}},
		// PostgreSQL reads an unquoted NULL in any case as NULL, and a
		// quoted "NULL" as the string.
		{name: "cmp5/array_param_null_spellings", check: both(directInt("SELECT count(*) FROM clients WHERE notes = 'n1'", 0), directInt("SELECT count(*) FROM clients WHERE notes = 'n2'", 1)), flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'NuLl' FROM workspaces UNION ALL SELECT id, 'a', 'b', 'NULL' FROM workspaces"),
			fl(ext("UPDATE clients SET notes = 'n1' WHERE email = ANY($1)", "{NuLl}"), syncMsg()),
			fl(ext("UPDATE clients SET notes = 'n2' WHERE email = ANY($1)", `{"NULL"}`), syncMsg()),
		}},
		{name: "cmp5/array_param_escaped_space", check: both(directInt("SELECT count(*) FROM clients WHERE notes = 'n3'", 1), directInt("SELECT count(*) FROM clients WHERE notes = 'n4'", 0)), flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'ann ' FROM workspaces"),
			fl(ext("UPDATE clients SET notes = 'n3' WHERE email = ANY($1)", `{ann\ }`), syncMsg()),
			fl(ext("UPDATE clients SET notes = 'n4' WHERE email = ANY($1)", `{ann }`), syncMsg()),
		}},
		{name: "cmp5/array_param_edge_forms", flights: []flight{
			fl(ext("SELECT count(*) FROM clients WHERE email = ANY($1)", `{}`), syncMsg()),
			fl(ext("SELECT count(*) FROM clients WHERE email = ANY($1)", `{"",NULL,"SECRET"}`), syncMsg()),
			fl(ext("SELECT count(*) FROM clients WHERE email = ANY($1)", `{SECRET,}`), syncMsg()),
			fl(ext("SELECT count(*) FROM clients WHERE email = ANY($1)", `{SECRET} x`), syncMsg()),
			fl(ext("SELECT count(*) FROM clients WHERE email = ANY($1)", "{SECRET\u00a0}"), syncMsg()),
		}},

		// G. Extended protocol.
		{name: "ext5/truncating_param_types", check: wholeEnvelopes, flights: []flight{
			fl(parseBind("INSERT INTO legacy_notes (body) VALUES ($1)", []uint32{18}, nil, []byte("SECRET")), syncMsg()),
			fl(parseBind("INSERT INTO legacy_notes (body) VALUES ($1)", []uint32{19}, nil, []byte("SECRET")), syncMsg()),
			fl(parseBind("INSERT INTO legacy_notes (body) VALUES ($1)", []uint32{2275}, nil, []byte("SECRET")), syncMsg()),
			fl(parseBind("INSERT INTO legacy_notes (body) VALUES ($1)", []uint32{114}, nil, []byte(`"SECRET"`)), syncMsg()),
			fl(parseBind("UPDATE legacy_notes SET body = $1", []uint32{19}, []int16{1}, []byte("SECRET")), syncMsg()),
		}},
		{name: "ext5/flush_then_sync", flights: []flight{
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), &pgproto3.Flush{}),
			fl(syncMsg()),
		}},
		{name: "ext5/unnamed_reparse_in_pipeline", flights: []flight{
			fl(&pgproto3.Parse{Query: "SELECT $1::text AS x"}, &pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)"}, &pgproto3.Parse{Query: "SELECT $1::text AS x"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("y")}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "ext5/portal_rebound_after_close", flights: []flight{
			fl(parseNamed("pa5", "INSERT INTO legacy_notes (body) VALUES ($1)"), parseNamed("pb5", "SELECT $1::text AS x"), syncMsg()),
			fl("BEGIN"),
			fl(&pgproto3.Bind{DestinationPortal: "po5", PreparedStatement: "pb5", Parameters: [][]byte{[]byte("y")}},
				&pgproto3.Close{ObjectType: 'P', Name: "po5"},
				&pgproto3.Bind{DestinationPortal: "po5", PreparedStatement: "pa5", Parameters: [][]byte{[]byte("SECRET")}},
				&pgproto3.Execute{Portal: "po5"}, syncMsg()),
			fl(&pgproto3.Bind{DestinationPortal: "po6", PreparedStatement: "pa5", Parameters: [][]byte{[]byte("SECRET")}},
				&pgproto3.Close{ObjectType: 'P', Name: "po6"},
				&pgproto3.Bind{DestinationPortal: "po6", PreparedStatement: "pb5", Parameters: [][]byte{[]byte("y")}},
				&pgproto3.Describe{ObjectType: 'P', Name: "po6"}, &pgproto3.Execute{Portal: "po6"}, syncMsg()),
			fl("COMMIT"),
		}},
		{name: "ext5/param_oids_partial", flights: []flight{
			fl(parseBind("INSERT INTO legacy_notes (id, body) VALUES ($1, $2)", []uint32{23}, nil, []byte("5"), []byte("SECRET")), syncMsg()),
			fl(parseBind("INSERT INTO legacy_notes (body, id) VALUES ($1, $2)", []uint32{0, 23}, []int16{0, 0}, []byte("SECRET"), []byte("6")), syncMsg()),
		}},

		// H. Prepared statements: PREPARE and DEALLOCATE are not undone by
		// ROLLBACK.
		// A re-PREPARE inside a transaction that is then rolled back stays
		// in force (PREPARE and DEALLOCATE are not transactional).
		{name: "prep5/reprepare_in_rolled_back_tx", flights: []flight{
			fl("PREPARE r5 AS SELECT $1::text AS x"),
			fl("BEGIN"), fl("DEALLOCATE r5"), fl("PREPARE r5 AS INSERT INTO legacy_notes (body) VALUES ($1)"), fl("ROLLBACK"),
			fl("EXECUTE r5('SECRET')"),
		}},
		{name: "prep5/reprepare_in_rolled_back_tx_other_way", flights: []flight{
			fl("PREPARE r6 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("BEGIN"), fl("DEALLOCATE r6"), fl("PREPARE r6 AS SELECT $1::text AS x"), fl("ROLLBACK"),
			fl("EXECUTE r6('y')"), // an envelope back would mean the proxy encrypted for the INSERT
		}},
		{name: "prep5/reprepare_rollback_to_savepoint", flights: []flight{
			fl("PREPARE r7 AS SELECT $1::text AS x"),
			fl("BEGIN", "SAVEPOINT s", "DEALLOCATE r7", "PREPARE r7 AS INSERT INTO legacy_notes (body) VALUES ($1)", "ROLLBACK TO SAVEPOINT s", "COMMIT"),
			fl("EXECUTE r7('SECRET')"),
		}},
		{name: "prep5/deallocate_prepare_keyword", flights: []flight{
			fl("PREPARE d5 AS SELECT $1::text AS x"),
			fl("DEALLOCATE PREPARE d5; PREPARE d5 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE d5('SECRET')"),
			fl("DEALLOCATE PREPARE ALL"),
			fl("PREPARE d5 AS SELECT $1::text AS x"),
			fl("EXECUTE d5('y')"),
		}},
		{name: "prep5/unicode_statement_name", flights: []flight{
			fl(`PREPARE U&"u!0035" UESCAPE '!' AS INSERT INTO legacy_notes (body) VALUES ($1)`),
			fl("EXECUTE u5('SECRET')"),
			fl(`EXECUTE "u5"('SECRET')`),
		}},
		{name: "prep5/explain_analyze_execute_and_cte", flights: []flight{
			fl("PREPARE ea5 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXPLAIN ANALYZE EXECUTE ea5('SECRET')"),
			fl("PREPARE pc5 AS WITH v(x) AS (VALUES ($1)) INSERT INTO legacy_notes (body) SELECT x FROM v"),
			fl("EXECUTE pc5('SECRET')"),
		}},
		{name: "prep5/discard_plans_keeps_statements", flights: []flight{
			fl("PREPARE dp5 AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("DISCARD PLANS"),
			fl("EXECUTE dp5('SECRET')"),
			fl("DISCARD SEQUENCES; EXECUTE dp5('SECRET')"),
		}},
		{name: "prep5/protocol_statement_survives_rollback", flights: []flight{
			fl(parseNamed("ps5", "SELECT $1::text AS x"), syncMsg()),
			fl("BEGIN"),
			fl(&pgproto3.Close{ObjectType: 'S', Name: "ps5"}, parseNamed("ps5", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl("ROLLBACK"),
			fl(bindNamed("ps5", "SECRET"), syncMsg()),
		}},

		// I. Cursors.
		{name: "cur5/cursor_name_reused", flights: []flight{
			fl(seedRows),
			fl("BEGIN", "DECLARE c5 CURSOR FOR SELECT email FROM clients", "CLOSE c5", "DECLARE c5 CURSOR FOR SELECT notes AS email FROM clients", "FETCH ALL FROM c5", "COMMIT"),
			fl("BEGIN", "DECLARE c6 CURSOR FOR SELECT notes FROM clients"),
			fl(parseNamed("f6", "FETCH ALL FROM c6"), syncMsg()),
			fl("CLOSE c6", "DECLARE c6 CURSOR FOR SELECT email FROM clients"),
			fl(&pgproto3.Bind{PreparedStatement: "f6"}, &pgproto3.Execute{}, syncMsg()),
			fl("COMMIT"),
		}},
		// Leaked before the fix: system_user differential, through a cursor: envelopes returned by FETCH.
		{name: "cur5/cursor_system_user", flights: []flight{
			fl(seedRows),
			fl("BEGIN", "DECLARE c7 CURSOR FOR SELECT system_user FROM (SELECT email AS system_user FROM clients UNION ALL SELECT email FROM clients) s", "FETCH ALL FROM c7", "COMMIT"),
		}},

		// J. COPY.
		{name: "copy5/freeze_and_where", flights: []flight{
			fl("BEGIN"), fl("TRUNCATE legacy_notes"),
			fl(q("COPY legacy_notes (id, body) FROM STDIN (FREEZE)"), copyData("1\tSECRET\n"), copyDone()),
			fl("COMMIT"),
			fl(q("COPY legacy_notes (id, body) FROM STDIN WHERE length(body) > 3"), copyData("2\tSECRET\n"), copyDone()),
			fl(q("COPY legacy_notes (id, body) FROM STDIN WHERE id > length('abc')"), copyData("30\tSECRET\n"), copyDone()),
		}},
		{name: "copy5/program", flights: []flight{
			fl("COPY legacy_notes (body) FROM PROGRAM 'echo SECRET'"),
			fl("COPY (SELECT body FROM legacy_notes) TO PROGRAM 'cat > /dev/null'"),
		}},

		// K. Settings.
		{name: "set5/set_local_scs_in_transaction", flights: []flight{
			fl("BEGIN"), fl("SET LOCAL standard_conforming_strings = off"),
			fl(scsPayload),
			fl("ROLLBACK"),
		}},
		{name: "set5/reset_all_pipelined", ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl("RESET ALL", insClients("'SECRET'")),
			fl("SET search_path = tenant, public"),
			fl(ext("RESET search_path"), ext(insClients("$1"), "SECRET"), syncMsg()),
		}},
		{name: "set5/commit_and_chain", ddl: tenantLikePublic + "; CREATE TABLE tenant.legacy_notes (id serial, body text)", flights: []flight{
			fl("BEGIN"), fl("SET LOCAL search_path = tenant, public"), fl("SELECT count(*) FROM legacy_notes"), fl("COMMIT AND CHAIN"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(insClients("'SECRET'")),
			fl("COMMIT"),
		}},

		// L. Functions over policy values.
		{name: "fn5/functions_returning_envelopes", flights: []flight{
			fl(seedRows),
			fl("SELECT concat_ws(',', email, phone) FROM clients"),
			fl("SELECT array_agg(email) FROM clients"),
			fl("SELECT string_agg(phone, ',') FROM clients"),
			fl("SELECT row_to_json(clients) FROM clients"),
			fl("SELECT (SELECT jsonb_agg(x) FROM (SELECT email FROM clients) x)"),
			fl("SELECT u FROM clients c, LATERAL unnest(string_to_array(c.email, ':')) u"),
			fl("SELECT xmlagg(xmlelement(name e, email)) FROM clients"),
			fl("SELECT pg_notify('c5', email) FROM clients"),
		}},
		{name: "fn5/outputs_that_keep_origin", flights: []flight{
			fl(seedRows),
			fl("SELECT email FROM clients GROUP BY GROUPING SETS ((email), ())"),
			fl("SELECT DISTINCT ON (email) email, phone FROM clients ORDER BY email"),
			fl("SELECT * FROM ONLY clients"),
			fl("SELECT c.*, c.email FROM clients c WHERE c.email = 'SECRET' OR true"),
		}},

		// M. Schema changes.
		{name: "schema5/constraints", ddl: "; CREATE UNIQUE INDEX ON clients (email)", flights: []flight{
			fl("ALTER TABLE clients ADD CONSTRAINT fk5 FOREIGN KEY (phone) REFERENCES clients (email)"),
			fl("ALTER TABLE legacy_notes ADD CONSTRAINT ex5 EXCLUDE USING btree (body WITH =)"),
			fl("CREATE UNIQUE INDEX ON legacy_notes (body) NULLS NOT DISTINCT"),
			fl("CREATE UNIQUE INDEX ON clients (id) INCLUDE (first_name)"),
			fl("ALTER TABLE clients ADD CONSTRAINT ck5 CHECK (email IN ('SECRET', 'b')) NOT VALID"),
			fl("CREATE INDEX ON legacy_notes ((legacy_notes.*::text))"),
		}},
		// Leaked before the fix: rowSecurity analyses nothing when the policy's table is not a policy table; its subqueries are.
		{name: "schema5/policy_on_plain_table", ddl: "; CREATE POLICY p7 ON tenant.clients USING (true)", flights: []flight{
			fl("CREATE POLICY p5 ON tenant.clients USING (email IN (SELECT c.email FROM public.clients c WHERE c.email = 'SECRET'))"),
			fl("CREATE POLICY p6 ON tenant.clients USING (first_name = (SELECT c.first_name FROM public.clients c WHERE c.first_name = 'SECRET'))"),
			fl("ALTER POLICY p7 ON tenant.clients USING (EXISTS (SELECT 1 FROM public.legacy_notes n WHERE n.body = 'SECRET'))"),
		}},
		{name: "schema5/rule_where_and_call_args", ddl: "; CREATE PROCEDURE pr5(x text) LANGUAGE sql AS 'SELECT 1'", flights: []flight{
			fl("CREATE RULE r5 AS ON INSERT TO tenant.clients WHERE EXISTS (SELECT 1 FROM public.clients c WHERE c.email = 'SECRET') DO INSTEAD NOTHING"),
			fl("CALL pr5((SELECT c.first_name FROM public.clients c WHERE c.email = 'SECRET'))"),
			fl("CALL pr5((SELECT 'x' FROM public.legacy_notes n WHERE n.body = 'SECRET'))"),
		}},
		{name: "schema5/copies_with_no_data", check: func(t *testing.T, f *encFixture) {
			noTable("ctas5")(t, f)
			noTable("tmp5")(t, f)
			noTable("mv5")(t, f)
		}, flights: []flight{
			fl("CREATE TABLE ctas5 AS SELECT body FROM legacy_notes WITH NO DATA"),
			fl("SELECT body INTO TEMP tmp5 FROM legacy_notes"),
			fl("CREATE MATERIALIZED VIEW mv5 AS SELECT email FROM clients WITH NO DATA"),
		}},
		{name: "schema5/column_types", flights: []flight{
			fl("ALTER TABLE legacy_notes ALTER body TYPE varchar(20)"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("ALTER TABLE legacy_notes ALTER body TYPE char(300)"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "schema5/domain_check_then_type", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("CREATE DOMAIN dchk5 AS text CHECK (VALUE <> 'SECRET')"),
			fl("ALTER TABLE legacy_notes ALTER body TYPE dchk5"),
		}},
		{name: "schema5/select_rule_to_view", plainOK: true, flights: []flight{
			fl("CREATE TABLE rv5 (id int, body text)"),
			fl(`CREATE RULE "_RETURN" AS ON SELECT TO rv5 DO INSTEAD SELECT id, body FROM legacy_notes`),
			fl("INSERT INTO rv5 (body) VALUES ('SECRET')"),
		}},

		// K, continued. A configuration reload: the server applies it
		// before it reads the next statement, and reports the new value
		// only after that statement has run. These cases change the
		// cluster's configuration and reset it at the end (and in a
		// cleanup): keep them last.
		// Leaked before the fix: the proxy lexes the next statement with standard_conforming_strings = on; the server, reloaded, with off.
		{name: "set5/alter_system_scs_reload", flights: []flight{
			fl("ALTER SYSTEM SET standard_conforming_strings = off"),
			fl("SELECT count(*) FROM legacy_notes"), // the proxy reads its catalog here, before the reload
			fl("SELECT pg_reload_conf()"),
			fl(direct("SELECT pg_sleep(0.5)")),
			fl(scsPayloadValid),
			fl("ALTER SYSTEM RESET standard_conforming_strings"),
			fl("SELECT pg_reload_conf()"),
			fl(direct("SELECT pg_sleep(0.5)")),
			fl("SELECT 1"),
		}},
		// Leaked before the fix: a reload by another connection (a DBA) turns
		// standard_conforming_strings off; the server reports it only after
		// the next statement, which the proxy lexes with it on.
		{name: "set5/scs_reload_by_other_connection", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl(direct("ALTER SYSTEM SET standard_conforming_strings = off")),
			fl(direct("SELECT pg_reload_conf()")),
			fl(direct("SELECT pg_sleep(0.5)")),
			fl(scsPayloadValid),
			fl(direct("ALTER SYSTEM RESET standard_conforming_strings")),
			fl(direct("SELECT pg_reload_conf()")),
			fl(direct("SELECT pg_sleep(0.5)")),
			fl("SELECT 1"),
		}},
		// The first INSERT goes to tenant.clients (the session's
		// search_path now), or to public.clients encrypted: the proxy
		// qualifies the name it resolved.
		{name: "set5/alter_system_search_path_reload", plainOK: true, ddl: tenantLikePublic, flights: []flight{
			fl("ALTER SYSTEM SET search_path = tenant, public"),
			fl(insClients("'x'")), // the proxy reads its catalog here, before the reload
			fl("SELECT pg_reload_conf()"),
			fl(direct("SELECT pg_sleep(0.5)")),
			fl(insClients("'SECRET'")),
			fl(ext(insClients("$1"), "SECRET"), syncMsg()),
			fl("ALTER SYSTEM RESET search_path"),
			fl("SELECT pg_reload_conf()"),
			fl(direct("SELECT pg_sleep(0.5)")),
			fl("SELECT 1"),
		}},
	}
}

func TestAttackSuite5(t *testing.T) {
	runAttacks(t, 5000, attackCases5())
}

// resetSystem undoes ALTER SYSTEM of a case that stopped half-way.
func resetSystem() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.SuperConnString("postgres"))
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	conn.Exec(ctx, "ALTER SYSTEM RESET ALL")
	conn.Exec(ctx, "SELECT pg_reload_conf()")
}
