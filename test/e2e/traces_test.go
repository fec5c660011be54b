package e2e

// Recording the tracker's wire traces (internal/track/testdata): real
// clients run a short session each through the proxy with the seed policy,
// and a tap between the proxy and PostgreSQL writes what crosses it, from
// the server's first ReadyForQuery on, in pgproto3's trace format. The
// tracker's replay test then feeds each trace to the tracker.
//
//	go test ./test/e2e -run TestRecordTraces -record-traces

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

var recordTraces = flag.Bool("record-traces", false, "re-record internal/track/testdata/*.trace from real clients through the proxy")

// traceRecorder turns the bytes of one upstream connection, both
// directions in the order the tap saw them, into trace lines.
type traceRecorder struct {
	mu      sync.Mutex
	out     bytes.Buffer
	started bool   // the server's first ReadyForQuery has passed
	cancel  bool   // the connection is a cancel request: nothing to trace
	sawHead bool   // the client's untyped startup packet has been read
	cbuf    []byte // undecoded bytes, client side
	sbuf    []byte
	cfeed   feedReader
	sfeed   feedReader
	be      *pgproto3.Backend  // decodes (and traces) the client's messages
	fe      *pgproto3.Frontend // decodes (and traces) the server's
}

// feedReader hands pgproto3 one whole message at a time.
type feedReader struct{ b []byte }

func (r *feedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func newTraceRecorder() *traceRecorder {
	r := &traceRecorder{}
	r.be = pgproto3.NewBackend(&r.cfeed, io.Discard)
	r.fe = pgproto3.NewFrontend(&r.sfeed, io.Discard)
	opts := pgproto3.TracerOptions{SuppressTimestamps: true, RegressMode: true}
	r.be.Trace(&r.out, opts)
	r.fe.Trace(&r.out, opts)
	return r
}

type traceSide struct {
	r      *traceRecorder
	server bool
}

func (s traceSide) Write(p []byte) (int, error) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.server {
		r.sbuf = append(r.sbuf, p...)
	} else {
		r.cbuf = append(r.cbuf, p...)
	}
	r.drain()
	return len(p), nil
}

// drain decodes every whole message buffered, client side first: the tap
// saw those bytes before PostgreSQL could answer them.
func (r *traceRecorder) drain() {
	if !r.sawHead && len(r.cbuf) >= 8 {
		n := int(binary.BigEndian.Uint32(r.cbuf))
		if len(r.cbuf) < n {
			return
		}
		r.cancel = binary.BigEndian.Uint32(r.cbuf[4:]) == 80877102
		r.cbuf, r.sawHead = r.cbuf[n:], true
	}
	for {
		m, rest, ok := nextMessage(r.cbuf)
		if !ok {
			break
		}
		r.cbuf = rest
		if r.started {
			r.cfeed.b = m
			if _, err := r.be.Receive(); err != nil {
				fmt.Fprintf(&r.out, "F\tundecodable %q: %v\n", m[0], err)
			}
		}
	}
	for {
		m, rest, ok := nextMessage(r.sbuf)
		if !ok {
			break
		}
		r.sbuf = rest
		if !r.started {
			r.started = m[0] == 'Z'
			continue
		}
		r.sfeed.b = m
		if _, err := r.fe.Receive(); err != nil {
			fmt.Fprintf(&r.out, "B\tundecodable %q: %v\n", m[0], err)
		}
	}
}

func nextMessage(b []byte) (msg, rest []byte, ok bool) {
	if len(b) < 5 {
		return nil, b, false
	}
	n := 1 + int(binary.BigEndian.Uint32(b[1:]))
	if len(b) < n {
		return nil, b, false
	}
	return b[:n], b[n:], true
}

// traceTap is a tap between the proxy and PostgreSQL that records each
// connection.
type traceTap struct {
	mu   sync.Mutex
	recs []*traceRecorder
	wg   sync.WaitGroup
}

func startTraceTap(t *testing.T) (string, *traceTap) {
	tap := &traceTap{}
	addr := relayToServer(t, func(c, up net.Conn) {
		r := newTraceRecorder()
		tap.mu.Lock()
		tap.recs = append(tap.recs, r)
		tap.mu.Unlock()
		tap.wg.Add(2)
		go func() { defer tap.wg.Done(); io.Copy(up, io.TeeReader(c, traceSide{r, false})); up.Close() }()
		go func() { defer tap.wg.Done(); io.Copy(c, io.TeeReader(up, traceSide{r, true})); c.Close() }()
	})
	return addr, tap
}

// take returns the traces of the connections that have ended, and forgets
// them.
func (tap *traceTap) take(t *testing.T) [][]byte {
	t.Helper()
	done := make(chan struct{})
	go func() { tap.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream connections still open")
	}
	tap.mu.Lock()
	defer tap.mu.Unlock()
	var out [][]byte
	for _, r := range tap.recs {
		if !r.cancel && r.out.Len() > 0 {
			out = append(out, bytes.Clone(r.out.Bytes()))
		}
	}
	tap.recs = nil
	return out
}

func TestRecordTraces(t *testing.T) {
	if !*recordTraces {
		t.Skip("re-records the tracker's traces: go test ./test/e2e -run TestRecordTraces -record-traces")
	}
	addr, tap := startTraceTap(t)
	f := newEncFixtureFunc(t, seedColumns(), false, "", func(o *proxy.Options) { o.Upstream = addr })
	dir := filepath.Join("..", "..", "internal", "track", "testdata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ws := f.workspace(t)
	for _, c := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"pgx", func(t *testing.T) { traceWithPgx(t, f, ws) }},
		{"libpq", func(t *testing.T) { traceWithLibPQ(t, f, ws) }},
		{"psql", func(t *testing.T) { traceWithPsql(t, f, ws) }},
		{"node-postgres", func(t *testing.T) { traceWithNode(t, f) }},
	} {
		c.run(t)
		for i, tr := range tap.take(t) {
			name := filepath.Join(dir, fmt.Sprintf("%s-%d.trace", c.name, i+1))
			if err := os.WriteFile(name, tr, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", name, len(tr))
		}
	}
}

// traceWithPgx: statements cached and described, a pipeline with an
// error in the middle, binary COPY in, a cancel, a transaction.
func traceWithPgx(t *testing.T, f *encFixture, ws string) {
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	insert := "insert into clients (workspace_id, first_name, last_name, email) values ($1, $2, $3, $4)"
	for i := range 3 {
		if _, err := conn.Exec(ctx, insert, ws, "Ann", "Lee", fmt.Sprintf("ann%d@x.org", i)); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from clients where email = $1", "ann1@x.org").Scan(&n); err != nil || n != 1 {
		t.Fatalf("lookup: %d %v", n, err)
	}
	b := &pgx.Batch{}
	b.Queue("select first_name from clients where email = $1", "ann0@x.org")
	b.Queue("select 1/0")
	b.Queue("select last_name from clients")
	if err := conn.SendBatch(ctx, b).Close(); err == nil {
		t.Fatal("the batch's division by zero did not fail")
	}
	rows := [][]any{{ws, "Bo", "Li", "bo@x.org"}, {ws, "Cy", "Ng", "cy@x.org"}}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"clients"}, []string{"workspace_id", "first_name", "last_name", "email"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := conn.Exec(cctx, "select pg_sleep(5)")
	cancel()
	if err == nil {
		t.Fatal("pg_sleep was not canceled")
	}
	conn.Close(ctx)
	conn = f.connect(t, pgx.QueryExecModeSimpleProtocol)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "update clients set phone = $1 where email = $2", "555", "bo@x.org"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// traceWithLibPQ: unnamed statements with parameters, an error, COPY in
// prepared by its text, a prepared statement.
func traceWithLibPQ(t *testing.T, f *encFixture, ws string) {
	db, err := sql.Open("postgres", f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := testCtx(t)
	if _, err := db.ExecContext(ctx, "insert into clients (workspace_id, first_name, last_name, email) values ($1, $2, $3, $4)", ws, "Di", "Ho", "di@x.org"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := db.QueryRowContext(ctx, "select first_name from clients where email = $1", "di@x.org").Scan(&name); err != nil || name != "Di" {
		t.Fatalf("lookup: %q %v", name, err)
	}
	if _, err := db.ExecContext(ctx, "select 1/0"); err == nil {
		t.Fatal("division by zero did not fail")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tx.Prepare("COPY clients (workspace_id, first_name, last_name, email) FROM STDIN")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][]any{{ws, "Ed", "Wu", "ed@x.org"}, {ws, "Fay", "Xu", "fay@x.org"}} {
		if _, err := st.Exec(r...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Exec(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ps, err := db.PrepareContext(ctx, "select last_name from clients where email = $1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"ed@x.org", "fay@x.org"} {
		if err := ps.QueryRowContext(ctx, e).Scan(&name); err != nil {
			t.Fatal(err)
		}
	}
	ps.Close()
}

// traceWithPsql: a multi-statement query with an error, \copy in and out.
func traceWithPsql(t *testing.T, f *encFixture, ws string) {
	ps := newPsql(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.tsv")
	if err := os.WriteFile(in, []byte(ws+"\tGus\tKo\tgus@x.org\n"+ws+"\tHal\tMa\thal@x.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := f.psqlRun(t, ps, dir,
		"-c", "select first_name, email from clients order by email limit 2; select 1",
		"-c", `\copy clients (workspace_id, first_name, last_name, email) from 'in.tsv'`,
		"-c", `\copy (select first_name, email from clients where email = 'gus@x.org') to stdout`,
		"-c", "select 1; select 1/0; select 2",
	)
	if r.exit == 0 {
		t.Fatalf("psql: the division by zero did not fail: %v", r)
	}
}

// traceWithNode runs node-postgres through encrypt.js: parameters written and read back.
func traceWithNode(t *testing.T, f *encFixture) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node not found on PATH")
	}
	mustRun(t, toolEnv(t, "PGCRYPT_NODE_DSN="+f.p.nodeURL(f.db)), nodeDir(t), "", node, "encrypt.js")
}
