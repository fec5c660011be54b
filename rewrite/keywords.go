package rewrite

import (
	"slices"
	"strings"
)

// Keyword is a word's place in a PostgreSQL grammar, as pg_get_keywords()
// reports it.
type Keyword struct {
	Category  byte // U unreserved, C column name, T type or function name, R reserved
	BareLabel bool // may label a column without AS
}

// KeywordsDiffer returns, sorted, the words that the server's grammar
// (its pg_get_keywords()) and the proxy's parser put in different
// categories. A statement that uses one of them may parse one way in the
// proxy and another on the server (system_user is a column name before
// PostgreSQL 16, a function from 16 on), so the proxy must not analyse
// it. An unreserved keyword stands wherever a name may, so a word that is
// unreserved in one grammar and no keyword in the other does not count,
// nor does whether a keyword may label a column without AS (a difference
// there makes one side reject the statement, never read it otherwise).
func KeywordsDiffer(server map[string]Keyword) []string {
	cat := func(k Keyword, ok bool) byte {
		if !ok {
			return 'U'
		}
		return k.Category
	}
	var out []string
	for w, k := range parserKeywords {
		sk, ok := server[w]
		if cat(sk, ok) != k.Category {
			out = append(out, w)
		}
	}
	for w, sk := range server {
		if _, ok := parserKeywords[w]; !ok && sk.Category != 'U' {
			out = append(out, strings.ToLower(w))
		}
	}
	slices.Sort(out)
	return out
}
