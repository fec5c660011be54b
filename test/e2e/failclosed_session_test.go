package e2e

// Review round 9, of the session-state changes made after round 8: hangs
// and refusals of ordinary traffic. Each failed before its fix.

import (
	"time"

	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestCopyWordsInSuspendedPortal: an Execute with a row limit of a
// statement whose text merely contains "copy" and "stdin" ends with
// PortalSuspended. The proxy's copyQuery for the Execute is only settled by
// C, I, E or Z, so the Sync waits in settleCopy for ever: the client never
// gets its ReadyForQuery.
func TestCopyWordsInSuspendedPortal(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, _, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc,
				&pgproto3.Parse{Query: "select 'copy from stdin' as note from generate_series(1, 5)"},
				&pgproto3.Bind{},
				&pgproto3.Execute{MaxRows: 2},
				&pgproto3.Sync{},
			)
			// PostgreSQL: 1 2 D D s Z.
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatalf("receive: %v (no ReadyForQuery for the Sync)", err)
			}
		})
	}
}

// TestRollbackAfterStaleColumn: a column added to a policy table on
// another connection makes the proxy refuse rows (55000) and mark its
// catalog suspect. If the same Query then aborts the transaction, the
// client's ROLLBACK is the next statement: the proxy first re-reads its
// catalog, which fails in the aborted transaction (25P02), and the proxy
// refuses the ROLLBACK itself.
func TestRollbackAfterStaleColumn(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, _, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc, &pgproto3.Query{String: "begin"})
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := f.direct.Exec(testCtx(t), "alter table clients add column extra_r9 text"); err != nil {
				t.Fatal(err)
			}
			sendAll(t, sc, &pgproto3.Query{String: "select * from clients; select 1/0"})
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			sendAll(t, sc, &pgproto3.Query{String: "rollback"})
			ms, err := readZ(t, sc, 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if e, ok := m.(*pgproto3.ErrorResponse); ok {
					t.Errorf("ROLLBACK refused: %s %s", e.Code, e.Message)
				}
			}
		})
	}
}

// TestRollbackAfterIdleAbortedTransaction: a transaction aborted by an
// ordinary error, then more than CatalogMaxAge before the user types
// ROLLBACK (psql). Every Query re-reads the aged catalog first; that fails
// in the aborted transaction, and the proxy refuses the ROLLBACK, again and
// again: the session can never leave the transaction.
func TestRollbackAfterIdleAbortedTransaction(t *testing.T) {
	_, _, sc, _ := reproSetup(t, 0)
	sendAll(t, sc, &pgproto3.Query{String: "begin"}, &pgproto3.Query{String: "select 1/0"})
	if _, err := readZ(t, sc, 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(stressCatalogMaxAge + 500*time.Millisecond)
	for i := 0; i < 2; i++ {
		sendAll(t, sc, &pgproto3.Query{String: "rollback"})
		ms, err := readZ(t, sc, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if e, ok := m.(*pgproto3.ErrorResponse); ok {
				t.Errorf("ROLLBACK #%d refused: %s %s", i+1, e.Code, e.Message)
			}
		}
	}
}

// TestCopyPortalExecutedAfterSync: in a transaction, a portal of COPY FROM
// STDIN (a plain table) bound in one group and executed in the next. The
// proxy forgot the portal at the Sync (clear(sp.portals)), so the Execute
// has no statement, hence no copyQuery: the client's COPY data is dropped
// as "not part of a COPY that may be running", and the server waits for it
// for ever.
func TestCopyPortalExecutedAfterSync(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, _, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc,
				&pgproto3.Query{String: "begin"},
				&pgproto3.Parse{Query: "copy plain_t (v) from stdin"},
				&pgproto3.Bind{},
				&pgproto3.Sync{},
			)
			if _, err := readZ(t, sc, 2); err != nil {
				t.Fatal(err)
			}
			sendAll(t, sc,
				&pgproto3.Execute{},
				&pgproto3.Sync{},
				&pgproto3.CopyData{Data: []byte("r9-row\n")},
				&pgproto3.CopyDone{},
				&pgproto3.Sync{},
			)
			// PostgreSQL: G, (Sync ignored), C, Z.
			ms, err := readZ(t, sc, 1)
			if err != nil {
				t.Fatalf("receive: %v (hang)", err)
			}
			for _, m := range ms {
				if e, ok := m.(*pgproto3.ErrorResponse); ok {
					t.Errorf("error: %s %s", e.Code, e.Message)
				}
			}
		})
	}
}

// TestPrepareInRefusedQuery: a Query whose PREPARE the proxy
// records (noteStatements) and which it then refuses (here: an EXECUTE of a
// statement it never saw) is replaced by a poison query, and its
// expectation carries no "prepared": the PREPARE's statement stays pending
// for ever. Since a Query counts as a group, the next EXECUTE of that name
// waits in lookupStmt for an answer that never comes.
func TestPrepareInRefusedQuery(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, _, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc, &pgproto3.Query{String: "prepare r9p as select first_name from clients where email = $1; execute r9nope('x')"})
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			sendAll(t, sc, &pgproto3.Query{String: "execute r9p('seed@x')"})
			// PostgreSQL (and the proxy before): 26000, r9p does not exist.
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatalf("receive: %v (hang)", err)
			}
		})
	}
}
