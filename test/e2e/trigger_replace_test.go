package e2e

// CREATE OR REPLACE of a trigger function through the proxy: refused when
// a trigger on a policy table runs a function of that name (its new body
// could fill an encrypted column with anything), allowed otherwise, as
// migrations that keep an updated_at trigger function do.

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestReplaceTriggerFunction(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	for _, q := range []string{
		"CREATE FUNCTION on_notes() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
		"CREATE TRIGGER notes_t BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION on_notes()",
		"CREATE TABLE plain_t (id int, note text)",
	} {
		if _, err := f.direct.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conn := f.connect(t, pgx.QueryExecModeSimpleProtocol)
	replace := func(fn, body string) error {
		_, err := conn.Exec(ctx, "CREATE OR REPLACE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "+body+" RETURN NEW; END$$")
		return err
	}
	var pgErr *pgconn.PgError
	if err := replace("on_notes", "NEW.body := 'PLAINSECRET-TRIG';"); !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("replacing the function of a trigger on a policy table: %v, want 0A000", err)
	}
	// A trigger function of a plain table, made and replaced as a
	// migration does.
	if err := replace("touch_plain", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TRIGGER plain_t_t BEFORE INSERT ON plain_t FOR EACH ROW EXECUTE FUNCTION touch_plain()"); err != nil {
		t.Fatal(err)
	}
	if err := replace("touch_plain", "NEW.id := NEW.id;"); err != nil {
		t.Fatalf("replacing the function of a trigger on a plain table: %v", err)
	}
	// The same function attached to the policy table on the server, after
	// the proxy read its catalog: the proxy reads it again and refuses.
	if _, err := f.direct.Exec(ctx, "CREATE TRIGGER notes_t2 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION touch_plain()"); err != nil {
		t.Fatal(err)
	}
	if err := replace("touch_plain", "NEW.body := 'PLAINSECRET-TRIG';"); !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("replacing a function a trigger on a policy table came to run: %v, want 0A000", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO legacy_notes (body) VALUES ('SECRET-TRIG-OK')"); err != nil {
		t.Fatal(err)
	}
	f.failStored(t, "PLAINSECRET")
}
