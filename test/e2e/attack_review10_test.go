package e2e

// A tenth round of the attacker's suite (see attack_test.go), written by a
// review helper against commit ee67456. Its themes:
//
//   - the shape cache (rewrite/shape.go): two texts that differ only in
//     what their plain '…' strings hold share one parse tree and plan,
//     primed here by a harmless text in an earlier flight of the case;
//   - the checks of round 9 (ties to policy tables, renames under other
//     keywords, CREATE SCHEMA elements, catalog writes, triggers).

// The cat10 cases are plainOK since the fix: the catalog write is refused
// (notRenamed10 checks it), so their INSERT names a table that does not
// exist, and only the policy columns are checked.

import (
	"testing"
)

// A table, a column, a view and a domain whose names are what a U&"…"
// identifier spells with the escape character '#' (left as written) rather
// than '!' (decoded to a policy name).
const (
	uTable10  = `; CREATE TABLE "legacy!005fnotes" (id serial, body text)`
	uColumn10 = `; ALTER TABLE legacy_notes ADD "b!006fdy" text; ALTER TABLE clients ADD "em!0061il" text`
	uSchema10 = `; CREATE SCHEMA "p!0075blic"; CREATE TABLE "p!0075blic".legacy_notes (id serial, body text)`
	uView10   = `; CREATE VIEW nv10 AS SELECT id, body FROM legacy_notes`
	uDomain10 = `; CREATE DOMAIN "t!0065xt" AS varchar(12)`
)

// guard10 is what pgcrypt-proxy guard installs on legacy_notes.body.
const guard10 = "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')"

// A trigger a DBA put on legacy_notes directly, which passes body through
// a helper function.
const helperTrigger10 = `; CREATE FUNCTION norm10(t text) RETURNS text LANGUAGE sql AS $$ SELECT t $$;
CREATE FUNCTION tgn10() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := norm10(NEW.body); RETURN NEW; END$$;
CREATE TRIGGER tgn10 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION tgn10()`

// The rename a catalog write makes: legacy_notes becomes notes10, and a
// later INSERT names no policy table.
const renameSet10 = `SET relname = 'notes10' WHERE relname = 'legacy_' || 'notes' AND relnamespace = 'public'::regnamespace`

// notRenamed10 fails when legacy_notes was renamed to notes10 (by a
// catalog write the proxy let through).
func notRenamed10(t *testing.T, f *encFixture) {
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM pg_class WHERE relname = 'notes10'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("legacy_notes was renamed to notes10 by a catalog write relayed through the proxy")
	}
}

func attackCases10() []attackCase {
	return []attackCase{
		// A. The shape cache: UESCAPE after a U&"…" identifier is a string
		// whose content decides the name, not a value.
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; INSERT into legacy_notes relayed with plaintext.
		{name: "shape10/uescape_table_name", ddl: uTable10, flights: []flight{
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '#' (body) VALUES ('x')`),
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ('SECRET')`),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; the Bind parameter is sent unencrypted.
		{name: "shape10/uescape_table_name_extended", ddl: uTable10, flights: []flight{
			fl(ext(`INSERT INTO U&"legacy!005fnotes" UESCAPE '#' (body) VALUES ($1)`, "x"), syncMsg()),
			fl(ext(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ($1)`, "SECRET"), syncMsg()),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name (the priming name need not exist).
		{name: "shape10/uescape_table_name_missing", flights: []flight{
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '#' (body) VALUES ('x')`),
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ('SECRET')`),
		}},
		{name: "shape10/uescape_after_comment", ddl: uTable10, flights: []flight{
			fl("INSERT INTO U&\"legacy!005fnotes\" /* c */\n UESCAPE '#' (body) VALUES ('x')"),
			fl("INSERT INTO U&\"legacy!005fnotes\" /* c */\n UESCAPE '!' (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; the plan of plain column "b!006fdy" is used for body.
		{name: "shape10/uescape_column_name", ddl: uColumn10, flights: []flight{
			fl(`INSERT INTO legacy_notes (U&"b!006fdy" UESCAPE '#') VALUES ('x')`),
			fl(`INSERT INTO legacy_notes (U&"b!006fdy" UESCAPE '!') VALUES ('SECRET')`),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; email compared with a plaintext literal.
		{name: "shape10/uescape_compare_deterministic", ddl: uColumn10, flights: []flight{
			fl(`SELECT id FROM clients WHERE U&"em!0061il" UESCAPE '#' = 'x'`),
			fl(`SELECT id FROM clients WHERE U&"em!0061il" UESCAPE '!' = 'SECRET'`),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; UPDATE … SET body = plaintext.
		{name: "shape10/uescape_update_set", ddl: uColumn10 + "; INSERT INTO legacy_notes (id) VALUES (5)", flights: []flight{
			fl(`UPDATE legacy_notes SET U&"b!006fdy" UESCAPE '#' = 'x' WHERE id = 5`),
			fl(`UPDATE legacy_notes SET U&"b!006fdy" UESCAPE '!' = 'SECRET' WHERE id = 5`),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; the plan of "p!0075blic".legacy_notes is used for public.legacy_notes.
		{name: "shape10/uescape_schema_name", ddl: uSchema10, flights: []flight{
			fl(`INSERT INTO U&"p!0075blic" UESCAPE '#'.legacy_notes (body) VALUES ('x')`),
			fl(`INSERT INTO U&"p!0075blic" UESCAPE '!'.legacy_notes (body) VALUES ('SECRET')`),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; the view check (proxy/planning.go plan, an.Relations()) sees the priming name, and the write through view nv10 stores plaintext.
		{name: "shape10/uescape_view_name", ddl: uView10 + `; CREATE TABLE "nv!0031!0030" (id int, body text)`, flights: []flight{
			fl(`INSERT INTO U&"nv!0031!0030" UESCAPE '#' (body) VALUES ('x')`),
			fl(`INSERT INTO U&"nv!0031!0030" UESCAPE '!' (body) VALUES ('SECRET')`),
		}},
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; query_to_xml is not seen (wholeTableFunc never runs), its literal query is relayed and its XML holds envelopes.
		{name: "shape10/uescape_whole_table_function", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(`SELECT U&"query!005fto!005fxml" UESCAPE '#'('select 1', true, false, '')`),
			fl(`SELECT U&"query!005fto!005fxml" UESCAPE '!'('select body from legacy_notes where body <> ''SECRET''', true, false, '')`),
		}},
		// The reverse: primed on the policy table, the second text writes
		// to a plain one, which then holds an envelope for the client's
		// value.
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; the policy plan encrypts a value written to a plain table (wrong value stored, envelope returned).
		{name: "shape10/uescape_reverse_envelope_in_plain_table", ddl: uTable10, plainOK: true, flights: []flight{
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '!' (body) VALUES ('x')`),
			fl(`INSERT INTO U&"legacy!005fnotes" UESCAPE '#' (body) VALUES ('SECRET')`),
			fl(`SELECT body FROM "legacy!005fnotes"`),
		}, check: func(t *testing.T, f *encFixture) {
			var n int
			if err := f.direct.QueryRow(testCtx(t), `SELECT count(*) FROM "legacy!005fnotes" WHERE body ~ '^v1:'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("WRONG VALUE: the plain table holds an envelope for the client's value")
			}
		}},
		// The cast type decides whether the envelope fits: primed with
		// text, the second names a varchar(12) domain that cuts it.
		// Leaked before the fix: the UESCAPE string after a U&"…" identifier is taken for a plain literal (rewrite/scs.go plainLiterals, rewrite/shape.go shapeOf), so the text shares the parse tree, relations, mayInvolve and plan of one whose identifier decodes to another name; the cast to text of the priming text is a cast to a varchar(12) domain here, which cuts the envelope (wrong value stored).
		{name: "shape10/uescape_cast_type", ddl: uDomain10, flights: []flight{
			fl(`INSERT INTO legacy_notes (body) VALUES ('x'::U&"t!0065xt" UESCAPE '!')`),
			fl(`INSERT INTO legacy_notes (body) VALUES ('SECRET'::U&"t!0065xt" UESCAPE '#')`),
		}, check: func(t *testing.T, f *encFixture) { wholeEnvelopes(t, f) }},

		// B. Writes to system catalogs that the text and tree checks miss:
		// a rename of legacy_notes, after which an INSERT names no policy
		// table.
		// Leaked before the fix: rewrite/analyzer.go WritesCatalog filters on the word pg_class in the text, which U&"pg!005fclass" UESCAPE '!' does not hold; legacy_notes is renamed and a later INSERT naming notes10 is relayed as it is.
		{name: "cat10/uescape_pg_class", plainOK: true, check: notRenamed10, flights: []flight{
			fl(`UPDATE U&"pg!005fclass" UESCAPE '!' ` + renameSet10),
			fl("INSERT INTO notes10 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: as cat10/uescape_pg_class, spelled U&"pg\005fclass".
		{name: "cat10/unicode_backslash_pg_class", plainOK: true, check: notRenamed10, flights: []flight{
			fl(`UPDATE U&"pg\005fclass" ` + renameSet10),
			fl("INSERT INTO notes10 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog does not look into PREPARE; EXECUTE runs the catalog write.
		{name: "cat10/prepare_execute", plainOK: true, check: notRenamed10, flights: []flight{
			fl(`PREPARE r10 AS UPDATE pg_class ` + renameSet10),
			fl("EXECUTE r10"),
			fl("INSERT INTO notes10 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog does not look into COPY (UPDATE … RETURNING) TO STDOUT.
		{name: "cat10/copy_update_returning", plainOK: true, check: notRenamed10, flights: []flight{
			fl(`COPY (UPDATE pg_class ` + renameSet10 + ` RETURNING 1) TO STDOUT`),
			fl("INSERT INTO notes10 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog does not look into the query of CREATE TABLE AS (a data-modifying WITH).
		{name: "cat10/create_table_as_cte", plainOK: true, check: notRenamed10, flights: []flight{
			fl(`CREATE TABLE x10 AS WITH u AS (UPDATE pg_class ` + renameSet10 + ` RETURNING 1) SELECT * FROM u`),
			fl("INSERT INTO notes10 (body) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go writesCatalog does not look into PREPARE; EXPLAIN ANALYZE EXECUTE runs it.
		{name: "cat10/explain_analyze_prepared", plainOK: true, check: notRenamed10, flights: []flight{
			fl(`PREPARE r10 AS UPDATE pg_class ` + renameSet10),
			fl("EXPLAIN ANALYZE EXECUTE r10"),
			fl("INSERT INTO notes10 (body) VALUES ('SECRET')"),
		}},

		// C. A column rename spelled ALTER TYPE … RENAME ATTRIBUTE, which
		// PostgreSQL applies to a table's row type, so to the table.
		// Leaked before the fix: rewrite/ddl.go rename handles OBJECT_COLUMN, not OBJECT_ATTRIBUTE: ALTER TYPE legacy_notes RENAME ATTRIBUTE renames the table's columns, and plain column extra becomes body.
		{name: "ren10/alter_type_rename_attribute_swap", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("INSERT INTO legacy_notes (body, extra) VALUES ('x', 'SECRET')"),
			fl("ALTER TYPE legacy_notes RENAME ATTRIBUTE body TO body_old; ALTER TYPE legacy_notes RENAME ATTRIBUTE extra TO body"),
		}},
		{name: "ren10/alter_type_rename_attribute_then_read", ddl: extraCol, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl("ALTER TYPE legacy_notes RENAME ATTRIBUTE body TO body_old"),
			fl("ALTER TYPE legacy_notes RENAME ATTRIBUTE extra TO body"),
			fl("SELECT body_old FROM legacy_notes"),
		}},

		// D. Triggers: a trigger a DBA put on a policy table runs code
		// that can be changed through the proxy without touching it.
		// A documented limit (docs/sql.md, "The limit of a wire proxy"): a
		// trigger created on the server runs whatever the names it calls
		// resolve to. CREATE OR REPLACE is refused only for functions
		// RETURNS trigger; a helper that a trigger on a policy table calls
		// is replaced and fills body with plaintext, which the guard stops.
		{name: "trig10/replace_helper_of_policy_trigger", ddl: helperTrigger10 + guard10, plainOK: true, flights: []flight{
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("CREATE OR REPLACE FUNCTION norm10(t text) RETURNS text LANGUAGE sql AS $$ SELECT " + latestWorkspace + " $$"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
		// The same limit: a new function earlier in the search_path shadows
		// the helper a trigger on a policy table calls by an unqualified
		// name; nothing is replaced. The guard stops it.
		{name: "trig10/shadow_helper_by_search_path", ddl: helperTrigger10 + guard10, plainOK: true, flights: []flight{
			fl("INSERT INTO workspaces (name) VALUES ('zzSECRET')"),
			fl("CREATE SCHEMA ev10"),
			fl("CREATE FUNCTION ev10.norm10(t text) RETURNS text LANGUAGE sql AS $$ SELECT name FROM public.workspaces ORDER BY name DESC LIMIT 1 $$"),
			fl("SET search_path = ev10, public"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
		}},
	}
}

func TestAttackSuite10(t *testing.T) { runAttacks(t, 10000, attackCases10()) }
