package e2e

// A ninth round of the attacker's suite (see attack_test.go), written by a
// review helper against commit 1d47324 (trigger functions may be created
// through the proxy; CREATE TRIGGER on a policy table and CREATE OR
// REPLACE of a trigger function are refused). Its themes:
//
//   - a trigger that comes to fire on a policy table's rows without a
//     CREATE TRIGGER on it: row triggers of a partitioned table are cloned
//     onto a table attached to it (ATTACH PARTITION, CREATE TABLE …
//     PARTITION OF), a table with triggers moved or renamed into a policy
//     table's name, a trigger moved by a catalog write;
//   - code created through the proxy that names a relation which only
//     later becomes a parent of a policy table;
//   - renames and ALTERs spelled with another object type, which
//     PostgreSQL applies to tables (ALTER INDEX … RENAME, ALTER VIEW /
//     FOREIGN TABLE / MATERIALIZED VIEW … RENAME COLUMN);
//   - DDL run as elements of CREATE SCHEMA, which the proxy does not
//     analyse.

// The fix refuses, through the proxy, DDL that ties a policy table to
// another table; cases of earlier rounds that made such ties through the
// proxy now make them on a direct connection (with a short CatalogMaxAge),
// so what they tested, the proxy following a tie it learns from the
// catalog, is still tested.
//
// Cases marked plainOK whose value reached the server before the fix now
// write it to a plain table: the DDL that would have tied that table to a
// policy table (ATTACH, INHERIT, a rename) is refused, so only the policy
// columns are checked.

import (
	"testing"
)

// parent9 is a partitioned table shaped like legacy_notes, made through
// the proxy: nothing ties it to the policy yet.
const parent9 = "CREATE TABLE pt9 (id int NOT NULL, body text) PARTITION BY LIST (id)"

// attach9 makes legacy_notes pt9's default partition.
const attach9 = "ALTER TABLE pt9 ATTACH PARTITION legacy_notes DEFAULT"

// fillBody9 is a trigger function (new, attached to no policy table)
// that fills body with the newest workspace name, a plain value.
const fillBody9 = "CREATE FUNCTION tg9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := " + latestWorkspace + "; RETURN NEW; END$$"

func attackCases9() []attackCase {
	return []attackCase{
		// A. Triggers that reach a policy table without CREATE TRIGGER on it.
		// Leaked before the fix: ATTACH PARTITION of a policy table is not refused (rewrite/ddl.go noteDerived only records it), and PostgreSQL clones the parent's row triggers onto it; the BEFORE trigger made on pt9 writes a plain value into legacy_notes.body.
		{name: "trig9/partition_attach_clones_row_trigger", plainOK: true, flights: []flight{
			fl(parent9),
			fl(fillBody9),
			fl("CREATE TRIGGER tg9 BEFORE INSERT ON pt9 FOR EACH ROW EXECUTE FUNCTION tg9()"),
			fl(attach9),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// Leaked before the fix: ATTACH PARTITION of a policy table is not refused (rewrite/ddl.go noteDerived only records it), and PostgreSQL clones the parent's row triggers onto it; the cloned trigger's argument (stored on pt9) is written into body.
		{name: "trig9/partition_attach_trigger_argument", plainOK: true, flights: []flight{
			fl(parent9),
			fl("CREATE FUNCTION ta9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := TG_ARGV[0]; RETURN NEW; END$$"),
			fl("CREATE TRIGGER ta9 BEFORE INSERT ON pt9 FOR EACH ROW EXECUTE FUNCTION ta9('SECRET')"),
			fl(attach9),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// Leaked before the fix: ATTACH PARTITION of a policy table is not refused (rewrite/ddl.go noteDerived only records it), and PostgreSQL clones the parent's row triggers onto it; the cloned AFTER trigger copies the envelope into plain table log9, read back as ciphertext.
		{name: "trig9/partition_attach_after_trigger_copies_ciphertext", flights: []flight{
			fl(parent9),
			fl("CREATE TABLE log9 (b text)"),
			fl("CREATE FUNCTION tl9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO log9 VALUES (NEW.body); RETURN NULL; END$$"),
			fl("CREATE TRIGGER tl9 AFTER INSERT ON pt9 FOR EACH ROW EXECUTE FUNCTION tl9()"),
			fl(attach9),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT b FROM log9"),
		}},
		// Leaked before the fix: CREATE TABLE legacy_notes PARTITION OF pt9 (rewrite/ddl.go createTable) is not refused; the new policy table gets pt9's row trigger.
		{name: "trig9/partition_of_recreated_policy_table", plainOK: true, flights: []flight{
			fl(parent9),
			fl(fillBody9),
			fl("CREATE TRIGGER tg9 BEFORE INSERT ON pt9 FOR EACH ROW EXECUTE FUNCTION tg9()"),
			fl("DROP TABLE legacy_notes"),
			fl("CREATE TABLE legacy_notes PARTITION OF pt9 DEFAULT"),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'x')"),
		}},
		// Leaked before the fix: ATTACH PARTITION of a policy table is not refused (rewrite/ddl.go noteDerived only records it), and PostgreSQL clones the parent's row triggers onto it from every ancestor (gp9's trigger reaches legacy_notes through pt9).
		{name: "trig9/grandparent_trigger", plainOK: true, flights: []flight{
			fl("CREATE TABLE gp9 (id int NOT NULL, body text) PARTITION BY LIST (id)"),
			fl(parent9),
			fl(fillBody9),
			fl("CREATE TRIGGER tg9 BEFORE INSERT ON gp9 FOR EACH ROW EXECUTE FUNCTION tg9()"),
			fl("ALTER TABLE gp9 ATTACH PARTITION pt9 DEFAULT"),
			fl(attach9),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// Leaked before the fix: ATTACH PARTITION of a policy table is not refused (rewrite/ddl.go noteDerived only records it), and PostgreSQL clones the parent's row triggers onto it; CREATE OR REPLACE of the plain helper it calls is allowed, so the trigger's behaviour changes afterwards.
		{name: "trig9/helper_replaced_after_attach", plainOK: true, flights: []flight{
			fl(parent9),
			fl("CREATE FUNCTION h9() RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$"),
			fl("CREATE FUNCTION th9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := coalesce(h9(), NEW.body); RETURN NEW; END$$"),
			fl("CREATE TRIGGER th9 BEFORE INSERT ON pt9 FOR EACH ROW EXECUTE FUNCTION th9()"),
			fl(attach9),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("CREATE OR REPLACE FUNCTION h9() RETURNS text LANGUAGE sql AS $$ SELECT " + latestWorkspace + " $$"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// Leaked before the fix: ATTACH PARTITION of a policy table is not refused (rewrite/ddl.go noteDerived only records it), and PostgreSQL clones the parent's row triggers onto it (constraint triggers too); its body names only pt9, which was no parent of a policy table when it was created.
		{name: "trig9/constraint_trigger_on_parent", plainOK: true, flights: []flight{
			fl(parent9),
			fl("CREATE FUNCTION tc9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE pt9 SET body = " + latestWorkspace + " WHERE id = NEW.id AND body IS DISTINCT FROM " + latestWorkspace + "; RETURN NULL; END$$"),
			fl("CREATE CONSTRAINT TRIGGER tc9 AFTER INSERT ON pt9 FOR EACH ROW EXECUTE FUNCTION tc9()"),
			fl(attach9),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// Leaked before the fix: ALTER TABLE tenant.legacy_notes SET SCHEMA public (rewrite/ddl.go, AlterObjectSchemaStmt) checks only whether the moved table is a policy table, not whether it lands on a policy table's name; it brings its trigger along.
		{name: "trig9/set_schema_into_policy_name", plainOK: true, flights: []flight{
			fl("CREATE TABLE tenant.legacy_notes (id serial PRIMARY KEY, body text, src text)"),
			fl("CREATE FUNCTION ts9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := NEW.src; RETURN NEW; END$$"),
			fl("CREATE TRIGGER ts9 BEFORE INSERT ON tenant.legacy_notes FOR EACH ROW EXECUTE FUNCTION ts9()"),
			fl("DROP TABLE public.legacy_notes"),
			fl("ALTER TABLE tenant.legacy_notes SET SCHEMA public"),
			fl("INSERT INTO legacy_notes (body, src) VALUES ('x', 'SECRET')"),
		}},
		// Leaked before the fix: ALTER INDEX t RENAME TO legacy_notes renames a table in PostgreSQL; rewrite/ddl.go rename checks only ObjectType TABLE, so a table with a trigger takes the policy table's name.
		{name: "trig9/alter_index_rename_into_policy_name", plainOK: true, flights: []flight{
			fl("CREATE TABLE notes9 (id serial PRIMARY KEY, body text, src text)"),
			fl("CREATE FUNCTION ts9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := NEW.src; RETURN NEW; END$$"),
			fl("CREATE TRIGGER ts9 BEFORE INSERT ON notes9 FOR EACH ROW EXECUTE FUNCTION ts9()"),
			fl("DROP TABLE legacy_notes"),
			fl("ALTER INDEX notes9 RENAME TO legacy_notes"),
			fl("INSERT INTO legacy_notes (body, src) VALUES ('x', 'SECRET')"),
		}},
		// Leaked before the fix: a superuser's UPDATE pg_trigger SET tgrelid moves a trigger onto legacy_notes; pg_trigger is not among rewrite/stmt.go catalogTables and the catalog tracks no triggers.
		{name: "trig9/catalog_move_trigger", plainOK: true, flights: []flight{
			fl(fillBody9),
			fl("CREATE TRIGGER tg9 BEFORE INSERT ON tenant.clients FOR EACH ROW EXECUTE FUNCTION tg9()"),
			fl("UPDATE pg_trigger SET tgrelid = (SELECT oid FROM pg_class WHERE relname = 'legacy_' || 'notes') WHERE tgname = 'tg9'"),
			fl("UPDATE pg_class SET relhastriggers = true WHERE relname = 'legacy_' || 'notes'"),
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},

		// B. Code created through the proxy naming a relation that only
		// later becomes a parent of a policy table.
		// Leaked before the fix: a function created through the proxy names pt9 before pt9 becomes legacy_notes' parent (ATTACH through the proxy); SELECT f9('SECRET') names neither, so the plaintext is routed into legacy_notes.
		{name: "later9/function_inserts_into_future_parent", plainOK: true, flights: []flight{
			fl(parent9),
			fl("CREATE FUNCTION f9(v text) RETURNS void LANGUAGE sql AS $$ INSERT INTO pt9 (id, body) VALUES (1, v) $$"),
			fl(attach9),
			fl("SELECT f9('SECRET')"),
		}},
		// Leaked before the fix: a trigger function on a plain table names pt9 before pt9 becomes legacy_notes' parent; the plain value is routed into legacy_notes.body.
		{name: "later9/plain_trigger_inserts_into_future_parent", plainOK: true, flights: []flight{
			fl(parent9),
			fl("CREATE FUNCTION tp9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO pt9 (id, body) VALUES (1, NEW.first_name); RETURN NEW; END$$"),
			fl("CREATE TRIGGER tp9 AFTER INSERT ON tenant.clients FOR EACH ROW EXECUTE FUNCTION tp9()"),
			fl(attach9),
			fl("INSERT INTO tenant.clients (first_name) VALUES ('SECRET')"),
		}},
		{name: "later9/rule_inserts_into_future_parent", plainOK: true, flights: []flight{
			fl(parent9),
			fl("CREATE TABLE src9 (v text)"),
			fl("CREATE RULE r9 AS ON INSERT TO src9 DO ALSO INSERT INTO pt9 (id, body) VALUES (1, NEW.v)"),
			fl(attach9),
			fl("INSERT INTO src9 (v) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: pt9's plain DEFAULT (set before the ATTACH) fills legacy_notes.body when a function created earlier inserts through pt9.
		{name: "later9/parent_default_then_function", plainOK: true, flights: []flight{
			fl(parent9),
			fl("ALTER TABLE pt9 ALTER COLUMN body SET DEFAULT 'SECRET'"),
			fl("CREATE FUNCTION fd9() RETURNS void LANGUAGE sql AS $$ INSERT INTO pt9 (id) VALUES (1) $$"),
			fl(attach9),
			fl("SELECT fd9()"),
		}},
		// Leaked before the fix: a function created before the ATTACH reads pt9, now legacy_notes' parent: envelopes returned.
		{name: "later9/function_reads_future_parent", flights: []flight{
			fl(parent9),
			fl("CREATE FUNCTION fr9() RETURNS SETOF text LANGUAGE sql AS $$ SELECT body FROM pt9 $$"),
			fl(attach9),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT fr9()"),
		}},
		// Leaked before the fix: ALTER INDEX legacy_notes RENAME TO notes9 is not refused (rewrite/ddl.go rename: ObjectType TABLE only); a function made earlier that names notes9 then writes plaintext into the policy table.
		{name: "later9/function_inserts_into_renamed_policy_table", plainOK: true, flights: []flight{
			fl("CREATE FUNCTION fn9(v text) RETURNS void LANGUAGE plpgsql AS $$BEGIN INSERT INTO notes9 (body) VALUES (v); END$$"),
			fl("ALTER INDEX legacy_notes RENAME TO notes9"),
			fl("SELECT fn9('SECRET')"),
		}},
		// Leaked before the fix: a function created through the proxy names kid9 before ALTER TABLE kid9 INHERIT legacy_notes makes it a child: its rows are legacy_notes' rows, stored plain.
		{name: "later9/function_inserts_into_future_child", plainOK: true, flights: []flight{
			fl("CREATE TABLE kid9 (id int NOT NULL DEFAULT 0, body text)"),
			fl("CREATE FUNCTION fk9(v text) RETURNS void LANGUAGE sql AS $$ INSERT INTO kid9 (body) VALUES (v) $$"),
			fl("ALTER TABLE kid9 INHERIT legacy_notes"),
			fl("SELECT fk9('SECRET')"),
		}},
		// Leaked before the fix: a function created before ALTER TABLE legacy_notes INHERIT base9 reads base9: envelopes returned.
		{name: "later9/function_reads_future_inheritance_parent", flights: []flight{
			fl("CREATE TABLE base9 (id int, body text)"),
			fl("CREATE FUNCTION fb9() RETURNS SETOF text LANGUAGE sql AS $$ SELECT body FROM base9 $$"),
			fl("ALTER TABLE legacy_notes INHERIT base9"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT fb9()"),
		}},
		{name: "later9/prepared_insert_into_future_parent", plainOK: true, flights: []flight{
			fl(parent9),
			fl("PREPARE pp9 AS INSERT INTO pt9 (id, body) VALUES (1, $1)"),
			fl(parseNamed("pq9", "INSERT INTO pt9 (id, body) VALUES (1, $1)"), syncMsg()),
			fl(attach9),
			fl("EXECUTE pp9('SECRET')"),
			fl(bindNamed("pq9", "SECRET"), syncMsg()),
		}},
		// Leaked before the fix: as later9/function_inserts_into_future_parent, with a plpgsql function already run once.
		{name: "later9/plpgsql_function_cached_plan_parent", plainOK: true, flights: []flight{
			fl(parent9),
			fl("CREATE FUNCTION fc9(v text) RETURNS void LANGUAGE plpgsql AS $$BEGIN INSERT INTO pt9 (id, body) VALUES (1, v); END$$"),
			fl("SELECT fc9('x')"),
			fl("DELETE FROM pt9"),
			fl(attach9),
			fl("SELECT fc9('SECRET')"),
		}},

		// C. Renames and column changes spelled with another object type:
		// PostgreSQL lets ALTER INDEX … RENAME rename a table, and
		// RENAME COLUMN act through ALTER VIEW / FOREIGN TABLE / MATERIALIZED VIEW.
		{name: "ren9/alter_index_rename_policy_table_then_write", plainOK: true, flights: []flight{
			fl("ALTER INDEX legacy_notes RENAME TO notes9"),
			fl("INSERT INTO notes9 (body) VALUES ('SECRET')"),
			fl("INSERT INTO public.notes9 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: ALTER VIEW … RENAME COLUMN works on a table; rewrite/ddl.go rename returns for RelationType other than TABLE, so body is renamed away and plain column extra (holding plaintext) renamed to body in one query.
		{name: "ren9/alter_view_rename_column_swap", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("INSERT INTO legacy_notes (body, extra) VALUES ('x', 'SECRET')"),
			fl("ALTER VIEW legacy_notes RENAME COLUMN body TO body_old; ALTER VIEW legacy_notes RENAME COLUMN extra TO body"),
		}},
		// Leaked before the fix: as ren9/alter_view_rename_column_swap, spelled ALTER FOREIGN TABLE.
		{name: "ren9/alter_foreign_table_rename_column_swap", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("INSERT INTO legacy_notes (body, extra) VALUES ('x', 'SECRET')"),
			fl("ALTER FOREIGN TABLE legacy_notes RENAME COLUMN body TO body_old; ALTER FOREIGN TABLE legacy_notes RENAME COLUMN extra TO body"),
		}},
		// Leaked before the fix: as ren9/alter_view_rename_column_swap, spelled ALTER MATERIALIZED VIEW.
		{name: "ren9/alter_matview_rename_column_swap", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("INSERT INTO legacy_notes (body, extra) VALUES ('x', 'SECRET')"),
			fl("ALTER MATERIALIZED VIEW legacy_notes RENAME COLUMN body TO body_old; ALTER MATERIALIZED VIEW legacy_notes RENAME COLUMN extra TO body"),
		}},
		// Leaked before the fix: log only: rewrite/ddl.go alterTable returns unless Objtype is TABLE, so ALTER VIEW/FOREIGN TABLE/INDEX legacy_notes … SET DEFAULT 'x' is relayed unencrypted; PostgreSQL refuses it but logs the text.
		{name: "ren9/alter_view_set_default", flights: []flight{
			fl("ALTER VIEW legacy_notes ALTER COLUMN body SET DEFAULT 'SECRET'"),
			fl("ALTER FOREIGN TABLE legacy_notes ALTER COLUMN body SET DEFAULT 'SECRET'"),
			fl("ALTER INDEX legacy_notes ALTER COLUMN body SET DEFAULT 'SECRET'"),
		}},
		// Leaked before the fix: ALTER INDEX renames tables: the policy table is renamed away and a plain table holding plaintext renamed into its name (rewrite/ddl.go rename checks ObjectType TABLE only).
		{name: "ren9/alter_view_rename_into_policy_name", plainOK: true, flights: []flight{
			fl("CREATE TABLE notes9 (id serial PRIMARY KEY, body text)"),
			fl("INSERT INTO notes9 (body) VALUES ('SECRET')"),
			fl("ALTER INDEX legacy_notes RENAME TO notes_old9"),
			fl("ALTER INDEX notes9 RENAME TO legacy_notes"),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "ren9/alter_view_rename_column_then_write_same_query", flights: []flight{
			fl("ALTER VIEW legacy_notes RENAME COLUMN body TO b9; INSERT INTO legacy_notes (b9) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: ALTER INDEX legacy_notes RENAME TO notes9 is not refused and the INSERT into notes9 later in the same query names no policy table, so it is relayed in plaintext.
		{name: "ren9/alter_index_rename_then_write_same_query", flights: []flight{
			fl("ALTER INDEX legacy_notes RENAME TO notes9; INSERT INTO notes9 (body) VALUES ('SECRET')"),
		}},

		// D. Schema elements: CREATE SCHEMA … CREATE TABLE / INDEX /
		// TRIGGER / VIEW runs DDL the proxy checks only at the top level.
		// Leaked before the fix: CREATE SCHEMA … CREATE TABLE/TRIGGER: rewrite/ddl.go ddlStmt does not look into CreateSchemaStmt.SchemaElts, so a trigger with a plaintext argument lands on the recreated policy table.
		{name: "schema9/element_trigger_with_argument", flights: []flight{
			fl("CREATE FUNCTION tenant.ta9() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := TG_ARGV[0]; RETURN NEW; END$$"),
			fl("DROP SCHEMA public CASCADE"),
			fl("CREATE SCHEMA public CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text) CREATE TRIGGER ta9 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION tenant.ta9('SECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// Leaked before the fix: CREATE SCHEMA … CREATE TABLE legacy_notes (body DEFAULT 'x'): schema elements are not analysed (rewrite/ddl.go ddlStmt), the default is stored in plaintext.
		{name: "schema9/element_table_default", flights: []flight{
			fl("DROP SCHEMA public CASCADE"),
			fl("CREATE SCHEMA public CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text DEFAULT 'SECRET')"),
			fl("INSERT INTO legacy_notes (id) VALUES (1)"),
		}},
		// Leaked before the fix: CREATE SCHEMA … CREATE INDEX … WHERE body = 'x': schema elements are not analysed, the predicate is stored in plaintext.
		{name: "schema9/element_index_predicate", flights: []flight{
			fl("DROP SCHEMA public CASCADE"),
			fl("CREATE SCHEMA public CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text) CREATE INDEX ix9 ON legacy_notes (id) WHERE body = 'SECRET'"),
		}},
		// Leaked before the fix: CREATE SCHEMA … CREATE VIEW over legacy_notes with a literal: schema elements are not analysed.
		{name: "schema9/element_view_literal", flights: []flight{
			fl("DROP SCHEMA public CASCADE"),
			fl("CREATE SCHEMA public CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text) CREATE VIEW v9 AS SELECT id FROM legacy_notes WHERE body = 'SECRET'"),
		}},
	}
}

func TestAttackSuite9(t *testing.T) { runAttacks(t, 9000, attackCases9()) }
