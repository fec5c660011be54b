package e2e

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// rotationKeys returns the keys section for the given versions (of
// cipher/testdata/vectors.json) and the environment that carries them.
func rotationKeys(t *testing.T, active string, versions ...string) (string, []string) {
	t.Helper()
	keys := seedVectorKeys(t)
	var env, entries []string
	for _, id := range versions {
		name := "PGCRYPT_TEST_ROT_" + strings.ToUpper(id)
		env = append(env, name+"="+keys[id].Base64())
		entries = append(entries, fmt.Sprintf("%s: { env: %s }", id, name))
	}
	return "keys: { active: " + active + ", versions: { " + strings.Join(entries, ", ") + " } }", env
}

// TestRotateWithLookups: a deterministic column is rotated from v1 to v2
// while the application looks rows up by it through a session opened
// before the rotation began. Every lookup form the proxy expands finds
// rows under both versions throughout; a form it cannot expand is refused
// (never a silent miss) until the old version is removed from the config.
func TestRotateWithLookups(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	const policy = `encrypt:
  - table: clients
    columns:
      - { name: email, search: equality }
      - { name: first_name }
`
	keys1, env1 := rotationKeys(t, "v1", "v1")
	keys12, env12 := rotationKeys(t, "v2", "v1", "v2")
	keys2, _ := rotationKeys(t, "v2", "v2")
	env := append(append([]string(nil), env12...), env1...)
	p := startBinaryKeys(t, pg.Addr(), keys1, env, policy)
	head, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.SplitN(string(head), "keys:", 2)[0]
	reconfigure := func(keys string) {
		t.Helper()
		// The file watcher reloads too, 200 ms after a change: let an
		// earlier one settle, then wait for a reload after this write.
		time.Sleep(300 * time.Millisecond)
		before, _ := strconv.Atoi(p.reloads(t, "ok"))
		if err := os.WriteFile(p.config, []byte(prefix+keys+"\n"+policy), 0o600); err != nil {
			t.Fatal(err)
		}
		p.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, "a reload", func() bool { n, _ := strconv.Atoi(p.reloads(t, "ok")); return n > before })
	}
	connect := func(mode pgx.QueryExecMode) *pgx.Conn { return p.connect(t, f.db, mode) }
	insert := func(c *pgx.Conn, email string) {
		t.Helper()
		if _, err := c.Exec(ctx, "insert into clients (workspace_id, first_name, last_name, email) values ((select id from workspaces limit 1), 'F', 'L', $1)", email); err != nil {
			t.Fatal(err)
		}
	}
	keyOf := func(email string) string {
		t.Helper()
		var kid string
		// The proxy knows the row by its plaintext; the direct
		// connection sees the key id of what is stored.
		var id string
		c := connect(pgx.QueryExecModeExec)
		if err := c.QueryRow(ctx, "select id::text from clients where email = $1", email).Scan(&id); err != nil {
			t.Fatalf("lookup of %s: %v", email, err)
		}
		if err := f.direct.QueryRow(ctx, "select split_part(email, ':', 1) from clients where id = $1::uuid", id).Scan(&kid); err != nil {
			t.Fatal(err)
		}
		return kid
	}

	pooled := connect(pgx.QueryExecModeCacheStatement) // open for the whole rotation
	simple := connect(pgx.QueryExecModeSimpleProtocol)
	const n = 300
	for i := range n {
		insert(pooled, fmt.Sprintf("old-%d@example.com", i))
	}
	if k := keyOf("old-1@example.com"); k != "v1" {
		t.Fatalf("stored under %q before the rotation", k)
	}

	// Add v2 and make it active: open sessions switch keys too. The
	// guard accepts both versions.
	reconfigure(keys12)
	dsn := pg.SuperConnString(f.db)
	if code, out, errOut := runCLI(t, env12, "guard", "--config", p.config, "--dsn", dsn); code != 0 {
		t.Fatalf("guard: exit %d\n%s%s", code, out, errOut)
	}
	insert(pooled, "new@example.com")
	if k := keyOf("new@example.com"); k != "v2" {
		t.Fatalf("a session opened before the reload wrote under %q, want v2", k)
	}
	// lookups checks every expanded form on both sessions: rows under
	// v1 and v2 are found alike.
	lookups := func(old string) error {
		for _, c := range []*pgx.Conn{pooled, simple} {
			for _, q := range []struct {
				sql  string
				args []any
				want int
			}{
				{"select count(*) from clients where email = $1", []any{old}, 1},
				{"select count(*) from clients where email = $1", []any{"new@example.com"}, 1},
				{"select count(*) from clients where email <> $1 and email in ($1, $2)", []any{old, "new@example.com"}, 1},
				{"select count(*) from clients where email in ($1, $2)", []any{old, "new@example.com"}, 2},
				{"select count(*) from clients where email not in ($1, $2)", []any{old, "new@example.com"}, n - 1},
				{"select count(*) from clients where email = 'new@example.com' or email in ('" + old + "')", nil, 2},
				{"select count(*) from clients where email = any(array['new@example.com', '" + old + "'])", nil, 2},
			} {
				var got int
				if err := c.QueryRow(ctx, q.sql, q.args...).Scan(&got); err != nil {
					return fmt.Errorf("%s %v: %w", q.sql, q.args, err)
				}
				if got != q.want {
					return fmt.Errorf("%s %v found %d rows, want %d", q.sql, q.args, got, q.want)
				}
			}
		}
		// An array parameter (the simple protocol would inline it as an
		// array literal, which the proxy refuses).
		var got int
		arr := []string{old, "new@example.com", "nobody"}
		if err := pooled.QueryRow(ctx, "select count(*) from clients where email = any($1)", arr).Scan(&got); err != nil || got != 2 {
			return fmt.Errorf("= any($1) found %d rows, want 2 (%v)", got, err)
		}
		if err := pooled.QueryRow(ctx, "select count(*) from clients where email <> all($1)", arr).Scan(&got); err != nil || got != n-1 {
			return fmt.Errorf("<> all($1) found %d rows, want %d (%v)", got, n-1, err)
		}
		return nil
	}
	if err := lookups("old-7@example.com"); err != nil {
		t.Fatal(err)
	}
	// A form that can take one envelope only is refused, and the session
	// goes on.
	var pe *pgconn.PgError
	var cnt int
	err = pooled.QueryRow(ctx, "select count(*) from clients where email = $1::text", "old-7@example.com").Scan(&cnt)
	if !errors.As(err, &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "key versions") {
		t.Fatalf("a cast parameter during a rotation: %v, want a 0A000 refusal", err)
	}
	if err := lookups("old-8@example.com"); err != nil {
		t.Fatalf("after a refusal: %v", err)
	}

	// Rotate while the application keeps looking rows up.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rounds atomic.Int64
	var lookupErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := lookups(fmt.Sprintf("old-%d@example.com", i%n)); err != nil {
				lookupErr = err
				return
			}
			rounds.Add(1)
		}
	}()
	code, out, errOut := runCLI(t, env12, "rotate", "--config", p.config, "--dsn", dsn, "--batch", "20")
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
	}
	if lookupErr != nil {
		t.Fatalf("during the rotation: %v", lookupErr)
	}
	t.Logf("%d rounds of lookups during the rotation", rounds.Load())
	var left int
	if err := f.direct.QueryRow(ctx, "select count(*) from clients where email not like 'v2:%'").Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d values not under v2 after rotate (%v)", left, err)
	}

	// rotate narrowed the guard to v2 and validated it: the proxies
	// know no value is under v1 any more, and compare with v2 alone
	// while the config still lists v1; a new session at once, an open
	// one when it next reads the catalog.
	if !strings.Contains(errOut, "public.clients.email: guard accepts only v2 now (validated)") {
		t.Fatalf("rotate did not narrow the guard:\n%s", errOut)
	}
	if err := connect(pgx.QueryExecModeCacheStatement).QueryRow(ctx, "select count(*) from clients where email = $1::text", "old-7@example.com").Scan(&cnt); err != nil || cnt != 1 {
		t.Fatalf("a cast parameter after the rotation (guard narrowed to v2): %d, %v", cnt, err)
	}
	waitFor(t, "the open session to see the narrowed guard", func() bool {
		return pooled.QueryRow(ctx, "select count(*) from clients where email = $1::text", "old-7@example.com").Scan(&cnt) == nil && cnt == 1
	})
	if _, err := f.direct.Exec(ctx, "update clients set email = $1 where email = (select min(email) from clients)", "v1:siv:AAAAAAAAAAAAAAAAAAAAAA=="); err == nil {
		t.Fatal("the narrowed guard accepted a value under v1")
	}

	// Retire v1: one version again, so the cast form is fine, and every
	// row still reads.
	reconfigure(keys2)
	if err := pooled.QueryRow(ctx, "select count(*) from clients where email = $1::text", "old-7@example.com").Scan(&cnt); err != nil || cnt != 1 {
		t.Fatalf("after retiring v1: %d, %v", cnt, err)
	}
	if err := lookups("old-9@example.com"); err != nil {
		t.Fatalf("after retiring v1: %v", err)
	}
	rows, _ := pooled.Query(ctx, "select email from clients")
	emails, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(emails) != n+1 {
		t.Fatalf("reading every row after retiring v1: %d rows, %v", len(emails), err)
	}
}
