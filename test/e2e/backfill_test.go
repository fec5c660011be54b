package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// seedPlainNotes stores n plaintext notes directly, as an application did
// before the proxy: body "orig-<id>".
func seedPlainNotes(t *testing.T, f *encFixture, n int) {
	t.Helper()
	if _, err := f.direct.Exec(context.Background(), "INSERT INTO legacy_notes (body) SELECT NULL FROM generate_series(1, $1)", n); err != nil {
		t.Fatal(err)
	}
	if _, err := f.direct.Exec(context.Background(), "UPDATE legacy_notes SET body = 'orig-' || id WHERE body IS NULL"); err != nil {
		t.Fatal(err)
	}
}

// notesByForm counts legacy_notes bodies: envelopes (by key id) and not.
func notesByForm(t *testing.T, f *encFixture) (envelopes map[string]int, plain int) {
	t.Helper()
	rows, err := f.direct.Query(context.Background(), "SELECT body FROM legacy_notes WHERE body IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	envelopes = map[string]int{}
	for _, v := range vals {
		if cipher.LooksLikeEnvelope([]byte(v)) {
			envelopes[strings.SplitN(v, ":", 2)[0]]++
		} else {
			plain++
		}
	}
	return envelopes, plain
}

// TestBackfillOnline: backfill encrypts the plaintext already stored while
// an application writes through the proxy; no write is lost, nothing stays
// plaintext, a second run changes nothing. Then rotate moves every value
// to the new active key and decrypt turns them back, with the same checks.
func TestBackfillOnline(t *testing.T) {
	f := newEncFixture(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg, env := guardConfig(t)
	dsn := pg.SuperConnString(f.db)
	const n = 100000
	seedPlainNotes(t, f, n)
	if code, _, errOut := runCLI(t, env, "guard", "--config", cfg, "--dsn", dsn); code != 0 {
		t.Fatalf("guard: %s", errOut)
	}

	// The application: updates and inserts through the proxy meanwhile.
	last := map[int]string{}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn := f.connect(t, pgx.QueryExecModeExec)
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := 1 + r.IntN(n)
			v := fmt.Sprintf("upd-%d-%d", id, i)
			if _, err := conn.Exec(context.Background(), "UPDATE legacy_notes SET body = $1 WHERE id = $2", v, id); err != nil {
				t.Errorf("update through the proxy: %v", err)
				return
			}
			var nid int
			if err := conn.QueryRow(context.Background(), "INSERT INTO legacy_notes (body) VALUES ($1) RETURNING id", "new").Scan(&nid); err != nil {
				t.Errorf("insert through the proxy: %v", err)
				return
			}
			mu.Lock()
			last[id] = v
			last[nid] = "new"
			mu.Unlock()
		}
	}()
	code, out, errOut := runCLI(t, env, "backfill", "--config", cfg, "--dsn", dsn, "--workers", "2", "--batch", "250")
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("backfill:\n%s", out)
	if env, plain := notesByForm(t, f); plain != 0 || env["v1"] < n {
		t.Fatalf("after backfill: %d plaintext, envelopes %v", plain, env)
	}
	// Every value reads back through the proxy as the application last
	// wrote it.
	conn := f.connect(t, pgx.QueryExecModeExec)
	rows, _ := conn.Query(ctx, "SELECT id, body FROM legacy_notes")
	got := map[int]string{}
	for rows.Next() {
		var id int
		var body string
		if err := rows.Scan(&id, &body); err != nil {
			t.Fatal(err)
		}
		got[id] = body
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	t.Logf("%d rows written through the proxy during the backfill", len(last))
	for id := 1; id <= n; id++ {
		want := fmt.Sprintf("orig-%d", id)
		if v, ok := last[id]; ok {
			want = v
		}
		if got[id] != want {
			t.Fatalf("row %d reads %q, want %q: a write was lost", id, got[id], want)
		}
	}
	mu.Unlock()
	var validated bool
	if err := f.direct.QueryRow(ctx, "SELECT convalidated FROM pg_constraint WHERE conname = 'pgcrypt_guard_body'").Scan(&validated); err != nil || !validated {
		t.Fatalf("the guard was not validated after the backfill (%v)", err)
	}
	if code, out, _ := runCLI(t, env, "backfill", "--config", cfg, "--dsn", dsn); code != 0 || !strings.Contains(out, `"changed":0`) || strings.Contains(out, `"changed":1`) {
		t.Fatalf("a second backfill changed something: %d\n%s", code, out)
	}

	// Rotate to v2, then back to plaintext.
	cfg2, env2 := guardConfigActive(t, "v2")
	if code, out, errOut := runCLI(t, env2, "rotate", "--config", cfg2, "--dsn", dsn, "--workers", "2"); code != 0 {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
	}
	if env, plain := notesByForm(t, f); plain != 0 || env["v1"] != 0 || env["v2"] < n {
		t.Fatalf("after rotate: %d plaintext, envelopes %v", plain, env)
	}
	if code, out, errOut := runCLI(t, env2, "decrypt", "--config", cfg2, "--dsn", dsn); code != 0 {
		t.Fatalf("decrypt: exit %d\n%s%s", code, out, errOut)
	}
	if env, plain := notesByForm(t, f); len(env) != 0 || plain < n {
		t.Fatalf("after decrypt: %d plaintext, envelopes %v", plain, env)
	}
	var body string
	if err := f.direct.QueryRow(ctx, "SELECT body FROM legacy_notes WHERE id = 7").Scan(&body); err != nil || (body != "orig-7" && !strings.HasPrefix(body, "upd-7-")) {
		t.Fatalf("decrypted row 7: %q %v", body, err)
	}
}

// TestBackfillKilledAndShards: a backfill killed with SIGKILL resumes
// from its recorded position; two shards run at once by two processes
// share the rows.
func TestBackfillKilledAndShards(t *testing.T) {
	f := newEncFixture(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg, env := guardConfig(t)
	dsn := pg.SuperConnString(f.db)
	const n = 10000
	seedPlainNotes(t, f, n)

	cmd := exec.Command(proxyBinary(t), "backfill", "--config", cfg, "--dsn", dsn, "--batch", "100", "--rate", "2000")
	cmd.Env = append(cmd.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "some progress", func() bool {
		var k int
		f.direct.QueryRow(ctx, "SELECT count(*) FROM pgcrypt_backfill_progress WHERE NOT done AND last_key IS NOT NULL").Scan(&k)
		return k > 0
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	envs, plain := notesByForm(t, f)
	t.Logf("killed with %d envelopes and %d plaintext", envs["v1"], plain)
	if plain == 0 || envs["v1"] == 0 {
		t.Fatalf("the kill did not land mid-run: %v envelopes, %d plaintext", envs, plain)
	}
	code, out, errOut := runCLI(t, env, "backfill", "--config", cfg, "--dsn", dsn, "--batch", "500")
	if code != 0 {
		t.Fatalf("resumed backfill: exit %d\n%s%s", code, out, errOut)
	}
	if envs2, plain := notesByForm(t, f); plain != 0 || envs2["v1"] != n {
		t.Fatalf("after resuming: %d plaintext, envelopes %v", plain, envs2)
	}
	if strings.Contains(out, fmt.Sprintf(`"scanned":%d`, n)) {
		t.Errorf("the resumed run scanned every row again:\n%s", out)
	}

	// Two shards in two processes at once, on new plaintext.
	seedPlainNotes(t, f, n)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, out, errOut := runCLI(t, env, "backfill", "--config", cfg, "--dsn", dsn, "--shard", fmt.Sprintf("%d/2", i), "--workers", "2"); code != 0 {
				t.Errorf("shard %d/2: exit %d\n%s%s", i, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	if envs, plain := notesByForm(t, f); plain != 0 || envs["v1"] != 2*n {
		t.Fatalf("after two shards: %d plaintext, envelopes %v", plain, envs)
	}
	if code, _, errOut := runCLI(t, env, "backfill", "--config", cfg, "--dsn", dsn, "--shard", "2/2"); code != 2 || !strings.Contains(errOut, "--shard") {
		t.Fatalf("--shard 2/2: exit %d %q", code, errOut)
	}
	if _, err := f.direct.Exec(ctx, "CREATE TABLE nokey (body text)"); err != nil {
		t.Fatal(err)
	}
}

// TestBackfillThrottle: a backfill pauses while sessions queue on locks,
// and goes on once they are through.
func TestBackfillThrottle(t *testing.T) {
	f := newEncFixture(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg, env := guardConfig(t)
	dsn := pg.SuperConnString(f.db)
	seedPlainNotes(t, f, 1000)
	holder := pg.SuperConn(t, f.db)
	if _, err := holder.Exec(ctx, "BEGIN; LOCK TABLE workspaces IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	waiter := pg.SuperConn(t, f.db)
	waited := make(chan error, 1)
	go func() { _, err := waiter.Exec(ctx, "SELECT count(*) FROM workspaces"); waited <- err }()
	waitFor(t, "a session waiting for a lock", func() bool {
		var n int
		f.direct.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").Scan(&n)
		return n > 0
	})
	var out strings.Builder
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(proxyBinary(t), "backfill", "--config", cfg, "--dsn", dsn, "--max-lock-waiters", "0", "--admin-listen", metricsAddr)
	cmd.Env = append(cmd.Environ(), env...)
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The pause shows on --admin-listen.
	waitFor(t, "the pause in the metrics", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `pgcrypt_backfill_pauses_total{job="backfill"} `) &&
			!strings.Contains(string(b), `pgcrypt_backfill_pauses_total{job="backfill"} 0`)
	})
	time.Sleep(time.Second)
	if _, plain := notesByForm(t, f); plain != 1000 {
		t.Fatalf("the backfill ran while a session waited for a lock: %d plaintext left", plain)
	}
	if _, err := holder.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"paused":"1 sessions waiting for locks, over 0"`) {
		t.Errorf("no pause reported:\n%s", out.String())
	}
	if envs, plain := notesByForm(t, f); plain != 0 || envs["v1"] != 1000 {
		t.Fatalf("after the pause: %d plaintext, envelopes %v", plain, envs)
	}
}
