package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// The seed's Client model (examples/clients.sql), a legacy table written by
// the seed's own EncryptedString (no associated data), and a same-named
// table in another schema that is not a policy table.
const encSchema = `
CREATE SCHEMA tenant;
CREATE TABLE tenant.clients (id serial PRIMARY KEY, first_name text, email text);
CREATE TABLE legacy_notes (id serial PRIMARY KEY, body text);
`

// seedColumns is config.example.yaml's policy plus legacy_notes.body.
func seedColumns() []proxy.ColumnSpec {
	var specs []proxy.ColumnSpec
	for _, c := range []string{"first_name", "last_name", "email", "phone", "address", "medical_history", "emergency_contact_name", "emergency_contact_phone"} {
		specs = append(specs, proxy.ColumnSpec{Schema: "public", Table: "clients", Column: c,
			Deterministic: c == "email", AssociatedData: []byte("public.clients." + c)})
	}
	return append(specs, proxy.ColumnSpec{Schema: "public", Table: "legacy_notes", Column: "body"})
}

// encFixture is a database with the seed schema and a proxy encrypting it.
type encFixture struct {
	p      *testProxy
	db     string
	direct *pgx.Conn // straight to PostgreSQL, for checking what is stored
	keys   map[string]cipher.Key
}

func newEncFixture(t *testing.T, allowReads bool) *encFixture {
	t.Helper()
	return newEncFixtureOpts(t, seedColumns(), allowReads)
}

// newEncFixtureWithSpecs is newEncFixture with another policy.
func newEncFixtureWithSpecs(t *testing.T, specs []proxy.ColumnSpec) *encFixture {
	t.Helper()
	return newEncFixtureOpts(t, specs, false)
}

func proxyColumn(schema, table, column string) proxy.ColumnSpec {
	return proxy.ColumnSpec{Schema: schema, Table: table, Column: column, AssociatedData: []byte(schema + "." + table + "." + column)}
}

func newEncFixtureOpts(t *testing.T, specs []proxy.ColumnSpec, allowReads bool) *encFixture {
	t.Helper()
	return newEncFixtureWith(t, specs, allowReads, "", "")
}

// newEncFixtureWith is newEncFixtureOpts with ddl run after the seed schema
// and, when upstream is set, the proxy's PostgreSQL address replaced.
func newEncFixtureWith(t *testing.T, specs []proxy.ColumnSpec, allowReads bool, ddl, upstream string) *encFixture {
	t.Helper()
	return newEncFixtureFunc(t, specs, allowReads, ddl, func(o *proxy.Options) {
		if upstream != "" {
			o.Upstream = upstream
		}
	})
}

// newEncFixtureFunc is newEncFixtureWith with any proxy options set by opt.
func newEncFixtureFunc(t *testing.T, specs []proxy.ColumnSpec, allowReads bool, ddl string, opt func(*proxy.Options)) *encFixture {
	t.Helper()
	pg.Require(t)
	db := pg.NewDatabase(t)
	direct := pg.SuperConn(t, db)
	ctx := testCtx(t)
	schema, err := os.ReadFile("../../examples/clients.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Exec(ctx, string(schema)+encSchema+ddl); err != nil {
		t.Fatal(err)
	}
	keys := seedVectorKeys(t)
	kr, err := cipher.NewKeyring("v1", keys)
	if err != nil {
		t.Fatal(err)
	}
	f := &encFixture{db: db, direct: direct, keys: keys}
	f.p = startProxy(t, func(o *proxy.Options) {
		pol, err := proxy.NewPolicy(specs, kr, allowReads, o.Metrics)
		if err != nil {
			t.Fatal(err)
		}
		o.Policy = pol
		opt(o)
	})
	var ws string
	if err := direct.QueryRow(ctx, "insert into workspaces(name) values ('w') returning id::text").Scan(&ws); err != nil {
		t.Fatal(err)
	}
	return f
}

// seedVectorKeys returns the keys of cipher/testdata/vectors.json, which an
// independent Python implementation of the seed's scheme wrote.
func seedVectorKeys(t *testing.T) map[string]cipher.Key {
	t.Helper()
	var vf struct {
		Keys    map[string]string `json:"keys"`
		Vectors []struct {
			Name, Mode, KeyID string
			AD                *string `json:"ad"`
			Plaintext         string  `json:"plaintext_b64"`
			Envelope          string  `json:"envelope"`
		} `json:"vectors"`
	}
	b, err := os.ReadFile("../../cipher/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	keys := map[string]cipher.Key{}
	for id, k := range vf.Keys {
		if keys[id], err = cipher.ParseKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func (f *encFixture) connect(t *testing.T, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// assertStoredEncrypted reads the policy columns straight from PostgreSQL:
// every non-NULL value must be an envelope and none may contain plaintext.
func (f *encFixture) assertStoredEncrypted(t *testing.T, plaintexts ...string) {
	t.Helper()
	rows, err := f.direct.Query(testCtx(t), `select first_name, last_name, email, phone, address, medical_history,
		emergency_contact_name, emergency_contact_phone from clients`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		vals := make([]*string, 8)
		ptrs := make([]any, 8)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if v == nil {
				continue
			}
			if cipher.LooksLikeEnvelope([]byte(*v)) {
				// An envelope's body is base64 of ciphertext: a short
				// plaintext such as "caf" turns up in it by chance (about
				// once in 300 runs), so only non-envelopes are searched.
				continue
			}
			t.Errorf("row %d column %d stored as %q: not an envelope", n, i, *v)
			for _, p := range plaintexts {
				if p != "" && strings.Contains(*v, p) {
					t.Errorf("row %d column %d contains the plaintext %q", n, i, p)
				}
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no rows stored")
	}
}

type client struct {
	First, Last      string
	Email, Phone     *string
	Address, History *string
}

func sp(s string) *string { return &s }

// TestEncryptRoundTripPgx writes and reads the seed's Client rows in every
// pgx exec mode: values reach the table as envelopes and come back as
// plaintext; equality search works on email.
func TestEncryptRoundTripPgx(t *testing.T) {
	f := newEncFixture(t, false)
	history := strings.Repeat("Diabetes Type 2, hypertension. ", 33) // ~1 KB
	for _, mode := range execModes {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			conn := f.connect(t, mode)
			email := mode.String() + "@example.com"
			in := client{First: "José", Last: "O'Brien \\ 日本", Email: sp(email), Phone: nil, Address: sp(""), History: sp(history)}
			var id string
			err := conn.QueryRow(ctx, `insert into clients (workspace_id, first_name, last_name, email, phone, address, medical_history)
				values ((select id from workspaces limit 1), $1, $2, $3, $4, $5, $6) returning id::text`,
				in.First, in.Last, in.Email, in.Phone, in.Address, in.History).Scan(&id)
			if err != nil {
				t.Fatal(err)
			}
			var out client
			err = conn.QueryRow(ctx, `select first_name, last_name, email, phone, address, medical_history from clients where id = $1`, id).
				Scan(&out.First, &out.Last, &out.Email, &out.Phone, &out.Address, &out.History)
			if err != nil {
				t.Fatal(err)
			}
			if out.First != in.First || out.Last != in.Last || *out.Email != email || out.Phone != nil || *out.Address != "" || *out.History != history {
				t.Fatalf("read back %+v", out)
			}
			var found string
			if err := conn.QueryRow(ctx, "select c.first_name from clients c where c.email = $1", email).Scan(&found); err != nil || found != "José" {
				t.Fatalf("WHERE email = $1: %q, %v", found, err)
			}
			// UPDATE ... SET, then RETURNING through an alias.
			var last string
			if err := conn.QueryRow(ctx, "update clients set last_name = $1 where id = $2 returning last_name as surname", "Smith", id).Scan(&last); err != nil || last != "Smith" {
				t.Fatalf("UPDATE RETURNING: %q, %v", last, err)
			}
			f.assertStoredEncrypted(t, "José", "O'Brien", email, "Diabetes", "Smith")
		})
	}
}

// TestEncryptSimpleProtocolLiterals sends literals of every quoting form
// in simple Query messages.
func TestEncryptSimpleProtocolLiterals(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeSimpleProtocol)
	_, err := conn.Exec(ctx, `insert into clients (workspace_id, first_name, last_name, email, address, medical_history)
		select id, 'Ann', E'Line\nTwo', 'ann@example.com', $$dollar 'quoted'$$, U&'caf\00E9' from workspaces;
		insert into clients (workspace_id, first_name, last_name) select id, 'Bob', 'Stone' from workspaces`)
	if err != nil {
		t.Fatal(err)
	}
	var last, address, history string
	err = conn.QueryRow(ctx, "select last_name, address, medical_history from clients where email = 'ann@example.com'").Scan(&last, &address, &history)
	if err != nil {
		t.Fatal(err)
	}
	if last != "Line\nTwo" || address != "dollar 'quoted'" || history != "café" {
		t.Fatalf("got %q %q %q", last, address, history)
	}
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from clients where email in ('ann@example.com', 'nobody@example.com')").Scan(&n); err != nil || n != 1 {
		t.Fatalf("IN: %d, %v", n, err)
	}
	if err := conn.QueryRow(ctx, "select count(*) from clients where email is null").Scan(&n); err != nil || n != 1 {
		t.Fatalf("IS NULL: %d, %v", n, err)
	}
	f.assertStoredEncrypted(t, "Ann", "Line", "ann@", "dollar", "caf", "Bob", "Stone")
}

// TestEncryptRejections: operations that cannot work on ciphertext get
// 0A000 naming the column, nothing reaches the table, and the connection
// stays usable, in both protocols.
func TestEncryptRejections(t *testing.T) {
	f := newEncFixture(t, false)
	stmts := []struct{ sql, column string }{
		{"select * from clients where first_name like 'J%'", "first_name"},
		{"select id from clients order by last_name", "last_name"},
		{"select id from clients where medical_history > 'a'", "medical_history"},
		{"select id from clients where lower(email) = 'x'", "email"},
		{"select id from clients where first_name = 'John'", "first_name"},
		{"select first_name from clients group by first_name", "first_name"},
		{"select first_name from clients union select 'x'", "first_name"},
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			conn := f.connect(t, mode)
			for _, st := range stmts {
				_, err := conn.Exec(ctx, st.sql)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "0A000" || !strings.Contains(pgErr.Message, "public.clients."+st.column) {
					t.Errorf("%s: got %v, want 0A000 naming %s", st.sql, err, st.column)
				}
				if err := conn.Ping(ctx); err != nil {
					t.Fatalf("connection unusable after rejecting %q: %v", st.sql, err)
				}
			}
		})
	}
	if got := f.p.metricSum(t, "pgcrypt_statements_rejected_total"); got < float64(2*len(stmts)) {
		t.Fatalf("rejections counted: %v", got)
	}
}

// TestEncryptRejectionInPipeline: a rejected statement in a batch aborts
// the batch as a server error would: earlier writes roll back, later
// messages are skipped, the next batch works.
func TestEncryptRejectionInPipeline(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	b := &pgx.Batch{}
	b.Queue("insert into legacy_notes (body) values ($1)", "first")
	b.Queue("select id from legacy_notes where body like 'f%'")
	b.Queue("insert into legacy_notes (body) values ($1)", "third")
	err := conn.SendBatch(ctx, b).Close()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("batch: %v, want 0A000", err)
	}
	var n int
	if err := f.direct.QueryRow(ctx, "select count(*) from legacy_notes").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after the rejected batch: %d, %v (want 0: the batch is one implicit transaction)", n, err)
	}
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "after"); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptAllowReads: on_unsupported: allow runs reads unchanged but
// still refuses to store plaintext.
func TestEncryptAllowReads(t *testing.T) {
	f := newEncFixture(t, true)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "select id from clients order by last_name"); err != nil {
		t.Fatalf("read with ORDER BY under allow: %v", err)
	}
	_, err := conn.Exec(ctx, "insert into clients (workspace_id, first_name, last_name) select id, upper($1), 'x' from workspaces", "plain")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("write of a function result under allow: %v, want 0A000", err)
	}
}

// TestSameNameOtherSchema: with tenant first on the search_path, clients is
// tenant.clients, which is not a policy table: values stay as written, and
// public.clients is untouched.
func TestSameNameOtherSchema(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "set search_path = tenant, public"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "insert into clients (first_name, email) values ($1, $2)", "Tenant", "t@example.com"); err != nil {
		t.Fatal(err)
	}
	var first string
	if err := f.direct.QueryRow(ctx, "select first_name from tenant.clients").Scan(&first); err != nil || first != "Tenant" {
		t.Fatalf("tenant.clients holds %q, %v; want the plaintext (not a policy table)", first, err)
	}
	// Back to public: the policy applies again.
	if _, err := conn.Exec(ctx, "set search_path = public"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "insert into clients (workspace_id, first_name, last_name) select id, $1, $2 from workspaces", "Pub", "Lic"); err != nil {
		t.Fatal(err)
	}
	f.assertStoredEncrypted(t, "Pub", "Lic")
}

// TestDecryptFailureAndPlaintext: a tampered value gives an error naming the
// column and the connection stays usable; plaintext stored before backfill
// comes back as is and is counted.
func TestDecryptFailureAndPlaintext(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into legacy_notes (body) values ($1)", "secret note"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.direct.Exec(ctx, "insert into legacy_notes (body) values ('stored before backfill')"); err != nil {
		t.Fatal(err)
	}
	var plain string
	if err := conn.QueryRow(ctx, "select body from legacy_notes where id = 2").Scan(&plain); err != nil || plain != "stored before backfill" {
		t.Fatalf("plaintext row: %q, %v", plain, err)
	}
	if got := f.p.metricSum(t, "pgcrypt_plaintext_values_total"); got != 1 {
		t.Fatalf("plaintext values counted: %v", got)
	}
	// Flip one character of the ciphertext.
	if _, err := f.direct.Exec(ctx, `update legacy_notes set body = overlay(body placing (case when substr(body, length(body)-3, 1) = 'A' then 'B' else 'A' end) from length(body)-3 for 1) where id = 1`); err != nil {
		t.Fatal(err)
	}
	var body string
	err := conn.QueryRow(ctx, "select body from legacy_notes where id = 1").Scan(&body)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "public.legacy_notes.body") || strings.Contains(pgErr.Message, "secret") {
		t.Fatalf("tampered value: %v (%q)", err, body)
	}
	if got := f.p.errorCount(metrics.ErrDecrypt); got != 1 {
		t.Fatalf("decrypt errors: %v", got)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSeedWrittenRowsReadBack: envelopes written by an independent Python
// implementation of the seed's EncryptedString (no associated data) read
// back as plaintext through the proxy.
func TestSeedWrittenRowsReadBack(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	var vf struct {
		Vectors []struct {
			Mode      string  `json:"mode"`
			KeyID     string  `json:"key_id"`
			AD        *string `json:"ad"`
			Plaintext string  `json:"plaintext_b64"`
			Envelope  string  `json:"envelope"`
		} `json:"vectors"`
	}
	b, _ := os.ReadFile("../../cipher/testdata/vectors.json")
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, v := range vf.Vectors {
		pt, _ := base64.StdEncoding.DecodeString(v.Plaintext)
		if v.Mode != "randomized" || v.AD != nil || !strings.HasPrefix(v.KeyID, "v") || strings.ContainsRune(string(pt), 0) {
			continue
		}
		if _, err := f.direct.Exec(ctx, "insert into legacy_notes (body) values ($1)", v.Envelope); err != nil {
			t.Fatal(err)
		}
		want[v.Envelope] = string(pt)
	}
	if len(want) < 5 {
		t.Fatalf("only %d usable vectors", len(want))
	}
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	rows, err := f.direct.Query(ctx, "select id, body from legacy_notes order by id")
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		id  int
		env string
	}
	var recs []rec
	for rows.Next() {
		var r rec
		rows.Scan(&r.id, &r.env)
		recs = append(recs, r)
	}
	rows.Close()
	for _, r := range recs {
		var got string
		if err := conn.QueryRow(ctx, "select body from legacy_notes where id = $1", r.id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want[r.env] {
			t.Fatalf("row %d: got %q, want %q", r.id, got, want[r.env])
		}
	}
}

// TestEncryptSQLPrepareExecute: arguments of an SQL-level EXECUTE are
// encrypted for the prepared statement's policy parameters.
func TestEncryptSQLPrepareExecute(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeSimpleProtocol)
	if _, err := conn.Exec(ctx, "prepare ins(text) as insert into legacy_notes (body) values ($1); execute ins('prepared secret')"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "execute ins('second secret')"); err != nil {
		t.Fatal(err)
	}
	var stored []string
	rows, _ := f.direct.Query(ctx, "select body from legacy_notes order by id")
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored %d rows, %v", len(stored), err)
	}
	for _, v := range stored {
		if !cipher.LooksLikeEnvelope([]byte(v)) || strings.Contains(v, "secret") {
			t.Fatalf("EXECUTE stored %q", v)
		}
	}
	var body string
	if err := conn.QueryRow(ctx, "select body from legacy_notes order by id desc limit 1").Scan(&body); err != nil || body != "second secret" {
		t.Fatalf("read back %q, %v", body, err)
	}
	_, err = conn.Exec(ctx, "execute never_prepared('x')")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("EXECUTE of an unknown statement: %v, want 0A000", err)
	}
}

// TestEncryptCopy: COPY FROM STDIN and TO STDOUT of policy columns, in the
// text format, are encrypted and decrypted field by field; COPY with a
// DEFAULT marker is refused; COPY of other tables is untouched.
func TestEncryptCopy(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	// COPY text lines: escapes, NULL, an empty value, unicode, and a last
	// line without newline; sent a byte per CopyData message.
	rows := []string{`first\tnote\\with escapes`, `\N`, ``, `O'Brien 日本`, `last row without newline`}
	src := strings.Join(rows, "\n")
	tag, err := conn.PgConn().CopyFrom(ctx, iotest.OneByteReader(strings.NewReader(src)), "copy legacy_notes (body) from stdin")
	if err != nil || tag.RowsAffected() != 5 {
		t.Fatalf("COPY FROM: %v, %v", tag, err)
	}
	stored, _ := pgx.CollectRows(must(f.direct.Query(ctx, "select body from legacy_notes where body is not null")), pgx.RowTo[string])
	if len(stored) != 4 {
		t.Fatalf("stored %d non-NULL rows", len(stored))
	}
	for _, v := range stored {
		if !cipher.LooksLikeEnvelope([]byte(v)) || strings.Contains(v, "O'Brien") {
			t.Fatalf("COPY stored %q", v)
		}
	}
	var out strings.Builder
	if _, err := conn.PgConn().CopyTo(ctx, &out, "copy (select body from legacy_notes order by id) to stdout"); err != nil {
		t.Fatal(err)
	}
	if want := src + "\n"; out.String() != want {
		t.Fatalf("COPY TO gave %q, want %q", out.String(), want)
	}
	var body string
	if err := conn.QueryRow(ctx, "select body from legacy_notes where id = 1").Scan(&body); err != nil || body != "first\tnote\\with escapes" {
		t.Fatalf("row 1 reads %q, %v", body, err)
	}
	var pgErr *pgconn.PgError
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("x\n"), "copy legacy_notes (body) from stdin (format csv, default 'D')")
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("CSV COPY with DEFAULT: %v, want 0A000", err)
	}
	if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("n\n"), "copy workspaces (name) from stdin"); err != nil {
		t.Fatalf("COPY of a table without policy columns: %v", err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptCopyBinary: pgx's CopyFrom (binary COPY) of the seed's
// clients, thousands of rows so that rows straddle CopyData messages,
// stores envelopes only; COPY TO STDOUT in binary and SELECT read the
// plaintext back; equality search finds a row written by COPY; binary COPY
// data that cannot be rewritten fails the COPY and stores nothing.
func TestEncryptCopyBinary(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	var ws string
	if err := conn.QueryRow(ctx, "select id::text from workspaces limit 1").Scan(&ws); err != nil {
		t.Fatal(err)
	}
	history := strings.Repeat("Asthma; salbutamol inhaler. ", 40)
	const n = 3000
	rows := make([][]any, n)
	for i := range rows {
		var phone any = fmt.Sprintf("+1 555 %04d", i)
		if i%7 == 0 {
			phone = nil
		}
		rows[i] = []any{ws, fmt.Sprintf("Zoë %d", i), "O'Brien", fmt.Sprintf("c%d@example.com", i), phone, history}
	}
	cols := []string{"workspace_id", "first_name", "last_name", "email", "phone", "medical_history"}
	got, err := conn.CopyFrom(ctx, pgx.Identifier{"clients"}, cols, pgx.CopyFromRows(rows))
	if err != nil || got != n {
		t.Fatalf("CopyFrom = %d, %v", got, err)
	}

	// Directly: every policy value is an envelope, no plaintext anywhere.
	stored, err := f.direct.Query(ctx, "select first_name, last_name, email, coalesce(phone, ''), medical_history from clients")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for stored.Next() {
		vals := stored.RawValues()
		for i, v := range vals {
			if i == 3 && len(v) == 0 {
				continue
			}
			// Markers with characters base64 lacks: an envelope's random
			// payload holds "Brien" now and then.
			if !cipher.LooksLikeEnvelope(v) || bytes.Contains(v, []byte("O'Brien")) || bytes.Contains(v, []byte("salbutamol inhaler")) {
				t.Fatalf("stored %q", v)
			}
		}
		count++
	}
	if stored.Err() != nil || count != n {
		t.Fatalf("read %d rows directly, %v", count, stored.Err())
	}

	// Through the proxy: binary COPY TO STDOUT decrypts.
	var out bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &out, "copy (select first_name, phone, medical_history from clients) to stdout (format binary)"); err != nil {
		t.Fatal(err)
	}
	fields := parseBinaryCopy(t, out.Bytes(), 3)
	if len(fields) != n {
		t.Fatalf("COPY TO gave %d rows", len(fields))
	}
	for _, r := range fields {
		if !strings.HasPrefix(string(r[0]), "Zoë ") || string(r[2]) != history {
			t.Fatalf("COPY TO row %q", r)
		}
	}
	var first string
	var phone *string
	if err := conn.QueryRow(ctx, "select first_name, phone from clients where email = $1", "c14@example.com").Scan(&first, &phone); err != nil || first != "Zoë 14" || phone != nil {
		t.Fatalf("equality search after COPY: %q %v, %v", first, phone, err)
	}

	// Bytes that are not binary COPY data fail the COPY; nothing is stored.
	var pgErr *pgconn.PgError
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("plain text\n"), "copy legacy_notes (body) from stdin (format binary)")
	if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "signature") {
		t.Fatalf("text sent as binary COPY: %v", err)
	}
	var notes int
	if err := f.direct.QueryRow(ctx, "select count(*) from legacy_notes").Scan(&notes); err != nil || notes != 0 {
		t.Fatalf("legacy_notes holds %d rows, %v", notes, err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// parseBinaryCopy splits binary COPY data into rows of width fields.
func parseBinaryCopy(t *testing.T, b []byte, width int) [][][]byte {
	t.Helper()
	if len(b) < 19 || string(b[:11]) != "PGCOPY\n\xff\r\n\x00" {
		t.Fatalf("no binary COPY header in %q", b[:min(len(b), 20)])
	}
	b = b[19+int(binary.BigEndian.Uint32(b[15:])):]
	var rows [][][]byte
	for {
		cnt := int16(binary.BigEndian.Uint16(b))
		b = b[2:]
		if cnt == -1 {
			return rows
		}
		if int(cnt) != width {
			t.Fatalf("row of %d fields", cnt)
		}
		row := make([][]byte, width)
		for i := range row {
			l := int32(binary.BigEndian.Uint32(b))
			b = b[4:]
			if l >= 0 {
				row[i], b = b[:l], b[l:]
			}
		}
		rows = append(rows, row)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
