package e2e

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgarray"
)

// FuzzArrayDifferential feeds the same text to the proxy's array reader
// and to PostgreSQL's array_in ($1::text[]) and requires the same verdict:
// the same elements (NULLs included) where PostgreSQL reads a
// one-dimensional array with default bounds, a refusal everywhere else, and
// ErrMalformed-or-unsupported where PostgreSQL says 22P02. A difference
// would let the proxy encrypt other elements than the server compares, or
// turn a malformed value into a well-formed one.
//
//	go test -run '^$' -fuzz FuzzArrayDifferential -fuzztime 1m ./test/e2e/
func FuzzArrayDifferential(f *testing.F) {
	for _, s := range []string{
		`{}`, `{ }`, "{\t\n\r\v\f}", `{a}`, `{a,b}`, ` {a} `, "\v{\fa\v,\rb\n}\t", `{ a , b }`,
		`{"a b",c}`, `{"a\"b"}`, `{a\,b}`, `{a\ }`, `{\ a}`, `{a b}`, `{"",""}`, `{""}`,
		`{NULL}`, `{null,NuLl}`, `{"NULL"}`, `{N\ULL}`, `{ NULL }`, `{NULLx}`,
		`{a,,b}`, `{,}`, `{a,}`, `{,a}`, `{a`, `a}`, `{a}x`, `{"a"b}`, `{a"b"}`, `{"a" "b"}`,
		`{{a},{b}}`, `{{a}}`, `{{a},b}`, `[1:1]={a}`, `[0:1]={a,b}`, `[1:2]={a}`, `{a\}`, `{"a\`,
		`{"\\"}`, `{\\}`, `{é,"ü"}`, `{a}}`, `{{a}`, `}`, ``, ` `, `{"a",{b}}`,
	} {
		f.Add(s)
	}
	pg.Require(f)
	conn := pg.SuperConn(f, pg.NewDatabase(f))
	f.Fuzz(func(t *testing.T, in string) {
		if !utf8.ValidString(in) || strings.IndexByte(in, 0) >= 0 {
			t.Skip("PostgreSQL text cannot hold it")
		}
		var got []*string
		perr := pgarray.Parse([]byte(in), func(e []byte, null bool) error {
			if null {
				got = append(got, nil)
			} else {
				s := string(e)
				got = append(got, &s)
			}
			return nil
		})
		var ndims int
		var plainBounds bool
		var want []*string
		err := conn.QueryRow(testCtx(t), `SELECT coalesce(array_ndims(a), 0), coalesce(array_lower(a, 1) = 1, true),
			CASE WHEN array_ndims(a) = 1 THEN a END FROM (SELECT $1::text[] AS a) s`, in).Scan(&ndims, &plainBounds, &want)
		var pe *pgconn.PgError
		switch {
		case errors.As(err, &pe):
			if perr == nil {
				t.Fatalf("%q: PostgreSQL refuses it (%s %s) but the proxy reads %d elements", in, pe.Code, pe.Message, len(got))
			}
			if pe.Code == "22P02" && !errors.Is(perr, pgarray.ErrMalformed) && !errors.Is(perr, pgarray.ErrUnsupported) {
				t.Fatalf("%q: PostgreSQL says 22P02, the proxy %v", in, perr)
			}
		case err != nil:
			t.Fatal(err)
		case ndims > 1 || !plainBounds || strings.HasPrefix(strings.TrimLeft(in, " \t\n\r\v\f"), "["):
			if !errors.Is(perr, pgarray.ErrUnsupported) {
				t.Fatalf("%q: PostgreSQL reads %d dimensions (default bounds %t), the proxy: %v", in, ndims, plainBounds, perr)
			}
		case perr != nil:
			t.Fatalf("%q: PostgreSQL reads %d elements, the proxy refuses: %v", in, len(want), perr)
		case !slices.EqualFunc(got, want, func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }):
			t.Fatalf("%q: PostgreSQL reads %s, the proxy %s", in, show(want), show(got))
		}
	})
}

func show(vs []*string) string {
	var b strings.Builder
	for _, v := range vs {
		if v == nil {
			b.WriteString("[NULL]")
		} else {
			b.WriteString("[" + *v + "]")
		}
	}
	return b.String()
}

// TestNumericLiteralsAsServer: a numeric literal written to an encrypted
// text column is encrypted as the text PostgreSQL itself would store
// (numeric's output: no exponent, no leading zeros, no negative zero), or
// refused.
func TestNumericLiteralsAsServer(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	conn := f.connect(t, pgx.QueryExecModeSimpleProtocol)
	for i, lit := range []string{"0", "-0", "-0.0", "0.0", "1.50", "001.5", "1e3", "1.5e1", "1.5e-2", "-1e-2",
		"12345678901234567890", "-00012345678901234567890.000", "0.000", ".5", "5.", "-.5e1", "1E+2", "2.5E0", "9e-5"} {
		var want string
		if err := f.direct.QueryRow(ctx, "SELECT ("+lit+")::text").Scan(&want); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO legacy_notes (id, body) VALUES (%d, %s)", i+1, lit)); err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "0A000" {
				t.Fatalf("%s: %v", lit, err)
			}
			t.Logf("%s: refused (%s)", lit, pe.Message)
			continue
		}
		var got string
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT body FROM legacy_notes WHERE id = %d", i+1)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: stored %q, PostgreSQL would store %q", lit, got, want)
		}
	}
}
