package cipher

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecrypt feeds arbitrary values to Decrypt. Properties: no panic;
// ErrNotEnvelope exactly when LooksLikeEnvelope is false; any other error is
// a *DecryptError that does not contain the ciphertext; and a value that
// decrypts is the unique encoding of its plaintext (re-encrypting with the
// same key and nonce gives the same bytes), so no malleable variant of an
// envelope is accepted.
func FuzzDecrypt(f *testing.F) {
	kr := testKeyring(f, "v1", "v1", "v2")
	c, err := kr.Column("public.t.c", Randomized, []byte("public.t.c"))
	if err != nil {
		f.Fatal(err)
	}
	det, _ := kr.Column("public.t.c", Deterministic, []byte("public.t.c"))
	for _, col := range []*Column{c, det} {
		for _, pt := range []string{"", "x", "John Doe", "José 🎉", "0123456789abcdef"} {
			env := mustEncrypt(f, col, []byte(pt))
			f.Add(env)
			f.Add(env[:len(env)-1])
			f.Add(append(bytes.Clone(env), '\n'))
			bad := bytes.Clone(env)
			bad[len(bad)/2] ^= 1
			f.Add(bad)
			f.Add(append([]byte("v9"), env[2:]...))
		}
	}
	for _, s := range []string{"", "plain", "v1:", "v1::", "v1:siv:", "v1:siv:AAAAAAAAAAAAAAAAAAAAAA==",
		"v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==", "v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAB==",
		"v1:AAAAAAAAAAAAAAAA:====", ":::", "v1:siv:AAAAAAAAAAAAAAAAAAAA\nAA=="} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile(filepath.Join("testdata", "vectors.json")); err == nil {
		var vf vectorFile
		if json.Unmarshal(data, &vf) == nil {
			for _, fv := range vf.Failures {
				f.Add([]byte(fv.Envelope))
			}
			for _, s := range vf.NotEnvelopes {
				f.Add([]byte(s))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, col := range []*Column{c, det} {
			out, err := col.Decrypt(nil, data)
			e, looks := parseEnvelope(data)
			if looks != LooksLikeEnvelope(data) {
				t.Fatal("parseEnvelope and LooksLikeEnvelope disagree")
			}
			if errors.Is(err, ErrNotEnvelope) == looks {
				t.Fatalf("ErrNotEnvelope = %v but LooksLikeEnvelope = %v", errors.Is(err, ErrNotEnvelope), looks)
			}
			if err == nil {
				kv := kr.keys[string(e.keyID)]
				var again []byte
				if e.mode == Deterministic {
					again, err = col.encryptSIV(nil, kv, out)
					if err != nil {
						t.Fatal(err)
					}
				} else {
					nonce, nerr := base64.StdEncoding.DecodeString(string(e.nonce))
					if nerr != nil {
						t.Fatal(nerr)
					}
					again = col.sealGCM(nil, kv, out, nonce)
				}
				if !bytes.Equal(again, data) {
					t.Fatalf("accepted a non-canonical envelope %q (canonical %q)", data, again)
				}
				continue
			}
			if !looks {
				continue
			}
			var de *DecryptError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is neither ErrNotEnvelope nor *DecryptError", err, err)
			}
			wantID := string(e.keyID)
			if kr.keys[wantID] == nil {
				wantID = "" // not echoed: the value may be plaintext
				if len(e.keyID) >= 8 && bytes.Contains([]byte(err.Error()), e.keyID) {
					t.Fatalf("error %q names a key id the keyring does not have", err)
				}
			}
			if de.Reason < ReasonUnknownKey || de.Reason > ReasonAuthFailed || de.KeyID != wantID {
				t.Fatalf("bad DecryptError %+v", de)
			}
			if bytes.Contains([]byte(err.Error()), append([]byte{':'}, e.payload...)) {
				t.Fatalf("error %q contains the ciphertext", err)
			}
			if len(out) != 0 {
				t.Fatal("output on error")
			}
		}
	})
}

// FuzzEncrypt checks the round trip and the exact length for arbitrary
// plaintexts and associated data in both modes.
func FuzzEncrypt(f *testing.F) {
	kr := testKeyring(f, "k-2025.06_b", "v1", "k-2025.06_b")
	f.Add([]byte(""), false, "")
	f.Add([]byte("John Doe"), true, "public.clients.email")
	f.Add([]byte("José García: 日本語 🎉"), false, "renamed ✓")
	f.Add([]byte{0, 0xff, 0xc3, 0x28}, true, "")
	f.Add(bytes.Repeat([]byte("A"), 1000), false, "public.t.c")
	f.Fuzz(func(t *testing.T, pt []byte, deterministic bool, ad string) {
		mode := Randomized
		if deterministic {
			mode = Deterministic
		}
		c, err := kr.Column("c", mode, []byte(ad))
		if err != nil {
			t.Fatal(err)
		}
		env, err := c.Encrypt([]byte("prefix"), pt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(env, []byte("prefix")) {
			t.Fatal("prefix clobbered")
		}
		env = env[len("prefix"):]
		if len(env) != EnvelopeLenBytes(len(pt), mode, "k-2025.06_b") {
			t.Fatalf("len %d, EnvelopeLenBytes %d", len(env), EnvelopeLenBytes(len(pt), mode, "k-2025.06_b"))
		}
		if !LooksLikeEnvelope(env) {
			t.Fatalf("%q does not look like an envelope", env)
		}
		if cur, err := c.IsCurrent(env); err != nil || !cur {
			t.Fatalf("IsCurrent = %v, %v", cur, err)
		}
		got, err := c.Decrypt(nil, env)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip: %v", err)
		}
		env2 := mustEncrypt(t, c, pt)
		if deterministic != bytes.Equal(env, env2) {
			t.Fatalf("deterministic=%v but second encryption equal=%v", deterministic, bytes.Equal(env, env2))
		}
	})
}
