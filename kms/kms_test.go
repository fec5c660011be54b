package kms

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fake unwraps by reversing the bytes, refusing anything that starts with
// "bad".
type fake struct{}

func (fake) Describe() string { return "fake key" }

func (fake) Unwrap(_ context.Context, w []byte) ([]byte, error) {
	if bytes.HasPrefix(w, []byte("bad")) {
		return nil, errors.New("fake key: KMS refused: AccessDenied")
	}
	out := make([]byte, len(w))
	for i := range w {
		out[len(w)-1-i] = w[i]
	}
	return out, nil
}

// TestSource: the wrapped key comes inline (base64) or from a file
// (base64 or raw); errors name the source; the unwrapped key must be 32
// bytes.
func TestSource(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 31)
	key = append(key, 9)
	wrapped := make([]byte, 32)
	for i := range key {
		wrapped[31-i] = key[i]
	}
	dir := t.TempDir()
	b64File, rawFile := filepath.Join(dir, "b64"), filepath.Join(dir, "raw")
	os.WriteFile(b64File, []byte(base64.StdEncoding.EncodeToString(wrapped)+"\n"), 0o600)
	os.WriteFile(rawFile, wrapped, 0o600)
	for _, s := range []Source{
		{U: fake{}, Wrapped: base64.StdEncoding.EncodeToString(wrapped)},
		{U: fake{}, WrappedFile: b64File},
		{U: fake{}, WrappedFile: rawFile},
	} {
		k, err := s.LoadKey(context.Background())
		if err != nil || k.IsZero() {
			t.Fatalf("%s: %v", s.Describe(), err)
		}
	}
	for _, tc := range []struct {
		s    Source
		want string
	}{
		{Source{U: fake{}, Wrapped: "not base64!"}, "fake key: ciphertext is not base64"},
		{Source{U: fake{}, Wrapped: base64.StdEncoding.EncodeToString([]byte("bad"))}, "fake key: KMS refused"},
		{Source{U: fake{}, Wrapped: base64.StdEncoding.EncodeToString([]byte("short"))}, "fake key: the unwrapped key"},
		{Source{U: fake{}, WrappedFile: filepath.Join(dir, "missing")}, "fake key (ciphertext_file " + filepath.Join(dir, "missing") + ")"},
	} {
		if _, err := tc.s.LoadKey(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadKey: %v, want %q", err, tc.want)
		}
	}
}
