package e2e

// A seventeenth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit c7ab5a3. Its themes:
//
//   - deterministic search while a rotation is in progress: a column with
//     values under v1 and v2 searched with =, <>, IN, = ANY, <> ALL, row
//     comparisons, CASE, MERGE, UPDATE … SET email WHERE email, INSERT …
//     WHERE NOT EXISTS, SQL PREPARE / EXECUTE; statements prepared (named
//     Parse, SQL PREPARE, pgx's statement cache) before a key reload and
//     run after it;
//   - policy hot reload mid-session: a column added to the policy while a
//     session is open, sessions from before and after reading the same
//     rows;
//   - large values and COPY with lent read buffers: COPY rows over 32 KB
//     split across CopyData messages at an escape, a doubled CSV quote or
//     a binary length word; 1 MB Bind parameters; many sessions at once.
//
// Failing at c7ab5a3: a value both stored in and compared with a
// deterministic column (UPDATE SET email = $1 WHERE email = $1, MERGE,
// INSERT … WHERE NOT EXISTS, via a parameter or a VALUES/CTE literal) is
// encrypted under the active key only, neither expanded nor refused;
// literals of statements prepared before a keys reload keep their old
// envelopes (wrong counts; writes under a retired key); a session opened
// before a column joined the policy receives its envelopes. COPY, large
// values and the remaining search forms passed (right results or 0A000).
//
// Since the fixes: such a value is refused during a rotation (0A000); a
// statement whose literals are under keys reloaded since is refused at
// Bind or EXECUTE unless its compared literals cover every version
// searched now and its written ones a key the keyring still has; and a
// session whose policy a reload replaced ends (57P01) at its next
// statement.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// keyring17 is a keyring of the fixture's keys ids, writing under active.
func keyring17(t *testing.T, f *encFixture, active string, ids ...string) *cipher.Keyring {
	t.Helper()
	m := map[string]cipher.Key{}
	for _, id := range ids {
		m[id] = f.keys[id]
	}
	kr, err := cipher.NewKeyring(active, m)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// setKeys17 is a reload that changes only keys (as cmd/pgcrypt-proxy's
// reload does with Policy.SetKeys).
func setKeys17(t *testing.T, f *encFixture, active string, ids ...string) {
	t.Helper()
	if err := f.p.Server.Policy().SetKeys(keyring17(t, f, active, ids...)); err != nil {
		t.Fatal(err)
	}
}

const ws17 = "(SELECT id FROM workspaces LIMIT 1)"

// bCount17 counts the rows holding b17 (one, under v1, in the fixture).
const bCount17 = "SELECT count(*) FROM clients WHERE email IN ('b17@example.com', 'zz')"

// rotFixture17 is a fixture whose clients.email holds a17 under v1 and
// under v2, b17 under v1 and c17 under v2: a rotation half done. The
// keyring lists v1 and v2, active v2.
func rotFixture17(t *testing.T, ddl string) *encFixture {
	t.Helper()
	f := newEncFixtureWith(t, seedColumns(), false, ddl, "")
	setKeys17(t, f, "v1", "v1")
	c := f.connect(t, pgx.QueryExecModeExec)
	ctx := testCtx(t)
	ins := func(e string) {
		t.Helper()
		if _, err := c.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ("+ws17+", 'F', 'L', $1)", e); err != nil {
			t.Fatal(err)
		}
	}
	ins("a17@example.com")
	ins("b17@example.com")
	setKeys17(t, f, "v2", "v1", "v2")
	ins("a17@example.com")
	ins("c17@example.com")
	var v1, v2 int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FILTER (WHERE email LIKE 'v1:%'), count(*) FILTER (WHERE email LIKE 'v2:%') FROM clients").Scan(&v1, &v2); err != nil || v1 != 2 || v2 != 2 {
		t.Fatalf("fixture: %d rows under v1, %d under v2 (%v), want 2 and 2", v1, v2, err)
	}
	return f
}

// isRefusal reports whether err is the proxy's (or the server's) refusal,
// not a lost connection.
func isRefusal(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

type count17 struct {
	sql  string
	args []any
	want int64
	// after, when set, is a count (through the same session, in the same
	// transaction) that must give afterWant once sql has run.
	after     string
	afterWant int64
}

// counts17 runs each query (its first column is a count, or it is a
// statement whose command tag is counted) inside a transaction rolled back
// afterwards, on every connection: a refusal is fine, a wrong count is not.
func counts17(t *testing.T, f *encFixture, qs []count17) {
	t.Helper()
	ctx := testCtx(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := f.connect(t, mode)
		for _, q := range qs {
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatalf("%v: begin: %v", mode, err)
			}
			var got int64
			if up := strings.ToUpper(q.sql); strings.HasPrefix(up, "SELECT") || strings.HasPrefix(up, "WITH") && !strings.Contains(up, "INSERT") {
				err = tx.QueryRow(ctx, q.sql, q.args...).Scan(&got)
			} else {
				var tag pgconn.CommandTag
				tag, err = tx.Exec(ctx, q.sql, q.args...)
				got = tag.RowsAffected()
			}
			switch {
			case err != nil && isRefusal(err):
				t.Logf("%v: refused: %s: %v", mode, q.sql, err)
			case err != nil:
				t.Fatalf("%v: %s: %v", mode, q.sql, err)
			case got != q.want:
				t.Errorf("WRONG (%v): %s %v gave %d, want %d", mode, q.sql, q.args, got, q.want)
			case q.after != "":
				var n int64
				if err := tx.QueryRow(ctx, q.after).Scan(&n); err != nil {
					t.Fatalf("%v: %s: %v", mode, q.after, err)
				}
				if n != q.afterWant {
					t.Errorf("WRONG (%v): after %s %v, %s gives %d, want %d", mode, q.sql, q.args, q.after, n, q.afterWant)
				}
			}
			tx.Rollback(ctx)
		}
		var one int
		if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatalf("%v: session not usable: %v", mode, err)
		}
	}
}

// Wrong (eight entries, marked below): a value both stored in and compared
// with a deterministic column is encrypted once, under the active key.
// TestAttackRotateSearch17: every search form over a column half rotated
// finds the rows under both versions, or is refused.
func TestAttackRotateSearch17(t *testing.T) {
	f := rotFixture17(t, "")
	a, b := "a17@example.com", "b17@example.com"
	counts17(t, f, []count17{
		{"SELECT count(*) FROM clients WHERE email = 'a17@example.com'", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email = $1", []any{a}, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email <> 'a17@example.com'", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE NOT (email = 'a17@example.com')", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email IN ('a17@example.com', 'b17@example.com')", nil, 3, "", 0},
		{"SELECT count(*) FROM clients WHERE email NOT IN ('a17@example.com', NULL)", nil, 0, "", 0},
		{"SELECT count(*) FROM clients WHERE email NOT IN ('a17@example.com')", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email IN ($1, $2)", []any{a, a}, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email NOT IN ($1, $2)", []any{a, b}, 1, "", 0},
		{"SELECT count(*) FROM clients WHERE email = ANY(ARRAY['a17@example.com', 'b17@example.com'])", nil, 3, "", 0},
		{"SELECT count(*) FROM clients WHERE email <> ALL(ARRAY['a17@example.com'])", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email = ALL(ARRAY['a17@example.com'])", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email <> ANY(ARRAY['a17@example.com'])", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email = ANY('{a17@example.com,b17@example.com}')", nil, 3, "", 0},
		{"SELECT count(*) FROM clients WHERE email = ANY(ARRAY['a17@example.com', $1])", []any{b}, 3, "", 0},
		{"SELECT count(*) FROM clients WHERE email IS DISTINCT FROM 'a17@example.com'", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email IS NOT DISTINCT FROM 'a17@example.com'", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE (email, is_active) = ('a17@example.com', true)", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE (email, is_active) IN (('a17@example.com', true))", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE ROW(email) = ROW('a17@example.com')", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE CASE WHEN email = 'a17@example.com' THEN true ELSE false END", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE CASE email WHEN 'a17@example.com' THEN true ELSE false END", nil, 2, "", 0},
		{"SELECT count(*) FILTER (WHERE email = 'a17@example.com') FROM clients", nil, 2, "", 0},
		{"SELECT sum(CASE WHEN email = $1 THEN 1 ELSE 0 END) FROM clients", []any{a}, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE (email = 'a17@example.com') IS TRUE", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email = (SELECT 'a17@example.com')", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email IN (SELECT 'a17@example.com')", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email IN (VALUES ('a17@example.com'))", nil, 2, "", 0},
		{"WITH x(e) AS (VALUES ('a17@example.com')) SELECT count(*) FROM clients, x WHERE email = x.e", nil, 2, "", 0},
		{"SELECT count(*) FROM clients c JOIN (VALUES ('a17@example.com')) v(e) ON c.email = v.e", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email = coalesce('a17@example.com', 'x')", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email = NULLIF('a17@example.com', 'x')", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE NULLIF(email, 'a17@example.com') IS NULL", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email OPERATOR(pg_catalog.=) 'a17@example.com'", nil, 2, "", 0},
		{"SELECT count(*) FROM (SELECT email AS e FROM clients) s WHERE s.e = 'a17@example.com'", nil, 2, "", 0},
		{"SELECT count(*) FROM (SELECT email AS e FROM clients UNION ALL SELECT email FROM clients) s WHERE s.e = $1", []any{a}, 4, "", 0},
		{"SELECT count(*) FROM (SELECT DISTINCT email FROM clients WHERE email = $1) s", []any{b}, 1, "", 0},
		{"SELECT count(*) FROM clients WHERE EXISTS (SELECT 1 FROM clients d WHERE d.email = 'a17@example.com' AND d.id = clients.id)", nil, 2, "", 0},
		// Compare and store in one statement.
		{"UPDATE clients SET email = 'd17@example.com' WHERE email = 'a17@example.com'", nil, 2, "", 0},
		{"UPDATE clients SET email = $1 WHERE email = $2", []any{"d17@example.com", a}, 2, "", 0},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"UPDATE clients SET email = $1 WHERE email = $1", []any{a}, 2, "", 0},
		{"UPDATE clients SET notes = 'n' WHERE email IN ($1) RETURNING id", []any{a}, 2, "", 0},
		{"DELETE FROM clients WHERE email = ANY(ARRAY['a17@example.com'])", nil, 2, "", 0},
		{"INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'f', 'l', 'b17@example.com' FROM workspaces WHERE NOT EXISTS (SELECT 1 FROM clients WHERE email = 'b17@example.com')", nil, 0, "", 0},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'f', 'l', $1 FROM workspaces WHERE NOT EXISTS (SELECT 1 FROM clients WHERE email = $1)", []any{b}, 0, "", 0},
		{"INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'f', 'l', $1 FROM workspaces WHERE NOT EXISTS (SELECT 1 FROM clients WHERE email = $2)", []any{b, b}, 0, "", 0},
		{"MERGE INTO clients c USING (SELECT 1) s ON c.email = 'a17@example.com' WHEN MATCHED THEN UPDATE SET notes = 'm' WHEN NOT MATCHED THEN DO NOTHING", nil, 2, "", 0},
		{"MERGE INTO clients c USING (SELECT 1) s ON c.email = $1 WHEN MATCHED THEN UPDATE SET notes = 'm'", []any{a}, 2, "", 0},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"MERGE INTO clients c USING (VALUES ('b17@example.com')) v(e) ON c.email = v.e WHEN MATCHED THEN UPDATE SET notes = 'm' WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, email) VALUES (" + ws17 + ", 'f', 'l', v.e)", nil, 1, bCount17, 1},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT " + ws17 + ", 'f', 'l', x.e FROM (VALUES ('b17@example.com')) x(e) WHERE NOT EXISTS (SELECT 1 FROM clients WHERE email = x.e)", nil, 0, bCount17, 1},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"WITH x(e) AS (SELECT 'b17@example.com') INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT " + ws17 + ", 'f', 'l', x.e FROM x WHERE x.e NOT IN (SELECT email FROM clients WHERE email IS NOT NULL)", nil, 0, bCount17, 1},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"UPDATE clients SET email = x.e FROM (VALUES ('a17@example.com')) x(e) WHERE clients.email = x.e", nil, 2, "", 0},
		{"UPDATE clients SET email = 'a17@example.com', notes = 'u' WHERE email = 'a17@example.com'", nil, 2, "", 0},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"MERGE INTO clients c USING (SELECT $1::text AS e) v ON c.email = v.e WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, email) VALUES (" + ws17 + ", 'f', 'l', v.e)", []any{b}, 0, bCount17, 1},
		// Wrong before the fix: proxy/frontend_bind.go encryptParams (and frontend.go encryptLiterals) test prm.Use == rewrite.UseCompare exactly, so a value both written and compared (Use = UseWrite|UseCompare) is neither expanded to every key version nor refused: it is encrypted once under the active key and misses the rows under v1.
		{"MERGE INTO clients c USING (SELECT 1) v ON c.email = $1 WHEN NOT MATCHED THEN INSERT (workspace_id, first_name, last_name, email) VALUES (" + ws17 + ", 'f', 'l', $1)", []any{b}, 0, bCount17, 1},
	})
}

// TestAttackRotateSQLPrepare17: SQL PREPARE … EXECUTE forms during a
// rotation.
func TestAttackRotateSQLPrepare17(t *testing.T) {
	f := rotFixture17(t, "")
	fe, _ := failRaw(t, f)
	for _, c := range []struct {
		sql  string
		want string
	}{
		{"PREPARE q17(text) AS SELECT count(*) FROM clients WHERE email = $1; EXECUTE q17('a17@example.com')", "2"},
		{"PREPARE q17b(text[]) AS SELECT count(*) FROM clients WHERE email = ANY($1); EXECUTE q17b(ARRAY['a17@example.com', 'c17@example.com'])", "3"},
		{"PREPARE q17c(text[]) AS SELECT count(*) FROM clients WHERE email = ANY($1); EXECUTE q17c('{a17@example.com,c17@example.com}')", "3"},
		{"PREPARE q17d(text, text) AS SELECT count(*) FROM clients WHERE email IN ($1, $2); EXECUTE q17d('a17@example.com', 'b17@example.com')", "3"},
		{"PREPARE q17e(text) AS SELECT count(*) FROM clients WHERE email <> $1; EXECUTE q17e('a17@example.com')", "2"},
		{"PREPARE q17f AS SELECT count(*) FROM clients WHERE email = 'a17@example.com'; EXECUTE q17f", "2"},
		{"EXECUTE q17(NULLIF('a17@example.com', 'x'))", "2"},
		{"EXECUTE q17('a17@' || 'example.com')", "2"},
	} {
		ms := rawQuery(t, fe, c.sql)
		rows := rowsOfAll(ms)
		if hasFatal(ms) {
			t.Logf("refused: %s", c.sql)
			continue
		}
		if len(rows) == 0 || string(rows[len(rows)-1].Values[0]) != c.want {
			t.Errorf("WRONG: %s gave %v, want %s", c.sql, rows, c.want)
		}
	}
}

// prepCount17 is a statement prepared before a key reload and run after.
type prepCount17 struct {
	sql  string
	want [2]int64 // before, after the second a17 row
}

// Wrong before the fix: proxy/frontend.go encryptLiterals runs once, at Parse (frontend_stmts.go frontendParse / SQL PREPARE): a statement prepared while the keyring had one version keeps that one envelope of each compared literal in its text, so after a keys-only reload (policy.go SetKeys, which README says applies to open sessions "from its next statement") =, <>, IN, NOT IN and = ANY(ARRAY[…]) miss or wrongly include the rows under the new version.
// TestAttackRotatePreparedBeforeReload17: statements prepared while the
// keyring had one version (pgx's statement cache, a named Parse, SQL
// PREPARE), run after a reload added v2 and made it active and a row was
// written under it.
func TestAttackRotatePreparedBeforeReload17(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	setKeys17(t, f, "v1", "v1")
	ctx := testCtx(t)
	pooled := f.connect(t, pgx.QueryExecModeCacheStatement)
	ins := func(c *pgx.Conn, e string) {
		t.Helper()
		if _, err := c.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ("+ws17+", 'F', 'L', $1)", e); err != nil {
			t.Fatal(err)
		}
	}
	ins(pooled, "p17@example.com")
	ins(pooled, "q17@example.com")
	qs := []prepCount17{
		{"SELECT count(*) FROM clients WHERE email = 'p17@example.com'", [2]int64{1, 2}},
		{"SELECT count(*) FROM clients WHERE email <> 'p17@example.com'", [2]int64{1, 1}},
		{"SELECT count(*) FROM clients WHERE email IN ('p17@example.com', 'zz17')", [2]int64{1, 2}},
		{"SELECT count(*) FROM clients WHERE email NOT IN ('p17@example.com')", [2]int64{1, 1}},
		{"SELECT count(*) FROM clients WHERE email = ANY(ARRAY['p17@example.com'])", [2]int64{1, 2}},
		{"SELECT count(*) FROM clients WHERE email = $1", [2]int64{1, 2}},
	}
	run := func(c *pgx.Conn, q prepCount17) (int64, error) {
		var n int64
		var args []any
		if strings.Contains(q.sql, "$1") {
			args = []any{"p17@example.com"}
		}
		err := c.QueryRow(ctx, q.sql, args...).Scan(&n)
		return n, err
	}
	for _, q := range qs {
		if n, err := run(pooled, q); err != nil || n != q.want[0] {
			t.Fatalf("before: %s: %d, %v", q.sql, n, err)
		}
	}
	// The same on a raw session: a named Parse, and SQL PREPARE.
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Parse{Name: "n17", Query: "SELECT count(*) FROM clients WHERE email = 'p17@example.com'"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if ms := failUntilZ(t, fe); hasFatal(ms) {
		t.Fatalf("parse: %v", ms)
	}
	if ms := rawQuery(t, fe, "PREPARE s17 AS SELECT count(*) FROM clients WHERE email = 'p17@example.com'"); hasFatal(ms) {
		t.Fatalf("prepare: %v", ms)
	}

	// Reload: v2 added and made active; open sessions switch keys from
	// their next statement (README, Reloading).
	setKeys17(t, f, "v2", "v1", "v2")
	ins(f.connect(t, pgx.QueryExecModeExec), "p17@example.com")
	var kid string
	if err := f.direct.QueryRow(ctx, "SELECT string_agg(split_part(email, ':', 1), ',' ORDER BY 1) FROM clients").Scan(&kid); err != nil || kid != "v1,v1,v2" {
		t.Fatalf("stored under %q (%v)", kid, err)
	}
	t.Run("pgx_statement_cache", func(t *testing.T) {
		for _, q := range qs {
			n, err := run(pooled, q)
			switch {
			case err != nil && isRefusal(err):
				t.Logf("refused: %s: %v", q.sql, err)
			case err != nil:
				t.Fatal(err)
			case n != q.want[1]:
				t.Errorf("WRONG: %s, prepared before the reload, gave %d after it, want %d", q.sql, n, q.want[1])
			}
		}
	})
	t.Run("named_parse", func(t *testing.T) {
		fe.Send(&pgproto3.Bind{PreparedStatement: "n17"})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		fe.Flush()
		ms := failUntilZ(t, fe)
		if rows := rowsOfAll(ms); !hasFatal(ms) && (len(rows) != 1 || string(rows[0].Values[0]) != "2") {
			t.Errorf("WRONG: a named statement parsed before the reload counts %v, want 2", rows)
		}
	})
	t.Run("sql_prepare", func(t *testing.T) {
		ms := rawQuery(t, fe, "EXECUTE s17")
		if rows := rowsOfAll(ms); !hasFatal(ms) && (len(rows) != 1 || string(rows[0].Values[0]) != "2") {
			t.Errorf("WRONG: EXECUTE of a PREPARE made before the reload counts %v, want 2", rows)
		}
	})
	t.Run("control_new_session", func(t *testing.T) {
		c := f.connect(t, pgx.QueryExecModeCacheStatement)
		for _, q := range qs {
			if n, err := run(c, q); err != nil || n != q.want[1] {
				t.Errorf("a new session: %s: %d, %v", q.sql, n, err)
			}
		}
	})
}

// Wrong before the fix: proxy/frontend.go encryptLiterals at Parse only: a statement prepared under v1 (pgx cache, SQL PREPARE) still writes v1 envelopes after v1 was retired by a reload (policy.go SetKeys); the rows no longer decrypt (XX001 for every reader).
// TestAttackRetiredPreparedWrite17: a statement prepared under v1 with a
// literal written to a policy column, run after v1 was retired (the
// rotation reported none left): what it stores must be under a key the
// proxy has, or be refused.
func TestAttackRetiredPreparedWrite17(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	setKeys17(t, f, "v1", "v1")
	ctx := testCtx(t)
	pooled := f.connect(t, pgx.QueryExecModeCacheStatement)
	const insert = "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES (" + ws17 + ", 'Retired17', 'L', 'r17@example.com')"
	if _, err := pooled.Exec(ctx, insert); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	if ms := rawQuery(t, fe, "PREPARE w17 AS "+insert); hasFatal(ms) {
		t.Fatalf("prepare: %v", ms)
	}
	setKeys17(t, f, "v2", "v1", "v2")
	// pgcrypt-proxy rotate: every value re-encrypted under v2 (here by a
	// read and write through a new session).
	c := f.connect(t, pgx.QueryExecModeExec)
	if _, err := c.Exec(ctx, "UPDATE clients SET first_name = 'Retired17', email = 'r17@example.com'"); err != nil {
		t.Fatal(err)
	}
	setKeys17(t, f, "v2", "v2")
	if _, err := pooled.Exec(ctx, insert); err != nil && !isRefusal(err) {
		t.Fatal(err)
	}
	if ms := rawQuery(t, fe, "EXECUTE w17"); hasFatal(ms) {
		t.Logf("EXECUTE refused")
	}
	var n int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM clients WHERE email LIKE 'v1:%' OR first_name LIKE 'v1:%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("WRONG: %d rows written under the retired v1 after the reload; they no longer read", n)
	}
	var cnt int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM clients WHERE email = 'r17@example.com'").Scan(&cnt); err != nil {
		t.Fatal(err)
	}
	rows, _ := c.Query(ctx, "SELECT first_name FROM clients")
	if _, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Errorf("reading every row after the reload: %v", err)
	}
}

// Leaked before the fix: proxy/server.go SetPolicy / session policy ("a session keeps the one it started with"): a session opened before a column was added to the policy gets that column's envelopes in DataRows and COPY TO (backend.go rowShapeOf maps no policy column), and stores it in plaintext (the latter as documented in README, Reloading).
// TestAttackReloadColumnAdded17: a column is added to the policy while a
// session is open (README: it keeps the policy it started with). A session
// opened after the reload writes it encrypted; the old session reads that
// row.
func TestAttackReloadColumnAdded17(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	ctx := testCtx(t)
	old := f.connect(t, pgx.QueryExecModeExec)
	oldRaw, _ := failRaw(t, f)
	var one int
	if err := old.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	specs := append(seedColumns(), proxy.ColumnSpec{Schema: "public", Table: "clients", Column: "notes", AssociatedData: []byte("public.clients.notes")})
	pol, err := proxy.NewPolicy(specs, keyring17(t, f, "v1", "v1"), false, f.p.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	f.p.Server.SetPolicy(pol)
	fresh := f.connect(t, pgx.QueryExecModeExec)
	if _, err := fresh.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, notes) VALUES ("+ws17+", 'F', 'L', $1)", "NOTE17_SECRET"); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := f.direct.QueryRow(ctx, "SELECT notes FROM clients").Scan(&stored); err != nil || !cipher.LooksLikeEnvelope([]byte(stored)) {
		t.Fatalf("new session stored %q (%v)", stored, err)
	}
	var got string
	if err := old.QueryRow(ctx, "SELECT notes FROM clients").Scan(&got); err == nil && cipher.LooksLikeEnvelope([]byte(got)) {
		t.Errorf("CIPHERTEXT returned to a session opened before the reload: %.50q", got)
	} else {
		t.Logf("old session read %q, %v", got, err)
	}
	oldRaw.Send(&pgproto3.Query{String: "COPY (SELECT notes FROM clients) TO STDOUT"})
	oldRaw.Flush()
	ms, _ := untilZ(t, oldRaw) // the session ends (57P01) at its next statement
	for _, m := range ms {
		if d, ok := m.(*pgproto3.CopyData); ok && envelopeIn.Match(d.Data) {
			t.Errorf("CIPHERTEXT in COPY TO for a session opened before the reload: %.50q", d.Data)
		}
	}
	// And the old session writes the new policy column in plaintext.
	if _, err := old.Exec(ctx, "UPDATE clients SET notes = $1", "NOTE17_OLD_SECRET"); err == nil {
		var n int
		f.direct.QueryRow(ctx, "SELECT count(*) FROM clients WHERE notes LIKE 'NOTE17_OLD%'").Scan(&n)
		if n != 0 {
			t.Logf("(documented: README Reloading) the old session stored %d values of a new policy column in plaintext", n)
		}
	}
	// A fresh session reads what the old one wrote.
	if err := fresh.QueryRow(ctx, "SELECT notes FROM clients").Scan(&got); err != nil {
		t.Logf("new session reading the old one's write: %v", err)
	}
}

// TestAttackReloadOpenPortal17: a portal bound and partly fetched before a
// keys reload, fetched after it; a pipeline split by the reload.
func TestAttackReloadOpenPortal17(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	setKeys17(t, f, "v1", "v1")
	ctx := testCtx(t)
	c := f.connect(t, pgx.QueryExecModeExec)
	for i := range 6 {
		if _, err := c.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ("+ws17+", $1, 'L', $2)", fmt.Sprintf("F%d", i), fmt.Sprintf("o%d@example.com", i%2)); err != nil {
			t.Fatal(err)
		}
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "BEGIN"})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Parse{Name: "por17", Query: "SELECT first_name, email FROM clients WHERE email = $1 ORDER BY first_name"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "P17", PreparedStatement: "por17", Parameters: [][]byte{[]byte("o0@example.com")}})
	fe.Send(&pgproto3.Execute{Portal: "P17", MaxRows: 1})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	ms := failUntilZ(t, fe)
	got := len(rowsOfAll(ms))
	setKeys17(t, f, "v2", "v1", "v2")
	if _, err := c.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ("+ws17+", 'F9', 'L', 'o0@example.com')"); err != nil {
		t.Fatal(err)
	}
	fe.Send(&pgproto3.Execute{Portal: "P17"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "P17b", PreparedStatement: "por17", Parameters: [][]byte{[]byte("o0@example.com")}})
	fe.Send(&pgproto3.Execute{Portal: "P17b"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	ms = failUntilZ(t, fe)
	rows := rowsOfAll(ms)
	for _, r := range rows {
		for _, v := range r.Values {
			if cipher.LooksLikeEnvelope(v) {
				t.Errorf("CIPHERTEXT returned: %.50q", v)
			}
		}
	}
	// P17: 3 rows in all (F0, F2, F4); P17b sees the v2 row too (4).
	if got+len(rows) != 3+4 && !hasFatal(ms) {
		t.Errorf("WRONG: portal rows before %d + after %d, want 3 then 4 more", got, len(rows))
	}
	rawQuery(t, fe, "ROLLBACK")
}

// TestAttackManySessionsLarge17: sessions at once, each with 1 MB Bind
// parameters and COPY rows over 32 KB in awkward CopyData pieces, read
// back whole.
func TestAttackManySessionsLarge17(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	ctx := testCtx(t)
	const sessions = 4
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range sessions {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := f.connect(t, pgx.QueryExecModeExec)
			val := fmt.Sprintf("BIG17_%d_", i) + strings.Repeat(string(rune('a'+i)), 1<<20)
			var id int
			if err := c.QueryRow(ctx, "INSERT INTO legacy_notes (body) VALUES ($1) RETURNING id", val).Scan(&id); err != nil {
				errs <- err
				return
			}
			var got string
			if err := c.QueryRow(ctx, "SELECT body FROM legacy_notes WHERE id = $1", id).Scan(&got); err != nil || got != val {
				errs <- fmt.Errorf("session %d: read back %d bytes (%v), want %d", i, len(got), err, len(val))
			}
			// COPY through pgx (binary format), rows over 32 KB.
			rowsIn := [][]any{}
			for k := range 5 {
				rowsIn = append(rowsIn, []any{fmt.Sprintf("CP17_%d_%d_", i, k) + strings.Repeat("\\\t\"", 12000+k*7)})
			}
			if _, err := c.CopyFrom(ctx, pgx.Identifier{"legacy_notes"}, []string{"body"}, pgx.CopyFromRows(rowsIn)); err != nil {
				errs <- fmt.Errorf("session %d copy: %v", i, err)
				return
			}
			rows, err := c.Query(ctx, "SELECT body FROM legacy_notes WHERE id > $1 ORDER BY id", id)
			if err != nil {
				errs <- err
				return
			}
			all, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				errs <- fmt.Errorf("session %d read: %v", i, err)
				return
			}
			var mine []string
			for _, v := range all {
				if strings.HasPrefix(v, fmt.Sprintf("CP17_%d_", i)) {
					mine = append(mine, v)
				}
			}
			if len(mine) != len(rowsIn) {
				errs <- fmt.Errorf("WRONG: session %d reads %d of its %d COPY rows", i, len(mine), len(rowsIn))
				return
			}
			for k, r := range rowsIn {
				if mine[k] != r[0].(string) {
					errs <- fmt.Errorf("WRONG: session %d COPY row %d reads %d bytes, want %d", i, k, len(mine[k]), len(r[0].(string)))
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var plain int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM legacy_notes WHERE body LIKE 'BIG17%' OR body LIKE 'CP17%'").Scan(&plain); err != nil || plain != 0 {
		t.Errorf("LEAK: %d plaintext rows (%v)", plain, err)
	}
	var total int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM legacy_notes").Scan(&total); err != nil || total != sessions*6 {
		t.Errorf("WRONG: %d rows stored, want %d", total, sessions*6)
	}
}

// chunks17 splits s into CopyData messages at the given cut offsets.
func chunks17(s string, cuts ...int) []pgproto3.FrontendMessage {
	var out []pgproto3.FrontendMessage
	prev := 0
	for _, c := range cuts {
		out = append(out, &pgproto3.CopyData{Data: []byte(s[prev:c])})
		prev = c
	}
	out = append(out, &pgproto3.CopyData{Data: []byte(s[prev:])}, &pgproto3.CopyDone{})
	return out
}

// bodyIs17 checks through the proxy that legacy_notes row id reads as a
// value with prefix pre (the filler), holding the case's marker, ending
// with suf.
func bodyIs17(id int, pre, suf string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var got string
		err := f.connect(t, pgx.QueryExecModeExec).QueryRow(testCtx(t), "SELECT body FROM legacy_notes WHERE id = $1", id).Scan(&got)
		if err != nil {
			t.Errorf("WRONG: reading row %d: %v", id, err)
			return
		}
		if !strings.HasPrefix(got, pre) || !strings.HasSuffix(got, suf) || !strings.Contains(got, "SECRET_17") {
			t.Errorf("WRONG: row %d reads %d bytes %.30q…%q, want %d-byte filler, the marker, then %q", id, len(got), got, got[max(0, len(got)-20):], len(pre), suf)
		}
	}
}

var fill17 = strings.Repeat("x", 40000)

// binRow17 is binary COPY data: header, one row (id int4, body text), trailer.
func binRow17(id int32, body string) string {
	b := []byte("PGCOPY\n\xff\r\n\x00")
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint32(b, 4)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	return string(b)
}

// binIs17 checks row 3 of binary COPY: stored as an envelope, read whole.
func binIs17(t *testing.T, f *encFixture) {
	var stored, got string
	if err := f.direct.QueryRow(testCtx(t), "SELECT body FROM legacy_notes WHERE id = 3").Scan(&stored); err != nil || !cipher.LooksLikeEnvelope([]byte(stored)) {
		t.Errorf("LEAK/WRONG: stored %.30q (%v)", stored, err)
	}
	if err := f.connect(t, pgx.QueryExecModeExec).QueryRow(testCtx(t), "SELECT body FROM legacy_notes WHERE id = 3").Scan(&got); err != nil || got != fill17+"BIN17 tail" {
		t.Errorf("WRONG: read back %d bytes (%v)", len(got), err)
	}
}

func attackCases17() []attackCase {
	textRow := "1\t" + fill17 + "SECRET\\tmore\\\\end\n"
	nl := strings.Index(textRow, "\\t")
	csvRow := "2,\"" + fill17 + "SECRET\"\"q\"\"\",3\n"
	q := strings.Index(csvRow, "\"\"q")
	bin := binRow17(3, fill17+"BIN17 tail")
	return []attackCase{
		// COPY text: a \t escape whose backslash ends one CopyData message.
		{name: "copy17/text_escape_split", check: bodyIs17(1, fill17, "\tmore\\end"), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", chunks17(textRow, nl+1)),
		}},
		// The same, split into 7-byte pieces throughout (thousands of messages).
		{name: "copy17/text_many_small_pieces", check: bodyIs17(1, fill17, "\tmore\\end"), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", chunks17(textRow, func() []int {
				var c []int
				at := strings.Index(textRow, "SECRET")
				for i := 7; i < len(textRow); i += 7 {
					if i > at && i < at+6 {
						continue
					}
					c = append(c, i)
				}
				return c
			}()...)),
		}},
		// COPY text: a row ending (\n) alone in its own message, the next row in two.
		{name: "copy17/text_newline_alone", check: bodyIs17(5, "y", "z"), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", chunks17("4\t"+fill17+"SECRET\n5\ty"+fill17+"SECRETz\n", len("4\t"+fill17+"SECRET"), len("4\t"+fill17+"SECRET\n")+3)),
		}},
		// COPY csv: a doubled quote split between messages.
		{name: "copy17/csv_doubled_quote_split_ok", check: bodyIs17(2, fill17, "\"q\""), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)", chunks17(strings.TrimSuffix(csvRow, ",3\n")+"\n", q+1)),
		}},
		// COPY csv: a quoted newline inside the field, at a message boundary.
		{name: "copy17/csv_quoted_newline_split", check: bodyIs17(6, fill17, "\nafter"), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)", chunks17("6,\""+fill17+"SECRET\nafter\"\n", len("6,\""+fill17+"SECRET"))),
		}},
		// COPY binary: the body's length word split 2/2 between messages,
		// and the header split too.
		{name: "copy17/binary_length_split", check: binIs17, flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)", chunks17(bin, 5, 19+2+4+4+2)),
		}},
		// Bind with a 1 MB parameter, read back through the proxy.
		{name: "big17/bind_1mb", check: bodyIs17(7, fill17, "end"), flights: []flight{
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (7, $1)", fill17+"SECRET"+strings.Repeat("m", 1<<20)+"end"), syncMsg()),
			fl("SELECT body FROM legacy_notes"),
		}},
		// A 1 MB deterministic search parameter during a 4-version keyring.
		{name: "big17/search_1mb", flights: []flight{
			fl(ext("SELECT count(*) FROM clients WHERE email = $1", "SECRET"+strings.Repeat("s", 1<<20)), syncMsg()),
			fl(ext("SELECT count(*) FROM clients WHERE email IN ($1, $2)", "SECRET"+strings.Repeat("s", 1<<19), "SECRET"), syncMsg()),
		}},
		// Pipeline: a big COPY followed by queries in the same flight.
		{name: "copy17/pipelined_after_copy", check: bodyIs17(8, fill17, "!"), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", chunks17("8\t"+fill17+"SECRET!\n", 32768-5, 32768), "SELECT body FROM legacy_notes", "INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
	}
}

func TestAttackSuite17(t *testing.T) { runAttacks(t, 17000, attackCases17()) }
