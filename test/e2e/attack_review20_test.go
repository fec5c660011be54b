package e2e

// A twentieth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit cd5b59a. Its themes:
//
//   - the latest mends attacked for gaps: the rule that refuses a
//     statement or Bind whose meaning depends on client_encoding or
//     standard_conforming_strings after the Execute of a statement that
//     may change them in the same group (proxy/planning.go
//     mayChangeLexing, lexingSettled; proxy/frontend_portals.go
//     sp.lexGroup): settings changed without the words it looks for
//     (U&"…" identifiers, COMMIT or END after SET LOCAL, the COMMIT of a
//     failed transaction, a view, a cursor or a protocol portal FETCHed
//     by SQL), portals resumed after MaxRows, Query and FunctionCall
//     between them; values PostgreSQL refuses as text in literals written
//     out raw, escapes that wrap (E'\501'), arrays in both formats, COPY
//     in CSV, text and binary; the barrier behind a COPY that has not
//     started yet;
//   - session lifecycle after the memory work (the startup goroutine
//     returns once an event loop adopts a session; readers wait through
//     the runtime poller): many sessions opening and closing at once,
//     clients that leave during startup or mid-message, the startup
//     timeout, Shutdown with sessions in startup, in authentication, idle
//     and adopted, policy reloads racing session startup, a startup packet
//     with the first Query pipelined behind it.
//
// Failing at cd5b59a (each marked "Fault:" above its case): a SET of
// client_encoding or standard_conforming_strings spelled as a U&"…"
// identifier, a COMMIT, END or COMMIT AND CHAIN that ends a SET LOCAL, and
// a view, cursor or rule that calls set_config all change the settings
// inside a group unseen (values stored as the server would not have read
// them, no plaintext); Shutdown overruns its deadline by the startup
// timeout while a client is silent or in authentication.
//
// The fixes: mayChangeLexing counts any U&"…" name and a text that starts
// with COMMIT or END; a text with a backslash is refused after any Execute
// in its group (a view, rule or trigger may call set_config); Shutdown
// ends the logins still under way (the server's startup context, whose
// cancellation cuts their sockets' deadlines). A view, rule, trigger or
// function that changes client_encoding inside a group stays a
// documented limit (docs/sql.md): no plaintext reaches the server.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgtest"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// storedBody20 checks legacy_notes row id (storedLegacyBody).
func storedBody20(id int, suffix string) func(t *testing.T, f *encFixture) {
	return storedLegacyBody("SECRET_20", id, suffix)
}

// bind20 is a Bind of named statement st with text parameters.
func bind20(st string, params ...string) pgproto3.FrontendMessage {
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	return &pgproto3.Bind{PreparedStatement: st, Parameters: vals}
}

// binTextArray20 is a one-dimensional text[] in binary format; each
// SECRET counts as the marker the harness puts there (8 bytes longer).
func binTextArray20(elems ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 25)
	b = binary.BigEndian.AppendUint32(b, uint32(len(elems)))
	b = binary.BigEndian.AppendUint32(b, 1)
	for _, e := range elems {
		b = binary.BigEndian.AppendUint32(b, uint32(len(e)+8*strings.Count(e, "SECRET")))
		b = append(b, e...)
	}
	return b
}

// binCopyText20 is binary COPY data of one row (int4 id, text body).
func binCopyText20(id int32, body []byte) []byte {
	b := []byte("PGCOPY\n\xff\r\n\x00")
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint32(b, 4)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)+8*strings.Count(string(body), "SECRET")))
	b = append(b, body...)
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

// insEscape20 writes 'SECRET\x41' as row 1: "SECRET\x41" with
// standard_conforming_strings on, "SECRETA" with it off.
const insEscape20 = `INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\x41')`

// insLatin20 writes 'SECRETé' (UTF-8 bytes) as row 1: "SECRETÃ©" when the
// server reads the text as LATIN1.
const insLatin20 = "INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xc3\xa9')"

// scsView20 is a view that turns standard_conforming_strings off when read.
const scsView20 = "; CREATE VIEW scs20 AS SELECT set_config('standard_conforming_strings', 'off', false) AS v"

const plain20 = "; CREATE TABLE plain20 (a text)"

func attackCases20() []attackCase {
	parseE := fl(&pgproto3.Parse{Name: "e20", Query: "INSERT INTO legacy_notes (id, body) VALUES (1, $1)"}, syncMsg())
	scsOn := fl("SET standard_conforming_strings = on")
	return []attackCase{
		// 1a. Settings changed inside a group without the words mayChangeLexing looks for.
		// Fault: proxy/planning.go mayChangeLexing matches raw words (rewrite.MentionsAnyWord), so SET U&"standard\005fconforming\005fstrings" (the name as a Unicode-escaped identifier) is not seen: proxy/frontend_portals.go frontendExecute leaves sp.lexGroup, lexingSettled lets the next Parse through, and 'x\x41' is encrypted as written where PostgreSQL, with the setting off, stores "xA".
		{name: "lex20/u_escape_set_scs_then_parse_escape", check: storedBody20(1, "A"), flights: []flight{
			fl(ext(`SET U&"standard\005fconforming\005fstrings" = off`), ext(insEscape20), syncMsg()),
			scsOn,
		}},
		// Fault: as above for client_encoding (proxy/planning.go mayChangeLexing): SET U&"client\005fencoding" = 'LATIN1' is not seen, the Parse's "é" is encrypted as UTF-8 where PostgreSQL reads "Ã©".
		{name: "lex20/u_escape_set_encoding_then_parse_literal", check: storedBody20(1, "Ã©"), flights: []flight{
			fl(ext(`SET U&"client\005fencoding" = 'LATIN1'`), ext(insLatin20), syncMsg()),
			fl("RESET client_encoding"),
		}},
		// Fault: as above, for a Bind (proxy/frontend.go frontendBind: encodingUnsure false because lexGroup was not set by proxy/frontend_portals.go frontendExecute, mayChangeLexing missing the U& name).
		{name: "lex20/u_escape_set_encoding_then_bind", check: storedBody20(1, "Ã©"), flights: []flight{
			parseE,
			fl(ext(`SET U&"client\005fencoding" = 'LATIN1'`), bind20("e20", "SECRET\xc3\xa9"), &pgproto3.Execute{}, syncMsg()),
			fl("RESET client_encoding"),
		}},
		{name: "lex20/u_escape_set_config_call", check: storedBody20(1, "A"), flights: []flight{
			fl(ext(`SELECT U&"set\005fconfig"(U&'standard\005fconforming\005fstrings', 'off', false)`), ext(insEscape20), syncMsg()),
			scsOn,
		}},
		{name: "lex20/update_pg_settings_escaped", check: storedBody20(1, "A"), flights: []flight{
			fl(ext(`UPDATE U&"pg\005fsettings" SET setting = 'off' WHERE name = U&'standard\005fconforming\005fstrings'`), ext(insEscape20), syncMsg()),
			scsOn,
		}},
		// Fault: proxy/planning.go lexWords has rollback and abort but not commit or end: a COMMIT ends a SET LOCAL (the setting returns to the session's off), PostgreSQL reports it only at the Sync, and the Parse after it in the group is lexed with the reported on: 'x\x41' is stored as written where PostgreSQL stores "xA".
		{name: "lex20/commit_after_set_local_scs", check: storedBody20(1, "A"), flights: []flight{
			fl("SET standard_conforming_strings = off"),
			fl("BEGIN", "SET LOCAL standard_conforming_strings = on"),
			fl(ext("COMMIT"), ext(insEscape20), syncMsg()),
			scsOn,
		}},
		// Fault: as above with END and client_encoding (proxy/planning.go lexWords lacks end/commit): the session's LATIN1 comes back at END, the literal's "é" is encrypted as UTF-8.
		{name: "lex20/end_after_set_local_encoding", check: storedBody20(1, "Ã©"), flights: []flight{
			fl("SET client_encoding = 'LATIN1'"),
			fl("BEGIN", "SET LOCAL client_encoding = 'UTF8'"),
			fl(ext("END"), ext(insLatin20), syncMsg()),
			fl("RESET client_encoding"),
		}},
		// Fault: as above with COMMIT AND CHAIN (proxy/planning.go lexWords).
		{name: "lex20/commit_and_chain_after_set_local", check: storedBody20(1, "A"), flights: []flight{
			fl("SET standard_conforming_strings = off"),
			fl("BEGIN", "SET LOCAL standard_conforming_strings = on"),
			fl(ext("COMMIT AND CHAIN"), ext(insEscape20), ext("COMMIT"), syncMsg()),
			// A refusal aborts the chained transaction, as any error would.
			fl("ROLLBACK"), scsOn,
		}},
		// Fault: the COMMIT of a failed transaction rolls back a plain SET (proxy/planning.go lexWords: "commit" is not a word that may change lexing).
		{name: "lex20/commit_of_failed_tx_reverts_set", check: storedBody20(1, "A"), flights: []flight{
			fl("SET standard_conforming_strings = off"),
			fl("BEGIN", "SET standard_conforming_strings = on", "SELECT 1/0"),
			fl(ext("COMMIT"), ext(insEscape20), syncMsg()),
			scsOn,
		}},
		{name: "lex20/rollback_to_savepoint_reverts_set", check: storedBody20(1, "A"), flights: []flight{
			fl("SET standard_conforming_strings = off"),
			fl("BEGIN", "SAVEPOINT a", "SET standard_conforming_strings = on"),
			fl(ext("ROLLBACK TO SAVEPOINT a"), ext(insEscape20), ext("COMMIT"), syncMsg()),
			fl("ROLLBACK"), scsOn,
		}},
		// Fault: proxy/planning.go mayChangeLexing sees only words of the text: a view whose query calls set_config (not a user function, which docs/sql.md names as the limit) changes standard_conforming_strings in the group unseen; proxy/frontend_portals.go frontendExecute leaves sp.lexGroup and the next Parse is lexed with the setting on.
		{name: "lex20/view_calls_set_config", ddl: scsView20, check: storedBody20(1, "A"), flights: []flight{
			fl(ext("SELECT v FROM scs20"), ext(insEscape20), syncMsg()),
			scsOn,
		}},
		// Fault: as above through a FETCH of a cursor over that view (proxy/planning.go mayChangeLexing: no word of the FETCH text; the DECLARE screen of docs/sql.md catches set_config only when written out).
		{name: "lex20/fetch_cursor_over_view", ddl: scsView20, check: storedBody20(1, "A"), flights: []flight{
			fl("BEGIN", "DECLARE c20 CURSOR FOR SELECT v FROM scs20"),
			fl(ext("FETCH c20"), ext(insEscape20), syncMsg()),
			fl("COMMIT"), scsOn,
		}},
		{name: "lex20/sql_fetch_of_protocol_portal", check: storedBody20(1, "A"), flights: []flight{
			fl("BEGIN"),
			fl(&pgproto3.Parse{Query: "SELECT set_config('standard_conforming_strings', 'off', false)"}, &pgproto3.Bind{DestinationPortal: "p20"}, syncMsg()),
			fl(ext("FETCH ALL FROM p20"), ext(insEscape20), syncMsg()),
			fl("COMMIT"), scsOn,
		}},
		{name: "lex20/portal_resumed_after_maxrows", check: storedBody20(1, "A"), flights: []flight{
			fl("BEGIN"),
			fl(&pgproto3.Parse{Query: "SELECT set_config('standard_conforming_strings', x, false) FROM (VALUES ('on'), ('off')) v(x)"},
				&pgproto3.Bind{DestinationPortal: "p20"}, &pgproto3.Execute{Portal: "p20", MaxRows: 1}, syncMsg()),
			fl(&pgproto3.Execute{Portal: "p20"}, ext(insEscape20), syncMsg()),
			fl("COMMIT"), scsOn,
		}},
		{name: "lex20/named_set_from_earlier_group", check: storedBody20(1, "A"), flights: []flight{
			fl(&pgproto3.Parse{Name: "s20", Query: "SET standard_conforming_strings = off"}, syncMsg()),
			fl(bind20("s20"), &pgproto3.Execute{}, ext(insEscape20), syncMsg()),
			scsOn,
		}},
		{name: "lex20/function_call_between_set_and_parse", check: storedBody20(1, "A"), flights: []flight{
			fl(ext("SET standard_conforming_strings = off"), callSetConfig("application_name", "x20"), ext(insEscape20), syncMsg()),
			scsOn,
		}},
		{name: "lex20/query_between_set_and_bind", check: storedBody20(1, "Ã©"), flights: []flight{
			parseE,
			fl(ext("SET client_encoding = 'LATIN1'"), q("SELECT 1"), bind20("e20", "SECRET\xc3\xa9"), &pgproto3.Execute{}, syncMsg()),
			fl("RESET client_encoding"),
		}},
		// Fault: as above through a rule whose action calls set_config: an INSERT into a plain table changes standard_conforming_strings (proxy/planning.go mayChangeLexing).
		{name: "lex20/rule_action_set_config", ddl: plain20 + "; CREATE RULE r20 AS ON INSERT TO plain20 DO ALSO SELECT set_config('standard_conforming_strings', 'off', false)",
			check: storedBody20(1, "A"), flights: []flight{
				fl(ext("INSERT INTO plain20 VALUES ('a')"), ext(insEscape20), syncMsg()),
				scsOn,
			}},
		// 1b. Values PostgreSQL refuses as text.
		{name: "val20/query_literal_raw_invalid_utf8", check: noLegacyRow(1), flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xff')"),
		}},
		{name: "val20/parse_literal_raw_invalid_utf8", check: noLegacyRow(1, 2), flights: []flight{
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xc3')"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (2, $$SECRET\xed\xa0\x80$$)"), syncMsg()),
		}},
		{name: "val20/escape_octal_wraps", check: allChecks(storedBody20(1, "A"), noLegacyRow(2)), flights: []flight{
			fl(`INSERT INTO legacy_notes (id, body) VALUES (1, E'SECRET\501')`),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (2, E'SECRET\400')`),
		}},
		{name: "val20/unicode_escape_nul", check: noLegacyRow(1, 2, 3), flights: []flight{
			fl(`INSERT INTO legacy_notes (id, body) VALUES (1, U&'SECRET\0000')`),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (2, E'SECRET\u0000')`),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (3, E'SECRET\xc3')`),
		}},
		{name: "val20/text_array_param_invalid", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", "{SECRET\xff,b}"), syncMsg()),
			fl(ext("SELECT id FROM clients WHERE email = ANY($1)", "{\"SECRET\x00\"}"), syncMsg()),
		}},
		{name: "val20/binary_array_param_invalid", flights: []flight{
			fl(&pgproto3.Parse{Query: "SELECT id FROM clients WHERE email = ANY($1)"},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{binTextArray20("a", "SECRET\x00b")}}, &pgproto3.Execute{}, syncMsg()),
			fl(&pgproto3.Parse{Query: "SELECT id FROM clients WHERE email = ANY($1::text[])"},
				&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{binTextArray20("SECRET\xe9")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "val20/copy_csv_invalid_utf8_and_nul", check: noLegacyRow(1, 2), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)", copyData("1,SECRET\xff\n"), copyDone()),
			fl("COPY legacy_notes (id, body) FROM STDIN (FORMAT csv)", copyData("2,\"SECRET\x00x\"\n"), copyDone()),
		}},
		{name: "val20/copy_text_escaped_nul", check: noLegacyRow(1, 2, 3), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", copyData("1\tSECRET\\000x\n"), copyDone()),
			fl("COPY legacy_notes (id, body) FROM STDIN", copyData("2\tSECRET\\x00\n"), copyDone()),
			fl("COPY legacy_notes (id, body) FROM STDIN", copyData("3\tSECRET\\xc3\n"), copyDone()),
		}},
		{name: "val20/copy_binary_nul", check: noLegacyRow(1), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)", &pgproto3.CopyData{Data: binCopyText20(1, []byte("SECRET\x00y"))}, copyDone()),
		}},
		// 1c. The barrier and COPY.
		{name: "bar20/slow_then_copy_then_nonascii_query", ddl: plain20, flights: []flight{
			fl("SELECT pg_sleep(0.3)", "COPY plain20 FROM STDIN", copyData("a\n"), "INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"),
		}},
		{name: "bar20/slow_then_ext_copy_then_nonascii_bind", ddl: plain20, flights: []flight{
			parseE,
			fl(ext("SELECT pg_sleep(0.3)"), ext("COPY plain20 FROM STDIN"), bind20("e20", "SECRET é"), &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bar20/copy_done_then_nonascii", ddl: plain20, check: storedBody20(2, "é"), flights: []flight{
			fl("COPY plain20 FROM STDIN", copyData("a\n"), copyDone(), "INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"),
		}},
		{name: "bar20/copy_fail_then_nonascii_bind", ddl: plain20, check: storedBody20(1, "é"), flights: []flight{
			parseE,
			fl("COPY plain20 FROM STDIN", copyData("a\n"), &pgproto3.CopyFail{Message: "no"}, bind20("e20", "SECRET é"), &pgproto3.Execute{}, syncMsg()),
		}},
	}
}

func TestAttackSuite20(t *testing.T) { runAttacks(t, 20000, attackCases20()) }

// backends20 counts the client backends on f's database besides the
// direct connection.
func backends20(t *testing.T, f *encFixture) int {
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// settled20 waits until the proxy has no session and f's database no
// backend but the direct connection.
func settled20(t *testing.T, f *encFixture, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		active := counterValue(f.p.Metrics.ConnectionsActive)
		b := backends20(t, f)
		if active == 0 && b == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("LEAK: %v after the clients left: pgcrypt_connections_active %v, %d backends", within, active, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startup20 is a StartupMessage for f's database.
func startup20(f *encFixture, user string) []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": user, "database": f.db}}).Encode(nil)
	return b
}

// msg20 encodes a frontend message.
func msg20(m pgproto3.FrontendMessage) []byte {
	b, _ := m.Encode(nil)
	return b
}

// plainRows20 counts rows holding marker in plaintext in a policy column
// or in clients.notes.
func plainRows20(t *testing.T, f *encFixture, marker string) int {
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT (SELECT count(*) FROM legacy_notes WHERE body LIKE '%'||$1||'%') + (SELECT count(*) FROM clients WHERE concat(first_name, notes) LIKE '%'||$1||'%')", marker).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttackSessionChurn20: many clients at once, each leaving at another
// point: before a byte, mid startup packet, after the startup packet
// without reading, mid-message, with a pipelined write unread, after a
// whole session. Every session ends, every backend goes, no plaintext.
func TestAttackSessionChurn20(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	st := startup20(f, pg.Super.Name)
	ins := msg20(&pgproto3.Query{String: "INSERT INTO legacy_notes (body) VALUES ('CHURN20_SECRET')"})
	var wg sync.WaitGroup
	for round := range 3 {
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", f.p.Addr)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				switch (i + round) % 7 {
				case 0: // nothing
				case 1:
					c.Write(st[:5])
				case 2:
					c.Write(st)
				case 3:
					c.Write(st)
					c.Read(make([]byte, 1))
					c.Write(ins[:7])
				case 4:
					c.Write(append(append([]byte(nil), st...), ins...))
				case 5:
					c.Write(st)
					fe := pgproto3.NewFrontend(c, c)
					for {
						m, err := fe.Receive()
						if err != nil {
							return
						}
						if _, ok := m.(*pgproto3.ReadyForQuery); ok {
							break
						}
					}
					c.Write(append(append([]byte(nil), ins...), msg20(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)"})...))
					time.Sleep(time.Duration(i%5) * time.Millisecond)
				case 6:
					c.Write(st)
					fe := pgproto3.NewFrontend(c, c)
					for {
						m, err := fe.Receive()
						if err != nil {
							return
						}
						if _, ok := m.(*pgproto3.ReadyForQuery); ok {
							break
						}
					}
					c.Write(append(append([]byte(nil), ins...), msg20(&pgproto3.Terminate{})...))
					for {
						if _, err := fe.Receive(); err != nil {
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	}
	settled20(t, f, 15*time.Second)
	if n := plainRows20(t, f, "CHURN20_SECRET"); n != 0 {
		t.Errorf("LEAK: %d plaintext rows", n)
	}
	if c := f.connect(t, pgx.QueryExecModeExec); c.Ping(testCtx(t)) != nil {
		t.Errorf("the proxy does not serve a new session")
	}
}

// TestAttackStartupTimeout20: clients that stall at each point of their
// startup are let go after the startup timeout, with their backends.
func TestAttackStartupTimeout20(t *testing.T) {
	f := newEncFixtureFunc(t, seedColumns(), false, "", func(o *proxy.Options) { o.StartupTimeout = 400 * time.Millisecond })
	pw := pg.User(t, pgtest.UserPassword)
	stalls := [][]byte{
		nil,
		startup20(f, pg.Super.Name)[:6],
		msg20(&pgproto3.SSLRequest{}),
		startup20(f, pw.Name), // waits for a password it never gets
	}
	var conns []net.Conn
	for _, b := range stalls {
		c, err := net.Dial("tcp", f.p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if b != nil {
			c.Write(b)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(8 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("HANG: stalled client %d still connected after %v (startup timeout 400ms)", i, time.Since(start))
				}
				break
			}
		}
	}
	settled20(t, f, 5*time.Second)
}

// shutdownWith20 opens the sessions open makes on a fresh proxy, calls
// Shutdown with a 500ms drain deadline and checks that it returns soon
// after, that the raw clients open returned are let go, and that no
// session or backend is left.
func shutdownWith20(t *testing.T, open func(f *encFixture) []net.Conn) {
	f := newEncFixtureFunc(t, seedColumns(), false, "", func(o *proxy.Options) { o.StartupTimeout = 10 * time.Second })
	conns := open(f)
	time.Sleep(300 * time.Millisecond)
	sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- f.p.Server.Shutdown(sctx) }()
	select {
	case err := <-done:
		t.Logf("Shutdown after %v: %v", time.Since(start), err)
	case <-time.After(4 * time.Second):
		t.Errorf("HANG: Shutdown with a 500ms deadline has not returned after 4s")
		<-done
		t.Logf("Shutdown returned after %v", time.Since(start))
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("LEAK: raw client %d still connected after Shutdown", i)
				}
				break
			}
		}
	}
	settled20(t, f, 5*time.Second)
	if n := plainRows20(t, f, "SHUT20_SECRET"); n != 0 {
		t.Errorf("LEAK: %d plaintext rows", n)
	}
}

// dial20 connects to f's proxy and writes b.
func dial20(t *testing.T, f *encFixture, b []byte) net.Conn {
	c, err := net.Dial("tcp", f.p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if b != nil {
		c.Write(b)
	}
	return c
}

// Fault: proxy/server.go Shutdown aborts at its deadline only the sessions in s.sessions (added after proxy/client.go negotiate), then waits in s.wg.Wait for the handle goroutines still in negotiate, which end only at the startup timeout: a client that has connected and said nothing (or sent half a startup packet) holds Shutdown past its context for up to the startup timeout (a minute by default, PostgreSQL's authentication_timeout).
// TestAttackShutdownSilentClient20: Shutdown while a client has
// connected and sent nothing.
func TestAttackShutdownSilentClient20(t *testing.T) {
	shutdownWith20(t, func(f *encFixture) []net.Conn {
		return []net.Conn{dial20(t, f, nil), dial20(t, f, startup20(f, pg.Super.Name)[:6])}
	})
}

// Fault: proxy/server.go Shutdown at its deadline calls session.abort, which closes only the server connection (proxy/session.go abort/closeServer); the startup goroutine blocks in proxy/session.go relayAuthResponse reading the client (s.cr.Next) until the startup deadline, and s.wg.Wait holds Shutdown that long.
// TestAttackShutdownDuringAuthentication20: Shutdown while a client is
// asked for a password it never sends.
func TestAttackShutdownDuringAuthentication20(t *testing.T) {
	pw := pg.User(t, pgtest.UserPassword)
	shutdownWith20(t, func(f *encFixture) []net.Conn {
		return []net.Conn{dial20(t, f, startup20(f, pw.Name))}
	})
}

// TestAttackShutdownIdleAndMidMessage20: Shutdown while sessions are idle
// on the event loop and one has sent half a Query.
func TestAttackShutdownIdleAndMidMessage20(t *testing.T) {
	shutdownWith20(t, func(f *encFixture) []net.Conn {
		ctx := testCtx(t)
		for range 4 {
			c, err := pgx.Connect(ctx, f.p.ConnString(pg.Super, f.db))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close(context.Background()) })
		}
		mid := dial20(t, f, startup20(f, pg.Super.Name))
		fe := pgproto3.NewFrontend(mid, mid)
		mid.SetDeadline(time.Now().Add(5 * time.Second))
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		mid.Write(msg20(&pgproto3.Query{String: "INSERT INTO legacy_notes (body) VALUES ('SHUT20_SECRET')"})[:9])
		return []net.Conn{mid}
	})
}

// notesPolicy20 is the fixture's policy with clients.notes added.
func notesPolicy20(t *testing.T, f *encFixture) *proxy.Policy {
	t.Helper()
	specs := append(seedColumns(), proxy.ColumnSpec{Schema: "public", Table: "clients", Column: "notes", AssociatedData: []byte("public.clients.notes")})
	pol, err := proxy.NewPolicy(specs, keyring17(t, f, "v1", "v1"), false, f.p.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// TestAttackReloadRacesStartup20: sessions start while a reload adds
// clients.notes to the policy; every one of them writes notes only after
// the reload has returned: none may store it in plaintext, and every
// session ends or works.
func TestAttackReloadRacesStartup20(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	st := startup20(f, pg.Super.Name)
	reloaded := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i%8) * 2 * time.Millisecond)
			c, err := net.Dial("tcp", f.p.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			c.Write(st)
			fe := pgproto3.NewFrontend(c, c)
			ready := false
			for !ready {
				m, err := fe.Receive()
				if err != nil {
					return
				}
				switch m.(type) {
				case *pgproto3.ReadyForQuery:
					ready = true
				case *pgproto3.ErrorResponse:
					return
				}
			}
			<-reloaded
			if i%2 == 0 {
				fe.Send(&pgproto3.Query{String: fmt.Sprintf("INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'f', 'l', 'RACE20_SECRET %d' FROM workspaces", i)})
			} else {
				fe.Send(&pgproto3.Parse{Query: "INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'f', 'l', $1 FROM workspaces"})
				fe.Send(&pgproto3.Bind{Parameters: [][]byte{[]byte(fmt.Sprintf("RACE20_SECRET %d", i))}})
				fe.Send(&pgproto3.Execute{})
				fe.Send(&pgproto3.Sync{})
			}
			fe.Flush()
			for {
				m, err := fe.Receive()
				if err != nil {
					return
				}
				if _, ok := m.(*pgproto3.ReadyForQuery); ok {
					break
				}
			}
			fe.Send(&pgproto3.Terminate{})
			fe.Flush()
		}()
	}
	time.Sleep(8 * time.Millisecond)
	f.p.Server.SetPolicy(notesPolicy20(t, f))
	close(reloaded)
	wg.Wait()
	if n := plainNotes18(t, f, "RACE20_SECRET"); n != 0 {
		t.Errorf("LEAK: %d rows store clients.notes in plaintext after the reload that added it", n)
	}
	settled20(t, f, 10*time.Second)
}

// TestAttackReloadIdleAdopted20: idle sessions (on the event loop) when a
// reload adds clients.notes: their next message ends them, in both
// protocols, with nothing stored in plaintext and no session left.
func TestAttackReloadIdleAdopted20(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	type sess struct {
		c  net.Conn
		fe *pgproto3.Frontend
	}
	var ss []sess
	for range 6 {
		fe, c := failRaw(t, f)
		ss = append(ss, sess{c, fe})
	}
	time.Sleep(100 * time.Millisecond)
	f.p.Server.SetPolicy(notesPolicy20(t, f))
	for i, s := range ss {
		s.c.SetDeadline(time.Now().Add(8 * time.Second))
		switch i % 3 {
		case 0:
			s.fe.Send(&pgproto3.Query{String: "INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'f', 'l', 'IDLE20_SECRET' FROM workspaces"})
		case 1:
			s.fe.Send(&pgproto3.Parse{Query: "INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'f', 'l', $1 FROM workspaces"})
			s.fe.Send(&pgproto3.Bind{Parameters: [][]byte{[]byte("IDLE20_SECRET")}})
			s.fe.Send(&pgproto3.Execute{})
			s.fe.Send(&pgproto3.Sync{})
		case 2:
			s.fe.Send(&pgproto3.FunctionCall{Function: setConfigOID, ArgFormatCodes: []uint16{0},
				Arguments: [][]byte{[]byte("application_name"), []byte("x"), []byte("false")}})
			s.fe.Send(&pgproto3.Query{String: "INSERT INTO clients (workspace_id, first_name, last_name, notes) SELECT id, 'f', 'l', 'IDLE20_SECRET' FROM workspaces"})
		}
		s.fe.Flush()
		for {
			if _, err := s.fe.Receive(); err != nil {
				break
			}
		}
	}
	if n := plainNotes18(t, f, "IDLE20_SECRET"); n != 0 {
		t.Errorf("LEAK: %d rows store clients.notes in plaintext after the reload", n)
	}
	settled20(t, f, 10*time.Second)
}

// TestAttackPipelinedStartupWrite20: the startup packet with a write of a
// policy column pipelined behind it in one segment (the session runs
// behind a prefix reader, not on the event loop): encrypted, answered.
func TestAttackPipelinedStartupWrite20(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	c, err := net.Dial("tcp", f.p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b := startup20(f, pg.Super.Name)
	b = append(b, msg20(&pgproto3.Query{String: "INSERT INTO legacy_notes (id, body) VALUES (1, 'PIPE20_SECRET')"})...)
	b = append(b, msg20(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (id, body) VALUES (2, $1)"})...)
	b = append(b, msg20(&pgproto3.Bind{Parameters: [][]byte{[]byte("PIPE20_SECRET é")}})...)
	b = append(b, msg20(&pgproto3.Execute{})...)
	b = append(b, msg20(&pgproto3.Sync{})...)
	c.Write(b)
	fe := pgproto3.NewFrontend(c, c)
	zs := 0
	for zs < 3 {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("HANG or loss: %v after %d ReadyForQuery", err, zs)
		}
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			zs++
		case *pgproto3.ErrorResponse:
			t.Logf("%s %s", m.Code, m.Message)
		}
	}
	if ms := rawQuery(t, fe, "SELECT count(*) FROM legacy_notes"); len(rowsOfAll(ms)) != 1 {
		t.Errorf("session not usable: %v", ms)
	}
	if n := plainRows20(t, f, "PIPE20_SECRET"); n != 0 {
		t.Errorf("LEAK: %d plaintext rows", n)
	}
	var got []string
	rows, err := f.connect(t, pgx.QueryExecModeExec).Query(testCtx(t), "SELECT body FROM legacy_notes ORDER BY id")
	if err == nil {
		got, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(got) != 2 || got[0] != "PIPE20_SECRET" || got[1] != "PIPE20_SECRET é" {
		t.Errorf("WRONG: rows %q (%v)", got, err)
	}
}
