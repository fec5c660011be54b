// Package pgtest starts an ephemeral PostgreSQL cluster for a test binary.
//
// Every end-to-end test of pgcrypt-proxy talks to a real PostgreSQL server,
// never a mock. A test package starts one cluster in TestMain and shares it
// between its tests; each test gets its own database:
//
//	var pg *pgtest.Cluster
//
//	func TestMain(m *testing.M) {
//		os.Exit(pgtest.RunMain(m, pgtest.Options{}, &pg))
//	}
//
//	func TestSomething(t *testing.T) {
//		c := pg.Require(t) // skips when PostgreSQL is not available
//		db := c.NewDatabase(t)
//		conn, err := pgx.Connect(ctx, c.SuperConnString(db))
//		...
//	}
//
// # Local cluster
//
// Start runs initdb and postgres from Options.BinDir, or else from the
// highest PostgreSQL version found on PATH or in /usr/lib/postgresql/*/bin.
// When the test runs as root, the server binaries run as the OS user
// "postgres" (PostgreSQL refuses to run as root), and the cluster directory
// is owned by that user. The server listens on 127.0.0.1 (and on ::1 when
// the host has IPv6 loopback) on a free port chosen at start, never on a
// fixed one, with Unix sockets disabled. It is tuned for tests, not for
// durability: fsync, synchronous_commit and full_page_writes are off,
// wal_level is minimal, max_connections is 200. Options.Settings adds or
// overrides settings.
//
// initdb takes about a second, most of the start time, so the first Start
// keeps a pristine copy of its output in $TMPDIR/pgtest.initdb-<hash>
// (keyed by the binaries, the initdb arguments and the owner) and later
// Starts copy it instead, in a fraction of that time. Options.NoInitdbCache
// turns this off.
//
// TLS is on, with a server certificate for localhost, 127.0.0.1 and ::1
// signed by a per-cluster CA (Cluster.CAFile). IssueCert signs further
// certificates with that CA, for instance the client-facing certificate of
// the proxy under test. Cluster.OtherCAFile is an unrelated CA, for tests
// that expect verification to fail.
//
// pg_hba.conf gives each authentication method its own login role, listed
// in Cluster.Users under the keys UserTrust, UserPassword, UserMD5,
// UserSCRAM and UserSSLOnly (which is rejected without TLS). The superuser
// "postgres" uses trust. Roles created by tests authenticate with
// scram-sha-256. Every role may create tables in the public schema of every
// database, as before PostgreSQL 15.
//
// The server is the child of the test binary. Close stops it with an
// immediate shutdown (SIGQUIT, as pg_ctl stop -m immediate) and removes the
// cluster directory. On Linux the server also receives SIGQUIT when the
// test binary dies, and Start removes directories left behind by dead
// test binaries.
//
// # Existing server
//
// When the environment variable PGCRYPT_TEST_DSN (or Options.DSN) is set,
// no cluster is started: the harness uses that server, with the DSN's role
// as superuser. Its host must be a TCP address. Only the host, port, user,
// password and database of the DSN are used; connection strings built by
// the Cluster use sslmode=prefer when the DSN enables TLS and
// sslmode=disable otherwise. The server's pg_hba.conf and certificates are
// not under the harness's control, so Cluster.Users is empty and
// Cluster.ServerTLS is false: tests that need a particular authentication
// method or a verifiable server certificate skip (see Cluster.User and
// Cluster.RequireServerTLS). The CA and IssueCert still work, for
// certificates the proxy presents to its clients.
//
// # Skipping
//
// When no PostgreSQL server binaries are found (and no DSN is given), Start
// returns an *UnavailableError and RunMain runs the tests anyway, with a
// Cluster whose Require skips them with the reason. Set
// PGCRYPT_TEST_REQUIRE_PG=1 (as CI should) to make that a failure instead.
package pgtest
