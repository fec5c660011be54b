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
