package e2e

// An eighteenth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit 4648cbe. Its themes:
//
//   - the fast paths: the shape cache (rewrite/shape.go), warmed with a
//     benign statement and then sent a variant of the same shape whose
//     strings hold comment, dollar-quote and statement-separator
//     characters, or that moves offsets the plan records (schema
//     qualification, column lists, statement bounds); texts the fast
//     scanner must lex as PostgreSQL does (nested comments, -- and /*
//     inside operators, $ in identifiers, dollar tags);
//   - settings that change what a literal's bytes mean rather than where
//     it ends: standard_conforming_strings turned off in the same query
//     (\x41 is an escape then), client_encoding switched in a pipeline or
//     before the Bind of a statement parsed under UTF8;
//   - reloads with statements in flight: a policy replaced between the
//     Parse and the Bind of one pipeline, or while a COPY FROM STDIN is
//     under way; a session opened without a policy in the middle of a
//     COPY when one is loaded; a keys reload and an SQL-prepared
//     statement run by a Parse of EXECUTE, or by EXPLAIN ANALYZE EXECUTE.
//
// Failing at 4648cbe: a Bind sent after a policy reload in a group whose
// Parse came before it, and COPY rows sent after the reload, are encrypted
// under the replaced policy (the new column's values reach PostgreSQL in
// plaintext); a Parse of EXECUTE and EXPLAIN ANALYZE EXECUTE run an SQL
// PREPARE's literals after a keys reload (searches miss rows, writes land
// under a retired key); a literal's bytes are taken as UTF8 with
// standard_conforming_strings on even when a reload or a pipelined SET has
// changed what the server makes of them, and a Bind after SET
// client_encoding is encrypted unconverted. The shape cache and the text
// screens held: every variant was encrypted or refused.
//
// The fixes: a session whose policy was replaced ends at its next
// message, whatever it is (not only at the next group); EXECUTE without
// arguments, in a Parse or inside EXPLAIN, has its prepared statement's
// literal stamp checked, at each Execute too; a text
// with a non-ASCII byte or a backslash, and a Bind whose encrypted value
// has a non-ASCII byte, wait for the answers to what was sent before them
// (a Flush, the proxy's pipeline barrier) when those may have changed
// client_encoding or standard_conforming_strings; a Bind under another
// client_encoding is refused. A value in a '…' literal holding a
// backslash, read by the server as escapes after a reload that the
// proxy learns of only afterwards, stays a documented limit: refusing
// every such literal broke drivers that send literals (pgx's simple
// protocol).

import (
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// notesPolicy18 is the fixture's policy with clients.notes added: a
// reload that changes the policy's columns.
func notesPolicy18(t *testing.T, f *encFixture) *proxy.Policy {
	t.Helper()
	specs := append(seedColumns(), proxy.ColumnSpec{Schema: "public", Table: "clients", Column: "notes", AssociatedData: []byte("public.clients.notes")})
	pol, err := proxy.NewPolicy(specs, keyring17(t, f, "v1", "v1"), false, f.p.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// plainNotes18 counts clients rows whose notes hold marker in plaintext.
func plainNotes18(t *testing.T, f *encFixture, marker string) int {
	t.Helper()
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM clients WHERE notes LIKE '%'||$1||'%'", marker).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// receiveUntil18 reads messages up to the first of type T (or an error).
func receiveUntil18[T pgproto3.BackendMessage](t *testing.T, fe *pgproto3.Frontend) []pgproto3.BackendMessage {
	t.Helper()
	var out []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		t.Logf("<- %T %+v", m, m)
		out = append(out, m)
		if _, ok := m.(T); ok {
			return out
		}
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			t.Fatalf("error while waiting: %s %s", e.Code, e.Message)
		}
	}
}

// Leaks: proxy/frontend.go frontend checks s.srv.policy.Load() != sp.p only when sp.atBoundary (the message starts a group): a Bind sent after the reload in a group whose Parse came before it is encrypted under the replaced policy, so the new policy column's value reaches PostgreSQL in plaintext (README: "ends at its next statement").
// TestAttackReloadMidGroup18: a Parse, a reload that adds clients.notes to
// the policy, then the Bind of that Parse in the same pipeline.
func TestAttackReloadMidGroup18(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Parse{Name: "mid18", Query: "INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'F', 'L', $1 FROM workspaces"})
	fe.Send(&pgproto3.Flush{})
	fe.Flush()
	receiveUntil18[*pgproto3.ParseComplete](t, fe)
	f.p.Server.SetPolicy(notesPolicy18(t, f))
	fe.Send(&pgproto3.Bind{PreparedStatement: "mid18", Parameters: [][]byte{[]byte("MID18_SECRET")}})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	ms, err := untilZ(t, fe)
	t.Logf("after the reload: %d messages, %v", len(ms), err)
	if n := plainNotes18(t, f, "MID18_SECRET"); n != 0 {
		t.Errorf("LEAK: a Bind sent after the reload stored %d plaintext values of the new policy column clients.notes", n)
	}
}

// Leaks: proxy/frontend.go frontend hands CopyData ('d') to frontendCopyMessage before any policy check, and proxy/frontend_copy.go frontendCopy goes on with the codec of the replaced policy: rows sent after a reload that added clients.notes store it in plaintext for as long as the COPY lasts.
// TestAttackReloadDuringCopy18: COPY FROM STDIN started, the policy
// reloaded with clients.notes added, then the rows.
func TestAttackReloadDuringCopy18(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	ctx := testCtx(t)
	var ws string
	if err := f.direct.QueryRow(ctx, "SELECT id::text FROM workspaces LIMIT 1").Scan(&ws); err != nil {
		t.Fatal(err)
	}
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "COPY clients (workspace_id, first_name, last_name, notes) FROM STDIN"})
	fe.Flush()
	receiveUntil18[*pgproto3.CopyInResponse](t, fe)
	fe.Send(&pgproto3.CopyData{Data: []byte(ws + "\tF\tL\tbefore the reload\n")})
	fe.Flush()
	f.p.Server.SetPolicy(notesPolicy18(t, f))
	fe.Send(&pgproto3.CopyData{Data: []byte(ws + "\tF\tL\tCOPY18_SECRET\n")})
	fe.Send(&pgproto3.CopyDone{})
	fe.Flush()
	ms, err := untilZ(t, fe)
	t.Logf("after the reload: %d messages, %v", len(ms), err)
	if n := plainNotes18(t, f, "COPY18_SECRET"); n != 0 {
		t.Errorf("LEAK: a COPY row sent after the reload stored %d plaintext values of the new policy column clients.notes", n)
	}
}

// TestAttackRelayCopyThenPolicy18: a session opened while the proxy had
// no policy is in a COPY FROM STDIN when a reload gives it one: the rows
// that follow must not reach the server.
func TestAttackRelayCopyThenPolicy18(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	ctx := testCtx(t)
	var ws string
	if err := f.direct.QueryRow(ctx, "SELECT id::text FROM workspaces LIMIT 1").Scan(&ws); err != nil {
		t.Fatal(err)
	}
	pol := f.p.Server.Policy()
	f.p.Server.SetPolicy(nil)
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "COPY clients (workspace_id, first_name, last_name) FROM STDIN"})
	fe.Flush()
	receiveUntil18[*pgproto3.CopyInResponse](t, fe)
	f.p.Server.SetPolicy(pol)
	fe.Send(&pgproto3.CopyData{Data: []byte(ws + "\tRELAYCOPY18_SECRET\tL\n")})
	fe.Send(&pgproto3.CopyDone{})
	fe.Flush()
	ms, err := untilZ(t, fe)
	if err == nil && !hasFatal(ms) {
		t.Errorf("the relay session went on after the policy was loaded: %v", ms)
	}
	var n int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM clients WHERE first_name LIKE 'RELAYCOPY18%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("LEAK: %d plaintext rows (%v)", n, err)
	}
}

// TestAttackReloadPipelineAcrossSync18: a statement parsed before a reload
// that adds clients.notes to the policy, bound after it in a new group:
// the session ends there (the control for TestAttackReloadMidGroup18).
func TestAttackReloadPipelineAcrossSync18(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Parse{Name: "sync18", Query: "INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'F', 'L', $1 FROM workspaces"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	f.p.Server.SetPolicy(notesPolicy18(t, f))
	// A new group: the session must end here, before the Bind.
	fe.Send(&pgproto3.Bind{PreparedStatement: "sync18", Parameters: [][]byte{[]byte("SYNC18_SECRET")}})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	ms, err := untilZ(t, fe)
	if err == nil && !hasFatal(ms) {
		t.Errorf("the session went on after the policy was replaced")
	}
	if n := plainNotes18(t, f, "SYNC18_SECRET"); n != 0 {
		t.Errorf("LEAK: %d plaintext values of clients.notes", n)
	}
}

// scanRows18 matches the actual row count of EXPLAIN ANALYZE's scan of
// clients.
var scanRows18 = regexp.MustCompile(`Scan on clients.*actual rows=(\d+)`)

// Wrong: proxy/frontend_stmts.go statementValues checks the literals of an SQL-prepared statement (currentParams, errKeysChanged) only when the statement that runs it is a bare EXECUTE (Kind StmtExecute without arguments) and only when that text is planned: a Parse of "EXECUTE s" is checked once, at Parse (its own litsGen is 0, so currentParams of the Parse's statement at each later Bind checks nothing), and EXPLAIN ANALYZE EXECUTE s (Kind StmtExplain, no arguments) never. After a keys reload the search misses the rows under the new version, and the write lands under a retired key.
// TestAttackKeysReloadExecuteForms18: SQL PREPAREd statements holding
// literals, run after a keys reload by a Parse of EXECUTE and by EXPLAIN
// ANALYZE EXECUTE (a bare EXECUTE is refused: the control).
func TestAttackKeysReloadExecuteForms18(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	setKeys17(t, f, "v1", "v1")
	ctx := testCtx(t)
	c := f.connect(t, pgx.QueryExecModeExec)
	ins := func() {
		t.Helper()
		if _, err := c.Exec(ctx, "INSERT INTO clients (workspace_id, first_name, last_name, email) VALUES ("+ws17+", 'P', 'L', 'p18@example.com')"); err != nil {
			t.Fatal(err)
		}
	}
	ins()
	fe, _ := failRaw(t, f)
	for _, q := range []string{
		"PREPARE s18 AS SELECT count(*) FROM clients WHERE email = 'p18@example.com'",
		"PREPARE w18 AS INSERT INTO clients (workspace_id, first_name, last_name, email, notes) VALUES (" + ws17 + ", 'W', 'L', 'w18@example.com', 'W18')",
	} {
		if ms := rawQuery(t, fe, q); hasFatal(ms) {
			t.Fatalf("%s: %v", q, ms)
		}
	}
	fe.Send(&pgproto3.Parse{Name: "xs18", Query: "EXECUTE s18"})
	fe.Send(&pgproto3.Parse{Name: "xw18", Query: "EXECUTE w18"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if ms := failUntilZ(t, fe); hasFatal(ms) {
		t.Fatalf("parse: %v", ms)
	}
	setKeys17(t, f, "v2", "v1", "v2")
	ins() // p18 now under v1 and v2: two rows
	count := func(ms []pgproto3.BackendMessage) string {
		rows := rowsOfAll(ms)
		if len(rows) == 0 || len(rows[len(rows)-1].Values) == 0 {
			return ""
		}
		return string(rows[len(rows)-1].Values[0])
	}
	if ms := rawQuery(t, fe, "EXECUTE s18"); !hasFatal(ms) && count(ms) != "2" {
		t.Errorf("WRONG (control): EXECUTE s18 after the reload counts %q, want 2", count(ms))
	}
	fe.Send(&pgproto3.Bind{PreparedStatement: "xs18"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if ms := failUntilZ(t, fe); !hasFatal(ms) && count(ms) != "2" {
		t.Errorf("WRONG: Parse of EXECUTE s18, bound after the keys reload, counts %q, want 2 (or a refusal)", count(ms))
	}
	ms := rawQuery(t, fe, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE s18")
	if !hasFatal(ms) {
		var plan strings.Builder
		for _, r := range rowsOfAll(ms) {
			plan.Write(r.Values[0])
			plan.WriteByte('\n')
		}
		if m := scanRows18.FindStringSubmatch(plan.String()); m == nil || m[1] != "2" {
			t.Errorf("WRONG: EXPLAIN ANALYZE EXECUTE s18 after the keys reload scans %v rows, want 2 (or a refusal):\n%s", m, plan.String())
		}
	}
	// v1 retired: w18's literal is under a key the proxy no longer has.
	setKeys17(t, f, "v2", "v2")
	v1Rows := func() int {
		var n int
		if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM clients WHERE notes = 'W18' AND email LIKE 'v1:%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if ms := rawQuery(t, fe, "EXECUTE w18"); !hasFatal(ms) || v1Rows() != 0 {
		t.Errorf("control: EXECUTE w18 after v1 was retired ran (%d rows under v1)", v1Rows())
	}
	fe.Send(&pgproto3.Bind{PreparedStatement: "xw18"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	if n := v1Rows(); n != 0 {
		t.Errorf("WRONG: Parse of EXECUTE w18, bound after v1 was retired, wrote %d rows under v1, which no longer read", n)
	}
	rawQuery(t, fe, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE w18")
	if n := v1Rows(); n != 0 {
		t.Errorf("WRONG: EXPLAIN ANALYZE EXECUTE w18 after v1 was retired wrote %d rows under v1 in all", n)
	}
}

// TestAttackRotateShapeForms18: during a rotation (a17 under v1 and v2),
// texts the shape cache serves after a warm-up, and cursors, COPY TO and
// a Parse of PREPARE, find the rows under both versions or are refused.
func TestAttackRotateShapeForms18(t *testing.T) {
	f := rotFixture17(t, "")
	counts17(t, f, []count17{
		{"SELECT count(*) FROM clients WHERE email = 'zz18@example.com' AND notes IS DISTINCT FROM 'n1'", nil, 0, "", 0},
		{"SELECT count(*) FROM clients WHERE email = 'a17@example.com' AND notes IS DISTINCT FROM 'n2'", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email IN ('x18', 'y18') AND 'p' <> 'q'", nil, 0, "", 0},
		{"SELECT count(*) FROM clients WHERE email IN ('a17@example.com', 'c17@example.com') AND 'p' <> 'r'", nil, 3, "", 0},
		{"SELECT count(*) FROM clients WHERE email <> 'x18' AND 's' = 's'", nil, 4, "", 0},
		{"SELECT count(*) FROM clients WHERE email <> 'a17@example.com' AND 't' = 't'", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email IN (SELECT e FROM (VALUES ('a17@example.com')) v(e))", nil, 2, "", 0},
		{"SELECT count(*) FROM clients c, LATERAL (SELECT 'a17@example.com'::text AS e) v WHERE c.email = v.e", nil, 2, "", 0},
		{"SELECT count(*) FROM clients WHERE email = 'a17@example.com' OR email = 'b17@example.com'", nil, 3, "", 0},
		{"SELECT count(*) FROM clients WHERE NOT (email <> 'a17@example.com')", nil, 2, "", 0},
	})
	fe, _ := failRaw(t, f)
	check := func(what string, ms []pgproto3.BackendMessage, want int) {
		t.Helper()
		if hasFatal(ms) {
			t.Logf("refused: %s", what)
			return
		}
		n := 0
		for _, m := range ms {
			switch m := m.(type) {
			case *pgproto3.DataRow:
				n++
			case *pgproto3.CopyData:
				n += strings.Count(string(m.Data), "\n")
			}
		}
		if n != want {
			t.Errorf("WRONG: %s gave %d rows, want %d", what, n, want)
		}
	}
	check("cursor", rawQuery(t, fe, "BEGIN; DECLARE c18 CURSOR FOR SELECT id FROM clients WHERE email = 'a17@example.com'; FETCH ALL c18; COMMIT"), 2)
	check("COPY TO", rawQuery(t, fe, "COPY (SELECT id FROM clients WHERE email = 'a17@example.com') TO STDOUT"), 2)
	fe.Send(&pgproto3.Parse{Name: "pp18", Query: "PREPARE q18 AS SELECT id FROM clients WHERE email = 'a17@example.com'"})
	fe.Send(&pgproto3.Bind{PreparedStatement: "pp18"})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if ms := failUntilZ(t, fe); !hasFatal(ms) {
		check("Parse of PREPARE, then EXECUTE", rawQuery(t, fe, "EXECUTE q18"), 2)
	}
}

// storedBody18 checks legacy_notes row id (storedLegacyBody).
func storedBody18(id int, suffix string) func(t *testing.T, f *encFixture) {
	return storedLegacyBody("SECRET_18", id, suffix)
}

// storedBodyEither18 is storedBody18 where a documented limit allows the
// value as the client wrote it (asWritten) besides what PostgreSQL would
// have stored (asServer).
func storedBodyEither18(id int, asServer, asWritten string) func(t *testing.T, f *encFixture) {
	return storedLegacyBody("SECRET_18", id, asServer, asWritten)
}

func attackCases18() []attackCase {
	const setSCSOff = "SELECT set_config('standard_conforming_strings', 'off', false); "
	return []attackCase{
		// 1. The shape cache: warm with a benign text, then a variant of
		// the same shape.
		{name: "shape18/warm_then_policy_value", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT 'w' WHERE 'a' <> 'b'"),
			fl("INSERT INTO legacy_notes (body) SELECT 'SECRET' WHERE 'a' <> 'b'"),
		}},
		{name: "shape18/semicolons_in_first_statement_string", flights: []flight{
			fl("SELECT 'a'; INSERT INTO legacy_notes (body) VALUES ('b')"),
			fl("SELECT ';'';INSERT INTO x VALUES (''y'');'; INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "shape18/comment_openers_in_value", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a') /* c */ RETURNING id"),
			fl("INSERT INTO legacy_notes (body) VALUES ('*/ -- SECRET /*') /* c */ RETURNING id"),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "shape18/dollar_quotes_in_value", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a'), ('b')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('$$'), ('$q$SECRET$q$')"),
		}},
		{name: "shape18/dollar_quoted_plain_column_kept", flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'a', 'b', $n$n'$n$ FROM workspaces"),
			fl("INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'SECRET', 'b', $n$n'$n$ FROM workspaces"),
		}},
		{name: "shape18/nested_comment_hides_quote", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES (/* a /* b */ 'x' */ 'w')"),
			fl("INSERT INTO legacy_notes (body) VALUES (/* a /* b */ 'x' */ 'SECRET')"),
		}},
		{name: "shape18/longer_string_before_table_name", flights: []flight{
			fl("WITH v(x) AS (SELECT 'a'::text) INSERT INTO legacy_notes (body) SELECT x FROM v"),
			fl("WITH v(x) AS (SELECT 'SECRET and then some more text'::text) INSERT INTO legacy_notes (body) SELECT x FROM v"),
		}},
		{name: "shape18/column_list_after_longer_string", flights: []flight{
			fl("WITH v(x) AS (SELECT 'a'::text) INSERT INTO legacy_notes SELECT 1, x FROM v"),
			fl("WITH v(x) AS (SELECT 'SECRET with a longer tail'::text) INSERT INTO legacy_notes SELECT 2, x FROM v"),
			fl("SET search_path = tenant, public"),
			fl("WITH v(x) AS (SELECT 'SECRET'::text) INSERT INTO legacy_notes SELECT 3, x FROM v"),
		}},
		{name: "shape18/compare_after_warm", flights: []flight{
			fl("SELECT count(*) FROM clients WHERE email = 'a' AND notes = 'b'"),
			fl("SELECT count(*) FROM clients WHERE email = 'SECRET' AND notes = 'c'"),
			fl("SELECT count(*) FROM clients WHERE first_name = 'SECRET' AND notes = 'c'"),
		}},
		{name: "shape18/ident_with_dollar_before_string", flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT v$ FROM (SELECT 'w' AS v$) s"),
			fl("INSERT INTO legacy_notes (body) SELECT v$ FROM (SELECT 'SECRET' AS v$) s"),
		}},
		{name: "shape18/dash_dash_after_operator", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) SELECT 2 *--'\n 3, 'w'"),
			fl("INSERT INTO legacy_notes (id, body) SELECT 2 *--'\n 4, 'SECRET'"),
		}},
		{name: "shape18/slash_star_after_operator", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) SELECT 2 */* ' */ 3, 'w'"),
			fl("INSERT INTO legacy_notes (id, body) SELECT 2 */* ' */ 5, 'SECRET'"),
		}},
		{name: "shape18/quote_inside_dollar_tag_string", flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) SELECT length($a1$'$a1$), 'w'"),
			fl("INSERT INTO legacy_notes (id, body) SELECT length($a1$'$a1$), 'SECRET'"),
		}},
		{name: "shape18/continued_variant_of_warm", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET'\n'tail')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET' \r\n\t 'tail')"),
		}},
		{name: "shape18/e_and_n_string_variants", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a')"),
			fl("INSERT INTO legacy_notes (body) VALUES (E'SECRET')"),
			fl("INSERT INTO legacy_notes (body) VALUES (e'SECRET''q')"),
		}},
		{name: "shape18/unicode_string_variant", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a')"),
			fl("INSERT INTO legacy_notes (body) VALUES (U&'SECRET')"),
		}},
		{name: "shape18/extended_parse_after_simple_warm", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a') RETURNING body"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING body"), syncMsg()),
			fl(&pgproto3.Parse{Name: "sh18", Query: "INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING body"}, syncMsg()),
		}},
		{name: "shape18/second_statement_after_longer_first", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a'); INSERT INTO legacy_notes (body) VALUES ('b')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('" + strings.Repeat("long; ", 40) + "'); INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "shape18/newlines_inside_string", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a\nb')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('\nSECRET\n''\n')"),
			fl("INSERT INTO legacy_notes (body) VALUES ('x'\n\n'SECRET')"),
		}},
		{name: "shape18/returning_literal_warm_then_secret", flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('a') RETURNING body, 'r'"),
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET') RETURNING body, 'r2'"),
		}},
		// 2. Settings that change what a literal's bytes mean.
		// standard_conforming_strings turned off earlier in the same query:
		// \x41 would be an escape (refused: a relation named after a
		// statement that changes settings).
		{name: "lex18/scs_off_same_query_escape_value", check: storedBody18(1, "A"), flights: []flight{
			fl(setSCSOff + `INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\x41')`),
			fl("SET standard_conforming_strings = on"),
		}},
		{name: "lex18/scs_off_same_query_backslash_quote", flights: []flight{
			fl(setSCSOff + `INSERT INTO legacy_notes (id, body) VALUES (1, 'a\'), (2, ''), (3, 'SECRET')`),
			fl("SET standard_conforming_strings = on"),
		}},
		// Found at 4648cbe: rewrite/scs.go LiteralsDependOnSCS (used by proxy/planning.go lexingKnown) only refuses a backslash that moves where a '…' literal ends; rewrite/literal.go constValue reads the value as libpg_query does with standard_conforming_strings on. A reload by another connection turns it off before the next statement and is reported after it, so 'x\x41' is encrypted as x\x41 where PostgreSQL would store xA.
		// A documented limit (docs/sql.md, Lexing settings): the value is
		// encrypted as written with the setting on, which is what every
		// driver that sends literals means (pgx refuses its simple
		// protocol otherwise); refusing every such literal broke them.
		// No plaintext reaches the server either way.
		{name: "lex18/alter_system_scs_escape_value", check: storedBodyEither18(1, "A", `\x41`), flights: []flight{
			fl(direct("ALTER SYSTEM SET standard_conforming_strings = off"), direct("SELECT pg_reload_conf()"), direct("SELECT pg_sleep(0.3)")),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\x41')`),
			fl(direct("ALTER SYSTEM RESET standard_conforming_strings"), direct("SELECT pg_reload_conf()"), direct("SELECT pg_sleep(0.3)")),
			fl("SELECT 1"),
		}},
		{name: "lex18/scs_off_known_no_backslash", check: storedBody18(1, "_x"), flights: []flight{
			fl("SET standard_conforming_strings = off"),
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET')"),
			fl("WITH v(x) AS (VALUES ('SECRET')) INSERT INTO legacy_notes (id, body) SELECT 2, x FROM v"),
		}},
		// A LATIN1 byte that is not UTF-8: libpg_query refuses the text.
		{name: "enc18/pipelined_latin1_literal", check: storedBody18(1, "é"), flights: []flight{
			fl("SET client_encoding = 'LATIN1'", "INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xe9')"),
			fl("RESET client_encoding"),
		}},
		// Fault: proxy/planning.go lexingKnown returns nil for a text without a backslash whatever the unanswered statements before it may have set (right for where literals end, not for what their bytes mean), and proxy/frontend.go encryptLiterals encrypts the literal's bytes as sent: after a pipelined SET client_encoding = LATIN1, the LATIN1 text "Ã©" (bytes C3 A9, valid UTF-8) is stored as "é", where PostgreSQL would have converted it to UTF-8 "Ã©".
		{name: "enc18/pipelined_latin1_bytes_valid_utf8", check: storedBody18(1, "Ã©"), flights: []flight{
			fl("SET client_encoding = 'LATIN1'", "INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xc3\xa9')"),
			fl("RESET client_encoding"),
		}},
		// Fault: proxy/frontend_bind.go encryptParams (via frontendBind, currentParams) never looks at sessionPolicy.nonUTF8: a statement parsed under UTF8 and bound after SET client_encoding encrypts the parameter's LATIN1 bytes, which PostgreSQL would have converted (lexingKnown's errLexUTF8 covers statement texts only).
		{name: "enc18/bind_after_set_client_encoding", check: storedBody18(1, "é"), flights: []flight{
			fl(&pgproto3.Parse{Name: "enc18", Query: "INSERT INTO legacy_notes (id, body) VALUES (1, $1)"}, syncMsg()),
			fl("SET client_encoding = 'LATIN1'"),
			fl(&pgproto3.Bind{PreparedStatement: "enc18", Parameters: [][]byte{[]byte("SECRET\xe9")}}, &pgproto3.Execute{}, syncMsg()),
			fl("RESET client_encoding"),
		}},
		{name: "enc18/gbk_trail_backslash_pipelined", flights: []flight{
			fl("SET client_encoding = 'GBK'", "INSERT INTO legacy_notes (body) VALUES (E'\x81\\'), ('SECRET')"),
			fl("RESET client_encoding"),
		}},
		{name: "enc18/same_query_sjis_trail_backslash", flights: []flight{
			fl("SELECT set_config('client_encoding', 'SJIS', false); INSERT INTO legacy_notes (body) VALUES ('\x82\\'), ('SECRET')"),
			fl("RESET client_encoding"),
		}},
		// 3. Pipelines and prepared statements.
		{name: "pipe18/parse_execute_of_prepare_same_pipeline", flights: []flight{
			fl(&pgproto3.Parse{Name: "pe18", Query: "PREPARE ins18(text) AS INSERT INTO legacy_notes (body) VALUES ($1)"},
				&pgproto3.Bind{PreparedStatement: "pe18"}, &pgproto3.Execute{},
				&pgproto3.Parse{Name: "ex18", Query: "EXECUTE ins18('SECRET')"},
				&pgproto3.Bind{PreparedStatement: "ex18"}, &pgproto3.Execute{}, syncMsg()),
			fl("EXECUTE ins18('SECRET')"),
		}},
		{name: "pipe18/explain_analyze_execute_args", flights: []flight{
			fl("PREPARE ea18(text) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE ea18('SECRET')"),
			fl(ext("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE ea18($1)", "SECRET"), syncMsg()),
		}},
		{name: "pipe18/function_call_between_parse_and_bind", flights: []flight{
			fl(&pgproto3.Parse{Name: "fc18", Query: "INSERT INTO legacy_notes (body) VALUES ($1)"},
				&pgproto3.Flush{}),
			fl(callSetConfig("standard_conforming_strings", "off")),
			fl(&pgproto3.Bind{PreparedStatement: "fc18", Parameters: [][]byte{[]byte("SECRET")}}, &pgproto3.Execute{}, syncMsg()),
			fl("SET standard_conforming_strings = on"),
		}},
	}
}

func TestAttackSuite18(t *testing.T) { runAttacks(t, 18000, attackCases18()) }
