package cipher

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEnvSource(t *testing.T) {
	t.Parallel()
	good := testKey(t, "env").Base64()
	env := fakeEnv(map[string]string{
		"GOOD":     good,
		"NEWLINE":  good + "\n",
		"EMPTY":    "",
		"BAD":      "this is not base64!",
		"SHORT":    base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"SEED_EXA": "Ky8vL2JhY2t1cC9lbmNyeXB0aW9uLWtleQ==",
	})
	tests := []struct {
		name, varName, wantErr string
	}{
		{"good", "GOOD", ""},
		{"trailing newline", "NEWLINE", ""},
		{"unset", "UNSET", "env UNSET: variable is not set"},
		{"empty", "EMPTY", "env EMPTY: cipher: invalid key: empty"},
		{"bad base64", "BAD", "env BAD: cipher: invalid key: not valid standard base64"},
		{"wrong length", "SHORT", "env SHORT: cipher: invalid key: decodes to 16 bytes, 32 bytes are needed"},
		{"seed example", "SEED_EXA", "decodes to 25 bytes"},
		{"no name", "", "no variable name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := EnvSource{Name: tc.varName, LookupEnv: env}
			if tc.varName != "" && src.Describe() != "env "+tc.varName {
				t.Errorf("Describe = %q", src.Describe())
			}
			k, err := src.LoadKey(context.Background())
			if tc.wantErr == "" {
				if err != nil || k.Base64() != good {
					t.Fatalf("LoadKey = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("LoadKey error = %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "this is not") {
				t.Errorf("error echoes the value: %v", err)
			}
		})
	}
}

func TestEnvSourceOSEnv(t *testing.T) { // not parallel: t.Setenv
	good := testKey(t, "osenv").Base64()
	t.Setenv("PGCRYPT_CIPHER_TEST_KEY", good)
	k, err := EnvSource{Name: "PGCRYPT_CIPHER_TEST_KEY"}.LoadKey(context.Background())
	if err != nil || k.Base64() != good {
		t.Fatalf("LoadKey from os env = %v", err)
	}
}

func TestFileSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := testKey(t, "file").Base64()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"plain", write("plain", good), ""},
		{"k8s secret trailing newline", write("nl", good+"\n"), ""},
		{"CRLF", write("crlf", good+"\r\n"), ""},
		{"empty", write("empty", ""), "cipher: invalid key: empty"},
		{"bad", write("bad", "not a key at all\n"), "not valid standard base64"},
		{"wrong length", write("short", base64.StdEncoding.EncodeToString(make([]byte, 24))+"\n"), "decodes to 24 bytes, 32 bytes are needed"},
		{"too large", write("large", strings.Repeat("A", 5000)), "larger than 4096 bytes"},
		{"missing", filepath.Join(dir, "missing"), "cannot read key: open "},
		{"directory", dir, "cannot read key"},
		{"no path", "", "no path given"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := FileSource{Path: tc.path}
			if src.Describe() != "file "+tc.path {
				t.Errorf("Describe = %q", src.Describe())
			}
			k, err := src.LoadKey(context.Background())
			if tc.wantErr == "" {
				if err != nil || k.Base64() != good {
					t.Fatalf("LoadKey = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("LoadKey error = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.path != "" && !strings.HasPrefix(err.Error(), "file "+tc.path+": ") {
				t.Errorf("error %q does not start with the source", err)
			}
			if strings.Contains(err.Error(), "not a key") {
				t.Errorf("error echoes the file content: %v", err)
			}
		})
	}
}

func TestFileSourceUnreadable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("running as root: file permissions are not enforced")
	}
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(testKey(t, "x").Base64()), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := FileSource{Path: p}.LoadKey(context.Background())
	if err == nil || !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "cannot read key") {
		t.Fatalf("LoadKey = %v, want permission error", err)
	}
}

func TestSourcesHonourContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, src := range []KeySource{
		EnvSource{Name: "X", LookupEnv: fakeEnv(map[string]string{"X": testKey(t, "x").Base64()})},
		FileSource{Path: "/nonexistent"},
	} {
		if _, err := src.LoadKey(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: LoadKey(canceled) = %v", src.Describe(), err)
		}
	}
}
