package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// TestEncryptCopyCSV: CSV COPY of a policy column, in and out, with
// PostgreSQL itself as the oracle: the same CSV loaded directly into a
// plaintext table gives the same values as the policy table read through
// the proxy, and COPY TO CSV through the proxy prints what PostgreSQL
// prints for the plaintext table. Only envelopes and NULLs are stored; CSV
// the proxy cannot read the way the server would fails the COPY.
func TestEncryptCopyCSV(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeCacheStatement)
	if _, err := f.direct.Exec(ctx, "create table notes_plain (id serial primary key, body text)"); err != nil {
		t.Fatal(err)
	}
	const semicolons = `(format csv, delimiter ';', quote '''', escape '\', null 'NULL')`
	inputs := []struct{ opts, data string }{
		{"(format csv, header)", "id,body\n" +
			"1,plain\n" +
			"2,\"with, comma\"\n" +
			"3,\"two\nlines\"\n" +
			"4,\n" +
			"5,\"\"\n" +
			"6,\"say \"\"hi\"\"\"\n" +
			"7,ab\"c,d\"e\n" +
			"8,\"\\.\"\n" +
			"9,Zoë 日本\n"},
		{"(format csv)", "14,crlf\r\n15,\"in\r\nside\"\r\n"},
		{`(format csv, quote 'v', escape '+')`, "16,vwith +v and ++ and, commav\n"},
		{semicolons, `10;'it\'s; \\ fine'` + "\n" +
			"11;NULL\n" +
			"12;'NULL'\n" +
			"13;\n"},
	}
	for _, in := range inputs {
		if _, err := conn.PgConn().CopyFrom(ctx, iotest.OneByteReader(strings.NewReader(in.data)), "copy legacy_notes (id, body) from stdin "+in.opts); err != nil {
			t.Fatalf("COPY through the proxy %s: %v", in.opts, err)
		}
		if _, err := f.direct.PgConn().CopyFrom(ctx, strings.NewReader(in.data), "copy notes_plain (id, body) from stdin "+in.opts); err != nil {
			t.Fatalf("COPY directly %s: %v", in.opts, err)
		}
	}
	stored, _ := pgx.CollectRows(must(f.direct.Query(ctx, "select body from legacy_notes where body is not null")), pgx.RowTo[string])
	for _, v := range stored {
		if !cipher.LooksLikeEnvelope([]byte(v)) {
			t.Fatalf("CSV COPY stored %q", v)
		}
	}
	type row struct {
		ID   int
		Body *string
	}
	got, err := pgx.CollectRows(must(conn.Query(ctx, "select id, body from legacy_notes order by id")), pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(must(f.direct.Query(ctx, "select id, body from notes_plain order by id")), pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != 16 {
		t.Fatalf("%d rows through the proxy, %d plain", len(got), len(want))
	}
	for i := range got {
		g, w := got[i].Body, want[i].Body
		if (g == nil) != (w == nil) || (g != nil && *g != *w) {
			t.Fatalf("row %d: proxy %s, PostgreSQL %s", want[i].ID, deref(g), deref(w))
		}
	}
	// A QUOTE and an ESCAPE that occur in envelopes (base64, "v1:"): the
	// proxy must quote and escape its envelopes, and read PostgreSQL's.
	const envelopeChars = `(format csv, quote 'v', escape '+')`
	for _, opts := range []string{"(format csv, header)", semicolons, envelopeChars} {
		var viaProxy, plain strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &viaProxy, "copy (select id, body from legacy_notes order by id) to stdout "+opts); err != nil {
			t.Fatal(err)
		}
		if _, err := f.direct.PgConn().CopyTo(ctx, &plain, "copy (select id, body from notes_plain order by id) to stdout "+opts); err != nil {
			t.Fatal(err)
		}
		if viaProxy.String() != plain.String() {
			t.Fatalf("COPY TO %s through the proxy:\n%q\nPostgreSQL on plaintext:\n%q", opts, viaProxy.String(), plain.String())
		}
	}

	// CSV the proxy would read differently from the server fails the COPY.
	var pgErr *pgconn.PgError
	for _, bad := range []string{"20,a\rb\n", "21,a\r22,b\r", "23,\"open\n"} {
		_, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(bad), "copy legacy_notes (id, body) from stdin (format csv)")
		if !errors.As(err, &pgErr) {
			t.Fatalf("CSV %q: %v, want an error", bad, err)
		}
	}
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("30,x\n"), "copy legacy_notes (id, body) from stdin (format csv, force_null (body))")
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("FORCE_NULL: %v, want 0A000", err)
	}
	var n int
	if err := f.direct.QueryRow(ctx, "select count(*) from legacy_notes where id >= 20").Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed COPYs stored %d rows, %v", n, err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func deref(p *string) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *p)
}
