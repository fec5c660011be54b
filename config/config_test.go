package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testKey is a valid base64 key (32 bytes of 0x01).
const testKey = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="

func env(vars map[string]string) Option {
	return WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(context.Background(), "../config.example.yaml", env(map[string]string{"PGCRYPT_KEY_V1": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Keys.Active != "v1" || len(cfg.Keys.Material) != 1 {
		t.Fatalf("keys: %+v", cfg.Keys)
	}
	if len(cfg.Encrypt) != 1 || cfg.Encrypt[0].Schema != "public" || cfg.Encrypt[0].Name != "clients" {
		t.Fatalf("encrypt: %+v", cfg.Encrypt)
	}
	// The seed's Client model, section 8.1: every encrypted PII/PHI column.
	want := []string{"first_name", "last_name", "email", "phone", "address", "medical_history", "emergency_contact_name", "emergency_contact_phone"}
	var got []string
	for _, c := range cfg.Encrypt[0].Columns {
		got = append(got, c.Ident)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("columns %v, want %v", got, want)
	}
	email := cfg.Encrypt[0].Columns[2]
	if !email.Deterministic() || string(email.AssociatedDataFor(cfg.Encrypt[0])) != "public.clients.email" {
		t.Fatalf("email column: %+v", email)
	}
	if cfg.UpstreamTLS.Mode != TLSPrefer || cfg.OnUnsupported != OnUnsupportedReject || cfg.ShutdownTimeout != DefaultShutdownTimeout {
		t.Fatalf("defaults: %+v", cfg)
	}
}

const base = `upstream: 127.0.0.1:5432
keys:
  active: v1
  versions:
    v1: { env: K1 }
`

func TestValidConfigs(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"minimal", base, func(t *testing.T, c *Config) {
			if c.Listen != DefaultListen || c.AdminListen != DefaultAdminListen || c.MaxMessageBytes != DefaultMaxMessageBytes {
				t.Fatalf("defaults not applied: %+v", c)
			}
		}},
		{"schema-qualified and quoted names", base + `encrypt:
  - table: billing.Invoices
    columns: [{ name: Notes }]
  - table: '"Mixed Schema"."Odd ""Name"""'
    columns: [{ name: '"Col"' }]
`, func(t *testing.T, c *Config) {
			if c.Encrypt[0].Schema != "billing" || c.Encrypt[0].Name != "invoices" || c.Encrypt[0].Columns[0].Ident != "notes" {
				t.Fatalf("folded names: %+v", c.Encrypt[0])
			}
			if c.Encrypt[1].Schema != "Mixed Schema" || c.Encrypt[1].Name != `Odd "Name"` || c.Encrypt[1].Columns[0].Ident != "Col" {
				t.Fatalf("quoted names: %+v", c.Encrypt[1])
			}
		}},
		{"associated data", base + `encrypt:
  - table: legacy_notes
    columns:
      - { name: body, associated_data: none }
      - { name: title, associated_data: public.old_notes.title }
      - { name: summary, associated_data: column }
`, func(t *testing.T, c *Config) {
			tb := c.Encrypt[0]
			if ad := tb.Columns[0].AssociatedDataFor(tb); ad != nil {
				t.Fatalf("none gave %q", ad)
			}
			if ad := tb.Columns[1].AssociatedDataFor(tb); string(ad) != "public.old_notes.title" {
				t.Fatalf("fixed string gave %q", ad)
			}
			if ad := tb.Columns[2].AssociatedDataFor(tb); string(ad) != "public.legacy_notes.summary" {
				t.Fatalf("column gave %q", ad)
			}
		}},
		{"key from a file with a trailing newline", strings.Replace(base, "{ env: K1 }", "{ file: KEYFILE }", 1), func(t *testing.T, c *Config) {
			if len(c.Keys.Material) != 1 {
				t.Fatal("file key not loaded")
			}
		}},
	}
	keyFile := filepath.Join(t.TempDir(), "v1")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.ReplaceAll(tc.yaml, "KEYFILE", keyFile)
			c, err := Parse(context.Background(), "test.yaml", []byte(y), env(map[string]string{"K1": testKey}))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestInvalidConfigs: every problem is reported with its line and a fix.
func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error, in order of appearance
	}{
		{"unknown top-level key", base + "listn: 1.2.3.4:5\n", nil,
			[]string{`test.yaml:6: unknown key "listn"`}},
		{"unknown nested key", base + "upstream_tls:\n  mod: require\n", nil,
			[]string{`test.yaml:7: unknown key "mod"`}},
		{"unknown column key", base + "encrypt:\n  - table: t\n    columns:\n      - name: a\n        serch: equality\n", nil,
			[]string{`test.yaml:10: unknown key "serch"`}},
		{"missing upstream", strings.Replace(base, "upstream: 127.0.0.1:5432\n", "", 1), nil,
			[]string{"upstream is missing"}},
		{"bad upstream", strings.Replace(base, "127.0.0.1:5432", "localhost", 1), nil,
			[]string{`test.yaml:1: upstream is "localhost": use host:port`}},
		{"bad TLS mode", base + "upstream_tls:\n  mode: strict\n", nil,
			[]string{`test.yaml:7: upstream_tls.mode is "strict"`}},
		{"missing CA file", base + "upstream_tls:\n  mode: verify-ca\n  ca_file: /nonexistent/ca.pem\n", nil,
			[]string{"test.yaml:8: upstream_tls.ca_file: cannot read /nonexistent/ca.pem"}},
		{"half client TLS", base + "client_tls:\n  cert_file: " + os.Args[0] + "\n", nil,
			[]string{"client_tls: set both cert_file and key_file"}},
		{"client certificates without a CA", base + "client_tls:\n  cert_file: " + os.Args[0] + "\n  key_file: " + os.Args[0] + "\n  client_auth: require\n", nil,
			[]string{"test.yaml:9: client_tls.client_auth is require: set client_tls.ca_file"}},
		{"client TLS required but not offered", base + "client_tls:\n  mode: require\n", nil,
			[]string{"test.yaml:7: client_tls.mode is require, but the proxy offers no TLS"}},
		{"bad client TLS mode", base + "client_tls:\n  mode: verify-full\n", nil,
			[]string{`test.yaml:7: client_tls.mode is "verify-full": use prefer`}},
		{"bad client_auth", base + "client_tls:\n  client_auth: maybe\n", nil,
			[]string{`test.yaml:7: client_tls.client_auth is "maybe": use none, verify`}},
		{"aws_kms without key_id", strings.Replace(base, "{ env: K1 }", "{ aws_kms: { region: eu-west-1 }, ciphertext: AAAA }", 1), nil,
			[]string{"key v1: aws_kms.key_id is missing"}},
		{"aws_kms without the wrapped key", strings.Replace(base, "{ env: K1 }", "{ aws_kms: { key_id: alias/k } }", 1), nil,
			[]string{"key v1: give the wrapped data key as ciphertext (base64) or ciphertext_file"}},
		{"bad audit on_full", base + "audit:\n  file: '-'\n  on_full: sometimes\n", nil,
			[]string{`test.yaml:8: audit.on_full is "sometimes": use block`}},
		{"audit directory missing", base + "audit:\n  file: /nonexistent/dir/audit.log\n", nil,
			[]string{"test.yaml:7: audit.file: the directory of /nonexistent/dir/audit.log does not exist"}},
		{"active key not listed", strings.Replace(base, "active: v1", "active: v2", 1), nil,
			[]string{`test.yaml:3: keys.active is "v2", which keys.versions does not list`}},
		{"no keys", "upstream: 127.0.0.1:5432\n", nil,
			[]string{"keys.versions lists no key"}},
		{"both key sources", strings.Replace(base, "{ env: K1 }", "{ env: K1, file: /x }", 1), nil,
			[]string{"test.yaml:5: key v1: give exactly one source"}},
		{"bad key id", strings.Replace(strings.Replace(base, "v1: {", "v:1: {", 1), "active: v1", "active: 'v:1'", 1), nil,
			[]string{`key id "v:1"`}},
		{"missing key variable", base, map[string]string{},
			[]string{"test.yaml:5: key v1:", "K1"}},
		{"short key", base, map[string]string{"K1": "c2hvcnQ="},
			[]string{"test.yaml:5: key v1:"}},
		{"bad event_loops", base + "event_loops: -2\n", nil,
			[]string{`test.yaml:6: event_loops is -2: use 0`}},
		{"bad on_unsupported", base + "on_unsupported: ignore\n", nil,
			[]string{`test.yaml:6: on_unsupported is "ignore": use reject or allow`}},
		{"bad search", base + "encrypt:\n  - table: t\n    columns:\n      - { name: a, search: range }\n", nil,
			[]string{`test.yaml:9: column t.a: search is "range"`}},
		{"duplicate column", base + "encrypt:\n  - table: t\n    columns:\n      - name: a\n      - name: A\n", nil,
			[]string{"test.yaml:10: column public.t.a is listed twice (first at line 9)"}},
		{"duplicate column across entries", base + "encrypt:\n  - table: public.t\n    columns: [{name: a}]\n  - table: t\n    columns: [{name: a}]\n", nil,
			[]string{"test.yaml:10: column public.t.a is listed twice (first at line 8)"}},
		{"bad table name", base + "encrypt:\n  - table: a.b.c\n    columns: [{name: x}]\n", nil,
			[]string{`test.yaml:7: table "a.b.c"`}},
		{"table without columns", base + "encrypt:\n  - table: t\n", nil,
			[]string{"test.yaml:7: table t lists no columns"}},
		{"duplicate YAML key", base + "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", nil,
			[]string{`"listen" already defined`}},
		{"several problems at once", base + "on_unsupported: x\nupstream_tls: {mode: y}\n", nil,
			[]string{"on_unsupported", "upstream_tls.mode"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vars := tc.env
			if vars == nil {
				vars = map[string]string{"K1": testKey}
			}
			_, err := Parse(context.Background(), "test.yaml", []byte(tc.yaml), env(vars))
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			pos := 0
			for _, w := range tc.want {
				i := strings.Index(msg[pos:], w)
				if i < 0 {
					t.Fatalf("error %q\ndoes not contain %q (after position %d)", msg, w, pos)
				}
				pos += i + len(w)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, want *Error", err)
			}
		})
	}
}

// TestKeysNeverPrinted: formatting a loaded config shows no key material.
func TestKeysNeverPrinted(t *testing.T) {
	cfg, err := Parse(context.Background(), "test.yaml", []byte(base), env(map[string]string{"K1": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	key := cfg.Keys.Material["v1"]
	raw := key.Base64()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, cfg)
		if strings.Contains(out, raw) || strings.Contains(out, "0101010101") || strings.Contains(out, "[1 1 1 1") {
			t.Fatalf("%s of the config shows key material: %s", verb, out)
		}
	}
}
