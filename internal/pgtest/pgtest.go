package pgtest

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Environment variables read by the harness.
const (
	// EnvDSN names a superuser connection string of an existing server to
	// use instead of starting a cluster.
	EnvDSN = "PGCRYPT_TEST_DSN"
	// EnvRequire, when non-empty, makes RunMain fail instead of skipping
	// when PostgreSQL is unavailable.
	EnvRequire = "PGCRYPT_TEST_REQUIRE_PG"
)

// Keys of Cluster.Users: one login role per authentication method.
const (
	UserTrust    = "trust"    // pgtest_trust, method trust
	UserPassword = "password" // pgtest_password, method password (cleartext)
	UserMD5      = "md5"      // pgtest_md5, method md5, password stored as MD5
	UserSCRAM    = "scram"    // pgtest_scram, method scram-sha-256
	UserSSLOnly  = "sslonly"  // pgtest_sslonly, scram-sha-256 over TLS only
	// UserCert is pgtest_cert, method cert over TLS only: it logs in with
	// a client certificate whose common name is its name, signed by the
	// cluster's CA (IssueCert("pgtest_cert")).
	UserCert = "cert"
)

// DefaultStartTimeout bounds Start when Options.StartTimeout is zero.
const DefaultStartTimeout = 2 * time.Minute

// Options configures Start. The zero value starts a local cluster, or uses
// the server named by PGCRYPT_TEST_DSN when that is set.
type Options struct {
	// DSN is a superuser connection string of an existing server to use
	// instead of starting one. Empty means the value of PGCRYPT_TEST_DSN.
	DSN string
	// BinDir holds initdb and postgres. Empty means the highest version on
	// PATH or in /usr/lib/postgresql/*/bin.
	BinDir string
	// TempDir is where the cluster directory is created. Empty means
	// os.TempDir(), or /tmp when running as root and the OS user postgres
	// cannot reach os.TempDir().
	TempDir string
	// Settings are extra postgresql.conf settings; they override the
	// harness's defaults. Values are written quoted.
	Settings map[string]string
	// NoInitdbCache makes Start run initdb even when a copy of an
	// identical fresh data directory, kept by an earlier Start next to the
	// cluster directories, could be used instead (it saves about a second).
	NoInitdbCache bool
	// StartTimeout bounds Start in addition to its context. Zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
}

// User is a login role.
type User struct {
	Name     string // role name
	Password string // empty when the role has none
	Method   string // pg_hba.conf method that authenticates it over TCP
	SSLOnly  bool   // rejected without TLS
}

// Cluster is a PostgreSQL server for tests: a local cluster started by Start,
// or an existing server named by a DSN. Its exported fields are set by Start
// and must not be changed.
type Cluster struct {
	Host    string // IPv4 address the server listens on, "127.0.0.1"
	Port    int    // TCP port
	HostV6  string // "::1" when the server also listens there, else empty
	Version string // server_version, e.g. "15.18 (Debian 15.18-0+deb12u1)"

	// External is true when the server was not started by the harness.
	External bool
	// Super is the superuser: "postgres" without password (trust) for a
	// local cluster, the DSN's role for an external server.
	Super User
	// Users holds one login role per authentication method, keyed by
	// UserTrust, UserPassword, UserMD5, UserSCRAM and UserSSLOnly. It is
	// empty for an external server.
	Users map[string]User

	// ServerTLS is true when the server has TLS on with a certificate for
	// localhost, 127.0.0.1 and ::1 signed by CACert.
	ServerTLS bool
	// CAFile is the PEM file of CACert.
	CAFile string
	// OtherCAFile is the PEM file of a CA unrelated to the server's
	// certificate, for tests that expect verification to fail.
	OtherCAFile string
	// CACert and CAKey are the cluster's certificate authority; see also
	// IssueCert.
	CACert *x509.Certificate
	CAKey  crypto.Signer

	// Dir is the cluster directory, removed by Close.
	Dir string
	// DataDir is the data directory; empty for an external server.
	DataDir string
	// LogFile is the server log; empty for an external server.
	LogFile string
	// StartupTime is how long Start took.
	StartupTime time.Duration

	bin        binaries
	adminDB    string // database for administrative connections
	sslmode    string // default sslmode of connection strings
	skipReason string // set by RunMain when PostgreSQL is unavailable
	runAs      *runAs
	server     *serverProcess
	certSeq    atomic.Int64
	dbSeq      atomic.Int64
	closeOnce  sync.Once
	closeErr   error
}

// Start starts an ephemeral cluster, or connects to the server named by
// opts.DSN or PGCRYPT_TEST_DSN. When no server binaries are found it
// returns an *UnavailableError. Close the Cluster when done.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	begin := time.Now()
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dsn := opts.DSN
	if dsn == "" {
		dsn = os.Getenv(EnvDSN)
	}
	// An external server needs no binaries, but tests may want psql.
	bin, binErr := findBinaries(opts.BinDir)
	if dsn == "" && binErr != nil {
		return nil, binErr
	}

	var ra *runAs
	if dsn == "" && os.Geteuid() == 0 {
		if ra, err = lookupRunAs("postgres"); err != nil {
			return nil, err
		}
	}
	root, err := tempRoot(opts.TempDir, ra)
	if err != nil {
		return nil, err
	}
	sweepStale(root)
	dir, err := os.MkdirTemp(root, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{Dir: dir, bin: bin, runAs: ra, sslmode: "disable"}
	defer func() {
		if err != nil {
			c.cleanupFailedStart()
		}
	}()
	// The marker lets a later Start remove this directory if the test
	// binary dies without closing the cluster.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(ownerMarker()), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := c.initCAs(); err != nil {
		return nil, err
	}
	if dsn != "" {
		err = c.useExternal(ctx, dsn)
	} else {
		err = c.startLocal(ctx, opts)
	}
	if err != nil {
		return nil, err
	}
	c.StartupTime = time.Since(begin)
	return c, nil
}

const (
	dirPrefix = "pgtest-"
	ownerFile = "owner.pid"
)

// lookupRunAs finds the OS user to run the server binaries as.
func lookupRunAs(name string) (*runAs, error) {
	uid, gid, err := lookupIDs(name)
	if err != nil {
		return nil, &UnavailableError{Reason: fmt.Sprintf("running as root, and PostgreSQL refuses to run as root, but there is no OS user %q to run it as: %v", name, err)}
	}
	return &runAs{name: name, uid: uid, gid: gid}, nil
}

// tempRoot returns the directory to create the cluster directory in.
func tempRoot(override string, ra *runAs) (string, error) {
	root := override
	if root == "" {
		root = os.TempDir()
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	if ra == nil || canTraverse(abs, ra) {
		return abs, nil
	}
	if override == "" && abs != "/tmp" && canTraverse("/tmp", ra) {
		return "/tmp", nil
	}
	return "", fmt.Errorf("pgtest: OS user %s cannot reach %s (a parent directory is not searchable); set TMPDIR or Options.TempDir to a directory it can reach", ra.name, abs)
}

// sweepStale removes cluster directories under root left by test binaries
// that died without closing their cluster, when neither the test binary nor
// the server is alive any more, and interrupted initdb template copies.
func sweepStale(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), templatePrefix) && strings.Contains(e.Name(), ".tmp-") {
			// An initdb template whose copy was interrupted.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pidLine, host, _ := strings.Cut(string(b), "\n")
		if host != ownerHost() || !pidFileDead(pidLine) {
			// Another host or PID namespace sharing the directory, or the
			// test binary is alive.
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil && !pidFileDead(string(b)) {
			continue
		}
		_ = os.RemoveAll(dir) // best effort
	}
}

// ownerMarker returns the content of the owner file: the pid of the test
// binary and the host (container) it runs on.
func ownerMarker() string {
	return strconv.Itoa(os.Getpid()) + "\n" + ownerHost()
}

// ownerHost returns the host name line of the owner file.
func ownerHost() string {
	h, _ := os.Hostname()
	return h + "\n"
}

// pidFileDead reports whether the content of a pid file starts with the pid
// of a process that no longer exists. Garbage counts as alive.
func pidFileDead(content string) bool {
	line, _, _ := strings.Cut(content, "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return false
	}
	return !processAlive(pid)
}

// initCAs generates the cluster's CA and the unrelated one.
func (c *Cluster) initCAs() error {
	cert, key, err := newCA("pgtest CA")
	if err != nil {
		return err
	}
	other, _, err := newCA("pgtest unrelated CA")
	if err != nil {
		return err
	}
	c.CACert, c.CAKey = cert, key
	c.CAFile = filepath.Join(c.Dir, "ca.crt")
	c.OtherCAFile = filepath.Join(c.Dir, "other-ca.crt")
	if err := writeFile(c.CAFile, certToPEM(cert.Raw), 0o644, c.runAs); err != nil {
		return err
	}
	return writeFile(c.OtherCAFile, certToPEM(other.Raw), 0o644, c.runAs)
}

// useExternal sets c up for the existing server named by dsn.
func (c *Cluster) useExternal(ctx context.Context, dsn string) error {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		return fmt.Errorf("pgtest: %s: host must be a TCP address, not the Unix socket directory %s", EnvDSN, cfg.Host)
	}
	c.External = true
	c.Host, c.Port = cfg.Host, int(cfg.Port)
	c.Super = User{Name: cfg.User, Password: cfg.Password}
	c.adminDB = cfg.Database
	if c.adminDB == "" {
		c.adminDB = cfg.User
	}
	if cfg.TLSConfig != nil {
		c.sslmode = "prefer"
	}
	conn, err := c.connect(ctx, c.SuperConnString(c.adminDB))
	if err != nil {
		return fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
	}
	defer conn.Close(context.Background())
	c.Version = conn.PgConn().ParameterStatus("server_version")
	var super bool
	if err := conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		return fmt.Errorf("pgtest: %s: %w", EnvDSN, err)
	}
	if !super {
		return fmt.Errorf("pgtest: %s: role %s is not a superuser", EnvDSN, cfg.User)
	}
	return nil
}

// cleanupFailedStart stops the server and removes the cluster directory,
// except for the server log that the start error points to: a later Start
// sweeps the rest once this process is gone.
func (c *Cluster) cleanupFailedStart() {
	if c.server != nil {
		_ = c.server.stop()
		c.server = nil
	}
	if c.LogFile != "" {
		if _, err := os.Stat(c.LogFile); err == nil {
			entries, _ := os.ReadDir(c.Dir)
			for _, e := range entries {
				if n := e.Name(); n != filepath.Base(c.LogFile) && n != ownerFile {
					_ = os.RemoveAll(filepath.Join(c.Dir, n))
				}
			}
			return
		}
	}
	_ = os.RemoveAll(c.Dir)
}

// Close stops a local cluster with an immediate shutdown and removes its
// directory. It is safe to call more than once and on a nil Cluster.
func (c *Cluster) Close() error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		var errs []error
		if c.server != nil {
			errs = append(errs, c.server.stop())
		}
		if c.Dir != "" {
			if err := os.RemoveAll(c.Dir); err != nil {
				errs = append(errs, fmt.Errorf("pgtest: %w", err))
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Addr returns the server's TCP address, host:port.
func (c *Cluster) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// BinDir returns the directory of the PostgreSQL binaries matching the
// server (psql and pgbench are usually there too), or empty when none
// were found (only possible with an external server).
func (c *Cluster) BinDir() string {
	return c.bin.dir
}

// ConnString returns a URL connection string to the server for user,
// password (may be empty) and database. params are extra "key=value"
// parameters; sslmode defaults to disable (prefer for an external server
// whose DSN enables TLS). The result suits pgx, lib/pq, libpq and
// node-postgres.
func (c *Cluster) ConnString(user, password, database string, params ...string) string {
	return buildConnString(c.Addr(), c.sslmode, user, password, database, params)
}

// buildConnString implements ConnString.
func buildConnString(addr, sslmode, user, password, database string, params []string) string {
	u := url.URL{Scheme: "postgres", Host: addr, Path: "/" + database}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	var q []string
	hasSSLMode := false
	for _, p := range params {
		k, v, _ := strings.Cut(p, "=")
		hasSSLMode = hasSSLMode || k == "sslmode"
		q = append(q, queryEscape(k)+"="+queryEscape(v))
	}
	if !hasSSLMode {
		q = append(q, "sslmode="+sslmode)
	}
	u.RawQuery = strings.Join(q, "&")
	return u.String()
}

// queryEscape escapes s for a URL query, with spaces as %20: libpq does
// not decode '+'.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// SuperConnString returns a connection string for the superuser to
// database; params are as for ConnString.
func (c *Cluster) SuperConnString(database string, params ...string) string {
	return c.ConnString(c.Super.Name, c.Super.Password, database, params...)
}

// SuperConn connects to database as superuser, for setup and for reading
// raw tables behind the proxy's back. The connection is closed when the
// test ends.
func (c *Cluster) SuperConn(tb testing.TB, database string) *pgx.Conn {
	tb.Helper()
	c.Require(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.connect(ctx, c.SuperConnString(database))
	if err != nil {
		tb.Fatalf("pgtest: connect to %s as superuser: %v", database, err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// connect connects with pgx.
func (c *Cluster) connect(ctx context.Context, connString string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("pgtest: connect: %w", err)
	}
	return conn, nil
}

// CreateDatabase creates database name, grants every privilege on it to
// the test roles, and lets every role create in its public schema.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := c.connect(ctx, c.SuperConnString(c.adminDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	if len(c.Users) > 0 {
		roles := make([]string, 0, len(c.Users))
		for _, u := range c.sortedUsers() {
			roles = append(roles, pgx.Identifier{u.Name}.Sanitize())
		}
		if _, err := conn.Exec(ctx, "GRANT ALL ON DATABASE "+ident+" TO "+strings.Join(roles, ", ")); err != nil {
			return fmt.Errorf("pgtest: grant on database %s: %w", name, err)
		}
	}
	if c.External {
		// A local cluster's template1 already has this grant.
		dbConn, err := c.connect(ctx, c.SuperConnString(name))
		if err != nil {
			return err
		}
		defer dbConn.Close(context.Background())
		if _, err := dbConn.Exec(ctx, "GRANT ALL ON SCHEMA public TO PUBLIC"); err != nil {
			return fmt.Errorf("pgtest: grant on schema public of %s: %w", name, err)
		}
	}
	return nil
}

// DropDatabase drops database name if it exists, terminating the sessions
// connected to it.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	conn, err := c.connect(ctx, c.SuperConnString(c.adminDB))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// NewDatabase creates a database for one test, named after it, and drops
// it when the test ends. It skips the test when PostgreSQL is unavailable.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	c.Require(tb)
	name := c.databaseName(tb.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.CreateDatabase(ctx, name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			tb.Error(err)
		}
	})
	return name
}

// databaseName returns a new database name derived from a test name:
// lower case, at most 63 bytes, unique within and across test binaries.
func (c *Cluster) databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	base := b.String()
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("pgtest_%s_%d_%s", base, c.dbSeq.Add(1), randomHex(3))
}

// sortedUsers returns Users in a fixed order.
func (c *Cluster) sortedUsers() []User {
	var us []User
	for _, k := range []string{UserTrust, UserPassword, UserMD5, UserSCRAM, UserSSLOnly, UserCert} {
		if u, ok := c.Users[k]; ok {
			us = append(us, u)
		}
	}
	return us
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
