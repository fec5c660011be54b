package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// Review round 7: statements that reach a policy column under a name or
// scope the proxy did not follow. Each case checks, with a tap between the
// proxy and PostgreSQL, that the marked value never reaches the server.

var modeTag = map[pgx.QueryExecMode]string{pgx.QueryExecModeSimpleProtocol: "S", pgx.QueryExecModeExec: "X"}

// TestFailClosedMergeNotMatchedSource: in MERGE's WHEN NOT MATCHED,
// PostgreSQL hides the target, so an unqualified column is the source's.
// It was resolved as the target's policy column (a stored value copied),
// and the source's literal or parameter went upstream unencrypted.
func TestFailClosedMergeNotMatchedSource(t *testing.T) {
	f, w := newTapFixture(t, "; CREATE TABLE staging (id int, body text)")
	ctx := context.Background()
	cases := []struct {
		name, pre, sql, secret string
		args                   []any
	}{
		{name: "literal", secret: "SECRET-M1",
			sql: "MERGE INTO legacy_notes t USING (SELECT 'SECRET-M1'::text AS body) s ON false WHEN NOT MATCHED THEN INSERT (body) VALUES (body)"},
		{name: "parameter", secret: "SECRET-M2", args: []any{"SECRET-M2"},
			sql: "MERGE INTO legacy_notes t USING (SELECT $1::text AS body) s ON false WHEN NOT MATCHED THEN INSERT (body) VALUES (body)"},
		{name: "coalesce", secret: "SECRET-M3",
			sql: "MERGE INTO legacy_notes t USING (SELECT 7 AS k, 'SECRET-M3'::text AS body) s ON t.id = s.k WHEN NOT MATCHED THEN INSERT (id, body) VALUES (k, COALESCE(body, NULL))"},
		{name: "condition", secret: "SECRET-M4",
			sql: "MERGE INTO legacy_notes t USING (SELECT 8 AS k, 'SECRET-M4'::text AS body) s ON t.id = s.k WHEN NOT MATCHED AND body IS NOT NULL THEN INSERT (id, body) VALUES (k, body)"},
		// A plain source table: no value crosses the wire, but its
		// plaintext would be copied into the policy column.
		{name: "source table", pre: "INSERT INTO staging VALUES (9, 'SECRET-M5')",
			sql: "MERGE INTO legacy_notes t USING staging s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, body) VALUES (id, body)"},
	}
	for _, c := range cases {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			sub := func(s string) string { return strings.ReplaceAll(s, "SECRET-M", "SECRET-"+modeTag[mode]+"M") }
			t.Run(c.name+"/"+mode.String(), func(t *testing.T) {
				if _, err := f.direct.Exec(ctx, "DELETE FROM legacy_notes; DELETE FROM staging"); err != nil {
					t.Fatal(err)
				}
				if c.pre != "" {
					if _, err := f.direct.Exec(ctx, sub(c.pre)); err != nil {
						t.Fatal(err)
					}
				}
				conn := f.connect(t, mode)
				var args []any
				for _, a := range c.args {
					args = append(args, sub(a.(string)))
				}
				_, err := conn.Exec(ctx, sub(c.sql), args...)
				if c.pre != "" {
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
						t.Errorf("plaintext source column copied in: %v, want 0A000", err)
					}
				} else if err != nil {
					t.Errorf("%v", err)
				}
				secret := "\x00never\x00"
				if c.secret != "" {
					secret = sub(c.secret)
				}
				noLeak(t, f, w, secret)
			})
		}
	}
	// What was written reads back as written.
	conn := f.connect(t, pgx.QueryExecModeExec)
	if _, err := conn.Exec(ctx, "DELETE FROM legacy_notes"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "MERGE INTO legacy_notes t USING (SELECT 5 AS k, $1::text AS body) s ON t.id = s.k WHEN NOT MATCHED THEN INSERT (id, body) VALUES (k, body)", "merged"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRow(ctx, "SELECT body FROM legacy_notes WHERE id = 5").Scan(&got); err != nil || got != "merged" {
		t.Fatalf("read back %q, %v", got, err)
	}
}

// TestFailClosedPolicyTableUnderPlainParent: a policy table attached as a
// partition of, or inheriting from, a table that is not one. Statements on
// the parent write into and read from the policy table without naming it;
// they were relayed unanalysed. They are refused now, naming the parent.
func TestFailClosedPolicyTableUnderPlainParent(t *testing.T) {
	for _, c := range []struct{ name, ddl, write string }{
		{"inheritance", "; CREATE TABLE base_notes (id int, body text); ALTER TABLE legacy_notes INHERIT base_notes",
			"UPDATE base_notes SET body = $1 WHERE id = 1"},
		{"partition", "; ALTER TABLE legacy_notes DROP CONSTRAINT legacy_notes_pkey; CREATE TABLE base_notes (id int, body text) PARTITION BY RANGE (id); ALTER TABLE base_notes ATTACH PARTITION legacy_notes FOR VALUES FROM (0) TO (1000)",
			"INSERT INTO base_notes (id, body) VALUES (2, $1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, w := newTapFixture(t, c.ddl+"; CREATE VIEW base_v AS SELECT * FROM base_notes")
			ctx := context.Background()
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				conn := f.connect(t, mode)
				if _, err := f.direct.Exec(ctx, "DELETE FROM legacy_notes"); err != nil {
					t.Fatal(err)
				}
				// The policy table itself works.
				if _, err := conn.Exec(ctx, "INSERT INTO legacy_notes (id, body) VALUES (1, 'stored-encrypted')"); err != nil {
					t.Fatal(err)
				}
				var got string
				if err := conn.QueryRow(ctx, "SELECT body FROM legacy_notes WHERE id = 1").Scan(&got); err != nil || got != "stored-encrypted" {
					t.Fatalf("%s: read from the policy table: %q, %v", mode, got, err)
				}
				refused := func(what string, err error) {
					t.Helper()
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "public.base_") {
						t.Errorf("%s: %s: %v, want 0A000 naming the parent", mode, what, err)
					}
				}
				for _, q := range []string{"SELECT body FROM base_notes WHERE id = 1", "SELECT body FROM base_v WHERE id = 1"} {
					err := conn.QueryRow(ctx, q).Scan(&got)
					refused(q, err)
				}
				secret := "SECRET-P-" + modeTag[mode]
				_, err := conn.Exec(ctx, c.write, secret)
				refused(c.write, err)
				_, err = conn.CopyFrom(ctx, pgx.Identifier{"base_notes"}, []string{"id", "body"}, pgx.CopyFromRows([][]any{{3, secret + "-copy"}}))
				refused("COPY", err)
				noLeak(t, f, w, secret)
			}
		})
	}
}

// TestFailClosedPolicyParentOfPolicyPartition: when both a partitioned
// table and its partition are policy tables, the parent is not refused as
// the partition's ancestor (it encrypts for itself); the partition named
// directly is refused as before.
func TestFailClosedPolicyParentOfPolicyPartition(t *testing.T) {
	ctx := testCtx(t)
	f := newEncFixtureWith(t, append(seedColumns(), proxyColumn("public", "notes_part", "body"), proxyColumn("public", "notes_part_1", "body")), false,
		"; create table notes_part (id int, body text) partition by range (id); create table notes_part_1 partition of notes_part for values from (0) to (1000)", "")
	conn := f.connect(t, pgx.QueryExecModeExec)
	if _, err := conn.Exec(ctx, "insert into notes_part (id, body) values (1, $1)", "through the parent"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRow(ctx, "select body from notes_part where id = 1").Scan(&got); err != nil || got != "through the parent" {
		t.Fatalf("read through the parent: %q, %v", got, err)
	}
	_, err := conn.Exec(ctx, "select body from notes_part_1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "notes_part_1") {
		t.Fatalf("the partition named directly: %v, want 0A000", err)
	}
}

// TestFailClosedViewNameSpellings: views over a policy table were found by
// their name in the statement text, so U&"…" escapes and a doubled quote
// inside a quoted name got past the refusal: writes through the updatable
// view stored plaintext, reads returned envelopes.
func TestFailClosedViewNameSpellings(t *testing.T) {
	f, w := newTapFixture(t, `; CREATE VIEW notes_v AS SELECT id, body FROM legacy_notes; CREATE VIEW "notes""q" AS SELECT id, body FROM legacy_notes`)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			sub := func(s string) string { return strings.ReplaceAll(s, "SECRET-V", "SECRET-"+modeTag[mode]+"V") }
			conn := f.connect(t, mode)
			if _, err := f.direct.Exec(ctx, "DELETE FROM legacy_notes"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, `INSERT INTO legacy_notes (id, body) VALUES (1, 'stored-encrypted')`); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`SELECT body FROM notes_v WHERE id = 1`,
				`SELECT body FROM U&"notes\005fv" WHERE id = 1`,
				`SELECT body FROM "notes""q" WHERE id = 1`,
			} {
				var got string
				err := conn.QueryRow(ctx, q).Scan(&got)
				if err == nil && cipher.LooksLikeEnvelope([]byte(got)) {
					t.Errorf("%s: returned ciphertext %.40q with no error", q, got)
				}
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
					t.Errorf("%s: %v, want 0A000", q, err)
				}
			}
			for i, q := range []string{
				`INSERT INTO notes_v (id, body) VALUES (2, 'SECRET-V0')`,
				`INSERT INTO U&"notes\005fv" (id, body) VALUES (2, 'SECRET-V1')`,
				`INSERT INTO "notes""q" (id, body) VALUES (3, 'SECRET-V2')`,
				`UPDATE U&"notes\005fv" SET body = $1 WHERE id = 1`,
			} {
				var err error
				if i == 3 {
					_, err = conn.Exec(ctx, q, sub("SECRET-V3"))
				} else {
					_, err = conn.Exec(ctx, sub(q))
				}
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
					t.Errorf("%s: %v, want 0A000", q, err)
				}
			}
			for _, s := range []string{"SECRET-V0", "SECRET-V1", "SECRET-V2", "SECRET-V3"} {
				noLeak(t, f, w, sub(s))
			}
		})
	}
}

// TestFailClosedPolicyNameSpellings: policy tables whose names have
// capitals outside ASCII (not folded by PostgreSQL or by the proxy's text
// scan) or a double quote (doubled in SQL) were not found in the statement
// text, so statements on them were relayed unanalysed.
func TestFailClosedPolicyNameSpellings(t *testing.T) {
	pg.Require(t)
	addr, w := startTap(t)
	specs := []proxy.ColumnSpec{proxyColumn("public", "Ärzte", "name"), proxyColumn("public", `Odd "Name"`, "note")}
	f := newEncFixtureWith(t, specs, false, `; CREATE TABLE "Ärzte" (id int, name text); CREATE TABLE "Odd ""Name""" (id int, note text)`, addr)
	ctx := testCtx(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		conn := f.connect(t, mode)
		for _, c := range []struct{ insert, read string }{
			{`INSERT INTO "Ärzte" (id, name) VALUES (1, 'SECRET-A-%s')`, `SELECT name FROM public."Ärzte" WHERE id = 1`},
			{`INSERT INTO "Odd ""Name""" (id, note) VALUES (1, 'SECRET-O-%s')`, `SELECT note FROM "Odd ""Name""" WHERE id = 1`},
		} {
			secret := strings.ReplaceAll(c.insert[strings.Index(c.insert, "'")+1:strings.LastIndex(c.insert, "'")], "%s", modeTag[mode])
			if _, err := conn.Exec(ctx, strings.ReplaceAll(c.insert, "%s", modeTag[mode])); err != nil {
				t.Fatalf("%s: %v", c.insert, err)
			}
			if w.has(secret) {
				t.Errorf("PLAINTEXT %q was sent to PostgreSQL", secret)
			}
			var got string
			if err := conn.QueryRow(ctx, c.read).Scan(&got); err != nil || got != secret {
				t.Errorf("%s: %q, %v", c.read, got, err)
			}
		}
		for _, q := range []string{`SELECT name FROM "Ärzte"`, `SELECT note FROM "Odd ""Name"""`} {
			rows, err := f.direct.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if !cipher.LooksLikeEnvelope([]byte(v)) {
					t.Errorf("%s: PLAINTEXT stored: %q", q, v)
				}
			}
		}
		if _, err := f.direct.Exec(ctx, `DELETE FROM "Ärzte"; DELETE FROM "Odd ""Name"""`); err != nil {
			t.Fatal(err)
		}
	}
}
