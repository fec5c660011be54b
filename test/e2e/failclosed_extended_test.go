// Review round 8: the extended protocol's statement and portal tracking,
// result shapes, and parameter uses. The tests of a fixed bug failed before
// its fix.

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// a policy table recreated on another connection; a pgx
// (statement cache) session prepares a SELECT of it before its catalog
// notices. The statement's described shape is cached as "no policy
// columns", and the catalog is re-read only before a Query or Parse, which
// cached statements never send again: every later run returns envelopes,
// not just one query as docs/sql.md says.
func TestExtendedCachedStatementAfterTableRecreated(t *testing.T) {
	f := newEncFixtureFunc(t, seedColumns(), false, "", func(o *proxy.Options) { o.CatalogMaxAge = stressCatalogMaxAge })
	ctx := testCtx(t)
	a := f.connect(t, pgx.QueryExecModeCacheStatement)
	var n int
	must(0, a.QueryRow(ctx, "select count(*) from legacy_notes").Scan(&n))
	if _, err := f.direct.Exec(ctx, "drop table legacy_notes; create table legacy_notes (id serial primary key, body text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-3"); err != nil {
		t.Fatal(err)
	}
	f.failStored(t, "secret-3")
	for i := 0; i < 4; i++ {
		var v string
		if err := a.QueryRow(ctx, "select body from legacy_notes where id = $1", 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		t.Logf("read %d: %.40q", i, v)
		if i >= 1 && v != "secret-3" {
			t.Errorf("read %d after the table was recreated: %.40q (envelope: %v)", i, v, cipher.LooksLikeEnvelope([]byte(v)))
		}
	}
	// Past CatalogMaxAge: re-read before the Bind of the cached statement
	// (only Query and Parse used to trigger one).
	// trigger one.
	time.Sleep(stressCatalogMaxAge + 500*time.Millisecond)
	var v string
	if err := a.QueryRow(ctx, "select body from legacy_notes where id = $1", 1).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "secret-3" {
		t.Errorf("read after CatalogMaxAge: %.40q (envelope: %v)", v, cipher.LooksLikeEnvelope([]byte(v)))
	}
}

// an SQL PREPARE of a name that already exists fails on the server,
// but the proxy records the new text at once. An EXECUTE pipelined behind
// it (no Sync in between: simple Queries) is encrypted for the new
// statement, and the server runs the old one.
func TestFailClosedPipelinedRePrepare(t *testing.T) {
	f, w := newTapFixture(t, "")
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "prepare p(text) as insert into legacy_notes (body) values ($1)"})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Query{String: "prepare p(text) as select $1 from legacy_notes"})
	fe.Send(&pgproto3.Query{String: "execute p('PLAINSECRET-R8-3')"})
	fe.Flush()
	failUntilZ(t, fe)
	failUntilZ(t, fe)
	noLeak(t, f, w, "PLAINSECRET-R8-3")
}

// the same with the EXECUTE in an extended-protocol group.
func TestFailClosedPipelinedRePrepareExtended(t *testing.T) {
	f, w := newTapFixture(t, "")
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "prepare p(text) as insert into legacy_notes (body) values ($1)"})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Query{String: "prepare p(text) as select $1 from legacy_notes"})
	fe.Send(&pgproto3.Parse{Query: "execute p('PLAINSECRET-R8-3b')"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	failUntilZ(t, fe)
	noLeak(t, f, w, "PLAINSECRET-R8-3b")
}

// a Describe of a statement that PostgreSQL skipped (an earlier
// error in its pipeline) still marks the statement described; its later
// Executes get no Describe of their own and relay envelopes.
func TestExtendedSkippedDescribeStatement(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-body"); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Parse{Name: "s1", Query: "select body from legacy_notes"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Parse{Query: "select 1/0"})
	fe.Send(&pgproto3.Bind{})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "s1"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Bind{PreparedStatement: "s1"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	noEnvelopes(t, failUntilZ(t, fe), "after skipped describe")
}

// Execute of a portal that does not exist: the proxy's own hidden
// Describe fails first and its error is dropped; the client gets no error.
func TestExtendedOwnDescribeErrorShown(t *testing.T) {
	f := newEncFixture(t, false)
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Execute{Portal: "nope"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	ms := failUntilZ(t, fe)
	found := false
	for _, m := range ms {
		if _, ok := m.(*pgproto3.ErrorResponse); ok {
			found = true
		}
	}
	if !found {
		t.Errorf("Execute of a missing portal answered without an error: %v", ms)
	}
}

// a protocol-level statement "EXECUTE p('...')" has its literals
// encrypted (or not) at Parse for the SQL-level p of that moment. p
// deallocated and prepared again over a policy column: the statement's
// next Bind is relayed as it is, and the server runs the new p with the
// plaintext literal.
func TestFailClosedParsedExecuteOfRePrepared(t *testing.T) {
	f, w := newTapFixture(t, "")
	fe, _ := failRaw(t, f)
	q := func(sql string) {
		fe.Send(&pgproto3.Query{String: sql})
		fe.Flush()
		failUntilZ(t, fe)
	}
	q("prepare p(text) as select id from legacy_notes where id::text = $1")
	fe.Send(&pgproto3.Parse{Name: "s", Query: "execute p('PLAINSECRET-R8-6')"})
	fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "s"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	q("deallocate p")
	q("prepare p(text) as insert into legacy_notes (body) values ($1)")
	fe.Send(&pgproto3.Bind{PreparedStatement: "s"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	f.failStored(t, "PLAINSECRET")
	_ = w
}

// TestExtendedCachedFetchAndExecute: "FETCH 1 FROM c" or "EXECUTE p"
// prepared once (pgx statement cache: Parse + Describe S) kept the row
// shape of the cursor or statement the name held when it was described; a
// cursor or statement of that name made again over other columns was read
// through the stale shape, and the client got envelopes.
func TestExtendedCachedFetchAndExecute(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret-body"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ run, make1, drop, make2 string }{
		{"fetch 1 from c", "declare c cursor for select body, 'plain'::text from legacy_notes", "close c",
			"declare c cursor for select 'plain'::text, body from legacy_notes"},
		{"execute p", "prepare p as select body, 'plain'::text from legacy_notes", "deallocate p",
			"prepare p as select 'plain'::text, body from legacy_notes"},
	} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		run := func() []string {
			var a, b string
			if err := tx.QueryRow(ctx, c.run).Scan(&a, &b); err != nil {
				t.Fatalf("%s: %v", c.run, err)
			}
			return []string{a, b}
		}
		for _, q := range []string{c.make1, "-", c.drop, c.make2} {
			if q == "-" {
				if got := run(); got[0] != "secret-body" {
					t.Errorf("%s, first: %.40q", c.run, got)
				}
				continue
			}
			if _, err := tx.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if got := run(); got[0] != "plain" || got[1] != "secret-body" {
			t.Errorf("%s after %q: %.40q, want plain and secret-body", c.run, c.make2, got)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// parameter cases. Each either is refused, or sends no plaintext and
// returns no envelope as a value.
func TestFailClosedParameterUses(t *testing.T) {
	f, w := newTapFixture(t, "")
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	pc := conn.PgConn()
	ws := f.workspace(t)
	_ = ws
	cases := []struct {
		sql  string
		oids []uint32
		args []string
	}{
		{"insert into legacy_notes (id, body) values (length($1), $1)", nil, []string{"S1"}},
		{"select id from clients where email = $1 or notes = $1", nil, []string{"S2"}},
		{"select id from clients where email = $1 and length($1) > 0", nil, []string{"S3"}},
		{"select id from clients where email = $1 and $1 <> ''", nil, []string{"S4"}},
		{"insert into legacy_notes (body) values ($1) returning $1", nil, []string{"S5"}},
		{"insert into legacy_notes (body) values ($1) returning body, $1::text", nil, []string{"S6"}},
		{"insert into legacy_notes (body) select $1 where $1 like 'S%'", nil, []string{"S7"}},
		{"insert into legacy_notes (body) values ($1), (upper($1))", nil, []string{"S8"}},
		{"select id from clients where email = $1 union all select id from clients where notes = $1", nil, []string{"S9"}},
		{"with x as (select $1 as v) insert into legacy_notes (body) select v from x", nil, []string{"S10"}},
		{"insert into legacy_notes (body) values ($1) returning (select $1)", nil, []string{"S11"}},
		{"insert into legacy_notes (body) values ($1 collate \"C\")", nil, []string{"S12"}},
		{"insert into legacy_notes (body) values ($1::unknown)", nil, []string{"S13"}},
		{"insert into legacy_notes (body) select $1 from generate_series(1,1)", nil, []string{"S14"}},
		{"select id from clients where email = $1 and email = $1 || ''", nil, []string{"S15"}},
		{"insert into legacy_notes (body) values ($1)", []uint32{19}, []string{"S16"}},
		{"insert into legacy_notes (body) values ($1)", []uint32{18}, []string{"S17"}},
		{"insert into legacy_notes (body) values ($1)", []uint32{114}, []string{"S18"}},
		{"insert into legacy_notes (body) values ($1)", []uint32{17}, []string{"S19"}},
		{"insert into legacy_notes (body) values ($1)", []uint32{1042}, []string{"S20xx"}},
		{"select id from clients where email = any($1)", []uint32{1009}, []string{"{S21}"}},
		{"select id from clients where email in (select unnest($1::text[]))", nil, []string{"{S22}"}},
		{"select id from clients where email = any(array[$1]::text[])", nil, []string{"S23"}},
		{"select id from clients where email = any(string_to_array($1, ','))", nil, []string{"S24,x"}},
		{"insert into legacy_notes (body) values (nullif($1, ''))", nil, []string{"S25"}},
		{"select id from clients where email = $1 or $1 is null and notes = 'x'", nil, []string{"S26"}},
		{"update legacy_notes set body = $1 where body is distinct from $1", nil, []string{"S27"}},
		{"insert into legacy_notes (body) values ($1) on conflict (id) do update set body = excluded.body || $1", nil, []string{"S28"}},
		{"select count(*) from legacy_notes where $1 = body", nil, []string{"S29"}},
		{"select $1::text as x, id from clients where email = $1", nil, []string{"S30"}},
		{"select id from clients where email = $1 and notes = $1::text", nil, []string{"S31"}},
		{"insert into legacy_notes (body) values (case when $1 = 'a' then $1 else null end)", nil, []string{"S33"}},
		{"insert into legacy_notes (body) values (coalesce($1, $1))", nil, []string{"S34"}},
		{"update clients set first_name = $1 where email = $1", nil, []string{"S35"}},
		{"insert into clients (workspace_id, email, last_name) values ('00000000-0000-0000-0000-000000000000', $1, $1)", nil, []string{"S36"}},
		{"select id from clients where email = $1 union all select id from legacy_notes where body is not null and $1 = 'x'", nil, []string{"S37"}},
		{"select id from clients c where email = $1 and exists (select 1 from clients d where d.first_name = $1)", nil, []string{"S38"}},
		{"insert into legacy_notes (body) values ($1::text), ($1::varchar)", nil, []string{"S39"}},
		{"select id from clients where email = any($1) or notes = any($1)", nil, []string{"{S40}"}},
		{"select id from clients where email = any($1) and email = $2", []uint32{25, 25}, []string{"{S41}", "S41b"}},
	}
	for _, c := range cases {
		args := make([][]byte, len(c.args))
		for i, a := range c.args {
			args[i] = []byte("PLAINSECRET-" + a)
			if strings.HasPrefix(a, "{") {
				args[i] = []byte("{PLAINSECRET-" + a[1:])
			}
		}
		before := len(w.String())
		_, perr := pc.Prepare(ctx, "", c.sql, c.oids)
		var res *pgconnResult
		if perr == nil {
			r := pc.ExecPrepared(ctx, "", args, nil, nil).Read()
			res = &pgconnResult{rows: r.Rows, err: r.Err}
		}
		sent := w.String()[before:]
		leak := strings.Contains(sent, "PLAINSECRET")
		env := false
		if res != nil {
			for _, row := range res.rows {
				for _, v := range row {
					if cipher.LooksLikeEnvelope(v) {
						env = true
					}
				}
			}
		}
		var err error = perr
		if res != nil && err == nil {
			err = res.err
		}
		t.Logf("%-90s oids=%v err=%v leak=%v env=%v", c.sql, c.oids, err, leak, env)
		if leak || env {
			t.Errorf("FINDING %q: leak=%v envelope=%v", c.sql, leak, env)
		}
	}
	noLeak(t, f, w, "PLAINSECRET-NEVER")
}

type pgconnResult struct {
	rows [][][]byte
	err  error
}

func seedNotes(t *testing.T, f *encFixture, n int) {
	t.Helper()
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	for i := 1; i <= n; i++ {
		if _, err := conn.Exec(ctx, "insert into legacy_notes (id, body) values ($1, $2)", i, "secret-"+itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func rowsOf(ms []pgproto3.BackendMessage) (out []string, errs []string) {
	for _, m := range ms {
		switch m := m.(type) {
		case *pgproto3.DataRow:
			var parts []string
			for _, v := range m.Values {
				parts = append(parts, string(v))
			}
			out = append(out, strings.Join(parts, "|"))
		case *pgproto3.ErrorResponse:
			errs = append(errs, m.Code+" "+m.Message)
		}
	}
	return
}

func TestExtendedPortals(t *testing.T) {
	f := newEncFixture(t, false)
	seedNotes(t, f, 4)
	t.Run("interleaved suspended portals", func(t *testing.T) {
		fe, _ := failRaw(t, f)
		fe.Send(&pgproto3.Query{String: "begin"})
		fe.Flush()
		failUntilZ(t, fe)
		fe.Send(&pgproto3.Parse{Name: "s1", Query: "select body, id from legacy_notes order by id"})
		fe.Send(&pgproto3.Bind{DestinationPortal: "p1", PreparedStatement: "s1"})
		fe.Send(&pgproto3.Execute{Portal: "p1", MaxRows: 1})
		fe.Send(&pgproto3.Bind{DestinationPortal: "p2", PreparedStatement: "s1", ResultFormatCodes: []int16{1}})
		fe.Send(&pgproto3.Execute{Portal: "p2", MaxRows: 1})
		fe.Send(&pgproto3.Execute{Portal: "p1", MaxRows: 1})
		fe.Send(&pgproto3.Sync{})
		fe.Flush()
		ms := failUntilZ(t, fe)
		noEnvelopes(t, ms, "group 1")
		r, e := rowsOf(ms)
		t.Logf("rows %q errs %q", r, e)
		fe.Send(&pgproto3.Execute{Portal: "p2", MaxRows: 2})
		fe.Send(&pgproto3.Execute{Portal: "p1"})
		fe.Send(&pgproto3.Sync{})
		fe.Flush()
		ms = failUntilZ(t, fe)
		noEnvelopes(t, ms, "group 2")
		r, e = rowsOf(ms)
		t.Logf("rows %q errs %q", r, e)
		fe.Send(&pgproto3.Query{String: "select 1"})
		fe.Flush()
		failUntilZ(t, fe)
		fe.Send(&pgproto3.Execute{Portal: "p2"})
		fe.Send(&pgproto3.Sync{})
		fe.Flush()
		ms = failUntilZ(t, fe)
		noEnvelopes(t, ms, "group 3")
		r, e = rowsOf(ms)
		t.Logf("rows %q errs %q", r, e)
	})
	t.Run("mixed result formats", func(t *testing.T) {
		fe, _ := failRaw(t, f)
		fe.Send(&pgproto3.Parse{Query: "select id, body, body as b2 from legacy_notes where id = 1"})
		fe.Send(&pgproto3.Bind{ResultFormatCodes: []int16{1, 1, 0}})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		fe.Flush()
		ms := failUntilZ(t, fe)
		noEnvelopes(t, ms, "formats")
	})
	t.Run("cursors simple", func(t *testing.T) {
		fe, _ := failRaw(t, f)
		for _, q := range []string{
			"begin",
			"declare c scroll cursor for select id, body from legacy_notes order by id",
			"fetch absolute 2 from c",
			"fetch backward 1 from c",
			"move 1 in c",
			"fetch relative 0 from c",
			"fetch last from c",
			"fetch prior from c; fetch first from c",
			"fetch all from c",
			"fetch backward all from c",
			"declare h cursor with hold for select id, body from legacy_notes order by id",
			"commit",
			"fetch 2 from h",
			"fetch next from h",
		} {
			fe.Send(&pgproto3.Query{String: q})
			fe.Flush()
			ms := failUntilZ(t, fe)
			noEnvelopes(t, ms, q)
			r, e := rowsOf(ms)
			t.Logf("%s: rows %q errs %q", q, r, e)
		}
	})
	t.Run("cursors extended", func(t *testing.T) {
		fe, _ := failRaw(t, f)
		fe.Send(&pgproto3.Query{String: "begin; declare c scroll cursor for select id, body from legacy_notes order by id; declare h cursor with hold for select id, body from legacy_notes order by id"})
		fe.Flush()
		failUntilZ(t, fe)
		for _, q := range []string{"fetch absolute 2 from c", "fetch backward 1 from c", "fetch all from c", "commit", "fetch 1 from h", "fetch all from h"} {
			fe.Send(&pgproto3.Parse{Query: q})
			fe.Send(&pgproto3.Bind{})
			fe.Send(&pgproto3.Execute{})
			fe.Send(&pgproto3.Sync{})
			fe.Flush()
			ms := failUntilZ(t, fe)
			noEnvelopes(t, ms, q)
			r, e := rowsOf(ms)
			t.Logf("%s: rows %q errs %q", q, r, e)
		}
	})
	t.Run("refusal mid pipeline with flush", func(t *testing.T) {
		fe, _ := failRaw(t, f)
		fe.Send(&pgproto3.Parse{Name: "a", Query: "select body from legacy_notes where id = 1"})
		fe.Send(&pgproto3.Bind{PreparedStatement: "a"})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Parse{Query: "select id from legacy_notes order by body"})
		fe.Send(&pgproto3.Bind{})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Flush{})
		fe.Flush()
		untilError(t, fe)
		fe.Send(&pgproto3.Parse{Name: "b", Query: "insert into legacy_notes (id, body) values (99, $1)"})
		fe.Send(&pgproto3.Bind{PreparedStatement: "b", Parameters: [][]byte{[]byte("PLAINSECRET-flush")}})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		fe.Send(&pgproto3.Bind{PreparedStatement: "a"})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Parse{Query: "select body, id from legacy_notes where id = 2"})
		fe.Send(&pgproto3.Bind{})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		fe.Flush()
		ms := failUntilZ(t, fe)
		r, e := rowsOf(ms)
		t.Logf("rest of group 1: rows %q errs %q", r, e)
		ms = failUntilZ(t, fe)
		noEnvelopes(t, ms, "group 2")
		r, e = rowsOf(ms)
		t.Logf("group 2: rows %q errs %q", r, e)
		if len(r) != 2 || r[0] != "secret-1" || r[1] != "secret-2|2" {
			t.Errorf("group 2 rows %q", r)
		}
		f.failStored(t, "PLAINSECRET")
	})
}

// Cached "select *" across schema changes made on another connection.
func TestExtendedCachedSelectStarAfterDDL(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	a := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := a.Exec(ctx, "insert into legacy_notes (id, body) values ($1, $2)", 1, "secret-1"); err != nil {
		t.Fatal(err)
	}
	read := func(what string) {
		rows, err := a.Query(ctx, "select * from legacy_notes where id = $1", 1)
		if err != nil {
			t.Logf("%s: %v", what, err)
			return
		}
		vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		t.Logf("%s: %v %v", what, vals, err)
		for _, row := range vals {
			for _, v := range row {
				if s, ok := v.(string); ok && cipher.LooksLikeEnvelope([]byte(s)) {
					t.Errorf("%s: CIPHERTEXT %.40q", what, s)
				}
			}
		}
	}
	read("before")
	for i, ddl := range []string{
		"alter table legacy_notes add column note text",
		"alter table legacy_notes drop column note",
		"create table tmp as select * from legacy_notes; drop table legacy_notes; create table legacy_notes (body text, id int); insert into legacy_notes select body, id from tmp",
		"alter table legacy_notes rename column body to b0; alter table legacy_notes add column body text; update legacy_notes set body = b0; alter table legacy_notes drop column b0",
	} {
		if _, err := f.direct.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
		read("after ddl " + itoa(i))
		read("after ddl again " + itoa(i))
	}
}

// as R8-4, the Describe failing in an aborted transaction (25P02).
func TestExtendedFailedDescribeStatement(t *testing.T) {
	f := newEncFixture(t, false)
	seedNotes(t, f, 1)
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Parse{Name: "s1", Query: "select body from legacy_notes"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	for _, q := range []string{"begin", "select 1/0"} {
		fe.Send(&pgproto3.Query{String: q})
		fe.Flush()
		failUntilZ(t, fe)
	}
	fe.Send(&pgproto3.Describe{ObjectType: 'S', Name: "s1"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	_, e := rowsOf(failUntilZ(t, fe))
	t.Logf("describe in aborted tx: %q", e)
	fe.Send(&pgproto3.Query{String: "rollback"})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Bind{PreparedStatement: "s1"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	noEnvelopes(t, failUntilZ(t, fe), "after failed describe")
}
