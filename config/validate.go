package config

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

type validator struct {
	root     *yaml.Node
	problems []Problem
}

// line finds the line of the value at path (map keys as strings, sequence
// indexes as ints), or of the deepest ancestor present.
func (v *validator) line(path ...any) int {
	n := v.root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, p := range path {
		if n == nil {
			break
		}
		line = n.Line
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						if next.Kind == yaml.ScalarNode && next.Tag == "!!null" {
							line = n.Content[i].Line
						}
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		n = next
	}
	if n != nil {
		line = n.Line
	}
	return line
}

func (v *validator) addf(line int, format string, args ...any) {
	v.problems = append(v.problems, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

func (v *validator) check(c *Config) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.UpstreamTLS.Mode == "" {
		c.UpstreamTLS.Mode = TLSPrefer
	}
	if c.OnUnsupported == "" {
		c.OnUnsupported = OnUnsupportedReject
	}

	v.checkAddr("listen", c.Listen, true)
	v.checkAddr("admin_listen", c.AdminListen, true)
	if c.Upstream == "" {
		v.addf(0, "upstream is missing: set it to PostgreSQL's host:port, for example upstream: 127.0.0.1:5432")
	} else {
		v.checkAddr("upstream", c.Upstream, false)
	}
	if c.ShutdownTimeout < 0 {
		v.addf(v.line("shutdown_timeout"), "shutdown_timeout must not be negative")
	}
	if c.ConnectTimeout < 0 {
		v.addf(v.line("connect_timeout"), "connect_timeout must not be negative")
	}
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > DefaultMaxMessageBytes {
		v.addf(v.line("max_message_bytes"), "max_message_bytes must be between 1024 and %d (PostgreSQL's own limit)", DefaultMaxMessageBytes)
	}
	if c.EventLoops < -1 || c.EventLoops > 256 {
		v.addf(v.line("event_loops"), "event_loops is %d: use 0 (one per two CPUs), 1 to 256, or -1 (no event loop: two goroutines per session)", c.EventLoops)
	}
	switch c.OnUnsupported {
	case OnUnsupportedReject, OnUnsupportedAllow:
	default:
		v.addf(v.line("on_unsupported"), "on_unsupported is %q: use reject or allow", c.OnUnsupported)
	}
	v.checkUpstreamTLS(&c.UpstreamTLS)
	v.checkClientTLS(&c.ClientTLS)
	v.checkAudit(&c.Audit)
	v.checkKeys(&c.Keys)
	v.checkEncrypt(c.Encrypt)
}

func (v *validator) checkAddr(key, addr string, listen bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || (!listen && host == "") {
		example := "127.0.0.1:5432"
		if listen {
			example = "127.0.0.1:6432"
		}
		v.addf(v.line(key), "%s is %q: use host:port, for example %s", key, addr, example)
	}
}

func (v *validator) checkUpstreamTLS(t *UpstreamTLS) {
	switch t.Mode {
	case TLSDisable, TLSPrefer, TLSRequire, TLSVerifyCA, TLSVerifyFull:
	default:
		v.addf(v.line("upstream_tls", "mode"), "upstream_tls.mode is %q: use disable, prefer, require, verify-ca or verify-full", t.Mode)
	}
	v.checkFile(t.CAFile, "upstream_tls", "ca_file")
	v.checkFile(t.CertFile, "upstream_tls", "cert_file")
	v.checkFile(t.KeyFile, "upstream_tls", "key_file")
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.addf(v.line("upstream_tls"), "upstream_tls: set both cert_file and key_file for a client certificate, or neither")
	}
}

func (v *validator) checkClientTLS(t *ClientTLS) {
	v.checkFile(t.CertFile, "client_tls", "cert_file")
	v.checkFile(t.KeyFile, "client_tls", "key_file")
	v.checkFile(t.CAFile, "client_tls", "ca_file")
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.addf(v.line("client_tls"), "client_tls: set both cert_file and key_file to offer TLS to clients, or neither to refuse it")
	}
	switch t.Mode {
	case "":
		t.Mode = ClientTLSPrefer
	case ClientTLSPrefer:
	case ClientTLSRequire:
		if t.CertFile == "" {
			v.addf(v.line("client_tls", "mode"), "client_tls.mode is require, but the proxy offers no TLS: set client_tls.cert_file and key_file")
		}
	default:
		v.addf(v.line("client_tls", "mode"), "client_tls.mode is %q: use prefer (TLS offered, plaintext accepted) or require (clients without TLS are refused)", t.Mode)
	}
	if t.ClientAuth == "" {
		t.ClientAuth = ClientAuthNone
	}
	switch t.ClientAuth {
	case ClientAuthNone:
	case ClientAuthVerify, ClientAuthRequire:
		if t.CAFile == "" {
			v.addf(v.line("client_tls", "client_auth"), "client_tls.client_auth is %s: set client_tls.ca_file to the CA that signs the clients' certificates", t.ClientAuth)
		}
		if t.CertFile == "" {
			v.addf(v.line("client_tls", "client_auth"), "client_tls.client_auth is %s, but the proxy offers no TLS: set client_tls.cert_file and key_file", t.ClientAuth)
		}
	default:
		v.addf(v.line("client_tls", "client_auth"), "client_tls.client_auth is %q: use none, verify (check a certificate when the client presents one) or require", t.ClientAuth)
	}
}

func (v *validator) checkAudit(a *Audit) {
	if a.Queue < 0 {
		v.addf(v.line("audit", "queue"), "audit.queue is %d: use a positive number of events, or leave it out for 10000", a.Queue)
	}
	if a.Queue == 0 {
		a.Queue = 10000
	}
	switch a.OnFull {
	case "":
		a.OnFull = "block"
	case "block", "drop":
	default:
		v.addf(v.line("audit", "on_full"), "audit.on_full is %q: use block (sessions wait, nothing is lost) or drop (events are counted and lost)", a.OnFull)
	}
	if a.File != "" && a.File != "-" {
		if fi, err := os.Stat(filepath.Dir(a.File)); err != nil || !fi.IsDir() {
			v.addf(v.line("audit", "file"), "audit.file: the directory of %s does not exist", a.File)
		}
	}
}

func (v *validator) checkFile(path string, key ...any) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		v.addf(v.line(key...), "%s: cannot read %s: %v", joinPath(key), path, unwrapPathErr(err))
	}
}

func (v *validator) checkKeys(k *Keys) {
	if len(k.Versions) == 0 {
		v.addf(v.line("keys"), "keys.versions lists no key: add one, for example v1: { env: PGCRYPT_KEY_V1 }, with a key from `pgcrypt-proxy keygen`")
		return
	}
	ids := make([]string, 0, len(k.Versions))
	for id := range k.Versions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ref := k.Versions[id]
		if !keyIDPattern.MatchString(id) {
			v.addf(v.line("keys", "versions", id), "key id %q: use 1 to 32 letters, digits, '_', '.' or '-' (it is stored in every value, so keep it short, like v1)", id)
		}
		sources := 0
		for _, set := range []bool{ref.Env != "", ref.File != "", ref.AWSKMS != nil} {
			if set {
				sources++
			}
		}
		if sources != 1 {
			v.addf(v.line("keys", "versions", id), "key %s: give exactly one source, { env: VARIABLE }, { file: /path/to/key } or { aws_kms: { key_id: ... }, ciphertext_file: /path }", id)
		}
		if ref.AWSKMS != nil {
			if ref.AWSKMS.KeyID == "" {
				v.addf(v.line("keys", "versions", id, "aws_kms"), "key %s: aws_kms.key_id is missing: the KMS key (id, ARN or alias/NAME) that wrapped the data key", id)
			}
			if (ref.Ciphertext == "") == (ref.CiphertextFile == "") {
				v.addf(v.line("keys", "versions", id), "key %s: give the wrapped data key as ciphertext (base64) or ciphertext_file, one of them (pgcrypt-proxy keygen --aws-kms KEY prints one)", id)
			}
			v.checkFile(ref.CiphertextFile, "keys", "versions", id, "ciphertext_file")
		} else if ref.Ciphertext != "" || ref.CiphertextFile != "" {
			v.addf(v.line("keys", "versions", id), "key %s: ciphertext and ciphertext_file go with aws_kms", id)
		}
	}
	if k.Active == "" {
		v.addf(v.line("keys"), "keys.active is missing: set it to the key id that encrypts new values (one of %s)", strings.Join(ids, ", "))
	} else if _, ok := k.Versions[k.Active]; !ok {
		if cipher.ValidateKeyID(k.Active) != nil {
			// Not shown: it may be a key pasted in the wrong place.
			v.addf(v.line("keys", "active"), "keys.active is not a key id (1-32 letters, digits, '_', '.' or '-'; the value is not shown, in case it is a key): use one of %s", strings.Join(ids, ", "))
		} else {
			v.addf(v.line("keys", "active"), "keys.active is %q, which keys.versions does not list: add it there or use one of %s", k.Active, strings.Join(ids, ", "))
		}
	}
}

// resolveKeys loads every key version, so a missing variable or a malformed
// key stops the proxy at start rather than at the first query.
func (v *validator) resolveKeys(ctx context.Context, c *Config, lookupEnv func(string) (string, bool)) {
	c.Keys.Material = make(map[string]cipher.Key, len(c.Keys.Versions))
	ids := make([]string, 0, len(c.Keys.Versions))
	for id := range c.Keys.Versions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		src := c.Keys.Versions[id].Source(lookupEnv)
		key, err := src.LoadKey(ctx)
		if err != nil {
			v.addf(v.line("keys", "versions", id), "key %s: %v", id, err)
			continue
		}
		c.Keys.Material[id] = key
	}
}

var bareIdent = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// parseIdent folds a bare SQL identifier to lower case and unquotes a quoted
// one, as PostgreSQL does.
func parseIdent(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		inner := s[1 : len(s)-1]
		if inner == "" || strings.Count(inner, `"`)%2 != 0 || strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
			return "", false
		}
		return strings.ReplaceAll(inner, `""`, `"`), true
	}
	if !bareIdent.MatchString(s) {
		return "", false
	}
	return strings.ToLower(s), true
}

// splitQualified splits schema.table, honouring double quotes.
func splitQualified(s string) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case '.':
			if !quoted {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func (v *validator) checkEncrypt(tables []Table) {
	type colKey struct{ schema, table, column string }
	seen := map[colKey]int{}
	for ti := range tables {
		t := &tables[ti]
		tl := v.line("encrypt", ti, "table")
		parts := splitQualified(t.Table)
		ok := t.Table != "" && len(parts) <= 2
		var idents []string
		for _, p := range parts {
			id, good := parseIdent(p)
			ok = ok && good
			idents = append(idents, id)
		}
		if !ok {
			v.addf(tl, "table %q: use a table name, optionally schema-qualified (clients, billing.invoices, \"Mixed Case\")", t.Table)
			continue
		}
		if len(idents) == 2 {
			t.Schema, t.Name = idents[0], idents[1]
		} else {
			t.Schema, t.Name = "public", idents[0]
		}
		if len(t.Columns) == 0 {
			v.addf(tl, "table %s lists no columns: add the columns to encrypt, or remove the entry", t.Table)
		}
		for ci := range t.Columns {
			c := &t.Columns[ci]
			cl := v.line("encrypt", ti, "columns", ci, "name")
			id, good := parseIdent(c.Name)
			if !good {
				v.addf(cl, "column %q of %s: not a valid column name", c.Name, t.Table)
				continue
			}
			c.Ident = id
			switch c.Search {
			case SearchNone, SearchEquality:
			default:
				v.addf(v.line("encrypt", ti, "columns", ci, "search"), "column %s.%s: search is %q: use equality, or leave it out for randomized encryption", t.Name, id, c.Search)
			}
			if c.AssociatedData != nil && *c.AssociatedData == "" {
				v.addf(v.line("encrypt", ti, "columns", ci, "associated_data"), "column %s.%s: associated_data is empty: use column (the default), none, or a fixed string", t.Name, id)
			}
			k := colKey{t.Schema, t.Name, id}
			if first, dup := seen[k]; dup {
				v.addf(cl, "column %s.%s.%s is listed twice (first at line %d): keep one entry", t.Schema, t.Name, id, first)
				continue
			}
			seen[k] = cl
		}
	}
}

func joinPath(key []any) string {
	s := make([]string, len(key))
	for i, k := range key {
		s[i] = fmt.Sprint(k)
	}
	return strings.Join(s, ".")
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
