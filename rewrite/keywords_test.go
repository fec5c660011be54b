package rewrite

import (
	"slices"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// TestParserKeywords checks the keyword table against the parser itself,
// so that it follows a pg_query_go upgrade.
func TestParserKeywords(t *testing.T) {
	cats := map[pg_query.KeywordKind]byte{
		pg_query.KeywordKind_UNRESERVED_KEYWORD:     'U',
		pg_query.KeywordKind_COL_NAME_KEYWORD:       'C',
		pg_query.KeywordKind_TYPE_FUNC_NAME_KEYWORD: 'T',
		pg_query.KeywordKind_RESERVED_KEYWORD:       'R',
	}
	for w, k := range parserKeywords {
		res, err := pg_query.Scan(w)
		if err != nil || len(res.Tokens) != 1 {
			t.Fatalf("%s: %v %v", w, res, err)
		}
		if got := cats[res.Tokens[0].KeywordKind]; got != k.Category {
			t.Errorf("%s: the parser has category %c, the table %c", w, got, k.Category)
		}
	}
	// A word that is no keyword scans as an identifier.
	if res, _ := pg_query.Scan("clients"); res.Tokens[0].KeywordKind != pg_query.KeywordKind_NO_KEYWORD {
		t.Fatal("clients scanned as a keyword")
	}
}

func TestKeywordsDiffer(t *testing.T) {
	server := map[string]Keyword{}
	for w, k := range parserKeywords {
		server[w] = k
	}
	if d := KeywordsDiffer(server); len(d) != 0 {
		t.Fatalf("the same grammar differs in %v", d)
	}
	// PostgreSQL 15: system_user is no keyword, json_object no keyword
	// either, absent no keyword (but only unreserved in the parser); and
	// keywords the parser lacks, one reserved.
	delete(server, "system_user")
	delete(server, "json_object")
	delete(server, "absent")
	server["frobnicate"] = Keyword{'U', true}
	server["zorch"] = Keyword{'R', false}
	if d, want := KeywordsDiffer(server), []string{"json_object", "system_user", "zorch"}; !slices.Equal(d, want) {
		t.Fatalf("got %v, want %v", d, want)
	}
}
