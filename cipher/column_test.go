package cipher

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 100_000/16+1)
	bigUnicode := []byte(strings.Repeat("Ω日🎉", 100_000)) // 100,000 x 3 chars of 2-4 bytes
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	plaintexts := map[string][]byte{
		"empty":       {},
		"nil":         nil,
		"one byte":    {'x'},
		"name":        []byte("John Doe"),
		"unicode":     []byte("José García: 日本語 🎉"),
		"all bytes":   allBytes,
		"invalid utf": {0xff, 0xfe, 0xc3, 0x28},
		"separators":  []byte("v1:AAAAAAAAAAAAAAAA:AAAA==:siv:"),
		"16 bytes":    []byte("0123456789abcdef"),
		"100 KB":      big,
		"300k chars":  bigUnicode,
	}
	for _, mode := range modes {
		for _, ad := range []string{"", "public.clients.first_name", "renamed ✓"} {
			c := testColumn(t, mode, ad)
			for name, pt := range plaintexts {
				t.Run(fmt.Sprintf("%s/%q/%s", mode, ad, name), func(t *testing.T) {
					t.Parallel()
					env := mustEncrypt(t, c, pt)
					if !LooksLikeEnvelope(env) {
						t.Fatalf("envelope %q does not look like one", env)
					}
					if len(env) != EnvelopeLenBytes(len(pt), mode, "v1") {
						t.Errorf("len = %d, EnvelopeLenBytes = %d", len(env), EnvelopeLenBytes(len(pt), mode, "v1"))
					}
					if info, err := Inspect(env); err != nil || info.KeyID != "v1" || info.Mode != mode {
						t.Errorf("Inspect = %+v, %v", info, err)
					}
					got, err := c.Decrypt(nil, env)
					if err != nil {
						t.Fatalf("Decrypt: %v", err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatalf("round trip mismatch (len %d vs %d)", len(got), len(pt))
					}
					if len(pt) >= 4 && bytes.Contains(env, pt) {
						t.Error("envelope contains the plaintext")
					}
				})
			}
		}
	}
	if utf8.RuneCount(bigUnicode) < 100_000 {
		t.Fatal("test data too small")
	}
}

// TestAppendSemantics checks that Encrypt and Decrypt append to dst and
// leave its prefix alone, with and without spare capacity.
func TestAppendSemantics(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		c := testColumn(t, mode, "ad")
		pt := []byte("hello, world")
		for _, capExtra := range []int{0, 10, 1000} {
			prefix := []byte("PREFIX|")
			dst := append(make([]byte, 0, len(prefix)+capExtra), prefix...)
			env, err := c.Encrypt(dst, pt)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(env, prefix) {
				t.Fatalf("%s: Encrypt clobbered dst prefix", mode)
			}
			out, err := c.Decrypt(append(make([]byte, 0, len(prefix)+capExtra), prefix...), env[len(prefix):])
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != "PREFIX|hello, world" {
				t.Fatalf("%s: Decrypt appended %q", mode, out)
			}
			// On error dst comes back with its length unchanged.
			bad := bytes.Clone(env[len(prefix):])
			bad[len(bad)-5] ^= 1
			out, err = c.Decrypt(append(make([]byte, 0, len(prefix)+capExtra), prefix...), bad)
			if err == nil || string(out) != "PREFIX|" {
				t.Fatalf("%s: Decrypt(bad) = %q, %v", mode, out, err)
			}
		}
	}
}

func TestRandomizedNonceUniqueness(t *testing.T) {
	t.Parallel()
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	c := testColumn(t, Randomized, "")
	seen := make(map[[nonceB64Len]byte]struct{}, n)
	envs := make(map[string]struct{}, n)
	var buf []byte
	pt := []byte("same plaintext every time")
	for i := 0; i < n; i++ {
		var err error
		buf, err = c.Encrypt(buf[:0], pt)
		if err != nil {
			t.Fatal(err)
		}
		var nonce [nonceB64Len]byte
		copy(nonce[:], buf[len("v1:"):])
		if _, dup := seen[nonce]; dup {
			t.Fatalf("nonce repeated after %d encryptions", i)
		}
		seen[nonce] = struct{}{}
		envs[string(buf)] = struct{}{}
	}
	if len(envs) != n {
		t.Fatalf("%d distinct envelopes for %d encryptions", len(envs), n)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "v1", "v1", "v2")
	kr2 := testKeyring(t, "v2", "v1", "v2")
	col := func(kr *Keyring, ad string) *Column {
		c, err := kr.Column("c", Deterministic, []byte(ad))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := col(kr, "public.clients.email")
	a2 := col(kr, "public.clients.email")
	b := col(kr, "public.clients.phone")
	none := col(kr, "")
	v2 := col(kr2, "public.clients.email")
	pt := []byte("john@example.com")

	e1, e2, e3 := mustEncrypt(t, a, pt), mustEncrypt(t, a, pt), mustEncrypt(t, a2, pt)
	if !bytes.Equal(e1, e2) || !bytes.Equal(e1, e3) {
		t.Fatal("same plaintext, key and AD gave different envelopes")
	}
	if !bytes.HasPrefix(e1, []byte("v1:siv:")) {
		t.Fatalf("envelope %q lacks v1:siv: prefix", e1)
	}
	if bytes.Equal(e1, mustEncrypt(t, a, []byte("john@example.org"))) {
		t.Fatal("different plaintexts gave equal envelopes")
	}
	for name, other := range map[string][]byte{
		"other AD":    mustEncrypt(t, b, pt),
		"no AD":       mustEncrypt(t, none, pt),
		"other key":   mustEncrypt(t, v2, pt),
		"randomized ": mustEncrypt(t, testColumn(t, Randomized, "public.clients.email"), pt),
	} {
		if bytes.Equal(other[bytes.LastIndexByte(other, ':'):], e1[bytes.LastIndexByte(e1, ':'):]) {
			t.Errorf("%s gave the same ciphertext", name)
		}
	}
	// nil and empty AD are the same.
	if c, _ := kr.Column("c", Deterministic, []byte{}); !bytes.Equal(mustEncrypt(t, c, pt), mustEncrypt(t, none, pt)) {
		t.Error("empty AD differs from nil AD")
	}
}

func TestDecryptErrors(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "v1", "v1", "v2")
	otherKey, err := NewKeyring("v1", map[string]Key{"v1": testKey(t, "not v1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		c, _ := kr.Column("public.clients.first_name", mode, []byte("public.clients.first_name"))
		env := mustEncrypt(t, c, []byte("secret"))
		otherCol, _ := kr.Column("public.clients.last_name", mode, []byte("public.clients.last_name"))
		noAD, _ := kr.Column("legacy", mode, nil)
		wrongKey, _ := otherKey.Column("public.clients.first_name", mode, []byte("public.clients.first_name"))
		i := bytes.LastIndexByte(env, ':')
		tests := []struct {
			name   string
			col    *Column
			env    []byte
			reason Reason
		}{
			{"wrong column AD", otherCol, env, ReasonAuthFailed},
			{"AD none", noAD, env, ReasonAuthFailed},
			{"wrong key material", wrongKey, env, ReasonAuthFailed},
			{"unknown key id", c, append([]byte("v9"), env[2:]...), ReasonUnknownKey},
			{"other known key id", c, append([]byte("v2"), env[2:]...), ReasonAuthFailed},
		}
		for _, tc := range tests {
			_, err := tc.col.Decrypt(nil, tc.env)
			var de *DecryptError
			if !errors.As(err, &de) || de.Reason != tc.reason {
				t.Errorf("%s/%s: err = %v, want reason %v", mode, tc.name, err, tc.reason)
				continue
			}
			wantID := string(tc.env[:2])
			if tc.reason == ReasonUnknownKey {
				wantID = "" // an id the keyring does not have is not echoed
			}
			if de.Column != tc.col.Name() || de.KeyID != wantID {
				t.Errorf("%s/%s: error fields %+v", mode, tc.name, de)
			}
			assertErrorClean(t, err, []byte("secret"), tc.env[i+1:])
		}
		// Non-canonical padding bits.
		payload := env[i+1:]
		if bytes.HasSuffix(payload, []byte("==")) || bytes.HasSuffix(payload, []byte("=")) {
			bad := bytes.Clone(env)
			p := bytes.IndexByte(bad[i+1:], '=') + i + 1 - 1
			bad[p] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[b64Value(bad[p])|1]
			_, err := c.Decrypt(nil, bad)
			var de *DecryptError
			if !errors.As(err, &de) || de.Reason != ReasonMalformed {
				t.Errorf("%s: non-canonical padding: err = %v", mode, err)
			}
		} else {
			t.Errorf("%s: test plaintext should give a padded payload", mode)
		}
	}
}

// assertErrorClean checks that an error message contains neither the
// plaintext nor the ciphertext.
func assertErrorClean(t *testing.T, err error, plaintext, payload []byte) {
	t.Helper()
	msg := err.Error()
	if len(plaintext) >= 4 && strings.Contains(msg, string(plaintext)) {
		t.Errorf("error %q contains the plaintext", msg)
	}
	if len(payload) >= 8 && strings.Contains(msg, string(payload[:8])) {
		t.Errorf("error %q contains ciphertext", msg)
	}
}

// TestTamperEveryByte changes every character of an envelope to every other
// envelope character and truncates and extends it: nothing may decrypt.
func TestTamperEveryByte(t *testing.T) {
	t.Parallel()
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:_.- \n"
	kr := testKeyring(t, "v1", "v1", "v2", "v3")
	for _, mode := range modes {
		for _, pt := range []string{"", "x", "secret value!", "0123456789abcdef0123"} {
			c, _ := kr.Column("public.t.c", mode, []byte("public.t.c"))
			env := mustEncrypt(t, c, []byte(pt))
			check := func(what string, bad []byte) {
				t.Helper()
				out, err := c.Decrypt(nil, bad)
				if err == nil {
					t.Fatalf("%s %q: %s %q decrypted to %q", mode, pt, what, bad, out)
				}
				var de *DecryptError
				if !errors.Is(err, ErrNotEnvelope) && !errors.As(err, &de) {
					t.Fatalf("%s: unexpected error type %T: %v", what, err, err)
				}
				if errors.Is(err, ErrNotEnvelope) == LooksLikeEnvelope(bad) {
					t.Fatalf("%s: ErrNotEnvelope disagrees with LooksLikeEnvelope for %q", what, bad)
				}
				assertErrorClean(t, err, []byte(pt), env[bytes.LastIndexByte(env, ':')+1:])
			}
			for i := range env {
				for j := 0; j < len(chars); j++ {
					if chars[j] == env[i] {
						continue
					}
					bad := bytes.Clone(env)
					bad[i] = chars[j]
					check(fmt.Sprintf("byte %d -> %q", i, chars[j]), bad)
				}
				check(fmt.Sprintf("truncated to %d", i), env[:i])
				check(fmt.Sprintf("byte %d removed", i), append(bytes.Clone(env[:i]), env[i+1:]...))
			}
			for _, suffix := range []string{"A", "AAAA", "====", ":", "\n", " "} {
				check("extended with "+suffix, append(bytes.Clone(env), suffix...))
			}
			if out, err := c.Decrypt(nil, env); err != nil || string(out) != pt {
				t.Fatalf("original no longer decrypts: %v", err)
			}
		}
	}
}

// TestTamperParts names each part of the envelope explicitly.
func TestTamperParts(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "v1", "v1", "v2")
	c, _ := kr.Column("public.t.c", Randomized, []byte("public.t.c"))
	env := string(mustEncrypt(t, c, []byte("secret")))
	parts := strings.Split(env, ":")
	id, nonce, payload := parts[0], parts[1], parts[2]
	raw, _ := base64.StdEncoding.DecodeString(payload)
	flip := func(b []byte, i int) string {
		b = bytes.Clone(b)
		b[i] ^= 0x01
		return base64.StdEncoding.EncodeToString(b)
	}
	rawNonce, _ := base64.StdEncoding.DecodeString(nonce)
	tests := []struct {
		name   string
		env    string
		reason Reason // 0: not an envelope
	}{
		{"key id unknown", "v3:" + nonce + ":" + payload, ReasonUnknownKey},
		{"key id other", "v2:" + nonce + ":" + payload, ReasonAuthFailed},
		{"key id invalid", "v/1:" + nonce + ":" + payload, 0},
		{"nonce bit", id + ":" + flip(rawNonce, 11) + ":" + payload, ReasonAuthFailed},
		{"ciphertext bit", id + ":" + nonce + ":" + flip(raw, 0), ReasonAuthFailed},
		{"tag bit", id + ":" + nonce + ":" + flip(raw, len(raw)-1), ReasonAuthFailed},
		{"tag truncated", id + ":" + nonce + ":" + base64.StdEncoding.EncodeToString(raw[:len(raw)-1]), ReasonAuthFailed},
		{"tag dropped", id + ":" + nonce + ":" + base64.StdEncoding.EncodeToString(raw[:len(raw)-16]), 0},
		{"first separator", id + ";" + nonce + ":" + payload, 0},
		{"second separator", id + ":" + nonce + "|" + payload, 0},
		{"separators swapped for siv", id + ":siv:" + payload, ReasonAuthFailed},
		{"padding removed", id + ":" + nonce + ":" + strings.TrimRight(payload, "="), 0},
		{"padding added", id + ":" + nonce + ":" + payload + "==", 0},
		{"whitespace", " " + env, 0},
	}
	for _, tc := range tests {
		_, err := c.Decrypt(nil, []byte(tc.env))
		if tc.reason == 0 {
			if !errors.Is(err, ErrNotEnvelope) {
				t.Errorf("%s: err = %v, want ErrNotEnvelope", tc.name, err)
			}
			continue
		}
		var de *DecryptError
		if !errors.As(err, &de) || de.Reason != tc.reason {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.reason)
		}
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old := testKeyring(t, "v1", "v1")
	rotated := testKeyring(t, "v2", "v1", "v2")
	for _, mode := range modes {
		cOld, _ := old.Column("c", mode, []byte("ad"))
		cNew, _ := rotated.Column("c", mode, []byte("ad"))
		envOld := mustEncrypt(t, cOld, []byte("value"))
		envNew := mustEncrypt(t, cNew, []byte("value"))
		if !bytes.HasPrefix(envOld, []byte("v1:")) || !bytes.HasPrefix(envNew, []byte("v2:")) {
			t.Fatalf("%s: envelopes %q / %q", mode, envOld, envNew)
		}
		for _, env := range [][]byte{envOld, envNew} {
			if pt, err := cNew.Decrypt(nil, env); err != nil || string(pt) != "value" {
				t.Fatalf("%s: rotated keyring cannot read %q: %v", mode, env, err)
			}
		}
		// The old keyring cannot read the new key.
		var de *DecryptError
		if _, err := cOld.Decrypt(nil, envNew); !errors.As(err, &de) || de.Reason != ReasonUnknownKey || de.KeyID != "" {
			t.Fatalf("%s: old keyring on new envelope: %v", mode, err)
		}
		if cur, err := cNew.IsCurrent(envOld); err != nil || cur {
			t.Errorf("%s: IsCurrent(old) = %v, %v", mode, cur, err)
		}
		if cur, err := cNew.IsCurrent(envNew); err != nil || !cur {
			t.Errorf("%s: IsCurrent(new) = %v, %v", mode, cur, err)
		}
		if cur, err := cOld.IsCurrent(envNew); !errors.As(err, &de) || cur {
			t.Errorf("%s: IsCurrent(unknown) = %v, %v", mode, cur, err)
		}
		if _, err := cNew.IsCurrent([]byte("plain")); !errors.Is(err, ErrNotEnvelope) {
			t.Errorf("%s: IsCurrent(plain) = %v", mode, err)
		}
	}
	// A mode change makes values non-current but still readable.
	rnd, _ := rotated.Column("c", Randomized, []byte("ad"))
	det, _ := rotated.Column("c", Deterministic, []byte("ad"))
	envR := mustEncrypt(t, rnd, []byte("value"))
	if cur, _ := det.IsCurrent(envR); cur {
		t.Error("randomized envelope is current for a deterministic column")
	}
	if pt, err := det.Decrypt(nil, envR); err != nil || string(pt) != "value" {
		t.Errorf("deterministic column cannot read randomized envelope: %v", err)
	}
}

func TestNotEnvelopePassthrough(t *testing.T) {
	t.Parallel()
	c := testColumn(t, Randomized, "")
	for _, s := range []string{"", "John Doe", "v1:", "v1:abc:def", "re: call me: later", "v1:siv:short=="} {
		out, err := c.Decrypt([]byte("keep"), []byte(s))
		if !errors.Is(err, ErrNotEnvelope) || string(out) != "keep" {
			t.Errorf("Decrypt(%q) = %q, %v; want ErrNotEnvelope", s, out, err)
		}
		if err.Error() != ErrNotEnvelope.Error() {
			t.Errorf("ErrNotEnvelope message carries data: %q", err)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  DecryptError
		want string
	}{
		{DecryptError{"public.a.b", "v9", ReasonUnknownKey}, `cipher: cannot decrypt value of column "public.a.b": unknown key id "v9" (not in the keyring)`},
		{DecryptError{"public.a.b", "v1", ReasonMalformed}, `cipher: cannot decrypt value of column "public.a.b": malformed envelope under key id "v1"`},
		{DecryptError{"public.a.b", "v1", ReasonAuthFailed}, `cipher: cannot decrypt value of column "public.a.b": authentication failed under key id "v1" (wrong key, tampered value, or value from another column)`},
		{DecryptError{"c", "v1", 99}, `cipher: cannot decrypt value of column "c" under key id "v1": reason(99)`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	wrapped := fmt.Errorf("proxy: row 3: %w", &DecryptError{Column: "x", KeyID: "v1", Reason: ReasonAuthFailed})
	var de *DecryptError
	if !errors.As(wrapped, &de) || de.Reason.String() != "authentication failed" {
		t.Fatal("errors.As through wrapping failed")
	}
	if Randomized.String() != "randomized" || Deterministic.String() != "deterministic" || Mode(9).String() != "mode(9)" {
		t.Error("Mode.String")
	}
}

func TestEncryptTooLong(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("allocates 768 MiB")
	}
	c := testColumn(t, Randomized, "")
	pt := make([]byte, MaxPlaintextLen+1)
	if _, err := c.Encrypt(nil, pt); err == nil || strings.Contains(err.Error(), "\x00\x00") {
		t.Fatalf("Encrypt(too long) = %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "v2", "v1", "v2")
	cols := []*Column{}
	for _, mode := range modes {
		c, _ := kr.Column("c", mode, []byte("ad"))
		cols = append(cols, c)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var enc, dec []byte
			for i := 0; i < 500; i++ {
				c := cols[(g+i)%len(cols)]
				pt := fmt.Appendf(nil, "goroutine %d value %d", g, i)
				var err error
				if enc, err = c.Encrypt(enc[:0], pt); err != nil {
					errs <- err
					return
				}
				if dec, err = c.Decrypt(dec[:0], enc); err != nil || !bytes.Equal(dec, pt) {
					errs <- fmt.Errorf("round trip failed: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEqualityEnvelopes(t *testing.T) {
	t.Parallel()
	old := testKeyring(t, "v1", "v1")
	rotating := testKeyring(t, "v2", "v1", "v2", "v3")
	cOld, _ := old.Column("c", Deterministic, []byte("ad"))
	c, _ := rotating.Column("c", Deterministic, []byte("ad"))
	pt := []byte("john@example.com")
	envs, err := c.EqualityEnvelopes(pt)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 3 || !bytes.Equal(envs[0], mustEncrypt(t, c, pt)) {
		t.Fatalf("EqualityEnvelopes = %q", envs)
	}
	// A value written before the rotation matches one of them.
	written := mustEncrypt(t, cOld, pt)
	found := false
	for _, e := range envs {
		found = found || bytes.Equal(e, written)
		if got, err := c.Decrypt(nil, e); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Decrypt(%q) = %v", e, err)
		}
	}
	if !found {
		t.Fatal("the old-key envelope is not among the search envelopes")
	}
	if _, err := testColumn(t, Randomized, "").EqualityEnvelopes(pt); err == nil {
		t.Fatal("EqualityEnvelopes on a randomized column succeeded")
	}
}
