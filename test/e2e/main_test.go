// Package e2e tests pgcrypt-proxy end to end: a real PostgreSQL started by
// internal/pgtest, the proxy in front of it, and real unchanged clients.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgtest"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

var pg *pgtest.Cluster

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunMain(m, pgtest.Options{}, &pg))
}

// strict reports whether a missing client tool must fail rather than skip
// (CI sets it, so a broken install cannot pass as a skip).
func strict() bool { return os.Getenv("PGCRYPT_TEST_STRICT") != "" }

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if strict() {
		t.Fatalf(format+" (PGCRYPT_TEST_STRICT is set)", args...)
	}
	t.Skipf(format, args...)
}

// testProxy is a proxy.Server running in this process in front of pg.
type testProxy struct {
	Addr    string
	Host    string
	Port    int
	Server  *proxy.Server
	Metrics *metrics.Metrics
	Reg     *prometheus.Registry
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProxy starts a proxy with opts (Upstream, Logger and Metrics filled
// in when empty) and stops it when the test ends. Its log is printed when
// the test fails.
func startProxy(t *testing.T, mod func(*proxy.Options)) *testProxy {
	t.Helper()
	return startProxyTB(t, mod)
}

// testEventLoops is the proxy's EventLoops for this run:
// PGCRYPT_TEST_EVENT_LOOPS=-1 runs the suite on the goroutine relay (the
// one TLS sessions always use), unset the default event loops.
func testEventLoops(t testing.TB) int {
	v := os.Getenv("PGCRYPT_TEST_EVENT_LOOPS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("PGCRYPT_TEST_EVENT_LOOPS=%q: %v", v, err)
	}
	return n
}

// testIdleRetire is the proxy's IdleRetire for this run:
// PGCRYPT_TEST_IDLE_RETIRE=1ms retires idle event-loop directions at almost
// every wait, so that every test also runs their restarts.
func testIdleRetire(t testing.TB) time.Duration {
	v := os.Getenv("PGCRYPT_TEST_IDLE_RETIRE")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("PGCRYPT_TEST_IDLE_RETIRE=%q: %v", v, err)
	}
	return d
}

// startProxyTB is startProxy for tests and benchmarks.
func startProxyTB(t testing.TB, mod func(*proxy.Options)) *testProxy {
	t.Helper()
	pg.Require(t)
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	opts := proxy.Options{
		Upstream:    pg.Addr(),
		UpstreamTLS: proxy.UpstreamTLS{Mode: proxy.TLSDisable},
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:     m,
		EventLoops:  testEventLoops(t),
		IdleRetire:  testIdleRetire(t),
	}
	if mod != nil {
		mod(&opts)
	}
	srv, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		<-done
		if t.Failed() {
			t.Logf("proxy log:\n%s", logs.String())
		}
	})
	addr := ln.Addr().(*net.TCPAddr)
	return &testProxy{Addr: addr.String(), Host: addr.IP.String(), Port: addr.Port, Server: srv, Metrics: m, Reg: reg, logs: logs}
}

// ConnString is a connection string for the proxy with the given role.
func (p *testProxy) ConnString(u pgtest.User, db string, params ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "host=%s port=%d user=%s dbname=%s", p.Host, p.Port, u.Name, db)
	if u.Password != "" {
		fmt.Fprintf(&b, " password=%s", u.Password)
	}
	hasSSL := false
	for _, p := range params {
		hasSSL = hasSSL || strings.HasPrefix(p, "sslmode=")
		b.WriteString(" " + p)
	}
	if !hasSSL {
		b.WriteString(" sslmode=disable")
	}
	return b.String()
}

// connect opens a pgx connection through the proxy, closed at cleanup.
func (p *testProxy) connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connecting through the proxy: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (p *testProxy) errorCount(kind string) float64 {
	return testutil.ToFloat64(p.Metrics.Errors.WithLabelValues(kind))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func counterValue(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// metricSum adds up every series of the named metric on the proxy's registry.
func (p *testProxy) metricSum(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := p.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
		}
	}
	return sum
}
