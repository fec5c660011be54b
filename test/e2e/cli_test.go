package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// proxyBinary builds cmd/pgcrypt-proxy once per test run.
func proxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgcrypt-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pgcrypt-proxy")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/pgcrypt-proxy").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const cliKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

// proc is a running pgcrypt-proxy serve.
type proc struct {
	cmd           *exec.Cmd
	listen, admin string
	config        string // the config file's path
	stderr        *syncBuffer
	done          chan struct{}
	exitErr       error
}

// startBinary runs `pgcrypt-proxy serve` with a config made of extra YAML
// lines after listen/admin/keys, and waits until it accepts connections.
func startBinary(t *testing.T, upstream string, extra string) *proc {
	t.Helper()
	return startBinaryKeys(t, upstream, "keys: { active: v1, versions: { v1: { env: PGCRYPT_KEY_V1 } } }", []string{"PGCRYPT_KEY_V1=" + cliKey}, extra)
}

// startBinaryKeys is startBinary with another keys section and the
// environment it needs.
func startBinaryKeys(t *testing.T, upstream, keys string, env []string, extra string) *proc {
	t.Helper()
	bin := proxyBinary(t)
	p := &proc{
		listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		admin:  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	cfg := fmt.Sprintf("listen: %s\nadmin_listen: %s\nupstream: %s\nupstream_tls: { mode: disable }\n%s\n%s",
		p.listen, p.admin, upstream, keys, extra)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.config = path
	p.cmd = exec.Command(bin, "serve", "--config", path)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitErr = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("pgcrypt-proxy stderr:\n%s", p.stderr.String())
		}
	})
	waitFor(t, "the proxy to listen", func() bool {
		select {
		case <-p.done:
			t.Fatalf("pgcrypt-proxy exited: %v\n%s", p.exitErr, p.stderr.String())
		default:
		}
		c, err := net.Dial("tcp", p.admin)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return p
}

func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("pgcrypt-proxy did not exit within %v", within)
	}
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	if p.exitErr != nil {
		t.Fatal(p.exitErr)
	}
	return 0
}

// connect opens a pgx connection through the proxy process, as the
// superuser, to db, in exec mode, with extra key=value parameters; it is
// closed when the test ends.
func (p *proc) connect(t *testing.T, db string, mode pgx.QueryExecMode, params ...string) *pgx.Conn {
	t.Helper()
	_, port, _ := net.SplitHostPort(p.listen)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%s user=%s dbname=%s sslmode=disable %s", port, pg.Super.Name, db, strings.Join(params, " ")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	c, err := pgx.ConnectConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (p *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func runCLI(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(proxyBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), o.String(), e.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

// TestCLISigterm: SIGTERM (and SIGINT) stop new connections, let the open
// session finish its query, and exit 0 once it disconnects.
func TestCLISigterm(t *testing.T) {
	pg.Require(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startBinary(t, pg.Addr(), "")
			ctx := testCtx(t)
			dsn := fmt.Sprintf("postgres://%s@%s/postgres?sslmode=disable", pg.Super.Name, p.listen)
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			result := make(chan error, 1)
			go func() { _, err := conn.Exec(ctx, "select pg_sleep(0.5)"); result <- err }()
			time.Sleep(100 * time.Millisecond) // let the query reach the server
			p.cmd.Process.Signal(sig)
			waitFor(t, "readiness to fail", func() bool {
				code, _ := p.get(t, "/readyz")
				return code == http.StatusServiceUnavailable
			})
			if _, err := pgx.Connect(ctx, dsn); err == nil {
				t.Fatal("new connection accepted while draining")
			}
			if err := <-result; err != nil {
				t.Fatalf("query during drain: %v", err)
			}
			select {
			case <-p.done:
				t.Fatal("exited with a session still open")
			case <-time.After(100 * time.Millisecond):
			}
			conn.Close(ctx)
			if code := p.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("exit code %d\n%s", code, p.stderr.String())
			}
		})
	}
}

// TestCLIDrainTimeout: a session still open at shutdown_timeout is closed
// with 57P01 and the exit code says the drain was cut short.
func TestCLIDrainTimeout(t *testing.T) {
	pg.Require(t)
	p := startBinary(t, pg.Addr(), "shutdown_timeout: 300ms\n")
	ctx := testCtx(t)
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("postgres://%s@%s/postgres?sslmode=disable", pg.Super.Name, p.listen))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if !strings.Contains(p.stderr.String(), "closed 1 sessions at the drain timeout") {
		t.Fatalf("stderr does not explain the exit:\n%s", p.stderr.String())
	}
	_, err = conn.Exec(ctx, "select 1").ReadAll()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("got %v, want 57P01", err)
	}
}

// TestCLIAdminEndpoints checks /healthz, /readyz and /metrics, and that
// readiness follows the upstream.
func TestCLIAdminEndpoints(t *testing.T) {
	pg.Require(t)
	p := startBinary(t, pg.Addr(), "")
	if code, body := p.get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := p.get(t, "/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	conn, err := pgx.Connect(testCtx(t), fmt.Sprintf("postgres://%s@%s/postgres?sslmode=disable", pg.Super.Name, p.listen))
	if err != nil {
		t.Fatal(err)
	}
	conn.Exec(testCtx(t), "select 1")
	conn.Close(testCtx(t))
	_, metrics := p.get(t, "/metrics")
	for _, want := range []string{
		"pgcrypt_client_connections_total 1",
		"pgcrypt_client_connections_active",
		"pgcrypt_query_duration_seconds_count",
		`pgcrypt_bytes_total{direction="client_to_server"}`,
		`pgcrypt_errors_total{kind="upstream_lost"} 0`,
		"pgcrypt_upstream_connect_duration_seconds_count 1",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	down := startBinary(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)), "")
	if code, body := down.get(t, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "unreachable") {
		t.Fatalf("/readyz with PostgreSQL down = %d %q", code, body)
	}
	if code, _ := down.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz with PostgreSQL down = %d", code)
	}
}

// TestCLICommands covers version, keygen, usage and config errors.
func TestCLICommands(t *testing.T) {
	if code, out, _ := runCLI(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "pgcrypt-proxy ") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, out, _ := runCLI(t, nil, "keygen")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != 0 || err != nil || len(key) != 32 {
		t.Fatalf("keygen: %d %q (%d bytes, %v)", code, out, len(key), err)
	}
	if _, out2, _ := runCLI(t, nil, "keygen"); out2 == out {
		t.Fatal("keygen printed the same key twice")
	}
	code, out, _ = runCLI(t, nil, "keygen", "--id", "v2")
	if code != 0 || !strings.Contains(out, "v2: { env: PGCRYPT_KEY_V2 }") || !strings.Contains(out, "export PGCRYPT_KEY_V2=") {
		t.Fatalf("keygen --id: %d %q", code, out)
	}
	if code, _, errOut := runCLI(t, nil, "keygen", "--id", "v:2"); code != 2 || errOut == "" {
		t.Fatalf("keygen --id v:2: %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, nil, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCLI(t, nil); code != 2 {
		t.Fatalf("no command: exit %d, want 2", code)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("upstream: 127.0.0.1:5432\nlisten: nope\nkeys: { active: v1, versions: { v1: { env: PGCRYPT_KEY_V1 } } }\n"), 0o600)
	code, _, errOut := runCLI(t, []string{"PGCRYPT_KEY_V1=" + cliKey}, "serve", "--config", bad)
	if code != 1 || !strings.Contains(errOut, bad+`:2: listen is "nope"`) {
		t.Fatalf("bad config: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, []string{"PGCRYPT_CONFIG=" + bad, "PGCRYPT_KEY_V1=" + cliKey}, "serve")
	if code != 1 || !strings.Contains(errOut, bad) {
		t.Fatalf("PGCRYPT_CONFIG not used: %d %q", code, errOut)
	}
	code, out, errOut = runCLI(t, []string{"PGCRYPT_KEY_V1=" + cliKey}, "validate", "--config", "../../config.example.yaml")
	if code != 0 || !strings.Contains(out, "OK: 1 policy tables, 8 columns") {
		t.Fatalf("validate: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, []string{"PGCRYPT_KEY_V1=" + cliKey}, "validate", "--config", bad); code != 1 || !strings.Contains(errOut, bad+`:2: listen is "nope"`) {
		t.Fatalf("validate bad config: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, []string{"PGCRYPT_KEY_V1="}, "serve", "--config", "../../config.example.yaml")
	if code != 1 || !strings.Contains(errOut, "PGCRYPT_KEY_V1") || strings.Contains(errOut, cliKey) {
		t.Fatalf("missing key: %d %q", code, errOut)
	}
}
