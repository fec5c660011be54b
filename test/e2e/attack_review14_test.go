package e2e

// A fourteenth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit c0b07be (SQL PREPARE, EXECUTE,
// DEALLOCATE and DISCARD ALL through Parse; portal names trusted only while
// nothing ran since their Bind; one tracker wait). Its themes:
//
//   - names PostgreSQL and the proxy read differently: prepared statement
//     and portal names longer than NAMEDATALEN-1 (63) bytes, which the
//     server compares by their first 63 bytes only, while the proxy keys
//     them by the whole name;
//   - PREPARE and DEALLOCATE the proxy cannot see: inside a DO block, an
//     SQL function or a procedure (none naming a policy table);
//   - utility portals (EXECUTE p, FETCH ALL FROM c) whose rows are stored
//     at their first Execute: the proxy's own Describe before a later
//     Execute reads what the name holds now, not what filled the store;
//   - the new Execute-time name changes at their edges: a re-PREPARE of a
//     name whose PREPARE is unanswered, DEALLOCATE / DISCARD ALL / Close
//     skipped after an error, savepoints and errors in implicit
//     transactions (a PREPARE is not transactional), COMMIT AND CHAIN and
//     PREPARE TRANSACTION around a bound portal, the unnamed portal run
//     twice, EXPLAIN ANALYZE and CREATE TABLE AS around a parsed EXECUTE,
//     a search_path change between a parsed PREPARE and its Execute, and
//     the tracker's wait behind a COPY;
//   - the proxy's own Describe of a FETCH portal whose cursor is gone,
//     which crashes PostgreSQL 15.
//
// Ten of its 29 cases failed before the fixes (marked "Leaked before the
// fix" below): three through names over 63 bytes (the proxy now keys
// names by their first 63 bytes), three through PREPARE in a DO block,
// function or procedure (code that runs PREPARE, DEALLOCATE or DISCARD is
// refused like code that runs EXECUTE), three through stored rows of
// utility portals described again, and one server crash (a FETCH or
// EXECUTE portal is described once, before its first Execute, and run
// only while nothing else ran since).

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// insBody14 stores an envelope of SECRET in legacy_notes through the proxy.
const insBody14 = "INSERT INTO legacy_notes (body) VALUES ('SECRET')"

// name63 is a name of NAMEDATALEN-1 bytes; name64 is one byte longer, and
// PostgreSQL's hash tables of prepared statements and portals (dynahash,
// keysize NAMEDATALEN) compare only its first 63 bytes: to the server
// name64 is name63.
var (
	name63 = "n14_" + strings.Repeat("a", 59)
	name64 = name63 + "z"
	port63 = "k14_" + strings.Repeat("b", 59)
	port64 = port63 + "z"
	dlp63  = "d14_" + strings.Repeat("c", 59)
	dlp64  = dlp63 + "z"
)

func bind14(portal, stmt string, params ...string) *pgproto3.Bind {
	b := &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
	for _, p := range params {
		b.Parameters = append(b.Parameters, []byte(p))
	}
	return b
}

func parse14(name, sql string) *pgproto3.Parse { return &pgproto3.Parse{Name: name, Query: sql} }

func exec14(portal string, maxRows uint32) *pgproto3.Execute {
	return &pgproto3.Execute{Portal: portal, MaxRows: maxRows}
}

const (
	prepIns14   = "PREPARE p14(text) AS INSERT INTO legacy_notes (body) VALUES ($1)"
	prepPlain14 = "PREPARE p14(text) AS SELECT $1"
)

// noCrash14 waits until the server accepts connections again, then fails
// when its log says a backend died while running the query last.
func noCrash14(last string) func(t *testing.T, f *encFixture) {
	return func(t *testing.T, f *encFixture) {
		if _, err := f.direct.Exec(testCtx(t), "SELECT 1"); err != nil {
			// The direct connection died with the server: wait for its
			// restart and connect again (pg_dump and the checks need it).
			waitFor(t, "PostgreSQL to accept connections", func() bool {
				c, err := pgx.Connect(testCtx(t), pg.SuperConnString(f.db))
				if err != nil {
					return false
				}
				f.direct = c
				t.Cleanup(func() { c.Close(context.Background()) })
				return true
			})
		}
		if pg.LogFile == "" {
			return
		}
		b, err := os.ReadFile(pg.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("Failed process was running: "+last)) {
			t.Errorf("PostgreSQL CRASHED (a backend died, every session was ended): %s", grepLines(string(b), "terminated by signal"))
		}
	}
}

func attackCases14() []attackCase {
	return []attackCase{
		// A. Names longer than 63 bytes.
		// Leaked before the fix: proxy/statements.go record and proxy/frontend_stmts.go lookupStmt key sp.stmts by the whole Parse name, but PostgreSQL's prepared-statement hash compares only 63 bytes: the 64-byte name is the 63-byte one PREPAREd as an INSERT, and its Bind is encrypted for the plain SELECT the proxy recorded.
		{name: "trunc14/statement_name_64_bytes", flights: []flight{
			fl(parse14(name64, "SELECT $1::text AS x"), syncMsg()),
			fl("DEALLOCATE " + name63),
			fl("PREPARE " + name63 + "(text) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
			fl(bind14("", name64, "SECRET"), exec14("", 0), syncMsg()),
		}},
		// Leaked before the fix: proxy/frontend_portals.go frontendClose forgets sp.stmts[64-byte name] while the server deallocates the 63-byte statement; the Parse of the 64-byte INSERT then takes its place on the server, and EXECUTE of the 63-byte name is encrypted for the SELECT the proxy still records (frontend_stmts.go lookupStmt).
		{name: "trunc14/close_statement_64_bytes", flights: []flight{
			fl("PREPARE " + name63 + "(text) AS SELECT $1"),
			fl(&pgproto3.Close{ObjectType: 'S', Name: name64}, syncMsg()),
			fl(parse14(name64, "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl("EXECUTE " + name63 + "('SECRET')"),
		}},
		// Leaked before the fix: proxy/frontend_portals.go frontendExecute finds neither sp.portals nor sp.namePortals under the 63-byte prefix of a portal bound as 64 bytes, so the Execute runs its DEALLOCATE / PREPARE without applyNames: p14 becomes the INSERT unseen, and EXECUTE p14('…') goes out as plaintext.
		{name: "trunc14/portal_name_64_bytes", flights: []flight{
			fl(prepPlain14),
			fl(parse14("dl14", "DEALLOCATE p14"), parse14("mk14", prepIns14),
				bind14(dlp64, "dl14"), exec14(dlp63, 0),
				bind14(port64, "mk14"), exec14(port63, 0), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
		}},
		// B. PREPARE and DEALLOCATE inside code the proxy does not read.
		// Leaked before the fix: rewrite/stmt.go (DoStmt) refuses a DO block only for naming a policy table or running EXECUTE; its PREPARE and DEALLOCATE re-make p14 unseen, proxy/frontend_stmts.go lookupStmt trusts its record (outcome OK), and the argument encrypted for the old INSERT comes back from the new SELECT as an envelope.
		{name: "code14/do_block_reprepare", flights: []flight{
			fl(prepIns14),
			fl("DO $$BEGIN DEALLOCATE p14; PREPARE p14(text) AS SELECT $1; END$$"),
			fl("EXECUTE p14('SECRET')"),
		}},
		// Leaked before the fix: rewrite/stmt.go (CreateFunctionStmt) scans a function body only for policy-table names; a function running DEALLOCATE/PREPARE re-makes p14 unseen, proxy/frontend_stmts.go statementValues encrypts the parsed EXECUTE's literal for the old INSERT, and the SELECT returns the envelope.
		{name: "code14/sql_function_reprepare", flights: []flight{
			fl("CREATE FUNCTION f14() RETURNS void LANGUAGE sql AS $$ DEALLOCATE p14; PREPARE p14(text) AS SELECT $1 $$"),
			fl(prepIns14),
			fl("SELECT f14()"),
			fl(ext("EXECUTE p14('SECRET')"), syncMsg()),
		}},
		// Leaked before the fix: proxy/frontend_stmts.go checkExecs compares what p14 holds with the proxy's own record only; a CALLed procedure re-PREPAREd p14 as a SELECT after the EXECUTE was parsed, so the Execute runs and the envelope encrypted for the INSERT is returned.
		{name: "code14/procedure_between_parse_and_execute", flights: []flight{
			fl("CREATE PROCEDURE pr14() LANGUAGE sql AS $$ DEALLOCATE p14; PREPARE p14(text) AS SELECT $1 $$"),
			fl(prepIns14),
			fl(parse14("run14", "EXECUTE p14('SECRET')"), syncMsg()),
			fl("CALL pr14()"),
			fl(bind14("", "run14"), &pgproto3.Describe{ObjectType: 'P'}, exec14("", 0), syncMsg()),
		}},
		// C. Utility portals whose rows were stored at their first Execute.
		// Leaked before the fix: proxy/frontend_portals.go frontendExecute describes a not-fresh portal again, but PostgreSQL describes an EXECUTE portal with the target list of what p14 holds now (FetchStatementTargetList) while its later Execute returns rows stored at the first one: the plain shape lets the stored envelopes through.
		{name: "store14/execute_portal_reprepared_between_fetches", flights: []flight{
			fl(insBody14), fl(insBody14), fl(insBody14),
			fl("PREPARE p14 AS SELECT body FROM legacy_notes"),
			fl("BEGIN"),
			fl(parse14("e14", "EXECUTE p14"), bind14("r14", "e14"), exec14("r14", 1), syncMsg()),
			fl("DEALLOCATE p14", "PREPARE p14 AS SELECT 'plain'::text AS body"),
			fl(exec14("r14", 0), syncMsg()),
			fl("COMMIT"),
		}},
		// Leaked before the fix: proxy/frontend_portals.go frontendExecute (hidden Describe of a not-fresh portal): the Describe of a FETCH ALL portal reads the target list of the cursor now named c14 (re-declared plain), while the Execute returns the rows its first Execute stored from the old cursor over legacy_notes.
		{name: "store14/fetch_all_portal_cursor_redeclared", flights: []flight{
			fl(insBody14), fl(insBody14), fl(insBody14),
			fl("BEGIN", "DECLARE c14 CURSOR FOR SELECT body FROM legacy_notes"),
			fl(parse14("f14", "FETCH ALL FROM c14"), bind14("r14", "f14"), exec14("r14", 1), syncMsg()),
			fl("CLOSE c14", "DECLARE c14 CURSOR FOR SELECT 'plain'::text AS body"),
			fl(exec14("r14", 0), syncMsg()),
			fl("COMMIT"),
		}},
		// Leaked before the fix: the same as execute_portal_reprepared_between_fetches inside one pipeline (proxy/frontend_portals.go frontendExecute, volatileShape describes again and trusts the answer): the second Execute's rows come from the store filled before DEALLOCATE/PREPARE.
		{name: "store14/execute_portal_same_pipeline_reprepare", flights: []flight{
			fl(insBody14), fl(insBody14),
			fl("PREPARE p14 AS SELECT body FROM legacy_notes"),
			fl("BEGIN"),
			fl(parse14("e14", "EXECUTE p14"), bind14("r14", "e14"), exec14("r14", 1),
				ext("DEALLOCATE p14"), ext("PREPARE p14 AS SELECT 'plain'::text AS body"),
				exec14("r14", 0), syncMsg()),
			fl("COMMIT"),
		}},
		// The proxy's own Describe before an Execute of a FETCH portal
		// whose cursor was closed since its Bind: PostgreSQL 15 answers a
		// Describe of such a portal by dereferencing the missing cursor
		// (FetchStatementTargetList) and the backend dies of SIGSEGV, so the
		// postmaster restarts every session of the cluster. The client's
		// Execute alone gets 34000 "cursor does not exist". (maxAge only
		// makes the case run alone: the crash ends every session.)
		// Leaked before the fix: proxy/frontend_portals.go frontendExecute adds its own Describe 'P' to an Execute of a portal something ran since; for a FETCH portal whose cursor was closed, PostgreSQL 15 dereferences the missing cursor and the backend dies (SIGSEGV): the postmaster restarts and every session of the cluster ends, where the client's Execute alone gets 34000.
		{name: "store14/fetch_portal_cursor_closed_describe_crash", maxAge: time.Hour, check: noCrash14("CLOSE c14crash"), flights: []flight{
			fl("BEGIN", "DECLARE c14crash CURSOR FOR SELECT 1 AS x"),
			fl(parse14("f14", "FETCH ALL FROM c14crash"), bind14("r14", "f14"), syncMsg()),
			fl("CLOSE c14crash"),
			fl(exec14("r14", 0), syncMsg()),
			fl("ROLLBACK"),
		}},
		// D. The Execute-time name changes at their edges.
		// The value goes out plaintext for the SELECT the client means, in
		// an Execute the server skips (the PREPARE before it fails: p14 is
		// taken); only storage is checked.
		{name: "names14/reprepare_while_prepare_unanswered", plainOK: true, flights: []flight{
			fl(q(prepIns14), parse14("", prepPlain14), bind14("", ""), exec14("", 0),
				ext("EXECUTE p14('SECRET')"), syncMsg(), q("EXECUTE p14('SECRET')")),
			fl("EXECUTE p14('SECRET')"),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "names14/deallocate_parse_skipped_then_prepare", flights: []flight{
			fl(prepIns14),
			fl(ext("SELECT 1/0"), ext("DEALLOCATE p14"), syncMsg()),
			fl(ext(prepPlain14), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
			fl(ext("EXECUTE p14('SECRET')"), syncMsg()),
		}},
		{name: "names14/discard_all_parse_in_pipeline_refused", flights: []flight{
			fl(parse14("s14", "INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl(ext("SELECT 1"), ext("DISCARD ALL"), syncMsg()),
			fl(parse14("s14", "SELECT $1::text"), syncMsg()),
			fl(bind14("", "s14", "SECRET"), exec14("", 0), syncMsg()),
			fl("EXECUTE s14('SECRET')"),
		}},
		{name: "names14/close_statement_skipped_then_reparse", flights: []flight{
			fl(prepIns14),
			fl(ext("SELECT 1/0"), &pgproto3.Close{ObjectType: 'S', Name: "p14"}, syncMsg()),
			fl(parse14("p14", "SELECT $1::text"), syncMsg()),
			fl(bind14("", "p14", "SECRET"), exec14("", 0), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
		}},
		{name: "names14/prepare_in_rolled_back_savepoint", flights: []flight{
			fl("BEGIN", "SAVEPOINT a"),
			fl(ext(prepIns14), syncMsg()),
			fl("ROLLBACK TO a", "COMMIT"),
			fl("EXECUTE p14('SECRET')"),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "names14/deallocate_in_rolled_back_tx_then_reprepare", plainOK: true, flights: []flight{
			fl(prepIns14),
			fl("BEGIN"),
			fl(ext("DEALLOCATE p14"), syncMsg()),
			fl("ROLLBACK"),
			fl(ext(prepPlain14), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
		}},
		{name: "names14/prepare_then_error_in_implicit_tx", flights: []flight{
			fl(ext(prepIns14), ext("SELECT 1/0"), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
			fl(ext("EXECUTE p14('SECRET')"), syncMsg()),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "names14/prepare_in_failed_tx", plainOK: true, flights: []flight{
			fl(prepIns14),
			fl("BEGIN", "SELECT 1/0"),
			fl(ext("DEALLOCATE p14"), syncMsg()),
			fl(ext(prepPlain14), syncMsg()),
			fl("ROLLBACK"),
			fl("EXECUTE p14('SECRET')"),
		}},
		{name: "names14/portal_across_commit_and_chain", plainOK: true, flights: []flight{
			fl(prepPlain14),
			fl("BEGIN"),
			fl(parse14("dl14", "DEALLOCATE p14"), parse14("mk14", prepIns14), bind14("d14", "dl14"), bind14("k14", "mk14"), syncMsg()),
			fl("COMMIT AND CHAIN"),
			fl(exec14("d14", 0), exec14("k14", 0), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
			fl("ROLLBACK"),
		}},
		{name: "names14/portal_across_prepare_transaction", plainOK: true, flights: []flight{
			fl(prepPlain14),
			fl("BEGIN"),
			fl(parse14("dl14", "DEALLOCATE p14"), bind14("d14", "dl14"), syncMsg()),
			fl("PREPARE TRANSACTION 'x14'"),
			fl("ROLLBACK"),
			fl(exec14("d14", 0), syncMsg()),
			fl(ext(prepIns14), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
		}},
		{name: "names14/unnamed_prepare_portal_run_twice", flights: []flight{
			fl(parse14("", prepIns14), bind14("", ""), exec14("", 0), exec14("", 0), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "names14/sql_close_and_declare_over_prepare_portal", plainOK: true, flights: []flight{
			fl(prepPlain14),
			fl("BEGIN"),
			fl(parse14("mk14", "DEALLOCATE p14"), bind14("k14", "mk14"),
				ext("CLOSE k14"), ext("DECLARE k14 CURSOR FOR SELECT 1"),
				exec14("k14", 0), syncMsg()),
			fl("ROLLBACK"),
			fl(ext(prepIns14), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
		}},
		{name: "names14/rebind_portal_after_close", plainOK: true, flights: []flight{
			fl(prepIns14),
			fl(parse14("dl14", "DEALLOCATE p14"), parse14("mk14", prepPlain14), parse14("pl14", "SELECT 1"),
				bind14("k14", "dl14"), &pgproto3.Close{ObjectType: 'P', Name: "k14"}, bind14("k14", "pl14"), exec14("k14", 0),
				bind14("m14", "mk14"), exec14("m14", 0), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
		}},
		{name: "names14/explain_analyze_parsed_execute_reprepared", plainOK: true, flights: []flight{
			fl(prepPlain14),
			fl(parse14("run14", "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE p14('SECRET')"),
				ext("DEALLOCATE p14"), parse14("mk14", prepIns14), bind14("m14", "mk14"), exec14("m14", 0),
				bind14("r14", "run14"), exec14("r14", 0), syncMsg()),
			fl(bind14("r14", "run14"), exec14("r14", 0), syncMsg()),
		}},
		{name: "names14/create_table_as_parsed_execute", check: noTable("t14"), flights: []flight{
			fl("PREPARE p14(text) AS SELECT id FROM clients WHERE email = $1"),
			fl(ext("CREATE TABLE t14 AS EXECUTE p14('SECRET')"), syncMsg()),
			fl(ext("EXPLAIN ANALYZE CREATE TABLE t14 AS EXECUTE p14('SECRET')"), syncMsg()),
		}},
		{name: "names14/parsed_execute_continued_literal", flights: []flight{
			fl(prepIns14),
			fl(ext("EXECUTE p14('SECRET'\n'tail')"), syncMsg()),
			fl(ext("EXECUTE p14(E'SECRET' \n 'tail')"), syncMsg()),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "names14/search_path_between_parse_and_execute", ddl: tenantLikePublic, plainOK: true, flights: []flight{
			fl("SET search_path = tenant, public"),
			fl(parse14("mk14", "PREPARE p14(text) AS "+insClients("$1")), syncMsg()),
			fl("SET search_path = public"),
			fl(bind14("", "mk14"), exec14("", 0), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
			fl("SELECT first_name FROM public.clients"),
		}},
		{name: "names14/describe_statement_then_reprepare", flights: []flight{
			fl(insBody14),
			fl("PREPARE p14 AS SELECT 'plain'::text AS body"),
			fl(&pgproto3.Describe{ObjectType: 'S', Name: "p14"}, syncMsg()),
			fl(ext("DEALLOCATE p14"), ext("PREPARE p14 AS SELECT body FROM legacy_notes"),
				bind14("", "p14"), exec14("", 0), syncMsg()),
			fl(bind14("", "p14"), exec14("", 0), syncMsg()),
		}},
		// E. The tracker's one wait: an EXECUTE waits for the Query that
		// prepared its statement, answered only after a COPY ends.
		{name: "wait14/prepare_copy_then_execute", ddl: "; CREATE TABLE plain14 (x text)", flights: []flight{
			fl(q(prepIns14+"; COPY plain14 FROM STDIN"), &pgproto3.CopyData{Data: []byte("a\n")}, &pgproto3.CopyDone{},
				q("EXECUTE p14('SECRET')")),
			fl("SELECT body FROM legacy_notes"),
		}},
		{name: "wait14/function_call_between_bind_and_execute", plainOK: true, flights: []flight{
			fl(prepPlain14),
			fl("BEGIN"),
			fl(parse14("dl14", "DEALLOCATE p14"), bind14("d14", "dl14"),
				callSetConfig("application_name", "x14"), exec14("d14", 0), syncMsg()),
			fl("ROLLBACK"),
			fl(ext(prepIns14), syncMsg()),
			fl("EXECUTE p14('SECRET')"),
		}},
	}
}

func TestAttackSuite14(t *testing.T) { runAttacks(t, 14000, attackCases14()) }
