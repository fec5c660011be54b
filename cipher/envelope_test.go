package cipher

import (
	"errors"
	"strings"
	"testing"
)

func TestLooksLikeEnvelope(t *testing.T) {
	t.Parallel()
	n16 := "AAECAwQFBgcICQoL"                // 12 bytes
	p16 := "AAECAwQFBgcICQoLDA0ODw=="        // 16 bytes
	p17 := "AAECAwQFBgcICQoLDA0ODxA="        // 17 bytes
	p18 := "AAECAwQFBgcICQoLDA0ODxAR"        // 18 bytes, no padding
	p15 := "AAECAwQFBgcICQoLDA0O"            // 15 bytes
	id32 := strings.Repeat("k", MaxKeyIDLen) // longest id
	tests := []struct {
		in   string
		want bool
		mode Mode
	}{
		{"v1:" + n16 + ":" + p16, true, Randomized},
		{"v1:" + n16 + ":" + p17, true, Randomized},
		{"v1:" + n16 + ":" + p18, true, Randomized},
		{"v1:siv:" + p16, true, Deterministic},
		{"siv:siv:" + p16, true, Deterministic},
		{id32 + ":" + n16 + ":" + p16, true, Randomized},
		{"a.b-c_D9:" + n16 + ":" + p16, true, Randomized},
		{"v9:" + n16 + ":" + p16, true, Randomized}, // unknown ids are still envelopes

		{"", false, 0},
		{"plain text", false, 0},
		{"v1:" + n16 + ":" + p15, false, 0},              // ct < 16 bytes
		{"v1:siv:" + p15, false, 0},                      // siv < 16 bytes
		{id32 + "k:" + n16 + ":" + p16, false, 0},        // id too long
		{":" + n16 + ":" + p16, false, 0},                // empty id
		{"v 1:" + n16 + ":" + p16, false, 0},             // bad id char
		{"v1:" + n16[:15] + ":" + p16, false, 0},         // short nonce
		{"v1:" + n16 + "A:" + p16, false, 0},             // long nonce
		{"v1:" + n16[:14] + "==:" + p16, false, 0},       // padded nonce
		{"v1:SIV:" + p16, false, 0},                      // marker case
		{"v1:" + n16 + ":" + p16[:len(p16)-1], false, 0}, // not multiple of 4
		{"v1:" + n16 + ":" + p16 + "\n", false, 0},       // trailing newline
		{"v1:" + n16 + ":" + p16[:8] + "\n" + p16[8:], false, 0},
		{"v1:" + n16 + ":" + "=" + p16[1:], false, 0},     // '=' first
		{"v1:" + n16 + ":" + p18[:20] + "A===", false, 0}, // three '='
		{"v1:" + n16 + ":" + p16 + ":", false, 0},         // extra separator
		{"v1;" + n16 + ":" + p16, false, 0},               // wrong separator
		{"v1:" + n16 + ";" + p16, false, 0},
		{"v1:" + n16 + ":" + strings.ReplaceAll(p18, "A", "-"), false, 0}, // url-safe
		{"v1:" + n16 + ":" + p16[:22], false, 0},                          // padding stripped
		{"v1:" + n16 + ":" + p16 + p16, false, 0},                         // padding mid-way
	}
	for _, tc := range tests {
		got := LooksLikeEnvelope([]byte(tc.in))
		if got != tc.want {
			t.Errorf("LooksLikeEnvelope(%q) = %v, want %v", tc.in, got, tc.want)
			continue
		}
		info, err := Inspect([]byte(tc.in))
		if !tc.want {
			if !errors.Is(err, ErrNotEnvelope) {
				t.Errorf("Inspect(%q) err = %v, want ErrNotEnvelope", tc.in, err)
			}
			continue
		}
		if err != nil || info.Mode != tc.mode || info.KeyID != tc.in[:strings.IndexByte(tc.in, ':')] {
			t.Errorf("Inspect(%q) = %+v, %v", tc.in, info, err)
		}
	}
}

func TestCanonicalB64(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"AAAA", true}, {"AAA=", true}, {"AAB=", false}, {"AA==", true}, {"AB==", false}, {"AQ==", true}, {"AR==", false},
		{"//8=", true}, {"//9=", false}, {"/w==", true}, {"/x==", false},
	} {
		if got := canonicalB64([]byte(tc.in)); got != tc.want {
			t.Errorf("canonicalB64(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	// b64Value inverts the alphabet.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range len(alphabet) {
		if b64Value(alphabet[i]) != byte(i) {
			t.Fatalf("b64Value(%q) = %d", alphabet[i], b64Value(alphabet[i]))
		}
	}
}
