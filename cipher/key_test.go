package cipher

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xA5}, 32)
	good := base64.StdEncoding.EncodeToString(raw)
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means success
	}{
		{"plain", good, ""},
		{"trailing newline", good + "\n", ""},
		{"CRLF and spaces", "  " + good + "\r\n", ""},
		{"tabs", "\t" + good + "\t", ""},
		{"empty", "", "empty"},
		{"only whitespace", " \n\t", "empty"},
		{"bad base64 char", strings.Repeat("!", 44), "not valid standard base64"},
		{"url-safe alphabet", strings.Repeat("-", 43) + "=", "not valid standard base64"},
		{"missing padding", strings.TrimRight(good, "="), "not valid standard base64"},
		{"16 bytes", base64.StdEncoding.EncodeToString(raw[:16]), "decodes to 16 bytes, 32 bytes are needed"},
		{"31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), "decodes to 31 bytes, 32 bytes are needed"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), "decodes to 33 bytes, 32 bytes are needed"},
		{"seed example key (25 bytes)", "Ky8vL2JhY2t1cC9lbmNyeXB0aW9uLWtleQ==", "decodes to 25 bytes"},
		{"64 bytes", base64.StdEncoding.EncodeToString(append(raw, raw...)), "too long"},
		{"hex instead of base64", hex.EncodeToString(raw), "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := ParseKey(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if !bytes.Equal(k.bytes(), raw) {
					t.Fatal("wrong key bytes")
				}
				if k.Base64() != good {
					t.Fatal("Base64 does not round-trip")
				}
				return
			}
			if err == nil {
				t.Fatal("ParseKey succeeded, want error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q does not contain %q", msg, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("error %q does not wrap ErrInvalidKey", msg)
			}
			if !strings.Contains(msg, "pgcrypt-proxy keygen") {
				t.Errorf("error %q does not say how to make a key", msg)
			}
			if in := strings.TrimSpace(tc.in); len(in) >= 4 && strings.Contains(msg, in) {
				t.Errorf("error %q echoes the input", msg)
			}
		})
	}
}

func TestKeyFromBytes(t *testing.T) {
	t.Parallel()
	b := bytes.Repeat([]byte{7}, 32)
	k, err := KeyFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 8 // the Key holds a copy
	if k.bytes()[0] != 7 {
		t.Fatal("KeyFromBytes did not copy")
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := KeyFromBytes(make([]byte, n)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("KeyFromBytes(%d bytes) = %v, want ErrInvalidKey", n, err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	k1, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Equal(k2) {
		t.Fatal("two generated keys are equal")
	}
	back, err := ParseKey(k1.Base64() + "\n")
	if err != nil || !back.Equal(k1) {
		t.Fatalf("ParseKey(Base64()) = %v, equal=%v", err, back.Equal(k1))
	}
	k3, err := GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)))
	if err != nil || !bytes.Equal(k3.bytes(), bytes.Repeat([]byte{1}, 32)) {
		t.Fatalf("GenerateKey(fixed reader) = %v", err)
	}
	if _, err := GenerateKey(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("GenerateKey with a short reader succeeded")
	}
}

func TestKeyZeroAndEqual(t *testing.T) {
	t.Parallel()
	var z Key
	if !z.IsZero() || z.Base64() != "" || !z.Equal(Key{}) {
		t.Fatal("zero Key misbehaves")
	}
	k := testKey(t, "a")
	if k.IsZero() || k.Equal(z) || z.Equal(k) || !k.Equal(testKey(t, "a")) || k.Equal(testKey(t, "b")) {
		t.Fatal("Equal misbehaves")
	}
}

// TestKeyNeverPrinted formats structures holding a Key in every way we can
// think of and checks that no representation of the key bytes shows up.
func TestKeyNeverPrinted(t *testing.T) {
	t.Parallel()
	raw := []byte{
		0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
		0xc0, 0xff, 0xee, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
	}
	k, err := KeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	type config struct {
		Name   string
		Key    Key
		KeyPtr *Key
		Keys   map[string]Key
		List   []Key
		hidden Key
		hidPtr *Key
		Any    any
	}
	v := config{Name: "x", Key: k, KeyPtr: &k, Keys: map[string]Key{"v1": k}, List: []Key{k}, hidden: k, hidPtr: &k, Any: k}
	forbidden := []string{
		hex.EncodeToString(raw[:4]),
		strings.ToUpper(hex.EncodeToString(raw[:4])),
		hex.EncodeToString(raw[16:20]),
		base64.StdEncoding.EncodeToString(raw)[:8],
		"222 173 190 239", // decimal byte list of deadbeef
		"0xde, 0xad",      // %#v of a byte array
		string(raw[:4]),
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%08x", "% x", "%T %v"} {
		outs = append(outs, fmt.Sprintf(verb, v), fmt.Sprintf(verb, &v), fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k))
	}
	outs = append(outs, fmt.Sprint(v), fmt.Sprintln(k), k.String(), k.GoString())
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	txt, _ := k.MarshalText()
	outs = append(outs, string(txt))
	var logBuf bytes.Buffer
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("loaded", "key", k, "cfg", v)
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("loaded", "key", k, "cfg", v)
	outs = append(outs, logBuf.String())
	for _, out := range outs {
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("key material %q printed in %q", f, out)
			}
		}
	}
	if got := fmt.Sprintf("%v|%+v|%#v|%x|%q|%s", k, k, k, k, k, k); got != strings.Repeat("[REDACTED]|", 5)+"[REDACTED]" {
		t.Errorf("direct formatting = %q", got)
	}
	if !strings.Contains(string(js), `"Key":"[REDACTED]"`) {
		t.Errorf("json = %s", js)
	}
}
