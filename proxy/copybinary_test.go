package proxy

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// binCopy builds binary COPY data: the header, then rows whose fields are
// strings (nil for NULL), then the trailer.
func binCopy(ext []byte, rows ...[]*string) []byte {
	b := append([]byte(nil), copyBinarySignature...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ext)))
	b = append(b, ext...)
	for _, r := range rows {
		b = binary.BigEndian.AppendUint16(b, uint16(len(r)))
		for _, f := range r {
			if f == nil {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(*f)))
			b = append(b, *f...)
		}
	}
	return binary.BigEndian.AppendUint16(b, 0xffff)
}

func sp(s string) *string { return &s }

func TestCopyBinary(t *testing.T) {
	pc := &policyColumn{}
	cols := []*policyColumn{nil, pc, nil}
	big := strings.Repeat("x", 70000)
	tests := []struct {
		name    string
		in, out []byte
	}{
		{"rows", binCopy(nil, []*string{sp("1"), sp("Ann"), sp("a")}, []*string{sp("2"), sp("Bob"), sp("b")}),
			binCopy(nil, []*string{sp("1"), sp("[Ann]"), sp("a")}, []*string{sp("2"), sp("[Bob]"), sp("b")})},
		{"NULL and empty", binCopy(nil, []*string{nil, nil, nil}, []*string{sp(""), sp(""), sp("")}),
			binCopy(nil, []*string{nil, nil, nil}, []*string{sp(""), sp("[]"), sp("")})},
		{"header extension kept", binCopy([]byte("ext!"), []*string{sp("1"), sp("é\x00\xff"), nil}),
			binCopy([]byte("ext!"), []*string{sp("1"), sp("[é\x00\xff]"), nil})},
		{"long value", binCopy(nil, []*string{sp("1"), sp(big), sp(big)}),
			binCopy(nil, []*string{sp("1"), sp("[" + big + "]"), sp(big)})},
		{"no rows", binCopy(nil), binCopy(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every split of the stream into two messages gives the same
			// bytes, and decrypting gives back the input.
			step := 1
			if len(tc.in) > 1000 {
				step = 997
			}
			for cut := 0; cut <= len(tc.in); cut += step {
				cb := newCopyBinary(cols)
				out, err := cb.in(nil, tc.in[:cut], false, rot)
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if out, err = cb.in(out, tc.in[cut:], true, rot); err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if !bytes.Equal(out, tc.out) {
					t.Fatalf("cut %d: got %q, want %q", cut, out, tc.out)
				}
				back, err := newCopyBinary(cols).out(nil, out, unrot)
				if err != nil || !bytes.Equal(back, tc.in) {
					t.Fatalf("cut %d: out gave %q, %v", cut, back, err)
				}
			}
		})
	}
}

func TestCopyBinaryRefuses(t *testing.T) {
	cols := []*policyColumn{nil, {}}
	withOIDs := binCopy(nil)
	binary.BigEndian.PutUint32(withOIDs[11:], 1<<16)
	unknownFlag := binCopy(nil)
	binary.BigEndian.PutUint32(unknownFlag[11:], 1<<20)
	badLen := binCopy(nil, []*string{sp("1"), sp("x")})
	binary.BigEndian.PutUint32(badLen[19+2:], 0xfffffff0)
	full := binCopy(nil, []*string{sp("1"), sp("Ann")})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"text data", []byte("1\tAnn\n"), "signature is missing"},
		{"WITH OIDS", withOIDs, "WITH OIDS"},
		{"unknown critical flag", unknownFlag, "critical flags"},
		{"wrong field count", binCopy(nil, []*string{sp("1")}), "1 fields where the COPY lists 2"},
		{"negative length", badLen, "length -16"},
		{"ends inside a row", full[:len(full)-4], "ends inside a row"},
		{"data after the trailer", append(binCopy(nil), full[19:]...), "follows the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newCopyBinary(cols).in(nil, tc.data, true, rot)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// FuzzCopyBinary: any bytes, split anywhere, give an error or a stream in
// which no policy field crossed unrewritten; never a panic.
func FuzzCopyBinary(f *testing.F) {
	f.Add(binCopy(nil, []*string{sp("1"), sp("Ann")}, []*string{nil, sp("")}), 7)
	f.Add(binCopy([]byte("e"), []*string{sp("1"), nil}), 0)
	f.Add([]byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 3)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		cols := []*policyColumn{nil, {}}
		cb := newCopyBinary(cols)
		out, err := cb.in(nil, data[:cut], false, rot)
		if err != nil {
			return
		}
		if out, err = cb.in(out, data[cut:], true, rot); err != nil {
			return
		}
		// Read the output back: every policy field must be wrapped.
		check := newCopyBinary(cols)
		if _, err := check.out(nil, out, func(_ *policyColumn, dst, v []byte) ([]byte, error) {
			if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
				t.Fatalf("a policy field crossed unrewritten: %q", v)
			}
			return dst, nil
		}); err != nil {
			t.Fatalf("the rewritten stream does not parse: %v", err)
		}
	})
}
