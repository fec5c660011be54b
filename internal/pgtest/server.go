package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxStartAttempts bounds retries of a server start that lost its port.
const maxStartAttempts = 5

// serverProcess is a running postmaster, child of the test binary.
type serverProcess struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// stop makes an immediate shutdown, as pg_ctl stop -m immediate, and waits
// for the postmaster to exit, killing it if it takes too long.
func (p *serverProcess) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := immediateShutdown(p.cmd.Process); err != nil {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("pgtest: postgres (pid %d) ignored the immediate shutdown and was killed", p.cmd.Process.Pid)
}

// exited reports whether the process has exited.
func (p *serverProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// lookupIDs returns the uid and gid of an OS user.
func lookupIDs(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("pgtest: %w", err)
	}
	uid64, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("pgtest: uid of %s: %w", name, err)
	}
	gid64, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("pgtest: gid of %s: %w", name, err)
	}
	return uint32(uid64), uint32(gid64), nil
}

// startLocal creates, configures and starts a cluster in c.Dir.
func (c *Cluster) startLocal(ctx context.Context, opts Options) error {
	c.DataDir = filepath.Join(c.Dir, "data")
	c.LogFile = filepath.Join(c.Dir, "postgres.log")
	c.Host = "127.0.0.1"
	c.Super = User{Name: "postgres", Method: "trust"}
	c.adminDB = "postgres"
	if c.runAs != nil {
		if err := os.Chown(c.Dir, int(c.runAs.uid), int(c.runAs.gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := c.createDataDir(ctx, opts.NoInitdbCache); err != nil {
		return err
	}
	v6 := ipv6Loopback()
	if err := c.configure(opts.Settings, v6); err != nil {
		return err
	}
	if err := c.startServer(ctx, v6); err != nil {
		return err
	}
	c.ServerTLS = true
	return c.bootstrap(ctx)
}

// childEnv is the environment of initdb and postgres: the test's, without
// libpq and locale variables.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// command prepares one of the PostgreSQL binaries, run as c.runAs.
func (c *Cluster) command(server bool, name string, args ...string) (*exec.Cmd, error) {
	attr, err := sysProcAttr(c.runAs, server)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	cmd := exec.Command(filepath.Join(c.bin.dir, name), args...)
	cmd.Dir = c.Dir // the test's working directory may be closed to postgres
	cmd.Env = childEnv()
	cmd.SysProcAttr = attr
	return cmd, nil
}

// initdb creates the data directory.
func (c *Cluster) initdb(ctx context.Context) error {
	cmd, err := c.command(false, "initdb", append([]string{"--pgdata=" + c.DataDir}, initdbArgs()...)...)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w\n%s", cmd, err, out.Bytes())
	}
	return nil
}

// configure writes the server certificate, pg_hba.conf and the settings.
func (c *Cluster) configure(extra map[string]string, v6 bool) error {
	certPEM, keyPEM, err := issueCert(c.CACert, c.CAKey, defaultCertHosts())
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(c.DataDir, "server.crt"), certPEM, 0o644, c.runAs); err != nil {
		return err
	}
	// PostgreSQL insists on a key that only its owner can read.
	if err := writeFile(filepath.Join(c.DataDir, "server.key"), keyPEM, 0o600, c.runAs); err != nil {
		return err
	}

	c.Users = map[string]User{
		UserTrust:    {Name: "pgtest_trust", Password: randomHex(12), Method: "trust"},
		UserPassword: {Name: "pgtest_password", Password: randomHex(12), Method: "password"},
		UserMD5:      {Name: "pgtest_md5", Password: randomHex(12), Method: "md5"},
		UserSCRAM:    {Name: "pgtest_scram", Password: randomHex(12), Method: "scram-sha-256"},
		UserSSLOnly:  {Name: "pgtest_sslonly", Password: randomHex(12), Method: "scram-sha-256", SSLOnly: true},
		UserCert:     {Name: "pgtest_cert", Password: randomHex(12), Method: "cert", SSLOnly: true},
	}
	if err := writeFile(filepath.Join(c.DataDir, "pg_hba.conf"), []byte(c.hbaConf()), 0o600, c.runAs); err != nil {
		return err
	}

	listen := "127.0.0.1"
	if v6 {
		listen += ",::1"
	}
	settings := [][2]string{
		{"listen_addresses", listen},
		{"unix_socket_directories", ""},
		{"max_connections", "200"},
		{"shared_buffers", "32MB"},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"wal_level", "minimal"},
		{"max_wal_senders", "0"},
		{"jit", "off"},
		{"ssl", "on"},
		{"ssl_cert_file", "server.crt"},
		{"ssl_key_file", "server.key"},
		{"ssl_ca_file", c.CAFile}, // client certificates (pgtest_cert) chain to the cluster's CA
		{"password_encryption", "scram-sha-256"},
		{"timezone", "UTC"},
		{"log_timezone", "UTC"},
		{"log_line_prefix", "%m [%p] %q%u@%d "},
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		settings = append(settings, [2]string{k, extra[k]})
	}
	var b strings.Builder
	b.WriteString("\n# Added by pgtest; later lines win.\n")
	for _, s := range settings {
		fmt.Fprintf(&b, "%s = '%s'\n", s[0], strings.ReplaceAll(s[1], "'", "''"))
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		_ = f.Close()
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// hbaConf returns pg_hba.conf: each role of c.Users with its method over
// TCP, the superuser with trust, any other role with scram-sha-256.
func (c *Cluster) hbaConf() string {
	var b strings.Builder
	b.WriteString("# Generated by pgtest. Unix sockets are disabled.\n")
	line := func(typ, user, addr, method string) {
		fmt.Fprintf(&b, "%-10s %-4s %-16s %-13s %s\n", typ, "all", user, addr, method)
	}
	addrs := []string{"127.0.0.1/32", "::1/128"}
	for _, u := range c.sortedUsers() {
		if u.SSLOnly {
			for _, a := range addrs {
				line("hostssl", u.Name, a, u.Method)
			}
			line("hostnossl", u.Name, "all", "reject")
		}
	}
	for _, a := range addrs {
		line("host", "postgres", a, "trust")
	}
	for _, u := range c.sortedUsers() {
		if !u.SSLOnly {
			for _, a := range addrs {
				line("host", u.Name, a, u.Method)
			}
		}
	}
	for _, a := range addrs {
		line("host", "all", a, "scram-sha-256")
	}
	return b.String()
}

// ipv6Loopback reports whether the host can listen on ::1.
func ipv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// freePort returns a TCP port that is free on 127.0.0.1 (and on ::1 when
// v6), as far as one can tell before the server binds it.
func freePort(v6 bool) (int, error) {
	var lastErr error
	for range 10 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pgtest: find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if v6 {
			l6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
			if err != nil {
				lastErr = err
				_ = l.Close()
				continue
			}
			_ = l6.Close()
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("pgtest: find a port free on both 127.0.0.1 and ::1: %w", lastErr)
}

// retryableError is a start failure that another port may fix.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// startServer starts postgres on a free port, retrying with another port
// when the chosen one was taken in the meantime.
func (c *Cluster) startServer(ctx context.Context, v6 bool) error {
	for attempt := 1; ; attempt++ {
		port, err := freePort(v6)
		if err != nil {
			return err
		}
		err = c.startOnce(ctx, port, v6, attempt)
		var re *retryableError
		if err == nil || attempt == maxStartAttempts || !errors.As(err, &re) || ctx.Err() != nil {
			return err
		}
	}
}

// startOnce starts postgres on port and waits until it accepts
// connections.
func (c *Cluster) startOnce(ctx context.Context, port int, v6 bool, attempt int) error {
	// cluster_name identifies this server: whatever answers on the port
	// must report it.
	name := "pgtest-" + randomHex(6)
	cmd, err := c.command(true, "postgres", "-D", c.DataDir, "-p", strconv.Itoa(port), "-c", "cluster_name="+name)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)
	fmt.Fprintf(logf, "pgtest: attempt %d: %s\n", attempt, cmd)
	cmd.Stdout, cmd.Stderr = logf, logf
	err = cmd.Start()
	_ = logf.Close() // the server has its own descriptor
	if err != nil {
		return fmt.Errorf("pgtest: start %s: %w", cmd, err)
	}
	p := &serverProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	c.server, c.Port = p, port

	err = c.waitReady(ctx, p, name, v6, logStart)
	if err == nil {
		if v6 {
			c.HostV6 = "::1"
		}
		return nil
	}
	_ = p.stop()
	c.server = nil
	tail := c.logTail(logStart, 40)
	err = fmt.Errorf("%w\nlast lines of server log %s:\n%s", err, c.LogFile, tail)
	var re *retryableError
	if errors.As(err, &re) || strings.Contains(tail, "Address already in use") {
		return &retryableError{err}
	}
	return err
}

// waitReady waits until the server named name answers on 127.0.0.1, then
// checks that it answers on ::1 too when v6. It fails when the process
// exits, when the server could not listen on an address (the log says so
// after logStart), or when ctx ends.
func (c *Cluster) waitReady(ctx context.Context, p *serverProcess, name string, v6 bool, logStart int64) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
	// A local server answers in milliseconds, but something else may hold
	// the port and never answer: start with short tries.
	timeout := 250 * time.Millisecond
	var lastErr error
	for {
		if p.exited() {
			return fmt.Errorf("pgtest: postgres exited during startup: %v", p.waitErr)
		}
		if strings.Contains(c.logTail(logStart, 100), "could not create listen socket") {
			// It listens on some addresses but not all: another process
			// took the port.
			return &retryableError{errors.New("pgtest: postgres could not listen on all addresses")}
		}
		tried := time.Now()
		got, err := clusterName(ctx, buildConnString(addr, "disable", "postgres", "", "postgres", nil), timeout)
		if time.Since(tried) >= timeout {
			timeout = min(2*timeout, 5*time.Second) // perhaps just slow
		}
		if err == nil {
			if got != name {
				return &retryableError{fmt.Errorf("pgtest: another server (cluster_name %q) answers on %s", got, addr)}
			}
			break
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready on %s: %w (last error: %v)", addr, ctx.Err(), lastErr)
		case <-p.done:
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !v6 {
		return nil
	}
	// The postmaster opens all its sockets before it accepts connections,
	// so one try settles whether ::1 is ours.
	addr6 := net.JoinHostPort("::1", strconv.Itoa(c.Port))
	got, err := clusterName(ctx, buildConnString(addr6, "disable", "postgres", "", "postgres", nil), 5*time.Second)
	switch {
	case err != nil:
		return &retryableError{fmt.Errorf("pgtest: postgres ready on %s but not on %s: %w", addr, addr6, err)}
	case got != name:
		return &retryableError{fmt.Errorf("pgtest: another server (cluster_name %q) answers on %s", got, addr6)}
	}
	return nil
}

// clusterName connects and returns the server's cluster_name.
func clusterName(ctx context.Context, connString string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var name string
	if err := conn.QueryRow(ctx, "SHOW cluster_name").Scan(&name); err != nil {
		return "", err
	}
	return name, nil
}

// logTail returns at most n last lines of the server log written after
// offset from.
func (c *Cluster) logTail(from int64, n int) string {
	b, err := os.ReadFile(c.LogFile)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if from >= 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// bootstrap creates the test roles and opens the public schemas.
func (c *Cluster) bootstrap(ctx context.Context) error {
	conn, err := c.connect(ctx, c.SuperConnString("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	c.Version = conn.PgConn().ParameterStatus("server_version")

	var b strings.Builder
	for _, u := range c.sortedUsers() {
		if u.Method == "md5" {
			// Stored as MD5, so the md5 method really uses MD5 rather than
			// switching to SCRAM.
			b.WriteString("SET password_encryption = 'md5';\n")
		}
		fmt.Fprintf(&b, "CREATE ROLE %s LOGIN PASSWORD %s;\n", pgx.Identifier{u.Name}.Sanitize(), quoteLiteral(u.Password))
		if u.Method == "md5" {
			b.WriteString("RESET password_encryption;\n")
		}
	}
	// PostgreSQL 15 no longer lets every role create in public; tests
	// create tables as the test roles.
	b.WriteString("GRANT ALL ON SCHEMA public TO PUBLIC;\n")
	if _, err := conn.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("pgtest: create test roles: %w", err)
	}

	// New databases copy template1.
	tconn, err := c.connect(ctx, c.SuperConnString("template1"))
	if err != nil {
		return err
	}
	defer tconn.Close(context.Background())
	if _, err := tconn.Exec(ctx, "GRANT ALL ON SCHEMA public TO PUBLIC"); err != nil {
		return fmt.Errorf("pgtest: grant on schema public of template1: %w", err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal
// (standard_conforming_strings is on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
