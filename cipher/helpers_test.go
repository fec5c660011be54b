package cipher

import (
	"crypto/sha256"
	"testing"
)

// testKey returns a fixed key derived from label.
func testKey(tb testing.TB, label string) Key {
	tb.Helper()
	sum := sha256.Sum256([]byte("pgcrypt-proxy go test key " + label))
	k, err := KeyFromBytes(sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// testKeyring returns a keyring holding testKey(id) for each id.
func testKeyring(tb testing.TB, active string, ids ...string) *Keyring {
	tb.Helper()
	keys := make(map[string]Key, len(ids))
	for _, id := range ids {
		keys[id] = testKey(tb, id)
	}
	kr, err := NewKeyring(active, keys)
	if err != nil {
		tb.Fatal(err)
	}
	return kr
}

// testColumn returns a column of a keyring with the single key v1.
func testColumn(tb testing.TB, mode Mode, ad string) *Column {
	tb.Helper()
	var adb []byte
	if ad != "" {
		adb = []byte(ad)
	}
	c, err := testKeyring(tb, "v1", "v1").Column("public.t.c", mode, adb)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func mustEncrypt(tb testing.TB, c *Column, pt []byte) []byte {
	tb.Helper()
	env, err := c.Encrypt(nil, pt)
	if err != nil {
		tb.Fatalf("Encrypt: %v", err)
	}
	return env
}

var modes = []Mode{Randomized, Deterministic}
