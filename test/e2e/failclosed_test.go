package e2e

// Regression tests for fail-open paths found in review: each sequence once
// stored plaintext in a policy column or returned ciphertext to the client.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// failRaw opens a protocol-level session through the proxy into the
// fixture's database.
func failRaw(t *testing.T, f *encFixture) (*pgproto3.Frontend, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", f.p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(8 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": pg.Super.Name, "database": f.db}})
	fe.Flush()
	failUntilZ(t, fe)
	return fe, c
}

// untilZ reads up to ReadyForQuery, copying DataRows and CopyData (their
// bytes are only valid until the next Receive).
func untilZ(t *testing.T, fe *pgproto3.Frontend) ([]pgproto3.BackendMessage, error) {
	var out []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			return out, err
		}
		t.Logf("<- %T %+v", m, m)
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			return out, nil
		case *pgproto3.DataRow:
			cp := &pgproto3.DataRow{}
			for _, v := range m.Values {
				cp.Values = append(cp.Values, append([]byte(nil), v...))
			}
			out = append(out, cp)
		case *pgproto3.CopyData:
			out = append(out, &pgproto3.CopyData{Data: append([]byte(nil), m.Data...)})
		default:
			out = append(out, m)
		}
	}
}

// failUntilZ is untilZ that fails the test on a read error.
func failUntilZ(t *testing.T, fe *pgproto3.Frontend) []pgproto3.BackendMessage {
	t.Helper()
	ms, err := untilZ(t, fe)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return ms
}

// untilError receives messages up to and including an ErrorResponse.
func untilError(t *testing.T, fe *pgproto3.Frontend) {
	t.Helper()
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("<- %T", m)
		if _, ok := m.(*pgproto3.ErrorResponse); ok {
			return
		}
	}
}

// noEnvelopes fails the test when a DataRow carries an envelope: the proxy
// returned ciphertext instead of decrypting it.
func noEnvelopes(t *testing.T, ms []pgproto3.BackendMessage, what string) {
	t.Helper()
	for _, m := range ms {
		if d, ok := m.(*pgproto3.DataRow); ok {
			for _, v := range d.Values {
				if cipher.LooksLikeEnvelope(v) {
					t.Errorf("%s: CIPHERTEXT returned: %.40q", what, v)
				}
			}
		}
	}
}

func (f *encFixture) failStored(t *testing.T, secret string) {
	rows, _ := pgx.CollectRows(must(f.direct.Query(context.Background(), "select coalesce(body,'') from legacy_notes")), pgx.RowTo[string])
	for _, v := range rows {
		if strings.Contains(v, secret) || !cipher.LooksLikeEnvelope([]byte(v)) {
			t.Errorf("LEAK: stored %q", v)
		}
	}
	t.Logf("stored: %q", rows)
}

func TestFailClosedDeallocateLeak(t *testing.T) {
	for _, reset := range []string{"DEALLOCATE s1", "DISCARD ALL", "DEALLOCATE ALL"} {
		t.Run(reset, func(t *testing.T) {
			f := newEncFixture(t, false)
			ctx := testCtx(t)
			conn := f.connect(t, pgx.QueryExecModeCacheStatement)
			pc := conn.PgConn()
			if _, err := pc.Prepare(ctx, "s1", "select $1::text", nil); err != nil {
				t.Fatal(err)
			}
			if err := pc.Exec(ctx, reset).Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := pc.Prepare(ctx, "s1", "insert into legacy_notes (body) values ($1)", nil); err != nil {
				t.Fatal(err)
			}
			r := pc.ExecPrepared(ctx, "s1", [][]byte{[]byte("PLAINSECRET-1")}, nil, nil).Read()
			t.Logf("exec: %v %v", r.CommandTag, r.Err)
			f.failStored(t, "PLAINSECRET")
		})
	}
}

func TestFailClosedCopyFlushLeak(t *testing.T) {
	for _, mid := range []string{"flush", "sync"} {
		t.Run(mid, func(t *testing.T) {
			f := newEncFixture(t, false)
			fe, _ := failRaw(t, f)
			fe.Send(&pgproto3.Query{String: "copy legacy_notes (body) from stdin"})
			fe.Flush()
			m, err := fe.Receive()
			if _, ok := m.(*pgproto3.CopyInResponse); !ok || err != nil {
				t.Fatalf("%T %v", m, err)
			}
			if mid == "flush" {
				fe.Send(&pgproto3.Flush{})
			} else {
				fe.Send(&pgproto3.Sync{})
			}
			fe.Send(&pgproto3.CopyData{Data: []byte("PLAINSECRET-2\n")})
			fe.Send(&pgproto3.CopyDone{})
			fe.Flush()
			failUntilZ(t, fe)
			f.failStored(t, "PLAINSECRET")
			if mid == "sync" {
				// expectation queue desync: is the next SELECT decrypted?
				fe.Send(&pgproto3.Query{String: "select body from legacy_notes"})
				fe.Flush()
				noEnvelopes(t, failUntilZ(t, fe), "select")
			}
		})
	}
}

func TestFailClosedCursorExecute(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-body"); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "begin; declare c cursor for select body from legacy_notes"})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Describe{ObjectType: 'P', Name: "c"})
	fe.Send(&pgproto3.Execute{Portal: "c"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	noEnvelopes(t, failUntilZ(t, fe), "select")
}

func TestFailClosedStaleShape(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	if _, err := f.direct.Exec(ctx, "insert into tenant.clients (first_name) values ('tenant-plain')"); err != nil {
		t.Fatal(err)
	}
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	var ws string
	must(0, conn.QueryRow(ctx, "select id::text from workspaces limit 1").Scan(&ws))
	if _, err := conn.Exec(ctx, "insert into clients (workspace_id, first_name, last_name) values ($1, $2, $3)", ws, "Alice", "Smith"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "set search_path = tenant, public"); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := conn.QueryRow(ctx, "select first_name from clients limit 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	t.Logf("tenant: %q", v)
	if _, err := conn.Exec(ctx, "set search_path = public"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "select first_name from clients limit 1").Scan(&v); err != nil {
		t.Logf("public: err %v", err)
		return
	}
	t.Logf("public: %q", v)
	if cipher.LooksLikeEnvelope([]byte(v)) {
		t.Errorf("CIPHERTEXT returned: %q", v)
	}
}

func TestFailClosedCopySyncDesync(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-body"); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "copy workspaces (name) from stdin"}) // not even a policy table
	fe.Flush()
	m, err := fe.Receive()
	if _, ok := m.(*pgproto3.CopyInResponse); !ok || err != nil {
		t.Fatalf("%T %v", m, err)
	}
	fe.Send(&pgproto3.Sync{})
	fe.Send(&pgproto3.CopyData{Data: []byte("w2\n")})
	fe.Send(&pgproto3.CopyDone{})
	fe.Flush()
	failUntilZ(t, fe)
	for i := 0; i < 3; i++ {
		fe.Send(&pgproto3.Query{String: "select body from legacy_notes"})
		fe.Flush()
		noEnvelopes(t, failUntilZ(t, fe), fmt.Sprintf("query %d", i))
	}
}

// TestFailClosedOtherConnDDL: a policy table dropped and recreated on
// another connection gets a new OID. Writes through a session that has not
// noticed are still encrypted (resolved by name); its first read of the new
// table returns envelopes, but names a relation newer than its catalog, so
// the next statement re-reads the catalog and reads decrypt again.
func TestFailClosedOtherConnDDL(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	a := f.connect(t, pgx.QueryExecModeSimpleProtocol)
	var n int
	must(0, a.QueryRow(ctx, "select count(*) from legacy_notes").Scan(&n))
	if _, err := f.direct.Exec(ctx, "drop table legacy_notes; create table legacy_notes (id serial primary key, body text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "insert into legacy_notes (body) values ('PLAINSECRET-3')"); err != nil {
		t.Fatal(err)
	}
	f.failStored(t, "PLAINSECRET")
	var v string
	must(0, a.QueryRow(ctx, "select body from legacy_notes").Scan(&v)) // may still be an envelope
	if err := a.QueryRow(ctx, "select body from legacy_notes").Scan(&v); err != nil || v != "PLAINSECRET-3" {
		t.Fatalf("second read after the table was recreated: %q, %v", v, err)
	}
}

func TestFailClosedSCSOff(t *testing.T) {
	for _, same := range []bool{false, true} {
		f := newEncFixture(t, false)
		ctx := testCtx(t)
		a := f.connect(t, pgx.QueryExecModeSimpleProtocol)
		ins := "INSERT INTO legacy_notes (id, body) SELECT length('\\'), NULL --'), 'PLAINSECRET-4'\n"
		q := ins
		if same {
			q = "SET standard_conforming_strings = off; " + ins
		} else if _, err := a.Exec(ctx, "SET standard_conforming_strings = off"); err != nil {
			t.Fatal(err)
		}
		_, err := a.Exec(ctx, q)
		t.Logf("same=%v insert: %v", same, err)
		// In one Query PostgreSQL lexes every statement before it runs
		// the first, so the INSERT reads as the proxy read it: a NULL body.
		rows, _ := pgx.CollectRows(must(f.direct.Query(ctx, "select body from legacy_notes where body is not null")), pgx.RowTo[string])
		for _, v := range rows {
			if strings.Contains(v, "PLAINSECRET") || !cipher.LooksLikeEnvelope([]byte(v)) {
				t.Errorf("LEAK: stored %q", v)
			}
		}
	}
}
