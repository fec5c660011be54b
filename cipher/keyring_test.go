package cipher

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidateKeyID(t *testing.T) {
	t.Parallel()
	valid := []string{"v1", "V2", "k-2025.06_b", "a", strings.Repeat("x", 32), "siv", "0", "..", "-"}
	invalid := []string{"", strings.Repeat("x", 33), "v:1", "v 1", "v1\n", "vé", "v/1", "v+1", "v=1", "v1\x00"}
	for _, id := range valid {
		if err := ValidateKeyID(id); err != nil {
			t.Errorf("ValidateKeyID(%q) = %v", id, err)
		}
	}
	for _, id := range invalid {
		if err := ValidateKeyID(id); !errors.Is(err, ErrInvalidKeyID) {
			t.Errorf("ValidateKeyID(%q) = %v, want ErrInvalidKeyID", id, err)
		}
	}
}

func TestNewKeyringErrors(t *testing.T) {
	t.Parallel()
	k := testKey(t, "k")
	tests := []struct {
		name    string
		active  string
		keys    map[string]Key
		wantErr string
	}{
		{"no keys", "v1", nil, "no key versions"},
		{"active missing", "v2", map[string]Key{"v1": k}, `active key id "v2" is not among`},
		{"active invalid", "v:2", map[string]Key{"v1": k}, "invalid key id"},
		{"bad id", "v1", map[string]Key{"v1": k, "bad id": k}, "invalid key id"},
		{"zero key", "v1", map[string]Key{"v1": {}}, "zero Key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewKeyring(tc.active, tc.keys)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewKeyring = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestKeyringAccessors(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t, "v2", "v2", "v1", "old")
	if kr.Active() != "v2" {
		t.Errorf("Active = %q", kr.Active())
	}
	if got := kr.KeyIDs(); !slices.Equal(got, []string{"old", "v1", "v2"}) {
		t.Errorf("KeyIDs = %q", got)
	}
	if !kr.Has("old") || kr.Has("v3") {
		t.Error("Has misbehaves")
	}
	if _, err := kr.Column("c", Mode(7), nil); err == nil {
		t.Error("Column accepted an invalid mode")
	}
	c, err := kr.Column("public.t.c", Deterministic, []byte("ad"))
	if err != nil || c.Name() != "public.t.c" || c.Mode() != Deterministic {
		t.Fatalf("Column = %v", err)
	}
}

func TestLoadKeyring(t *testing.T) {
	t.Parallel()
	env := fakeEnv(map[string]string{
		"K1": testKey(t, "v1").Base64(),
		"K2": testKey(t, "v2").Base64() + "\n",
	})
	kr, err := LoadKeyring(context.Background(), "v2", map[string]KeySource{
		"v1": EnvSource{Name: "K1", LookupEnv: env},
		"v2": EnvSource{Name: "K2", LookupEnv: env},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The loaded keyring decrypts what one built from the same keys writes.
	want := testKeyring(t, "v1", "v1", "v2")
	cw, _ := want.Column("c", Deterministic, nil)
	cl, _ := kr.Column("c", Deterministic, nil)
	env1 := mustEncrypt(t, cw, []byte("x"))
	if pt, err := cl.Decrypt(nil, env1); err != nil || string(pt) != "x" {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}

	_, err = LoadKeyring(context.Background(), "v1", map[string]KeySource{
		"v1": EnvSource{Name: "K1", LookupEnv: env},
		"v3": EnvSource{Name: "PGCRYPT_KEY_V3", LookupEnv: env},
	})
	if err == nil || !strings.Contains(err.Error(), "cipher: key v3: env PGCRYPT_KEY_V3: variable is not set") {
		t.Fatalf("LoadKeyring error = %v", err)
	}
	_, err = LoadKeyring(context.Background(), "v9", map[string]KeySource{"v1": EnvSource{Name: "K1", LookupEnv: env}})
	if err == nil || !strings.Contains(err.Error(), `"v9" is not among`) {
		t.Fatalf("LoadKeyring error = %v", err)
	}
	_, err = LoadKeyring(context.Background(), "v1", map[string]KeySource{"v1": nil})
	if err == nil || !strings.Contains(err.Error(), "no source") {
		t.Fatalf("LoadKeyring error = %v", err)
	}
	_, err = LoadKeyring(context.Background(), "v1", nil)
	if err == nil {
		t.Fatal("LoadKeyring with no sources succeeded")
	}
}
