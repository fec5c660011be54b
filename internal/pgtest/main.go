package pgtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
)

// RunMain is the body of a TestMain: it starts a cluster with opts, stores
// it in *dst, runs the tests, closes the cluster and returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, pgtest.Options{}, &pg)) }
//
// When PostgreSQL is unavailable (see UnavailableError) it prints the
// reason and still runs the tests, with a Cluster whose Require skips them,
// unless PGCRYPT_TEST_REQUIRE_PG is set. Any other start failure prints
// the error and returns 1 without running tests.
func RunMain(m *testing.M, opts Options, dst **Cluster) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	c, err := Start(context.Background(), opts)
	var unavailable *UnavailableError
	switch {
	case errors.As(err, &unavailable) && os.Getenv(EnvRequire) == "":
		fmt.Fprintf(os.Stderr, "%v\npgtest: tests that need PostgreSQL will skip (set %s=1 to fail instead)\n", err, EnvRequire)
		*dst = &Cluster{skipReason: err.Error()}
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "pgtest: %s\n", c)
	}
	*dst = c
	code := m.Run()
	if err := c.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// String describes the cluster in one line.
func (c *Cluster) String() string {
	switch {
	case c == nil:
		return "pgtest: no cluster"
	case c.skipReason != "":
		return "pgtest: unavailable: " + c.skipReason
	case c.External:
		return fmt.Sprintf("external PostgreSQL %s at %s (connected in %v)", c.Version, c.Addr(), c.StartupTime.Round(1e6))
	default:
		return fmt.Sprintf("PostgreSQL %s at %s from %s, started in %v, log %s", c.Version, c.Addr(), c.bin.dir, c.StartupTime.Round(1e6), c.LogFile)
	}
}

// Require returns c, or skips the test when PostgreSQL is unavailable. It
// fails the test when c is nil, that is when TestMain did not call RunMain.
func (c *Cluster) Require(tb testing.TB) *Cluster {
	tb.Helper()
	if c == nil {
		tb.Fatal("pgtest: no cluster: call pgtest.RunMain from TestMain")
	}
	if c.skipReason != "" {
		tb.Skip(c.skipReason)
	}
	return c
}

// User returns the login role for an authentication method (UserTrust,
// UserPassword, UserMD5, UserSCRAM or UserSSLOnly). It skips the test when
// the server is external, since its pg_hba.conf is not the harness's.
func (c *Cluster) User(tb testing.TB, key string) User {
	tb.Helper()
	c.Require(tb)
	u, ok := c.Users[key]
	switch {
	case ok:
		return u
	case c.External:
		tb.Skipf("pgtest: role for %q not available on an external server (%s)", key, EnvDSN)
	default:
		tb.Fatalf("pgtest: no role for %q", key)
	}
	return User{}
}

// RequireServerTLS skips the test unless the server has TLS on with a
// certificate signed by CAFile (not the case for an external server).
func (c *Cluster) RequireServerTLS(tb testing.TB) *Cluster {
	tb.Helper()
	c.Require(tb)
	if !c.ServerTLS {
		tb.Skipf("pgtest: server TLS with the harness's CA is not available on an external server (%s)", EnvDSN)
	}
	return c
}
