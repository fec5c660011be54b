package e2e

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMigrationTimings measures the migration walk-through of
// docs/migration.md on PGCRYPT_MIGRATION_ROWS rows (skipped without it):
//
//	PGCRYPT_MIGRATION_ROWS=1000000 go test -run TestMigrationTimings -v -timeout 60m ./test/e2e/
//
// It times each command and, during the backfill, the slowest single-row
// UPDATE an application makes through the proxy (the locks it meets).
func TestMigrationTimings(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PGCRYPT_MIGRATION_ROWS"))
	if n <= 0 {
		t.Skip("set PGCRYPT_MIGRATION_ROWS to measure")
	}
	f := newEncFixture(t, false)
	ctx := context.Background()
	cfg, env := guardConfig(t)
	dsn := pg.SuperConnString(f.db)
	start := time.Now()
	if _, err := f.direct.Exec(ctx, "INSERT INTO legacy_notes (body) SELECT 'patient note number ' || g || ', forty-odd characters' FROM generate_series(1, $1) g", n); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d plaintext rows in %v", n, time.Since(start).Round(time.Millisecond))
	step := func(name string, args ...string) {
		start := time.Now()
		code, out, errOut := runCLI(t, env, args...)
		d := time.Since(start)
		if code != 0 && name != "check (plaintext left)" {
			t.Fatalf("%s: exit %d\n%s%s", name, code, out, errOut)
		}
		t.Logf("%-28s %8v  %.0f rows/s", name, d.Round(time.Millisecond), float64(n)/d.Seconds())
	}
	step("check (plaintext left)", "check", "--config", cfg, "--dsn", dsn)
	step("guard (NOT VALID)", "guard", "--config", cfg, "--dsn", dsn)

	stop := make(chan struct{})
	var slowest time.Duration
	var updates int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn := f.connect(t, pgx.QueryExecModeExec)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s := time.Now()
			if _, err := conn.Exec(ctx, "UPDATE legacy_notes SET body = $1 WHERE id = $2", "updated meanwhile", 1+(i*7919)%n); err != nil {
				t.Errorf("update: %v", err)
				return
			}
			slowest = max(slowest, time.Since(s))
			updates++
			time.Sleep(5 * time.Millisecond)
		}
	}()
	step("backfill --workers 2", "backfill", "--config", cfg, "--dsn", dsn, "--workers", "2", "--batch", "1000")
	close(stop)
	wg.Wait()
	t.Logf("during the backfill: %d updates through the proxy, the slowest took %v", updates, slowest.Round(time.Millisecond))
	step("check (all envelopes)", "check", "--config", cfg, "--dsn", dsn)
	cfg2, env2 := guardConfigActive(t, "v2")
	env = env2
	step("guard (again, active v2)", "guard", "--config", cfg2, "--dsn", dsn)
	step("rotate --workers 2", "rotate", "--config", cfg2, "--dsn", dsn, "--workers", "2", "--batch", "1000")
}
