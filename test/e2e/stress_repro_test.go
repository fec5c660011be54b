package e2e

// Minimal reproductions of what TestStressProtocolSequences found (each
// failed before its fix). Each runs on both relays.

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

var reproRelays = []struct {
	name  string
	loops int
}{{"loop", 0}, {"goroutines", -1}}

// reproSetup is a stress fixture with the probe's row, and a raw session.
func reproSetup(t *testing.T, loops int) (*encFixture, *wireTap, *stressConn, string) {
	f, w := newStressFixture(t, loops)
	ws := f.workspace(t)
	conn := f.connect(t, pgx.QueryExecModeExec)
	if _, err := conn.Exec(testCtx(t), "insert into clients (workspace_id, first_name, last_name, email, notes) values ($1, 'seed-first', 'seed-last', 'seed@x', 'seed-row')", ws); err != nil {
		t.Fatal(err)
	}
	sc := stressDial(t, f)
	t.Cleanup(func() { sc.c.Close() })
	return f, w, sc, ws
}

// sendAll writes the messages in one write.
func sendAll(t *testing.T, sc *stressConn, ms ...pgproto3.FrontendMessage) {
	t.Helper()
	var b []byte
	for _, m := range ms {
		b = append(b, enc(m)...)
	}
	sc.c.SetDeadline(time.Now().Add(8 * time.Second))
	if _, err := sc.c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readZ reads n ReadyForQuery messages, returning everything received.
func readZ(t *testing.T, sc *stressConn, n int) ([]pgproto3.BackendMessage, error) {
	var out []pgproto3.BackendMessage
	for n > 0 {
		m, err := sc.fe.Receive()
		if err != nil {
			return out, err
		}
		t.Logf("<- %s", msgString(m))
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			n--
		case *pgproto3.DataRow:
			cp := &pgproto3.DataRow{}
			for _, v := range m.Values {
				cp.Values = append(cp.Values, append([]byte(nil), v...))
			}
			out = append(out, cp)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

const probeSQL = "select first_name from clients where notes = 'seed-row'"

func wantSeedFirst(t *testing.T, ms []pgproto3.BackendMessage, what string) {
	t.Helper()
	for _, m := range ms {
		if d, ok := m.(*pgproto3.DataRow); ok && len(d.Values) == 1 {
			if string(d.Values[0]) != "seed-first" {
				t.Errorf("%s: first_name = %.60q, want seed-first", what, d.Values[0])
			}
		}
	}
}

// TestCopySyncAfterFailedCopy: a COPY FROM STDIN query that fails at once
// (a missing table, an aborted transaction) followed by a pipelined Sync.
// PostgreSQL answers the Sync with ReadyForQuery since no COPY is running;
// the proxy assumed the COPY had started and expected no answer, so every
// later answer was matched with the wrong message: policy columns came
// back as ciphertext.
func TestCopySyncAfterFailedCopy(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, _, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc,
				&pgproto3.Query{String: "copy no_such_table from stdin"},
				&pgproto3.Sync{},
				&pgproto3.Query{String: probeSQL},
			)
			// PostgreSQL: E Z (the COPY), Z (the Sync), T D C Z.
			ms, err := readZ(t, sc, 3)
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			wantSeedFirst(t, ms, "pipelined after the failed COPY and Sync")
			// And later, not pipelined.
			sendAll(t, sc, &pgproto3.Query{String: probeSQL})
			ms, err = readZ(t, sc, 1)
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			wantSeedFirst(t, ms, "next query")
		})
	}
}

// TestCopySyncAfterFailedCopyCatalog: the same, when the next statement
// makes the proxy re-read its catalog: the catalog query's answers went to
// the wrong expectation, and reached the client.
func TestCopySyncAfterFailedCopyCatalog(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, w, sc, ws := reproSetup(t, r.loops)
			sendAll(t, sc,
				&pgproto3.Query{String: "copy no_such_table from stdin"},
				&pgproto3.Sync{},
				&pgproto3.Query{String: "set search_path = public"},
				&pgproto3.Query{String: "insert into clients (workspace_id, first_name, last_name) values ('" + ws + "', 'SECRET-cat', 'x')"},
				&pgproto3.Query{String: probeSQL},
			)
			ms, err := readZ(t, sc, 5)
			if err != nil {
				t.Fatalf("receive: %v (hang or broken)", err)
			}
			for _, m := range ms {
				if rd, ok := m.(*pgproto3.RowDescription); ok {
					for _, f := range rd.Fields {
						if strings.HasPrefix(string(f.Name), "attnum") || string(f.Name) == "relkind" {
							t.Errorf("the proxy's own catalog query result reached the client: %s", f.Name)
						}
					}
				}
			}
			wantSeedFirst(t, ms, "after the catalog re-read")
			if w.has("SECRET-cat") {
				t.Errorf("PLAINTEXT reached PostgreSQL")
			}
		})
	}
}

// TestFailClosedCopyDataAfterInterruption: a policy COPY FROM STDIN
// interrupted by another message, then more CopyData: the proxy forgot
// the COPY at the interrupting message and relayed the later CopyData as
// it was, so policy plaintext reached PostgreSQL (which ends the session
// and discards it).
func TestFailClosedCopyDataAfterInterruption(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, w, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc,
				&pgproto3.Query{String: "copy legacy_notes (body) from stdin"},
				&pgproto3.CopyData{Data: []byte("first\n")},
				&pgproto3.Execute{},
				&pgproto3.CopyData{Data: []byte("SECRET-late\n")},
				&pgproto3.CopyDone{},
			)
			readZ(t, sc, 1) // PostgreSQL ends the session (FATAL) at the Execute
			time.Sleep(200 * time.Millisecond)
			if w.has("SECRET-late") {
				t.Errorf("PLAINTEXT COPY data for legacy_notes.body reached PostgreSQL")
			}
		})
	}
}

// TestFailClosedCopyExtraFields: a COPY row of a policy table with more
// fields than columns. PostgreSQL refuses the row ("extra data after last
// expected column") and quotes the line in the error's CONTEXT, to the
// client and the server log; the proxy relayed the extra fields
// unencrypted. It now fails the COPY itself.
func TestFailClosedCopyExtraFields(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, w, sc, ws := reproSetup(t, r.loops)
			sendAll(t, sc,
				&pgproto3.Query{String: "copy clients (workspace_id, first_name) from stdin"},
				&pgproto3.CopyData{Data: []byte(ws + "\tfirst\tSECRET-extra\n")},
				&pgproto3.CopyDone{},
			)
			readZ(t, sc, 1)
			if w.has("SECRET-extra") {
				t.Errorf("an extra COPY field reached PostgreSQL unencrypted")
			}
		})
	}
}

// TestFailClosedCopyInterruptedByCopyPortal (found by sweeping the stress
// test over 108 seeds): a COPY of policy columns interrupted by an Execute
// of a portal the proxy had seen bound to a plain COPY (earlier, so long
// gone on the server), or by a Bind of such a statement and its Execute,
// or after the proxy refused the policy COPY. The proxy took the Execute
// for the start of that plain COPY and relayed the CopyData that followed
// unencrypted (PostgreSQL ends the session at the interruption, or ignores
// the data, but the plaintext reached its socket). COPY data for a COPY
// without policy columns is now relayed only once the server has started
// that COPY.
func TestFailClosedCopyInterruptedByCopyPortal(t *testing.T) {
	for _, how := range []string{"stale portal", "bind", "refused copy"} {
		for _, r := range reproRelays {
			t.Run(how+"/"+r.name, func(t *testing.T) {
				_, w, sc, ws := reproSetup(t, r.loops)
				sendAll(t, sc,
					&pgproto3.Parse{Name: "c", Query: "copy plain_t (v) from stdin"},
					&pgproto3.Bind{PreparedStatement: "c"},
					&pgproto3.Execute{},
					&pgproto3.Flush{},
					&pgproto3.CopyData{Data: []byte("ext-copy\n")},
					&pgproto3.CopyDone{},
					&pgproto3.Sync{},
				)
				if _, err := readZ(t, sc, 1); err != nil {
					t.Fatalf("receive: %v", err)
				}
				interrupt := []pgproto3.FrontendMessage{&pgproto3.Execute{}}
				if how == "bind" {
					interrupt = []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: "c"}, &pgproto3.Execute{}}
				}
				var msgs []pgproto3.FrontendMessage
				if how == "refused copy" {
					// DDL through Parse earlier in the pipeline: the proxy
					// refuses the policy COPY (it cannot re-read its
					// catalog before Sync), and the client streams anyway.
					msgs = append(msgs, &pgproto3.Parse{Name: "s1", Query: "create temp table if not exists tmp_t (a int)"})
				}
				msgs = append(msgs, &pgproto3.Query{String: "copy clients (workspace_id, first_name, last_name) from stdin"})
				msgs = append(msgs, interrupt...)
				msgs = append(msgs, &pgproto3.CopyData{Data: []byte(ws + "\tLATE-1\tLATE-2\n")}, &pgproto3.CopyDone{})
				sendAll(t, sc, msgs...)
				readZ(t, sc, 1) // PostgreSQL ends the session (FATAL) at the interruption
				time.Sleep(200 * time.Millisecond)
				if w.has("LATE-1") {
					t.Errorf("PLAINTEXT COPY data for clients.first_name reached PostgreSQL")
				}
			})
		}
	}
}
