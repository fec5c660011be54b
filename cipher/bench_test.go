package cipher

import (
	"fmt"
	"testing"
)

var benchSizes = []struct {
	name string
	n    int
}{{"16B", 16}, {"1KB", 1024}, {"10KB", 10 * 1024}}

func benchColumn(b *testing.B, mode Mode) *Column {
	b.Helper()
	c, err := testKeyring(b, "v1", "v1", "v2").Column("public.clients.medical_history", mode, []byte("public.clients.medical_history"))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchPlaintext(n int) []byte {
	pt := make([]byte, n)
	for i := range pt {
		pt[i] = byte('a' + i%26)
	}
	return pt
}

// BenchmarkEncrypt measures Encrypt into a reused buffer, as the proxy does.
func BenchmarkEncrypt(b *testing.B) {
	for _, mode := range modes {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", mode, sz.name), func(b *testing.B) {
				c := benchColumn(b, mode)
				pt := benchPlaintext(sz.n)
				dst := make([]byte, 0, 2*EnvelopeLenBytes(sz.n, mode, "v1"))
				b.ReportAllocs()
				b.SetBytes(int64(sz.n))
				for b.Loop() {
					var err error
					if dst, err = c.Encrypt(dst[:0], pt); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDecrypt measures Decrypt into a reused buffer.
func BenchmarkDecrypt(b *testing.B) {
	for _, mode := range modes {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", mode, sz.name), func(b *testing.B) {
				c := benchColumn(b, mode)
				env := mustEncrypt(b, c, benchPlaintext(sz.n))
				dst := make([]byte, 0, len(env)+64)
				b.ReportAllocs()
				b.SetBytes(int64(sz.n))
				for b.Loop() {
					var err error
					if dst, err = c.Decrypt(dst[:0], env); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRoundTrip is Encrypt followed by Decrypt (the 1 KB randomized
// case has a 3 µs budget on a 2-core machine).
func BenchmarkRoundTrip(b *testing.B) {
	for _, mode := range modes {
		for _, sz := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", mode, sz.name), func(b *testing.B) {
				c := benchColumn(b, mode)
				pt := benchPlaintext(sz.n)
				enc := make([]byte, 0, 2*EnvelopeLenBytes(sz.n, mode, "v1"))
				dec := make([]byte, 0, 2*EnvelopeLenBytes(sz.n, mode, "v1"))
				b.ReportAllocs()
				b.SetBytes(int64(sz.n))
				for b.Loop() {
					var err error
					if enc, err = c.Encrypt(enc[:0], pt); err != nil {
						b.Fatal(err)
					}
					if dec, err = c.Decrypt(dec[:0], enc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLooksLikeEnvelope measures the plaintext-or-envelope check.
func BenchmarkLooksLikeEnvelope(b *testing.B) {
	env := mustEncrypt(b, benchColumn(b, Randomized), benchPlaintext(1024))
	b.ReportAllocs()
	b.SetBytes(int64(len(env)))
	for b.Loop() {
		if !LooksLikeEnvelope(env) {
			b.Fatal("not an envelope")
		}
	}
}
