package migrate

import (
	"regexp"
	"strings"
	"testing"
)

func TestGuardName(t *testing.T) {
	if got := GuardName(Column{Name: "email"}); got != "pgcrypt_guard_email" {
		t.Errorf("GuardName(email) = %q", got)
	}
	long := strings.Repeat("x", 63)
	a, b := GuardName(Column{Name: long}), GuardName(Column{Name: long + "y"})
	if len(a) > 63 || len(b) > 63 || a == b || !strings.HasPrefix(a, GuardPrefix) {
		t.Errorf("long names: %q %q", a, b)
	}
}

// TestGuardExpr checks the guard's pattern (as Go reads it; PostgreSQL's
// ARE agrees on this subset) against envelopes of both modes.
func TestGuardExpr(t *testing.T) {
	for _, tc := range []struct {
		det    bool
		ids    []string
		value  string
		accept bool
	}{
		{false, []string{"v1"}, "v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==", true},
		{false, []string{"v1"}, "v2:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==", false},
		{false, []string{"v1", "k-2025.06_b"}, "k-2025.06_b:AAAAAAAAAAAAAAAA:AAAA", true},
		{false, []string{"k.1"}, "kx1:AAAAAAAAAAAAAAAA:AAAA", false}, // . is literal
		{false, []string{"v1"}, "v1:siv:AAAAAAAAAAAAAAAAAAAAAA==", false},
		{true, []string{"v1"}, "v1:siv:AAAAAAAAAAAAAAAAAAAAAA==", true},
		{true, []string{"v1"}, "v1:AAAAAAAAAAAAAAAA:AAAA", false},
		{false, []string{"v1"}, "plain text", false},
		{false, []string{"v1"}, "v1:AAAAAAAAAAAAAAAA:AAAA\nmore", false},
	} {
		expr, err := GuardExpr(Column{Name: "c", Deterministic: tc.det}, tc.ids)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`~ E?'(.*)'$`).FindStringSubmatch(expr)
		if m == nil {
			t.Fatalf("no pattern in %s", expr)
		}
		re := regexp.MustCompile(strings.ReplaceAll(m[1], `\\`, `\`))
		if got := re.MatchString(tc.value); got != tc.accept {
			t.Errorf("%s on %q: %t, want %t", expr, tc.value, got, tc.accept)
		}
	}
	if _, err := GuardExpr(Column{Name: "c"}, []string{"v:1"}); err == nil {
		t.Error("a key id with a colon was accepted")
	}
}

// TestGuardKeyIDs reads the key versions back from a guard's definition
// as pg_get_constraintdef prints it, with standard_conforming_strings on
// and off.
func TestGuardKeyIDs(t *testing.T) {
	for _, tc := range []struct {
		def  string
		want string
	}{
		{`CHECK (((email IS NULL) OR (email ~ '^(v1|k-2025\.06_b):siv:[A-Za-z0-9+/]+={0,2}$'::text)))`, "v1 k-2025.06_b"},
		{`CHECK (((email IS NULL) OR (email ~ E'^(v2|k\\.1):siv:[A-Za-z0-9+/]+={0,2}$'::text)))`, "v2 k.1"},
		{`CHECK ((body IS NULL) OR ((body)::text ~ '^(v2):[A-Za-z0-9+/]{16}:[A-Za-z0-9+/]+={0,2}$'::text))`, "v2"},
		{`CHECK ((length(email) > 3))`, ""},
		{`CHECK ((email ~ '^(v1|x y):siv:'::text))`, ""},
	} {
		ids, ok := GuardKeyIDs(tc.def)
		if got := strings.Join(ids, " "); got != tc.want || ok != (tc.want != "") {
			t.Errorf("GuardKeyIDs(%s) = %q, %v; want %q", tc.def, got, ok, tc.want)
		}
	}
	expr, _ := GuardExpr(Column{Name: "email", Deterministic: true}, []string{"v1", "k-2025.06_b"})
	if ids, ok := GuardKeyIDs("CHECK (" + expr + ")"); !ok || strings.Join(ids, " ") != "v1 k-2025.06_b" {
		t.Errorf("GuardKeyIDs does not read GuardExpr's own text %s: %v", expr, ids)
	}
}
