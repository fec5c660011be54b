package e2e

// A sixteenth round of the attacker's suite (see attack_test.go), written
// by a review helper against commit 0c7c6de. Its themes:
//
//   - CREATE OR REPLACE FUNCTION … RETURNS trigger, now allowed unless the
//     catalog shows a trigger on a policy table (or a partition or child
//     of one) running a function of that name: bodies no longer checked
//     for dynamic SQL or nested code, a rename to another name in the
//     same query or pipeline, names over 63 bytes (which the server
//     truncates), a trigger made by another connection inside a
//     REPEATABLE READ transaction, quoted, qualified and pg_temp names;
//   - envelopes in what the server sends besides rows, errors and notices:
//     NotificationResponse payloads, ParameterStatus, an error text that
//     cuts an envelope right after its nonce, COPY TO of computed values;
//   - SQL PREPARE / EXECUTE through Parse with names over 63 bytes;
//   - read buffers lent from a shared pool: sessions interleaving large
//     messages, sessions killed mid-message.
//
// Eleven cases and two subtests failed before the fixes: a replaced
// trigger function's body now gets the checks every body gets (dynamic
// SQL, nested code); CREATE OR REPLACE of a trigger function must be a
// query of its own; NotificationResponse and ParameterStatus are relayed
// with envelopes replaced; an envelope cut right after its nonce is
// found; a COMMIT or ROLLBACK pipelined after a refusal reaches the
// server. One is the documented REPEATABLE READ window, with the guard
// as backstop.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// plain16 is a table outside the policy; touch16 is a trigger function a
// DBA attached to legacy_notes on the server, after review.
const plain16 = "; CREATE TABLE plain16 (v text)"
const touch16Fn = "; CREATE FUNCTION touch16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"
const touch16Trig = "; CREATE TRIGGER touch16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION touch16()"

// evil16 replaces fn with a body that copies plain16's value (the
// marker, stored there legitimately) into legacy_notes.body, unencrypted.
func evil16(fn string) string {
	return "CREATE OR REPLACE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.body := (SELECT v FROM plain16 ORDER BY v DESC LIMIT 1); RETURN NEW; END$$"
}

// long63 is a 63-byte function name (NAMEDATALEN - 1).
var long63 = "t16_before_insert_on_legacy_notes_keeps_updated_at_" + strings.Repeat("z", 12)

// The end of every replacement case: the marker into the plain table,
// then a row into the policy table, whose trigger runs what was replaced.
func fire16() []flight {
	return []flight{
		fl("INSERT INTO plain16 (v) VALUES ('SECRET')"),
		fl("INSERT INTO legacy_notes (body) VALUES ('y')"),
	}
}

func attackCases16() []attackCase {
	return []attackCase{
		// A. CREATE OR REPLACE … RETURNS trigger: the body is not checked.
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy returns replacesTrigger before codeMentionsPolicy, so a new trigger function made with CREATE OR REPLACE may run dynamic SQL (EXECUTE) into a policy table; the catalog check in proxy/planning.go plan only looks at the name.
		{name: "trig16/or_replace_new_function_dynamic_sql", ddl: plain16, plainOK: true, flights: []flight{
			fl("CREATE OR REPLACE FUNCTION relay16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN EXECUTE 'INSERT INTO public.legacy' || '_notes (body) VALUES ($1)' USING NEW.v; RETURN NEW; END$$"),
			fl("CREATE TRIGGER relay16 AFTER INSERT ON plain16 FOR EACH ROW EXECUTE FUNCTION relay16()"),
			fl("INSERT INTO plain16 (v) VALUES ('SECRET')"),
		}},
		// The same without OR REPLACE is refused (dynamic SQL).
		{name: "trig16/create_new_function_dynamic_sql_control", ddl: plain16, plainOK: true, flights: []flight{
			fl("CREATE FUNCTION relay16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN EXECUTE 'INSERT INTO public.legacy' || '_notes (body) VALUES ($1)' USING NEW.v; RETURN NEW; END$$"),
			fl("CREATE TRIGGER relay16 AFTER INSERT ON plain16 FOR EACH ROW EXECUTE FUNCTION relay16()"),
			fl("INSERT INTO plain16 (v) VALUES ('SECRET')"),
		}},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy (early return for replacesTrigger): a CREATE OR REPLACE trigger function on a plain table reads a policy table with EXECUTE into NEW.v, and RETURNING hands the envelope to the client.
		{name: "trig16/or_replace_dynamic_read_returning", ddl: plain16, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("CREATE OR REPLACE FUNCTION peek16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN EXECUTE 'SELECT string_agg(body, '','') FROM public.legacy' || '_notes' INTO NEW.v; RETURN NEW; END$$"),
			fl("CREATE TRIGGER peek16 BEFORE INSERT ON plain16 FOR EACH ROW EXECUTE FUNCTION peek16()"),
			fl("INSERT INTO plain16 (v) VALUES ('a') RETURNING v"),
		}},
		// Leaked before the fix: rewrite/relations.go functionBodyMentionsPolicy skips the "create … trigger" check of codeMentionsPolicy for CREATE OR REPLACE: its body, fired from a plain table, replaces touch16 (run by the trigger on legacy_notes) inside the server, where proxy/planning.go's catalog check never sees it.
		{name: "trig16/or_replace_body_replaces_guarded_function", ddl: plain16 + touch16Fn + touch16Trig, plainOK: true, flights: append([]flight{
			fl("CREATE OR REPLACE FUNCTION inst16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN " + strings.ReplaceAll(evil16("touch16"), "$$", "$b$") + "; RETURN NEW; END$$"),
			fl("CREATE TRIGGER inst16 AFTER INSERT ON plain16 FOR EACH ROW EXECUTE FUNCTION inst16()"),
		}, fire16()...)},

		// B. The catalog check by name.
		// Direct replacement is refused (the commit's own rule).
		{name: "trig16/direct_replace_refused", ddl: plain16 + touch16Fn + touch16Trig, plainOK: true, flights: append([]flight{
			fl(evil16("touch16")),
			fl(evil16("public.touch16")),
			fl(evil16(`"touch16"`)),
			fl(evil16("TOUCH16")),
			fl(evil16("pg_temp.touch16")),
			fl(ext(evil16("touch16")), syncMsg()),
		}, fire16()...)},
		// Refused inside a transaction, then COMMIT: the transaction must end.
		{name: "trig16/refused_replace_in_transaction_then_commit", ddl: plain16 + touch16Fn + touch16Trig, plainOK: true, flights: append([]flight{
			fl("BEGIN"), fl("SELECT 1"), fl(evil16("touch16")), fl("COMMIT"),
		}, fire16()...)},
		// The same with another refusal, for comparison.
		{name: "trig16/refused_trigger_in_transaction_then_commit_control", ddl: plain16 + touch16Fn, plainOK: true, flights: append([]flight{
			fl("BEGIN"), fl("SELECT 1"), fl("CREATE TRIGGER x16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION touch16()"), fl("COMMIT"),
		}, fire16()...)},
		// Leaks (usability, not specific to today's commits): proxy/planning.go returns errTxFailed for a COMMIT pipelined after a refusal inside a transaction, instead of relaying it; the transaction stays open and aborted.
		{name: "trig16/refused_trigger_pipelined_with_commit_control", ddl: plain16 + touch16Fn, plainOK: true, flights: append([]flight{
			fl("BEGIN", "SELECT 1", "CREATE TRIGGER x16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION touch16()", "COMMIT"),
		}, fire16()...)},
		// Leaks (usability): proxy/planning.go (errTxFailed): the COMMIT pipelined after the refused CREATE OR REPLACE inside a transaction is refused with 25P02 ("could not read the schema") instead of relayed, so the transaction never ends and the session stays unusable (same with any refusal, see the control above).
		{name: "trig16/refused_replace_pipelined_with_commit", ddl: plain16 + touch16Fn + touch16Trig, plainOK: true, flights: append([]flight{
			fl("BEGIN", "SELECT 1", evil16("touch16"), "COMMIT"),
		}, fire16()...)},
		// Leaked before the fix: proxy/planning.go plan checks st.TriggerFunction against the catalog read before the query runs; ALTER FUNCTION … RENAME in the same query gives the guarded function the new name first.
		{name: "trig16/rename_then_replace_same_query", ddl: plain16 + touch16Fn + touch16Trig, plainOK: true, flights: append([]flight{
			fl("ALTER FUNCTION touch16() RENAME TO other16; " + evil16("other16")),
		}, fire16()...)},
		// (Passes: refused as a statement after a schema change in the pipeline.)
		{name: "trig16/rename_then_replace_pipeline", ddl: plain16 + touch16Fn + touch16Trig, plainOK: true, flights: append([]flight{
			fl(ext("ALTER FUNCTION touch16() RENAME TO other16"), ext(evil16("other16")), syncMsg()),
		}, fire16()...)},
		{name: "trig16/rename_then_replace_in_transaction", ddl: plain16 + touch16Fn + touch16Trig, plainOK: true, flights: append([]flight{
			fl("BEGIN"),
			fl("ALTER FUNCTION touch16() RENAME TO other16"),
			fl(evil16("other16")),
			fl("COMMIT"),
		}, fire16()...)},
		{name: "trig16/set_schema_then_replace", ddl: plain16 + touch16Fn + touch16Trig + "; CREATE SCHEMA s16", plainOK: true, flights: append([]flight{
			fl("ALTER FUNCTION touch16() SET SCHEMA s16; " + evil16("s16.touch16")),
		}, fire16()...)},
		{name: "trig16/name_over_63_bytes", ddl: plain16 + "; CREATE FUNCTION " + long63 + "() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$; CREATE TRIGGER t16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION " + long63 + "()", plainOK: true, flights: append([]flight{
			fl(evil16(long63 + "_and_more")),
		}, fire16()...)},
		// (Passes: pg_query truncates the name to 63 bytes as the server does.)
		// A trigger on an inheritance child of a policy table, made on the server.
		{name: "trig16/trigger_on_child_refused", ddl: plain16 + touch16Fn + "; CREATE TABLE notes_child16 () INHERITS (legacy_notes); CREATE TRIGGER touch16 BEFORE INSERT ON notes_child16 FOR EACH ROW EXECUTE FUNCTION touch16()", plainOK: true, flights: []flight{
			fl(evil16("touch16")),
			fl("INSERT INTO plain16 (v) VALUES ('SECRET')"),
		}},
		// The documented REPEATABLE READ window of docs/sql.md: the proxy
		// reads the catalog again inside the transaction, whose snapshot
		// misses a trigger another connection attached to legacy_notes
		// after it began. The guard stops what the function writes.
		{name: "trig16/repeatable_read_trigger_made_elsewhere", ddl: plain16 + touch16Fn + "; ALTER TABLE legacy_notes ADD CONSTRAINT pgcrypt_guard_body CHECK (body IS NULL OR body ~ '^v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$')", plainOK: true, storedOnly: true, flights: append([]flight{
			fl("BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT count(*) FROM legacy_notes"),
			fl(direct("CREATE TRIGGER touch16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION touch16()")),
			fl(evil16("touch16")),
			fl("COMMIT"),
		}, fire16()...)},
		// A trigger the DBA makes on the server after the proxy last read
		// its catalog, while a pipeline waits.
		{name: "trig16/trigger_made_between_flights", ddl: plain16 + touch16Fn, plainOK: true, flights: append([]flight{
			fl("SELECT body FROM legacy_notes"),
			fl(direct("CREATE TRIGGER touch16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION touch16()")),
			fl(ext(evil16("touch16")), syncMsg()),
		}, fire16()...)},

		// C. Envelopes in what the server sends besides rows.
		// Leaked before the fix: the server cuts the COPY line it quotes at 100 bytes right after an envelope's 16-character nonce; cipher.FindEnvelope (used by proxy/backend.go redactEnvelopes) requires the ':' after it, so the cut envelope reaches the client in CONTEXT.
		{name: "out16/copy_context_cut_after_nonce", ddl: "; ALTER TABLE legacy_notes ADD c16 int NOT NULL", outputs: true, flights: []flight{
			fl("COPY legacy_notes (id, body) FROM STDIN", &pgproto3.CopyData{Data: []byte(strings.Repeat("0", 79) + "1\tSECRET\n")}, &pgproto3.CopyDone{}),
		}},
		{name: "out16/copy_to_computed", outputs: true, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("COPY (SELECT body || '' FROM legacy_notes) TO STDOUT"),
			fl("COPY (SELECT l FROM legacy_notes l) TO STDOUT"),
			fl("COPY (SELECT format('%s', body) FROM legacy_notes) TO STDOUT"),
			fl("COPY (SELECT concat(body) FROM legacy_notes) TO STDOUT"),
			fl("COPY (SELECT body FROM legacy_notes UNION ALL SELECT 'x') TO STDOUT"),
		}},
		{name: "out16/set_config_application_name", outputs: true, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl("SELECT set_config('application_name', body, false) FROM legacy_notes"),
			fl("SELECT set_config('my.v16', (SELECT body FROM legacy_notes LIMIT 1), false)"),
			fl("SHOW application_name"),
			fl("SELECT current_setting('my.v16', true)"),
		}},
		{name: "out16/raise_in_server_function", ddl: "; CREATE FUNCTION shout16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'row %', NEW.body; RAISE WARNING USING MESSAGE = 'w', DETAIL = NEW.body, HINT = reverse(reverse(NEW.body)); RETURN NEW; END$$; CREATE TRIGGER shout16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION shout16()", outputs: true, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
			fl(ext("INSERT INTO legacy_notes (body) VALUES ($1)", "SECRET"), syncMsg()),
		}},
		{name: "out16/error_context_plpgsql", ddl: "; CREATE FUNCTION boom16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM NEW.body::int; RETURN NEW; END$$; CREATE TRIGGER boom16 BEFORE INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION boom16()", outputs: true, flights: []flight{
			fl("INSERT INTO legacy_notes (body) VALUES ('SECRET')"),
		}},

		// D. SQL PREPARE / EXECUTE through Parse, names over 63 bytes.
		{name: "prep16/parse_prepare_long_names", plainOK: true, ddl: "; CREATE TABLE plain_x16 (v text)", flights: []flight{
			fl(ext("PREPARE "+strings.Repeat("p", 63)+"_plain(text) AS INSERT INTO plain_x16 VALUES ($1)"), syncMsg()),
			fl(ext("PREPARE "+strings.Repeat("p", 63)+"_enc(text) AS INSERT INTO legacy_notes (body) VALUES ($1)"), syncMsg()),
			fl(ext("EXECUTE "+strings.Repeat("p", 63)+"_plain('SECRET')"), syncMsg()),
			fl("EXECUTE " + strings.Repeat("p", 63) + "_zzz('SECRET')"),
		}},
		{name: "prep16/parse_deallocate_reprepare_long", plainOK: true, ddl: "; CREATE TABLE plain_x16 (v text)", flights: []flight{
			fl("PREPARE " + strings.Repeat("q", 63) + "a(text) AS INSERT INTO plain_x16 VALUES ($1)"),
			fl(ext("DEALLOCATE "+strings.Repeat("q", 63)+"b"), ext("PREPARE "+strings.Repeat("q", 63)+"c(text) AS INSERT INTO legacy_notes (body) VALUES ($1)"),
				ext("EXECUTE "+strings.Repeat("q", 63)+"d('SECRET')"), syncMsg()),
			fl("EXECUTE " + strings.Repeat("q", 63) + "('SECRET')"),
		}},
	}
}

func TestAttackSuite16(t *testing.T) { runAttacks(t, 16000, attackCases16()) }

// TestAttackAsync16 looks for envelopes in NotificationResponse and
// ParameterStatus messages, which the harness does not check: a trigger
// on a policy table that the DBA made on the server to feed a change
// stream (pg_notify(…, NEW.body)) or to tag the session.
func TestAttackAsync16(t *testing.T) {
	for _, c := range []struct {
		name, ddl string
		queries   []string
	}{
		// Leaked before the fix: proxy/backend_answers.go backendAside forwards NotificationResponse ('A') as it is; only 'E' and 'N' go through redactEnvelopes.
		{"notify_from_server_trigger",
			"; CREATE FUNCTION feed16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_notify('c16', NEW.body); PERFORM pg_notify('c16', row_to_json(NEW)::text); RETURN NEW; END$$; CREATE TRIGGER feed16 AFTER INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION feed16()",
			[]string{"LISTEN c16", "INSERT INTO legacy_notes (body) VALUES ('SECRET_16_async')"}},
		{"notify_through_proxy",
			"",
			[]string{"LISTEN c16", "INSERT INTO legacy_notes (body) VALUES ('SECRET_16_async')", "SELECT pg_notify('c16', body) FROM legacy_notes", "SELECT pg_notify('c16', (SELECT body FROM legacy_notes LIMIT 1))", "NOTIFY c16"}},
		// Leaked before the fix: proxy/backend_answers.go backendAside forwards ParameterStatus ('S') unredacted (noteParameter only reads it).
		{"parameter_status_from_server_trigger",
			"; CREATE FUNCTION tag16() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM set_config('application_name', NEW.body, false); RETURN NEW; END$$; CREATE TRIGGER tag16 AFTER INSERT ON legacy_notes FOR EACH ROW EXECUTE FUNCTION tag16()",
			[]string{"INSERT INTO legacy_notes (body) VALUES ('SECRET_16_async')"}},
		{"parameter_status_through_proxy",
			"",
			[]string{"INSERT INTO legacy_notes (body) VALUES ('SECRET_16_async')", "SELECT 1 FROM legacy_notes WHERE set_config('application_name', body, false) IS NOT NULL"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newEncFixtureWith(t, seedColumns(), false, c.ddl, "")
			fe, _ := failRaw(t, f)
			for _, q := range c.queries {
				fe.Send(&pgproto3.Query{String: q})
				if err := fe.Flush(); err != nil {
					t.Fatal(err)
				}
				for done := false; !done; {
					m, err := fe.Receive()
					if err != nil {
						t.Fatalf("%s: %v", q, err)
					}
					var text string
					switch m := m.(type) {
					case *pgproto3.ReadyForQuery:
						done = true
					case *pgproto3.NotificationResponse:
						text = "notification " + m.Channel + ": " + m.Payload
					case *pgproto3.ParameterStatus:
						text = "parameter " + m.Name + ": " + m.Value
					case *pgproto3.RowDescription:
						for _, fd := range m.Fields {
							text += string(fd.Name) + " "
						}
					case *pgproto3.CommandComplete:
						text = string(m.CommandTag)
					case *pgproto3.DataRow:
						for _, v := range m.Values {
							text += string(v) + " "
						}
					case *pgproto3.ErrorResponse:
						t.Logf("%s: error %s: %s", q, m.Code, m.Message)
						text = m.Message + m.Detail + m.Where
					case *pgproto3.NoticeResponse:
						text = m.Message + m.Detail + m.Where
					}
					if envelopeIn.MatchString(text) || cipher.LooksLikeEnvelope([]byte(text)) {
						t.Errorf("%s: ENVELOPE reached the client: %.120s", q, text)
					}
				}
			}
		})
	}
}

// TestAttackBufferPool16 runs sessions side by side whose messages and
// results straddle the 32 KB read buffer, with others killed mid-message,
// and checks that each sees only its own bytes and none hangs.
func TestAttackBufferPool16(t *testing.T) {
	f := newEncFixtureWith(t, seedColumns(), false, "; CREATE TABLE plain_b16 (s int, v text)", "")
	ctx := testCtx(t)
	const sessions, rounds = 4, 25
	conns := make([]*pgx.Conn, sessions)
	for i := range conns {
		conns[i] = f.connect(t, pgx.QueryExecModeExec)
	}
	errs := make(chan error, sessions*rounds+16)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Killers: a 40 KB Query or a 20 KB Bind cut short, then closed.
	var kwg sync.WaitGroup
	for k := 0; k < 2; k++ {
		kwg.Add(1)
		go func(k int) {
			defer kwg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", f.p.Addr)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(3 * time.Second))
				fe := pgproto3.NewFrontend(c, c)
				fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
					Parameters: map[string]string{"user": pg.Super.Name, "database": f.db}})
				fe.Flush()
				for {
					m, err := fe.Receive()
					if err != nil {
						break
					}
					if _, ok := m.(*pgproto3.ReadyForQuery); ok {
						break
					}
				}
				size := 40000 + n%7*3000
				if k == 1 {
					size = 32760 + n%9
				}
				body := []byte("INSERT INTO legacy_notes (body) VALUES ('KILLED_16_" + strings.Repeat("k", size) + "')\x00")
				msg := []byte{'Q', 0, 0, 0, 0}
				binary.BigEndian.PutUint32(msg[1:], uint32(len(body)+4))
				msg = append(msg, body...)
				c.Write(msg[:len(msg)/2+n%1000])
				time.Sleep(time.Duration(n%5) * time.Millisecond)
				c.Close()
			}
		}(k)
	}
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			conn := conns[i]
			for r := 0; r < rounds; r++ {
				size := []int{32700, 32757, 32768, 32790, 65600, 100}[r%6] + i
				val := fmt.Sprintf("S%d_R%d_", i, r) + strings.Repeat(string(rune('a'+i)), size)
				var got string
				if err := conn.QueryRow(ctx, "SELECT $1::text", val).Scan(&got); err != nil {
					errs <- fmt.Errorf("session %d round %d: %v", i, r, err)
					return
				}
				if got != val {
					errs <- fmt.Errorf("session %d round %d: got %d bytes, %.40q…, want its own %d", i, r, len(got), got, len(val))
				}
				var id int
				if err := conn.QueryRow(ctx, "INSERT INTO legacy_notes (body) VALUES ($1) RETURNING id", val).Scan(&id); err != nil {
					errs <- fmt.Errorf("session %d round %d insert: %v", i, r, err)
					return
				}
				if err := conn.QueryRow(ctx, "SELECT body FROM legacy_notes WHERE id = $1", id).Scan(&got); err != nil {
					errs <- fmt.Errorf("session %d round %d select: %v", i, r, err)
					return
				}
				if got != val {
					errs <- fmt.Errorf("session %d round %d: decrypted %d bytes %.40q…, want its own", i, r, len(got), got)
				}
				if _, err := conn.CopyFrom(ctx, pgx.Identifier{"plain_b16"}, []string{"s", "v"}, pgx.CopyFromRows([][]any{{i, val}, {i, val[:100]}})); err != nil {
					errs <- fmt.Errorf("session %d round %d copy: %v", i, r, err)
					return
				}
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("sessions hang")
	}
	close(stop)
	kwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var bad int
	if err := f.direct.QueryRow(ctx, "SELECT count(*) FROM legacy_notes WHERE body LIKE 'KILLED_16%' OR body LIKE 'S%\\_R%'").Scan(&bad); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("LEAK: %d plaintext rows in legacy_notes", bad)
	}
	_ = bytes.Contains
}
