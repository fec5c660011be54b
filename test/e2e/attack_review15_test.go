package e2e

// A fifteenth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit babb6d2. Its theme is plaintext in the
// proxy's own outputs rather than in what reaches the server:
//
//   - errors and notices the client receives: PostgreSQL's own errors
//     about rows and keys of policy columns (DETAIL "Failing row
//     contains", "Key (email)=(…)", COPY's CONTEXT line), which quote what
//     the server holds (envelopes); the proxy's own errors about COPY
//     data, Bind messages and values that do not decrypt;
//   - the proxy's log, its metrics and the audit events (fingerprints
//     that change with a value);
//   - configuration errors that print key material;
//   - DataRows the server sends malformed or tampered for a policy
//     column (panics, hangs, envelopes passed on).
//
// Every attackCase here also fails when its marker is in the proxy's log
// or in a label of its metrics.
//
// Thirteen of its 34 cases failed before the fixes: server errors and
// notices are now relayed with envelopes (whole or cut short) replaced by
// <encrypted>; a stored value shaped like an envelope under a key id the
// keyring lacks no longer has that id printed; an envelope cut short is
// an error, not legacy plaintext; audit fingerprints are taken with every
// string emptied; configuration errors do not print what may be a key;
// a DataRow of more fields than its description ends the session.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/audit"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// raw15 is a frontend message sent as the bytes given (type and length
// included), for messages pgproto3 will not encode malformed.
type raw15 struct{ b []byte }

func (raw15) Frontend()                           {}
func (raw15) Decode([]byte) error                 { return nil }
func (r raw15) Encode(dst []byte) ([]byte, error) { return append(dst, r.b...), nil }
func rawMsg15(typ byte, body []byte) raw15 {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return raw15{append(b, body...)}
}

// truncatedBind15 is a Bind of the unnamed statement whose one parameter
// says it is longer than the bytes that follow (which hold the marker).
func truncatedBind15() raw15 {
	var body []byte
	body = append(body, 0, 0) // portal, statement
	body = append(body, 0, 0) // no format codes
	body = append(body, 0, 1) // one parameter
	body = binary.BigEndian.AppendUint32(body, 64)
	body = append(body, "SECRET_15_raw"...)
	return rawMsg15('B', body)
}

func copyData15(s string) pgproto3.FrontendMessage { return &pgproto3.CopyData{Data: []byte(s)} }

// binCopy15 is binary COPY data of one row of one field, whose length
// word says n while the bytes that follow are the marker.
func binCopy15(n int32) []byte {
	b := []byte("PGCOPY\n\xff\r\n\x00")
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint16(b, 1)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, "SECRET"...)
	return b
}

// A tampered envelope: valid shape, it cannot authenticate.
const tampered15 = "v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func attackCases15() []attackCase {
	return []attackCase{
		// A. PostgreSQL's errors quote what it holds: envelopes.
		// Leaked before the fix: proxy/backend_answers.go backendError relays the server's ErrorResponse unchanged; a NOT NULL violation's DETAIL "Failing row contains (…)" holds the envelopes of every policy column of the row.
		{name: "err15/not_null_failing_row", outputs: true, flights: []flight{
			fl("INSERT INTO clients (first_name, last_name, email) VALUES ('SECRET', 'x', 'SECRET@example.com')"),
		}},
		// Leaked before the fix: proxy/backend_answers.go backendError relays the server's ErrorResponse unchanged; the Failing row DETAIL of an extended-protocol INSERT holds the envelopes the proxy made of the parameters.
		{name: "err15/not_null_failing_row_params", outputs: true, flights: []flight{
			fl(ext("INSERT INTO clients (first_name, last_name, medical_history) VALUES ($1, $2, $3)", "SECRET", "x", "SECRET diag"), syncMsg()),
		}},
		// Leaked before the fix: proxy/backend_answers.go backendError relays 23505 with DETAIL "Key (email)=(v1:siv:…) already exists." unchanged.
		{name: "err15/unique_deterministic_key", ddl: "; CREATE UNIQUE INDEX u15 ON clients (email)", outputs: true, flights: []flight{
			fl(insClients("'a'") + " RETURNING id"),
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'SECRET' FROM workspaces"),
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'SECRET' FROM workspaces"),
		}},
		// Leaked before the fix: proxy/backend_answers.go backendError relays 23503 with DETAIL "Key (email)=(v1:siv:…) is not present in table …" unchanged.
		{name: "err15/foreign_key_on_email", ddl: "; CREATE TABLE emails15 (e text PRIMARY KEY); ALTER TABLE clients ADD FOREIGN KEY (email) REFERENCES emails15 (e)", outputs: true, flights: []flight{
			fl("INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'a', 'b', 'SECRET' FROM workspaces"),
		}},
		// Leaked before the fix: proxy/backend_answers.go backendError relays 23514 with DETAIL "Failing row contains (-1, v1:…)" unchanged.
		{name: "err15/check_failing_row", ddl: "; ALTER TABLE legacy_notes ADD CONSTRAINT pos15 CHECK (id > 0)", outputs: true, flights: []flight{
			fl("INSERT INTO legacy_notes (id, body) VALUES (-1, 'SECRET')"),
		}},
		// Leaked before the fix: proxy/backend_answers.go backendError relays a COPY error whose CONTEXT is the rewritten line ("COPY clients, line 1: \"v1:…\tv1:…\"") and DETAIL the failing row, both with envelopes.
		{name: "err15/copy_not_null_context", outputs: true, flights: []flight{
			fl("COPY clients (first_name, last_name) FROM STDIN", copyData15("SECRET\tx\n"), &pgproto3.CopyDone{}),
		}},
		{name: "err15/copy_bad_uuid_context", outputs: true, flights: []flight{
			fl("COPY clients (workspace_id, first_name, last_name) FROM STDIN", copyData15("notauuid\tSECRET\tx\n"), &pgproto3.CopyDone{}),
		}},
		{name: "err15/cast_error_in_plain_column", outputs: true, flights: []flight{
			fl(ext("INSERT INTO legacy_notes (id, body) VALUES ($1, $2)", "zz", "SECRET"), syncMsg()),
		}},
		// B. The proxy's own errors about client data.
		{name: "own15/truncated_bind_of_policy_param", outputs: true, flights: []flight{
			fl(&pgproto3.Parse{Query: "INSERT INTO legacy_notes (body) VALUES ($1)"}, truncatedBind15(), &pgproto3.Execute{}, syncMsg()),
		}},
		{name: "own15/copy_text_too_many_fields", outputs: true, flights: []flight{
			fl("COPY legacy_notes (body) FROM STDIN", copyData15("SECRET\tSECRET\n"), &pgproto3.CopyDone{}),
		}},
		{name: "own15/copy_csv_unclosed_quote", outputs: true, flights: []flight{
			fl("COPY legacy_notes (body) FROM STDIN (FORMAT csv)", copyData15("\"SECRET\n"), &pgproto3.CopyDone{}),
		}},
		{name: "own15/copy_text_bad_escape", outputs: true, flights: []flight{
			fl("COPY legacy_notes (body) FROM STDIN", copyData15("SECRET\\"), &pgproto3.CopyDone{}),
		}},
		{name: "own15/copy_binary_bad_length", outputs: true, flights: []flight{
			fl("COPY legacy_notes (body) FROM STDIN (FORMAT binary)", &pgproto3.CopyData{Data: binCopy15(1 << 30)}, &pgproto3.CopyDone{}),
		}},
		{name: "own15/copy_fail_message", outputs: true, flights: []flight{
			fl("COPY legacy_notes (body) FROM STDIN", copyData15("SECRET\n"), &pgproto3.CopyFail{Message: "client gave up"}),
		}},
		{name: "own15/varchar_cast_param", outputs: true, flights: []flight{
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1::varchar(5))", "SECRET"), syncMsg()),
		}},
		// C. Stored values that do not decrypt.
		{name: "dec15/tampered_envelope", ddl: "; INSERT INTO legacy_notes (body) VALUES ('" + tampered15 + "')", outputs: true, flights: []flight{
			fl("SELECT id, body FROM legacy_notes"),
			fl(ext("SELECT body FROM legacy_notes WHERE id > $1", "0"), syncMsg()),
			fl("COPY legacy_notes (body) TO STDOUT"),
			fl("COPY (SELECT body FROM legacy_notes) TO STDOUT (FORMAT csv)"),
		}},
		{name: "dec15/unknown_key_version", ddl: "; INSERT INTO legacy_notes (body) VALUES ('v9:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAA'); INSERT INTO clients (workspace_id, first_name, last_name, email) SELECT id, 'v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'v1:siv:AAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'v1:siv:AAAAAAAAAAAAAAAAAAAAAAAAAAAA' FROM workspaces", outputs: true, flights: []flight{
			fl("SELECT body FROM legacy_notes"),
			fl("SELECT first_name, email FROM clients"),
			fl(ext("SELECT id FROM clients WHERE email = $1", "SECRET"), syncMsg()),
		}},
		// A value stored before backfill (or written directly) that has an
		// envelope's shape: its first part is taken for a key id.
		// Leaked before the fix: proxy/backend.go decryptFailed logs de.KeyID ("stored value does not decrypt", key_id=…) and sends it in the XX001 message (cipher.DecryptError.Error); the key id is the first 32 characters of the stored plaintext.
		{name: "dec15/keyid_is_stored_plaintext", ddl: "; INSERT INTO legacy_notes (body) VALUES ('PLAIN15_MRN_4711:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAAAAAAAA')", outputs: true, flights: []flight{
			fl("SELECT body FROM legacy_notes"),
		}, check: func(t *testing.T, f *encFixture) {
			if l := f.p.logs.String(); strings.Contains(l, "PLAIN15_MRN_4711") {
				t.Errorf("LEAK: the stored plaintext's first part is in the proxy's log:\n%s", grepLines(l, "PLAIN15"))
			}
		}},
		// Leaked before the fix: proxy/offload.go decryptField passes any value that is not envelope-shaped through as legacy plaintext, so an envelope cut short (by the server, a backup, a varchar limit) reaches the client as ciphertext rather than as an error.
		{name: "dec15/truncated_envelope_passthrough", ddl: "; INSERT INTO legacy_notes (body) VALUES ('v1:AAAAAAAAAAAAAAAA:AAAAAAA')", flights: []flight{
			fl("SELECT body FROM legacy_notes"),
		}},
		// D. Huge values, both ways.
		{name: "huge15/literal_and_param", outputs: true, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET" + strings.Repeat("a", 300<<10) + "')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"+strings.Repeat("b", 300<<10)), syncMsg()),
			fl("SELECT body FROM legacy_notes"),
			fl("COPY legacy_notes (body) TO STDOUT"),
		}},
		{name: "huge15/copy_in", outputs: true, flights: []flight{
			fl("COPY legacy_notes (body) FROM STDIN", copyData15("SECRET"+strings.Repeat("c", 200<<10)+"\n"), &pgproto3.CopyDone{}),
			fl("SELECT count(*) FROM legacy_notes"),
		}},
	}
}

// outputsClean15 fails when a marker is in the proxy's log or metrics.
func outputsClean15(t *testing.T, f *encFixture) {
	t.Helper()
	if l := f.p.logs.String(); strings.Contains(l, "SECRET") {
		t.Errorf("LEAK: a marker is in the proxy's log:\n%s", grepLines(l, "SECRET"))
	}
	if m := metricsText15(t, f.p); strings.Contains(m, "SECRET") {
		t.Errorf("LEAK: a marker is in the proxy's metrics:\n%s", grepLines(m, "SECRET"))
	}
}

// metricsText15 is every metric's name and labels, one a line.
func metricsText15(t *testing.T, p *testProxy) string {
	mfs, err := p.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			b.WriteString(mf.GetName())
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&b, " %s=%q", l.GetName(), l.GetValue())
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestAttackSuite15(t *testing.T) {
	cases := attackCases15()
	for i := range cases {
		prev := cases[i].check
		cases[i].check = func(t *testing.T, f *encFixture) {
			if prev != nil {
				prev(t, f)
			}
			outputsClean15(t, f)
		}
	}
	runAttacks(t, 15000, cases)
}

// auditRec15 keeps the audit events.
type auditRec15 struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (r *auditRec15) Log(e *audit.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, *e)
}

func (r *auditRec15) events() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.evs...)
}

// run15 sends a flight and reads an answer for each Query and Sync.
func run15(t *testing.T, fe *pgproto3.Frontend, msgs ...pgproto3.FrontendMessage) []pgproto3.BackendMessage {
	t.Helper()
	want := 0
	for _, m := range msgs {
		switch m.(type) {
		case *pgproto3.Query, *pgproto3.Sync:
			want++
		}
		fe.Send(m)
	}
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var all []pgproto3.BackendMessage
	for range want {
		ms, err := untilZ(t, fe)
		all = append(all, ms...)
		if err != nil {
			t.Fatalf("connection lost: %v", err)
		}
	}
	return all
}

func newAuditFixture15(t *testing.T, ddl string) (*encFixture, *auditRec15) {
	rec := &auditRec15{}
	f := newEncFixtureFunc(t, seedColumns(), false, ddl, func(o *proxy.Options) { o.Audit = rec })
	return f, rec
}

// TestAttackSuite15AuditNoValues: statements that write, search, are
// refused, fail on the server and copy, with a marker as the value; no
// audit event, log line or metric holds it.
func TestAttackSuite15AuditNoValues(t *testing.T) {
	f, rec := newAuditFixture15(t, argTrigger)
	fe, conn := failRaw(t, f)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	const m = "SECRET_15a_x"
	run15(t, fe, q("INSERT INTO legacy_notes (body) VALUES ('"+m+"')"))
	run15(t, fe, append(ext("INSERT INTO legacy_notes (body) VALUES ($1)", m), syncMsg())...)
	run15(t, fe, q("SELECT id FROM clients WHERE first_name = '"+m+"'"))
	run15(t, fe, q("SELECT body FROM legacy_notes WHERE body LIKE '"+m+"%'"))
	run15(t, fe, append(ext("SELECT id FROM clients WHERE email = $1 OR email = ANY($2)", m, "{"+m+"}"), syncMsg())...)
	run15(t, fe, q("INSERT INTO clients (first_name, last_name) VALUES ('"+m+"', 'x')"))
	run15(t, fe, q("COPY legacy_notes (body) FROM STDIN"), copyData15(m+"\n"), &pgproto3.CopyDone{})
	run15(t, fe, q("COPY legacy_notes (body) FROM STDIN (NULL 'N"+m+"')"), copyData15("y\n"), &pgproto3.CopyDone{})
	run15(t, fe, q("SELECT body FROM legacy_notes"))
	run15(t, fe, q("SET application_name = 'app15'"), q("SELECT body FROM legacy_notes WHERE id = 1"))
	run15(t, fe, q("DO $$BEGIN INSERT INTO legacy_notes (body) VALUES ('"+m+"'); END$$"))
	run15(t, fe, q("ALTER TABLE legacy_notes ALTER body SET DEFAULT '"+m+"'"))
	waitFor(t, "audit events", func() bool { return len(rec.events()) >= 10 })
	b, err := json.Marshal(rec.events())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("audit events: %s", b)
	if bytes.Contains(b, []byte("SECRET")) {
		t.Errorf("LEAK: an audit event holds the marker: %s", b)
	}
	outputsClean15(t, f)
}

// TestAttackSuite15AuditTriggerArgFingerprint: a refused CREATE TRIGGER
// whose argument is the value a trigger function stores in a policy
// column. The README promises fingerprints with constants removed; one
// that changes with the value is a 64-bit hash of it, which anyone with
// the audit log can test guesses against.
// Leaked before the fix: proxy/audit.go auditRefused fingerprints the refused text with rewrite.Fingerprint (libpg_query), which keeps CreateTrigStmt's argument strings, so the event's fingerprint is a hash of the plaintext.
func TestAttackSuite15AuditTriggerArgFingerprint(t *testing.T) {
	f, rec := newAuditFixture15(t, argTrigger)
	fe, conn := failRaw(t, f)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	for _, v := range []string{"SECRET_15b_diabetes", "SECRET_15b_hiv"} {
		ms := run15(t, fe, q("CREATE TRIGGER t15 BEFORE INSERT ON clients FOR EACH ROW EXECUTE FUNCTION put_arg('"+v+"')"))
		if !hasFatal(ms) {
			t.Fatalf("the trigger was not refused: %v", ms)
		}
	}
	waitFor(t, "2 audit events", func() bool { return len(rec.events()) >= 2 })
	evs := rec.events()
	t.Logf("fingerprints %q %q", evs[0].Fingerprint, evs[1].Fingerprint)
	if evs[0].Fingerprint != evs[1].Fingerprint {
		t.Errorf("LEAK: the audit fingerprint changes with the value given (%s vs %s): it is a hash of the plaintext", evs[0].Fingerprint, evs[1].Fingerprint)
	}
	outputsClean15(t, f)
}

// TestAttackSuite15ConfigKeyMaterial: keys written where the configuration
// wants something else. validate (and serve, and a reload's log line) must
// not print them.
// Leaked before the fix: config/load.go yamlProblems passes yaml.v3's TypeError text on ("cannot unmarshal !!str `<first 7 chars>...` into config.KeyRef"), and config/validate.go resolveKeys prints "key v1: env <VALUE>: variable is not set" (cipher.EnvSource.Describe) and keys.active %q whole.
func TestAttackSuite15ConfigKeyMaterial(t *testing.T) {
	const key = "Zx9Kq2LmPw8RtYb4NcVd6HsJf3GaUe1WoIk7Ty5Xr0E="
	for _, c := range []struct{ name, keys string }{
		{"inline_key_as_version", "keys: { active: v1, versions: { v1: " + key + " } }"},
		{"key_given_as_env_name", "keys: { active: v1, versions: { v1: { env: " + key + " } } }"},
		{"key_given_as_active", "keys: { active: " + key + ", versions: { v1: { env: PGCRYPT_KEY_V1 } } }"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := "listen: 127.0.0.1:6432\nupstream: 127.0.0.1:5432\n" + c.keys + "\nencrypt:\n  - table: clients\n    columns:\n      - { name: email }\n"
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCLI(t, []string{"PGCRYPT_KEY_V1=" + cliKey}, "validate", "--config", path)
			t.Logf("exit %d\n%s%s", code, out, errOut)
			if code == 0 {
				t.Fatal("the configuration was accepted")
			}
			if strings.Contains(out+errOut, key[:7]) {
				t.Errorf("LEAK: key material printed: %s", grepLines(out+errOut, key[:7]))
			}
		})
	}
}

// tamperRelay15 relays to PostgreSQL, passing each DataRow that holds an
// envelope through mutate (when set).
func tamperRelay15(t *testing.T, mutate *atomic.Pointer[func([]byte) []byte]) string {
	return relayToServer(t, func(c, up net.Conn) {
		go func() { io.Copy(up, c); up.Close() }()
		go func() {
			defer c.Close()
			hdr := make([]byte, 5)
			for {
				if _, err := io.ReadFull(up, hdr); err != nil {
					return
				}
				n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
				body := make([]byte, n)
				if _, err := io.ReadFull(up, body); err != nil {
					return
				}
				if fn := mutate.Load(); fn != nil && hdr[0] == 'D' && bytes.Contains(body, []byte("v1:")) {
					body = (*fn)(body)
					binary.BigEndian.PutUint32(hdr[1:], uint32(len(body)+4))
				}
				if _, err := c.Write(append(append([]byte(nil), hdr...), body...)); err != nil {
					return
				}
			}
		}()
	})
}

// fields15 splits a DataRow body into its values (nil for NULL).
func fields15(body []byte) [][]byte {
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	var out [][]byte
	for range n {
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			out = append(out, nil)
			continue
		}
		out = append(out, rest[:l])
		rest = rest[l:]
	}
	return out
}

func row15(count int, vals [][]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(count))
	for _, v := range vals {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}

// TestAttackSuite15TamperedServer: DataRows of SELECT id, body FROM
// legacy_notes changed between PostgreSQL and the proxy. The proxy must
// not panic or hang, must answer with an error (ending the session is
// allowed for a malformed message), must not pass an envelope on, and
// must keep the marker out of its log.
func TestAttackSuite15TamperedServer(t *testing.T) {
	flip := func(v []byte) []byte {
		v = append([]byte(nil), v...)
		i := len(v) - 6
		if v[i] == 'A' {
			v[i] = 'B'
		} else {
			v[i] = 'A'
		}
		return v
	}
	cases := []struct {
		name   string
		mutate func(body []byte) []byte
	}{
		{"flipped_ciphertext", func(b []byte) []byte {
			f := fields15(b)
			f[1] = flip(f[1])
			return row15(len(f), f)
		}},
		{"other_key_version", func(b []byte) []byte {
			f := fields15(b)
			f[1] = append([]byte("v2:"), f[1][3:]...)
			return row15(len(f), f)
		}},
		{"count_above_fields", func(b []byte) []byte {
			f := fields15(b)
			return row15(len(f)+3, f)
		}},
		{"count_65535", func(b []byte) []byte {
			f := fields15(b)
			return row15(65535, f)
		}},
		{"length_past_end", func(b []byte) []byte {
			f := fields15(b)
			out := row15(len(f), f)
			// the body field's length word follows the id field
			at := 2 + 4 + len(f[0])
			binary.BigEndian.PutUint32(out[at:], 0x7fffffff)
			return out
		}},
		{"short_body", func(b []byte) []byte { return b[:1] }},
		{"negative_length", func(b []byte) []byte {
			f := fields15(b)
			out := row15(len(f), f)
			at := 2 + 4 + len(f[0])
			binary.BigEndian.PutUint32(out[at:], 0xfffffff0)
			return out[:at+4]
		}},
		// Leaked before the fix: proxy/backend.go decryptRow decrypts only the fields the RowDescription names (i < len(shape.cols)); a DataRow with more fields than that passes the extra ones on, so the envelope reaches the client instead of an error.
		{"extra_field_after_description", func(b []byte) []byte {
			f := fields15(b)
			f = append(f, f[1])
			return row15(len(f), f)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mutate atomic.Pointer[func([]byte) []byte]
			addr := tamperRelay15(t, &mutate)
			f := newEncFixtureFunc(t, seedColumns(), false, "", func(o *proxy.Options) { o.Upstream = addr })
			fe, conn := failRaw(t, f)
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			run15(t, fe, q("INSERT INTO legacy_notes (body) VALUES ('SECRET_15t_value')"))
			fn := c.mutate
			mutate.Store(&fn)
			for _, fli := range []flight{
				fl("SELECT id::text, body FROM legacy_notes"),
				fl(ext("SELECT id::text, body FROM legacy_notes WHERE id > $1", "0"), syncMsg()),
			} {
				want := 0
				for _, m := range fli {
					switch m.(type) {
					case *pgproto3.Query, *pgproto3.Sync:
						want++
					}
					fe.Send(m)
				}
				fe.Flush()
				closed := false
				for range want {
					ms, err := untilZ(t, fe)
					for _, m := range ms {
						switch m := m.(type) {
						case *pgproto3.DataRow:
							for _, v := range m.Values {
								if cipher.LooksLikeEnvelope(v) || envelopeIn.Match(v) {
									t.Errorf("CIPHERTEXT returned to the client: %.60q", v)
								}
							}
						case *pgproto3.ErrorResponse:
							t.Logf("%s %s: %s", m.Severity, m.Code, m.Message)
							if strings.Contains(m.Message+m.Detail+m.Hint, "SECRET") {
								t.Errorf("LEAK: the error names the value: %s / %s", m.Message, m.Detail)
							}
						}
					}
					if err != nil {
						if !hasFatal(ms) {
							t.Fatalf("connection lost without an error (hang or crash?): %v", err)
						}
						closed = true
						break
					}
				}
				if closed {
					break
				}
			}
			mutate.Store(nil)
			if l := f.p.logs.String(); strings.Contains(l, "SECRET") || strings.Contains(l, "panic") {
				t.Errorf("LEAK or panic in the proxy's log:\n%s", l)
			}
		})
	}
}
