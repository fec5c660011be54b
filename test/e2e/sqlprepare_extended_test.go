package e2e

// SQL PREPARE, EXECUTE, DEALLOCATE and DISCARD ALL sent through Parse (as
// JDBC and psycopg 3 send every statement): each Execute of such a
// statement changes what a name holds, and the proxy follows it then, not
// at Parse.

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// extRun sends Parse (unnamed), Bind with args, Execute and Sync, and
// returns the answers and the error's SQLSTATE, if any.
func extRun(t *testing.T, fe *pgproto3.Frontend, sql string, args ...string) ([]pgproto3.BackendMessage, string) {
	t.Helper()
	fe.Send(&pgproto3.Parse{Query: sql})
	var params [][]byte
	for _, a := range args {
		params = append(params, []byte(a))
	}
	fe.Send(&pgproto3.Bind{Parameters: params})
	fe.Send(&pgproto3.Execute{})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	ms := failUntilZ(t, fe)
	return ms, errorCode(ms)
}

func errorCode(ms []pgproto3.BackendMessage) string {
	for _, m := range ms {
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			return e.Code
		}
	}
	return ""
}

func TestExtendedSQLPrepareExecute(t *testing.T) {
	f, w := newTapFixture(t, "")
	ctx := testCtx(t)
	fe, _ := failRaw(t, f)
	mustRun := func(sql string, args ...string) []pgproto3.BackendMessage {
		t.Helper()
		ms, code := extRun(t, fe, sql, args...)
		if code != "" {
			t.Fatalf("%s: error %s: %v", sql, code, ms)
		}
		return ms
	}
	mustRun("prepare ins(text) as insert into legacy_notes (body) values ($1)")
	// PostgreSQL gives utility statements no parameters of their own
	// (08P01): the value, sent anyway, is encrypted.
	if _, code := extRun(t, fe, "execute ins($1)", "SECRET-P1"); code != "08P01" {
		t.Errorf("EXECUTE with a bind parameter: %q, want the server's 08P01", code)
	}
	mustRun("execute ins('SECRET-P1')")
	mustRun("execute ins('SECRET-P2')")
	mustRun("explain (analyze, costs off, timing off, summary off) execute ins('SECRET-P3')")
	ms := mustRun("select body from legacy_notes order by id")
	noEnvelopes(t, ms, "select")
	var got []string
	for _, m := range ms {
		if d, ok := m.(*pgproto3.DataRow); ok {
			got = append(got, string(d.Values[0]))
		}
	}
	if want := []string{"SECRET-P1", "SECRET-P2", "SECRET-P3"}; !slices.Equal(got, want) {
		t.Errorf("read back %q, want %q", got, want)
	}

	// A PREPARE through Parse that the server refuses (the name is
	// taken) leaves the name with what it held: the EXECUTE after it is
	// encrypted for the INSERT, not for the SELECT the client tried.
	if _, code := extRun(t, fe, "prepare ins(text) as select $1"); code != "42P05" {
		t.Errorf("PREPARE of a taken name: %q, want 42P05", code)
	}
	mustRun("execute ins('SECRET-P4')")

	// DEALLOCATE through Parse: the name is free, and an EXECUTE of it
	// is refused (the proxy did not see it prepared) before the server.
	mustRun("deallocate ins")
	if _, code := extRun(t, fe, "execute ins('SECRET-P5')"); code == "" {
		t.Error("EXECUTE after DEALLOCATE through Parse ran")
	}
	// Prepared again over a plain value: its argument stays plaintext
	// (the server echoes it back).
	mustRun("prepare ins(text) as select $1")
	if ms := mustRun("execute ins('plain-echo')"); !slices.ContainsFunc(ms, func(m pgproto3.BackendMessage) bool {
		d, ok := m.(*pgproto3.DataRow)
		return ok && string(d.Values[0]) == "plain-echo"
	}) {
		t.Errorf("EXECUTE of the plain statement: %v", ms)
	}

	// DISCARD ALL through Parse forgets every name.
	mustRun("prepare ins2(text) as insert into legacy_notes (body) values ($1)")
	mustRun("discard all")
	if _, code := extRun(t, fe, "execute ins2('SECRET-P6')"); code == "" {
		t.Error("EXECUTE after DISCARD ALL through Parse ran")
	}

	// A portal of a PREPARE bound before a Sync in a transaction and
	// executed after it, with nothing run between: the proxy keeps it.
	fe.Send(&pgproto3.Query{String: "begin"})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Parse{Query: "prepare ins3(text) as insert into legacy_notes (body) values ($1)"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "keep"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Execute{Portal: "keep"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if code := errorCode(failUntilZ(t, fe)); code != "" {
		t.Fatalf("Execute of the kept portal: %s", code)
	}
	mustRun("execute ins3('SECRET-P7')")
	query := func(sql string) {
		fe.Send(&pgproto3.Query{String: sql})
		fe.Flush()
		failUntilZ(t, fe)
	}
	query("commit")
	// Once anything ran in between, the portal may hold something else
	// (SQL CLOSE and DECLARE of its name, ROLLBACK TO SAVEPOINT): its
	// Execute is refused.
	query("begin")
	fe.Send(&pgproto3.Parse{Query: "deallocate ins3"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "keep2"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	failUntilZ(t, fe)
	mustRun("select 1")
	fe.Send(&pgproto3.Execute{Portal: "keep2"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if code := errorCode(failUntilZ(t, fe)); code != "0A000" {
		t.Errorf("Execute of a DEALLOCATE portal after another statement ran: %q, want 0A000", code)
	}
	query("rollback")
	mustRun("execute ins3('SECRET-P8')") // ins3 was not deallocated

	stored, err := pgx.CollectRows(must(f.direct.Query(ctx, "select body from legacy_notes")), pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 6 {
		t.Errorf("stored %d rows, want 6", len(stored))
	}
	for _, v := range stored {
		if !cipher.LooksLikeEnvelope([]byte(v)) {
			t.Errorf("PLAINTEXT stored: %q", v)
		}
	}
	for _, s := range []string{"SECRET-P1", "SECRET-P2", "SECRET-P3", "SECRET-P4", "SECRET-P5", "SECRET-P6", "SECRET-P7", "SECRET-P8"} {
		noLeak(t, f, w, s)
	}
}

// An EXECUTE parsed once has its arguments encrypted for the statement
// its name held then. Its name deallocated and prepared again through
// Parse portals, inside one pipeline, before the parsed EXECUTE runs: the
// Execute is refused, not run with arguments encrypted for the old one.
func TestExtendedParsedExecuteRePreparedInPipeline(t *testing.T) {
	f := newEncFixture(t, false)
	fe, _ := failRaw(t, f)
	fe.Send(&pgproto3.Query{String: "prepare p(text) as select $1"})
	fe.Flush()
	failUntilZ(t, fe)
	fe.Send(&pgproto3.Parse{Name: "run", Query: "execute p('PLAINSECRET-PIPE')"})
	fe.Send(&pgproto3.Parse{Name: "drop", Query: "deallocate p"})
	fe.Send(&pgproto3.Parse{Name: "again", Query: "prepare p(text) as insert into legacy_notes (body) values ($1)"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "d", PreparedStatement: "drop"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "a", PreparedStatement: "again"})
	fe.Send(&pgproto3.Bind{DestinationPortal: "r", PreparedStatement: "run"})
	fe.Send(&pgproto3.Execute{Portal: "d"})
	fe.Send(&pgproto3.Execute{Portal: "a"})
	fe.Send(&pgproto3.Execute{Portal: "r"})
	fe.Send(&pgproto3.Sync{})
	fe.Flush()
	if code := errorCode(failUntilZ(t, fe)); code == "" {
		t.Error("the parsed EXECUTE of a re-prepared name ran")
	}
	// The literal went to the server in the Parse, as it should: p was
	// a plain SELECT then. It must not be stored.
	f.failStored(t, "PLAINSECRET")
	// The connection stays usable.
	if ms, code := extRun(t, fe, "select 1"); code != "" {
		t.Errorf("after the refusal: %s %v", code, ms)
	}
}
