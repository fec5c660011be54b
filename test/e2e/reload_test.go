package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// reloads returns pgcrypt_config_reloads_total{result} from /metrics.
func (p *proc) reloads(t *testing.T, result string) string {
	_, body := p.get(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, `pgcrypt_config_reloads_total{result="`+result+`"} `) {
			return strings.Fields(l)[1]
		}
	}
	return ""
}

// TestCLIReload: a changed config file is picked up without a restart:
// new sessions use the new policy, an open session keeps its own until it
// ends, and an invalid file (also on SIGHUP) keeps the last good one in
// force, counted and logged with its line.
func TestCLIReload(t *testing.T) {
	pg.Require(t)
	db := pg.NewDatabase(t)
	direct := pg.SuperConn(t, db)
	ctx := testCtx(t)
	if _, err := direct.Exec(ctx, "CREATE TABLE notes (id serial PRIMARY KEY, body text)"); err != nil {
		t.Fatal(err)
	}
	policy := func(tables ...string) string {
		var b strings.Builder
		b.WriteString("encrypt:\n")
		for _, tb := range tables {
			fmt.Fprintf(&b, "  - table: %s\n    columns: [ { name: body } ]\n", tb)
		}
		return b.String()
	}
	p := startBinary(t, pg.Addr(), policy("other_notes"))
	base, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	head := strings.SplitN(string(base), "encrypt:", 2)[0]
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%s user=%s dbname=%s sslmode=disable", strings.Split(p.listen, ":")[1], pg.Super.Name, db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	stored := func(id int) string {
		var v string
		if err := direct.QueryRow(ctx, "SELECT body FROM notes WHERE id = $1", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	insert := func(c *pgx.Conn, v string) int {
		var id int
		if err := c.QueryRow(ctx, "INSERT INTO notes (body) VALUES ($1) RETURNING id", v).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}

	old := connect()
	if v := stored(insert(old, "before")); v != "before" {
		t.Fatalf("notes is not in the policy yet, stored %q", v)
	}
	// Load: sessions open, query and close throughout both reloads. A
	// session open when the policy's columns change ends at its next
	// statement (57P01) and the client reconnects; nothing else may fail.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var queries atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%s user=%s dbname=%s sslmode=disable", strings.Split(p.listen, ":")[1], pg.Super.Name, db))
				if err != nil {
					t.Errorf("connect under reload: %v", err)
					return
				}
				for range 20 {
					var n int
					if err := c.QueryRow(ctx, "SELECT count(*) FROM notes WHERE body IS NOT NULL").Scan(&n); err != nil {
						var pgErr *pgconn.PgError
						if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
							t.Errorf("query under reload: %v", err)
						}
						break
					}
					queries.Add(1)
				}
				c.Close(ctx)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		t.Logf("%d queries through the reloads", queries.Load())
	}()
	// Rewrite the file (no signal): the watcher reloads it.
	if err := os.WriteFile(p.config, []byte(head+policy("other_notes", "notes")), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reload", func() bool { return p.reloads(t, "ok") == "1" })
	fresh := connect()
	if v := stored(insert(fresh, "after")); !cipher.LooksLikeEnvelope([]byte(v)) {
		t.Fatalf("a new session after the reload stored %q, want an envelope", v)
	}
	var got string
	if err := fresh.QueryRow(ctx, "SELECT body FROM notes WHERE body IS NOT NULL AND id = (SELECT max(id) FROM notes)").Scan(&got); err != nil || got != "after" {
		t.Fatalf("read back %q, %v", got, err)
	}
	// The session opened before the reload would write notes.body in
	// plaintext under its old policy: it ends instead.
	var pgErr *pgconn.PgError
	if _, err := old.Exec(ctx, "INSERT INTO notes (body) VALUES ($1)", "old session"); !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("a session opened before the policy changed: %v, want 57P01", err)
	}

	// An invalid file keeps the last good configuration.
	if err := os.WriteFile(p.config, []byte(head+policy("notes")+"frobnicate: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "a failed reload", func() bool { return p.reloads(t, "error") != "0" && p.reloads(t, "error") != "" })
	if code, _ := p.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz %d after a failed reload", code)
	}
	if !strings.Contains(p.stderr.String(), "frobnicate") || !strings.Contains(p.stderr.String(), "configuration not reloaded") {
		t.Fatalf("the failed reload was not logged with its problem:\n%s", p.stderr.String())
	}
	if v := stored(insert(connect(), "still encrypted")); !cipher.LooksLikeEnvelope([]byte(v)) {
		t.Fatalf("after a failed reload a new session stored %q", v)
	}
}

// TestReloadGivesPolicy: a session opened while the proxy had no policy is
// a pure relay; once a reload gives the proxy one, that session would send
// the new columns in plaintext. It ends at its next message instead.
func TestReloadGivesPolicy(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	ctx := testCtx(t)
	pol := f.p.Server.Policy()
	f.p.Server.SetPolicy(nil)
	old := f.connect(t, pgx.QueryExecModeExec)
	var one int
	if err := old.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	f.p.Server.SetPolicy(pol)
	var pgErr *pgconn.PgError
	if _, err := old.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ("+ws17+", 'F', 'L', $1)", "RELAY_SECRET@example.com"); !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("a session opened without a policy after one was loaded: %v, want 57P01", err)
	}
	var n int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM clients WHERE email LIKE 'RELAY_SECRET%'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d plaintext rows (%v)", n, err)
	}
	fresh := f.connect(t, pgx.QueryExecModeExec)
	if _, err := fresh.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ("+ws17+", 'F', 'L', $1)", "fresh@example.com"); err != nil {
		t.Fatal(err)
	}
}
