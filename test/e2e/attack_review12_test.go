package e2e

// A twelfth round of the attacker's suite (see attack_test.go), written by
// a review helper against commit 55ced3a. Its theme is typed tables: ALTER
// TABLE … OF type (and CREATE TABLE … OF type) ties a policy table to a
// composite type of another name, and ALTER TYPE … CASCADE on that type
// then renames, retypes or redefaults the table's columns, under a name
// no text screen or DDL rule knows.

import "testing"

// typed12 is a composite type shaped like legacy_notes (with extraCol).
const typed12 = "CREATE TYPE t12 AS (id int, body text, extra text)"

func attackCases12() []attackCase {
	return []attackCase{
		// A. The table made a typed table of t12, then its columns renamed
		// through the type.
		// Leaked before the fix: rewrite/ddl.go tieToPolicy/alterTable ignore AT_AddOf: ALTER TABLE legacy_notes OF t12 passes, then ALTER TYPE t12 RENAME ATTRIBUTE … CASCADE (rename() resolves only the type name) renames body.
		{name: "typed12/rename_attribute_cascade", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl(typed12),
			fl("ALTER TABLE legacy_notes OF t12"),
			fl("ALTER TYPE t12 RENAME ATTRIBUTE body TO body_old CASCADE"),
			fl("INSERT INTO legacy_notes (body_old) VALUES ('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body_old) VALUES ('SECRET')"), syncMsg()),
		}},
		// Leaked before the fix: the same typed-table rename swaps body and extra; SELECT body_old returns the envelope to the client.
		{name: "typed12/rename_swap_then_read", ddl: extraCol, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('x')"),
			fl(typed12),
			fl("ALTER TABLE legacy_notes OF t12"),
			fl("ALTER TYPE t12 RENAME ATTRIBUTE body TO body_old CASCADE"),
			fl("ALTER TYPE t12 RENAME ATTRIBUTE extra TO body CASCADE"),
			fl("SELECT body_old FROM legacy_notes"),
		}},
		{name: "typed12/rename_in_one_query", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl(typed12 + "; ALTER TABLE legacy_notes OF t12; ALTER TYPE t12 RENAME ATTRIBUTE body TO body_old CASCADE; ALTER TYPE t12 RENAME ATTRIBUTE extra TO body CASCADE"),
			fl("INSERT INTO legacy_notes (body_old) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: the same, with the ALTER TYPE … CASCADE inside a DO block that names no policy table.
		{name: "typed12/rename_in_do_block", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl(typed12),
			fl("ALTER TABLE legacy_notes OF t12"),
			fl("DO $$BEGIN ALTER TYPE t12 RENAME ATTRIBUTE body TO body_old CASCADE; END$$"),
			fl("INSERT INTO legacy_notes (body_old) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: the same over Parse/Bind/Execute.
		{name: "typed12/rename_extended", plainOK: true, ddl: extraCol, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl(ext(typed12), syncMsg()),
			fl(ext("ALTER TABLE legacy_notes OF t12"), syncMsg()),
			fl(ext("ALTER TYPE t12 RENAME ATTRIBUTE body TO body_old CASCADE"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (body_old) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		// B. The column's type changed through the type: to a domain whose
		// default is a plaintext value, which then fills every row that
		// omits the column (ALTER TABLE … TYPE d is refused), or to a type
		// that cuts envelopes.
		// Leaked before the fix: ALTER TYPE t12 ALTER ATTRIBUTE body TYPE d12 CASCADE (AlterTableStmt on a type, watchedTableScope(t12) nil) gives body a domain whose default stores plaintext.
		{name: "typed12/attribute_type_domain_default", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("CREATE DOMAIN d12 AS text DEFAULT 'SECRET'"),
			fl("CREATE TYPE t12 AS (id int, body text)"),
			fl("ALTER TABLE legacy_notes OF t12"),
			fl("ALTER TYPE t12 ALTER ATTRIBUTE body TYPE d12 CASCADE"),
			fl("INSERT INTO legacy_notes (id) VALUES (42)"),
			fl(ext("INSERT INTO legacy_notes (id) VALUES (43)"), syncMsg()),
		}},
		// Leaked before the fix: ALTER TYPE … ALTER ATTRIBUTE body TYPE name CASCADE retypes the encrypted column to name (63 bytes), which ALTER TABLE … TYPE name would refuse.
		{name: "typed12/attribute_type_name_truncates", check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("CREATE TYPE t12 AS (id int, body text)"),
			fl("ALTER TABLE legacy_notes OF t12"),
			fl("ALTER TYPE t12 ALTER ATTRIBUTE body TYPE name CASCADE"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT body FROM legacy_notes"),
		}},
		// C. The policy table dropped and created again as a typed table.
		// Leaked before the fix: rewrite/ddl.go createTable accepts CREATE TABLE legacy_notes OF t12 (OfTypename unchecked); the type's rename then renames body.
		// (No column check since the fix: CREATE TABLE legacy_notes OF t12
		// is refused, so the dropped table stays dropped.)
		{name: "typed12/recreate_of_type", plainOK: true, flights: []flight{
			fl("CREATE TYPE t12 AS (id int, body text)"),
			fl("DROP TABLE legacy_notes"),
			fl("CREATE TABLE legacy_notes OF t12"),
			fl("ALTER TYPE t12 RENAME ATTRIBUTE body TO body_old CASCADE"),
			fl("INSERT INTO legacy_notes (body_old) VALUES ('SECRET')"),
		}},
		// D. Other ALTER TABLE spellings of a rename and a tie.
		{name: "alt12/if_exists_only_rename", plainOK: true, check: columnType("legacy_notes", "body", "text"), flights: []flight{
			fl("ALTER TABLE IF EXISTS ONLY legacy_notes RENAME COLUMN body TO b12"),
			fl("INSERT INTO legacy_notes (b12) VALUES ('SECRET')"),
		}},
		{name: "alt12/like_then_inherit", plainOK: true, flights: []flight{
			fl("CREATE TABLE kid12 (LIKE legacy_notes)"),
			fl("ALTER TABLE IF EXISTS kid12 INHERIT legacy_notes"),
			fl("DROP TABLE IF EXISTS kid12"),
			fl("CREATE TABLE kid12 (id int, body text)"),
			fl("ALTER TABLE ONLY kid12 INHERIT public.legacy_notes"),
			fl("INSERT INTO kid12 (body) VALUES ('SECRET')"),
			fl("SELECT body FROM legacy_notes"),
		}},
	}
}

func TestAttackSuite12(t *testing.T) { runAttacks(t, 12000, attackCases12()) }
