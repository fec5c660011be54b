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

// FindEnvelope finds envelopes of both modes inside a server's message
// texts, whatever delimits them, and nothing in texts without one.
func TestFindEnvelope(t *testing.T) {
	var envs []string
	for _, mode := range []Mode{Randomized, Deterministic} {
		env, err := testColumn(t, mode, "").Encrypt(nil, []byte("secret value"))
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, string(env))
	}
	for _, env := range envs {
		for _, form := range []string{
			"Failing row contains (7, %s, null).",
			"Key (email)=(%s) already exists.",
			`COPY clients, line 1: "%s	x"`,
			"%s",
			"x%s",         // a key id run starting earlier is taken whole
			"line: %s...", // cut short below
			"cut: %s...",  // cut just after the nonce field
		} {
			quoted := env
			if strings.HasPrefix(form, "line") {
				quoted = env[:len(env)/2]
			}
			if strings.HasPrefix(form, "cut") {
				quoted = env[:strings.LastIndexByte(env, ':')]
			}
			text := strings.Replace(form, "%s", quoted, 1)
			s, e := FindEnvelope([]byte(text))
			if s < 0 || !strings.Contains(text[s:e], quoted) || strings.Contains(text[:s]+text[e:], quoted[len(quoted)-4:]) {
				t.Errorf("%q: found [%d:%d]", text, s, e)
			}
		}
	}
	for _, text := range []string{"", "a:b:c", "time 10:30:00", "see https://example.org:8080/x", ":siv:AAAA", "v1:sivx:AAAA"} {
		if s, e := FindEnvelope([]byte(text)); s >= 0 {
			t.Errorf("%q: found %q", text, text[s:e])
		}
	}
}

// Damaged tells an envelope cut short from plaintext that happens to hold
// colons.
func TestDamaged(t *testing.T) {
	for _, mode := range []Mode{Randomized, Deterministic} {
		c := testColumn(t, mode, "")
		env, err := c.Encrypt(nil, []byte("secret value"))
		if err != nil {
			t.Fatal(err)
		}
		cut := env[:len(env)-5]
		if _, err := c.Decrypt(nil, cut); !errors.Is(err, ErrNotEnvelope) {
			t.Fatalf("%s: a cut envelope decrypts as %v", mode, err)
		}
		var de *DecryptError
		if err := c.Damaged(cut); !errors.As(err, &de) || de.Reason != ReasonMalformed {
			t.Errorf("%s: Damaged(cut) = %v", mode, err)
		}
		for _, plain := range []string{"hello", "a:b:c", "v1:", "v1:siv", "v9:siv:AAAA", "time 10:30:00"} {
			if err := c.Damaged([]byte(plain)); err != nil {
				t.Errorf("%s: Damaged(%q) = %v", mode, plain, err)
			}
		}
	}
}
