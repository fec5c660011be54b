package e2e

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// Regression tests for COPY data the proxy read differently from
// PostgreSQL (found by review): each sends a value marked SECRET and checks
// that it is neither stored in a policy column nor even sent to PostgreSQL,
// which a tap between the proxy and the server records.

// wireTap records what the proxy sends to PostgreSQL.
type wireTap struct{ syncBuffer }

func (w *wireTap) has(s string) bool { return strings.Contains(w.String(), s) }

// startTap relays connections to PostgreSQL, recording the upstream bytes.
func startTap(t *testing.T) (string, *wireTap) {
	w := &wireTap{}
	addr := relayToServer(t, func(c, up net.Conn) {
		go func() { io.Copy(up, io.TeeReader(c, w)); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	})
	return addr, w
}

// relayToServer listens on a free port and hands each connection, with a
// new connection to PostgreSQL, to relay; it returns the address.
func relayToServer(t *testing.T, relay func(client, upstream net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", pg.Addr())
			if err != nil {
				c.Close()
				continue
			}
			relay(c, up)
		}
	}()
	return ln.Addr().String()
}

// newTapFixture is newEncFixture with the upstream traffic recorded; ddl
// runs after the seed schema.
func newTapFixture(t *testing.T, ddl string) (*encFixture, *wireTap) {
	t.Helper()
	pg.Require(t)
	addr, w := startTap(t)
	return newEncFixtureWith(t, seedColumns(), false, ddl, addr), w
}

func (f *encFixture) workspace(t *testing.T) string {
	t.Helper()
	var ws string
	if err := f.direct.QueryRow(testCtx(t), "select id::text from workspaces limit 1").Scan(&ws); err != nil {
		t.Fatal(err)
	}
	return ws
}

// noLeak fails when a policy column holds anything but envelopes and NULLs,
// or when secret reached PostgreSQL at all.
func noLeak(t *testing.T, f *encFixture, w *wireTap, secret string) {
	t.Helper()
	for _, q := range []string{
		"select body from legacy_notes where body is not null",
		"select unnest(array[first_name, last_name]) from clients",
	} {
		vals, err := pgx.CollectRows(must(f.direct.Query(testCtx(t), q)), pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if !cipher.LooksLikeEnvelope([]byte(v)) {
				t.Errorf("PLAINTEXT stored in a policy column: %q", v)
			}
		}
	}
	if w.has(secret) {
		t.Errorf("PLAINTEXT %q was sent to PostgreSQL", secret)
	}
}

func TestFailClosedCopyData(t *testing.T) {
	// legacy_notes gets a generated column, which COPY without a column
	// list leaves out.
	f, w := newTapFixture(t, "; DROP TABLE legacy_notes; CREATE TABLE legacy_notes (id int, g int GENERATED ALWAYS AS (id * 2) STORED, note text, body text)")
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	ws := f.workspace(t)
	cases := []struct{ name, sql, data string }{
		{"text, CR line ends", "copy legacy_notes (body, id) from stdin", "first\t1\rSECRET\t2\r"},
		{"text HEADER, CR line ends", "copy legacy_notes (id, body) from stdin (header)", "id\tbody\r1\tSECRET\r"},
		{"CSV HEADER, CR line ends", "copy legacy_notes (id, body) from stdin with csv header", "id,body\r1,SECRET\r"},
		{"text, escaped newline", "copy clients (workspace_id, notes, first_name, last_name) from stdin",
			ws + "\tc\\\nx\tSECRET\tSmith\n"},
		{"ENCODING SJIS, text", "copy clients (workspace_id, notes, first_name, last_name) from stdin (encoding 'SJIS')",
			ws + "\t\x81\x5c\tSECRET\tSmith\n"},
		{"ENCODING SJIS, CSV", "copy clients (notes, first_name, last_name, workspace_id) from stdin (format csv, escape '\\', encoding 'SJIS')",
			"\"\x81\\\",SECRET,Smith," + ws + "\n"},
		{"CSV end marker without a line end", "copy legacy_notes (body) from stdin (format csv)", "a\n\\."},
		{"text NULL ''", "copy legacy_notes (body) from stdin (null '')", "\\N\n\n"},
		{"FORMAT given twice", "copy legacy_notes (id, body) from stdin (format csv, format text)", "9,SECRET\n"},
		{"HEADER 'yes'", "copy legacy_notes (id, body) from stdin (header 'yes')", "9\tSECRET\n"},
		{"refused: WHERE on the column", "copy legacy_notes (id, body) from stdin where body = 'x'", "1\tSECRET\n"},
		{"refused: FORCE_NULL", "copy legacy_notes (id, body) from stdin (format csv, force_null (body))", "1,SECRET\n"},
		{"refused: two-byte DELIMITER", "copy legacy_notes (id, body) from stdin (format csv, delimiter ';;')", "1;;SECRET\n"},
		{"no column list, generated column", "copy legacy_notes from stdin", "1\tnote\tSECRET\n"},
		{"after the end marker", "copy legacy_notes (id, body) from stdin", "18\tx\n\\.\n19\tSECRET\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// pgx streams the data without waiting for CopyInResponse, so
			// it arrives even when the COPY is refused.
			_, err := conn.PgConn().CopyFrom(testCtx(t), strings.NewReader(c.data), c.sql)
			t.Logf("%s: %v", c.sql, err)
			noLeak(t, f, w, "SECRET")
			if err := conn.Ping(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// COPY TO without a column list leaves the generated column out too,
	// and decrypts body.
	var out strings.Builder
	if _, err := conn.PgConn().CopyTo(testCtx(t), &out, "copy legacy_notes to stdout"); err != nil {
		t.Fatal(err)
	}
	for _, field := range strings.FieldsFunc(out.String(), func(r rune) bool { return r == '\t' || r == '\n' }) {
		if cipher.LooksLikeEnvelope([]byte(field)) {
			t.Errorf("COPY TO returned an envelope: %q", out.String())
		}
	}
	if !strings.Contains(out.String(), "1\tnote\tSECRET\n") {
		t.Errorf("COPY TO gave %q", out.String())
	}
}

// TestFailClosedCopyAfterFail: once the proxy has failed a COPY (data it
// cannot read), the client's further CopyData is dropped, not relayed.
func TestFailClosedCopyAfterFail(t *testing.T) {
	for _, c := range []struct{ sql, bad string }{
		{"copy legacy_notes (body) from stdin (format csv)", "a,b\n"},
		{"copy legacy_notes (body) from stdin", "x\\\n\\"},
		{"copy legacy_notes (body) from stdin (format binary)", "nope"},
	} {
		t.Run(c.sql, func(t *testing.T) {
			f, w := newTapFixture(t, "")
			fe, _ := failRaw(t, f)
			fe.Send(&pgproto3.Query{String: c.sql})
			fe.Flush()
			if m, err := fe.Receive(); err != nil {
				t.Fatal(err)
			} else if _, ok := m.(*pgproto3.CopyInResponse); !ok {
				t.Fatalf("got %T, want CopyInResponse", m)
			}
			fe.Send(&pgproto3.CopyData{Data: []byte(c.bad)})
			fe.Send(&pgproto3.CopyData{Data: []byte("SECRET\n")})
			fe.Send(&pgproto3.CopyDone{})
			fe.Flush()
			failUntilZ(t, fe)
			noLeak(t, f, w, "SECRET")
		})
	}
}

// TestFailClosedSameQueryResolution: a policy table named after a
// statement of the same query that changes the search_path is refused: the
// proxy resolved the name before the query ran.
func TestFailClosedSameQueryResolution(t *testing.T) {
	f, w := newTapFixture(t, "; CREATE TABLE tenant.legacy_notes (id int, body text)")
	conn := f.connect(t, pgx.QueryExecModeSimpleProtocol)
	ctx := testCtx(t)
	if _, err := conn.Exec(ctx, "set search_path = tenant, public"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "set search_path = public; insert into legacy_notes (body) values ('SECRET')"); err == nil {
		t.Error("INSERT after SET search_path in the same query ran")
	}
	if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("SECRET\n"), "set search_path = public; copy legacy_notes (body) from stdin"); err == nil {
		t.Error("COPY after SET search_path in the same query ran")
	}
	for _, q := range []string{
		"update pg_settings set setting = 'public' where name = 'search_path'; insert into legacy_notes (body) values ('SECRET')",
		`select U&"set\005fconfig"('search_path', 'public', false); insert into legacy_notes (body) values ('SECRET')`,
		"prepare sp as select set_config('search_path', 'public', false)",
		"begin; declare c cursor for select set_config('search_path', 'public', false)",
	} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("%s: ran", q)
		}
		conn.Exec(ctx, "rollback")
	}
	noLeak(t, f, w, "SECRET")
	// Sent on its own, the change is seen.
	if _, err := conn.Exec(ctx, "set search_path = public"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ('SECRET')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.direct.QueryRow(ctx, "select count(*) from public.legacy_notes").Scan(&n); err != nil || n != 1 {
		t.Fatalf("public.legacy_notes has %d rows, %v", n, err)
	}
	noLeak(t, f, w, "no plaintext stored")
}

// TestFailClosedPreparedSetConfig: a prepared set_config of the
// search_path, run again with another path (a per-request tenant switch),
// makes the proxy resolve names again before the next statement.
func TestFailClosedPreparedSetConfig(t *testing.T) {
	f, w := newTapFixture(t, "; CREATE TABLE tenant.legacy_notes (id int, body text)")
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	ctx := testCtx(t)
	for i, path := range []string{"tenant, public", "public"} {
		if _, err := conn.Exec(ctx, "select set_config('search_path', $1, false)", path); err != nil {
			t.Fatal(err)
		}
		// The cached statement was prepared with its table pinned to
		// tenant (the proxy writes the schema in); after the switch it is
		// refused rather than run on either table.
		_, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "SECRET")
		var pe *pgconn.PgError
		switch {
		case i == 0 && err != nil:
			t.Fatal(err)
		case i == 1 && err != nil && !(errors.As(err, &pe) && pe.Code == "0A000"):
			t.Fatalf("after the switch: %v, want success or 0A000", err)
		}
	}
	var n int
	if err := f.direct.QueryRow(ctx, "select count(*) from public.legacy_notes").Scan(&n); err != nil || n > 1 {
		t.Fatalf("public.legacy_notes has %d rows, %v; want at most 1", n, err)
	}
	// tenant.legacy_notes is not a policy table: its row is plaintext by
	// design; the one in public must not be.
	vals, _ := pgx.CollectRows(must(f.direct.Query(ctx, "select body from public.legacy_notes")), pgx.RowTo[string])
	for _, v := range vals {
		if !cipher.LooksLikeEnvelope([]byte(v)) {
			t.Errorf("PLAINTEXT stored in public.legacy_notes: %q", v)
		}
	}
	_ = w
}

// TestFailClosedPositionalAfterDDL: an INSERT or COPY without a column
// list, after another connection has changed the table's columns within
// the proxy's catalog age. The proxy writes the column list it knows into
// the statement, so PostgreSQL maps values by name: the statement fails,
// or stores each value where the proxy encrypted it for. Also for a
// statement prepared before the change.
func TestFailClosedPositionalAfterDDL(t *testing.T) {
	f, w := newTapFixture(t, "; ALTER TABLE legacy_notes ADD COLUMN extra text")
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	const insert = "insert into legacy_notes values ($1, $2, $3)"
	if _, err := conn.Exec(ctx, insert, 1, "secret one", "z"); err != nil {
		t.Fatal(err)
	}
	// Another connection swaps the columns' positions: id, body, extra
	// becomes body, extra, id.
	if _, err := f.direct.Exec(ctx, "alter table legacy_notes drop column id; alter table legacy_notes add column id int"); err != nil {
		t.Fatal(err)
	}
	// The cached prepared statement: PostgreSQL re-plans it by name.
	_, err := conn.Exec(ctx, insert, 2, "SECRET", "z")
	t.Logf("prepared INSERT after the change: %v", err)
	// New positional statements.
	_, err = conn.Exec(ctx, "insert into legacy_notes values ('SECRET', 'z', 3)")
	t.Logf("INSERT after the change: %v", err)
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("SECRET\tz\t4\n"), "copy legacy_notes from stdin")
	t.Logf("COPY after the change: %v", err)
	noLeak(t, f, w, "SECRET")
	// More values than the proxy's catalog had columns, after another
	// change; and MERGE's INSERT by position.
	if _, err := f.direct.Exec(ctx, "alter table legacy_notes add column more text"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "insert into legacy_notes values ('SECRET', 'z', 5, 'w')")
	t.Logf("INSERT with a value for a new column: %v", err)
	_, err = conn.Exec(ctx, "merge into legacy_notes n using (select 6 as id) s on n.id = s.id when not matched then insert values ('SECRET', 'z', 6, 'w')")
	if err == nil {
		t.Error("MERGE INSERT without a column list ran")
	}
	noLeak(t, f, w, "SECRET")
	// What reads back through the proxy is never an envelope.
	var out strings.Builder
	if _, err := conn.PgConn().CopyTo(ctx, &out, "copy legacy_notes to stdout"); err == nil {
		for _, field := range strings.FieldsFunc(out.String(), func(r rune) bool { return r == '\t' || r == '\n' }) {
			if cipher.LooksLikeEnvelope([]byte(field)) {
				t.Errorf("COPY TO returned an envelope: %q", out.String())
			}
		}
	}
}

// TestCopyWithoutPolicyFields: COPY data of tables without policy columns
// is relayed, however the COPYs come: two in one query, and a prepared
// COPY executed twice.
func TestCopyWithoutPolicyFields(t *testing.T) {
	f, _ := newTapFixture(t, "; CREATE TABLE plain1 (a text); CREATE TABLE plain2 (a text)")
	fe, _ := failRaw(t, f)
	copyIn := func(data string) {
		t.Helper()
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*pgproto3.CopyInResponse); !ok {
			t.Fatalf("got %T, want CopyInResponse", m)
		}
		fe.Send(&pgproto3.CopyData{Data: []byte(data)})
		fe.Send(&pgproto3.CopyDone{})
		fe.Flush()
	}
	fe.Send(&pgproto3.Query{String: "copy plain1 from stdin; copy plain2 from stdin"})
	fe.Flush()
	copyIn("one\n")
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.CommandComplete); !ok {
		t.Fatalf("got %T after the first COPY", m)
	}
	copyIn("two\n")
	failUntilZ(t, fe)

	fe.Send(&pgproto3.Parse{Name: "c", Query: "copy plain1 from stdin"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	for _, v := range []string{"three\n", "four\n"} {
		fe.Send(&pgproto3.Bind{PreparedStatement: "c"})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Flush{})
		fe.Flush()
		if m, err := fe.Receive(); err != nil {
			t.Fatal(err)
		} else if _, ok := m.(*pgproto3.BindComplete); !ok {
			t.Fatalf("got %T, want BindComplete", m)
		}
		copyIn(v)
		fe.Send(&pgproto3.Sync{})
		fe.Flush()
		failUntilZ(t, fe)
	}
	var n int
	if err := f.direct.QueryRow(testCtx(t), "select (select count(*) from plain1) + (select count(*) from plain2)").Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d rows copied, %v; want 4", n, err)
	}
}
