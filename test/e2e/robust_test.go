package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// rawSession opens a protocol-level connection through the proxy and
// completes startup as the trust superuser.
func rawSession(t *testing.T, addr string) (net.Conn, *pgproto3.Frontend) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": pg.Super.Name, "database": "postgres"}})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("startup: %v", err)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return c, fe
		}
	}
}

// expectFatal reads until an ErrorResponse and then the connection's end.
func expectFatal(t *testing.T, fe *pgproto3.Frontend, code string) {
	t.Helper()
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("connection ended (%v) before an ErrorResponse %s", err, code)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			if e.Code != code {
				t.Fatalf("ErrorResponse %s %q, want %s", e.Code, e.Message, code)
			}
			break
		}
	}
	if msg, err := fe.Receive(); err == nil {
		t.Fatalf("connection still open after the FATAL error: got %T", msg)
	}
}

// TestMalformedClientMessages: a broken message gets a protocol-violation
// error for that connection only.
func TestMalformedClientMessages(t *testing.T) {
	p := startProxy(t, func(o *proxy.Options) { o.MaxMessageBytes = 1 << 20 })
	bystander := p.connect(t, p.ConnString(pg.Super, "postgres"))
	tests := []struct {
		name string
		msg  []byte
	}{
		{"length below four", []byte{'Q', 0, 0, 0, 2}},
		{"negative length", []byte{'Q', 0x80, 0, 0, 0}},
		{"over max_message_bytes", []byte{'Q', 0, 0x20, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, fe := rawSession(t, p.Addr)
			before := p.errorCount("client_protocol")
			if _, err := c.Write(tc.msg); err != nil {
				t.Fatal(err)
			}
			expectFatal(t, fe, "08P01")
			if got := p.errorCount("client_protocol"); got != before+1 {
				t.Fatalf("client_protocol errors %v -> %v", before, got)
			}
			if err := bystander.Ping(testCtx(t)); err != nil {
				t.Fatalf("another session broke: %v", err)
			}
		})
	}
}

// TestGarbageStartup throws random and hostile startup packets at the
// proxy: each connection is closed, none hangs, and the proxy keeps serving.
func TestGarbageStartup(t *testing.T) {
	p := startProxy(t, nil)
	inputs := [][]byte{
		{0, 0, 0, 0},
		{0xff, 0xff, 0xff, 0xff, 0, 0},
		{0, 0, 0, 8, 0, 2, 0, 0},      // protocol 2.0
		{0, 1, 0, 0, 0, 3, 0, 0},      // over 10000 bytes
		{0, 0, 0, 9, 0, 3, 0, 0, 'u'}, // unterminated parameters
		{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 2}, // unknown cancel key
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	}
	for range 20 {
		b := make([]byte, 64)
		rand.Read(b)
		inputs = append(inputs, b)
	}
	for i, in := range inputs {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(in)
		if tcp, ok := c.(*net.TCPConn); ok {
			tcp.CloseWrite()
		}
		_, err = io.Copy(io.Discard, c)
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("input %d (%x): proxy kept the connection open", i, in[:min(len(in), 16)])
		}
	}
	conn := p.connect(t, p.ConnString(pg.Super, "postgres"))
	if err := conn.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// fakeUpstream is a hostile or failing "PostgreSQL": it completes startup,
// then misbehaves on the first Query as the client's application_name says:
// "close" drops the connection, "garbage" sends a message with an invalid
// length. Anything else gets an EmptyQueryResponse.
func fakeUpstream(t *testing.T) string {
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
			go func() {
				defer c.Close()
				be := pgproto3.NewBackend(c, c)
				msg, err := be.ReceiveStartupMessage()
				if err != nil {
					return
				}
				sm, ok := msg.(*pgproto3.StartupMessage)
				if !ok {
					return
				}
				mode := sm.Parameters["application_name"]
				be.Send(&pgproto3.AuthenticationOk{})
				be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{1, 2, 3, 4}})
				be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
				be.Flush()
				for {
					msg, err := be.Receive()
					if err != nil {
						return
					}
					if _, ok := msg.(*pgproto3.Query); !ok {
						continue
					}
					switch mode {
					case "close":
						return
					case "garbage":
						c.Write([]byte{'D', 0, 0, 0, 1})
						io.Copy(io.Discard, c)
						return
					}
					be.Send(&pgproto3.EmptyQueryResponse{})
					be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
					be.Flush()
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestUpstreamFailures: when PostgreSQL disappears or sends garbage
// mid-session, that client gets an 08xxx error, and new sessions work.
func TestUpstreamFailures(t *testing.T) {
	p := startProxy(t, func(o *proxy.Options) { o.Upstream = fakeUpstream(t) })
	tests := []struct {
		mode, code, kind string
	}{
		{"close", "08006", "upstream_lost"},
		{"garbage", "08P01", "upstream_protocol"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			ctx := testCtx(t)
			conn, err := pgconn.Connect(ctx, p.ConnString(pg.Super, "postgres", "application_name="+tc.mode))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			before := p.errorCount(tc.kind)
			_, err = conn.Exec(ctx, "select 1").ReadAll()
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
				t.Fatalf("got %v, want SQLSTATE %s", err, tc.code)
			}
			if got := p.errorCount(tc.kind); got != before+1 {
				t.Fatalf("%s errors %v -> %v", tc.kind, before, got)
			}
			healthy, err := pgconn.Connect(ctx, p.ConnString(pg.Super, "postgres", "application_name=ok"))
			if err != nil {
				t.Fatal(err)
			}
			defer healthy.Close(ctx)
			if _, err := healthy.Exec(ctx, "").ReadAll(); err != nil {
				t.Fatalf("new session after the failure: %v", err)
			}
		})
	}
}

// TestBackendTerminated: PostgreSQL's own FATAL reaches the client as is.
func TestBackendTerminated(t *testing.T) {
	p := startProxy(t, nil)
	ctx := testCtx(t)
	victim := p.connect(t, p.ConnString(pg.Super, "postgres"))
	direct, err := pgx.Connect(ctx, pg.SuperConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	if _, err := direct.Exec(ctx, "select pg_terminate_backend($1)", int(victim.PgConn().PID())); err != nil {
		t.Fatal(err)
	}
	_, err = victim.Exec(ctx, "select 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("got %v, want PostgreSQL's 57P01", err)
	}
	conn := p.connect(t, p.ConnString(pg.Super, "postgres"))
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIdleSessionOutlivesStartupTimeout: the startup deadline is lifted once
// the session is ready, so idle sessions live as long as their sockets.
func TestIdleSessionOutlivesStartupTimeout(t *testing.T) {
	p := startProxy(t, func(o *proxy.Options) { o.StartupTimeout = 200 * time.Millisecond })
	conn := p.connect(t, p.ConnString(pg.Super, "postgres"))
	time.Sleep(600 * time.Millisecond)
	if err := conn.Ping(testCtx(t)); err != nil {
		t.Fatalf("idle session died: %v", err)
	}
}

// TestFunctionCall sends the FunctionCall message (no driver uses it any
// more, but libpq's large-object API did).
func TestFunctionCall(t *testing.T) {
	p := startProxy(t, nil)
	_, fe := rawSession(t, p.Addr)
	ctx := testCtx(t)
	direct, err := pgx.Connect(ctx, pg.SuperConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	var oid uint32
	if err := direct.QueryRow(ctx, "select 'int4abs(int4)'::regprocedure::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	arg := make([]byte, 4)
	binary.BigEndian.PutUint32(arg, uint32(0xfffffff9)) // -7
	fe.Send(&pgproto3.FunctionCall{Function: oid, ArgFormatCodes: []uint16{1}, Arguments: [][]byte{arg}, ResultFormatCode: 1})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var result []byte
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.FunctionCallResponse:
			result = append([]byte(nil), m.Result...)
		case *pgproto3.ErrorResponse:
			t.Fatalf("function call: %s", m.Message)
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if !bytes.Equal(result, []byte{0, 0, 0, 7}) {
		t.Fatalf("int4abs(-7) = %x, want 00000007", result)
	}
}

// TestConnectDisconnectCycles opens and closes many sessions and checks
// that goroutines and heap return to where they were.
// PGCRYPT_TEST_CYCLES sets the count (default 500; 10000 for the record).
func TestConnectDisconnectCycles(t *testing.T) {
	cycles := 500
	if v, err := strconv.Atoi(os.Getenv("PGCRYPT_TEST_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	if testing.Short() {
		cycles = 50
	}
	p := startProxy(t, nil)
	cs := p.ConnString(pg.Super, "postgres")
	cycle := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := pgconn.Connect(ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "select 1").ReadAll(); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	for range 20 { // warm up pools and caches
		cycle()
	}
	settle := func() (int, uint64) {
		waitFor(t, "sessions to close", func() bool { return counterValue(p.Metrics.ConnectionsActive) == 0 })
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	// Heap is compared between the middle and the end: the first half
	// grows runtime caches (for pgconn's side too, which shares this
	// process); a leak keeps growing in the second.
	g0, h0 := settle()
	for range cycles / 2 {
		cycle()
	}
	_, hMid := settle()
	for range cycles - cycles/2 {
		cycle()
	}
	g1, h1 := settle()
	t.Logf("%d cycles: goroutines %d -> %d, heap %d KiB -> %d KiB (middle) -> %d KiB", cycles, g0, g1, h0>>10, hMid>>10, h1>>10)
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d over %d connections", g0, g1, cycles)
	}
	if h1 > hMid+1<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB over the second %d connections", hMid>>10, h1>>10, cycles-cycles/2)
	}
}

// TestStartupTimeoutFollowsServer: without a StartupTimeout of its own,
// the proxy lets an abandoned login go after PostgreSQL's
// authentication_timeout, which it learns with its catalog, rather than
// after a fixed minute.
func TestStartupTimeoutFollowsServer(t *testing.T) {
	pg.Require(t)
	if pg.External {
		t.Skip("changes the server's configuration")
	}
	ctx := testCtx(t)
	direct, err := pgx.Connect(ctx, pg.SuperConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	setTimeout := func(v string) {
		t.Helper()
		if _, err := direct.Exec(ctx, "alter system set authentication_timeout = '"+v+"'"); err != nil {
			t.Fatal(err)
		}
		if _, err := direct.Exec(ctx, "select pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the reload", func() bool {
			c, err := pgx.Connect(ctx, pg.SuperConnString("postgres"))
			if err != nil {
				return false
			}
			defer c.Close(ctx)
			var got string
			return c.QueryRow(ctx, "show authentication_timeout").Scan(&got) == nil && got == v
		})
	}
	setTimeout("3s")
	t.Cleanup(func() {
		direct.Exec(context.Background(), "alter system reset authentication_timeout")
		direct.Exec(context.Background(), "select pg_reload_conf()")
	})
	f := newEncFixture(t, false) // a policy: sessions read the catalog
	if err := f.connect(t, pgx.QueryExecModeExec).Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// A client that connects and says nothing.
	c, err := net.Dial("tcp", f.p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(40 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the proxy still held an abandoned login after 40 s")
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the abandoned login was let go after %v; PostgreSQL's authentication_timeout is 3 s", took)
	}
}
