package pgtest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgtest"
)

var pg *pgtest.Cluster

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunMain(m, pgtest.Options{}, &pg))
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// connect connects with pgx and returns current_user.
func connect(ctx context.Context, connString string) (string, error) {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var user string
	err = conn.QueryRow(ctx, "SELECT current_user").Scan(&user)
	return user, err
}

func TestStartInfo(t *testing.T) {
	c := pg.Require(t)
	t.Logf("%s", c)
	if !strings.HasPrefix(c.Version, "1") {
		t.Errorf("Version = %q", c.Version)
	}
	if c.Port == 0 || c.Host == "" {
		t.Errorf("Host %q Port %d", c.Host, c.Port)
	}
	for _, tool := range []string{"psql", "pgbench"} {
		if _, err := os.Stat(filepath.Join(c.BinDir(), tool)); err != nil {
			t.Errorf("BinDir %s: %v", c.BinDir(), err)
		}
	}
}

func TestUsersConnect(t *testing.T) {
	c := pg.Require(t)
	ctx := testContext(t)
	for _, key := range []string{pgtest.UserTrust, pgtest.UserPassword, pgtest.UserMD5, pgtest.UserSCRAM} {
		t.Run(key, func(t *testing.T) {
			u := c.User(t, key)
			got, err := connect(ctx, c.ConnString(u.Name, u.Password, "postgres"))
			if err != nil {
				t.Fatalf("connect as %s: %v", u.Name, err)
			}
			if got != u.Name {
				t.Errorf("current_user = %q, want %q", got, u.Name)
			}
			if key == pgtest.UserTrust {
				return
			}
			_, err = connect(ctx, c.ConnString(u.Name, u.Password+"x", "postgres"))
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
				t.Errorf("wrong password: err = %v, want SQLSTATE 28P01", err)
			}
		})
	}
}

// TestAuthMethods checks which authentication request the server sends to
// each role, at the protocol level.
func TestAuthMethods(t *testing.T) {
	c := pg.Require(t)
	want := map[string]string{
		pgtest.UserTrust:    "*pgproto3.AuthenticationOk",
		pgtest.UserPassword: "*pgproto3.AuthenticationCleartextPassword",
		pgtest.UserMD5:      "*pgproto3.AuthenticationMD5Password",
		pgtest.UserSCRAM:    "*pgproto3.AuthenticationSASL",
		"postgres":          "*pgproto3.AuthenticationOk",
	}
	for key, typ := range want {
		t.Run(key, func(t *testing.T) {
			name := "postgres"
			if key != "postgres" {
				name = c.User(t, key).Name
			}
			conn, err := net.DialTimeout("tcp", c.Addr(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fe := pgproto3.NewFrontend(conn, conn)
			fe.Send(&pgproto3.StartupMessage{
				ProtocolVersion: pgproto3.ProtocolVersionNumber,
				Parameters:      map[string]string{"user": name, "database": "postgres"},
			})
			if err := fe.Flush(); err != nil {
				t.Fatal(err)
			}
			msg, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if got := typeName(msg); got != typ {
				t.Errorf("first message for %s = %s %+v, want %s", name, got, msg, typ)
			}
		})
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *pgproto3.AuthenticationOk:
		return "*pgproto3.AuthenticationOk"
	case *pgproto3.AuthenticationCleartextPassword:
		return "*pgproto3.AuthenticationCleartextPassword"
	case *pgproto3.AuthenticationMD5Password:
		return "*pgproto3.AuthenticationMD5Password"
	case *pgproto3.AuthenticationSASL:
		return "*pgproto3.AuthenticationSASL"
	default:
		return "other"
	}
}

func TestPasswordStorage(t *testing.T) {
	c := pg.Require(t)
	ctx := testContext(t)
	conn := c.SuperConn(t, "postgres")
	for key, prefix := range map[string]string{
		pgtest.UserMD5:   "md5",
		pgtest.UserSCRAM: "SCRAM-SHA-256$",
	} {
		u := c.User(t, key)
		var ok bool
		err := conn.QueryRow(ctx, "SELECT rolpassword LIKE $2 || '%' FROM pg_authid WHERE rolname = $1", u.Name, prefix).Scan(&ok)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("password of %s is not stored as %s", u.Name, prefix)
		}
	}
}

func TestSSLOnly(t *testing.T) {
	c := pg.RequireServerTLS(t)
	ctx := testContext(t)
	u := c.User(t, pgtest.UserSSLOnly)

	_, err := connect(ctx, c.ConnString(u.Name, u.Password, "postgres"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" {
		t.Errorf("without TLS: err = %v, want SQLSTATE 28000 (rejected by pg_hba.conf)", err)
	}

	hosts := []string{c.Host}
	if c.HostV6 != "" {
		hosts = append(hosts, c.HostV6)
	}
	for _, host := range hosts {
		cs := strings.Replace(c.ConnString(u.Name, u.Password, "postgres", "sslmode=verify-full", "sslrootcert="+c.CAFile),
			c.Addr(), net.JoinHostPort(host, strconv.Itoa(c.Port)), 1)
		conn, err := pgx.Connect(ctx, cs)
		if err != nil {
			t.Fatalf("verify-full on %s: %v", host, err)
		}
		var ssl bool
		if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close(ctx)
		if !ssl {
			t.Errorf("connection on %s is not TLS", host)
		}
	}
	// localhost is in the certificate too.
	cs := strings.Replace(c.ConnString(u.Name, u.Password, "postgres", "sslmode=verify-full", "sslrootcert="+c.CAFile),
		c.Addr(), net.JoinHostPort("localhost", strconv.Itoa(c.Port)), 1)
	if _, err := connect(ctx, cs); err != nil {
		t.Errorf("verify-full with localhost: %v", err)
	}
}

func TestVerifyOtherCAFails(t *testing.T) {
	c := pg.RequireServerTLS(t)
	ctx := testContext(t)
	_, err := connect(ctx, c.SuperConnString("postgres", "sslmode=verify-ca", "sslrootcert="+c.OtherCAFile))
	if err == nil {
		t.Fatal("verify-ca against an unrelated CA succeeded")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("err = %v, want a certificate verification error", err)
	}
	if _, err := connect(ctx, c.SuperConnString("postgres", "sslmode=verify-ca", "sslrootcert="+c.CAFile)); err != nil {
		t.Errorf("verify-ca against CAFile: %v", err)
	}
}

func TestNewDatabase(t *testing.T) {
	c := pg.Require(t)
	ctx := testContext(t)
	var name string
	t.Run("sub", func(t *testing.T) {
		name = c.NewDatabase(t)
		if !strings.HasPrefix(name, "pgtest_testnewdatabase_sub_") {
			t.Errorf("name = %q", name)
		}
		users := []pgtest.User{c.Super}
		if !c.External {
			users = append(users, c.Users[pgtest.UserSCRAM], c.Users[pgtest.UserMD5])
		}
		for i, u := range users {
			conn, err := pgx.Connect(ctx, c.ConnString(u.Name, u.Password, name))
			if err != nil {
				t.Fatal(err)
			}
			table := "t_" + strconv.Itoa(i)
			if _, err := conn.Exec(ctx, "CREATE TABLE "+table+" (id int PRIMARY KEY, v text)"); err != nil {
				t.Fatalf("create table as %s: %v", u.Name, err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO "+table+" VALUES (1, 'x')"); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close(ctx)
		}
		// A session left open must not prevent the drop.
		_ = c.SuperConn(t, name)
	})
	conn := c.SuperConn(t, "postgres")
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test", name)
	}
}

// TestConnStringEscaping checks a role created by a test, with a password
// that needs escaping, through pgx and through psql (libpq).
func TestConnStringEscaping(t *testing.T) {
	c := pg.Require(t)
	ctx := testContext(t)
	db := c.NewDatabase(t)
	conn := c.SuperConn(t, db)
	role := "pgtest_escape_" + strings.ToLower(strings.ReplaceAll(db[len(db)-6:], "_", ""))
	password := `p@ss w/rd'&?=+%:#`
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD '"+strings.ReplaceAll(password, "'", "''")+"'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	cs := c.ConnString(role, password, db, "application_name=pgtest escape")
	got, err := connect(ctx, cs)
	if err != nil || got != role {
		t.Fatalf("pgx: user %q, err %v", got, err)
	}

	out, err := exec.CommandContext(ctx, filepath.Join(c.BinDir(), "psql"), "-X", "-A", "-t",
		"-c", "SELECT current_user || ' ' || current_setting('application_name')", cs).CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), role+" pgtest escape"; got != want {
		t.Errorf("psql printed %q, want %q", got, want)
	}
}

func TestIssueCert(t *testing.T) {
	c := pg.Require(t)
	certFile, keyFile, err := c.IssueCert("proxy.test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			_ = conn.Close()
		}
	}()
	for _, tc := range []struct {
		serverName string
		pool       bool
		ok         bool
	}{
		{"proxy.test", true, true},
		{"127.0.0.1", true, true},
		{"other.test", true, false},
		{"proxy.test", false, false},
	} {
		cfg := &tls.Config{ServerName: tc.serverName}
		if tc.pool {
			cfg.RootCAs = c.CertPool()
		}
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			_ = conn.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("server name %s, CA pool %v: err = %v, want ok %v", tc.serverName, tc.pool, err, tc.ok)
		}
	}
}

// TestExternal points a second Cluster at the first, as PGCRYPT_TEST_DSN
// would.
func TestExternal(t *testing.T) {
	c := pg.Require(t)
	ctx := testContext(t)
	ext, err := pgtest.Start(ctx, pgtest.Options{DSN: c.SuperConnString("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ext.Close(); err != nil {
			t.Error(err)
		}
	}()
	if !ext.External || ext.ServerTLS || len(ext.Users) != 0 || ext.Addr() != c.Addr() {
		t.Errorf("external cluster: %+v", ext)
	}
	db := ext.NewDatabase(t)
	if _, err := connect(ctx, c.SuperConnString(db)); err != nil {
		t.Error(err)
	}
	t.Run("skips", func(t *testing.T) {
		ext.User(t, pgtest.UserMD5)
		t.Error("User did not skip on an external server")
	})
	if _, _, err := ext.IssueCert(); err != nil {
		t.Error(err)
	}
}

func TestUnavailable(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skipf("%s is set", pgtest.EnvDSN)
	}
	_, err := pgtest.Start(context.Background(), pgtest.Options{BinDir: t.TempDir()})
	var ue *pgtest.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *UnavailableError", err)
	}
}
