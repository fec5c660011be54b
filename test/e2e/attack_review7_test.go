package e2e

// A seventh round of the attacker's suite (see attack_test.go), written by
// a review helper trying to get past the sixth round's fixes. Its themes:
//
//   - strings continued across a -- comment that sits on the same line as
//     the closing quote ('a' -- c <newline> 'b'), which PostgreSQL 15
//     joins (horiz_whitespace includes a comment) while the proxy's filter
//     looks only for comments on lines of their own;
//   - trigger functions that set NEW's columns without writing "new.";
//   - whole-table functions reached under another name (a renamed
//     pg_catalog function, SQL-standard bodies, defaults, views, cursors);
//   - catalog writes that are not a top-level INSERT/UPDATE/DELETE/MERGE
//     of a catalog (a writable CTE, a view over pg_attribute);
//   - prepared statements whose positional columns move on another
//     connection.
//
// Cases marked "leaked before the fix" did so when the file was written;
// the commit that added it fixed them.

import (
	"strings"
	"testing"
	"time"
)

// sameLine joins SQL parts with a -- comment after the first part's
// closing quote, then a newline: PostgreSQL 15 continues the string.
func sameLine(parts ...string) string { return strings.Join(parts, " -- c\n") }

// Trigger pattern of the sixth round: the value comes from a plain table.
func trig7(name, body string) []flight {
	return []flight{
		fl("CREATE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql AS $$" + body + "$$"),
		fl("CREATE TRIGGER " + name + " BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION " + name + "()"),
		fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
		fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
	}
}

const latestWorkspace = "(SELECT name FROM workspaces ORDER BY name DESC LIMIT 1)"

// seedNote writes an encrypted row (the marker, encrypted by the proxy).
var seedNote = fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')")

// notesQuery names legacy_notes only once concatenated on the server.
const notesQuery = `'SELECT body FROM legacy_' || 'notes'`

// extraCol gives legacy_notes a plain column after body.
const extraCol = "; ALTER TABLE legacy_notes ADD COLUMN extra text"

func attackCases7() []attackCase {
	return []attackCase{
		// A. A comment after the closing quote, on the same line.
		// Leaked before the fix: PostgreSQL 15 continues a string across `' -- c<newline>'` (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment only matches comments on lines of their own, so the proxy's parser sees two strings and the checks miss the split name.
		{name: "cont7/do_comment_after_quote", flights: []flight{
			fl(sameLine(`DO 'BEGIN INSERT INTO legacy_'`, `'notes (body) VALUES (''SECRET''); END'`)),
		}},
		// Leaked before the fix: PostgreSQL 15 continues a string across `' -- c<newline>'` (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment only matches comments on lines of their own, so the proxy's parser sees two strings and the checks miss the split name.
		{name: "cont7/do_comment_after_quote_cr", flights: []flight{
			fl("DO 'BEGIN INSERT INTO legacy_'\t-- c\r'notes (body) VALUES (''SECRET''); END'"),
		}},
		// Leaked before the fix: PostgreSQL 15 continues a string across `' -- c<newline>'` (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment only matches comments on lines of their own, so the proxy's parser sees two strings and the checks miss the split name.
		{name: "cont7/do_comment_then_comment_line", flights: []flight{
			fl("DO 'BEGIN INSERT INTO legacy_' -- c\n-- d\n'notes (body) VALUES (''SECRET''); END'"),
		}},
		// Leaked before the fix: PostgreSQL 15 continues a string across `' -- c<newline>'` (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment only matches comments on lines of their own, so the proxy's parser sees two strings and the checks miss the split name.
		{name: "cont7/do_escape_string", flights: []flight{
			fl(sameLine(`DO E'BEGIN INSERT INTO legacy_'`, `'notes (body) VALUES (''SECRET''); END'`)),
		}},
		// Leaked before the fix: as cont7/do_comment_after_quote; the Parse carrying the marker reaches the server before the Bind is refused.
		{name: "cont7/do_extended", flights: []flight{
			fl(ext(sameLine(`DO 'BEGIN INSERT INTO legacy_'`, `'notes (body) VALUES (''SECRET''); END'`)), syncMsg()),
		}},
		// Leaked before the fix: PostgreSQL 15 continues a string across `' -- c<newline>'` (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment only matches comments on lines of their own, so the proxy's parser sees two strings and the checks miss the split name.
		{name: "cont7/function_body", flights: []flight{
			fl(sameLine(`CREATE FUNCTION f7() RETURNS void LANGUAGE sql AS 'INSERT INTO legacy_'`, `'notes (body) VALUES (''SECRET'')'`)),
			fl("SELECT f7()"),
		}},
		// Leaked before the fix: PostgreSQL 15 continues a string across `' -- c<newline>'` (a comment on the closing quote's line); rewrite/scs.go continuedAcrossComment only matches comments on lines of their own, so the proxy's parser sees two strings and the checks miss the split name.
		{name: "cont7/procedure_body", flights: []flight{
			fl(sameLine(`CREATE PROCEDURE p7() LANGUAGE sql AS 'INSERT INTO legacy_'`, `'notes (body) VALUES (''SECRET'')'`)),
			fl("CALL p7()"),
		}},
		// Leaked before the fix: as cont7/do_comment_after_quote, with query_ and to_xml split: the function returns envelopes inside XML.
		{name: "cont7/function_body_query_to_xml", flights: []flight{
			seedNote,
			fl(sameLine(`CREATE FUNCTION qx7() RETURNS xml LANGUAGE sql AS 'SELECT query_'`, `'to_xml(''SELECT body FROM legacy_'' || ''notes'', true, false, '''')'`)),
			fl("SELECT qx7()"),
		}},
		{name: "cont7/function_body_value_in_second_part", plainOK: true, flights: []flight{
			fl(sameLine(`CREATE FUNCTION f7b() RETURNS void LANGUAGE sql AS 'INSERT INTO workspaces (name) VALUES (''a'');'`, `' UPDATE legacy_' || 'notes SET body = ''SECRET'''`)),
		}},

		// B. Trigger functions that set NEW's columns without "new.".
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/quoted_new", plainOK: true, flights: trig7("tq7", `BEGIN "new".body := `+latestWorkspace+`; RETURN NEW; END`)},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/spaced_new", plainOK: true, flights: trig7("ts7", `BEGIN NEW . body := `+latestWorkspace+`; RETURN NEW; END`)},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/comment_before_dot", plainOK: true, flights: trig7("tc7", `BEGIN NEW/**/.body := `+latestWorkspace+`; RETURN NEW; END`)},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/populate_record_assign", plainOK: true, flights: trig7("tp7", `BEGIN NEW := jsonb_populate_record(NEW, jsonb_build_object('body', `+latestWorkspace+`)); RETURN NEW; END`)},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/return_populate_record", plainOK: true, flights: trig7("tr7", `BEGIN RETURN json_populate_record(NEW, json_build_object('body', `+latestWorkspace+`)); END`)},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/copy_to_record", plainOK: true, flights: trig7("tk7", `DECLARE r record; BEGIN r := NEW; r.body := `+latestWorkspace+`; RETURN r; END`)},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/qualified_trigger_type", plainOK: true, flights: []flight{
			fl(`CREATE FUNCTION tt7() RETURNS pg_catalog."trigger" LANGUAGE plpgsql AS $$BEGIN "new".body := ` + latestWorkspace + `; RETURN NEW; END$$`),
			fl("CREATE TRIGGER tt7 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE PROCEDURE tt7()"),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy looks for the text "new." (and MayMentionValues needs it to parse at all); this body sets NEW's columns without it, so plaintext from a plain table lands in a policy column.
		{name: "trig7/update_trigger_on_clients", plainOK: true, flights: []flight{
			fl(`CREATE FUNCTION tu7() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "new".first_name := ` + latestWorkspace + `; RETURN NEW; END$$`),
			fl("CREATE TRIGGER tu7 BEFORE UPDATE ON clients FOR EACH ROW EXECUTE FUNCTION tu7()"),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl(insClients("'a'")),
			fl("UPDATE clients SET last_name = 'y'"),
		}},

		// C. Whole-table functions under other names or in stored code.
		// Leaked before the fix: whole-table functions are known by name only (rewrite/funcs.go wholeTableFuncs, MayMentionValues' text scan); ALTER FUNCTION … RENAME of the pg_catalog function is accepted and the renamed call is relayed unparsed, returning envelopes.
		{name: "xml7/renamed_query_to_xml", flights: []flight{
			seedNote,
			fl("ALTER FUNCTION pg_catalog.query_to_xml(text, boolean, boolean, text) RENAME TO qx7"),
			fl("SELECT qx7(" + notesQuery + ", true, false, '')"),
		}},
		// Leaked before the fix: whole-table functions are known by name only (rewrite/funcs.go wholeTableFuncs, MayMentionValues' text scan); ALTER FUNCTION … RENAME of the pg_catalog function is accepted and the renamed call is relayed unparsed, returning envelopes.
		{name: "xml7/renamed_table_to_xml", flights: []flight{
			seedNote,
			fl("ALTER FUNCTION pg_catalog.table_to_xml(regclass, boolean, boolean, text) RENAME TO tx7"),
			fl("SELECT tx7(('legacy_' || 'notes')::regclass, true, false, '')"),
		}},
		// Leaked before the fix: whole-table functions are known by name only (rewrite/funcs.go wholeTableFuncs, MayMentionValues' text scan); ALTER FUNCTION … RENAME of the pg_catalog function is accepted and the renamed call is relayed unparsed, returning envelopes.
		{name: "xml7/renamed_ts_stat", flights: []flight{
			seedNote,
			fl("ALTER FUNCTION pg_catalog.ts_stat(text) RENAME TO st7"),
			fl("SELECT word FROM st7('SELECT quote_literal(body)::tsvector FROM legacy_' || 'notes')"),
		}},
		// Leaked before the fix: whole-table functions are known by name only (rewrite/funcs.go wholeTableFuncs, MayMentionValues' text scan); ALTER FUNCTION … RENAME of the pg_catalog function is accepted and the renamed call is relayed unparsed, returning envelopes.
		{name: "xml7/function_moved_schema", flights: []flight{
			seedNote,
			fl("CREATE SCHEMA s7"),
			fl("ALTER FUNCTION pg_catalog.query_to_xml(text, boolean, boolean, text) SET SCHEMA s7"),
			fl("ALTER FUNCTION s7.query_to_xml(text, boolean, boolean, text) RENAME TO q"),
			fl("SELECT s7.q(" + notesQuery + ", true, false, '')"),
		}},
		// Leaked before the fix: rewrite/funcs.go wholeTableFunc runs only from planner.funcCall on statements the planner walks; the call stored in DDL (SQL-standard function body, DEFAULT, domain default, view) is accepted, and the later use names no whole-table function, so the envelopes come back.
		{name: "xml7/sql_body_return", flights: []flight{
			seedNote,
			fl("CREATE FUNCTION qr7(q text) RETURNS xml LANGUAGE sql RETURN query_to_xml(q, true, false, '')"),
			fl("SELECT qr7(" + notesQuery + ")"),
		}},
		// Leaked before the fix: rewrite/funcs.go wholeTableFunc runs only from planner.funcCall on statements the planner walks; the call stored in DDL (SQL-standard function body, DEFAULT, domain default, view) is accepted, and the later use names no whole-table function, so the envelopes come back.
		{name: "xml7/sql_body_atomic", flights: []flight{
			seedNote,
			fl("CREATE FUNCTION qa7(r regclass) RETURNS xml LANGUAGE sql BEGIN ATOMIC SELECT table_to_xml(r, true, false, ''); END"),
			fl("SELECT qa7(('legacy_' || 'notes')::regclass)"),
		}},
		// Leaked before the fix: rewrite/funcs.go wholeTableFunc runs only from planner.funcCall on statements the planner walks; the call stored in DDL (SQL-standard function body, DEFAULT, domain default, view) is accepted, and the later use names no whole-table function, so the envelopes come back.
		{name: "xml7/column_default", flights: []flight{
			seedNote,
			fl("CREATE TABLE d7 (id int, x xml DEFAULT query_to_xml(" + notesQuery + ", true, false, ''))"),
			fl("INSERT INTO d7 (id) VALUES (1) RETURNING x"),
			fl("SELECT x FROM d7"),
		}},
		// Leaked before the fix: rewrite/funcs.go wholeTableFunc runs only from planner.funcCall on statements the planner walks; the call stored in DDL (SQL-standard function body, DEFAULT, domain default, view) is accepted, and the later use names no whole-table function, so the envelopes come back.
		{name: "xml7/domain_default", flights: []flight{
			seedNote,
			fl("CREATE DOMAIN dx7 AS xml DEFAULT query_to_xml(" + notesQuery + ", true, false, '')"),
			fl("CREATE TABLE dd7 (id int, x dx7)"),
			fl("INSERT INTO dd7 (id) VALUES (1) RETURNING x"),
		}},
		// Leaked before the fix: rewrite/funcs.go wholeTableFunc runs only from planner.funcCall on statements the planner walks; the call stored in DDL (SQL-standard function body, DEFAULT, domain default, view) is accepted, and the later use names no whole-table function, so the envelopes come back.
		{name: "xml7/view_over_call", flights: []flight{
			seedNote,
			fl("CREATE VIEW vx7 AS SELECT query_to_xml(" + notesQuery + ", true, false, '') AS x"),
			fl("SELECT x FROM vx7"),
		}},
		{name: "xml7/matview_over_call", flights: []flight{
			seedNote,
			fl("CREATE MATERIALIZED VIEW mx7 AS SELECT query_to_xml(" + notesQuery + ", true, false, '') AS x"),
			fl("SELECT x FROM mx7"),
		}},
		{name: "xml7/prepare_param", flights: []flight{
			seedNote,
			fl("PREPARE px7(text) AS SELECT query_to_xml($1, true, false, '')"),
			fl("EXECUTE px7(" + notesQuery + ")"),
		}},
		{name: "xml7/cursor_with_hold", flights: []flight{
			seedNote,
			fl("DECLARE cx7 CURSOR WITH HOLD FOR SELECT query_to_xml(" + notesQuery + ", true, false, '')"),
			fl("FETCH ALL FROM cx7"),
		}},
		{name: "xml7/regclass_from_catalog", flights: []flight{
			seedNote,
			fl("SELECT table_to_xml(c.oid::regclass, true, false, '') FROM pg_class c WHERE c.relname = 'legacy_' || 'notes'"),
		}},
		{name: "xml7/schema_from_function", flights: []flight{
			seedNote,
			fl("SELECT schema_to_xml(current_schema(), true, false, '')"),
		}},
		{name: "xml7/lateral_query_text_from_table", flights: []flight{
			seedNote,
			fl("CREATE TABLE qt7 (q text)"),
			fl("INSERT INTO qt7 VALUES (" + notesQuery + ")"),
			fl("SELECT query_to_xml(q, true, false, '') FROM qt7"),
		}},
		{name: "xml7/generated_column", flights: []flight{
			seedNote,
			fl("CREATE TABLE g7 (q text, x xml GENERATED ALWAYS AS (query_to_xml(q, true, false, '')) STORED)"),
			fl("INSERT INTO g7 (q) VALUES (" + notesQuery + ") RETURNING x"),
		}},

		// D. Catalog writes the statement filter does not see as such.
		// Leaked before the fix: rewrite/stmt.go writesCatalog only sees a top-level INSERT/UPDATE/DELETE/MERGE naming a catalog; this catalog write (writable CTE, view over the catalog, rule, function) leaves the proxy's catalog stale, so the renamed policy column or table is written in plaintext.
		{name: "cat7/cte_update_pg_attribute", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("WITH x AS (UPDATE pg_attribute SET attname = 'b7' WHERE attname = 'body' AND attrelid = (SELECT oid FROM pg_class WHERE relname = 'legacy_' || 'notes') RETURNING 1) SELECT count(*) FROM x"),
			fl("INSERT INTO legacy_notes (b7) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog only sees a top-level INSERT/UPDATE/DELETE/MERGE naming a catalog; this catalog write (writable CTE, view over the catalog, rule, function) leaves the proxy's catalog stale, so the renamed policy column or table is written in plaintext.
		{name: "cat7/cte_update_pg_class", maxAge: time.Millisecond, flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl(direct("WITH x AS (UPDATE pg_class SET relname = 'ln7' WHERE relname = 'legacy_' || 'notes' RETURNING 1) SELECT count(*) FROM x")),
			fl("INSERT INTO ln7 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog only sees a top-level INSERT/UPDATE/DELETE/MERGE naming a catalog; this catalog write (writable CTE, view over the catalog, rule, function) leaves the proxy's catalog stale, so the renamed policy column or table is written in plaintext.
		{name: "cat7/view_over_pg_attribute", ddl: "; CREATE VIEW pa7 AS SELECT attrelid, attname FROM pg_attribute", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("UPDATE pa7 SET attname = 'b7' WHERE attname = 'body' AND attrelid = (SELECT oid FROM pg_class WHERE relname = 'legacy_' || 'notes')"),
			fl("INSERT INTO legacy_notes (b7) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog only sees a top-level INSERT/UPDATE/DELETE/MERGE naming a catalog; this catalog write (writable CTE, view over the catalog, rule, function) leaves the proxy's catalog stale, so the renamed policy column or table is written in plaintext.
		// A superuser renaming the table through a view over pg_class: the
		// proxy cannot tell ln7 is legacy_notes until its next catalog
		// read, so only the guard stops the plaintext (documented limit).
		{name: "cat7/view_over_pg_class_created_in_session", storedOnly: true, ddl: "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')", flights: []flight{
			fl("CREATE VIEW pc7 AS SELECT oid, relname FROM pg_class"),
			fl("SELECT count(*) FROM legacy_notes"),
			fl("UPDATE pc7 SET relname = 'ln7' WHERE relname = 'legacy_' || 'notes'"),
			fl("INSERT INTO ln7 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog only sees a top-level INSERT/UPDATE/DELETE/MERGE naming a catalog; this catalog write (writable CTE, view over the catalog, rule, function) leaves the proxy's catalog stale, so the renamed policy column or table is written in plaintext.
		{name: "cat7/rule_on_plain_table_writes_catalog", flights: []flight{
			fl("CREATE TABLE r7 (a text)"),
			fl("CREATE RULE r7 AS ON INSERT TO r7 DO ALSO UPDATE pg_attribute SET attname = NEW.a WHERE attname = 'body' AND attrelid = (SELECT oid FROM pg_class WHERE relname = 'legacy_' || 'notes')"),
			fl("SELECT count(*) FROM legacy_notes"),
			fl("INSERT INTO r7 VALUES ('b7')"),
			fl("INSERT INTO legacy_notes (b7) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog only sees a top-level INSERT/UPDATE/DELETE/MERGE naming a catalog; this catalog write (writable CTE, view over the catalog, rule, function) leaves the proxy's catalog stale, so the renamed policy column or table is written in plaintext.
		{name: "cat7/copy_into_view_over_catalog", ddl: "; CREATE VIEW pa7 AS SELECT attrelid, attname FROM pg_attribute", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("WITH y AS (UPDATE pa7 SET attname = 'b7' WHERE attname = 'body' AND attrelid = (SELECT oid FROM pg_class WHERE relname = 'legacy_' || 'notes') RETURNING 1) SELECT count(*) FROM y"),
			fl("INSERT INTO legacy_notes (id, b7) VALUES (7, 'SECRET')"),
		}},
		// The heap file read with a superuser's file functions.
		// Leaked before the fix: ciphertext only (superuser file functions): pg_read_binary_file of the heap file returns envelopes; nothing checks file-reading functions.
		{name: "cat7/heap_file_read", outputs: true, flights: []flight{
			seedNote,
			fl("CHECKPOINT"),
			fl("SELECT encode(pg_read_binary_file(pg_relation_filepath('legacy_' || 'notes')), 'escape')"),
		}},

		// E. Positional columns moved on another connection. Both values
		// are the marker (plainOK): whichever column each lands in, no
		// policy column may hold it in plaintext.
		{name: "prep7/named_columns_moved_elsewhere", plainOK: true, ddl: extraCol, maxAge: time.Millisecond, flights: []flight{
			fl(parseNamed("s7", "INSERT INTO legacy_notes VALUES (1, $1, $2)"), syncMsg()),
			fl(direct("ALTER TABLE legacy_notes DROP COLUMN body"), direct("ALTER TABLE legacy_notes ADD COLUMN body text")),
			fl(bindNamed("s7", "SECRET", "SECRET"), syncMsg()),
		}},
		{name: "prep7/unnamed_columns_moved_elsewhere", plainOK: true, ddl: extraCol, maxAge: time.Millisecond, flights: []flight{
			fl(parseNamed("", "INSERT INTO legacy_notes VALUES (1, $1, $2)"), syncMsg()),
			fl(direct("ALTER TABLE legacy_notes DROP COLUMN body"), direct("ALTER TABLE legacy_notes ADD COLUMN body text")),
			fl(bindNamed("", "SECRET", "SECRET"), syncMsg()),
		}},
		{name: "prep7/sql_prepare_columns_moved_elsewhere", plainOK: true, ddl: extraCol, maxAge: time.Millisecond, flights: []flight{
			fl("PREPARE sp7(text, text) AS INSERT INTO legacy_notes VALUES (1, $1, $2)"),
			fl(direct("ALTER TABLE legacy_notes DROP COLUMN body"), direct("ALTER TABLE legacy_notes ADD COLUMN body text")),
			fl("EXECUTE sp7('SECRET', 'SECRET')"),
		}},
		{name: "prep7/named_columns_moved_in_session", plainOK: true, ddl: extraCol, flights: []flight{
			fl(parseNamed("s7", "INSERT INTO legacy_notes VALUES (1, $1, $2)"), syncMsg()),
			fl("ALTER TABLE legacy_notes DROP COLUMN body, ADD COLUMN body text"),
			fl(bindNamed("s7", "SECRET", "SECRET"), syncMsg()),
		}},
		{name: "prep7/select_star_columns_moved", ddl: extraCol + "; INSERT INTO legacy_notes (id, extra) VALUES (1, 'e')", maxAge: time.Millisecond, flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET')"),
			fl(parseNamed("r7", "SELECT * FROM legacy_notes WHERE id = 2"), syncMsg()),
			fl(direct("ALTER TABLE legacy_notes ADD COLUMN body2 text"), direct("UPDATE legacy_notes SET body2 = body"), direct("ALTER TABLE legacy_notes DROP COLUMN body"), direct("ALTER TABLE legacy_notes RENAME body2 TO body")),
			fl(bindNamed("r7"), syncMsg()),
		}},
		// F. More places a whole-table call can sit outside a SELECT the
		// planner walks, and a catalog write inside a function.
		{name: "xml7/create_table_as", flights: []flight{
			seedNote,
			fl("CREATE TABLE ca7 AS SELECT query_to_xml(" + notesQuery + ", true, false, '') AS x"),
			fl("SELECT x FROM ca7"),
		}},
		{name: "xml7/insert_select_into_plain", flights: []flight{
			seedNote,
			fl("CREATE TABLE is7 (x xml)"),
			fl("INSERT INTO is7 SELECT query_to_xml(" + notesQuery + ", true, false, '')"),
			fl("SELECT x FROM is7"),
		}},
		{name: "xml7/returning_of_plain_insert", flights: []flight{
			seedNote,
			fl("CREATE TABLE rt7 (a int)"),
			fl("INSERT INTO rt7 VALUES (1) RETURNING query_to_xml(" + notesQuery + ", true, false, '')"),
		}},
		{name: "xml7/update_set_plain", flights: []flight{
			seedNote,
			fl("CREATE TABLE us7 (a int, x xml)"),
			fl("INSERT INTO us7 (a) VALUES (1)"),
			fl("UPDATE us7 SET x = table_to_xml(('legacy_' || 'notes')::regclass, true, false, '')"),
			fl("SELECT x FROM us7"),
		}},
		// Leaked before the fix: rewrite/funcs.go wholeTableFunc runs only from planner.funcCall on statements the planner walks; the call stored in DDL (SQL-standard function body, DEFAULT, domain default, view) is accepted, and the later use names no whole-table function, so the envelopes come back.
		{name: "xml7/add_column_default", flights: []flight{
			seedNote,
			fl("CREATE TABLE ac7 (a int)"),
			fl("INSERT INTO ac7 VALUES (1)"),
			fl("ALTER TABLE ac7 ADD COLUMN x xml DEFAULT query_to_xml(" + notesQuery + ", true, false, '')"),
			fl("SELECT x FROM ac7"),
		}},
		// Leaked before the fix: rewrite/funcs.go wholeTableFunc runs only from planner.funcCall on statements the planner walks; the call stored in DDL (SQL-standard function body, DEFAULT, domain default, view) is accepted, and the later use names no whole-table function, so the envelopes come back.
		{name: "xml7/set_default_on_plain", flights: []flight{
			seedNote,
			fl("CREATE TABLE sd7 (a int, x xml)"),
			fl("ALTER TABLE sd7 ALTER COLUMN x SET DEFAULT query_to_xml(" + notesQuery + ", true, false, '')"),
			fl("INSERT INTO sd7 (a) VALUES (1)"),
			fl("SELECT x FROM sd7"),
		}},
		// Leaked before the fix: whole-table functions are known by name only (rewrite/funcs.go wholeTableFuncs, MayMentionValues' text scan); ALTER FUNCTION … RENAME of the pg_catalog function is accepted and the renamed call is relayed unparsed, returning envelopes.
		{name: "xml7/renamed_cursor_to_xml", flights: []flight{
			seedNote,
			fl("ALTER FUNCTION pg_catalog.cursor_to_xml(refcursor, integer, boolean, boolean, text) RENAME TO cx7"),
			fl("BEGIN"),
			fl("DECLARE c7 CURSOR FOR SELECT * FROM legacy_notes"),
			fl("SELECT cx7('c7', 10, true, false, '')"),
			fl("COMMIT"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog only sees a top-level INSERT/UPDATE/DELETE/MERGE naming a catalog; this catalog write (writable CTE, view over the catalog, rule, function) leaves the proxy's catalog stale, so the renamed policy column or table is written in plaintext.
		{name: "cat7/function_updates_pg_attribute", flights: []flight{
			fl("CREATE FUNCTION ren7() RETURNS void LANGUAGE sql AS $$UPDATE pg_attribute SET attname = 'b7' WHERE attname = 'body' AND attrelid = (SELECT oid FROM pg_class WHERE relname = 'legacy_' || 'notes')$$"),
			fl("SELECT count(*) FROM legacy_notes"),
			fl("SELECT ren7()"),
			fl("INSERT INTO legacy_notes (b7) VALUES ('SECRET')"),
		}},
		// G. A policy column dropped and added again before the session:
		// positions no longer follow attnum.
		{name: "cols7/readded_column_positional_insert", ddl: extraCol + "; ALTER TABLE legacy_notes DROP COLUMN body; ALTER TABLE legacy_notes ADD COLUMN body text", flights: []flight{
			fl("INSERT INTO legacy_notes VALUES (1, 'a', 'SECRET')"),
		}},
		{name: "cols7/readded_column_positional_param", ddl: extraCol + "; ALTER TABLE legacy_notes DROP COLUMN body; ALTER TABLE legacy_notes ADD COLUMN body text", flights: []flight{
			fl(ext("INSERT INTO legacy_notes VALUES (1, $1, $2)", "a", "SECRET"), syncMsg()),
		}},
		{name: "cols7/readded_column_copy_no_list", ddl: extraCol + "; ALTER TABLE legacy_notes DROP COLUMN body; ALTER TABLE legacy_notes ADD COLUMN body text", flights: []flight{
			fl(q("COPY legacy_notes FROM STDIN"), copyData("1\ta\tSECRET\n"), copyDone()),
		}},
		{name: "prep7/named_columns_moved_elsewhere_query_between", plainOK: true, ddl: extraCol, maxAge: time.Millisecond, flights: []flight{
			fl(parseNamed("s7", "INSERT INTO legacy_notes VALUES (1, $1, $2)"), syncMsg()),
			fl(direct("ALTER TABLE legacy_notes DROP COLUMN body"), direct("ALTER TABLE legacy_notes ADD COLUMN body text")),
			fl(direct("SELECT pg_sleep(0.05)")),
			fl("SELECT count(*) FROM legacy_notes"),
			fl(bindNamed("s7", "SECRET", "SECRET"), syncMsg()),
		}},
		// Leaked before the fix: as cat7/cte_update_pg_attribute: a pg_inherits row written in a CTE makes plain7 a child of legacy_notes unseen; its plaintext is read as the policy table's.
		{name: "cat7/cte_insert_pg_inherits", plainOK: true, ddl: "; CREATE TABLE plain7 (id int NOT NULL DEFAULT 0, body text)", flights: []flight{
			fl("SELECT count(*) FROM legacy_notes"),
			fl("WITH p AS (SELECT oid FROM pg_class WHERE relname = 'legacy_' || 'notes'), i AS (INSERT INTO pg_inherits SELECT 'plain7'::regclass, oid, 1, false FROM p RETURNING 1), u AS (UPDATE pg_class SET relhassubclass = true WHERE oid IN (SELECT oid FROM p) RETURNING 1) SELECT (SELECT count(*) FROM i) + (SELECT count(*) FROM u)"),
			fl("INSERT INTO plain7 (id, body) VALUES (7, 'SECRET')"),
			fl("SELECT id, body FROM legacy_notes"),
		}},
	}
}

func TestAttackSuite7(t *testing.T) {
	runAttacks(t, 7000, attackCases7())
}
