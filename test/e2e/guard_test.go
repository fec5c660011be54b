package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// guardConfig writes a config for the fixture's policy (seedColumns) with
// the fixture's keys, and returns its path and the environment it needs.
func guardConfig(t *testing.T) (string, []string) {
	t.Helper()
	return guardConfigActive(t, "v1")
}

// guardConfigActive is guardConfig with another active key version.
func guardConfigActive(t *testing.T, active string) (string, []string) {
	t.Helper()
	var env []string
	var versions []string
	for id, k := range seedVectorKeys(t) {
		name := "PGCRYPT_TEST_GUARD_" + strings.ToUpper(id)
		env = append(env, name+"="+k.Base64())
		versions = append(versions, fmt.Sprintf("%s: { env: %s }", id, name))
	}
	cfg := `listen: 127.0.0.1:6432
upstream: ` + pg.Addr() + `
keys:
  active: ` + active + `
  versions: { ` + strings.Join(versions, ", ") + ` }
encrypt:
  - table: clients
    columns:
      - name: first_name
      - name: last_name
      - name: email
        search: equality
      - name: phone
      - name: address
      - name: medical_history
      - name: emergency_contact_name
      - name: emergency_contact_phone
  - table: legacy_notes
    columns:
      - name: body
        associated_data: none
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, env
}

func wantCheckViolation(t *testing.T, what string, err error) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23514" || !strings.Contains(pe.ConstraintName, "pgcrypt_guard_") {
		t.Errorf("%s: %v; want a check violation of a guard constraint", what, err)
	}
}

// TestGuard: the guard constraints make PostgreSQL refuse plaintext in
// policy columns from every path the proxy cannot see, while writes
// through the proxy go on; existing plaintext keeps them NOT VALID until
// it is gone; a second run changes nothing; --remove takes them off.
func TestGuard(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	cfg, env := guardConfig(t)
	dsn := pg.SuperConnString(f.db)
	if _, err := f.direct.Exec(ctx, "INSERT INTO legacy_notes (body) VALUES ('written before the proxy')"); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI(t, env, "guard", "--config", cfg, "--dsn", dsn)
	if code != 0 {
		t.Fatalf("guard: exit %d: %s %s", code, out, errOut)
	}
	t.Logf("guard:\n%s", out)
	if !strings.Contains(out, "public.clients.first_name: installed, validated") ||
		!strings.Contains(out, "public.legacy_notes.body: installed, NOT VALID: 1 rows") {
		t.Fatalf("guard output:\n%s", out)
	}

	// Through the proxy: encrypted, accepted.
	conn := f.connect(t, pgx.QueryExecModeExec)
	if _, err := conn.Exec(ctx, "INSERT INTO legacy_notes (body) VALUES ($1)", "through the proxy"); err != nil {
		t.Fatalf("write through the proxy: %v", err)
	}
	ws := f.workspace(t)
	if _, err := conn.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ($1, $2, $3, $4)", ws, "Ann", "Lee", "ann@example.org"); err != nil {
		t.Fatalf("write through the proxy: %v", err)
	}

	// A connection that bypasses the proxy.
	_, err := f.direct.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name) VALUES ($1, 'Plain', 'Text')", ws)
	wantCheckViolation(t, "direct plaintext insert", err)
	_, err = f.direct.Exec(ctx, "UPDATE clients SET email = 'plain@example.org'")
	wantCheckViolation(t, "direct plaintext update of a deterministic column", err)
	_, err = f.direct.Exec(ctx, "UPDATE clients SET email = first_name")
	wantCheckViolation(t, "a randomized envelope copied into a deterministic column", err)

	// A function and a trigger, run through the proxy, which cannot see
	// what they write.
	if _, err := f.direct.Exec(ctx, `
		CREATE FUNCTION put_note(t text) RETURNS void LANGUAGE sql AS $$ INSERT INTO legacy_notes (body) VALUES (t) $$;
		CREATE FUNCTION plain_phone() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.phone := 'from a trigger'; RETURN NEW; END $$;
		CREATE TRIGGER plain_phone BEFORE INSERT ON clients FOR EACH ROW EXECUTE FUNCTION plain_phone()`); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "SELECT put_note($1)", "through a function")
	wantCheckViolation(t, "a function writing its argument", err)
	_, err = conn.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name) VALUES ($1, $2, $3)", ws, "Bob", "Ray")
	wantCheckViolation(t, "a trigger writing plaintext", err)
	if _, err := f.direct.Exec(ctx, "DROP TRIGGER plain_phone ON clients"); err != nil {
		t.Fatal(err)
	}

	// Once the plaintext is gone, a second run validates; a third changes
	// nothing.
	if _, err := f.direct.Exec(ctx, "DELETE FROM legacy_notes WHERE body = 'written before the proxy'"); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut = runCLI(t, env, "guard", "--config", cfg, "--dsn", dsn); code != 0 || !strings.Contains(out, "public.legacy_notes.body: unchanged, validated") {
		t.Fatalf("second guard: exit %d:\n%s%s", code, out, errOut)
	}
	var notValid int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM pg_constraint WHERE conname LIKE 'pgcrypt_guard_%' AND NOT convalidated").Scan(&notValid); err != nil || notValid != 0 {
		t.Fatalf("%d guard constraints not validated (%v)", notValid, err)
	}
	if code, out, _ = runCLI(t, env, "guard", "--config", cfg, "--dsn", dsn); code != 0 || strings.Contains(out, "installed") || strings.Contains(out, "updated") {
		t.Fatalf("third guard changed something: exit %d:\n%s", code, out)
	}

	// --remove takes them off; plaintext is accepted again.
	if code, out, errOut = runCLI(t, env, "guard", "--config", cfg, "--dsn", dsn, "--remove"); code != 0 || !strings.Contains(out, "public.clients.email: removed") {
		t.Fatalf("guard --remove: exit %d:\n%s%s", code, out, errOut)
	}
	if _, err := f.direct.Exec(ctx, "INSERT INTO legacy_notes (body) VALUES ('plain again')"); err != nil {
		t.Fatalf("after --remove: %v", err)
	}
	if code, _, _ := runCLI(t, env, "guard", "-h"); code != 0 {
		t.Fatalf("guard -h: exit %d", code)
	}
}

// TestCheck: the read-only report counts rows by key version and
// plaintext, shows the guard's state, and exits 1 naming the column when
// a finding blocks (here a unique index on a randomized column).
func TestCheck(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	cfg, env := guardConfig(t)
	dsn := pg.SuperConnString(f.db)
	conn := f.connect(t, pgx.QueryExecModeExec)
	for _, v := range []string{"one", "two"} {
		if _, err := conn.Exec(ctx, "INSERT INTO legacy_notes (body) VALUES ($1)", v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.direct.Exec(ctx, "INSERT INTO legacy_notes (body) VALUES ('plain'), (NULL), ('zz:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==')"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, env, "check", "--config", cfg, "--dsn", dsn)
	t.Logf("check:\n%s%s", out, errOut)
	if code != 1 || !strings.Contains(out, "public.legacy_notes.body (randomized, text): guard absent; 5 rows: v1 2; 1 plaintext, 1 unknown key, 1 NULL") ||
		!strings.Contains(errOut, "public.legacy_notes.body") || strings.Contains(errOut, "public.clients") {
		t.Fatalf("check: exit %d", code)
	}
	if _, err := f.direct.Exec(ctx, "DELETE FROM legacy_notes WHERE body LIKE 'zz:%'; CREATE UNIQUE INDEX ON clients (phone)"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, env, "check", "--config", cfg, "--dsn", dsn, "--json")
	var doc struct {
		Columns []struct {
			Column    string
			Plaintext int64
			Findings  []struct {
				Blocking bool
				What     string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("check --json: %v\n%s", err, out)
	}
	blocking := map[string]bool{}
	for _, c := range doc.Columns {
		for _, fd := range c.Findings {
			if fd.Blocking {
				blocking[c.Column] = true
			}
		}
	}
	if code != 1 || len(blocking) != 1 || !blocking["public.clients.phone"] || !strings.Contains(errOut, "public.clients.phone") {
		t.Fatalf("check --json: exit %d, blocking %v, %s\n%s", code, blocking, errOut, out)
	}
	if _, err := f.direct.Exec(ctx, "DROP INDEX clients_phone_idx"); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut = runCLI(t, env, "guard", "--config", cfg, "--dsn", dsn); code != 0 {
		t.Fatalf("guard: %d %s", code, errOut)
	}
	code, out, errOut = runCLI(t, env, "check", "--config", cfg, "--dsn", dsn)
	if code != 0 || !strings.Contains(out, "public.clients.email (deterministic, text): guard validated") || !strings.Contains(out, "public.legacy_notes.body (randomized, text): guard not valid") {
		t.Fatalf("check after guard: exit %d\n%s%s", code, out, errOut)
	}
}
