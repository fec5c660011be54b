package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestSchemaHazards: schema facts that would make writes to a policy
// column wrong without an error from PostgreSQL (or fail with a message
// that does not say why) refuse those writes with an error that names the
// column and the fix; reads keep working. The DDL runs directly, as a
// migration would.
func TestSchemaHazards(t *testing.T) {
	for _, tc := range []struct {
		name, ddl, code, says string
	}{
		{"varchar too short", "ALTER TABLE legacy_notes ALTER body TYPE varchar(30)", "22001", "holds at most 30 characters"},
		{"char too short", "ALTER TABLE legacy_notes ALTER body TYPE char(40)", "22001", "holds at most 40 characters"},
		{"domain with check", "CREATE DOMAIN nonempty AS text CHECK (VALUE <> ''); ALTER TABLE legacy_notes ALTER body TYPE nonempty", "0A000", "domain with a CHECK"},
		{"unique on randomized", "CREATE UNIQUE INDEX ON legacy_notes (body)", "0A000", "unique index"},
		{"unique pair on randomized", "CREATE UNIQUE INDEX ON legacy_notes (id, body)", "0A000", "unique index"},
		{"expression index", "CREATE INDEX ON legacy_notes (lower(body))", "0A000", "expression index"},
		{"generated from it", "ALTER TABLE legacy_notes ADD g text GENERATED ALWAYS AS (upper(body)) STORED", "0A000", "generated column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEncFixtureWith(t, seedColumns(), false, "; "+tc.ddl, "")
			ctx := testCtx(t)
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
				conn := f.connect(t, mode)
				_, err := conn.Exec(ctx, "INSERT INTO legacy_notes (body) VALUES ($1)", "a value of some length")
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != tc.code || !strings.Contains(pe.Message, "public.legacy_notes.body") || !strings.Contains(pe.Message, tc.says) {
					t.Fatalf("mode %v: insert: %v; want %s naming the column and saying %q", mode, err, tc.code, tc.says)
				}
				if strings.Contains(pe.Message, "a value of some length") {
					t.Errorf("the error carries the value: %s", pe.Message)
				}
				var n int
				if err := conn.QueryRow(ctx, "SELECT count(body) FROM legacy_notes").Scan(&n); err != nil {
					t.Fatalf("mode %v: reads must keep working: %v", mode, err)
				}
			}
		})
	}
	// Long enough: writes go through.
	f := newEncFixtureWith(t, seedColumns(), false, "; ALTER TABLE legacy_notes ALTER body TYPE varchar(200)", "")
	conn := f.connect(t, pgx.QueryExecModeExec)
	if _, err := conn.Exec(testCtx(t), "INSERT INTO legacy_notes (body) VALUES ($1)", "short"); err != nil {
		t.Fatalf("varchar(200): %v", err)
	}
}
