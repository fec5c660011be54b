package wire

import (
	"bytes"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the framer: it must return messages
// whose sizes add up to what it consumed, or an error, and never panic or
// allocate past its limit.
func FuzzReader(f *testing.F) {
	f.Add(frame('Q', "select 1\x00"))
	f.Add(append(frame('P', "\x00select $1\x00\x00\x00"), frame('S', "")...))
	f.Add([]byte{'Q', 0, 0, 0, 3})
	f.Add([]byte{'d', 0x7f, 0xff, 0xff, 0xff, 1, 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 16
		r := NewReader(bytes.NewReader(data), limit)
		consumed := 0
		for {
			typ, n, err := r.Header()
			if err != nil {
				break
			}
			if n > limit {
				t.Fatalf("message %q of %d bytes passed the limit", typ, n)
			}
			var body []byte
			if n%2 == 0 {
				body, err = r.Body(n)
			} else {
				var b bytes.Buffer
				err = r.CopyBody(&b, n)
				body = b.Bytes()
			}
			if err != nil {
				break
			}
			if len(body) != n {
				t.Fatalf("body %d bytes, header said %d", len(body), n)
			}
			consumed += 5 + n
		}
		if consumed > len(data) {
			t.Fatalf("consumed %d of %d bytes", consumed, len(data))
		}
	})
}

// FuzzReadStartup checks the startup packet parser on arbitrary input.
func FuzzReadStartup(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f})
	f.Add([]byte{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Add([]byte{0, 0, 0, 9, 0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, pkt, err := ReadStartup(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(pkt) < 8 || len(pkt) > MaxStartupPacket || len(pkt) > len(data) {
			t.Fatalf("packet of %d bytes from %d bytes of input", len(pkt), len(data))
		}
	})
}
