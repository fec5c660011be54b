package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// TestEncryptWriteForms covers the write forms of the policy: ON CONFLICT,
// data-modifying CTEs, casts on parameters, quoted and schema-qualified
// names, DEFAULT and NULL, multi-row VALUES, and a unique constraint on the
// deterministic column.
func TestEncryptWriteForms(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	if _, err := f.direct.Exec(ctx, "create unique index on clients (email)"); err != nil {
		t.Fatal(err)
	}
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	ws := "(select id from workspaces limit 1)"
	steps := []struct {
		sql  string
		args []any
	}{
		{`insert into public."clients" (workspace_id, "first_name", last_name, email) values (` + ws + `, $1::text, CAST($2 AS text), $3)`, []any{"Ada", "Lovelace", "ada@example.com"}},
		{`insert into clients (workspace_id, first_name, last_name, email) values (` + ws + `, $1, $2, $3), (` + ws + `, $4, $5, DEFAULT)`, []any{"Alan", "Turing", "alan@example.com", "Grace", "Hopper"}},
		{`insert into clients (workspace_id, first_name, last_name, email) values (` + ws + `, $1, $2, $3)
			on conflict (email) do update set first_name = excluded.first_name, last_name = $4`, []any{"Augusta", "King", "ada@example.com", "Byron"}},
		{`with moved as (update clients set phone = $1 where email = $2 returning id) insert into legacy_notes (body) select $3 from moved`, []any{"+44 20 7946 0000", "alan@example.com", "phoned Alan"}},
		{`update clients set address = NULL, medical_history = $1 where email = $2`, []any{"none known", "ada@example.com"}},
	}
	for _, st := range steps {
		if _, err := conn.Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
	}
	var first, last, history string
	if err := conn.QueryRow(ctx, "select first_name, last_name, medical_history from clients where email = $1", "ada@example.com").Scan(&first, &last, &history); err != nil {
		t.Fatal(err)
	}
	if first != "Augusta" || last != "Byron" || history != "none known" {
		t.Fatalf("after ON CONFLICT and UPDATE: %q %q %q", first, last, history)
	}
	var phone, note string
	if err := conn.QueryRow(ctx, "select c.phone, n.body from clients c, legacy_notes n where c.email = $1", "alan@example.com").Scan(&phone, &note); err != nil || phone != "+44 20 7946 0000" || note != "phoned Alan" {
		t.Fatalf("CTE write: %q %q %v", phone, note, err)
	}
	// The unique index works on ciphertext because email is deterministic.
	_, err := conn.Exec(ctx, "insert into clients (workspace_id, first_name, last_name, email) values ("+ws+", $1, $2, $3)", "X", "Y", "alan@example.com")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("duplicate deterministic email: %v, want 23505", err)
	}
	// A self-join on the deterministic column compares ciphertexts.
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from clients a join clients b on a.email = b.email").Scan(&n); err != nil || n != 2 {
		t.Fatalf("self-join on email: %d, %v", n, err)
	}
	f.assertStoredEncrypted(t, "Ada", "Augusta", "Byron", "Alan", "Turing", "Grace", "Hopper", "7946", "none known")
}

// TestEncryptAfterDDL: a policy table created after the session started is
// found once the proxy re-reads the catalog; so is a dropped and recreated
// one (its OID changes).
func TestEncryptAfterDDL(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "before"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "drop table legacy_notes; create table legacy_notes (id serial primary key, extra int, body text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "after the DDL"); err != nil {
		t.Fatal(err)
	}
	var stored, back string
	if err := f.direct.QueryRow(ctx, "select body from legacy_notes").Scan(&stored); err != nil || !cipher.LooksLikeEnvelope([]byte(stored)) {
		t.Fatalf("stored %q, %v", stored, err)
	}
	if err := conn.QueryRow(ctx, "select body from legacy_notes").Scan(&back); err != nil || back != "after the DDL" {
		t.Fatalf("read back %q, %v: the recreated table's new OID was not learnt", back, err)
	}
}

// TestEncryptWithoutDescribe drives the extended protocol with no Describe
// at all (Parse, Bind, Execute, Sync): the proxy describes the portal
// itself, hides the answer, and still decrypts the rows.
func TestEncryptWithoutDescribe(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "undescribed"); err != nil {
		t.Fatal(err)
	}
	pc, err := pgconn.Connect(ctx, f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	fe := pc.Frontend()
	fe.Send(&pgproto3.Parse{Name: "q", Query: "select body, id from legacy_notes"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "q"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	pc.Conn().SetDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription, *pgproto3.ParameterDescription, *pgproto3.NoData:
			t.Fatalf("the proxy's own Describe answer leaked: %T", m)
		case *pgproto3.DataRow:
			got = append(got, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			t.Fatalf("error: %s", m.Message)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if len(got) != 1 || got[0] != "undescribed" {
		t.Fatalf("rows %q", got)
	}
}

// TestEncryptStatementLifecycle: Close, DEALLOCATE, re-used names and a
// failing Parse keep the proxy's view of statements in step with the
// server's.
func TestEncryptStatementLifecycle(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	pc := conn.PgConn()
	if _, err := pc.Prepare(ctx, "w", "insert into legacy_notes (body) values ($1)", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.ExecPrepared(ctx, "w", [][]byte{[]byte("one")}, nil, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := pc.Deallocate(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	// The name now holds a read: a stale plan would encrypt its parameter.
	if _, err := pc.Prepare(ctx, "w", "select count(*) from legacy_notes where id = $1::int", nil); err != nil {
		t.Fatal(err)
	}
	res := pc.ExecPrepared(ctx, "w", [][]byte{[]byte("1")}, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || string(res.Rows[0][0]) != "1" {
		t.Fatalf("re-used name: %v %q", res.Err, res.Rows)
	}
	// A Parse the server rejects, then a good one under the same name.
	if _, err := pc.Prepare(ctx, "bad", "selec 1", nil); err == nil {
		t.Fatal("syntax error accepted")
	}
	if _, err := pc.Prepare(ctx, "bad", "insert into legacy_notes (body) values ($1)", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.ExecPrepared(ctx, "bad", [][]byte{[]byte("two")}, nil, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "deallocate all"); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	rows, _ := conn.Query(ctx, "select body from legacy_notes order by id")
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(bodies, ",") != "one,two" {
		t.Fatalf("bodies %q, %v", bodies, err)
	}
	var raw []string
	rows, _ = f.direct.Query(ctx, "select body from legacy_notes")
	raw, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	for _, v := range raw {
		if !cipher.LooksLikeEnvelope([]byte(v)) {
			t.Fatalf("stored %q", v)
		}
	}
}

// TestEncryptPartitionAndEncoding: a partition of a policy table is refused
// by name (the proxy encrypts through the parent), and a session whose
// client_encoding is not UTF8 cannot touch policy columns.
func TestEncryptPartitionAndEncoding(t *testing.T) {
	ctx := testCtx(t)
	f2 := newEncFixtureWithSpecs(t, append(seedColumns(), proxyColumn("public", "notes_part", "body")))
	if _, err := f2.direct.Exec(ctx, `create table notes_part (id int, body text) partition by range (id);
		create table notes_part_1 partition of notes_part for values from (0) to (1000)`); err != nil {
		t.Fatal(err)
	}
	c2 := f2.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := c2.Exec(ctx, "insert into notes_part (id, body) values (1, $1)", "through the parent"); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := c2.QueryRow(ctx, "select body from notes_part where id = 1").Scan(&body); err != nil || body != "through the parent" {
		t.Fatalf("read through the parent: %q, %v", body, err)
	}
	_, err := c2.Exec(ctx, "insert into notes_part_1 (id, body) values (2, $1)", "straight into the partition")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "notes_part_1") {
		t.Fatalf("write into the partition: %v, want 0A000 naming it", err)
	}
	var stored string
	if err := f2.direct.QueryRow(ctx, "select body from notes_part_1 where id = 1").Scan(&stored); err != nil || !cipher.LooksLikeEnvelope([]byte(stored)) {
		t.Fatalf("partition holds %q, %v", stored, err)
	}

	if _, err := c2.Exec(ctx, "set client_encoding = 'LATIN1'"); err != nil {
		t.Fatal(err)
	}
	_, err = c2.Exec(ctx, "insert into legacy_notes (body) values ($1)", "latin")
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "client_encoding") {
		t.Fatalf("non-UTF8 session: %v, want 0A000 about client_encoding", err)
	}
}

// TestEncryptRejectionBeforeFlush: a client that sends a rejected Parse
// followed by Flush (no Sync yet) gets the error without waiting for Sync.
func TestEncryptRejectionBeforeFlush(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	pc, err := pgconn.Connect(ctx, f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	fe := pc.Frontend()
	fe.Send(&pgproto3.Parse{Name: "r", Query: "select id from clients order by last_name"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "r"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Flush{})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	pc.Conn().SetDeadline(time.Now().Add(5 * time.Second))
	msg, err := fe.Receive()
	if err != nil {
		t.Fatalf("no answer after Flush: %v", err)
	}
	if e, ok := msg.(*pgproto3.ErrorResponse); !ok || e.Code != "0A000" {
		t.Fatalf("got %T %+v, want the 0A000 error", msg, msg)
	}
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if msg, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := msg.(*pgproto3.ReadyForQuery); !ok {
		t.Fatalf("after Sync: %T", msg)
	}
}

// TestEncryptArrayParameters: email = ANY($1) with an array parameter, in
// pgx's binary array format and lib/pq-style text format, encrypts each
// element.
func TestEncryptArrayParameters(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	for _, e := range []string{"a@example.com", "b c@example.com", `q"uote@example.com`} {
		if _, err := conn.Exec(ctx, "insert into clients (workspace_id, first_name, last_name, email) select id, 'F', 'L', $1 from workspaces", e); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	// pgx sends []string as a binary text[].
	if err := conn.QueryRow(ctx, "select count(*) from clients where email = any($1)", []string{"a@example.com", `q"uote@example.com`, "nobody"}).Scan(&n); err != nil || n != 2 {
		t.Fatalf("binary array: %d, %v", n, err)
	}
	// The text format, as lib/pq's pq.Array sends it.
	res := conn.PgConn().ExecParams(ctx, "select count(*) from clients where email = any($1::text[])",
		[][]byte{[]byte(`{"b c@example.com", NULL ,"q\"uote@example.com"}`)}, nil, []int16{0}, nil).Read()
	if res.Err != nil || string(res.Rows[0][0]) != "2" {
		t.Fatalf("text array: %q, %v", res.Rows, res.Err)
	}
	// Arrays of arrays are refused rather than sent as they are.
	res = conn.PgConn().ExecParams(ctx, "select count(*) from clients where email = any($1::text[])",
		[][]byte{[]byte(`{{a},{b}}`)}, nil, []int16{0}, nil).Read()
	var pgErr *pgconn.PgError
	if !errors.As(res.Err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("two-dimensional array: %v, want 0A000", res.Err)
	}
}

// TestEncryptCharColumn: PostgreSQL pads values of a char(n) column with
// spaces. A padded envelope is no longer an envelope byte for byte, and was
// passed through to the client as if it were stored plaintext: the client
// got ciphertext. It decrypts now, in every result format and in COPY.
func TestEncryptCharColumn(t *testing.T) {
	ctx := testCtx(t)
	specs := append(seedColumns(), proxyColumn("public", "padded", "code"))
	specs = append(specs, proxy.ColumnSpec{Schema: "public", Table: "padded", Column: "tag", Deterministic: true, AssociatedData: []byte("public.padded.tag")})
	f := newEncFixtureWith(t, specs, false, "; create table padded (id int, code char(120), tag char(120))", "")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		conn := f.connect(t, mode)
		if _, err := f.direct.Exec(ctx, "delete from padded"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "insert into padded (id, code, tag) values (1, $1, $2)", "A-17", "t1"); err != nil {
			t.Fatalf("%s: insert: %v", mode, err)
		}
		var stored string
		if err := f.direct.QueryRow(ctx, "select code::text from padded").Scan(&stored); err != nil || !cipher.LooksLikeEnvelope([]byte(stored)) {
			t.Fatalf("%s: stored %q, %v", mode, stored, err)
		}
		var code, tag string
		if err := conn.QueryRow(ctx, "select code, tag from padded where tag = $1", "t1").Scan(&code, &tag); err != nil || code != "A-17" || tag != "t1" {
			t.Errorf("%s: read back %q %q, %v; want the plaintext", mode, code, tag, err)
		}
	}
	conn := f.connect(t, pgx.QueryExecModeExec)
	var out strings.Builder
	if _, err := conn.PgConn().CopyTo(ctx, &out, "copy (select code from padded) to stdout"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "A-17\n" {
		t.Errorf("COPY TO gave %q, want %q", out.String(), "A-17\n")
	}
}
