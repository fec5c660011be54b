package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/audit"
)

// TestAuditLog: every statement that touches a policy column, and every
// refusal, is one JSON line naming who, which columns, how many rows and
// how it ended, in both protocols; statements that touch none are not
// logged; no value and no statement text ever appears in the file; SIGHUP
// reopens the file after logrotate moved it.
func TestAuditLog(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	p := startBinary(t, pg.Addr(), `encrypt:
  - table: clients
    columns:
      - { name: email, search: equality }
      - { name: first_name }
audit: { file: `+path+` }
`)
	ext := p.connect(t, f.db, pgx.QueryExecModeCacheStatement, "application_name=billing")
	simple := p.connect(t, f.db, pgx.QueryExecModeSimpleProtocol, "application_name=reports")
	const secret = "SECRET-VALUE-71"
	mustExec := func(c *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec(ext, "insert into clients (workspace_id, first_name, last_name, email) values ((select id from workspaces limit 1), $1, 'L', $2)", secret, secret+"@example.com")
	mustExec(simple, "insert into clients (workspace_id, first_name, last_name, email) values ((select id from workspaces limit 1), '"+secret+"', 'L', 'b-"+secret+"')")
	var n int
	if err := ext.QueryRow(ctx, "select count(*) from clients").Scan(&n); err != nil || n != 2 { // no policy column: not logged
		t.Fatal(n, err)
	}
	rows, _ := ext.Query(ctx, "select first_name, email from clients where email = $1", secret+"@example.com")
	if _, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		A, B string
	}]); err != nil {
		t.Fatal(err)
	}
	mustExec(simple, "set application_name = 'reports-2'")
	rows, _ = simple.Query(ctx, "select first_name from clients")
	if got, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(got) != 2 {
		t.Fatal(got, err)
	}
	if _, err := ext.Exec(ctx, "select id from clients where first_name = $1", secret); err == nil {
		t.Fatal("equality on a randomized column was not refused")
	}
	// An error from PostgreSQL: no workspace with that id.
	if _, err := ext.Exec(ctx, "insert into clients (workspace_id, first_name, last_name) values ('00000000-0000-0000-0000-000000000000', $1, 'L')", secret); err == nil {
		t.Fatal("the foreign key did not fail")
	}
	if _, err := simple.PgConn().CopyTo(ctx, discardWriter{}, "COPY clients (email) TO STDOUT"); err != nil {
		t.Fatal(err)
	}

	read := func(path string) []audit.Event {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) || strings.Contains(strings.ToLower(string(b)), "insert into") {
			t.Fatalf("the audit log holds a value or statement text:\n%s", b)
		}
		var out []audit.Event
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			var e audit.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("not a JSON line: %q", sc.Text())
			}
			out = append(out, e)
		}
		return out
	}
	var events []audit.Event
	waitFor(t, "7 audit events", func() bool { events = read(path); return len(events) >= 7 })
	describe := func(e audit.Event) string {
		return fmt.Sprintf("%s %s app=%s read=%v searched=%v written=%v rows=%d %s%s%s keys=%v",
			e.Statement, e.Database, e.Application, e.Read, e.Searched, e.Written, e.Rows, e.Outcome, e.Reason, e.SQLState, e.KeyVersions)
	}
	var got []string
	for _, e := range events {
		if e.User != pg.Super.Name || e.Database != f.db || e.Session == 0 || e.Client == "" || e.Time.IsZero() {
			t.Errorf("event without who or when: %+v", e)
		}
		if e.Fingerprint == "" && e.Outcome != "refused" {
			t.Errorf("event without a fingerprint: %+v", e)
		}
		got = append(got, describe(e))
	}
	db := f.db
	want := []string{
		"insert " + db + " app=billing read=[] searched=[] written=[public.clients.first_name public.clients.email] rows=1 ok keys=[v1]",
		"insert " + db + " app=reports read=[] searched=[] written=[public.clients.first_name public.clients.email] rows=1 ok keys=[v1]",
		"select " + db + " app=billing read=[public.clients.first_name public.clients.email] searched=[public.clients.email] written=[] rows=1 ok keys=[v1]",
		"select " + db + " app=reports-2 read=[public.clients.first_name] searched=[] written=[] rows=2 ok keys=[]",
		"select " + db + " app=billing read=[] searched=[public.clients.first_name] written=[] rows=0 refusedrandomized_equality keys=[]",
		"insert " + db + " app=billing read=[] searched=[] written=[public.clients.first_name] rows=0 error23503 keys=[v1]",
		"copy " + db + " app=reports-2 read=[public.clients.email] searched=[] written=[] rows=2 ok keys=[]",
	}
	t.Logf("audit events:\n%s", strings.Join(got, "\n"))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The same query with other values has the same fingerprint.
	var fp string
	for _, e := range events {
		if e.Statement == "insert" && e.Outcome == "ok" && e.Application == "billing" {
			fp = e.Fingerprint
		}
	}
	mustExec(ext, "insert into clients (workspace_id, first_name, last_name, email) values ((select id from workspaces limit 1), $1, 'L', $2)", "other", "other@example.com")

	// logrotate: move the file, SIGHUP, and the next event is in a new
	// file.
	waitFor(t, "the 8th event", func() bool { return len(read(path)) == 8 })
	if e := read(path)[7]; e.Fingerprint != fp {
		t.Fatalf("one query, two fingerprints: %q and %q", fp, e.Fingerprint)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "a reload", func() bool { return p.reloads(t, "ok") != "0" })
	rows, _ = ext.Query(ctx, "select email from clients where email = $1", "other@example.com")
	if _, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an event in the reopened file", func() bool {
		_, err := os.Stat(path)
		return err == nil && len(read(path)) == 1
	})
	if n := len(read(path + ".1")); n != 8 {
		t.Fatalf("%d events in the rotated file, want 8", n)
	}
}

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
