package e2e

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lib/pq"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// This file drives real, unchanged clients (lib/pq, psql, node-postgres,
// pgx batches) through the encrypting proxy of newEncFixture. After each
// write it reads public.clients straight from PostgreSQL: every policy
// value must be an envelope that decrypts, with the column's associated
// data, to what the client wrote; and reading back through the proxy must
// give the plaintext.

// encClientCols are the policy columns of public.clients, in table order.
var encClientCols = []string{"first_name", "last_name", "email", "phone", "address", "medical_history",
	"emergency_contact_name", "emergency_contact_phone"}

// encRow is one clients row's policy columns by name; nil is NULL.
type encRow map[string]*string

func (r encRow) String() string {
	var b strings.Builder
	for _, c := range encClientCols {
		if v, ok := r[c]; ok {
			if v == nil {
				fmt.Fprintf(&b, "%s=NULL ", c)
			} else {
				fmt.Fprintf(&b, "%s=%q ", c, *v)
			}
		}
	}
	return b.String()
}

// encColumnCipher returns the cipher the proxy uses for public.clients.col,
// built independently from the fixture's keys.
func (f *encFixture) encColumnCipher(t *testing.T, col string) *cipher.Column {
	t.Helper()
	kr, err := cipher.NewKeyring("v1", f.keys)
	if err != nil {
		t.Fatal(err)
	}
	mode := cipher.Randomized
	if col == "email" {
		mode = cipher.Deterministic
	}
	c, err := kr.Column("public.clients."+col, mode, []byte("public.clients."+col))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// expectStoredRow reads the row with the given id straight from
// PostgreSQL and checks, for each column of want, that NULL stayed NULL
// and that any other value (the empty string included) is stored as an
// envelope that decrypts to the wanted plaintext.
func (f *encFixture) expectStoredRow(t *testing.T, id string, want encRow) {
	t.Helper()
	for col, w := range want {
		var raw *string
		if err := f.direct.QueryRow(testCtx(t), "select "+col+" from clients where id = $1", id).Scan(&raw); err != nil {
			t.Fatalf("reading %s of row %s directly: %v", col, id, err)
		}
		switch {
		case w == nil && raw != nil:
			t.Errorf("row %s: %s is stored as %q, want NULL", id, col, *raw)
		case w == nil:
		case raw == nil:
			t.Errorf("row %s: %s is stored as NULL, want an envelope of %q", id, col, *w)
		case !cipher.LooksLikeEnvelope([]byte(*raw)):
			t.Errorf("row %s: %s is stored as %q: not an envelope", id, col, *raw)
		default:
			pt, err := f.encColumnCipher(t, col).Decrypt(nil, []byte(*raw))
			if err != nil {
				t.Errorf("row %s: stored %s does not decrypt with the column's key and associated data: %v", id, col, err)
			} else if string(pt) != *w {
				t.Errorf("row %s: stored %s decrypts to %q, want %q", id, col, pt, *w)
			}
		}
	}
}

// idByEmail looks up a client's id through the proxy (the stored email is
// ciphertext).
func (f *encFixture) idByEmail(t *testing.T, email string) string {
	t.Helper()
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	defer conn.Close(testCtx(t))
	var id string
	if err := conn.QueryRow(testCtx(t), "select id::text from clients where email = $1", email).Scan(&id); err != nil {
		t.Fatalf("id of %s: %v", email, err)
	}
	return id
}

// storedClients counts the rows of public.clients, read directly.
func (f *encFixture) storedClients(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.direct.QueryRow(testCtx(t), "select count(*) from clients").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// plaintextsOf lists the non-NULL values of rows, for assertStoredEncrypted.
func plaintextsOf(rows ...encRow) []string {
	var out []string
	for _, r := range rows {
		for _, v := range r {
			if v != nil && *v != "" {
				out = append(out, *v)
			}
		}
	}
	return out
}

// encHistory is a ~1 KB medical history.
var encHistory = strings.Repeat("Type 2 diabetes; hypertension, well controlled. ", 21)

func nullStr(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

func ptrOf(ns sql.NullString) *string {
	if !ns.Valid {
		return nil
	}
	return &ns.String
}

func eqPtr(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

const encInsertAll = `insert into clients (workspace_id, first_name, last_name, email, phone, address,
	medical_history, emergency_contact_name, emergency_contact_phone)
	values ((select id from workspaces limit 1), $1, $2, $3, $4, $5, $6, $7, $8) returning id::text`

const encSelectAll = `select first_name, last_name, email, phone, address, medical_history,
	emergency_contact_name, emergency_contact_phone from clients`

// insertArgs returns r's values in encInsertAll's order.
func (r encRow) insertArgs() []any {
	args := make([]any, len(encClientCols))
	for i, c := range encClientCols {
		if v := r[c]; v != nil {
			args[i] = *v
		}
	}
	return args
}

// scanSQLRow reads a row of encSelectAll from database/sql.
func scanSQLRow(row interface{ Scan(...any) error }) (encRow, error) {
	vals := make([]sql.NullString, len(encClientCols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := row.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := encRow{}
	for i, c := range encClientCols {
		out[c] = ptrOf(vals[i])
	}
	return out, nil
}

func sameRow(got, want encRow) bool {
	for _, c := range encClientCols {
		if !eqPtr(got[c], want[c]) {
			return false
		}
	}
	return true
}

// TestLibPQEncrypted: lib/pq through database/sql, with text parameters
// (Parse/Describe, then Bind) and with binary_parameters=yes (one round
// trip, []byte sent in binary): INSERT of every policy column (NULL, empty,
// non-ASCII, ~1 KB), SELECT by id, by email = $1 and email IN ($1, $2),
// UPDATE ... SET, a prepared INSERT and SELECT reused 50 times, a rolled
// back and a committed transaction, and a rejected ORDER BY that leaves
// the connection working.
func TestLibPQEncrypted(t *testing.T) {
	f := newEncFixture(t, false)
	for _, mode := range []struct{ name, param string }{
		{"text_parameters", ""},
		{"binary_parameters", "binary_parameters=yes"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := testCtx(t)
			var params []string
			if mode.param != "" {
				params = append(params, mode.param)
			}
			db, err := sql.Open("postgres", f.p.ConnString(pg.Super, f.db, params...))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(2)
			tag := "pq-" + mode.name

			rows := []encRow{
				{
					"first_name": sp("José Ñúñez"), "last_name": sp(`O'Brien \ 日本`), "email": sp(tag + "-1@example.com"),
					"phone": nil, "address": sp(""), "medical_history": sp(encHistory),
					"emergency_contact_name": sp("Zoë Ünïcødé 🐘"), "emergency_contact_phone": sp("+1 (555) 010-0001"),
				},
				{
					"first_name": sp("Second Person"), "last_name": sp("Person-Two"), "email": sp(tag + "-2@example.com"),
					"phone": sp("+44 20 7946 0000"), "address": sp("221B Baker Street, London"), "medical_history": nil,
					"emergency_contact_name": nil, "emergency_contact_phone": nil,
				},
			}
			ids := make([]string, len(rows))
			for i, r := range rows {
				if err := db.QueryRowContext(ctx, encInsertAll, r.insertArgs()...).Scan(&ids[i]); err != nil {
					t.Fatalf("insert %d: %v", i, err)
				}
				f.expectStoredRow(t, ids[i], r)
			}
			f.assertStoredEncrypted(t, plaintextsOf(rows...)...)

			// By id, by email = $1 and by email IN ($1, $2).
			for i, r := range rows {
				got, err := scanSQLRow(db.QueryRowContext(ctx, encSelectAll+" where id = $1", ids[i]))
				if err != nil {
					t.Fatalf("select by id: %v", err)
				}
				if !sameRow(got, r) {
					t.Errorf("row %d read back by id as %v, want %v", i, got, r)
				}
				var id string
				got, err = scanSQLRow(db.QueryRowContext(ctx, encSelectAll+" where email = $1", *r["email"]))
				if err != nil {
					t.Fatalf("select by email = $1: %v", err)
				}
				if !sameRow(got, r) {
					t.Errorf("row %d read back by email as %v, want %v", i, got, r)
				}
				if err := db.QueryRowContext(ctx, "select id::text from clients where email = $1", *r["email"]).Scan(&id); err != nil || id != ids[i] {
					t.Errorf("id by email: %q, %v; want %q", id, err, ids[i])
				}
			}
			res, err := db.QueryContext(ctx, "select id::text, first_name, email from clients where email in ($1, $2) order by id",
				*rows[0]["email"], *rows[1]["email"])
			if err != nil {
				t.Fatal(err)
			}
			found := map[string][2]string{}
			for res.Next() {
				var id, first, email string
				if err := res.Scan(&id, &first, &email); err != nil {
					t.Fatal(err)
				}
				found[id] = [2]string{first, email}
			}
			if err := res.Err(); err != nil {
				t.Fatal(err)
			}
			res.Close()
			if len(found) != 2 || found[ids[0]] != [2]string{*rows[0]["first_name"], *rows[0]["email"]} ||
				found[ids[1]] != [2]string{*rows[1]["first_name"], *rows[1]["email"]} {
				t.Errorf("email IN ($1, $2) found %v", found)
			}

			// UPDATE ... SET last_name = $1, and an UPDATE of the deterministic
			// column found by itself.
			if _, err := db.ExecContext(ctx, "update clients set last_name = $1 where id = $2", "Smith-Jones ü", ids[0]); err != nil {
				t.Fatal(err)
			}
			rows[0]["last_name"] = sp("Smith-Jones ü")
			newEmail := tag + "-renamed@example.com"
			r, err := db.ExecContext(ctx, "update clients set email = $1 where email = $2", newEmail, *rows[1]["email"])
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := r.RowsAffected(); n != 1 {
				t.Errorf("UPDATE ... WHERE email = $2 updated %d rows", n)
			}
			rows[1]["email"] = sp(newEmail)
			for i, r := range rows {
				f.expectStoredRow(t, ids[i], r)
				got, err := scanSQLRow(db.QueryRowContext(ctx, encSelectAll+" where id = $1", ids[i]))
				if err != nil || !sameRow(got, r) {
					t.Errorf("after UPDATE row %d reads %v, %v; want %v", i, got, err, r)
				}
			}
			f.assertStoredEncrypted(t, append(plaintextsOf(rows...), "Smith-Jones")...)

			// A prepared INSERT and SELECT, each reused 50 times.
			const reuse = 50
			ins, err := db.PrepareContext(ctx, `insert into clients (workspace_id, first_name, last_name, email, medical_history)
				values ((select id from workspaces limit 1), $1, $2, $3, $4)`)
			if err != nil {
				t.Fatal(err)
			}
			defer ins.Close()
			prepRow := func(i int) encRow {
				r := encRow{
					"first_name": sp(fmt.Sprintf("Prepared first %d", i)), "last_name": sp(fmt.Sprintf("Prepared last ü %d", i)),
					"email": sp(fmt.Sprintf("%s-prep-%d@example.com", tag, i)), "medical_history": sp(fmt.Sprintf("History of patient %d", i)),
				}
				if i%10 == 0 {
					r["medical_history"] = nil
				}
				return r
			}
			for i := range reuse {
				r := prepRow(i)
				if _, err := ins.ExecContext(ctx, *r["first_name"], *r["last_name"], *r["email"], nullStr(r["medical_history"])); err != nil {
					t.Fatalf("prepared insert %d: %v", i, err)
				}
			}
			sel, err := db.PrepareContext(ctx, "select id::text, first_name, last_name, medical_history from clients where email = $1")
			if err != nil {
				t.Fatal(err)
			}
			defer sel.Close()
			for i := range reuse {
				want := prepRow(i)
				var id, first, last string
				var hist sql.NullString
				if err := sel.QueryRowContext(ctx, *want["email"]).Scan(&id, &first, &last, &hist); err != nil {
					t.Fatalf("prepared select %d: %v", i, err)
				}
				if first != *want["first_name"] || last != *want["last_name"] || !eqPtr(ptrOf(hist), want["medical_history"]) {
					t.Errorf("prepared select %d: %q %q %v", i, first, last, hist)
				}
				if i%10 == 0 || i == reuse-1 {
					f.expectStoredRow(t, id, want)
				}
			}
			f.assertStoredEncrypted(t, "Prepared first", "Prepared last", "-prep-", "History of patient")

			// A rolled back transaction leaves nothing; a committed one, with
			// the prepared statement, an UPDATE and a read inside it, does.
			before := f.storedClients(t)
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, "Rolled Back", "Never Stored", tag+"-rollback@example.com", nil); err != nil {
				t.Fatal(err)
			}
			var first string
			if err := tx.QueryRowContext(ctx, "select first_name from clients where email = $1", tag+"-rollback@example.com").Scan(&first); err != nil || first != "Rolled Back" {
				t.Errorf("inside the transaction: %q, %v", first, err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			err = db.QueryRowContext(ctx, "select first_name from clients where email = $1", tag+"-rollback@example.com").Scan(&first)
			if !errors.Is(err, sql.ErrNoRows) {
				t.Errorf("after ROLLBACK: %q, %v; want no row", first, err)
			}
			tx, err = db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.StmtContext(ctx, ins).ExecContext(ctx, "Committed Person", "Tx Last", tag+"-commit@example.com", "Committed history"); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "update clients set phone = $1, address = $2 where email = $3", "+1 555 0199", "1 Commit Road", tag+"-commit@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			committed := encRow{"first_name": sp("Committed Person"), "last_name": sp("Tx Last"), "email": sp(tag + "-commit@example.com"),
				"phone": sp("+1 555 0199"), "address": sp("1 Commit Road"), "medical_history": sp("Committed history")}
			var cid string
			if err := db.QueryRowContext(ctx, "select id::text from clients where email = $1", tag+"-commit@example.com").Scan(&cid); err != nil {
				t.Fatal(err)
			}
			f.expectStoredRow(t, cid, committed)
			if got := f.storedClients(t); got != before+1 {
				t.Errorf("after rollback and commit: %d rows, want %d", got, before+1)
			}
			f.assertStoredEncrypted(t, append(plaintextsOf(committed), "Rolled Back", "Never Stored")...)

			// binary_parameters=yes sends a []byte in binary format: for text
			// that is the same bytes, and they must be encrypted too.
			if mode.param != "" {
				var id string
				err := db.QueryRowContext(ctx, `insert into clients (workspace_id, first_name, last_name, phone)
					values ((select id from workspaces limit 1), $1, $2, $3) returning id::text`,
					[]byte("Binary Bytes"), "Text Param", []byte("+1 555 0142")).Scan(&id)
				if err != nil {
					t.Fatal(err)
				}
				f.expectStoredRow(t, id, encRow{"first_name": sp("Binary Bytes"), "last_name": sp("Text Param"), "phone": sp("+1 555 0142")})
				var gotFirst, gotPhone string
				if err := db.QueryRowContext(ctx, "select first_name, phone from clients where id = $1", id).Scan(&gotFirst, &gotPhone); err != nil ||
					gotFirst != "Binary Bytes" || gotPhone != "+1 555 0142" {
					t.Errorf("binary parameters read back as %q %q, %v", gotFirst, gotPhone, err)
				}
			}

			// A rejected statement, in the simple and the extended protocol:
			// 0A000 naming the column, and the same connection keeps working.
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var pid1, pid2 int
			if err := c.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&pid1); err != nil {
				t.Fatal(err)
			}
			err = sqlQueryErr(c.QueryContext(ctx, "select id from clients order by last_name"))
			expectPQRejection(t, err, "public.clients.last_name")
			err = sqlQueryErr(c.QueryContext(ctx, "select id from clients where email = $1 order by last_name", *rows[0]["email"]))
			expectPQRejection(t, err, "public.clients.last_name")
			if _, err := c.ExecContext(ctx, "update clients set phone = $1 where first_name = $2", "x", "José Ñúñez"); err == nil {
				t.Errorf("equality on the randomized first_name was not rejected")
			} else {
				expectPQRejection(t, err, "public.clients.first_name")
			}
			if err := c.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&pid2); err != nil {
				t.Fatal(err)
			}
			if pid1 != pid2 {
				t.Errorf("backend changed after the rejections: %d, then %d", pid1, pid2)
			}
			got, err := scanSQLRow(c.QueryRowContext(ctx, encSelectAll+" where email = $1", *rows[0]["email"]))
			if err != nil || !sameRow(got, rows[0]) {
				t.Errorf("after the rejections: %v, %v", got, err)
			}
			if err := c.QueryRowContext(ctx, "select first_name from clients where id = '"+ids[1]+"'").Scan(&first); err != nil || first != *rows[1]["first_name"] {
				t.Errorf("simple query after the rejections: %q, %v", first, err)
			}
			f.expectStoredRow(t, ids[0], rows[0])
		})
	}
	expectNoProxyFaults(t, f.p)
}

// sqlQueryErr drains and closes the rows of a query and returns its error.
func sqlQueryErr(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

// expectPQRejection checks that err is the proxy's 0A000 naming column.
func expectPQRejection(t *testing.T, err error, column string) {
	t.Helper()
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "0A000" || !strings.Contains(pqErr.Message, column) {
		t.Errorf("want a 0A000 error naming %s, got %v", column, err)
	}
}

// psqlRun runs psql through f's proxy in dir with the given arguments.
func (f *encFixture) psqlRun(t *testing.T, ps psqlTool, dir string, args ...string) toolResult {
	t.Helper()
	return runTool(t, toolEnv(t), dir, "", ps.bin, ps.args(f.p.ConnString(pg.Super, f.db), args)...)
}

// TestPsqlEncryptedLiterals: psql -c sends simple Query messages with
// string literals in every quoting form; the table holds envelopes and
// psql reads plaintext back; a rejected statement is psql's ERROR and
// exit 1.
func TestPsqlEncryptedLiterals(t *testing.T) {
	f := newEncFixture(t, false)
	ps := newPsql(t)
	dir := t.TempDir()
	r := f.psqlRun(t, ps, dir, "-c", `insert into clients (workspace_id, first_name, last_name, email, phone, address, medical_history, emergency_contact_name)
		select id, 'Psql O''Brien', E'line\nbreak \\ tab\there', 'psql-c@example.com', NULL, '',
		$$dollar 'quoted' "text"$$, $tag$tagged $$ dollar$tag$ from workspaces;
		insert into clients (workspace_id, first_name, last_name, email, medical_history)
		values ((select id from workspaces), U&'caf\00E9 unicode', 'Zoë 日本 🐘', 'psql-c2@example.com', 'plain history text')`)
	if r.exit != 0 {
		t.Fatalf("insert: %v", r)
	}
	want := []encRow{{
		"first_name": sp("Psql O'Brien"), "last_name": sp("line\nbreak \\ tab\there"), "email": sp("psql-c@example.com"),
		"phone": nil, "address": sp(""), "medical_history": sp(`dollar 'quoted' "text"`), "emergency_contact_name": sp("tagged $$ dollar"),
	}, {
		"first_name": sp("café unicode"), "last_name": sp("Zoë 日本 🐘"), "email": sp("psql-c2@example.com"),
		"phone": nil, "medical_history": sp("plain history text"),
	}}
	for _, w := range want {
		f.expectStoredRow(t, f.idByEmail(t, *w["email"]), w)
	}
	f.assertStoredEncrypted(t, append(plaintextsOf(want...), "O'Brien", "O''Brien", "line\nbreak", "dollar", "tagged", "café")...)

	// Read back through the proxy: by email (a literal the proxy encrypts
	// deterministically), with NULL shown as psql's \pset null.
	r = f.psqlRun(t, ps, dir, "-P", "null=<null>", "-c",
		"select first_name, last_name, phone, address, medical_history, emergency_contact_name from clients where email = 'psql-c@example.com'",
		"-c", "select first_name, last_name from clients where email in ('psql-c2@example.com', 'nobody@example.com')",
		"-c", "select count(*) from clients where email = 'psql-c@example.com' or email is null")
	wantOut := "Psql O'Brien|line\nbreak \\ tab\there|<null>||dollar 'quoted' \"text\"|tagged $$ dollar\n" +
		"café unicode|Zoë 日本 🐘\n" +
		"1\n"
	if r.exit != 0 || r.stdout != wantOut {
		t.Errorf("psql read back\n%q\nwant\n%q\n%v", r.stdout, wantOut, r)
	}

	// A rejected statement: psql prints the proxy's error and exits 1.
	r = f.psqlRun(t, ps, dir, "-c", "select id from clients where first_name like 'Psql%'")
	if r.exit != 1 || !strings.Contains(r.stderr, "ERROR:") || !strings.Contains(r.stderr, "public.clients.first_name") ||
		!strings.Contains(r.stderr, "LIKE") || strings.Contains(r.stderr, "Psql O") {
		t.Errorf("LIKE on first_name: want exit 1 and the proxy's error naming the column: %v", r)
	}
	expectNoProxyFaults(t, f.p)
}

// TestPsqlEncryptedScript: a -f script with \set variables interpolated as
// :'var' literals (with a quote and a backslash, so psql sends E'...'),
// \gset of a decrypted value reused in a WHERE, a rejected LIKE that the
// script survives with ON_ERROR_STOP off, \copy of a policy table in both
// directions (encrypted on the way in, decrypted on the way out), and
// \copy of workspaces working, all on one connection.
func TestPsqlEncryptedScript(t *testing.T) {
	f := newEncFixture(t, false)
	ps := newPsql(t)
	dir := t.TempDir()
	ctx := testCtx(t)
	var ws string
	if err := f.direct.QueryRow(ctx, "select id::text from workspaces").Scan(&ws); err != nil {
		t.Fatal(err)
	}
	// Rows that \copy loads into clients, encrypted, escapes included.
	copyIn := filepath.Join(dir, "clients.tsv")
	if err := os.WriteFile(copyIn, []byte(ws+"\tCopied Firstname\tCopied\\tLast\\\\name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyOut := filepath.Join(dir, "clients-out.tsv")
	wsOut := filepath.Join(dir, "workspaces-out.tsv")
	script := `\set fname 'Zoë Script'
\set tricky 'back\\slash O''Neil'
\set mail 'psql-script@example.com'
insert into clients (workspace_id, first_name, last_name, email, medical_history, phone)
	select id, :'fname', :'tricky', :'mail', 'Asthma since 2001', null from workspaces;
\pset null '<no phone>'
select first_name, last_name, medical_history, phone from clients where email = :'mail';
select email as found_email, pg_backend_pid() as pid from clients where email = :'mail' \gset
\echo gset :found_email
select last_name from clients where email = :'found_email';
select id from clients where last_name like 'back%';
\echo after like :LAST_ERROR_SQLSTATE
update clients set last_name = 'Updated O''Neil' where email = :'mail';
\copy clients (workspace_id, first_name, last_name) from '` + copyIn + `'
\echo after copy from :LAST_ERROR_SQLSTATE
\copy (select first_name, last_name from clients order by created_at) to '` + copyOut + `'
\echo after copy to :LAST_ERROR_SQLSTATE
\copy workspaces (name) from stdin
copied workspace
\.
\copy (select name from workspaces order by name) to '` + wsOut + `'
select last_name, pg_backend_pid() = :pid from clients where email = :'mail';
select count(*) from clients;
\echo done
`
	file := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	r := f.psqlRun(t, ps, dir, "-v", "ON_ERROR_STOP=0", "-f", file)
	want := strings.Join([]string{
		"Zoë Script|back\\slash O'Neil|Asthma since 2001|<no phone>",
		"gset psql-script@example.com",
		"back\\slash O'Neil",
		"after like 0A000",
		"after copy from 0A000",
		"after copy to 0A000",
		"Updated O'Neil|t",
		"2",
		"done",
	}, "\n") + "\n"
	if r.exit != 0 || r.stdout != want {
		t.Errorf("script printed\n%s\nwant\n%s\n%v", r.stdout, want, r)
	}
	for _, msg := range []string{"public.clients.last_name", "LIKE"} {
		if !strings.Contains(r.stderr, msg) {
			t.Errorf("stderr lacks %q:\n%s", msg, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "ERROR:"); n != 1 {
		t.Errorf("stderr has %d errors, want 1 (LIKE):\n%s", n, r.stderr)
	}
	var id string
	if err := f.direct.QueryRow(ctx, "select id::text from clients order by created_at limit 1").Scan(&id); err != nil {
		t.Fatal(err)
	}
	f.expectStoredRow(t, id, encRow{"first_name": sp("Zoë Script"), "last_name": sp("Updated O'Neil"),
		"email": sp("psql-script@example.com"), "medical_history": sp("Asthma since 2001"), "phone": nil})
	f.assertStoredEncrypted(t, "Zoë Script", "back\\slash", "O'Neil", "psql-script@", "Asthma since", "Copied Firstname", "Copied", "Last")
	if n := f.storedClients(t); n != 2 {
		t.Errorf("clients has %d rows, want 2 (one from the \\copy)", n)
	}
	if b, err := os.ReadFile(copyOut); err != nil || string(b) != "Zoë Script\tUpdated O'Neil\nCopied Firstname\tCopied\\tLast\\\\name\n" {
		t.Errorf("\\copy to a file wrote %q, %v; want the decrypted rows, escaped", b, err)
	}
	b, err := os.ReadFile(wsOut)
	if err != nil || string(b) != "copied workspace\nw\n" {
		t.Errorf("\\copy of workspaces to a file wrote %q, %v", b, err)
	}
	var wsN int
	if err := f.direct.QueryRow(ctx, "select count(*) from workspaces where name = 'copied workspace'").Scan(&wsN); err != nil || wsN != 1 {
		t.Errorf("\\copy into workspaces stored %d rows, %v", wsN, err)
	}

	// A rejection inside a transaction block aborts it as a PostgreSQL
	// error would (25P02 after it, COMMIT rolls back), and with
	// ON_ERROR_ROLLBACK psql's savepoint keeps the rest of it.
	txScript := filepath.Join(dir, "tx.sql")
	if err := os.WriteFile(txScript, []byte(`begin;
insert into clients (workspace_id, first_name, last_name) select id, 'Tx First', 'Tx Last' from workspaces where name = 'w';
select id from clients where first_name like 'Tx%';
insert into clients (workspace_id, first_name, last_name) select id, 'Tx Second', 'Tx Last' from workspaces where name = 'w';
commit;
\echo :LAST_ERROR_SQLSTATE
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rollback, sqlstate string
		added              int
	}{{"off", "25P02", 0}, {"on", "0A000", 2}} {
		before := f.storedClients(t)
		r := f.psqlRun(t, ps, dir, "-v", "ON_ERROR_STOP=0", "-v", "ON_ERROR_ROLLBACK="+tc.rollback, "-f", txScript)
		if r.exit != 0 || r.stdout != tc.sqlstate+"\n" || !strings.Contains(r.stderr, "public.clients.first_name") {
			t.Errorf("ON_ERROR_ROLLBACK=%s: want %s last: %v", tc.rollback, tc.sqlstate, r)
		}
		if got := f.storedClients(t) - before; got != tc.added {
			t.Errorf("ON_ERROR_ROLLBACK=%s: the transaction stored %d rows, want %d", tc.rollback, got, tc.added)
		}
	}
	f.assertStoredEncrypted(t, "Tx First", "Tx Second", "Tx Last")
	expectNoProxyFaults(t, f.p)
}

// nodeEncResult is the JSON line encrypt.js prints.
type nodeEncResult struct {
	OK          bool                             `json:"ok"`
	IDs         []string                         `json:"ids"`
	ByID        []map[string]*string             `json:"byId"`
	ByEmail     []map[string]*string             `json:"byEmail"`
	Returning   []map[string]*string             `json:"returning"`
	Prepared    [][]map[string]*string           `json:"prepared"`
	PreparedIns []string                         `json:"preparedInsert"`
	In          int                              `json:"in"`
	BinaryPhone string                           `json:"binaryPhone"`
	Rejected    []struct{ Code, Message string } `json:"rejected"`
	After       string                           `json:"after"`
	Connections int                              `json:"connections"`
	SessionErrs []json.RawMessage                `json:"errorsAfterEnd"`
}

// TestNodePostgresEncrypted runs test/node/encrypt.js (node-postgres)
// through the encrypting proxy, checks what it read back, then checks the
// rows it wrote straight in PostgreSQL.
func TestNodePostgresEncrypted(t *testing.T) {
	pg.Require(t)
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "node not found on PATH")
	}
	dir := nodeDir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pg", "package.json")); err != nil {
		skipOrFail(t, "node-postgres is not installed in %s: run `npm ci --prefix test/node`", dir)
	}
	f := newEncFixture(t, false)
	before := connectionsTotal(f.p)
	r := mustRun(t, toolEnv(t, "PGCRYPT_NODE_DSN="+f.p.nodeURL(f.db)), dir, "", node, "encrypt.js")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var out nodeEncResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("encrypt.js output is not JSON (%v): %v", err, r)
	}
	t.Logf("encrypt.js: %d ids, %v", len(out.IDs), r.took.Round(time.Millisecond))
	if !out.OK {
		t.Fatalf("encrypt.js reported failure: %v", r)
	}
	// What encrypt.js wrote; it checks the read-back itself, and so does
	// this test, from its JSON.
	want := []encRow{
		{"first_name": sp("Nöde Ünïcode 🐘"), "last_name": sp("D'Arcy \\ 日本"), "email": sp("node-1@example.com"),
			"phone": nil, "address": sp(""), "medical_history": sp(strings.Repeat("node history; ", 80)),
			"emergency_contact_name": sp("Emergency Contact"), "emergency_contact_phone": sp("+1 555 0100")},
		{"first_name": sp("Node Second"), "last_name": sp("Second-Last"), "email": sp("node-2@example.com"),
			"phone": sp("+1 555 0102"), "address": sp("2 Node Street"), "medical_history": nil,
			"emergency_contact_name": nil, "emergency_contact_phone": nil},
		{"first_name": sp("Node Third"), "last_name": sp("Third-Last"), "email": sp("node-3@example.com"),
			"phone": sp("+1 555 0103"), "address": nil, "medical_history": sp("third history"),
			"emergency_contact_name": nil, "emergency_contact_phone": nil},
	}
	if len(out.IDs) != len(want) || len(out.ByID) != len(want) || len(out.ByEmail) != len(want) {
		t.Fatalf("encrypt.js returned %d ids, %d rows by id, %d by email; want %d: %v", len(out.IDs), len(out.ByID), len(out.ByEmail), len(want), r)
	}
	for i, w := range want {
		if !sameRow(out.ByID[i], w) || !sameRow(out.ByEmail[i], w) {
			t.Errorf("row %d: node read %v by id and %v by email, want %v", i, encRow(out.ByID[i]), encRow(out.ByEmail[i]), w)
		}
		f.expectStoredRow(t, out.IDs[i], w)
	}
	if len(out.Returning) != 1 || !eqPtr(out.Returning[0]["first_name"], want[2]["first_name"]) || !eqPtr(out.Returning[0]["email"], want[2]["email"]) {
		t.Errorf("INSERT ... RETURNING gave %v", out.Returning)
	}
	if len(out.Prepared) != 2 || len(out.Prepared[0]) != 1 || len(out.Prepared[1]) != 1 ||
		!eqPtr(out.Prepared[0][0]["last_name"], want[0]["last_name"]) || !eqPtr(out.Prepared[1][0]["last_name"], want[1]["last_name"]) {
		t.Errorf("named prepared statement gave %v", out.Prepared)
	}
	if !slices.Equal(out.PreparedIns, []string{"node note one", "node note two ü"}) {
		t.Errorf("named prepared INSERT ... RETURNING gave %q", out.PreparedIns)
	}
	if out.BinaryPhone != *want[2]["phone"] {
		t.Errorf("UPDATE with a Buffer parameter and binary results returned %q", out.BinaryPhone)
	}
	if out.In != 2 {
		t.Errorf("email IN ($1, $2, $3) matched %d rows, want 2", out.In)
	}
	if len(out.Rejected) != 2 {
		t.Errorf("rejections: %+v", out.Rejected)
	}
	for _, rej := range out.Rejected {
		if rej.Code != "0A000" || !strings.Contains(rej.Message, "public.clients.first_name") {
			t.Errorf("rejected query gave %s %q, want 0A000 naming public.clients.first_name", rej.Code, rej.Message)
		}
	}
	if out.After != "Node Second" {
		t.Errorf("after the rejections node read %q", out.After)
	}
	if len(out.SessionErrs) != 0 && !terminateRace {
		t.Errorf("node-postgres got errors after end(): %s", out.SessionErrs)
	}
	f.assertStoredEncrypted(t, append(plaintextsOf(want...), "Nöde", "D'Arcy", "node-", "node history")...)
	if n := f.storedClients(t); n != len(want) {
		t.Errorf("clients has %d rows, want %d", n, len(want))
	}
	// legacy_notes.body (no associated data) from the named INSERT.
	rows, err := f.direct.Query(testCtx(t), "select body from legacy_notes order by id")
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(bodies) != 2 {
		t.Fatalf("legacy_notes: %q, %v", bodies, err)
	}
	kr, _ := cipher.NewKeyring("v1", f.keys)
	notes, _ := kr.Column("public.legacy_notes.body", cipher.Randomized, nil)
	for i, b := range bodies {
		pt, err := notes.Decrypt(nil, []byte(b))
		if err != nil || i >= len(out.PreparedIns) || string(pt) != out.PreparedIns[i] {
			t.Errorf("legacy_notes row %d stored %q: decrypts to %q, %v", i, b, pt, err)
		}
	}
	expectConnections(t, f.p, before, out.Connections, false)
	expectNoProxyFaults(t, f.p)
}

// TestEncryptMixedBatchPgx: one pgx batch (one pipeline, one Sync) of 100
// INSERTs interleaved with 100 SELECTs by email of rows inserted earlier in
// the same batch, some INSERTs with RETURNING of policy columns, in
// QueryExecModeCacheStatement (statements prepared first, then Bind/Execute
// only) and QueryExecModeExec (unnamed statements, Parse/Describe/Bind/
// Execute for each): every result is decrypted for its own statement, in
// order.
func TestEncryptMixedBatchPgx(t *testing.T) {
	f := newEncFixture(t, false)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			conn := f.connect(t, mode)
			const n = 100
			row := func(i int) encRow {
				r := encRow{
					"first_name": sp(fmt.Sprintf("Batch first %s %d", mode, i)), "last_name": sp(fmt.Sprintf("Batch last ü %d", i)),
					"email": sp(fmt.Sprintf("batch-%s-%d@example.com", mode, i)), "phone": sp(fmt.Sprintf("+1 555 %04d", i)),
					"medical_history": sp(strings.Repeat(fmt.Sprintf("batch history %d. ", i), 1+i%20)),
				}
				switch i % 5 {
				case 0:
					r["phone"] = nil
				case 1:
					r["medical_history"] = sp("")
				}
				return r
			}
			type got struct {
				id                        string
				first, last, email, phone *string
				history                   *string
			}
			var (
				ids     [n]string
				selects [n]got
				rets    = map[int][2]string{}
			)
			b := &pgx.Batch{}
			for i := range n {
				r := row(i)
				if i%4 == 0 {
					b.Queue(`insert into clients (workspace_id, first_name, last_name, email, phone, medical_history)
						values ((select id from workspaces limit 1), $1, $2, $3, $4, $5) returning id::text, first_name, email`,
						r["first_name"], r["last_name"], r["email"], r["phone"], r["medical_history"]).
						QueryRow(func(row pgx.Row) error {
							var first, email string
							err := row.Scan(&ids[i], &first, &email)
							rets[i] = [2]string{first, email}
							return err
						})
				} else {
					b.Queue(`insert into clients (workspace_id, first_name, last_name, email, phone, medical_history)
						values ((select id from workspaces limit 1), $1, $2, $3, $4, $5) returning id::text`,
						r["first_name"], r["last_name"], r["email"], r["phone"], r["medical_history"]).
						QueryRow(func(row pgx.Row) error { return row.Scan(&ids[i]) })
				}
				// A row inserted earlier in this batch (i/2), or this one.
				j := i / 2
				b.Queue("select id::text, first_name, last_name, email, phone, medical_history from clients where email = $1", *row(j)["email"]).
					QueryRow(func(row pgx.Row) error {
						s := &selects[i]
						return row.Scan(&s.id, &s.first, &s.last, &s.email, &s.phone, &s.history)
					})
			}
			if err := conn.SendBatch(ctx, b).Close(); err != nil {
				t.Fatalf("batch: %v", err)
			}
			for i := range n {
				j := i / 2
				w := row(j)
				s := selects[i]
				if s.id != ids[j] || !eqPtr(s.first, w["first_name"]) || !eqPtr(s.last, w["last_name"]) || !eqPtr(s.email, w["email"]) ||
					!eqPtr(s.phone, w["phone"]) || !eqPtr(s.history, w["medical_history"]) {
					t.Errorf("select %d (of row %d) read %s %v %v %v %v, want %s %v", i, j, s.id, s.first, s.last, s.email, s.phone, ids[j], w)
				}
			}
			for i, rv := range rets {
				if w := row(i); rv != [2]string{*w["first_name"], *w["email"]} {
					t.Errorf("insert %d RETURNING gave %q", i, rv)
				}
			}
			for _, i := range []int{0, 1, 2, 3, 4, 50, n - 1} {
				f.expectStoredRow(t, ids[i], row(i))
			}
			f.assertStoredEncrypted(t, "Batch first", "Batch last", "batch-", "batch history", "+1 555 ")

			// A second batch of reads only, in reverse order, mixing a
			// lookup by id with one by email IN (...).
			b = &pgx.Batch{}
			var byID [n]string
			var inCount [n]int
			for i := n - 1; i >= 0; i-- {
				b.Queue("select last_name from clients where id = $1", ids[i]).QueryRow(func(row pgx.Row) error { return row.Scan(&byID[i]) })
				b.Queue("select count(*) from clients where email in ($1, $2)", *row(i)["email"], "nobody@example.com").
					QueryRow(func(row pgx.Row) error { return row.Scan(&inCount[i]) })
			}
			if err := conn.SendBatch(ctx, b).Close(); err != nil {
				t.Fatalf("read batch: %v", err)
			}
			for i := range n {
				if byID[i] != *row(i)["last_name"] || inCount[i] != 1 {
					t.Errorf("read batch row %d: %q, IN matched %d", i, byID[i], inCount[i])
				}
			}
		})
	}
	expectNoProxyFaults(t, f.p)
}

// TestLibPQEncryptedPreparedAcrossSearchPath: PostgreSQL re-resolves the
// table names of a prepared statement when search_path (or the catalog)
// changes, so a statement prepared while clients meant tenant.clients
// writes into public.clients once search_path is public again. Its
// parameters must then be encrypted (or the Bind refused): never stored as
// plaintext (a bug, fixed: the proxy plans it again). The same applied to pgx's statement cache
// (QueryExecModeCacheStatement, the default) and with a DROP of the
// shadowing table instead of the SET.
func TestLibPQEncryptedPreparedAcrossSearchPath(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	db, err := sql.Open("postgres", f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var id string
	if err := c.QueryRowContext(ctx, encInsertAll, encRow{"first_name": sp("Before Switch"), "last_name": sp("Public Row")}.insertArgs()...).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "set search_path = tenant, public"); err != nil {
		t.Fatal(err)
	}
	// Valid against both tables: tenant.clients has first_name too.
	upd, err := c.PrepareContext(ctx, "update clients set first_name = $1")
	if err != nil {
		t.Fatal(err)
	}
	defer upd.Close()
	if _, err := upd.ExecContext(ctx, "Tenant Update"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "set search_path = public"); err != nil {
		t.Fatal(err)
	}
	_, err = upd.ExecContext(ctx, "Plaintext After Switch")
	var pqErr *pq.Error
	if err != nil && !(errors.As(err, &pqErr) && pqErr.Code == "0A000") {
		t.Fatalf("prepared UPDATE after the search_path change: %v, want success or 0A000", err)
	}
	f.assertStoredEncrypted(t, "Plaintext After Switch", "Before Switch")
	want := "Before Switch"
	if err == nil {
		want = "Plaintext After Switch"
	}
	f.expectStoredRow(t, id, encRow{"first_name": sp(want), "last_name": sp("Public Row")})
}

// TestLibPQEncryptedThroughView: an updatable view over clients is a way
// into the policy columns by another name. Writing through it must
// encrypt (or be refused with 0A000), never store plaintext; reading
// through it must decrypt (or be refused), never return envelopes.
func TestLibPQEncryptedThroughView(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	if _, err := f.direct.Exec(ctx, "create view client_contacts as select id, workspace_id, first_name, last_name, email from clients"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	accepted := func(what string, err error) bool {
		t.Helper()
		var pqErr *pq.Error
		if err != nil && !(errors.As(err, &pqErr) && pqErr.Code == "0A000") {
			t.Fatalf("%s: %v, want success or 0A000", what, err)
		}
		return err == nil
	}
	// A row written through the table reads back through the view.
	var tableID string
	if err := db.QueryRowContext(ctx, encInsertAll, encRow{"first_name": sp("Table Row"), "last_name": sp("Table Surname"), "email": sp("table@example.com")}.insertArgs()...).Scan(&tableID); err != nil {
		t.Fatal(err)
	}
	var first, email string
	err = db.QueryRowContext(ctx, "select first_name, email from client_contacts where id = $1", tableID).Scan(&first, &email)
	if accepted("SELECT from the view by id", err) && (first != "Table Row" || email != "table@example.com") {
		t.Errorf("SELECT from the view by id returned %q %q, want the plaintext", first, email)
	}
	err = db.QueryRowContext(ctx, "select first_name from client_contacts where email = $1", "table@example.com").Scan(&first)
	if errors.Is(err, sql.ErrNoRows) {
		t.Errorf("SELECT from the view by email matched no row: the parameter reached PostgreSQL unencrypted")
	} else if accepted("SELECT from the view by email", err) && first != "Table Row" {
		t.Errorf("SELECT from the view by email returned %q, %v; want the plaintext", first, err)
	}
	// Writes through the view.
	_, err = db.ExecContext(ctx, `insert into client_contacts (workspace_id, first_name, last_name, email)
		values ((select id from workspaces limit 1), $1, $2, $3)`, "Through View", "View Surname", "view@example.com")
	if !accepted("INSERT through the view", err) {
		// Refused: write a row through the table for the read checks.
		if _, err := db.ExecContext(ctx, encInsertAll, encRow{"first_name": sp("Through View"), "last_name": sp("View Surname"), "email": sp("view@example.com")}.insertArgs()...); err != nil {
			t.Fatal(err)
		}
	}
	f.assertStoredEncrypted(t, "Through View", "View Surname", "view@example.com")
	_, err = db.ExecContext(ctx, "update client_contacts set last_name = $1", "Plain Update Via View")
	accepted("UPDATE through the view", err)
	f.assertStoredEncrypted(t, "Through View", "View Surname", "view@example.com", "Plain Update Via View")
}
