package cipher

import (
	"math"
	"strings"
	"testing"
)

func TestEnvelopeLenBytesExact(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"v1", "k-2025.06_b", strings.Repeat("x", MaxKeyIDLen)} {
		kr := testKeyring(t, id, id)
		for _, mode := range modes {
			c, _ := kr.Column("c", mode, []byte("ad"))
			for n := 0; n <= 300; n++ {
				env := mustEncrypt(t, c, make([]byte, n))
				if got := EnvelopeLenBytes(n, mode, id); got != len(env) {
					t.Fatalf("%s/%s/%d: EnvelopeLenBytes = %d, actual %d", id, mode, n, got, len(env))
				}
			}
			for _, n := range []int{1000, 4095, 10_000, 65_536} {
				if got, want := EnvelopeLenBytes(n, mode, id), len(mustEncrypt(t, c, make([]byte, n))); got != want {
					t.Fatalf("%s/%s/%d: EnvelopeLenBytes = %d, actual %d", id, mode, n, got, want)
				}
			}
		}
	}
	if EnvelopeLenBytes(10, Randomized, "") != EnvelopeLenBytes(10, Randomized, strings.Repeat("x", 32)) {
		t.Error(`keyID "" is not the worst case`)
	}
	if EnvelopeLenBytes(10, Randomized, "v1")-EnvelopeLenBytes(10, Deterministic, "v1") != 13 {
		t.Error("randomized should be 13 characters longer")
	}
}

// TestEnvelopeLenChars encrypts strings of maxChars characters of each UTF-8
// width: the envelope never exceeds EnvelopeLen and reaches it for 4-byte
// characters.
func TestEnvelopeLenChars(t *testing.T) {
	t.Parallel()
	c := testColumn(t, Randomized, "public.clients.first_name")
	for _, maxChars := range []int{0, 1, 2, 3, 50, 255, 1000} {
		limit := EnvelopeLen(maxChars, Randomized, "v1")
		for _, ch := range []string{"a", "é", "日", "🎉"} {
			for _, n := range []int{maxChars, maxChars / 2} {
				env := mustEncrypt(t, c, []byte(strings.Repeat(ch, n)))
				if len(env) > limit {
					t.Fatalf("%d x %q: envelope %d > EnvelopeLen(%d) = %d", n, ch, len(env), maxChars, limit)
				}
				if ch == "🎉" && n == maxChars && len(env) != limit {
					t.Fatalf("%d x 4-byte char: envelope %d != EnvelopeLen %d", n, len(env), limit)
				}
			}
		}
	}
	// The seed's section 3.4 approximation underestimates multi-byte text.
	seed := func(n int) int { return int(float64(n+28)*4/3) + 30 }
	if EnvelopeLen(255, Randomized, "v1") <= seed(255) {
		t.Error("expected the exact UTF-8 bound to exceed the seed's ASCII approximation")
	}
	if got := EnvelopeLenBytes(255, Randomized, "v1"); got != 384 || got > seed(255) {
		t.Errorf("EnvelopeLenBytes(255) = %d, want 384 (seed approximates %d)", got, seed(255))
	}
}

func TestEnvelopeLenLimits(t *testing.T) {
	t.Parallel()
	if got := EnvelopeLenBytes(MaxPlaintextLen, Randomized, ""); got > 1<<30 || got < 0 {
		t.Errorf("envelope of MaxPlaintextLen = %d, want <= 1 GiB", got)
	}
	if EnvelopeLen(10485760, Randomized, "") <= 0 || math.MaxInt32 < 0 {
		t.Error("overflow for varchar's maximum length")
	}
	for _, f := range []func(){
		func() { EnvelopeLen(-1, Randomized, "v1") },
		func() { EnvelopeLenBytes(-1, Randomized, "v1") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("negative length did not panic")
				}
			}()
			f()
		}()
	}
}
