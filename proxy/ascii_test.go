package proxy

import (
	"strings"
	"testing"
)

func TestIsASCII(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"", true}, {"a", true}, {"abcdefgh", true}, {"abcdefghi", true},
		{"é", false}, {"abcdefg\x80", false}, {"abcdefgh\xff", false}, {strings.Repeat("x", 100) + "\xc3\xa9", false},
		{"\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", true},
	} {
		if got := isASCII(c.s); got != c.want {
			t.Errorf("isASCII(%q) = %v", c.s, got)
		}
		if got := isASCII([]byte(c.s)); got != c.want {
			t.Errorf("isASCII([]byte(%q)) = %v", c.s, got)
		}
	}
}

func BenchmarkIsASCII(b *testing.B) {
	s := strings.Repeat("INSERT INTO clients (a) VALUES ('x') ", 30)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		isASCII(s)
	}
}

func TestMayChangeLexing(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"INSERT INTO t VALUES ('é')", false},
		{"SELECT CASE WHEN a THEN 1 END FROM t", false},
		{"SET client_encoding = 'LATIN1'", true},
		{`SET U&"client\005fencoding" = 'LATIN1'`, true},
		{"COMMIT", true},
		{"  end;", true},
		{"COMMIT AND CHAIN", true},
		{"/* x */ commit", true},
		{"/* /* */ x */ COMMIT", true},
		{"-- c\nEND", true},
		{"SET NAMES 'LATIN1'", true},
		{"RESET ALL", true},
		{"SELECT set_config('standard_conforming_strings', 'off', false)", true},
		{"ROLLBACK TO SAVEPOINT a", true},
	} {
		if got := mayChangeLexing(c.sql); got != c.want {
			t.Errorf("mayChangeLexing(%q) = %v, want %v", c.sql, got, c.want)
		}
	}
}
