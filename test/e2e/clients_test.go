package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lib/pq"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgtest"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// This file drives real, unchanged client programs and drivers through the
// proxy: psql, lib/pq, node-postgres and pgbench. Each test checks what the
// client saw and, read directly from PostgreSQL, what it wrote.

// toolTimeout bounds one run of an external client program.
const toolTimeout = time.Minute

// findTool returns the path of a PostgreSQL client program: the one next to
// the server binaries when there is one, else the one on PATH.
func findTool(t *testing.T, name string) string {
	t.Helper()
	pg.Require(t)
	if dir := pg.BinDir(); dir != "" {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(t, "%s not found next to the server binaries (%q) or on PATH", name, pg.BinDir())
	}
	return p
}

// toolEnv is the environment of an external client: the test's without
// libpq, psql, node-postgres and locale variables that could redirect or
// change it, with a fresh HOME (no .pgpass, .psqlrc or service file), a
// connect timeout, and then extra ("KEY=value", later ones win).
func toolEnv(t *testing.T, extra ...string) []string {
	t.Helper()
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "PSQL") || strings.HasPrefix(k, "LC_") ||
			k == "LANG" || k == "LANGUAGE" || k == "HOME" || k == "NODE_OPTIONS" {
			continue
		}
		env = append(env, kv)
	}
	none := filepath.Join(home, "does-not-exist")
	env = append(env,
		"HOME="+home,
		"LC_ALL=C", // untranslated messages
		"PGCONNECT_TIMEOUT=10",
		"PGCLIENTENCODING=UTF8",
		"PGPASSFILE="+none,
		"PGSERVICEFILE="+none,
		"PGSYSCONFDIR="+home,
		"PSQLRC="+none,
		"PSQL_HISTORY="+none,
	)
	return append(env, extra...)
}

// toolResult is how an external client run ended.
type toolResult struct {
	cmd            string
	stdout, stderr string
	exit           int
	took           time.Duration
}

func (r toolResult) String() string {
	return fmt.Sprintf("%s: exit %d after %v\n--- stdout:\n%s--- stderr:\n%s", r.cmd, r.exit, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// runTool runs an external client with env in dir, stdin from the given
// string (empty: /dev/null), and fails the test when it cannot be started
// or outlives toolTimeout. A non-zero exit is returned, not a failure.
func runTool(t *testing.T, env []string, dir, stdin, bin string, args ...string) toolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	begin := time.Now()
	err := cmd.Run()
	r := toolResult{
		cmd:    filepath.Base(bin) + " " + strings.Join(args, " "),
		stdout: stdout.String(),
		stderr: stderr.String(),
		took:   time.Since(begin),
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("timed out after %v: %v", toolTimeout, r)
	case errors.As(err, &exitErr):
		r.exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", r.cmd, err)
	}
	return r
}

// mustRun is runTool that also fails the test on a non-zero exit.
func mustRun(t *testing.T, env []string, dir, stdin, bin string, args ...string) toolResult {
	t.Helper()
	r := runTool(t, env, dir, stdin, bin, args...)
	if r.exit != 0 {
		t.Fatalf("want exit 0: %v", r)
	}
	return r
}

// toolMajor returns the major version a PostgreSQL program reports with
// --version ("psql (PostgreSQL) 15.14 (Debian ...)"), or 0.
func toolMajor(t *testing.T, bin string) int {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	m := regexp.MustCompile(`\(PostgreSQL\) (\d+)`).FindSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// noPassword returns u without its password, for clients that must get it
// from the environment (PGPASSWORD) instead of the connection string.
func noPassword(u pgtest.User) pgtest.User {
	u.Password = ""
	return u
}

// connectionsTotal returns how many client sessions p has counted.
func connectionsTotal(p *testProxy) float64 {
	return counterValue(p.Metrics.ConnectionsTotal)
}

// expectConnections checks that the proxy counted want sessions since
// before (exactly, or at least when atLeast is set).
func expectConnections(t *testing.T, p *testProxy, before float64, want int, atLeast bool) {
	t.Helper()
	got := int(connectionsTotal(p) - before)
	switch {
	case atLeast && got < want:
		t.Errorf("proxy counted %d client connections, want at least %d", got, want)
	case !atLeast && got != want:
		t.Errorf("proxy counted %d client connections, want %d", got, want)
	}
}

// terminateRace is true while the proxy has this known bug: it forwards a
// client's Terminate before noting that the client ended the session, so
// when PostgreSQL's close reaches the server-side loop first, a clean
// disconnect is counted as upstream_lost, logged as a lost connection, and
// answered with a FATAL 08006 ErrorResponse that a client still reading
// (node-postgres during end()) emits as an 'error' event. Set it to false
// once fixed, and these tests check for both again.
const terminateRace = false

// expectNoProxyFaults checks that the proxy recorded no error of its own:
// errors relayed from PostgreSQL (backend_error) and failed logins are
// the clients' business and are checked by the tests that cause them.
func expectNoProxyFaults(t *testing.T, p *testProxy) {
	t.Helper()
	kinds := []string{
		metrics.ErrClientProtocol, metrics.ErrClientTLS, metrics.ErrUpstreamConnect, metrics.ErrUpstreamTLS,
		metrics.ErrUpstreamProto, metrics.ErrCancelUnknown, metrics.ErrShutdown,
	}
	if !terminateRace {
		kinds = append(kinds, metrics.ErrUpstreamLost)
	} else if n := p.errorCount(metrics.ErrUpstreamLost); n != 0 {
		t.Logf("proxy counted %v upstream_lost errors: the known Terminate race (see terminateRace)", n)
	}
	for _, kind := range kinds {
		if n := p.errorCount(kind); n != 0 {
			t.Errorf("proxy counted %v %s errors, want none", n, kind)
		}
	}
}

// psqlTool runs psql without psqlrc, password prompts, alignment, headers
// or command tags.
type psqlTool struct {
	bin   string
	major int
}

func newPsql(t *testing.T) psqlTool {
	t.Helper()
	bin := findTool(t, "psql")
	return psqlTool{bin: bin, major: toolMajor(t, bin)}
}

func (ps psqlTool) args(dsn string, args []string) []string {
	return append([]string{"-X", "-w", "-A", "-t", "-q", "-d", dsn}, args...)
}

func (ps psqlTool) run(t *testing.T, env []string, dsn string, args ...string) toolResult {
	t.Helper()
	return runTool(t, env, t.TempDir(), "", ps.bin, ps.args(dsn, args)...)
}

func (ps psqlTool) mustRun(t *testing.T, env []string, dsn string, args ...string) toolResult {
	t.Helper()
	return mustRun(t, env, t.TempDir(), "", ps.bin, ps.args(dsn, args)...)
}

// TestPsqlSimpleQueries: several statements in one -c (one simple Query
// message with several results), several -c options, a large result read
// with and without FETCH_COUNT (a cursor), and an error exit.
func TestPsqlSimpleQueries(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ps := newPsql(t)
	env := toolEnv(t)
	dsn := p.ConnString(pg.Super, db)
	before := connectionsTotal(p)

	r := ps.mustRun(t, env, dsn, "-c",
		"create table t (id int primary key, v text); insert into t values (1, 'a'), (2, 'héllo 日本'); "+
			"select count(*) from t; select string_agg(v, ',' order by id) from t")
	want := "2\na,héllo 日本\n"
	if ps.major > 0 && ps.major < 15 {
		want = "a,héllo 日本\n" // psql before 15 shows only the last result
	}
	if r.stdout != want {
		t.Errorf("multi-statement -c printed %q, want %q", r.stdout, want)
	}

	r = ps.mustRun(t, env, dsn, "-c", "insert into t values (3, null)", "-c", "select id, coalesce(v, 'NULL') from t order by id")
	if want := "1|a\n2|héllo 日本\n3|NULL\n"; r.stdout != want {
		t.Errorf("second -c printed %q, want %q", r.stdout, want)
	}

	const bigN = 20000
	for _, fetch := range []string{"0", "1000"} {
		r = ps.mustRun(t, env, dsn, "-v", "FETCH_COUNT="+fetch, "-c", "select g, md5(g::text) from generate_series(1, "+itoa(bigN)+") g")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != bigN || lines[bigN-1] != itoa(bigN)+"|"+md5hex(itoa(bigN)) {
			t.Errorf("FETCH_COUNT=%s: %d lines, last %q", fetch, len(lines), lines[len(lines)-1])
		}
	}

	errsBefore := p.errorCount(metrics.ErrBackend)
	r = ps.run(t, env, dsn, "-c", "select 1/0")
	if r.exit != 1 || !strings.Contains(r.stderr, "division by zero") {
		t.Errorf("want exit 1 with a division by zero error: %v", r)
	}
	if n := p.errorCount(metrics.ErrBackend) - errsBefore; n != 1 {
		t.Errorf("proxy counted %v backend errors, want 1", n)
	}

	// What psql wrote, read behind the proxy's back.
	conn := pg.SuperConn(t, db)
	var agg string
	if err := conn.QueryRow(testCtx(t), "select string_agg(id || ':' || coalesce(v, 'NULL'), ',' order by id) from t").Scan(&agg); err != nil {
		t.Fatal(err)
	}
	if want := "1:a,2:héllo 日本,3:NULL"; agg != want {
		t.Errorf("table t holds %q, want %q", agg, want)
	}
	expectConnections(t, p, before, 5, false)
	expectNoProxyFaults(t, p)
}

// md5hex is PostgreSQL's md5(text).
func md5hex(s string) string {
	return fmt.Sprintf("%x", md5.Sum([]byte(s)))
}

// TestPsqlScript runs a -f script with variables, \echo, \gset, errors in
// the middle (ON_ERROR_STOP off), an aborted transaction and \copy from
// stdin (one good, one failing): the one connection keeps working to the
// end.
func TestPsqlScript(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ps := newPsql(t)
	dir := t.TempDir()
	script := `\set greeting 'hello from psql'
\echo :greeting
select pg_backend_pid() as pid \gset
create table s (id int primary key, note text);
insert into s values (1, :'greeting');
select 1/0;
insert into s values (1, 'duplicate');
insert into s values (2, 'after errors');
\echo after :ERROR :LAST_ERROR_SQLSTATE
select count(*) from s;
begin;
insert into s values (3, 'rolled back');
select * from no_such_table;
insert into s values (30, 'ignored');
commit;
\echo tx :LAST_ERROR_SQLSTATE
insert into s values (4, 'after the aborted transaction');
\copy s from stdin
5	from stdin
6	\N
\.
\copy s from stdin
7	good
x	bad id
\.
select string_agg(id || '=' || coalesce(note, 'NULL'), ';' order by id) from s;
select pg_backend_pid() = :pid as same_backend;
\echo done
`
	file := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	before := connectionsTotal(p)
	errsBefore := p.errorCount(metrics.ErrBackend)
	r := mustRun(t, toolEnv(t), dir, "", ps.bin, ps.args(p.ConnString(pg.Super, db), []string{"-v", "ON_ERROR_STOP=0", "-f", file})...)
	want := strings.Join([]string{
		"hello from psql",
		"after false 23505",
		"2",
		"tx 25P02",
		"1=hello from psql;2=after errors;4=after the aborted transaction;5=from stdin;6=NULL",
		"t",
		"done",
	}, "\n") + "\n"
	if r.stdout != want {
		t.Errorf("script printed\n%s\nwant\n%s\nstderr:\n%s", r.stdout, want, r.stderr)
	}
	for _, msg := range []string{
		"division by zero",
		"duplicate key value violates unique constraint",
		`relation "no_such_table" does not exist`,
		"current transaction is aborted",
		`invalid input syntax for type integer: "x"`,
	} {
		if !strings.Contains(r.stderr, msg) {
			t.Errorf("stderr lacks %q:\n%s", msg, r.stderr)
		}
	}
	if n := p.errorCount(metrics.ErrBackend) - errsBefore; n != 5 {
		t.Errorf("proxy counted %v backend errors, want 5", n)
	}

	conn := pg.SuperConn(t, db)
	rows, err := conn.Query(testCtx(t), "select id from s order by id")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int32{1, 2, 4, 5, 6}) {
		t.Errorf("table s holds ids %v, want [1 2 4 5 6]", ids)
	}
	expectConnections(t, p, before, 1, false)
	expectNoProxyFaults(t, p)
}

// TestPsqlCopy: \copy from a file, to a file (text and CSV) and from stdin
// in a script, with escapes, NULLs and non-ASCII text, checked against the
// table read directly.
func TestPsqlCopy(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ps := newPsql(t)
	env := toolEnv(t)
	dir := t.TempDir()
	ctx := testCtx(t)
	conn := pg.SuperConn(t, db)
	if _, err := conn.Exec(ctx, "create table t (id int primary key, name text, note text)"); err != nil {
		t.Fatal(err)
	}

	// COPY text format, in the escapes COPY TO writes back unchanged.
	const n = 5000
	var in strings.Builder
	for i := 1; i <= n; i++ {
		note := "note " + itoa(i)
		switch {
		case i%100 == 0:
			note = `\N`
		case i == 7:
			note = `tab\there`
		case i == 8:
			note = `back\\slash`
		case i == 9:
			note = `line\nbreak`
		case i%3 == 0:
			note = "héllo 日本 🐘"
		}
		fmt.Fprintf(&in, "%d\tname %d\t%s\n", i, i, note)
	}
	inFile := filepath.Join(dir, "in.tsv")
	if err := os.WriteFile(inFile, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "out.tsv")
	csvFile := filepath.Join(dir, "out.csv")
	before := connectionsTotal(p)
	ps.mustRun(t, env, p.ConnString(pg.Super, db),
		"-c", `\copy t from '`+inFile+`'`,
		"-c", `\copy t to '`+outFile+`'`,
		"-c", `\copy (select id, name, note from t where id between 6 and 10 order by id) to '`+csvFile+`' with (format csv, header)`)

	var count, nulls int
	var tab, backslash, newline, unicode string
	err := conn.QueryRow(ctx, `select count(*), count(*) filter (where note is null),
		(select note from t where id = 7), (select note from t where id = 8),
		(select note from t where id = 9), (select note from t where id = 3) from t`).
		Scan(&count, &nulls, &tab, &backslash, &newline, &unicode)
	if err != nil {
		t.Fatal(err)
	}
	if count != n || nulls != n/100 || tab != "tab\there" || backslash != `back\slash` || newline != "line\nbreak" || unicode != "héllo 日本 🐘" {
		t.Errorf("after \\copy from a file: %d rows, %d NULLs, notes %q %q %q %q", count, nulls, tab, backslash, newline, unicode)
	}
	out, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	inLines := strings.Split(strings.TrimSuffix(in.String(), "\n"), "\n")
	outLines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	slices.Sort(inLines)
	slices.Sort(outLines)
	if !slices.Equal(inLines, outLines) {
		t.Errorf("\\copy to a file wrote %d lines that differ from the %d loaded", len(outLines), len(inLines))
	}
	csv, err := os.ReadFile(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	wantCSV := "id,name,note\n6,name 6,héllo 日本 🐘\n7,name 7,tab\there\n8,name 8,back\\slash\n9,name 9,\"line\nbreak\"\n10,name 10,note 10\n"
	if string(csv) != wantCSV {
		t.Errorf("\\copy to CSV wrote %q, want %q", csv, wantCSV)
	}

	// \copy from stdin inside a -f script reads the rows from the script.
	script := "\\copy t from stdin\n" +
		"10001\tfrom stdin\t\\N\n" +
		"10002\tsecond\tnon-ASCII ü\n" +
		"\\.\n" +
		"select count(*) from t where id > 10000;\n"
	file := filepath.Join(dir, "copy.sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, env, dir, "", ps.bin, ps.args(p.ConnString(pg.Super, db), []string{"-v", "ON_ERROR_STOP=1", "-f", file})...)
	if r.stdout != "2\n" {
		t.Errorf("copy script printed %q, want \"2\\n\"", r.stdout)
	}
	var note string
	if err := conn.QueryRow(ctx, "select note from t where id = 10002").Scan(&note); err != nil || note != "non-ASCII ü" {
		t.Errorf("row 10002: %q, %v", note, err)
	}
	// \copy ... from pstdin reads psql's own standard input.
	r = mustRun(t, env, dir, "10003\tpiped\tvia pstdin\n", ps.bin,
		ps.args(p.ConnString(pg.Super, db), []string{"-v", "ON_ERROR_STOP=1", "-c", `\copy t from pstdin`})...)
	if err := conn.QueryRow(ctx, "select note from t where id = 10003").Scan(&note); err != nil || note != "via pstdin" {
		t.Errorf("row 10003: %q, %v", note, err)
	}
	expectConnections(t, p, before, 3, false)
	expectNoProxyFaults(t, p)
}

// TestPsqlPasswordAuth: psql logs in through the proxy with PGPASSWORD as
// the SCRAM, MD5 and cleartext-password roles, with and without an
// SSLRequest first, and a wrong password fails with PostgreSQL's message.
func TestPsqlPasswordAuth(t *testing.T) {
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	ps := newPsql(t)
	for _, key := range []string{pgtest.UserSCRAM, pgtest.UserMD5, pgtest.UserPassword} {
		t.Run(key, func(t *testing.T) {
			u := pg.User(t, key)
			for _, sslmode := range []string{"disable", "prefer"} {
				before := connectionsTotal(p)
				dsn := p.ConnString(noPassword(u), db, "sslmode="+sslmode)
				r := ps.mustRun(t, toolEnv(t, "PGPASSWORD="+u.Password), dsn, "-c", "select current_user, current_database()")
				if want := u.Name + "|" + db + "\n"; r.stdout != want {
					t.Errorf("sslmode=%s: printed %q, want %q", sslmode, r.stdout, want)
				}
				expectConnections(t, p, before, 1, false)
			}

			failedBefore := p.errorCount(metrics.ErrAuthFailed)
			r := ps.run(t, toolEnv(t, "PGPASSWORD=wrong-"+u.Password), p.ConnString(noPassword(u), db), "-c", "select 1")
			if r.exit != 2 || !strings.Contains(r.stderr, `password authentication failed for user "`+u.Name+`"`) {
				t.Errorf("wrong password: want exit 2 and PostgreSQL's error: %v", r)
			}
			if n := p.errorCount(metrics.ErrAuthFailed) - failedBefore; n != 1 {
				t.Errorf("proxy counted %v failed logins, want 1", n)
			}

			// No password at all: -w makes psql fail instead of prompting.
			r = ps.run(t, toolEnv(t), p.ConnString(noPassword(u), db), "-c", "select 1")
			if r.exit != 2 || !strings.Contains(r.stderr, "no password supplied") {
				t.Errorf("no password: want exit 2 and \"no password supplied\": %v", r)
			}
		})
	}
	expectNoProxyFaults(t, p)
}

// TestLibPQ runs lib/pq through database/sql: parameters, reused prepared
// statements, transactions, NULLs and bytea, with text parameters (two
// round trips per query) and with binary_parameters=yes (one).
func TestLibPQ(t *testing.T) {
	p := startProxy(t, nil)
	dbName := pg.NewDatabase(t)
	raw := pg.SuperConn(t, dbName)
	for _, mode := range []struct{ name, param string }{
		{"text_parameters", ""},
		{"binary_parameters", "binary_parameters=yes"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := testCtx(t)
			var params []string
			if mode.param != "" {
				params = append(params, mode.param)
			}
			before := connectionsTotal(p)
			db, err := sql.Open("postgres", p.ConnString(pg.Super, dbName, params...))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(2)

			var (
				n    int64
				s    string
				null sql.NullString
				ts   time.Time
			)
			wantTS := time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC)
			err = db.QueryRowContext(ctx, "select $1::int8 + 1, $2::text || '!', $3::text, $4::timestamptz",
				int64(41), "héllo 日本", nil, wantTS).Scan(&n, &s, &null, &ts)
			if err != nil {
				t.Fatal(err)
			}
			if n != 42 || s != "héllo 日本!" || null.Valid || !ts.Equal(wantTS) {
				t.Fatalf("got %d %q %v %v", n, s, null, ts)
			}

			table := pgx.Identifier{"pq_" + mode.name}.Sanitize()
			if _, err := db.ExecContext(ctx, "create table "+table+" (id int primary key, name text, data bytea)"); err != nil {
				t.Fatal(err)
			}
			blob := func(i int) []byte {
				if i%7 == 0 {
					return nil
				}
				b := make([]byte, 1+i*13%1000)
				rand.Read(b)
				b[0] = 0 // a NUL byte and bytes invalid as UTF-8 must survive
				return b
			}
			name := func(i int) any {
				if i%10 == 0 {
					return nil
				}
				return "name ü " + itoa(i)
			}
			const rowsN = 100
			want := make(map[int][]byte, rowsN)
			ins, err := db.PrepareContext(ctx, "insert into "+table+" values ($1, $2, $3)")
			if err != nil {
				t.Fatal(err)
			}
			defer ins.Close()
			for i := range rowsN {
				want[i] = blob(i)
				if _, err := ins.ExecContext(ctx, i, name(i), want[i]); err != nil {
					t.Fatalf("insert %d: %v", i, err)
				}
			}
			sel, err := db.PrepareContext(ctx, "select name, data from "+table+" where id = $1")
			if err != nil {
				t.Fatal(err)
			}
			defer sel.Close()
			for i := range rowsN {
				var gotName sql.NullString
				var data []byte
				if err := sel.QueryRowContext(ctx, i).Scan(&gotName, &data); err != nil {
					t.Fatalf("select %d: %v", i, err)
				}
				if (gotName.Valid != (name(i) != nil)) || (gotName.Valid && gotName.String != name(i)) {
					t.Errorf("row %d: name %v, want %v", i, gotName, name(i))
				}
				if !bytes.Equal(data, want[i]) || (data == nil) != (want[i] == nil) {
					t.Errorf("row %d: data of %d bytes (nil %v), want %d (nil %v)", i, len(data), data == nil, len(want[i]), want[i] == nil)
				}
			}
			// The same rows read behind the proxy's back.
			rows, err := raw.Query(ctx, "select id, data from "+table+" order by id")
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for rows.Next() {
				var id int
				var data []byte
				if err := rows.Scan(&id, &data); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, want[id]) || (data == nil) != (want[id] == nil) {
					t.Errorf("stored row %d differs", id)
				}
				seen++
			}
			if err := rows.Err(); err != nil || seen != rowsN {
				t.Fatalf("stored rows: %d, %v", seen, err)
			}

			// A rolled back transaction leaves nothing behind; a committed
			// one using the prepared statement does.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, 1000, "rolled back", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "update "+table+" set name = $1", "changed"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			tx, err = db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, 1001, "committed", []byte{}); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			var total, changed, empty int
			err = raw.QueryRow(ctx, "select count(*), count(*) filter (where name = 'changed'), count(*) filter (where data = ''::bytea and id = 1001) from "+table).
				Scan(&total, &changed, &empty)
			if err != nil || total != rowsN+1 || changed != 0 || empty != 1 {
				t.Errorf("after rollback and commit: %d rows, %d changed, %d empty bytea, %v", total, changed, empty, err)
			}

			// Errors, in both protocols, leave the same connection usable.
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var pid1, pid2 int
			if err := c.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&pid1); err != nil {
				t.Fatal(err)
			}
			_, err = c.ExecContext(ctx, "select 1/0")
			expectPQCode(t, err, "22012")
			var x int
			err = c.QueryRowContext(ctx, "select $1::int / 0", 1).Scan(&x)
			expectPQCode(t, err, "22012")
			_, err = c.ExecContext(ctx, "insert into "+table+" values ($1, 'dup', null)", 1)
			expectPQCode(t, err, "23505")
			if err := c.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&pid2); err != nil {
				t.Fatal(err)
			}
			if pid1 != pid2 {
				t.Errorf("backend changed after errors: %d, then %d", pid1, pid2)
			}
			c.Close()
			db.Close()
			expectConnections(t, p, before, 1, true)
		})
	}
	expectNoProxyFaults(t, p)
}

func expectPQCode(t *testing.T, err error, code string) {
	t.Helper()
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || string(pqErr.Code) != code {
		t.Errorf("want a PostgreSQL error %s, got %v", code, err)
	}
}

// TestLibPQCopyIn bulk-loads rows with pq.CopyIn (COPY FROM STDIN driven
// by lib/pq's copy statement) and checks them in the table.
func TestLibPQCopyIn(t *testing.T) {
	p := startProxy(t, nil)
	dbName := pg.NewDatabase(t)
	ctx := testCtx(t)
	raw := pg.SuperConn(t, dbName)
	if _, err := raw.Exec(ctx, "create table bulk (id int primary key, name text, data bytea, note text)"); err != nil {
		t.Fatal(err)
	}
	before := connectionsTotal(p)
	db, err := sql.Open("postgres", p.ConnString(pg.Super, dbName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	const n = 5000
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 lib/pq's CopyIn builder is what its users call.
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("bulk", "id", "name", "data", "note"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var note any = "tab\tnewline\nbackslash\\ ü " + itoa(i)
		if i%50 == 0 {
			note = nil
		}
		if _, err := stmt.ExecContext(ctx, i, "name "+itoa(i), []byte{byte(i), 0, 0xff}, note); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		t.Fatalf("flushing COPY: %v", err)
	}
	if err := stmt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	var count, nulls int
	var note string
	var data []byte
	err = raw.QueryRow(ctx, `select count(*), count(*) filter (where note is null),
		(select note from bulk where id = 4321), (select data from bulk where id = 4321) from bulk`).Scan(&count, &nulls, &note, &data)
	if err != nil {
		t.Fatal(err)
	}
	if count != n || nulls != n/50 || note != "tab\tnewline\nbackslash\\ ü 4321" || !bytes.Equal(data, []byte{byte(4321 % 256), 0, 0xff}) {
		t.Errorf("after COPY: %d rows, %d NULLs, row 4321 %q %x", count, nulls, note, data)
	}

	// A COPY the server rejects midway is rolled back and the connection
	// recovers.
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 lib/pq's CopyIn builder is what its users call.
	stmt, err = tx.PrepareContext(ctx, pq.CopyIn("bulk", "id", "name"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := stmt.ExecContext(ctx, n+i, "new"); err != nil {
			t.Fatal(err)
		}
	}
	// lib/pq buffers rows, so the server sees the duplicate at the flush.
	_, err = stmt.ExecContext(ctx, 1, "duplicate of row 1")
	if err == nil {
		_, err = stmt.ExecContext(ctx)
	}
	expectPQCode(t, err, "23505")
	stmt.Close()
	tx.Rollback()
	if err := db.QueryRowContext(ctx, "select count(*) from bulk").Scan(&count); err != nil || count != n {
		t.Errorf("after the failed COPY: %d rows, %v", count, err)
	}
	db.Close()
	expectConnections(t, p, before, 1, true)
	expectNoProxyFaults(t, p)
}

// TestLibPQListener receives notifications through the proxy with a
// pq.Listener, sent from a connection through the proxy and from one
// straight to PostgreSQL.
func TestLibPQListener(t *testing.T) {
	p := startProxy(t, nil)
	dbName := pg.NewDatabase(t)
	ctx := testCtx(t)
	before := connectionsTotal(p)

	type event struct {
		ev  pq.ListenerEventType
		err error
	}
	events := make(chan event, 16)
	l := pq.NewListener(p.ConnString(pg.Super, dbName), 10*time.Millisecond, time.Second,
		func(ev pq.ListenerEventType, err error) {
			select {
			case events <- event{ev, err}:
			default:
			}
		})
	defer l.Close()
	if err := l.Listen("pq_events"); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen("Mixed Case"); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("postgres", p.ConnString(pg.Super, dbName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := pg.SuperConn(t, dbName)

	receive := func(channel, payload string) {
		t.Helper()
		select {
		case n := <-l.NotificationChannel():
			if n == nil || n.Channel != channel || n.Extra != payload {
				t.Fatalf("got notification %+v, want %q on %q", n, payload, channel)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification %q on %q", payload, channel)
		}
	}
	if _, err := db.ExecContext(ctx, "notify pq_events, 'simple'"); err != nil {
		t.Fatal(err)
	}
	receive("pq_events", "simple")
	if _, err := db.ExecContext(ctx, "select pg_notify($1, $2)", "Mixed Case", "héllo 日本"); err != nil {
		t.Fatal(err)
	}
	receive("Mixed Case", "héllo 日本")
	if _, err := raw.Exec(ctx, "select pg_notify('pq_events', 'from behind the proxy')"); err != nil {
		t.Fatal(err)
	}
	receive("pq_events", "from behind the proxy")
	// Several at once, in a transaction: delivered at commit, in order.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := tx.ExecContext(ctx, "select pg_notify('pq_events', $1)", itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		receive("pq_events", itoa(i))
	}
	if err := l.Ping(); err != nil {
		t.Fatalf("listener ping: %v", err)
	}
	if err := l.Unlisten("Mixed Case"); err != nil {
		t.Fatal(err)
	}
	for len(events) > 0 {
		if e := <-events; e.ev != pq.ListenerEventConnected {
			t.Errorf("listener event %v (%v): the connection through the proxy was lost", e.ev, e.err)
		}
	}
	db.Close()
	expectConnections(t, p, before, 2, true)
	expectNoProxyFaults(t, p)
}

// nodeDir is test/node, where smoke.js and its package.json live.
func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "node"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeResult is the JSON line smoke.js prints.
type nodeResult struct {
	OK             bool           `json:"ok"`
	Simple         string         `json:"simple"`
	MultiStatement []int          `json:"multiStatement"`
	Params         map[string]any `json:"params"`
	Prepared       []int          `json:"prepared"`
	Tx             []int          `json:"tx"`
	Rows           int            `json:"rows"`
	Errors         []string       `json:"errors"`
	AfterError     int            `json:"afterError"`
	Notify         []string       `json:"notify"`
	ServerVersion  int            `json:"serverVersionNum"`
	Connections    int            `json:"connections"`
	ErrorsAfterEnd []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errorsAfterEnd"`
}

// TestNodePostgres runs test/node/smoke.js (node-postgres, npm "pg")
// through the proxy.
// nodeURL is the superuser's connection URL for db through the proxy:
// node-postgres takes URLs, not keyword/value strings.
func (p *testProxy) nodeURL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(pg.Super.Name, pg.Super.Password),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(p.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	if pg.Super.Password == "" {
		u.User = url.User(pg.Super.Name)
	}
	return u.String()
}

func TestNodePostgres(t *testing.T) {
	pg.Require(t)
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node not found on PATH")
	}
	dir := nodeDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pg", "package.json")); err != nil {
		skipOrFail(t, "node-postgres is not installed in %s: run `npm ci --prefix test/node`", dir)
	}
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	before := connectionsTotal(p)
	errsBefore := p.errorCount(metrics.ErrBackend)
	r := mustRun(t, toolEnv(t, "PGCRYPT_NODE_DSN="+p.nodeURL(db)), dir, "", node, "smoke.js")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var out nodeResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("smoke.js output is not JSON (%v): %v", err, r)
	}
	t.Logf("smoke.js: %s (%v)", lines[len(lines)-1], r.took.Round(time.Millisecond))
	switch {
	case !out.OK:
		t.Errorf("smoke.js reported failure: %v", r)
	case out.Simple != "simple" || !slices.Equal(out.MultiStatement, []int{1, 2}):
		t.Errorf("simple queries: %q %v", out.Simple, out.MultiStatement)
	case out.Params["u"] != "héllo 日本 🐘" || out.Params["i"] != float64(42) || out.Params["n"] != nil || out.Params["big"] != "9007199254740994":
		t.Errorf("parameters: %v", out.Params)
	case !slices.Equal(out.Prepared, []int{42, 100}):
		t.Errorf("prepared statement results %v", out.Prepared)
	case !slices.Equal(out.Tx, []int{2, 3}):
		t.Errorf("rows after the transactions: %v", out.Tx)
	case out.Rows != 1000:
		t.Errorf("multi-row result of %d rows", out.Rows)
	case !slices.Equal(out.Errors, []string{"22012", "22012", "23505", "25P02"}) || out.AfterError != 2:
		t.Errorf("errors %v, then %d", out.Errors, out.AfterError)
	case !slices.Equal(out.Notify, []string{"payload one", "héllo 日本 🐘"}):
		t.Errorf("notifications %q", out.Notify)
	case out.ServerVersion/10000 < 10:
		t.Errorf("server_version_num %d", out.ServerVersion)
	}
	for _, e := range out.ErrorsAfterEnd {
		if terminateRace && e.Code == "08006" {
			t.Logf("node-postgres got %s %q after end(): the known Terminate race (see terminateRace)", e.Code, e.Message)
			continue
		}
		t.Errorf("node-postgres got an error after end(): %s %q", e.Code, e.Message)
	}
	if n := p.errorCount(metrics.ErrBackend) - errsBefore; n != 4 {
		t.Errorf("proxy counted %v backend errors, want 4", n)
	}
	expectConnections(t, p, before, out.Connections, false)
	expectNoProxyFaults(t, p)
}

var (
	pgbenchProcessed = regexp.MustCompile(`number of transactions actually processed: (\d+)/(\d+)`)
	pgbenchFailed    = regexp.MustCompile(`number of failed transactions: (\d+)`)
)

// TestPgbench initialises a pgbench database through the proxy (COPY of
// 100000 rows, VACUUM, indexes), then runs short TPC-B-like workloads in
// each query mode: simple, extended and prepared. pgbench connects with
// libpq's default sslmode=prefer, so every session starts with an
// SSLRequest that the proxy declines.
func TestPgbench(t *testing.T) {
	bin := findTool(t, "pgbench")
	p := startProxy(t, nil)
	db := pg.NewDatabase(t)
	env := toolEnv(t)
	dir := t.TempDir()
	conn := []string{"-h", p.Host, "-p", strconv.Itoa(p.Port), "-U", pg.Super.Name}
	if pg.Super.Password != "" {
		env = append(env, "PGPASSWORD="+pg.Super.Password)
	}
	before := connectionsTotal(p)
	mustRun(t, env, dir, "", bin, append(append([]string{"-i", "-s", "1", "-q"}, conn...), db)...)
	raw := pg.SuperConn(t, db)
	ctx := testCtx(t)
	var accounts int
	if err := raw.QueryRow(ctx, "select count(*) from pgbench_accounts").Scan(&accounts); err != nil || accounts != 100000 {
		t.Fatalf("pgbench -i loaded %d accounts, %v", accounts, err)
	}
	expectConnections(t, p, before, 1, true)

	const clients, perClient = 4, 200
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			before := connectionsTotal(p)
			args := append([]string{"-M", mode, "-c", itoa(clients), "-j", "2", "-t", itoa(perClient)}, conn...)
			r := mustRun(t, env, dir, "", bin, append(args, db)...)
			m := pgbenchProcessed.FindStringSubmatch(r.stdout)
			want := itoa(clients * perClient)
			if m == nil || m[1] != want || m[2] != want {
				t.Fatalf("want %s/%s transactions processed: %v", want, want, r)
			}
			if m := pgbenchFailed.FindStringSubmatch(r.stdout); m != nil && m[1] != "0" {
				t.Errorf("%s failed transactions: %v", m[1], r)
			}
			t.Logf("pgbench -M %s: %s/%s transactions in %v", mode, m[1], m[2], r.took.Round(time.Millisecond))
			// Every transaction added one history row and kept the TPC-B
			// balances consistent (pgbench truncates history before a run).
			var history int
			var consistent bool
			err := raw.QueryRow(ctx, `select (select count(*) from pgbench_history),
				(select sum(abalance) from pgbench_accounts) = (select sum(bbalance) from pgbench_branches)
				and (select sum(bbalance) from pgbench_branches) = (select sum(tbalance) from pgbench_tellers)`).Scan(&history, &consistent)
			if err != nil || itoa(history) != want || !consistent {
				t.Errorf("after the run: %d history rows (want %s), balances consistent %v, %v", history, want, consistent, err)
			}
			expectConnections(t, p, before, clients, true)
		})
	}
	expectNoProxyFaults(t, p)
}
