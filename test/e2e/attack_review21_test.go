package e2e

// A twenty-first round of the attacker's suite (see attack_test.go). Its
// theme is combinations: two or three features, each handled alone, used
// at once — held cursors and prepared statements across schema changes
// made by another connection; CTEs feeding MERGE; ON CONFLICT with
// EXCLUDED inside NULLIF; dollar quotes and Unicode escapes inside arrays
// and VALUES lists fed to INSERT … SELECT; GROUPING SETS, windows,
// LATERAL and recursive CTEs around policy columns and written values;
// row constructors and composite types; COPY (query) TO STDOUT in every
// format; PREPARE/EXECUTE with policy arguments; extended-protocol
// parameters declared unknown, bytea, name, varchar[] or a domain, in
// binary format; binary results.
//
// Failing at 44f065a, mended since (each marked "Fault:" above its case,
// which says what was wrong): rows of a
// WITH HOLD cursor FETCHed after another connection renamed, recreated or
// dropped the policy table or renamed its policy column come back as
// envelopes (proxy/backend.go rowShapeOf maps (table OID, attnum) through
// the current catalog only); a policy column renamed and re-added under
// its name by another connection is not "gone", so the old column's
// envelopes are returned and writes to it go plaintext; COPY (query) TO
// STDOUT returns a literal that the same query writes to a policy column
// as its envelope (rewrite/copy.go copyStmt never output-checks a field
// without columns). The proxy now remembers where each policy column was
// (knownTables.addColumn): such rows are decrypted, and a policy attnum
// under another name makes the table "column gone"; copyStmt output-checks
// every field that carries a written value.

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// count21 fails unless sql (run on the direct connection, one integer)
// gives one of want.
func count21(sql string, want ...int) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var n int
		if err := f.direct.QueryRow(testCtx(t), sql).Scan(&n); err != nil {
			t.Errorf("check %q: %v", sql, err)
			return
		}
		for _, w := range want {
			if n == w {
				return
			}
		}
		t.Errorf("WRONG: %q gives %d, want one of %v", sql, n, want)
	}
}

// values21 reads sql through the proxy and fails when a non-NULL value is
// not the round's marker (an envelope, a hex form, a truncation), or when
// the number of rows is not one of want.
func values21(sql string, want ...int) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		rows, err := f.connect(t, pgx.QueryExecModeExec).Query(testCtx(t), sql)
		if err != nil {
			t.Errorf("check %q: %v", sql, err)
			return
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var v *string
			if err := rows.Scan(&v); err != nil {
				t.Errorf("check %q: %v", sql, err)
				return
			}
			n++
			if v != nil && !strings.HasPrefix(*v, "SECRET_21") {
				t.Errorf("WRONG: %q returned %.80q, want the marker as written", sql, *v)
			}
		}
		if err := rows.Err(); err != nil {
			t.Errorf("check %q: %v", sql, err)
		}
		for _, w := range want {
			if n == w {
				return
			}
		}
		t.Errorf("WRONG: %q returned %d rows, want one of %v", sql, n, want)
	}
}

// parse21 is an unnamed Parse with declared parameter types.
func parse21(sql string, oids ...uint32) pgproto3.FrontendMessage {
	return &pgproto3.Parse{Query: sql, ParameterOIDs: oids}
}

// bindExec21 is Bind (unnamed, parameters in format fmtc), Describe portal
// and Execute.
func bindExec21(fmtc int16, params ...string) []pgproto3.FrontendMessage {
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	return []pgproto3.FrontendMessage{
		&pgproto3.Bind{ParameterFormatCodes: []int16{fmtc}, Parameters: vals},
		&pgproto3.Describe{ObjectType: 'P'},
		&pgproto3.Execute{},
	}
}

// Rows written through the proxy first, so reads have ciphertext to find.
const (
	insNote21   = "INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET')"
	insClient21 = "INSERT INTO clients (workspace_id, first_name, last_name, email, phone) SELECT id, 'SECRET', 'SECRET', 'SECRET', 'SECRET' FROM workspaces"
)

// A domain whose CHECK the plaintext fails and an envelope passes.
const domain21 = "; CREATE DOMAIN d21 AS text CHECK (VALUE NOT LIKE 'SEC%')"

func attackCases21() []attackCase {
	holdCursor := fl("BEGIN", "DECLARE c21 SCROLL CURSOR WITH HOLD FOR SELECT id, body FROM legacy_notes", "COMMIT")
	fetchBoth := fl(q("FETCH ALL FROM c21"), ext("FETCH ABSOLUTE 1 FROM c21"), syncMsg())
	return []attackCase{
		// 1. Held cursors and prepared statements across schema changes
		// made by another connection. The rows carry the policy table's
		// OID and attnum; the FETCH or EXECUTE text does not name it.
		// Fault: proxy/backend.go rowShapeOf decrypts by (oid, attnum) through the catalog read now; body renamed b21 elsewhere is not a policy column there, and the FETCH text names no table, so the held rows' envelopes are relayed.
		{name: "cur21/hold_cursor_fetch_after_column_renamed_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl(insNote21), holdCursor,
			fl(direct("ALTER TABLE legacy_notes RENAME COLUMN body TO b21")),
			fetchBoth,
		}},
		// Fault: as above; the renamed table is only a reachRenamed entry in catalog.views, without cols, so rowShapeOf finds nothing to decrypt.
		{name: "cur21/hold_cursor_fetch_after_table_renamed_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl(insNote21), holdCursor,
			fl(direct("ALTER TABLE legacy_notes RENAME TO ln21")),
			fetchBoth,
		}},
		// Fault: as above; the old OID (now ln21_old) has no cols.
		{name: "cur21/hold_cursor_fetch_after_table_recreated_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl(insNote21), holdCursor,
			fl(direct("ALTER TABLE legacy_notes RENAME TO ln21_old; CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text)")),
			fetchBoth,
		}},
		// Fault: as above; the dropped table's OID is in no catalog, and below maxOID, so nothing is suspected.
		{name: "cur21/hold_cursor_fetch_after_table_dropped_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl(insNote21), holdCursor,
			fl(direct("DROP TABLE legacy_notes; CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text)")),
			fetchBoth,
		}},
		{name: "cur21/hold_cursor_fetch_after_drop_through_proxy", flights: []flight{
			fl(insNote21), holdCursor,
			fl("DROP TABLE legacy_notes"),
			fetchBoth,
		}},
		{name: "cur21/hold_cursor_fetch_after_drop_column_through_proxy", flights: []flight{
			fl(insNote21), holdCursor,
			fl("ALTER TABLE legacy_notes DROP COLUMN body"),
			fetchBoth,
		}},
		{name: "prep21/sql_prepared_star_after_column_renamed_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl(insNote21), fl("PREPARE p21 AS SELECT * FROM legacy_notes"),
			fl(direct("ALTER TABLE legacy_notes RENAME COLUMN body TO b21")),
			fl("EXECUTE p21"),
			fl(ext("EXECUTE p21"), syncMsg()),
		}},
		{name: "prep21/parsed_star_after_column_renamed_elsewhere", maxAge: time.Millisecond, flights: []flight{
			fl(insNote21), fl(&pgproto3.Parse{Name: "s21", Query: "SELECT * FROM legacy_notes"}, syncMsg()),
			fl(direct("ALTER TABLE legacy_notes RENAME COLUMN body TO b21")),
			fl(&pgproto3.Bind{PreparedStatement: "s21"}, &pgproto3.Execute{}, syncMsg()),
		}},
		// Fault: proxy/catalog.go reachColumnGone looks only for a policy column name missing; a new column named body hides the rename: b21 (the old attnum, holding envelopes) is read as plain and written in plaintext.
		{name: "ren21/column_renamed_and_readded_elsewhere_then_read", maxAge: time.Millisecond, flights: []flight{
			fl(insNote21),
			fl(direct("ALTER TABLE legacy_notes RENAME COLUMN body TO b21; ALTER TABLE legacy_notes ADD COLUMN body text")),
			fl("SELECT id, b21 FROM legacy_notes"),
			fl("SELECT * FROM legacy_notes"),
			fl("COPY legacy_notes (id, b21) TO STDOUT"),
			// What is written under the old column's new name is stored
			// unencrypted: the rule of the "column gone" refusal.
			fl("INSERT INTO legacy_notes (id, b21) VALUES (2, 'SECRET')"),
		}},
		{name: "cur21/hold_cursor_over_lateral_move_fetch_binary", flights: []flight{
			fl(insClient21),
			fl("BEGIN", "DECLARE c21 SCROLL CURSOR WITH HOLD FOR SELECT l.first_name, l.email FROM workspaces w CROSS JOIN LATERAL (SELECT first_name, email FROM clients c WHERE c.workspace_id = w.id) l", "COMMIT"),
			fl("MOVE LAST IN c21", &pgproto3.Parse{Query: "FETCH BACKWARD 1 FROM c21"},
				&pgproto3.Bind{ResultFormatCodes: []int16{1}}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, syncMsg()),
			fl("FETCH ABSOLUTE 1 FROM c21", "CLOSE c21"),
		}},
		{name: "cur21/declare_with_hold_cte_literal_compared", check: count21("SELECT count(*) FROM clients", 1), flights: []flight{
			fl(insClient21),
			fl("BEGIN", "DECLARE c21 CURSOR WITH HOLD FOR WITH s(e) AS (VALUES ('SECRET')) SELECT c.first_name, c.email FROM clients c JOIN s ON c.email = s.e", "COMMIT"),
			fl("FETCH ALL FROM c21"),
		}},

		// 2. Settings and DML at once.
		{name: "pipe21/set_path_then_on_conflict_excluded_to_plain", ddl: tenantLikePublic, flights: []flight{
			fl(ext("SET search_path = tenant, public"),
				ext("INSERT INTO clients (workspace_id, first_name, last_name) SELECT id, $1, 'x' FROM workspaces ON CONFLICT (id) DO UPDATE SET notes = EXCLUDED.first_name", "SECRET"), syncMsg()),
			fl("RESET search_path"),
		}},
		{name: "pipe21/set_config_then_cte_merge_insert", ddl: tenantLikePublic, plainOK: true, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(ext("SELECT set_config('search_path', 'public', false)"),
				ext("WITH s(f) AS (VALUES ($1)) MERGE INTO clients c USING s ON false WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name) VALUES ((SELECT id FROM workspaces LIMIT 1), s.f, 'x')", "SECRET"), syncMsg()),
			fl("SELECT set_config('search_path', 'public', false); WITH s(f) AS (VALUES ('SECRET')) MERGE INTO clients c USING s ON false WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name) VALUES ((SELECT id FROM workspaces LIMIT 1), s.f, 'x')"),
		}},

		// 3. One value in two roles, through combined constructs.
		{name: "role21/dollar_array_values_insert_select_compare", check: count21("SELECT count(*) FROM clients", 0), flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT w.id, 'a', 'b', v.e FROM workspaces w, (VALUES ($$SECRET$$)) v(e) WHERE v.e <> ALL (ARRAY[$q$SECRET$q$, U&'SECRET\\0021'])"),
		}},
		{name: "role21/nullif_excluded_on_conflict", ddl: "; INSERT INTO legacy_notes (id) VALUES (1)", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'y') ON CONFLICT (id) DO UPDATE SET body = NULLIF(EXCLUDED.body, 'SECRET')"),
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (1, 'y') ON CONFLICT (id) DO UPDATE SET body = NULLIF(EXCLUDED.body, $1)", "SECRET"), syncMsg()),
		}},
		{name: "role21/merge_unicode_cte_compared_and_other_column", flights: []flight{
			fl(insClient21),
			fl("WITH s(e) AS (VALUES (U&'SECRET\\0021')) MERGE INTO clients c USING s ON c.email = s.e WHEN MATCHED THEN UPDATE SET phone = s.e"),
		}},
		{name: "role21/merge_cte_insert_two_keys", check: count21("SELECT count(*) FROM clients", 0), flights: []flight{
			fl("WITH s(e) AS (VALUES ('SECRET')) MERGE INTO clients c USING s ON c.email = s.e WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, email) VALUES ((SELECT id FROM workspaces LIMIT 1), s.e, 'x', s.e)"),
		}},
		{name: "role21/lateral_values_compared_plain_and_written", check: count21("SELECT count(*) FROM legacy_notes", 0), flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT l.x FROM workspaces w CROSS JOIN LATERAL (SELECT v.x FROM (VALUES ('SECRET')) v(x) WHERE v.x <> w.name) l"),
		}},
		{name: "role21/recursive_cte_compared_and_returned", flights: []flight{
			fl(insClient21),
			fl("WITH RECURSIVE r(e, n) AS (SELECT 'SECRET'::text, 1 UNION ALL SELECT e, n + 1 FROM r WHERE n < 2) SELECT r.e, c.id FROM r LEFT JOIN clients c ON c.email = r.e"),
		}},
		{name: "role21/dml_cte_plain_returning_into_policy", check: allChecks(count21("SELECT count(*) FROM legacy_notes", 0), count21("SELECT count(*) FROM plain21", 0)), ddl: "; CREATE TABLE plain21 (a text)", flights: []flight{
			fl("WITH i AS (INSERT INTO plain21 (a) VALUES ('SECRET') RETURNING a) INSERT INTO legacy_notes (body) SELECT a FROM i"),
			fl(ext("WITH i AS (INSERT INTO plain21 (a) VALUES ($1) RETURNING a) INSERT INTO legacy_notes (body) SELECT a FROM i", "SECRET"), syncMsg()),
		}},
		// Fault: as above, for a CTE literal written by a data-modifying CTE and selected, or returned by a scalar subquery in RETURNING.
		{name: "role21/copy_query_cte_written_and_copied", outputs: true, flights: []flight{
			fl("COPY (WITH v(x) AS (VALUES ('SECRET')), i AS (INSERT INTO legacy_notes (body) SELECT x FROM v RETURNING body) SELECT x FROM v) TO STDOUT"),
			fl("COPY (WITH v(x) AS (VALUES ('SECRET')) INSERT INTO legacy_notes (body) SELECT x FROM v RETURNING body, (SELECT x FROM v)) TO STDOUT"),
		}},
		// Fault: rewrite/copy.go copyStmt appends nil for an output with no columns (len(v.cols) == 0) without p.output(v), so a literal site written to body and returned (UPDATE … FROM VALUES RETURNING v.x) is not a param_conflict: its envelope is copied out.
		{name: "role21/copy_update_from_values_returning", outputs: true, ddl: "; INSERT INTO legacy_notes (id) VALUES (7)", flights: []flight{
			fl("COPY (UPDATE legacy_notes SET body = v.x FROM (VALUES ('SECRET')) v(x) WHERE legacy_notes.id = 7 RETURNING v.x) TO STDOUT"),
			fl("COPY (WITH v(x) AS (VALUES ('SECRET')) UPDATE legacy_notes SET body = v.x FROM v WHERE legacy_notes.id = 7 RETURNING id, (SELECT x FROM v)) TO STDOUT (FORMAT csv)"),
		}},
		{name: "role21/create_table_as_dml_cte_written_and_kept", check: allChecks(noTable("t21c"), noTable("t21d")), flights: []flight{
			fl("CREATE TABLE t21c AS WITH v(x) AS (VALUES ('SECRET')), i AS (INSERT INTO legacy_notes (body) SELECT x FROM v) SELECT x FROM v"),
			fl("WITH v(x) AS (VALUES ('SECRET')), i AS (INSERT INTO legacy_notes (body) SELECT x FROM v) SELECT x INTO t21d FROM v"),
		}},
		{name: "role21/returning_scalar_subquery_of_cte_written", flights: []flight{
			fl("WITH v(x) AS (VALUES ('SECRET')) INSERT INTO legacy_notes (body) SELECT x FROM v RETURNING id, (SELECT x FROM v)"),
			fl("WITH v(x) AS (VALUES ('SECRET')) INSERT INTO legacy_notes (body) SELECT x FROM v RETURNING id, EXISTS (SELECT 1 FROM v WHERE x = 'SECRET')"),
		}},

		// 4. GROUPING SETS, windows and PREPARE around written values.
		{name: "group21/grouping_sets_written_randomized", check: count21("SELECT count(*) FROM legacy_notes", 0, 2), flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET'), ('SECRET')) v(x) GROUP BY GROUPING SETS ((x), ())"),
		}},
		{name: "group21/prepared_values_two_params_grouped", check: count21("SELECT count(*) FROM legacy_notes", 0, 1), flights: []flight{
			fl("PREPARE g21(text, text) AS INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ($1), ($2)) v(x) GROUP BY x"),
			fl("EXECUTE g21('SECRET', 'SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ($1), ($2)) v(x) GROUP BY CUBE (x) HAVING x IS NOT NULL", "SECRET", "SECRET"), syncMsg()),
		}},
		{name: "group21/prepared_window_partition_written", check: count21("SELECT count(*) FROM legacy_notes WHERE id IN (11, 12)", 0), flights: []flight{
			fl("PREPARE w21(text, text) AS INSERT INTO legacy_notes (id, body) SELECT count(*) OVER (PARTITION BY x) * 10 + k, x FROM (VALUES ($1, 1), ($2, 2)) v(x, k)"),
			fl("EXECUTE w21('SECRET', 'SECRET')"),
		}},
		{name: "group21/window_lag_of_literal_written", check: count21("SELECT count(*) FROM legacy_notes", 0), flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT lag(x, 0) OVER () FROM (VALUES ('SECRET')) v(x)"),
			fl("INSERT INTO legacy_notes (body) SELECT first_value(x) OVER (ORDER BY k) FROM (VALUES ('SECRET', 1)) v(x, k)"),
		}},
		{name: "group21/prepared_arg_written_and_limit", check: count21("SELECT count(*) FROM legacy_notes", 0), flights: []flight{
			fl("PREPARE l21(text) AS INSERT INTO legacy_notes (body) SELECT $1 FROM generate_series(1, 5) LIMIT length($1)"),
			fl("EXECUTE l21('SECRET')"),
		}},
		{name: "group21/grouping_sets_read_and_copy", outputs: true, flights: []flight{
			fl(insClient21),
			fl("SELECT email, count(*) FROM clients GROUP BY GROUPING SETS ((email), ())"),
			fl("COPY (SELECT email, count(*) FROM clients GROUP BY GROUPING SETS ((email), ())) TO STDOUT (FORMAT csv, HEADER)"),
			fl("COPY (SELECT email, count(*) FROM clients GROUP BY ROLLUP (email)) TO STDOUT (FORMAT binary)"),
		}},

		// 5. COPY (query) TO STDOUT with policy columns.
		{name: "copy21/query_literal_binary_out", outputs: true, flights: []flight{
			fl(insClient21),
			fl("COPY (SELECT first_name, email FROM clients WHERE email = 'SECRET') TO STDOUT (FORMAT binary)"),
		}},
		{name: "copy21/query_lateral_star_text", outputs: true, flights: []flight{
			fl(insClient21),
			fl("COPY (SELECT l.* FROM workspaces w CROSS JOIN LATERAL (SELECT first_name, phone FROM clients c WHERE c.workspace_id = w.id) l) TO STDOUT"),
		}},
		{name: "copy21/table_query_force_quote", outputs: true, flights: []flight{
			fl(insNote21),
			fl("COPY (TABLE legacy_notes) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"),
			fl("COPY legacy_notes (body, id) TO STDOUT (FORMAT csv, FORCE_QUOTE (body), QUOTE '''')"),
		}},

		// 6. Row constructors and composite types.
		{name: "row21/populate_record_function_item_columns", check: count21("SELECT count(*) FROM clients", 0), flights: []flight{
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name) SELECT w.id, r.first_name, r.last_name FROM workspaces w, json_populate_record(null::clients, json_build_object('first_name', $1::text, 'last_name', 'x')) r", "SECRET"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (id, body) SELECT id, body FROM jsonb_to_recordset($1::jsonb) AS x(id int, body text)", `[{"id": 1, "body": "SECRET"}]`), syncMsg()),
		}},
		{name: "row21/row_cast_field_compared", flights: []flight{
			fl(insClient21),
			fl("SELECT id FROM clients WHERE (ROW(clients.*)::clients).email = 'SECRET'"),
			fl("SELECT id FROM clients c WHERE (c::clients).email = 'SECRET'"),
		}},
		{name: "row21/row_in_values_deterministic", flights: []flight{
			fl(insClient21),
			fl("SELECT id FROM clients WHERE (email, workspace_id) IN (VALUES ('SECRET', (SELECT id FROM workspaces LIMIT 1)))"),
			fl("WITH s(e) AS (SELECT 'SECRET'::text) SELECT c.id FROM clients c, s WHERE ROW(c.email, c.id) IS NOT DISTINCT FROM ROW(s.e, c.id)"),
		}},
		{name: "row21/cte_row_cast_star_insert", flights: []flight{
			fl("WITH r AS (SELECT ROW(1, 'SECRET')::legacy_notes AS x) INSERT INTO legacy_notes SELECT (x).* FROM r"),
		}},

		// 7. Extended protocol: declared types and binary formats.
		{name: "ext21/unknown_binary_param_cte_merge_insert", check: values21("SELECT email FROM clients", 0, 1), flights: []flight{
			fl(parse21("WITH s(e) AS (VALUES ($1)) MERGE INTO clients c USING s ON c.email = s.e WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, email) VALUES ((SELECT id FROM workspaces LIMIT 1), 'a', 'b', s.e)", 705),
				bindExec21(1, "SECRET"), syncMsg()),
		}},
		{name: "ext21/varchar_array_param_any_in_cte", flights: []flight{
			fl(insClient21),
			fl(parse21("WITH s AS (SELECT id FROM clients WHERE email = ANY($1)) SELECT count(*) FROM s", 1015), bindExec21(0, "{SECRET}"), syncMsg()),
			fl(parse21("SELECT id FROM clients WHERE email = ANY($1::varchar[])"), bindExec21(0, "{SECRET}"), syncMsg()),
		}},
		{name: "ext21/bytea_declared_values_cte_write", check: values21("SELECT body FROM legacy_notes", 0, 1), flights: []flight{
			fl(parse21("WITH v(x) AS (VALUES ($1)) INSERT INTO legacy_notes (body) SELECT x FROM v", 17), bindExec21(1, "SECRET"), syncMsg()),
			fl(parse21("WITH v(x) AS (VALUES ($1)) INSERT INTO legacy_notes (body) SELECT x FROM v", 17), bindExec21(0, "SECRET"), syncMsg()),
		}},
		{name: "ext21/name_declared_not_equal_in_lateral", check: count21("SELECT count(*) FROM clients WHERE notes = 'hit'", 0), flights: []flight{
			fl(insClient21),
			fl(parse21("UPDATE clients SET notes = 'hit' FROM workspaces w CROSS JOIN LATERAL (SELECT $1 AS e) l WHERE clients.workspace_id = w.id AND clients.email <> l.e", 19), bindExec21(0, "SECRET"), syncMsg()),
			fl(parse21("UPDATE clients SET notes = 'hit' WHERE email <> $1", 19), bindExec21(0, "SECRET"), syncMsg()),
		}},
		{name: "ext21/binary_result_dml_cte", flights: []flight{
			fl(insClient21),
			fl(&pgproto3.Parse{Query: "WITH u AS (UPDATE clients SET phone = $1 RETURNING phone, email) SELECT * FROM u"},
				&pgproto3.Bind{Parameters: [][]byte{[]byte("SECRET")}, ResultFormatCodes: []int16{1}},
				&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "ext21/domain_check_prepare_type", ddl: domain21, check: count21("SELECT count(*) FROM legacy_notes", 0), flights: []flight{
			fl("PREPARE d21p(d21) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXECUTE d21p('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1::d21)", "SECRET"), syncMsg()),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'::d21)"),
			fl("WITH v(x) AS (SELECT 'SECRET'::d21) INSERT INTO legacy_notes (body) SELECT x FROM v"),
		}},

		// 8. DDL that combines forms.
		{name: "ddl21/create_table_as_recursive_cross_join", check: noTable("t21"), flights: []flight{
			fl("CREATE TABLE t21 AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2) SELECT r.n, c.first_name FROM r CROSS JOIN clients c"),
		}},
		{name: "ddl21/select_into_from_lateral_values", check: noTable("t21b"), flights: []flight{
			fl("SELECT l.x INTO t21b FROM clients c CROSS JOIN LATERAL (VALUES (c.email)) l(x)"),
		}},
		{name: "ddl21/check_nullif_and_index_row_in", flights: []flight{
			fl("ALTER TABLE clients ADD CONSTRAINT c21 CHECK (NULLIF(email, 'SECRET') IS NOT NULL OR email IS NULL)"),
			fl("CREATE INDEX ON clients (id) WHERE (email, is_active) IN (('SECRET', true))"),
		}},
		{name: "ddl21/policy_using_correlated_cte", flights: []flight{
			fl("CREATE POLICY p21 ON clients USING (EXISTS (WITH s(e) AS (VALUES ('SECRET')) SELECT 1 FROM s WHERE s.e = email))"),
			fl("CREATE POLICY p21b ON clients USING (email IN (SELECT x FROM unnest(ARRAY['SECRET']) x))"),
		}},
	}
}

func TestAttackReview21(t *testing.T) { runAttacks(t, 21000, attackCases21()) }
