package cipher

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vectorFile is the schema of testdata/vectors.json (written by
// testdata/gen_vectors.py) and of the file TestPythonDecryptsGo hands to
// testdata/check_go_vectors.py.
type vectorFile struct {
	Comment      string            `json:"comment,omitempty"`
	Keys         map[string]string `json:"keys"`
	HKDFSIVKeys  map[string]string `json:"hkdf_siv_keys_hex,omitempty"`
	Vectors      []vector          `json:"vectors"`
	Failures     []failureVector   `json:"failures,omitempty"`
	NotEnvelopes []string          `json:"not_envelopes,omitempty"`
}

type vector struct {
	Name         string  `json:"name"`
	Mode         string  `json:"mode"`
	KeyID        string  `json:"key_id"`
	AD           *string `json:"ad"`
	PlaintextB64 string  `json:"plaintext_b64"`
	NonceB64     string  `json:"nonce_b64,omitempty"`
	Envelope     string  `json:"envelope"`
}

type failureVector struct {
	Name     string  `json:"name"`
	Envelope string  `json:"envelope"`
	AD       *string `json:"ad"`
	Reason   string  `json:"reason"`
}

func adBytes(ad *string) []byte {
	if ad == nil {
		return nil
	}
	return []byte(*ad)
}

func parseMode(t *testing.T, s string) Mode {
	t.Helper()
	switch s {
	case "randomized":
		return Randomized
	case "deterministic":
		return Deterministic
	}
	t.Fatalf("unknown mode %q", s)
	return 0
}

// keyringsFor returns, for each key id, a keyring holding all keys with that
// id active.
func keyringsFor(t *testing.T, keysB64 map[string]string) map[string]*Keyring {
	t.Helper()
	keys := make(map[string]Key, len(keysB64))
	for id, b := range keysB64 {
		k, err := ParseKey(b)
		if err != nil {
			t.Fatalf("key %s: %v", id, err)
		}
		keys[id] = k
	}
	out := make(map[string]*Keyring, len(keys))
	for id := range keys {
		kr, err := NewKeyring(id, keys)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = kr
	}
	return out
}

// TestPythonVectors decrypts every envelope made by Python's cryptography,
// re-creates each byte for byte, and checks the negative cases.
func TestPythonVectors(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) < 100 || len(vf.Failures) == 0 || len(vf.NotEnvelopes) == 0 {
		t.Fatalf("vectors.json looks truncated: %d vectors", len(vf.Vectors))
	}
	krs := keyringsFor(t, vf.Keys)

	for id, want := range vf.HKDFSIVKeys {
		k, _ := ParseKey(vf.Keys[id])
		got, err := deriveSIVKey(k)
		if err != nil || hex.EncodeToString(got) != want {
			t.Errorf("HKDF SIV key for %s = %x, want %s", id, got, want)
		}
	}

	seen := map[Mode]int{}
	for _, v := range vf.Vectors {
		mode := parseMode(t, v.Mode)
		seen[mode]++
		kr := krs[v.KeyID]
		c, err := kr.Column(v.Name, mode, adBytes(v.AD))
		if err != nil {
			t.Fatal(err)
		}
		want, err := base64.StdEncoding.DecodeString(v.PlaintextB64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decrypt(nil, []byte(v.Envelope))
		if err != nil {
			t.Errorf("%s: Decrypt: %v", v.Name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: wrong plaintext", v.Name)
		}
		// Go must produce the same envelope.
		var again []byte
		if mode == Deterministic {
			again, err = c.Encrypt(nil, want)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			nonce, err := base64.StdEncoding.DecodeString(v.NonceB64)
			if err != nil || len(nonce) != nonceSize {
				t.Fatalf("%s: bad nonce in vector", v.Name)
			}
			again = c.sealGCM(nil, kr.active, want, nonce)
		}
		if string(again) != v.Envelope {
			t.Errorf("%s: Go envelope differs from Python's:\n go: %.80s\n py: %.80s", v.Name, again, v.Envelope)
		}
		if n := len(want); len(v.Envelope) != EnvelopeLenBytes(n, mode, v.KeyID) {
			t.Errorf("%s: EnvelopeLenBytes(%d) = %d, Python envelope has %d", v.Name, n, EnvelopeLenBytes(n, mode, v.KeyID), len(v.Envelope))
		}
	}
	if seen[Randomized] == 0 || seen[Deterministic] == 0 {
		t.Fatalf("vectors do not cover both modes: %v", seen)
	}

	for _, f := range vf.Failures {
		c, _ := krs["v1"].Column(f.Name, Randomized, adBytes(f.AD))
		_, err := c.Decrypt(nil, []byte(f.Envelope))
		var de *DecryptError
		if !errors.As(err, &de) || de.Reason.String() != f.Reason {
			t.Errorf("failure vector %q: err = %v, want reason %q", f.Name, err, f.Reason)
		}
	}
	c, _ := krs["v1"].Column("c", Randomized, nil)
	for _, s := range vf.NotEnvelopes {
		if LooksLikeEnvelope([]byte(s)) {
			t.Errorf("LooksLikeEnvelope(%q) = true", s)
		}
		if _, err := c.Decrypt(nil, []byte(s)); !errors.Is(err, ErrNotEnvelope) {
			t.Errorf("Decrypt(%q) = %v, want ErrNotEnvelope", s, err)
		}
	}
}

// TestPythonDecryptsGo encrypts values with Go and has the independent
// Python implementation (testdata/check_go_vectors.py) decrypt and re-create
// them.
func TestPythonDecryptsGo(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("python3 not found in PATH; cannot cross-check with Python's cryptography: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, py, "-c",
		"from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV").CombinedOutput(); err != nil {
		t.Skipf("python3 lacks the cryptography module with AESSIV (cryptography 37 or later): %v: %s", err, bytes.TrimSpace(out))
	}

	keys := map[string]Key{}
	keysB64 := map[string]string{}
	for _, id := range []string{"v1", "v2", "k-2025.06_b"} {
		k, err := GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
		keysB64[id] = k.Base64()
	}
	str := func(s string) *string { return &s }
	plaintexts := map[string][]byte{
		"empty":   {},
		"ascii":   []byte("John Doe"),
		"unicode": []byte("José García: 日本語 🎉"),
		"binary":  {0, 0xff, 0xc3, 0x28, '\n', 0},
		"16":      []byte("0123456789abcdef"),
		"100 KB":  bytes.Repeat([]byte("medical history "), 100_000/16),
	}
	vf := vectorFile{Keys: keysB64}
	for id := range keys {
		kr, err := NewKeyring(id, keys)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range modes {
			for _, ad := range []*string{nil, str("public.clients.first_name"), str("renamed ✓")} {
				c, err := kr.Column("c", mode, adBytes(ad))
				if err != nil {
					t.Fatal(err)
				}
				for name, pt := range plaintexts {
					if len(pt) > 1000 && id != "v1" {
						continue
					}
					env := mustEncrypt(t, c, pt)
					vf.Vectors = append(vf.Vectors, vector{
						Name:         strings.Join([]string{id, mode.String(), adName(ad), name}, "/"),
						Mode:         mode.String(),
						KeyID:        id,
						AD:           ad,
						PlaintextB64: base64.StdEncoding.EncodeToString(pt),
						Envelope:     string(env),
					})
				}
			}
		}
	}
	data, err := json.Marshal(vf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "go_vectors.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, py, filepath.Join("testdata", "check_go_vectors.py"), path).CombinedOutput()
	if err != nil {
		t.Fatalf("check_go_vectors.py failed: %v\n%s", err, out)
	}
	var checked, skipped int
	if n, err := fmt.Sscanf(strings.TrimSpace(string(out)), "ok %d %d", &checked, &skipped); n != 2 || err != nil ||
		checked+skipped != len(vf.Vectors) || skipped > len(vf.Vectors)/8 {
		t.Fatalf("check_go_vectors.py said %q, want \"ok CHECKED SKIPPED\" adding up to %d", out, len(vf.Vectors))
	}
	t.Logf("Python checked %d Go envelopes (skipped %d empty AES-SIV ones its cryptography version cannot take)", checked, skipped)
}

func adName(ad *string) string {
	if ad == nil {
		return "none"
	}
	return *ad
}
