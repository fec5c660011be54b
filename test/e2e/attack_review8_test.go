package e2e

// An eighth round of the attacker's suite (see attack_test.go), written by a
// review helper against the sixth round's fixes. Its themes:
//
//   - strings continued across a -- comment that starts on the line of the
//     closing quote ('a' -- c <newline> 'b'): PostgreSQL 15 joins them
//     (its horiz_whitespace includes comments), the proxy's parser (17)
//     reads a syntax error, and rewrite.ContinuesAcrossComment only
//     matches a newline right after the quote;
//   - trigger functions that set NEW's columns without the text "new.";
//   - LANGUAGE internal aliases of the whole-table functions, and
//     whole-table functions in DDL;
//   - postgres_fdw foreign tables over a policy table;
//   - writes to policy-table columns renamed, added or dropped by another
//     connection while the proxy's catalog is still fresh;
//   - the DML/SELECT rewrite with one value in two roles, CTEs, MERGE,
//     ON CONFLICT, set operations.
//
// It was written against an older main than it landed on: the seventh
// round's fixes already refused most of its "leaked before the fix" cases;
// the commit that added it fixed the rest (foreign tables, LANGUAGE
// internal).

import (
	"testing"
	"time"
)

// sl joins SQL parts with a comment on the line of the first part's end:
// PostgreSQL 15 continues a string literal across it.
func sl(a, b string) string { return a + " -- c\n" + b }

// A loopback postgres_fdw server to this very database, made by an
// administrator (a connection definition, not code).
const loopServer8 = `; CREATE EXTENSION postgres_fdw; DO $$BEGIN EXECUTE format('CREATE SERVER loop8 FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L)', host(inet_server_addr()), current_setting('port'), current_database()); END$$; CREATE USER MAPPING FOR PUBLIC SERVER loop8 OPTIONS (user 'postgres', password_required 'false')`

// trigSecret8 is a value of the attacker's from a plain table.
const trigSecret8 = "(SELECT name FROM workspaces ORDER BY name DESC LIMIT 1)"

// trigCase8 creates the trigger function fn through the proxy, attaches it
// to legacy_notes, and inserts a row: the function fills body with a
// plain value from workspaces.
func trigCase8(name, fn string) attackCase {
	return attackCase{name: name, plainOK: true, flights: []flight{
		fl(fn),
		fl("CREATE TRIGGER tg8 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION tg8()"),
		fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
		fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
	}}
}

// renamed8 is a write to legacy_notes.body under the name body2, renamed
// by another connection after the proxy read its catalog; the column is
// renamed back at the end so the check finds what was stored.
func renamed8(name string, write ...any) attackCase {
	return attackCase{name: name, maxAge: time.Millisecond, flights: []flight{
		fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'x')"),
		fl("SELECT count(*) FROM legacy_notes"),
		fl(direct("ALTER TABLE legacy_notes RENAME COLUMN body TO body2")),
		fl(write...),
		fl(direct("ALTER TABLE legacy_notes RENAME COLUMN body2 TO body")),
	}}
}

// reordered8: another connection adds a column before body (drops and
// adds body again): a positional write's third value is body now.
func reordered8(name string, write ...any) attackCase {
	return attackCase{name: name, maxAge: time.Millisecond, flights: []flight{
		fl("SELECT count(*) FROM legacy_notes"),
		fl(direct("ALTER TABLE legacy_notes ADD COLUMN tag text; ALTER TABLE legacy_notes DROP COLUMN body; ALTER TABLE legacy_notes ADD COLUMN body text")),
		fl(write...),
	}}
}

func attackCases8() []attackCase {
	return []attackCase{
		// A. A string continued across a comment on the line of its
		// closing quote.
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/do_name_split_same_line", flights: []flight{
			fl(sl(`DO 'BEGIN INSERT INTO legacy'`, `'_notes (body) VALUES (''SECRET''); END'`)),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/function_body_split_same_line", flights: []flight{
			fl(sl(`CREATE FUNCTION f8a() RETURNS void LANGUAGE sql AS 'INSERT INTO legacy'`, `'_notes (body) VALUES (''SECRET'')'`)),
			fl("SELECT f8a()"),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/procedure_body_split_crlf_tab", flights: []flight{
			fl("CREATE PROCEDURE p8a() LANGUAGE sql AS 'INSERT INTO legacy'\t-- c\r\n'_notes (body) VALUES (''SECRET'')'"),
			fl("CALL p8a()"),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/function_body_split_cr_only", flights: []flight{
			fl("CREATE FUNCTION f8b() RETURNS void LANGUAGE sql AS 'INSERT INTO legacy' --c\r'_notes (body) VALUES (''SECRET'')'"),
			fl("SELECT f8b()"),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/same_line_then_comment_line", flights: []flight{
			fl("DO 'BEGIN INSERT INTO legacy' -- c\n-- d\n  '_notes (body) VALUES (''SECRET''); END'"),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/e_string_same_line", flights: []flight{
			fl(sl(`DO E'BEGIN INSERT INTO legacy'`, `'_notes (body) VALUES (''SECRET''); END'`)),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/form_feed_before_comment", flights: []flight{
			fl("CREATE FUNCTION f8c() RETURNS void LANGUAGE sql AS 'INSERT INTO legacy'\f-- c\n\f'_notes (body) VALUES (''SECRET'')'"),
			fl("SELECT f8c()"),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored.
		{name: "cont8/do_language_comment_with_quote", flights: []flight{
			fl("DO LANGUAGE plpgsql 'BEGIN INSERT INTO legacy' -- it's a 'comment'\n'_notes (body) VALUES (''SECRET''); END'"),
		}},
		{name: "cont8/vertical_tab_joined_by_proxy_only", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SEC'\n\v'RET')"),
		}},
		{name: "cont8/ts_stat_split_same_line", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(sl("SELECT word FROM ts_stat('SELECT array_to_tsvector(ARRAY[body]) FROM legacy'", "'_notes')")),
		}},
		{name: "cont8/query_to_xml_split_same_line", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(sl("SELECT query_to_xml('SELECT body FROM legacy'", "'_notes', true, false, '')")),
		}},
		{name: "cont8/set_config_path_same_line", plainOK: true, ddl: tenantLikePublic, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(sl("SELECT set_config('search'", "'_path', 'public', false)"), insClients("'SECRET'")),
		}},
		{name: "cont8/set_config_scs_same_line", flights: []flight{
			fl(sl("SELECT set_config('standard_conforming'", "'_strings', 'off', false)"), scsPayload),
			fl(scsPayloadValid),
		}},
		{name: "cont8/policy_literal_same_line", flights: []flight{
			fl(sl("INSERT INTO legacy_notes (body) VALUES ('SEC'", "'RET')")),
			fl(sl("SELECT count(*) FROM clients WHERE email = 'SEC'", "'RET'")),
		}},
		// Leaked before the fix: PostgreSQL 15 joins 'a' -- c <newline> 'b' (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment wants a newline right after the quote, the proxy's parser fails on the text, which names no policy table, so it is relayed: plaintext in pg_proc/log, then stored. (here the Parse is relayed before the refusal at Bind.)
		{name: "cont8/function_body_split_extended", flights: []flight{
			fl(ext(sl(`CREATE FUNCTION f8d() RETURNS void LANGUAGE sql AS 'INSERT INTO legacy'`, `'_notes (body) VALUES (''SECRET'')'`)), syncMsg()),
			fl("SELECT f8d()"),
		}},
		{name: "cont8/copy_delimiter_same_line", flights: []flight{
			fl(q(sl("COPY legacy_notes (id, body) FROM STDIN (DELIMITER ','", "'')")), copyData("1,SECRET\n"), copyDone()),
			fl("SELECT 1"),
		}},

		// B. Trigger functions setting NEW's columns without "new.".
		// Leaked before the fix: the trigger function sets NEW's columns without the text "new." (rewrite/relations.go functionBodyMentionsPolicy, rewrite/analyzer.go MayMentionValues); the plain value is stored in legacy_notes.body.
		trigCase8("trig8/new_space_dot", "CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW . body := "+trigSecret8+"; RETURN NEW; END$$"),
		// Leaked before the fix: the trigger function sets NEW's columns without the text "new." (rewrite/relations.go functionBodyMentionsPolicy, rewrite/analyzer.go MayMentionValues); the plain value is stored in legacy_notes.body.
		trigCase8("trig8/quoted_new", `CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "new".body := `+trigSecret8+`; RETURN NEW; END$$`),
		// Leaked before the fix: the trigger function sets NEW's columns without the text "new." (rewrite/relations.go functionBodyMentionsPolicy, rewrite/analyzer.go MayMentionValues); the plain value is stored in legacy_notes.body.
		trigCase8("trig8/new_comment_dot", "CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW/**/.body := "+trigSecret8+"; RETURN NEW; END$$"),
		// Leaked before the fix: the trigger function sets NEW's columns without the text "new." (rewrite/relations.go functionBodyMentionsPolicy, rewrite/analyzer.go MayMentionValues); the plain value is stored in legacy_notes.body.
		trigCase8("trig8/new_newline_dot", "CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW\n.body := "+trigSecret8+"; RETURN NEW; END$$"),
		// Leaked before the fix: the trigger function sets NEW's columns without the text "new." (rewrite/relations.go functionBodyMentionsPolicy, rewrite/analyzer.go MayMentionValues); the plain value is stored in legacy_notes.body.
		trigCase8("trig8/alias_for_new", "CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS $$DECLARE r ALIAS FOR new; BEGIN r.body := "+trigSecret8+"; RETURN r; END$$"),
		// Leaked before the fix: the trigger function sets NEW's columns without the text "new." (rewrite/relations.go functionBodyMentionsPolicy, rewrite/analyzer.go MayMentionValues); the plain value is stored in legacy_notes.body.
		trigCase8("trig8/populate_record", "CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN jsonb_populate_record(NEW, jsonb_build_object('body', "+trigSecret8+")); END$$"),
		trigCase8("trig8/escaped_body", `CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN NEW\x2ebody := `+trigSecret8+`; RETURN NEW; END'`),
		// Leaked before the fix: the trigger function sets NEW's columns without the text "new." (rewrite/relations.go functionBodyMentionsPolicy, rewrite/analyzer.go MayMentionValues); the plain value is stored in legacy_notes.body.
		{name: "trig8/helper_function", plainOK: true, flights: []flight{
			fl("CREATE FUNCTION h8(r anyelement) RETURNS anyelement LANGUAGE sql AS $$ SELECT jsonb_populate_record(r, jsonb_build_object('body', " + trigSecret8 + ")) $$"),
			fl("CREATE FUNCTION tg8() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN h8(NEW); END$$"),
			fl("CREATE TRIGGER tg8 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION tg8()"),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},

		// C. LANGUAGE internal aliases of whole-table functions.
		// Leaked before the fix: LANGUAGE internal AS 'ts_stat1' is ts_stat under another name; the body check (rewrite/relations.go codeMentionsPolicy) knows SQL names only, not the C symbols (ts_stat1, ts_stat2, tsquery_rewrite_query); its words are envelopes.
		{name: "alias8/ts_stat1", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE FUNCTION ws8(q text, OUT word text, OUT ndoc int, OUT nentry int) RETURNS SETOF record LANGUAGE internal STRICT AS 'ts_stat1'"),
			fl("SELECT word FROM ws8('SELECT array_to_tsvector(ARRAY[body]) FROM legacy_notes')"),
		}},
		{name: "alias8/ts_stat2", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE FUNCTION ws8b(q text, w text, OUT word text, OUT ndoc int, OUT nentry int) RETURNS SETOF record LANGUAGE internal STRICT AS 'ts_stat2'"),
			fl("SELECT word FROM ws8b('SELECT array_to_tsvector(ARRAY[body]) FROM legacy_notes', 'd')"),
		}},
		{name: "alias8/table_to_xml_escaped", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(`CREATE FUNCTION tx8(regclass, boolean, boolean, text) RETURNS xml LANGUAGE internal STRICT STABLE AS E'table\137to_xml'`),
			fl("SELECT tx8('legacy_notes', true, false, '')"),
		}},
		{name: "alias8/query_to_xml_escaped", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(`CREATE FUNCTION qx8(text, boolean, boolean, text) RETURNS xml LANGUAGE internal STRICT STABLE AS E'query\137to_xml'`),
			fl("SELECT qx8('SELECT body FROM legacy_notes', true, false, '')"),
		}},
		{name: "alias8/table_to_xml_plain_name", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(`CREATE FUNCTION tx8(regclass, boolean, boolean, text) RETURNS xml LANGUAGE internal STRICT STABLE AS 'table_to_xml'`),
			fl("SELECT tx8('legacy_notes', true, false, '')"),
		}},

		// D. Whole-table functions in DDL.
		// Leaked before the fix: whole-table functions are checked only in planned DML/SELECT expressions (rewrite/funcs.go wholeTableFunc from funcCall); a DEFAULT, domain DEFAULT or view query in DDL is relayed, and the value read later holds envelopes.
		{name: "wt8/column_default", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE TABLE t8 (id int, x xml DEFAULT table_to_xml('legacy' || '_notes', true, false, ''))"),
			fl("INSERT INTO t8 (id) VALUES (1)"),
			fl("SELECT x FROM t8"),
		}},
		// Leaked before the fix: whole-table functions are checked only in planned DML/SELECT expressions (rewrite/funcs.go wholeTableFunc from funcCall); a DEFAULT, domain DEFAULT or view query in DDL is relayed, and the value read later holds envelopes.
		{name: "wt8/alter_default_plain_table", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("ALTER TABLE tenant.clients ALTER COLUMN email SET DEFAULT query_to_xml('SELECT body FROM legacy_notes', true, false, '')::text"),
			fl("INSERT INTO tenant.clients (first_name) VALUES ('a') RETURNING email"),
		}},
		// Leaked before the fix: whole-table functions are checked only in planned DML/SELECT expressions (rewrite/funcs.go wholeTableFunc from funcCall); a DEFAULT, domain DEFAULT or view query in DDL is relayed, and the value read later holds envelopes.
		{name: "wt8/view_over_ts_stat", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE VIEW v8 AS SELECT word FROM ts_stat('SELECT array_to_tsvector(ARRAY[body]) FROM legacy_notes')"),
			fl("SELECT * FROM v8"),
		}},
		// Leaked before the fix: whole-table functions are checked only in planned DML/SELECT expressions (rewrite/funcs.go wholeTableFunc from funcCall); a DEFAULT, domain DEFAULT or view query in DDL is relayed, and the value read later holds envelopes.
		{name: "wt8/domain_default", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE DOMAIN d8 AS text DEFAULT query_to_xml('SELECT body FROM legacy_notes', true, false, '')::text"),
			fl("CREATE TABLE t8 (id int, x d8)"),
			fl("INSERT INTO t8 (id) VALUES (1)"),
			fl("SELECT x FROM t8"),
		}},
		{name: "wt8/create_table_as_ts_stat", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE TABLE t8 AS SELECT word FROM ts_stat('SELECT array_to_tsvector(ARRAY[body]) FROM legacy_notes')"),
			fl("SELECT word FROM t8"),
		}},
		{name: "wt8/materialized_view_table_to_xml", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE MATERIALIZED VIEW mv8 AS SELECT table_to_xml('legacy_notes', true, false, '') AS x"),
			fl("SELECT x FROM mv8"),
		}},
		{name: "wt8/atomic_function", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("CREATE FUNCTION fa8() RETURNS xml LANGUAGE sql BEGIN ATOMIC SELECT table_to_xml('public.legacy_notes'::regclass, true, false, ''); END"),
			fl("SELECT fa8()"),
		}},
		// Leaked before the fix: whole-table functions are checked only in planned DML/SELECT expressions (rewrite/funcs.go wholeTableFunc from funcCall); a DEFAULT, domain DEFAULT or view query in DDL is relayed, and the value read later holds envelopes.
		{name: "wt8/add_column_volatile_default", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("INSERT INTO tenant.clients (first_name) VALUES ('a')"),
			fl("ALTER TABLE tenant.clients ADD COLUMN x8 xml DEFAULT schema_to_xml('public', true, false, '')"),
			fl("SELECT x8 FROM tenant.clients"),
		}},

		// E. postgres_fdw over the policy table.
		// Leaked before the fix: a postgres_fdw foreign table over public.legacy_notes is no relation the proxy ties to the policy table (proxy/catalog.go: views, partitions, inheritance only): writes through it store plaintext, reads return envelopes.
		{name: "fdw8/foreign_table_write", plainOK: true, ddl: loopServer8, flights: []flight{
			fl("CREATE FOREIGN TABLE tenant.ln8 (id int, body text) SERVER loop8 OPTIONS (schema_name 'public', table_name 'legacy_notes')"),
			fl("INSERT INTO tenant.ln8 (id, body) VALUES (800, 'SECRET')"),
		}},
		// Leaked before the fix: a postgres_fdw foreign table over public.legacy_notes is no relation the proxy ties to the policy table (proxy/catalog.go: views, partitions, inheritance only): writes through it store plaintext, reads return envelopes.
		{name: "fdw8/foreign_table_read", ddl: loopServer8, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(`CREATE FOREIGN TABLE tenant.ln8 (id int, body text) SERVER loop8 OPTIONS (schema_name 'public', table_name E'legacy\137notes')`),
			fl("SELECT body FROM tenant.ln8"),
		}},
		// Leaked before the fix: a postgres_fdw foreign table over public.legacy_notes is no relation the proxy ties to the policy table (proxy/catalog.go: views, partitions, inheritance only): writes through it store plaintext, reads return envelopes.
		{name: "fdw8/import_foreign_schema", plainOK: true, ddl: loopServer8, flights: []flight{
			fl("CREATE SCHEMA f8"),
			fl("IMPORT FOREIGN SCHEMA public FROM SERVER loop8 INTO f8"),
			fl("INSERT INTO f8.legacy_notes (id, body) VALUES (801, 'SECRET')"),
			fl("SELECT body FROM f8.legacy_notes"),
		}},

		// F. Writes to a policy column renamed, or moved, by another
		// connection; the catalog is re-read before every statement (within
		// the default 10 s a rename elsewhere is a documented window).
		renamed8("col8/insert_renamed", "INSERT INTO legacy_notes (id, body2) VALUES (2, 'SECRET')"),
		renamed8("col8/update_from_renamed", "UPDATE legacy_notes l SET body2 = v.x FROM (VALUES ('SECRET')) v(x) WHERE l.id = 1"),
		renamed8("col8/on_conflict_renamed", "INSERT INTO legacy_notes (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET body2 = 'SECRET'"),
		renamed8("col8/merge_update_renamed", "MERGE INTO legacy_notes l USING (VALUES (1, 'SECRET')) v(i, x) ON l.id = v.i WHEN MATCHED THEN UPDATE SET body2 = v.x"),
		renamed8("col8/merge_insert_renamed", "MERGE INTO legacy_notes l USING (VALUES (3, 'SECRET')) v(i, x) ON l.id = v.i WHEN NOT MATCHED THEN INSERT (id, body2) VALUES (v.i, v.x)"),
		renamed8("col8/copy_renamed", q("COPY legacy_notes (id, body2) FROM STDIN"), copyData("4\tSECRET\n"), copyDone()),
		renamed8("col8/multi_assign_renamed", "UPDATE legacy_notes SET (id, body2) = (SELECT 1, 'SECRET') WHERE id = 1"),
		renamed8("col8/extended_renamed", ext("UPDATE legacy_notes SET body2 = $1 WHERE id = 1", "SECRET"), syncMsg()),
		reordered8("col8/positional_insert", "INSERT INTO legacy_notes VALUES (5, 'x', 'SECRET')"),
		reordered8("col8/positional_insert_select", "INSERT INTO legacy_notes SELECT 6, 'x', 'SECRET'"),
		reordered8("col8/positional_copy", q("COPY legacy_notes FROM STDIN"), copyData("7\tx\tSECRET\n"), copyDone()),
		reordered8("col8/positional_extended", ext("INSERT INTO legacy_notes VALUES ($1, $2, $3)", "8", "x", "SECRET"), syncMsg()),
		reordered8("col8/positional_merge", "MERGE INTO legacy_notes l USING (VALUES (9)) v(i) ON l.id = v.i WHEN NOT MATCHED THEN INSERT VALUES (v.i, 'x', 'SECRET')"),

		// G. The DML/SELECT rewrite.
		{name: "dml8/on_conflict_excluded_plain_to_policy", plainOK: true, flights: []flight{
			fl("INSERT INTO clients (id, workspace_id, first_name, last_name) SELECT '00000000-0000-0000-0000-000000000801', id, 'a', 'b' FROM workspaces LIMIT 1"),
			fl("INSERT INTO clients (id, workspace_id, first_name, last_name, notes) SELECT '00000000-0000-0000-0000-000000000801', id, 'a', 'b', 'SECRET' FROM workspaces LIMIT 1 ON CONFLICT (id) DO UPDATE SET first_name = EXCLUDED.notes"),
		}},
		{name: "dml8/merge_source_plain_and_policy", plainOK: true, flights: []flight{
			fl("INSERT INTO clients (id, workspace_id, first_name, last_name) SELECT '00000000-0000-0000-0000-000000000802', id, 'a', 'b' FROM workspaces LIMIT 1"),
			fl("MERGE INTO clients c USING (SELECT 'SECRET' AS n) s ON c.id = '00000000-0000-0000-0000-000000000802' WHEN MATCHED THEN UPDATE SET notes = s.n, first_name = s.n"),
		}},
		{name: "dml8/update_copies_plain_column", plainOK: true, flights: []flight{
			fl("INSERT INTO clients (id, workspace_id, first_name, last_name, notes) SELECT '00000000-0000-0000-0000-000000000803', id, 'a', 'b', 'SECRET' FROM workspaces LIMIT 1"),
			fl("UPDATE clients SET first_name = notes WHERE id = '00000000-0000-0000-0000-000000000803'"),
			fl("UPDATE clients SET (first_name, last_name) = (SELECT notes, notes) WHERE id = '00000000-0000-0000-0000-000000000803'"),
		}},
		{name: "dml8/cte_two_roles_plain_table", flights: []flight{
			fl("WITH v(x) AS MATERIALIZED (VALUES ('SECRET')), a AS (INSERT INTO legacy_notes (body) SELECT x FROM v RETURNING id) INSERT INTO tenant.clients (first_name) SELECT x FROM v"),
		}},
		{name: "dml8/lateral_two_columns_two_roles", flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT w.id, l.x, 'b', l.x FROM workspaces w, LATERAL (VALUES ('SECRET')) l(x)"),
			fl("UPDATE clients SET first_name = v.x, notes = v.x FROM (VALUES ('SECRET')) v(x)"),
		}},
		{name: "dml8/recursive_cte_insert", flights: []flight{
			fl("WITH RECURSIVE r(x, n) AS (SELECT 'SECRET', 1 UNION ALL SELECT x, n + 1 FROM r WHERE n < 2) INSERT INTO legacy_notes (body) SELECT x FROM r"),
		}},
		{name: "dml8/set_op_inside_in", flights: []flight{
			fl("SELECT id FROM clients WHERE email IN (SELECT 'SECRET' EXCEPT SELECT 'zz')"),
			fl("SELECT id FROM clients WHERE (email, 1) IN (SELECT 'SECRET', 1 UNION SELECT 'y', 2)"),
		}},
		{name: "dml8/value_compared_with_plain_and_policy", flights: []flight{
			fl("SELECT id FROM clients WHERE email = ANY (SELECT x FROM (VALUES ('SECRET')) v(x) WHERE x IN (SELECT first_name FROM tenant.clients))"),
		}},
		{name: "dml8/rows_from_unnest_insert", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT x FROM ROWS FROM (unnest(ARRAY['SECRET'])) r(x)"),
			fl("INSERT INTO legacy_notes (body) SELECT * FROM unnest('{SECRET}'::text[])"),
		}},
		{name: "dml8/merge_join_on_policy_and_insert", flights: []flight{
			fl("MERGE INTO legacy_notes l USING (SELECT 'SECRET' AS x) s ON l.body = s.x WHEN NOT MATCHED THEN INSERT (body) VALUES (s.x)"),
		}},
		{name: "dml8/values_order_limit", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a'), ('SECRET') ORDER BY 1 DESC LIMIT 1"),
			fl("INSERT INTO legacy_notes (body) SELECT DISTINCT ON (x) x FROM (VALUES ('SECRET'), ('SECRET')) v(x) ORDER BY x"),
		}},
		{name: "dml8/scalar_values_subquery", flights: []flight{
			fl("SELECT id FROM clients WHERE email = (VALUES ('SECRET') LIMIT 1)"),
			fl("INSERT INTO legacy_notes (body) VALUES ((VALUES ('SECRET') OFFSET 0))"),
		}},
		{name: "dml8/returning_compare", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a') RETURNING body = 'SECRET'"),
			fl("DELETE FROM clients WHERE false RETURNING email IN ('SECRET')"),
		}},
		{name: "dml8/declare_cursor_with_hold", flights: []flight{
			fl("DECLARE c8 CURSOR WITH HOLD FOR SELECT id FROM clients WHERE email = 'SECRET' OR email IN (SELECT 'SECRET')"),
			fl("FETCH ALL FROM c8"),
			fl("CLOSE c8"),
		}},
		{name: "dml8/execute_args_expressions", flights: []flight{
			fl("PREPARE p8(text) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE p8(('SECRET'))"),
			fl("EXECUTE p8((SELECT 'SECRET'))"),
			fl("EXECUTE p8(CASE WHEN true THEN 'SECRET' END)"),
		}},
		// H. A plain column's value carried into a policy column through
		// scalar subqueries, CTEs and ALTER … TYPE … USING.
		{name: "flow8/scalar_subquery_outer_ref", plainOK: true, flights: []flight{
			fl(seedNotes8),
			fl("UPDATE clients SET first_name = (SELECT notes) WHERE id = '00000000-0000-0000-0000-000000000804'"),
			fl("UPDATE clients SET first_name = (SELECT n FROM (SELECT notes AS n) s) WHERE id = '00000000-0000-0000-0000-000000000804'"),
			fl("UPDATE clients SET (first_name, last_name) = (SELECT notes, 'x') WHERE id = '00000000-0000-0000-0000-000000000804'"),
		}},
		{name: "flow8/cte_and_merge_source", plainOK: true, flights: []flight{
			fl(seedNotes8),
			fl("WITH s AS (SELECT notes FROM clients WHERE notes IS NOT NULL) UPDATE clients SET first_name = (SELECT notes FROM s LIMIT 1)"),
			fl("MERGE INTO clients c USING (SELECT id, notes FROM clients) s ON c.id = s.id WHEN MATCHED THEN UPDATE SET last_name = s.notes"),
			fl("INSERT INTO legacy_notes (body) SELECT (SELECT notes FROM clients WHERE notes IS NOT NULL LIMIT 1)"),
		}},
		{name: "flow8/alter_type_using", plainOK: true, flights: []flight{
			fl(seedNotes8),
			fl("ALTER TABLE clients ALTER COLUMN first_name TYPE text USING notes"),
			fl("ALTER TABLE legacy_notes ALTER COLUMN body TYPE text USING 'SECRET'"),
		}},
	}
}

// seedNotes8 stores the marker in clients.notes, a plain column.
const seedNotes8 = "INSERT INTO clients (id, workspace_id, first_name, last_name, notes) SELECT '00000000-0000-0000-0000-000000000804', id, 'a', 'b', 'SECRET' FROM workspaces LIMIT 1"

func TestAttackSuite8(t *testing.T) {
	runAttacks(t, 8000, attackCases8())
}
