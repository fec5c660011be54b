package e2e

// Review rounds 9 and 10, of the session-state changes made after round 8:
// hangs, refusals of ordinary traffic, and what they let through. Each
// failed before its fix.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

func simpleQuery(t *testing.T, sc *stressConn, sql string) []pgproto3.BackendMessage {
	t.Helper()
	sendAll(t, sc, &pgproto3.Query{String: sql})
	ms, err := readZ(t, sc, 1)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return ms
}

func errorsIn(ms []pgproto3.BackendMessage) []string {
	var out []string
	for _, m := range ms {
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			out = append(out, e.Code+" "+e.Message)
		}
	}
	return out
}

// TestFailClosedExecuteTargetChangedAfterBind: a Parse of "execute p('...')" is
// checked against p at Bind (execTargets), but EXECUTE resolves p when the
// portal runs. In a transaction the portal outlives a Sync; p prepared
// again over a policy column between Bind and Execute stores the literal,
// which was left plaintext for the old p, in the policy column.
func TestFailClosedExecuteTargetChangedAfterBind(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, _, sc, _ := reproSetup(t, r.loops)
			simpleQuery(t, sc, "prepare p(text) as select id from legacy_notes where id::text = $1")
			simpleQuery(t, sc, "begin")
			sendAll(t, sc,
				&pgproto3.Parse{Name: "s", Query: "execute p('PLAINSECRET-R10-1')"},
				&pgproto3.Bind{DestinationPortal: "ps", PreparedStatement: "s"},
				&pgproto3.Sync{},
			)
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			simpleQuery(t, sc, "deallocate p")
			simpleQuery(t, sc, "prepare p(text) as insert into legacy_notes (body) values ($1)")
			sendAll(t, sc, &pgproto3.Execute{Portal: "ps"}, &pgproto3.Sync{})
			ms, err := readZ(t, sc, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("execute: errors %v", errorsIn(ms))
			simpleQuery(t, sc, "commit")
			f.failStored(t, "PLAINSECRET")
		})
	}
}

// TestFetchPortalDescribedBeforeCursorChanged: a portal of "fetch 1
// from c" that the client described itself is not described again at
// Execute (pt.describeSent), but FETCH reads whatever cursor c is when the
// portal runs. c closed and declared again over a policy column in the
// same group, between the client's Describe and the Execute: the rows go
// through the old (plain) shape and the client gets envelopes as values.
func TestFetchPortalDescribedBeforeCursorChanged(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, _, sc, _ := reproSetup(t, r.loops)
			conn := f.connect(t, pgx.QueryExecModeExec)
			if _, err := conn.Exec(testCtx(t), "insert into legacy_notes (body) values ($1)", "secret-body-r10"); err != nil {
				t.Fatal(err)
			}
			simpleQuery(t, sc, "begin")
			simpleQuery(t, sc, "declare c cursor for select 'plain'::text from generate_series(1, 3)")
			sendAll(t, sc,
				&pgproto3.Parse{Name: "f", Query: "fetch 1 from c"},
				&pgproto3.Bind{DestinationPortal: "pf", PreparedStatement: "f"},
				&pgproto3.Describe{ObjectType: 'P', Name: "pf"},
				&pgproto3.Parse{Query: "close c"},
				&pgproto3.Bind{},
				&pgproto3.Execute{},
				&pgproto3.Parse{Query: "declare c cursor for select body from legacy_notes"},
				&pgproto3.Bind{},
				&pgproto3.Execute{},
				&pgproto3.Execute{Portal: "pf"},
				&pgproto3.Sync{},
			)
			ms, err := readZ(t, sc, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("errors: %v", errorsIn(ms))
			noEnvelopes(t, ms, "fetch through portal pf")
			simpleQuery(t, sc, "rollback")
		})
	}
}

// TestPipelinedRollbackAfterError: txFailed is the status of the last
// ReadyForQuery the server side has read. A client that pipelines a failing
// group and its ROLLBACK (pgx pipeline mode, any pipelining driver) sends
// the ROLLBACK before that ReadyForQuery arrives: with the catalog due for
// a re-read (here: a result named a relation newer than the catalog), the
// proxy runs its catalog query in the aborted transaction and refuses the
// client's ROLLBACK with the catalog query's failure.
func TestPipelinedRollbackAfterError(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, _, sc, _ := reproSetup(t, r.loops)
			simpleQuery(t, sc, "begin")
			if _, err := f.direct.Exec(testCtx(t), "create table newt_r10 (x int)"); err != nil {
				t.Fatal(err)
			}
			sendAll(t, sc,
				&pgproto3.Parse{Query: "select 1/0"},
				&pgproto3.Parse{Name: "n", Query: "select * from newt_r10"},
				&pgproto3.Sync{},
			)
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			// The RowDescription names newt_r10: the catalog is suspect.
			sendAll(t, sc, &pgproto3.Bind{DestinationPortal: "pn", PreparedStatement: "n"}, &pgproto3.Describe{ObjectType: 'P', Name: "pn"}, &pgproto3.Execute{Portal: "pn"}, &pgproto3.Sync{})
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			sendAll(t, sc,
				&pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}, // 22012, transaction aborted
				&pgproto3.Query{String: "rollback"},
			)
			ms, err := readZ(t, sc, 2)
			if err != nil {
				t.Fatal(err)
			}
			// (pgproto3 reuses one ErrorResponse: the last one is what counts.)
			for _, e := range errorsIn(ms) {
				if strings.Contains(e, "reading the catalog") {
					t.Errorf("ROLLBACK refused: %s", e)
					break
				}
			}
			ms = simpleQuery(t, sc, "select 1")
			if e := errorsIn(ms); len(e) > 0 {
				t.Errorf("after the ROLLBACK: %v (still in the aborted transaction)", e)
			}
		})
	}
}

// TestFailClosedParseAfterErrorBindsNewStatement: after an error the server skips
// to Sync, and the proxy now settles a Parse queued during the skip as
// failed at once (expectQueue.push). A Bind of that name in the same group
// then resolves to the statement the name held before (lookupStmt follows
// prev), so its parameters are encrypted, or not, for the old statement:
// the client's plaintext for the new statement's policy column goes out to
// PostgreSQL. (PostgreSQL skips it, but the value crossed the wire, which
// the proxy otherwise prevents by dropping a refused group's messages.)
func TestFailClosedParseAfterErrorBindsNewStatement(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, w, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc, &pgproto3.Parse{Name: "r", Query: "select $1::text"}, &pgproto3.Sync{})
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			sendAll(t, sc,
				&pgproto3.Parse{Query: "select 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
				&pgproto3.Flush{},
			)
			for {
				m, err := sc.fe.Receive()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("<- %s", msgString(m))
				if _, ok := m.(*pgproto3.ErrorResponse); ok {
					break
				}
			}
			sendAll(t, sc,
				&pgproto3.Parse{Name: "r", Query: "insert into legacy_notes (body) values ($1)"},
				&pgproto3.Bind{PreparedStatement: "r", Parameters: [][]byte{[]byte("PLAINSECRET-R10-4")}},
				&pgproto3.Execute{},
				&pgproto3.Sync{},
			)
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			simpleQuery(t, sc, "select 1")
			noLeak(t, f, w, "PLAINSECRET-R10-4")
		})
	}
}

// TestFailClosedPortalOfSkippedMessage (round 11): the proxy tracked the
// statement a portal ran when it relayed Close and Bind, not when the
// server ran them. A Close or Bind the server skipped, then a ROLLBACK TO
// SAVEPOINT, left the server's portal of EXECUTE p('...') in place while
// the proxy forgot it; p prepared again ran the plaintext literal. A Parse
// of EXECUTE with arguments is now refused.
func TestFailClosedPortalOfSkippedMessage(t *testing.T) {
	for _, how := range []string{"close", "bind"} {
		for _, r := range reproRelays {
			t.Run(how+"/"+r.name, func(t *testing.T) {
				f, _, sc, _ := reproSetup(t, r.loops)
				simpleQuery(t, sc, "prepare p(text) as select id from legacy_notes where id::text = $1")
				simpleQuery(t, sc, "begin")
				sendAll(t, sc,
					&pgproto3.Parse{Name: "s", Query: "execute p('PLAINSECRET-R11-1')"},
					&pgproto3.Bind{DestinationPortal: "ps", PreparedStatement: "s"},
					&pgproto3.Parse{Name: "x", Query: "select 1"},
					&pgproto3.Sync{},
				)
				if _, err := readZ(t, sc, 1); err != nil {
					t.Fatal(err)
				}
				simpleQuery(t, sc, "savepoint a")
				var skipped pgproto3.FrontendMessage = &pgproto3.Close{ObjectType: 'P', Name: "ps"}
				if how == "bind" {
					skipped = &pgproto3.Bind{DestinationPortal: "ps", PreparedStatement: "x"}
				}
				sendAll(t, sc,
					&pgproto3.Parse{Query: "select 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
					skipped,
					&pgproto3.Sync{},
				)
				if _, err := readZ(t, sc, 1); err != nil {
					t.Fatal(err)
				}
				simpleQuery(t, sc, "rollback to savepoint a")
				simpleQuery(t, sc, "deallocate p")
				simpleQuery(t, sc, "prepare p(text) as insert into legacy_notes (body) values ($1)")
				sendAll(t, sc, &pgproto3.Execute{Portal: "ps"}, &pgproto3.Sync{})
				ms, err := readZ(t, sc, 1)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("execute: errors %v", errorsIn(ms))
				simpleQuery(t, sc, "commit")
				f.failStored(t, "PLAINSECRET")
			})
		}
	}
}

// TestFailClosedQueryInsideSkippedPipeline (round 11): lookupStmt's "made
// in this group" rule counted groups as the proxy does (Sync, Query and
// FunctionCall), but PostgreSQL, skipping after an error, skips a Query or
// FunctionCall too and ends the skip only at Sync. A Parse of r (for a
// policy column) that the server refused or skipped, then a Query, then a
// Bind of r before the Sync: the Bind's values were encrypted (not at all)
// for what r held before, and the plaintext crossed the wire in the skipped
// Bind. A Parse's statement is now trusted up to the next Sync.
func TestFailClosedQueryInsideSkippedPipeline(t *testing.T) {
	for _, how := range []string{"dup-query", "dup-function", "error-query"} {
		for _, r := range reproRelays {
			t.Run(how+"/"+r.name, func(t *testing.T) {
				f, w, sc, _ := reproSetup(t, r.loops)
				secret := "PLAINSECRET-R11-2-" + how
				sendAll(t, sc, &pgproto3.Parse{Name: "r", Query: "select $1::text"}, &pgproto3.Sync{})
				if _, err := readZ(t, sc, 1); err != nil {
					t.Fatal(err)
				}
				var between pgproto3.FrontendMessage = &pgproto3.Query{String: "select 1"}
				if how == "dup-function" {
					between = &pgproto3.FunctionCall{Function: 1}
				}
				if how == "error-query" {
					// As in round 10: the skip is under way (and known) before the Parse.
					sendAll(t, sc, &pgproto3.Parse{Query: "select 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{})
					for {
						m, err := sc.fe.Receive()
						if err != nil {
							t.Fatal(err)
						}
						if _, ok := m.(*pgproto3.ErrorResponse); ok {
							break
						}
					}
				}
				sendAll(t, sc,
					&pgproto3.Parse{Name: "r", Query: "insert into legacy_notes (body) values ($1)"},
					between,
					&pgproto3.Bind{PreparedStatement: "r", Parameters: [][]byte{[]byte(secret)}},
					&pgproto3.Execute{},
					&pgproto3.Sync{},
				)
				ms, err := readZ(t, sc, 1)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("errors: %v", errorsIn(ms))
				simpleQuery(t, sc, "select 1")
				noLeak(t, f, w, secret)
			})
		}
	}
}

// TestCursorNamedLikeOldPortal (round 11): the proxy kept what a portal
// was bound to after the server dropped the portal at the end of its
// transaction, and refused a later SQL cursor of the same name run with
// Execute.
func TestCursorNamedLikeOldPortal(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, _, sc, _ := reproSetup(t, r.loops)
			simpleQuery(t, sc, "prepare p(text) as select id from legacy_notes where id::text = $1")
			sendAll(t, sc,
				&pgproto3.Parse{Name: "s", Query: "execute p('1')"},
				&pgproto3.Bind{DestinationPortal: "c", PreparedStatement: "s"},
				&pgproto3.Execute{Portal: "c"},
				&pgproto3.Sync{}, // the implicit transaction ends: portal c is gone
			)
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			simpleQuery(t, sc, "deallocate p")
			simpleQuery(t, sc, "prepare p(text) as select id from legacy_notes where id::text = $1")
			simpleQuery(t, sc, "begin")
			simpleQuery(t, sc, "declare c cursor for select 42")
			sendAll(t, sc, &pgproto3.Execute{Portal: "c"}, &pgproto3.Sync{})
			ms, err := readZ(t, sc, 1)
			if err != nil {
				t.Fatal(err)
			}
			if e := errorsIn(ms); len(e) > 0 {
				t.Errorf("Execute of SQL cursor c refused: %v", e)
			}
			simpleQuery(t, sc, "rollback")
		})
	}
}

// TestFetchRowLimited: a FETCH portal run in row-limited Executes gets a
// hidden Describe before each; its answers and PortalSuspended must stay matched.
func TestFetchRowLimited(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, _, sc, _ := reproSetup(t, r.loops)
			conn := f.connect(t, pgx.QueryExecModeExec)
			for i := 0; i < 3; i++ {
				if _, err := conn.Exec(testCtx(t), "insert into legacy_notes (body) values ($1)", "secret-body-r11"); err != nil {
					t.Fatal(err)
				}
			}
			simpleQuery(t, sc, "begin")
			simpleQuery(t, sc, "declare c cursor for select body from legacy_notes")
			sendAll(t, sc,
				&pgproto3.Parse{Name: "f", Query: "fetch all from c"},
				&pgproto3.Bind{DestinationPortal: "pf", PreparedStatement: "f"},
				&pgproto3.Describe{ObjectType: 'P', Name: "pf"},
				&pgproto3.Execute{Portal: "pf", MaxRows: 1},
				&pgproto3.Execute{Portal: "pf", MaxRows: 1},
				&pgproto3.Sync{},
				&pgproto3.Execute{Portal: "pf", MaxRows: 1},
				&pgproto3.Execute{Portal: "pf"},
				&pgproto3.Sync{},
			)
			ms, err := readZ(t, sc, 2)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("errors: %v", errorsIn(ms))
			noEnvelopes(t, ms, "row-limited fetch")
			n := 0
			for _, m := range ms {
				if d, ok := m.(*pgproto3.DataRow); ok && string(d.Values[0]) == "secret-body-r11" {
					n++
				}
			}
			if n != 3 {
				t.Errorf("got %d decrypted rows, want 3", n)
			}
			ms = simpleQuery(t, sc, "select 1")
			if e := errorsIn(ms); len(e) > 0 {
				t.Errorf("after: %v", e)
			}
			simpleQuery(t, sc, "rollback")
		})
	}
}

// TestFailedCatalogReadIsReported (round 11): the catalog re-read runs
// inside the client's open transaction. When it failed in a healthy
// transaction (here: lock_timeout, another session holding a lock on
// pg_depend), it aborted the client's transaction and the proxy, treating
// the re-read as best effort, told the client nothing: its COMMIT was
// answered "ROLLBACK", and its insert was gone. The statement is refused
// with the failure now; only a 25P02 (a transaction that had already
// failed) lets it through.
func TestFailedCatalogReadIsReported(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, _, sc, _ := reproSetup(t, r.loops)
			simpleQuery(t, sc, "begin")
			simpleQuery(t, sc, "set local lock_timeout = '300ms'")
			ms := simpleQuery(t, sc, "insert into legacy_notes (body) values ('keep-me-r11')")
			if e := errorsIn(ms); len(e) > 0 {
				t.Fatal(e)
			}
			if _, err := f.direct.Exec(testCtx(t), "begin; lock table pg_catalog.pg_depend in access exclusive mode"); err != nil {
				t.Fatal(err)
			}
			defer f.direct.Exec(context.Background(), "rollback")
			time.Sleep(stressCatalogMaxAge + 500*time.Millisecond)
			ms = simpleQuery(t, sc, "commit")
			f.direct.Exec(context.Background(), "rollback")
			for _, m := range ms {
				if cc, ok := m.(*pgproto3.CommandComplete); ok {
					t.Logf("commit answered %q, errors %v", cc.CommandTag, errorsIn(ms))
					if string(cc.CommandTag) == "ROLLBACK" && len(errorsIn(ms)) == 0 {
						t.Errorf("the client's transaction was aborted by the proxy's own catalog query, and its COMMIT answered ROLLBACK without any error")
					}
				}
			}
			var n int
			f.direct.QueryRow(testCtx(t), "select count(*) from legacy_notes").Scan(&n)
			t.Logf("rows in legacy_notes: %d", n)
		})
	}
}

// Review round 12.

// a catalog re-read that fails in a healthy transaction (lock_timeout)
// refuses the client's ROLLBACK, which needs no catalog.
func TestRollbackAfterFailedCatalogRead(t *testing.T) {
	for _, stmt := range []string{"rollback", "rollback to savepoint a"} {
		for _, r := range reproRelays {
			t.Run(strings.ReplaceAll(stmt, " ", "_")+"/"+r.name, func(t *testing.T) {
				f, _, sc, _ := reproSetup(t, r.loops)
				simpleQuery(t, sc, "begin")
				simpleQuery(t, sc, "set local lock_timeout = '300ms'")
				simpleQuery(t, sc, "savepoint a")
				if _, err := f.direct.Exec(testCtx(t), "begin; lock table pg_catalog.pg_depend in access exclusive mode"); err != nil {
					t.Fatal(err)
				}
				defer f.direct.Exec(context.Background(), "rollback")
				time.Sleep(stressCatalogMaxAge + 500*time.Millisecond)
				ms := simpleQuery(t, sc, stmt)
				f.direct.Exec(context.Background(), "rollback")
				if e := errorsIn(ms); len(e) > 0 {
					t.Errorf("%s refused: %v", stmt, e)
				}
				simpleQuery(t, sc, "rollback")
			})
		}
	}
}

// DEALLOCATE and PREPARE in Queries that name no policy table are not
// tracked: a Bind of the name is encrypted for the old (policy) statement
// while the server runs the new one, and the envelope is stored/returned.
func TestDeallocateAndPrepareInPlainQueries(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, _, sc, _ := reproSetup(t, r.loops)
			sendAll(t, sc, &pgproto3.Parse{Name: "s1", Query: "insert into legacy_notes (body) values ($1)"}, &pgproto3.Sync{})
			if _, err := readZ(t, sc, 1); err != nil {
				t.Fatal(err)
			}
			simpleQuery(t, sc, "deallocate s1")
			simpleQuery(t, sc, "prepare s1(text) as select $1")
			sendAll(t, sc, &pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("hello-r12")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
			ms, err := readZ(t, sc, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("errors %v", errorsIn(ms))
			for _, m := range ms {
				if d, ok := m.(*pgproto3.DataRow); ok && string(d.Values[0]) != "hello-r12" {
					t.Errorf("select $1 returned %q, not the value bound: encrypted for the deallocated statement", d.Values[0])
				}
			}
		})
	}
}

// Held check: pipelined BEGIN; SAVEPOINT; bad; ROLLBACK TO; INSERT; COMMIT
// as separate Queries after the catalog aged.
func TestPipelinedSubtransactionRollback(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			f, w, sc, _ := reproSetup(t, r.loops)
			time.Sleep(stressCatalogMaxAge + 500*time.Millisecond)
			sendAll(t, sc,
				&pgproto3.Query{String: "begin"},
				&pgproto3.Query{String: "savepoint a"},
				&pgproto3.Query{String: "select 1/0"},
				&pgproto3.Query{String: "rollback to savepoint a"},
				&pgproto3.Query{String: "insert into legacy_notes (body) values ('SECRET-R12-H')"},
				&pgproto3.Query{String: "commit"},
			)
			ms, err := readZ(t, sc, 6)
			if err != nil {
				t.Fatal(err)
			}
			if e := errorsIn(ms); len(e) != 1 {
				t.Errorf("want only the division error, got %v", e)
			}
			noLeak(t, f, w, "SECRET-R12-H")
		})
	}
}

// TestDiscardAllAfterSetClientEncoding (round 13): libpq's
// PQsetClientEncoding sends SET client_encoding; afterwards DISCARD ALL and
// a PREPARE whose text has END were refused ("being changed by an
// unanswered statement"), once PREPARE, DEALLOCATE and DISCARD ALL were
// analysed for bookkeeping. Lexing settings matter only to statements that
// may carry policy values.
func TestDiscardAllAfterSetClientEncoding(t *testing.T) {
	for _, r := range reproRelays {
		t.Run(r.name, func(t *testing.T) {
			_, _, sc, _ := reproSetup(t, r.loops)
			for _, q := range []string{
				"set client_encoding to 'UTF8'",
				"discard all",
				"prepare p as select case when true then 1 end",
				"deallocate p",
			} {
				sendAll(t, sc, &pgproto3.Query{String: q})
				ms, err := readZ(t, sc, 1)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range ms {
					if e, ok := m.(*pgproto3.ErrorResponse); ok {
						t.Errorf("%q refused: %s", q, e.Message)
					}
				}
			}
		})
	}
}
