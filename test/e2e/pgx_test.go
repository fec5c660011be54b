package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgtest"
)

var execModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeSimpleProtocol,
}

// TestPgxExecModes runs the same workload in every pgx QueryExecMode:
// parameters of several types, NULLs, multi-row results and an error that
// must leave the connection usable.
func TestPgxExecModes(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	for _, mode := range execModes {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := pgx.ParseConfig(p.ConnString(pg.Super, db))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DefaultQueryExecMode = mode
			ctx := testCtx(t)
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)

			var (
				n    int64
				s    string
				null *string
				ts   time.Time
			)
			want := time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC)
			err = conn.QueryRow(ctx, "select $1::int8 + 1, $2::text || '!', $3::text, $4::timestamptz",
				int64(41), "héllo 日本", nil, want).Scan(&n, &s, &null, &ts)
			if err != nil {
				t.Fatal(err)
			}
			if n != 42 || s != "héllo 日本!" || null != nil || !ts.Equal(want) {
				t.Fatalf("got %d %q %v %v", n, s, null, ts)
			}

			rows, err := conn.Query(ctx, "select g, repeat('x', g) from generate_series(1, $1::int) g", 500)
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			for rows.Next() {
				var g int32
				var x string
				if err := rows.Scan(&g, &x); err != nil {
					t.Fatal(err)
				}
				if len(x) != int(g) {
					t.Fatalf("row %d: %d bytes", g, len(x))
				}
				count++
			}
			if err := rows.Err(); err != nil || count != 500 {
				t.Fatalf("rows: %d, %v", count, err)
			}

			_, err = conn.Exec(ctx, "select 1/0")
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "22012" {
				t.Fatalf("division by zero: %v", err)
			}
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("connection unusable after an error: %v", err)
			}
		})
	}
}

// TestPipelineAndBatch sends many Parse/Bind/Execute before one Sync, with
// an error in the middle: the statements before it commit, the rest are
// skipped, and the connection recovers.
func TestPipelineAndBatch(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ctx := testCtx(t)
	conn := p.connect(t, p.ConnString(pg.Super, db))
	if _, err := conn.Exec(ctx, "create table t (id int primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	for i := range 200 {
		b.Queue("insert into t values ($1, $2)", i, strings.Repeat("v", i))
	}
	b.Queue("select count(*) from t")
	res := conn.SendBatch(ctx, b)
	for range 200 {
		if _, err := res.Exec(); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := res.QueryRow().Scan(&n); err != nil || n != 200 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if err := res.Close(); err != nil {
		t.Fatal(err)
	}

	// A raw pipeline with an error: pgconn's Pipeline shows Sync boundaries.
	pl := conn.PgConn().StartPipeline(ctx)
	pl.SendPrepare("ins", "insert into t values ($1, 'p')", nil)
	pl.SendQueryPrepared("ins", [][]byte{[]byte("1000")}, nil, nil)
	pl.SendQueryParams("insert into t values ($1, 'dup')", [][]byte{[]byte("1")}, nil, nil, nil) // duplicate key
	pl.SendQueryPrepared("ins", [][]byte{[]byte("1001")}, nil, nil)                              // skipped until Sync
	if err := pl.Sync(); err != nil {
		t.Fatal(err)
	}
	pl.SendQueryPrepared("ins", [][]byte{[]byte("1002")}, nil, nil)
	if err := pl.Sync(); err != nil {
		t.Fatal(err)
	}
	var sawDup bool
	for syncs := 0; syncs < 2; {
		r, err := pl.GetResults()
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				sawDup = true
				continue
			}
			t.Fatalf("pipeline: %v", err)
		}
		switch r := r.(type) {
		case *pgconn.ResultReader:
			r.Close()
		case *pgconn.PipelineSync:
			syncs++
		}
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	if !sawDup {
		t.Fatal("duplicate key error not reported")
	}
	var ids []int
	rows, _ := conn.Query(ctx, "select id from t where id >= 1000 order by id")
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	// The pipeline's implicit transaction rolled back 1000 with the error.
	if len(ids) != 1 || ids[0] != 1002 {
		t.Fatalf("ids after the failed pipeline = %v, want [1002]", ids)
	}
}

// TestCopy moves rows in both directions with COPY.
func TestCopy(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ctx := testCtx(t)
	conn := p.connect(t, p.ConnString(pg.Super, db))
	if _, err := conn.Exec(ctx, "create table c (id int, body text)"); err != nil {
		t.Fatal(err)
	}
	const rowsN = 20000
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"c"}, []string{"id", "body"},
		pgx.CopyFromSlice(rowsN, func(i int) ([]any, error) { return []any{i, "row " + itoa(i)}, nil }))
	if err != nil || n != rowsN {
		t.Fatalf("CopyFrom = %d, %v", n, err)
	}
	var buf bytes.Buffer
	tag, err := conn.PgConn().CopyTo(ctx, &buf, "copy (select * from c order by id) to stdout")
	if err != nil || tag.RowsAffected() != rowsN {
		t.Fatalf("CopyTo = %v, %v", tag, err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != rowsN || lines[7] != "7\trow 7" {
		t.Fatalf("COPY OUT: %d lines, line 7 %q", len(lines), lines[7])
	}
	// Text COPY FROM STDIN, as psql's \copy sends it.
	tag, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("1\tone\n2\ttwo\n"), "copy c from stdin")
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("CopyFrom text = %v, %v", tag, err)
	}
	// A COPY that fails mid-stream leaves the connection usable.
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("x\tbad\n"), "copy c from stdin")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "22P02" {
		t.Fatalf("bad COPY: %v", err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyNoticeParameterStatus checks the asynchronous messages.
func TestNotifyNoticeParameterStatus(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ctx := testCtx(t)

	var notices []string
	cfg, err := pgx.ParseConfig(p.ConnString(pg.Super, db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	listener, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(ctx)
	notifier := p.connect(t, p.ConnString(pg.Super, db))

	if _, err := listener.Exec(ctx, "listen events"); err != nil {
		t.Fatal(err)
	}
	if _, err := notifier.Exec(ctx, "select pg_notify('events', 'payload 1')"); err != nil {
		t.Fatal(err)
	}
	n, err := listener.WaitForNotification(ctx)
	if err != nil || n.Channel != "events" || n.Payload != "payload 1" {
		t.Fatalf("notification = %+v, %v", n, err)
	}

	if _, err := listener.Exec(ctx, "do $$ begin raise notice 'hello from plpgsql'; end $$"); err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 || notices[0] != "hello from plpgsql" {
		t.Fatalf("notices = %q", notices)
	}

	if _, err := listener.Exec(ctx, "set application_name = 'through-the-proxy'"); err != nil {
		t.Fatal(err)
	}
	if got := listener.PgConn().ParameterStatus("application_name"); got != "through-the-proxy" {
		t.Fatalf("application_name ParameterStatus = %q", got)
	}
}

// TestLargeValue round-trips a 64 MiB bytea, which crosses the proxy as
// streamed messages in both directions.
func TestLargeValue(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB round trip skipped in -short mode")
	}
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ctx := testCtx(t)
	conn := p.connect(t, p.ConnString(pg.Super, db))
	big := make([]byte, 64<<20)
	rand.Read(big)
	if _, err := conn.Exec(ctx, "create table blobs (b bytea)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "insert into blobs values ($1)", big); err != nil {
		t.Fatal(err)
	}
	var back []byte
	if err := conn.QueryRow(ctx, "select b from blobs").Scan(&back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, big) {
		t.Fatal("64 MiB bytea changed on the way")
	}
	// Text format (hex, 128 MiB on the wire) through the simple protocol.
	var size int
	if err := conn.QueryRow(ctx, "select length(b) from blobs", pgx.QueryExecModeSimpleProtocol).Scan(&size); err != nil || size != len(big) {
		t.Fatalf("length = %d, %v", size, err)
	}
}

// TestAuthMethods logs in through the proxy with every method PostgreSQL
// offers over TCP; wrong passwords fail with the server's own error.
func TestAuthMethods(t *testing.T) {
	p := startProxy(t, nil)
	for _, key := range []string{pgtest.UserTrust, pgtest.UserPassword, pgtest.UserMD5, pgtest.UserSCRAM} {
		t.Run(key, func(t *testing.T) {
			u := pg.User(t, key)
			ctx := testCtx(t)
			conn := p.connect(t, p.ConnString(u, "postgres"))
			var who string
			if err := conn.QueryRow(ctx, "select current_user").Scan(&who); err != nil || who != u.Name {
				t.Fatalf("current_user = %q, %v", who, err)
			}
			if u.Method == "trust" {
				return
			}
			bad := u
			bad.Password = "wrong-password"
			before := p.errorCount("auth_failed")
			_, err := pgx.Connect(ctx, p.ConnString(bad, "postgres"))
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
				t.Fatalf("wrong password: %v, want SQLSTATE 28P01", err)
			}
			if got := p.errorCount("auth_failed"); got != before+1 {
				t.Fatalf("auth_failed went from %v to %v", before, got)
			}
		})
	}
}

// TestCancelRequest cancels a running query through the proxy: pgx sends
// the CancelRequest on a new connection to the proxy when the context ends.
func TestCancelRequest(t *testing.T) {
	p := startProxy(t, nil)
	conn := p.connect(t, p.ConnString(pg.Super, "postgres"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := conn.Exec(ctx, "select pg_sleep(30)")
	if err == nil {
		t.Fatal("pg_sleep(30) finished despite the cancel")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("cancel took %v", took)
	}
	waitFor(t, "the cancel request to be forwarded", func() bool {
		return p.Metrics != nil && counterValue(p.Metrics.CancelRequests) == 1
	})
	// The canceled backend reported 57014 to pgx, which then closed the
	// connection; a new one works.
	conn2 := p.connect(t, p.ConnString(pg.Super, "postgres"))
	if err := conn2.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestCancelReachesRightBackend runs two sleeping sessions and cancels one
// with pgconn's CancelRequest: only that one stops.
func TestCancelReachesRightBackend(t *testing.T) {
	p := startProxy(t, nil)
	ctx := testCtx(t)
	a := p.connect(t, p.ConnString(pg.Super, "postgres"))
	b := p.connect(t, p.ConnString(pg.Super, "postgres"))
	errA := make(chan error, 1)
	errB := make(chan error, 1)
	go func() { _, err := a.Exec(ctx, "select pg_sleep(2)"); errA <- err }()
	go func() { _, err := b.Exec(ctx, "select pg_sleep(2)"); errB <- err }()
	direct, err := pgx.Connect(ctx, pg.SuperConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	waitFor(t, "both queries to run", func() bool {
		var n int
		direct.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(2)' and state = 'active'").Scan(&n)
		return n == 2
	})
	if err := a.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if err := <-errA; !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("canceled session: %v, want 57014", err)
	}
	if err := <-errB; err != nil {
		t.Fatalf("other session was disturbed: %v", err)
	}
	// The key the client got is not PostgreSQL's: the proxy keeps that one.
	var pid uint32
	if err := a.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if pid != a.PgConn().PID() {
		t.Fatalf("BackendKeyData pid %d differs from pg_backend_pid() %d", a.PgConn().PID(), pid)
	}
}
