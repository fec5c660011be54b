package e2e

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestCatalogShared: a session takes the catalog another session of its
// database read (with its own search_path) instead of reading the schema
// itself, unless a relation was created since; and what each session
// resolves still follows its own search_path.
func TestCatalogShared(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	taken := func() int { return strings.Count(f.p.logs.String(), `msg="catalog taken from another session"`) }
	read := func() int { return strings.Count(f.p.logs.String(), `msg="catalog read"`) }

	a := f.connect(t, pgx.QueryExecModeExec)
	if _, err := a.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'A', 'A', 'a@example.com' FROM workspaces"); err != nil {
		t.Fatal(err)
	}
	r0, t0 := read(), taken()
	b := f.connect(t, pgx.QueryExecModeExec)
	var email string
	if err := b.QueryRow(ctx, "SELECT email FROM clients WHERE email = 'a@example.com'").Scan(&email); err != nil || email != "a@example.com" {
		t.Fatalf("second session: %q, %v", email, err)
	}
	if read() != r0 || taken() != t0+1 {
		t.Fatalf("second session: %d reads and %d takes, want 0 and 1", read()-r0, taken()-t0)
	}

	// A relation created since (a view over the policy table): the next
	// session reads the schema itself, and refuses the view.
	if _, err := f.direct.Exec(ctx, "CREATE VIEW client_emails AS SELECT email FROM clients"); err != nil {
		t.Fatal(err)
	}
	r0 = read()
	c := f.connect(t, pgx.QueryExecModeExec)
	if _, err := c.Exec(ctx, "SELECT email FROM client_emails"); err == nil || !strings.Contains(err.Error(), "0A000") {
		t.Fatalf("a view over clients through a new session: %v, want 0A000", err)
	}
	if read() != r0+1 {
		t.Fatalf("after CREATE VIEW: %d reads, want 1", read()-r0)
	}

	// Another search_path, from the startup packet: the shared catalog
	// resolves clients in the session's own schemas.
	if _, err := f.direct.Exec(ctx, "CREATE SCHEMA other; CREATE TABLE other.clients (id serial, email text)"); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = "other, public"
	d, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	if _, err := d.Exec(ctx, "INSERT INTO clients (email) VALUES ('other@example.com')"); err != nil {
		t.Fatal(err)
	}
	e := f.connect(t, pgx.QueryExecModeExec)
	if _, err := e.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'E', 'E', 'e@example.com' FROM workspaces"); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := f.direct.QueryRow(ctx, "SELECT email FROM other.clients").Scan(&stored); err != nil || stored != "other@example.com" {
		t.Fatalf("other.clients holds %q (%v), want the plaintext: it is not a policy table", stored, err)
	}
	f.assertStoredEncrypted(t, "a@example.com", "e@example.com")
	if taken() < t0+2 {
		t.Errorf("the later sessions took no shared catalog (%d takes)", taken()-t0)
	}
}
