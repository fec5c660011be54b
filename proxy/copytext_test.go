package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgarray"
)

// rot is a stand-in cipher for layout tests: it wraps values in brackets.
func rot(_ *policyColumn, dst, v []byte) ([]byte, error) {
	return append(append(append(dst, '['), v...), ']'), nil
}

func unrot(_ *policyColumn, dst, v []byte) ([]byte, error) {
	if len(v) < 2 {
		return nil, errors.New("not wrapped")
	}
	return append(dst, v[1:len(v)-1]...), nil
}

func TestCopyTextHeader(t *testing.T) {
	pc := &policyColumn{}
	ct, err := newCopyText("", "", false, true, []*policyColumn{nil, pc})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ct.in(nil, []byte("id\tfirst_name\n1\tAnn\n"), true, rot)
	if err != nil || string(out) != "id\tfirst_name\n1\t[Ann]\n" {
		t.Fatalf("got %q, %v", out, err)
	}
}

// TestCopyTextRefusesExtraFields: PostgreSQL refuses a line with more
// fields than columns and quotes it in its error, so extra fields must not
// cross unencrypted.
func TestCopyTextRefusesExtraFields(t *testing.T) {
	pc := &policyColumn{}
	ct, _ := newCopyText("", "", false, false, []*policyColumn{nil, pc})
	if out, err := ct.in(nil, []byte("1\tAnn\tsecret\n"), true, rot); err == nil || !strings.Contains(err.Error(), "more fields") {
		t.Fatalf("got %q, %v; want a field count error", out, err)
	}
	ct, _ = newCopyText("", "", false, false, []*policyColumn{nil, pc})
	if out, err := ct.in(nil, []byte("1\tAnn\n2\n"), true, rot); err != nil || string(out) != "1\t[Ann]\n2\n" {
		t.Fatalf("fewer fields (PostgreSQL refuses them itself): %q, %v", out, err)
	}
}

func TestCopyTextRefusesCR(t *testing.T) {
	pc := &policyColumn{}
	for _, in := range []string{"1\tA\rB\tx\n", "1\tA\tx\r2\tB\ty\r", "id\tbody\r1\tA\r"} {
		ct, _ := newCopyText("", "", false, true, []*policyColumn{nil, pc, nil})
		if _, err := ct.in(nil, []byte(in), true, rot); err == nil || !strings.Contains(err.Error(), "carriage return") {
			t.Errorf("%q: %v, want a carriage return error", in, err)
		}
	}
	ct, _ := newCopyText("", "", false, false, []*policyColumn{nil, pc, nil})
	if out, err := ct.in(nil, []byte("1\tA\\rB\\\rC\tx\r\n"), true, rot); err != nil || string(out) != "1\t[A\\rB\\rC]\tx\r\n" {
		t.Errorf("escaped CRs and a CRLF line end: %q, %v", out, err)
	}
}

func TestCopyTextIn(t *testing.T) {
	pc := &policyColumn{}
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"plain rows", []string{"1\tAnn\tx\n2\tBob\ty\n"}, "1\t[Ann]\tx\n2\t[Bob]\ty\n"},
		{"escapes decoded, result escaped", []string{"1\tA\\tb\\\\c\\nd\\101\\x41\tx\n"}, "1\t[A\\tb\\\\c\\ndAA]\tx\n"},
		{"NULL stays", []string{"1\t\\N\tx\n"}, "1\t\\N\tx\n"},
		{"empty string is a value", []string{"1\t\tx\n"}, "1\t[]\tx\n"},
		{"row split across messages", []string{"1\tAn", "n\tx\n2\tB", "ob\ty\n"}, "1\t[Ann]\tx\n2\t[Bob]\ty\n"},
		{"escaped delimiter is data", []string{"1\ta\\\tb\tx\n"}, "1\t[a\\tb]\tx\n"},
		{"CRLF line ends", []string{"1\tAnn\tx\r\n"}, "1\t[Ann]\tx\r\n"},
		{"end marker", []string{"1\tAnn\tx\n\\.\n"}, "1\t[Ann]\tx\n\\.\n"},
		{"after the end marker: dropped", []string{"1\tAnn\tx\n\\.\n2\tBob\ty\n"}, "1\t[Ann]\tx\n\\.\n"},
		{"last row without newline", []string{"1\tAnn\tx"}, "1\t[Ann]\tx"},
		{"fewer fields than columns", []string{"1\n"}, "1\n"},
		{"escaped newline is data", []string{"1\tA\\\nB\tx\n"}, "1\t[A\\nB]\tx\n"},
		{"escaped newline split across messages", []string{"1\tA\\", "\nB\tx\n"}, "1\t[A\\nB]\tx\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, err := newCopyText("", "", false, false, []*policyColumn{nil, pc, nil})
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			for i, c := range tc.chunks {
				if out, err = ct.in(out, []byte(c), i == len(tc.chunks)-1, rot); err != nil {
					t.Fatal(err)
				}
			}
			if len(ct.pending) > 0 {
				if out, err = ct.in(out, nil, true, rot); err != nil {
					t.Fatal(err)
				}
			}
			if string(out) != tc.want {
				t.Fatalf("got %q, want %q", out, tc.want)
			}
		})
	}
}

func TestCopyTextRoundTrip(t *testing.T) {
	pc := &policyColumn{}
	ct, _ := newCopyText(",", "NULL", true, false, []*policyColumn{pc, nil})
	in := []byte("a\\,b\\\\c\\nd,plain\nNULL,x\n")
	enc, err := ct.in(nil, in, true, rot)
	if err != nil {
		t.Fatal(err)
	}
	var back []byte
	for _, row := range bytes.SplitAfter(enc, []byte("\n")) {
		if len(row) == 0 {
			continue
		}
		if back, err = ct.out(back, row, unrot); err != nil {
			t.Fatal(err)
		}
	}
	if string(back) != "a\\,b\\\\c\\nd,plain\nNULL,x\n" {
		t.Fatalf("round trip gave %q", back)
	}
}

// FuzzCopyText: arbitrary COPY data never panics, and decoding what
// encoding produced gives back the decoded input fields.
func FuzzCopyText(f *testing.F) {
	f.Add([]byte("1\tAnn\\t\\x41\\101\tx\n\\.\n"), byte('\t'))
	f.Add([]byte("a\\"), byte(','))
	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		if delim == '\\' || delim == '\n' || delim == '\r' {
			return
		}
		pc := &policyColumn{}
		ct, err := newCopyText(string([]byte{delim}), "", false, false, []*policyColumn{pc, nil, pc})
		if err != nil {
			return
		}
		ct.in(nil, data, true, rot)
		ct2, _ := newCopyText(string([]byte{delim}), "", false, false, []*policyColumn{pc, nil, pc})
		ct2.out(nil, data, func(_ *policyColumn, dst, v []byte) ([]byte, error) { return append(dst, v...), nil })
	})
}

// FuzzArrays: the array rewriters never panic on client bytes, and the
// text one keeps the number of elements.
func FuzzArrays(f *testing.F) {
	f.Add([]byte(`{a,"b c",NULL,"q\"x"}`))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 'a'})
	f.Add([]byte(`{}`))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 'S', 'E', 'C', 'R', 'E', 'T'}) // an empty binary array, and more
	f.Fuzz(func(t *testing.T, v []byte) {
		wrap := func(dst, _ []byte, k int) ([]byte, error) { return append(dst, "ENV"[:k+1]...), nil }
		for copies := 1; copies <= 2; copies++ {
			if out, err := encryptTextArray(nil, v, copies, wrap); err == nil {
				n := 0
				pgarray.Parse(v, func(_ []byte, null bool) error {
					n++
					if !null {
						n += copies - 1
					}
					return nil
				})
				if bytes.Count(out, []byte(",")) != max(n-1, 0) {
					t.Fatalf("%q became %q with %d copies", v, out, copies)
				}
			}
			out, err := encryptBinaryArray(nil, v, copies, wrap)
			if err == nil && len(out) != 12 && binary.BigEndian.Uint32(v) == 0 {
				t.Fatalf("%x, an empty array, became %x: only its header may be relayed", v, out)
			}
			if err == nil && len(v) >= 20 && binary.BigEndian.Uint32(v) == 1 {
				// The header's element count is the number written.
				n, rest := 0, out[20:]
				for len(rest) >= 4 {
					l := int32(binary.BigEndian.Uint32(rest))
					rest = rest[4:]
					if l > 0 {
						rest = rest[l:]
					}
					n++
				}
				if got := int(binary.BigEndian.Uint32(out[12:])); got != n || len(rest) != 0 {
					t.Fatalf("%x became %x: header says %d elements, %d written", v, out, got, n)
				}
			}
		}
	})
}
