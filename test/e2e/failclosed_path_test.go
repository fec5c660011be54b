package e2e

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Regression tests from the fourth review: changes of the search_path run
// from prepared statements, COPY prepared against one path and run on
// another, escapes in function bodies, COPY data after a policy COPY, and
// ordinary statements the path checks must not refuse.

// rawSync sends ms and a Sync and reads to ReadyForQuery.
func rawSync(t *testing.T, fe *pgproto3.Frontend, ms ...pgproto3.FrontendMessage) []pgproto3.BackendMessage {
	t.Helper()
	for _, m := range ms {
		fe.Send(m)
	}
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	return failUntilZ(t, fe)
}

func rawQuery(t *testing.T, fe *pgproto3.Frontend, q string) []pgproto3.BackendMessage {
	t.Helper()
	fe.Send(&pgproto3.Query{String: q})
	fe.Flush()
	return failUntilZ(t, fe)
}

// noPlainClients fails when public.clients holds a plaintext first name.
func noPlainClients(t *testing.T, f *encFixture) {
	t.Helper()
	rows, _ := pgx.CollectRows(must(f.direct.Query(testCtx(t), "select first_name from public.clients where first_name like 'SECRET%'")), pgx.RowTo[string])
	if len(rows) > 0 {
		t.Errorf("PLAINTEXT stored in public.clients.first_name: %q", rows)
	}
}

const looseClients = "; ALTER TABLE clients ALTER workspace_id DROP NOT NULL, ALTER last_name DROP NOT NULL"

func TestFailClosedPathFromPrepared(t *testing.T) {
	for _, q := range []string{"SET SCHEMA 'public'", "RESET ALL", "SET search_path = public", "select set_config('search_path', 'public', false)"} {
		t.Run(q, func(t *testing.T) {
			f, _ := newTapFixture(t, looseClients)
			fe, _ := failRaw(t, f)
			rawSync(t, fe, &pgproto3.Parse{Name: "sp", Query: q})
			rawQuery(t, fe, "set search_path = tenant")
			rawSync(t, fe, &pgproto3.Parse{Name: "ins", Query: "insert into clients (first_name) values ($1)"})
			rawSync(t, fe, &pgproto3.Bind{PreparedStatement: "sp"}, &pgproto3.Execute{})
			rawSync(t, fe, &pgproto3.Bind{PreparedStatement: "ins", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{})
			noPlainClients(t, f)
		})
	}
}

func TestFailClosedPreparedCopy(t *testing.T) {
	f, _ := newTapFixture(t, looseClients)
	fe, _ := failRaw(t, f)
	rawQuery(t, fe, "set search_path = tenant")
	ms := rawSync(t, fe, &pgproto3.Parse{Name: "cp", Query: "copy clients (first_name) from stdin"})
	refused := false
	for _, m := range ms {
		if _, ok := m.(*pgproto3.ErrorResponse); ok {
			refused = true
		}
	}
	if !refused {
		t.Error("a COPY of a table named like a policy table was prepared")
	}
}

func TestFailClosedFunctionBodyEscapes(t *testing.T) {
	f, _ := newTapFixture(t, looseClients)
	fe, _ := failRaw(t, f)
	rawQuery(t, fe, `create function f5() returns void language sql as $$ insert into public.U&"\0063lients" (first_name) values ('SECRET') $$`)
	rawQuery(t, fe, `select f5()`)
	noPlainClients(t, f)
}

func TestFailClosedCopyDataAfterEnd(t *testing.T) {
	for _, end := range []string{"done", "fail"} {
		t.Run(end, func(t *testing.T) {
			f, w := newTapFixture(t, "")
			fe, _ := failRaw(t, f)
			fe.Send(&pgproto3.Query{String: "copy legacy_notes (body) from stdin"})
			fe.Send(&pgproto3.CopyData{Data: []byte("ok\n")})
			if end == "done" {
				fe.Send(&pgproto3.CopyDone{})
			} else {
				fe.Send(&pgproto3.CopyFail{Message: "x"})
			}
			fe.Send(&pgproto3.CopyData{Data: []byte("SECRET\n")})
			fe.Send(&pgproto3.CopyDone{})
			fe.Flush()
			failUntilZ(t, fe)
			rawQuery(t, fe, "select 1")
			noLeak(t, f, w, "SECRET")
		})
	}
}

// TestPathChecksLeaveOrdinarySQLAlone: a column named role, an upsert, and
// batches mixing them with policy statements run, without the catalog
// being read again for each.
func TestPathChecksLeaveOrdinarySQLAlone(t *testing.T) {
	f, w := newTapFixture(t, "; ALTER TABLE legacy_notes ADD COLUMN role text; CREATE TABLE users (id int primary key, role text)")
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	ctx := testCtx(t)
	b := &pgx.Batch{}
	b.Queue("insert into legacy_notes (body, role) values ($1, $2)", "a", "r")
	b.Queue("insert into legacy_notes (body, role) values ($1, $2)", "b", "r")
	b.Queue("select id from users where role = $1", "admin")
	b.Queue("insert into legacy_notes (body) values ($1)", "c")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Errorf("batch with a role column: %v", err)
	}
	for _, q := range []string{
		"insert into users (id, role) values (1, 'a') on conflict (id) do update set role = excluded.role",
		"insert into users (id, role) values (2, 'a') on conflict (id) do nothing",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Errorf("%s (simple): %v", q, err)
		}
	}
	before := catalogReads(w)
	if before == 0 {
		t.Fatal("no catalog query seen upstream: the count is broken")
	}
	for range 20 {
		if _, err := conn.Exec(ctx, "select id from users where role = $1", "admin"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "d"); err != nil {
			t.Fatal(err)
		}
	}
	if n := catalogReads(w) - before; n > 2 {
		t.Errorf("20 rounds of a role query and a policy insert read the catalog %d times", n)
	}
}

// catalogReads counts the proxy's catalog queries sent to PostgreSQL.
func catalogReads(w *wireTap) int {
	return strings.Count(w.String(), "SELECT c.oid, n.nspname, c.relname")
}

// TestFailClosedPathSpellings: a quoted, mixed-case setting name and a DO
// block running dynamic SQL change the search_path like SET does; the
// proxy reads the catalog again before the next statement.
func TestFailClosedPathSpellings(t *testing.T) {
	for _, change := range []string{
		`SET "Search_Path" TO public`,
		`DO $$ BEGIN EXECUTE 'SET sea' || 'rch_path = public'; END $$`,
	} {
		t.Run(change, func(t *testing.T) {
			f, _ := newTapFixture(t, looseClients)
			fe, _ := failRaw(t, f)
			rawQuery(t, fe, "set search_path = tenant")
			rawQuery(t, fe, "select first_name from clients")
			rawQuery(t, fe, change)
			rawQuery(t, fe, "insert into clients (first_name) values ('SECRET1')")
			// The same, prepared; and in the same text as the write.
			rawQuery(t, fe, "set search_path = tenant")
			rawSync(t, fe, &pgproto3.Parse{Name: "ch", Query: change})
			rawSync(t, fe, &pgproto3.Bind{PreparedStatement: "ch"}, &pgproto3.Execute{})
			rawQuery(t, fe, "insert into clients (first_name) values ('SECRET2')")
			rawQuery(t, fe, "set search_path = tenant")
			rawQuery(t, fe, change+"; insert into clients (first_name) values ('SECRET3')")
			noPlainClients(t, f)
		})
	}
}

// TestPathChecksAfterPathTouched: once the session has changed a setting
// (or run a statement that merely mentions one), ordinary words such as
// 'pending' or 'committed' do not make pipelines fail.
func TestPathChecksAfterPathTouched(t *testing.T) {
	f, _ := newTapFixture(t, "; CREATE TABLE users (id int primary key, role text, status text)")
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	ctx := testCtx(t)
	if _, err := conn.Exec(ctx, "select id from users where role = $1", "admin"); err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{"pending", "committed", "release_2"} {
		b := &pgx.Batch{}
		b.Queue("select id from users where status = '" + status + "'")
		b.Queue("insert into legacy_notes (body) values ($1)", "x")
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			t.Errorf("batch with %q: %v", status, err)
		}
	}
}
