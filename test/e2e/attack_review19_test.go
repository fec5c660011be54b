package e2e

// A nineteenth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit 7696c72. Its themes:
//
//   - the pipeline barrier (proxy/planning.go settleSent and lexingKnown,
//     proxy/frontend.go frontendBind with errSettleFirst): a text with a
//     non-ASCII byte or a backslash, or a Bind with a non-ASCII value for
//     a policy column, after unanswered messages: earlier messages that
//     fail, a suspended portal, a COPY FROM STDIN the client has not
//     ended, the client's own Flush, Close and Describe in between, a
//     refused statement, many barriers in one pipeline (pgx batches), a
//     long pg_sleep with a cancel request, the client leaving while the
//     proxy waits; and whether the barrier really shows the proxy a
//     pipelined SET client_encoding or standard_conforming_strings in
//     every message order, the extended protocol too;
//   - client_tls.mode require (proxy/client.go negotiate): GSSENCRequest
//     first, startup packets split across segments or of an unknown 3.x
//     minor version, direct TLS, data pipelined after the startup packet;
//   - values read exactly as PostgreSQL reads them (bytes that are not
//     UTF-8, NUL, octal escapes in COPY, binary COPY fields), one value in
//     one role (GREATEST, GROUP BY, NULLIF of an empty string, one
//     parameter for two policy columns, array subscripts), and DDL on
//     policy tables in forms earlier rounds left out.
//
// Failing at 7696c72 (each marked "Leaks:" or "Fault:" above its case):
// a COPY FROM STDIN the client has not ended, followed by a statement or
// Bind that needs the barrier, hangs the session for good (frontend clears
// copySeq before settleSent looks at it); the barrier cannot show a
// pipelined SET client_encoding or standard_conforming_strings run by an
// Execute, because PostgreSQL reports ParameterStatus only with
// ReadyForQuery (values stored wrong: LATIN1 bytes unconverted, \x41 not
// read as an escape); Bind parameters, text COPY fields (raw or \377) and
// binary COPY fields that are not valid UTF-8, or hold NUL, are encrypted
// and stored where PostgreSQL refuses them (22021); client_tls.mode
// require lets in a plaintext StartupMessage of protocol 3.1 or 3.99.
// Held: errors, suspended portals, Flush/Close/Describe, refused
// statements, many barriers and pgx batches before the barrier; a cancel
// of a pg_sleep behind it; a SET in a simple Query or FunctionCall before
// it; E'\xff', E'\000', U&'\D800'; every one-value-two-roles form tried
// (refused); the DDL forms (refused); the other TLS negotiation forms.
//
// The fixes: the barrier gives up (refuses) when the server reads COPY
// data (Tracker.CopyingIn) instead of waiting for answers that cannot
// come; it waits only for the ReadyForQuery of earlier groups, which
// reports their settings, and a statement or Bind that needs settings
// after an Execute of SET, set_config, RESET ALL, DISCARD, ROLLBACK, DO,
// CALL or EXECUTE in the same group is refused (send a Sync between
// them), as is a text that both changes them and carries such values;
// values for policy columns that are not UTF-8 or hold NUL are refused
// with 22021 (parameters, COPY fields); every StartupMessage that did not
// come over TLS is refused when client_tls.mode is require.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// storedBody19 checks legacy_notes row id (storedLegacyBody).
func storedBody19(id int, suffix string) func(t *testing.T, f *encFixture) {
	return storedLegacyBody("SECRET_19", id, suffix)
}

// bodyIs19 reads legacy_notes row id through the proxy: it must be want
// (want "" means NULL), or absent.
func bodyIs19(id int, want string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var got *string
		err := f.connect(t, pgx.QueryExecModeExec).QueryRow(testCtx(t), "SELECT body FROM legacy_notes WHERE id = $1", id).Scan(&got)
		if err == pgx.ErrNoRows {
			return
		}
		if err != nil {
			t.Errorf("WRONG: reading row %d: %v", id, err)
			return
		}
		switch {
		case want == "" && got != nil:
			t.Errorf("WRONG: row %d reads %q, want NULL as PostgreSQL would have stored", id, *got)
		case want != "" && (got == nil || !strings.HasPrefix(*got, want)):
			t.Errorf("WRONG: row %d reads %v, want %q as PostgreSQL would have stored", id, got, want)
		}
	}
}

// notesAtMost19 fails when legacy_notes has more than n rows.
func notesAtMost19(n int) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		var got int
		if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM legacy_notes").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got > n {
			t.Errorf("WRONG: legacy_notes has %d rows, PostgreSQL would have written at most %d", got, n)
		}
	}
}

// allNotesEndIn19 reads every legacy_notes row through the proxy: there
// must be want of them, each the marker then a suffix in valid UTF-8.
func allNotesEndIn19(want int, suffix string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		rows, err := f.connect(t, pgx.QueryExecModeExec).Query(testCtx(t), "SELECT body FROM legacy_notes ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Errorf("WRONG: reading: %v", err)
			return
		}
		if len(got) != want {
			t.Errorf("WRONG: %d rows, want %d", len(got), want)
		}
		for _, g := range got {
			if !utf8.ValidString(g) || !strings.HasPrefix(g, "SECRET_19") || !strings.Contains(g, suffix) {
				t.Errorf("WRONG: a row reads %q", g)
			}
		}
	}
}

// bind19 is a Bind of named statement st with text parameters.
func bind19(st string, params ...string) pgproto3.FrontendMessage {
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	return &pgproto3.Bind{PreparedStatement: st, Parameters: vals}
}

// binCopyText19 is binary COPY data of one row (int4 id, text body). Its
// length word counts each SECRET as the marker the harness puts there
// (SECRET_19nnn_x, 8 bytes longer).
func binCopyText19(id int32, body []byte) []byte {
	b := []byte("PGCOPY\n\xff\r\n\x00")
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint32(b, 4)
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)+8*bytes.Count(body, []byte("SECRET"))))
	b = append(b, body...)
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

const insNote19 = "INSERT INTO legacy_notes (id, body) VALUES (1, $1)"

// plain19 is a table outside the policy.
const plain19 = "; CREATE TABLE plain19 (a text)"

func attackCases19() []attackCase {
	parseIns := fl(&pgproto3.Parse{Name: "ins19", Query: "INSERT INTO legacy_notes (body) VALUES ($1)"}, syncMsg())
	var batch []any
	for i := range 10 {
		batch = append(batch, bind19("ins19", fmt.Sprintf("SECRET é%d", i)), &pgproto3.Execute{})
	}
	batch = append(batch, syncMsg())
	return []attackCase{
		// 1. The barrier: hangs, desyncs, answers misplaced.
		// Fault: proxy/frontend.go frontend clears sp.copySeq for every message but d/c/f/H/S before it dispatches, so proxy/planning.go settleSent never sees the COPY (its errLexUnsettled check is dead): it sends a Flush, which PostgreSQL ignores while it waits for COPY data, and waits forever for the COPY Query to be answered; the client hangs (and the proxy session with it, see TestAttackBarrierDisconnectDuringCopy19).
		{name: "bar19/copy_in_unended_then_nonascii_query", ddl: plain19, flights: []flight{
			fl("COPY plain19 FROM STDIN", copyData("a\n"), "INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"),
		}},
		// Fault: as above (proxy/frontend.go frontend clears copySeq before frontendQuery; proxy/planning.go settleSent waits on a server that copies).
		{name: "bar19/policy_copy_in_unended_then_nonascii_query", flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", copyData("1\tx\n"), "INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"),
		}},
		// Fault: the same in the extended protocol: proxy/frontend.go frontend clears copySeq before frontendParse, and proxy/planning.go settleSent (from lexingKnown) waits for the Execute of a COPY FROM STDIN that is still copying.
		{name: "bar19/extended_copy_in_then_nonascii_parse", ddl: plain19, flights: []flight{
			fl(ext("COPY plain19 FROM STDIN"), ext("INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"), syncMsg()),
		}},
		// Fault: the same for a Bind: proxy/frontend.go frontendBind gets errSettleFirst and calls settleSent with copySeq already cleared by frontend; it waits on the COPY forever.
		{name: "bar19/extended_copy_in_then_nonascii_bind", ddl: plain19, flights: []flight{
			parseIns,
			fl(ext("COPY plain19 FROM STDIN"), bind19("ins19", "SECRET é"), &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bar19/copy_in_unended_then_ascii_query_control", ddl: plain19, flights: []flight{
			fl("COPY plain19 FROM STDIN", copyData("a\n"), "INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET e')"),
		}},
		{name: "bar19/error_then_nonascii_parse", flights: []flight{
			fl(ext("SELECT 1/0"), ext("INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"), syncMsg()),
			fl("SELECT 1"),
		}},
		{name: "bar19/error_then_nonascii_bind", flights: []flight{
			parseIns,
			fl(ext("SELECT 1/0"), bind19("ins19", "SECRET é"), &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bar19/suspended_portal_then_nonascii_bind", check: allNotesEndIn19(1, "é"), flights: []flight{
			parseIns,
			fl(&pgproto3.Parse{Query: "SELECT generate_series(1, 5)"}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: 2},
				bind19("ins19", "SECRET é"), &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bar19/client_flush_close_describe_between", check: allNotesEndIn19(2, " "), flights: []flight{
			parseIns,
			fl(&pgproto3.Parse{Name: "s19", Query: "SELECT 1"}, &pgproto3.Flush{}, &pgproto3.Describe{ObjectType: 'S', Name: "s19"},
				&pgproto3.Close{ObjectType: 'S', Name: "s19"}, &pgproto3.Flush{}, bind19("ins19", "SECRET é"), &pgproto3.Flush{},
				&pgproto3.Execute{}, &pgproto3.Describe{ObjectType: 'S', Name: "ins19"}, bind19("ins19", "SECRET ü"), &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "bar19/many_barriers_one_pipeline", check: allNotesEndIn19(10, "é"), flights: []flight{
			parseIns, fl(batch...),
		}},
		{name: "bar19/refused_statement_then_nonascii", check: notesAtMost19(0), flights: []flight{
			parseIns,
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES (upper($1))"}, bind19("", "SECRET"), &pgproto3.Execute{},
				bind19("ins19", "SECRET é"), &pgproto3.Execute{}, ext("INSERT INTO legacy_notes (body) VALUES ('SECRET ö')"), syncMsg()),
			fl("SELECT 1"),
		}},
		{name: "bar19/parse_multi_statement_nonascii", flights: []flight{
			fl(ext("SELECT 1"), &pgproto3.Parse{Query: "SELECT 2; INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"}, syncMsg()),
		}},
		{name: "bar19/query_mid_extended_nonascii", check: storedBody19(2, "é"), flights: []flight{
			fl(ext("SELECT 1"), q("INSERT INTO legacy_notes (id, body) VALUES (2, 'SECRET é')"), syncMsg()),
		}},
		// 1b. Settings the barrier must show the proxy, in every order.
		// Fault: PostgreSQL (14 and later) sends ParameterStatus only just before ReadyForQuery, so proxy/planning.go settleSent (a Flush) gets the answers to a pipelined Execute of SET client_encoding without the setting's report; proxy/frontend.go frontendBind then sees sp.nonUTF8 false and proxy/frontend_bind.go encryptParams encrypts the LATIN1 byte unconverted (the row reads invalid UTF-8 where PostgreSQL would store "é").
		{name: "enc19/ext_set_client_encoding_then_bind", check: storedBody19(1, "é"), flights: []flight{
			fl(&pgproto3.Parse{Name: "e19", Query: insNote19}, syncMsg()),
			fl(ext("SET client_encoding = 'LATIN1'"), bind19("e19", "SECRET\xe9"), &pgproto3.Execute{}, syncMsg()),
			fl("RESET client_encoding"),
		}},
		// Fault: as above, through proxy/planning.go lexingKnown: after settleSent the pipelined SET client_encoding is still unreported (ParameterStatus waits for ReadyForQuery), so the text's bytes C3 A9 are encrypted as "é" where PostgreSQL, converting the Parse from LATIN1, stores "Ã©".
		{name: "enc19/ext_set_client_encoding_then_parse_literal", check: storedBody19(1, "Ã©"), flights: []flight{
			fl(ext("SET client_encoding = 'LATIN1'"), ext("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xc3\xa9')"), syncMsg()),
			fl("RESET client_encoding"),
		}},
		// set_config in a pipelined Execute: the next statement is refused
		// (the schema or search_path may have changed; send Sync).
		{name: "enc19/ext_set_config_scs_then_parse_escape", check: storedBody19(1, "A"), flights: []flight{
			fl(ext("SELECT set_config('standard_conforming_strings', 'off', false)"), ext(`INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\x41')`), syncMsg()),
			fl("SET standard_conforming_strings = on"),
		}},
		// Fault: PostgreSQL reports ParameterStatus only just before ReadyForQuery, so after a pipelined Execute of SET standard_conforming_strings = off, proxy/planning.go lexingKnown (after settleSent) still sees the setting on: proxy/planning.go lexingKnown after settleSent still sees standard_conforming_strings on (reported only at ReadyForQuery) and encrypts 'x\x41' as written.
		{name: "enc19/ext_set_scs_then_parse_escape", check: storedBody19(1, "A"), flights: []flight{
			fl(ext("SET standard_conforming_strings = off"), ext(`INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\x41')`), syncMsg()),
			fl("SET standard_conforming_strings = on"),
		}},
		// Fault: as above, a named SET run by Bind/Execute, then a simple Query in the same pipeline: proxy/planning.go lexingKnown settles (Flush) but the SET's ParameterStatus comes only with the ReadyForQuery of the Query itself.
		{name: "enc19/ext_named_set_then_simple_query", check: storedBody19(1, "A"), flights: []flight{
			fl(&pgproto3.Parse{Name: "scs19", Query: "SET standard_conforming_strings = off"}, syncMsg()),
			fl(&pgproto3.Bind{PreparedStatement: "scs19"}, &pgproto3.Execute{}, q(`INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\x41')`), syncMsg()),
			fl("SET standard_conforming_strings = on"),
		}},
		{name: "enc19/simple_set_then_parse_literal", check: storedBody19(1, "Ã©"), flights: []flight{
			fl(q("SET client_encoding = 'LATIN1'"), ext("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xc3\xa9')"), syncMsg()),
			fl("RESET client_encoding"),
		}},
		{name: "enc19/function_call_then_parse_literal", check: storedBody19(1, "Ã©"), flights: []flight{
			fl(callSetConfig("client_encoding", "LATIN1"), ext("INSERT INTO legacy_notes (id, body) VALUES (1, 'SECRET\xc3\xa9')"), syncMsg()),
			fl("RESET client_encoding"),
		}},
		{name: "enc19/simple_set_then_binary_bind", check: storedBody19(1, "é"), flights: []flight{
			fl(&pgproto3.Parse{Name: "e19", Query: insNote19}, syncMsg()),
			fl(q("SET client_encoding = 'LATIN1'"), &pgproto3.Bind{PreparedStatement: "e19", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{[]byte("SECRET\xe9")}}, &pgproto3.Execute{}, syncMsg()),
			fl("RESET client_encoding"),
		}},
		{name: "enc19/simple_set_then_array_bind", flights: []flight{
			fl(&pgproto3.Parse{Name: "a19", Query: "SELECT id FROM clients WHERE email = ANY($1)"}, syncMsg()),
			fl(q("SET client_encoding = 'LATIN1'"), bind19("a19", "{SECRET\xe9,b}"), &pgproto3.Execute{}, syncMsg()),
			fl("RESET client_encoding"),
		}},
		// 2. Values read as PostgreSQL reads them.
		// Fault: proxy/frontend_bind.go encryptParams encrypts a text parameter's bytes without the check PostgreSQL's Bind makes (pg_client_to_server verifies the encoding: a NUL or an invalid UTF-8 sequence is 22021): the value is stored, and a UTF8 client later reads bytes PostgreSQL never returns.
		{name: "val19/param_nul_byte", check: noLegacyRow(1), flights: []flight{
			fl(ext(insNote19, "SECRET\x00tail"), syncMsg()),
		}},
		// Fault: as above (proxy/frontend_bind.go encryptParams: no UTF-8 check of a policy parameter).
		{name: "val19/param_invalid_utf8", check: noLegacyRow(1), flights: []flight{
			fl(ext(insNote19, "SECRET\xff"), syncMsg()),
		}},
		// Fault: as above for a binary-format text parameter (textrecv verifies it too).
		{name: "val19/binary_param_invalid_utf8", check: noLegacyRow(1), flights: []flight{
			fl(&pgproto3.Parse{Query: insNote19}, &pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{[]byte("SECRET\xc3")}}, &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "val19/escape_literal_high_byte", check: noLegacyRow(1), flights: []flight{
			fl(`INSERT INTO legacy_notes (id, body) VALUES (1, E'SECRET\xff')`),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (1, E'SECRET\000x')`),
			fl(`INSERT INTO legacy_notes (id, body) VALUES (1, U&'SECRET\D800')`),
		}},
		// Fault: proxy/copytext.go (the text COPY codec) decodes \377 to a byte 0xFF and encrypts it; PostgreSQL's COPY verifies de-escaped non-ASCII bytes (22021), so the row would not exist.
		{name: "val19/copy_text_octal_high_byte", check: noLegacyRow(1), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", copyData("1\tSECRET\\377\n"), copyDone()),
		}},
		// Fault: proxy/copytext.go encrypts a raw non-UTF-8 byte of a policy field; PostgreSQL's COPY checks the input's encoding (22021).
		{name: "val19/copy_text_raw_invalid_utf8", check: noLegacyRow(1), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", copyData("1\tSECRET\xff\n"), copyDone()),
		}},
		// Fault: proxy/copybinary.go encrypts a binary COPY text field as bytes; PostgreSQL's textrecv verifies its encoding (22021).
		{name: "val19/copy_binary_invalid_utf8", check: noLegacyRow(1), flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN (FORMAT binary)", &pgproto3.CopyData{Data: binCopyText19(1, []byte("SECRET\xff"))}, copyDone()),
		}},
		// 3. One value, one role.
		{name: "role19/greatest_written", check: allChecks(bodyIs19(1, "a"), bodyIs19(2, "SECRET_19")), flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (1, GREATEST('SECRET', 'a'))"),
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (2, LEAST($1, 'a'))", "SECRET"), syncMsg()),
		}},
		{name: "role19/group_by_written", check: notesAtMost19(1), flights: []flight{
			fl("INSERT INTO legacy_notes (body) SELECT x FROM (VALUES ('SECRET'), ('SECRET')) v(x) GROUP BY x"),
		}},
		{name: "role19/nullif_empty_param", check: bodyIs19(1, ""), flights: []flight{
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (1, NULLIF($1, ''))", ""), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (2, NULLIF($1, ''))", "SECRET"), syncMsg()),
		}},
		{name: "role19/coalesce_nullif_empty_param", check: bodyIs19(1, "SECRET_19"), flights: []flight{
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES (1, COALESCE(NULLIF($1, ''), 'SECRET'))", ""), syncMsg()),
		}},
		{name: "role19/one_param_two_policy_columns", check: func(t *testing.T, f *encFixture) {
			rows, err := f.connect(t, pgx.QueryExecModeExec).Query(testCtx(t), "SELECT first_name, email, last_name FROM clients")
			if err != nil {
				t.Fatal(err)
			}
			type row struct {
				First string
				Email *string
				Last  string
			}
			got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
			if err != nil {
				t.Errorf("WRONG: reading clients: %v", err)
			}
			for _, r := range got {
				if r.Last == "two19" && (!strings.HasPrefix(r.First, "SECRET_19") || r.Email == nil || r.First != *r.Email) {
					t.Errorf("WRONG: first_name %q, email %v, want the marker in both", r.First, r.Email)
				}
			}
		}, flights: []flight{
			fl(ext("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, $1, 'two19', $1 FROM workspaces", "SECRET"), syncMsg()),
		}},
		{name: "role19/array_subscript_written", flights: []flight{
			fl(ext("INSERT INTO legacy_notes (body) VALUES (($1::text[])[1])", "{SECRET,b}"), syncMsg()),
			fl("INSERT INTO legacy_notes (body) VALUES (('{SECRET,b}'::text[])[1])"),
			fl("INSERT INTO legacy_notes (body) SELECT (ARRAY['SECRET', 'b'])[1]"),
		}},
		{name: "role19/param_written_and_plain_like", flights: []flight{
			fl(ext("UPDATE legacy_notes SET body = $1 WHERE $1 LIKE 'S%'", "SECRET"), syncMsg()),
			fl(ext("INSERT INTO legacy_notes (body) SELECT $1 WHERE $1 <> ''", "SECRET"), syncMsg()),
		}},
		{name: "role19/array_param_compared_and_cast_to_text", flights: []flight{
			fl(ext("SELECT id FROM clients WHERE email = ANY($1) OR $1::text = '{a}'", "{SECRET}"), syncMsg()),
			fl(ext("SELECT id FROM clients WHERE email = ANY($1) AND array_to_string($1, ',') <> ''", "{SECRET}"), syncMsg()),
		}},
		// 4. DDL on policy tables.
		{name: "ddl19/trigger_update_of_args", ddl: argTrigger, flights: []flight{
			fl("CREATE TRIGGER t19 BEFORE UPDATE OF first_name, notes ON clients FOR EACH ROW EXECUTE PROCEDURE put_arg('SECRET')"),
		}},
		{name: "ddl19/rule_action_writes_policy", flights: []flight{
			fl("CREATE RULE r19 AS ON UPDATE TO workspaces DO ALSO UPDATE legacy_notes SET body = 'SECRET'"),
			fl("CREATE RULE r19b AS ON DELETE TO workspaces DO ALSO INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},
		{name: "ddl19/index_include_where_not_equal", flights: []flight{
			fl("CREATE UNIQUE INDEX ON clients (id) INCLUDE (email) WHERE email <> 'SECRET' AND email IS NOT NULL"),
		}},
		{name: "ddl19/alter_policy_with_check", ddl: "; CREATE POLICY p19 ON clients USING (true)", flights: []flight{
			fl("ALTER POLICY p19 ON clients WITH CHECK (first_name <> 'SECRET')"),
		}},
		{name: "ddl19/check_not_in_and_case_default", flights: []flight{
			fl("ALTER TABLE clients ADD CONSTRAINT c19 CHECK (email NOT IN ('SECRET', 'b')) NOT VALID"),
			fl("ALTER TABLE legacy_notes ALTER body SET DEFAULT CASE WHEN random() > 2 THEN 'SECRET' END"),
		}},
	}
}

func TestAttackSuite19(t *testing.T) { runAttacks(t, 19000, attackCases19()) }

// rawKey19 is failRaw that also returns the BackendKeyData the proxy gave.
func rawKey19(t *testing.T, f *encFixture) (*pgproto3.Frontend, net.Conn, *pgproto3.BackendKeyData) {
	t.Helper()
	c, err := net.Dial("tcp", f.p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": pg.Super.Name, "database": f.db}})
	fe.Flush()
	var key *pgproto3.BackendKeyData
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch m := m.(type) {
		case *pgproto3.BackendKeyData:
			key = &pgproto3.BackendKeyData{ProcessID: m.ProcessID, SecretKey: append([]byte(nil), m.SecretKey...)}
		case *pgproto3.ErrorResponse:
			t.Fatalf("startup: %s", m.Message)
		case *pgproto3.ReadyForQuery:
			if key == nil {
				t.Fatal("no BackendKeyData")
			}
			return fe, c, key
		}
	}
}

// TestAttackBarrierSleepCancel19: a barrier waits behind pg_sleep; the
// client's cancel request ends the sleep, and the barrier's statement is
// then run or refused, promptly, with no plaintext stored.
func TestAttackBarrierSleepCancel19(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	fe, _, key := rawKey19(t, f)
	fe.Send(&pgproto3.Query{String: "SELECT pg_sleep(5)"})
	fe.Send(&pgproto3.Query{String: "INSERT INTO legacy_notes (id, body) VALUES (1, 'CANCEL19_SECRET é')"})
	fe.Flush()
	start := time.Now()
	go func() {
		time.Sleep(400 * time.Millisecond)
		c, err := net.Dial("tcp", f.p.Addr)
		if err != nil {
			return
		}
		defer c.Close()
		cf := pgproto3.NewFrontend(c, c)
		cf.Send(&pgproto3.CancelRequest{ProcessID: key.ProcessID, SecretKey: key.SecretKey})
		cf.Flush()
		c.Read(make([]byte, 1))
	}()
	ms, err := untilZ(t, fe)
	if err != nil {
		t.Fatalf("HANG: the canceled query was not answered: %v", err)
	}
	canceled := false
	for _, m := range ms {
		if e, ok := m.(*pgproto3.ErrorResponse); ok && e.Code == "57014" {
			canceled = true
		}
	}
	if !canceled || time.Since(start) > 4*time.Second {
		t.Errorf("the sleep was not canceled (%v after %v): %v", canceled, time.Since(start), ms)
	}
	if _, err := untilZ(t, fe); err != nil {
		t.Fatalf("HANG: the statement behind the barrier was not answered: %v", err)
	}
	if ms := rawQuery(t, fe, "SELECT 1"); len(rowsOfAll(ms)) != 1 {
		t.Errorf("session not usable: %v", ms)
	}
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM legacy_notes WHERE body LIKE 'CANCEL19%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("LEAK: %d plaintext rows (%v)", n, err)
	}
}

// backends19 counts the client backends on f's database besides the
// direct connection.
func backends19(t *testing.T, f *encFixture) int {
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Fault: proxy/planning.go settleSent waits in awaitSettled for the COPY Query (proxy/frontend.go frontend cleared copySeq) with no way out but the server ending: after the client has gone, the session and its PostgreSQL backend, stuck in COPY FROM STDIN, stay for good.
// TestAttackBarrierDisconnectDuringCopy19: a COPY FROM STDIN the client
// never ends, a non-ASCII statement behind it, and the client goes away:
// the proxy must end the session and its backend.
func TestAttackBarrierDisconnectDuringCopy19(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, plain19, "")
	fe, conn := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "COPY plain19 FROM STDIN"})
	fe.Send(&pgproto3.Query{String: "INSERT INTO legacy_notes (id, body) VALUES (1, 'DISC19_SECRET é')"})
	fe.Flush()
	time.Sleep(500 * time.Millisecond)
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for backends19(t, f) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("HANG: 10 s after the client left, %d backends of its session remain", backends19(t, f))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAttackBarrierDisconnectDuringSleep19: the client goes away while the
// barrier waits behind pg_sleep: the session ends, nothing in plaintext.
func TestAttackBarrierDisconnectDuringSleep19(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	fe, conn := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "SELECT pg_sleep(1)"})
	fe.Send(&pgproto3.Query{String: "INSERT INTO legacy_notes (id, body) VALUES (1, 'SLEEP19_SECRET é')"})
	fe.Flush()
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for backends19(t, f) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("HANG: %d backends remain after the client left", backends19(t, f))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM legacy_notes WHERE body LIKE 'SLEEP19%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("LEAK: %d plaintext rows (%v)", n, err)
	}
}

// TestAttackBarrierPgxBatch19: a pgx batch of writes with non-ASCII
// values (a barrier at each Bind) and reads between them.
func TestAttackBarrierPgxBatch19(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "", "")
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec} {
		c := f.connect(t, mode)
		ctx := testCtx(t)
		b := &pgx.Batch{}
		for i := range 20 {
			b.Queue("INSERT INTO legacy_notes (body) VALUES ($1)", fmt.Sprintf("batch19 ünï %d %v", i, mode))
			if i%5 == 0 {
				b.Queue("SELECT count(*) FROM legacy_notes WHERE body IS NOT NULL")
			}
		}
		if err := c.SendBatch(ctx, b).Close(); err != nil {
			t.Fatalf("%v: batch: %v", mode, err)
		}
		rows, err := c.Query(ctx, "SELECT body FROM legacy_notes WHERE body IS NOT NULL")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if !strings.HasPrefix(g, "batch19 ünï ") {
				t.Errorf("WRONG: %v: a row reads %q", mode, g)
			}
		}
	}
	var n int
	if err := f.direct.QueryRow(testCtx(t), "SELECT count(*) FROM legacy_notes WHERE body LIKE 'batch19%'").Scan(&n); err != nil || n != 0 {
		t.Errorf("LEAK: %d plaintext rows (%v)", n, err)
	}
}

// tlsProxy19 starts a proxy with client_tls.mode require.
func tlsProxy19(t *testing.T) *testProxy {
	return startProxy(t, func(o *proxy.Options) { o.ClientTLS = clientTLSConfig(t); o.RequireClientTLS = true })
}

// startup19 is a StartupMessage packet of protocol version ver.
func startup19(ver uint32, params ...string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint32(b, ver)
	for _, p := range params {
		b = append(append(b, p...), 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

// refusedPlain19 reads the proxy's first answer on c and fails unless it
// is a FATAL 28000: a plaintext session must not get any further.
func refusedPlain19(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(8 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	m, err := fe.Receive()
	if err != nil {
		t.Errorf("%s: %v (want FATAL 28000)", what, err)
		return
	}
	if e, ok := m.(*pgproto3.ErrorResponse); ok && e.Code == "28000" {
		return
	}
	t.Errorf("LEAK: %s: a client without TLS got %T %+v from a proxy with client_tls.mode require", what, m, m)
	for range 40 {
		m, err := fe.Receive()
		if err != nil {
			return
		}
		t.Logf("then %T %+v", m, m)
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			t.Errorf("LEAK: %s: the plaintext session is ready for queries", what)
			return
		}
	}
}

// Leaks: proxy/client.go negotiate checks RequireClientTLS only for CodeProtocol30 and CodeProtocol32; a StartupMessage of another 3.x minor version takes the default branch ("PostgreSQL answers with NegotiateProtocolVersion, so let it") and the session starts in plaintext, past client_tls.mode require.
// TestAttackTLSRequireMinorVersion19: StartupMessages of protocol 3.1
// and 3.99 without TLS.
func TestAttackTLSRequireMinorVersion19(t *testing.T) {
	p := tlsProxy19(t)
	for _, ver := range []uint32{3<<16 | 1, 3<<16 | 99} {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(startup19(ver, "user", pg.Super.Name, "database", "postgres"))
		refusedPlain19(t, c, fmt.Sprintf("protocol 3.%d", ver&0xffff))
		c.Close()
	}
}

// TestAttackTLSRequireNegotiationForms19: GSSENCRequest then a plaintext
// startup, a startup packet split across segments, a startup with a Query
// pipelined behind it: all refused; GSSENCRequest then SSLRequest, and
// direct TLS, work.
func TestAttackTLSRequireNegotiationForms19(t *testing.T) {
	p := tlsProxy19(t)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(8 * time.Second))
		return c
	}
	gss, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	st := startup19(pgproto3.ProtocolVersion30, "user", pg.Super.Name, "database", "postgres")
	one := make([]byte, 1)

	c := dial()
	c.Write(gss)
	if _, err := c.Read(one); err != nil || one[0] != 'N' {
		t.Fatalf("GSSENCRequest: %q %v", one, err)
	}
	c.Write(st)
	refusedPlain19(t, c, "GSSENCRequest then plaintext startup")

	c = dial()
	c.(*net.TCPConn).SetNoDelay(true)
	for i := 0; i < len(st); i += 3 {
		c.Write(st[i:min(i+3, len(st))])
		time.Sleep(5 * time.Millisecond)
	}
	refusedPlain19(t, c, "startup split in 3-byte segments")

	c = dial()
	q, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
	c.Write(append(append([]byte(nil), st...), q...))
	refusedPlain19(t, c, "startup with a Query behind it")

	c = dial()
	c.Write(ssl[:3])
	time.Sleep(20 * time.Millisecond)
	c.Write(append(append([]byte(nil), ssl[3:]...), st...))
	if _, err := c.Read(one); err == nil && one[0] == 'S' {
		t.Errorf("LEAK: an SSLRequest with a plaintext startup behind it was answered 'S'")
	}

	c = dial()
	c.Write(gss)
	if _, err := c.Read(one); err != nil || one[0] != 'N' {
		t.Fatalf("GSSENCRequest: %q %v", one, err)
	}
	c.Write(ssl)
	if _, err := c.Read(one); err != nil || one[0] != 'S' {
		t.Fatalf("SSLRequest after GSSENCRequest: %q %v", one, err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS after GSSENCRequest: %v", err)
	}
	tc.Write(st)
	fe := pgproto3.NewFrontend(tc, tc)
	if m, err := fe.Receive(); err != nil {
		t.Fatalf("TLS session: %v", err)
	} else if e, ok := m.(*pgproto3.ErrorResponse); ok {
		t.Fatalf("TLS session refused: %s %s", e.Code, e.Message)
	}

	conn, err := pgx.Connect(testCtx(t), p.ConnString(pg.Super, "postgres", "sslmode=require", "sslnegotiation=direct"))
	if err != nil {
		t.Fatalf("direct TLS: %v", err)
	}
	conn.Close(context.Background())

	// Direct TLS whose inner StartupMessage is an SSLRequest again, then
	// the startup: one TLS layer, answered 'N'.
	raw := dial()
	tc = tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"postgresql"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("direct TLS handshake: %v", err)
	}
	tc.Write(ssl)
	if _, err := tc.Read(one); err != nil || one[0] != 'N' {
		t.Errorf("SSLRequest inside TLS: %q %v, want N", one, err)
	}
	tc.Write(st)
	fe = pgproto3.NewFrontend(tc, tc)
	if m, err := fe.Receive(); err != nil {
		t.Fatalf("direct TLS session: %v", err)
	} else if e, ok := m.(*pgproto3.ErrorResponse); ok {
		t.Fatalf("direct TLS session refused: %s %s", e.Code, e.Message)
	}
}

// TestAttackTLSRequireCancelPlain19: cancel requests over plaintext stay
// possible with require (PostgreSQL takes them so), but a cancel packet
// followed by a startup packet on the same connection starts no session.
func TestAttackTLSRequireCancelPlain19(t *testing.T) {
	p := tlsProxy19(t)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	cr, _ := (&pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}}).Encode(nil)
	c.Write(append(cr, startup19(pgproto3.ProtocolVersion30, "user", pg.Super.Name, "database", "postgres")...))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if n > 0 {
		if b[0] == 'E' && bytes.Contains(b[:n], []byte("28000")) {
			return
		}
		t.Errorf("LEAK: after a cancel packet, the plaintext startup behind it got %q", b[:n])
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Logf("read: %v", err)
	}
}
