package rewrite

import "strings"

// The text screens: what the proxy can tell of a statement from its bytes,
// before (and mostly instead of) parsing it. They err on the side of yes:
// a statement they let through unparsed names no policy table and carries
// no value of one. They read the whole text, strings and comments
// included, so they run once per statement and must stay cheap.

// MayMention reports, without parsing, whether sql could involve a policy
// column: it contains a policy table name (or an ExtraNames entry) in any
// case, a Unicode-escaped identifier (U&"..."), EXECUTE, or a statement
// that changes what prepared statement names run (PREPARE, DEALLOCATE,
// DISCARD), or RENAME (of a schema holding policy tables). When it is false,
// Analyze would report MayInvolvePolicy false, so the caller may relay the
// statement without analysing it. This keeps statements whose text changes
// with every call (literals inlined by a driver or ORM) from missing the
// cache and paying for a parse.
func (a *Analyzer) MayMention(sql string) bool {
	return a.MayMentionValues(sql) || anyWord(sql, statementNameWords) || containsFold(sql, "rename") || anyWord(sql, typeCascadeWords)
}

// MayMentionValues is MayMention without the statements that only change
// what prepared statement names run: it reports whether sql may carry
// values of policy columns (a policy table's name, U&"…", EXECUTE). A
// statement for which it is false has no value to encrypt, whatever it
// names.
func (a *Analyzer) MayMentionValues(sql string) bool {
	return a.valueWords.in(sql) || (containsFold(sql, "domain") && containsFold(sql, "alter"))
}

// writeWords are in every statement that writes rows.
var writeWords = []string{"insert", "update", "delete", "merge", "copy"}

// valueTexts are, besides the policy tables' names, what makes
// MayMentionValues true: U&"…" escapes, dynamic SQL, functions that read
// whole tables or files, code and foreign tables.
var valueTexts = []string{"u&", "execute", "_to_xml", "dblink", "ts_stat", "ts_rewrite", "trigger", "pg_read", "language", "foreign"}

// foldSet finds any of a set of lower-case strings in a text in one pass,
// ASCII-case-insensitively: at each byte it compares only the strings that
// start with that byte.
type foldSet struct {
	byFirst [256][]string
}

func newFoldSet(lower []string) *foldSet {
	fs := &foldSet{}
	for _, w := range lower {
		if w != "" {
			fs.byFirst[w[0]] = append(fs.byFirst[w[0]], w)
		}
	}
	return fs
}

// in reports whether s contains one of the set's strings.
func (fs *foldSet) in(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		for _, w := range fs.byFirst[c] {
			if len(w) <= len(s)-i && equalFoldLower(s[i+1:i+len(w)], w[1:]) {
				return true
			}
		}
	}
	return false
}

// typeCascadeWords are in ALTER TYPE … ATTRIBUTE … CASCADE, which changes
// the columns of typed tables (see alterTable).
var typeCascadeWords = []string{"attribute"}

var statementNameWords = []string{"prepare", "deallocate", "discard"}

// MayChangeResolution spots, without parsing, statements that can change
// what a table name resolves to or which prepared statements exist: SET or
// RESET of search_path or role, DISCARD, and DDL that creates, renames,
// alters or drops relations or schemas. It errs on the side of yes; a
// caller re-reads its catalog after such a statement.
func MayChangeResolution(sql string) bool {
	// Keywords are words: created_at is not CREATE.
	return anyWord(sql, resolutionWords) || containsFold(sql, `u&"`)
}

var resolutionWords = append([]string{"search_path", "role", "authorization", "discard", "reset", "rename", "schema", "create", "drop", "alter", "set_config", "pg_settings", "do", "call"}, catalogTables...)

// MentionsAnyWord is MentionsAny for whole words: "end" is not in "pending".
func MentionsAnyWord(sql string, lowerWords []string) bool {
	return anyWord(sql, lowerWords)
}

// FirstWord returns the first of the lower-case words that sql holds as a
// whole word (as anyWord), or "".
func FirstWord(sql string, lowerWords []string) string {
	return firstWord(sql, lowerWords)
}

// anyWord reports whether sql holds one of the lower-case words as a whole
// word, ASCII-case-insensitively. One pass over sql, without allocating.
func anyWord(sql string, lowerWords []string) bool { return firstWord(sql, lowerWords) != "" }

func firstWord(sql string, lowerWords []string) string {
	var buf [32]byte
	// starts[n] has bit firstBit(c) set when a word of length n starts
	// with c: most words of the text are passed over on that alone.
	var starts [len(buf) + 1]uint32
	for _, w := range lowerWords {
		if n := len(w); n > 0 && n <= len(buf) {
			starts[n] |= firstBit(w[0])
		}
	}
	for i := 0; i < len(sql); {
		if !isIdentByte(sql[i]) {
			i++
			continue
		}
		j := i
		for j < len(sql) && isIdentByte(sql[j]) {
			j++
		}
		if n := j - i; n <= len(buf) && starts[n]&firstBit(sql[i]) != 0 {
			for k := 0; k < n; k++ {
				c := sql[i+k]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				buf[k] = c
			}
			for _, w := range lowerWords {
				if len(w) == n && string(buf[:n]) == w {
					return w
				}
			}
		}
		i = j
	}
	return ""
}

// firstBit is a bit for the byte c, the same for both cases of a letter.
func firstBit(c byte) uint32 {
	if c |= 0x20; 'a' <= c && c <= 'z' {
		return 1 << (c - 'a')
	}
	return 1 << 26 // anything else: compared in full
}

// TextSpellings returns the lower-case strings that statement text naming
// the relation name must contain, for MentionsAny and the other text scans.
// PostgreSQL folds only ASCII letters of unquoted names, and the scans fold
// only ASCII, so a name with other capitals ("Ärzte") is listed as such; a
// double quote in a name is written doubled inside a quoted identifier.
// (Names spelled with U&"…" escapes are caught by their "u&".)
func TextSpellings(name string) []string {
	ascii := []byte(name)
	for i, c := range ascii {
		if 'A' <= c && c <= 'Z' {
			ascii[i] = c + 'a' - 'A'
		}
	}
	out := []string{string(ascii)}
	if l := strings.ToLower(name); l != out[0] {
		out = append(out, l) // for scans that lower the text with strings.ToLower
	}
	for _, n := range out {
		if strings.Contains(n, `"`) {
			out = append(out, strings.ReplaceAll(n, `"`, `""`))
		}
	}
	return out
}

// MentionsAny reports whether sql contains any of the lower-case names,
// ASCII-case-insensitively (a conservative test for "may reference").
func MentionsAny(sql string, lowerNames []string) bool {
	for _, n := range lowerNames {
		if containsFold(sql, n) {
			return true
		}
	}
	return false
}

// containsFold is strings.Contains, ASCII-case-insensitive, for a lower-case
// needle, without allocating. It jumps between occurrences of the needle's
// first byte in either case with strings.IndexByte, each case's next
// occurrence found once, so the text is read a bounded number of times.
func containsFold(s, lowerNeedle string) bool {
	n := len(lowerNeedle)
	if n == 0 {
		return true
	}
	limit := len(s) - n + 1 // candidates start before limit
	lo, up := lowerNeedle[0], lowerNeedle[0]
	if 'a' <= lo && lo <= 'z' {
		up = lo - ('a' - 'A')
	}
	const unknown, none = -2, -1
	nextLo, nextUp := unknown, unknown
	if up == lo {
		nextUp = none
	}
	next := func(at *int, c byte, i int) {
		if *at != none && *at < i {
			if k := strings.IndexByte(s[i:limit], c); k < 0 {
				*at = none
			} else {
				*at = i + k
			}
		}
	}
	for i := 0; i < limit; {
		next(&nextLo, lo, i)
		next(&nextUp, up, i)
		j := nextLo
		if j == none || (nextUp != none && nextUp < j) {
			j = nextUp
		}
		if j == none {
			return false
		}
		if equalFoldLower(s[j+1:j+n], lowerNeedle[1:]) {
			return true
		}
		i = j + 1
	}
	return false
}

// equalFoldLower reports whether s, ASCII letters folded to lower case, is
// lower.
func equalFoldLower(s, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
