package e2e

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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
