package e2e

// More fail-open paths found in a second review: races between what the
// client pipelines and what the server has answered.

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// A: Query(COPY FROM STDIN) + Sync + CopyData pipelined in one write: the
// client-side loop sees copyInActive==0 (CopyInResponse not yet read), so the
// Sync clears copyIn and the CopyData goes out unencrypted.
func TestFailClosedPipelinedCopyPipelinedSync(t *testing.T) {
	for _, mid := range []string{"sync", "flush"} {
		t.Run(mid, func(t *testing.T) {
			f := newEncFixture(t, false)
			fe, _ := failRaw(t, f)
			fe.Send(&pgproto3.Query{String: "copy legacy_notes (body) from stdin"})
			if mid == "sync" {
				fe.Send(&pgproto3.Sync{})
			} else {
				fe.Send(&pgproto3.Flush{})
			}
			fe.Send(&pgproto3.CopyData{Data: []byte("PLAINSECRET-A\n")})
			fe.Send(&pgproto3.CopyDone{})
			fe.Flush()
			untilZ(t, fe)
			f.failStored(t, "PLAINSECRET")
		})
	}
}

func TestFailClosedPipelinedBindWaitsForever(t *testing.T) {
	f := newEncFixture(t, false)
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Parse{Query: "select 1/0"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Flush{})
	fe.Flush()
	untilError(t, fe)
	fe.Send(&pgproto3.Parse{Name: "s1", Query: "insert into legacy_notes (body) values ($1)"})
	fe.Send(&pgproto3.Query{String: "select 1"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("x")}})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if _, err := untilZ(t, fe); err != nil {
		t.Errorf("no ReadyForQuery: %v (HANG)", err)
	}
}

// D2: same, but without the Bind: the ignored Query leaves the Sync's
// expectation queued and shifts answers.
func TestFailClosedPipelinedIgnoredQueryDesync(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-body"); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Parse{Query: "select 1/0"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Query{String: "select 1"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	untilZ(t, fe)
	for i := 0; i < 2; i++ {
		fe.Send(&pgproto3.Query{String: "select body from legacy_notes"})
		fe.Flush()
		ms, err := untilZ(t, fe)
		noEnvelopes(t, ms, "after")
		if err != nil {
			t.Fatal(err)
		}
	}
}

// E: an SQL cursor name reused: the proxy keeps the first cursor's shape.
func TestFailClosedPipelinedCursorReuse(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-body"); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "begin; declare c cursor for select 'x'::text"})
	fe.Flush()
	untilZ(t, fe)
	fe.Send(&pgproto3.Execute{Portal: "c"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	untilZ(t, fe)
	fe.Send(&pgproto3.Query{String: "close c; declare c cursor for select body from legacy_notes"})
	fe.Flush()
	untilZ(t, fe)
	fe.Send(&pgproto3.Execute{Portal: "c"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	ms, _ := untilZ(t, fe)
	noEnvelopes(t, ms, "cursor reuse")
}

// F: ROLLBACK reverts a SET standard_conforming_strings made in the
// transaction; the proxy does not see the change coming.
func TestFailClosedPipelinedRollbackSCS(t *testing.T) {
	f := newEncFixture(t, false)
	fe, _ := failRaw(t, f)
	for _, q := range []string{"set standard_conforming_strings = off", "begin", "set standard_conforming_strings = on"} {
		fe.Send(&pgproto3.Query{String: q})
		fe.Flush()
		untilZ(t, fe)
	}
	fe.Send(&pgproto3.Query{String: "rollback"})
	fe.Send(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (id, body) SELECT length('\\'), NULL --'), 'PLAINSECRET-F'\n"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	untilZ(t, fe)
	untilZ(t, fe)
	rows, _ := pgx.CollectRows(must(f.direct.Query(context.Background(), "select coalesce(body,'<null>') from legacy_notes")), pgx.RowTo[string])
	for _, v := range rows {
		if strings.Contains(v, "PLAINSECRET") {
			t.Errorf("LEAK: stored %q", v)
		}
	}
	t.Logf("stored %q", rows)
}

// G: ROLLBACK reverts a search_path set in the transaction after the
// catalog was re-read under it.
func TestFailClosedPipelinedRollbackSearchPath(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	var ws string
	must(0, f.direct.QueryRow(ctx, "select id::text from workspaces limit 1").Scan(&ws))
	fe, _ := failRaw(t, f)
	for _, q := range []string{"begin", "set search_path = tenant, public", "select count(*) from clients", "rollback"} {
		fe.Send(&pgproto3.Query{String: q})
		fe.Flush()
		untilZ(t, fe)
	}
	fe.Send(&pgproto3.Query{String: "insert into clients (workspace_id, first_name, last_name) values ('" + ws + "', 'PLAINSECRET-G', 'x')"})
	fe.Flush()
	untilZ(t, fe)
	rows, _ := pgx.CollectRows(must(f.direct.Query(context.Background(), "select coalesce(first_name,'') from public.clients")), pgx.RowTo[string])
	for _, v := range rows {
		if strings.Contains(v, "PLAINSECRET") {
			t.Errorf("LEAK: public.clients.first_name %q", v)
		}
	}
	t.Logf("public.clients: %q", rows)
}

// A2: non-policy COPY with a pipelined Sync: stale expSync shifts answers.
func TestFailClosedPipelinedCopyPipelinedSyncDesync(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-body"); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "copy workspaces (name) from stdin"})
	fe.Send(&pgproto3.Sync{})
	fe.Send(&pgproto3.CopyData{Data: []byte("w2\n")})
	fe.Send(&pgproto3.CopyDone{})
	fe.Flush()
	untilZ(t, fe)
	for i := 0; i < 2; i++ {
		fe.Send(&pgproto3.Query{String: "select body from legacy_notes"})
		fe.Flush()
		ms, err := untilZ(t, fe)
		noEnvelopes(t, ms, "after")
		if err != nil {
			t.Fatal(err)
		}
	}
}
