package rewrite

import (
	"regexp"
	"strings"
)

// LiteralsDependOnSCS reports whether sql lexes differently with
// standard_conforming_strings off than with it on: whether a backslash
// in a plain '…' literal (or N'…') would, with the setting off, escape the
// quote that ends it with the setting on, or the reverse. Comments, quoted
// identifiers, dollar quotes and E'…', B'…', X'…' and U&'…' strings lex
// the same either way. The server reports the setting only after the
// statement that changed it has run (a configuration reload applies
// before the next statement, a set_config inside a query at once), so a
// text whose tokens depend on it cannot be analysed safely at all.
func LiteralsDependOnSCS(sql string) bool {
	for _, lit := range plainLiterals(sql) {
		if lit.end != stringEnd(sql, lit.start, true) {
			return true
		}
	}
	return false
}

// stringEnd is quotedEnd for a string literal, with the segments that
// continue it (a quote after whitespace holding a newline) taken in.
func stringEnd(sql string, open int, backslashes bool) int {
	end := quotedEnd(sql, open, backslashes)
	for end > 0 {
		next := continuation(sql, end)
		if next < 0 {
			break
		}
		end = quotedEnd(sql, next, backslashes)
	}
	return end
}

// continuation returns the offset of the quote that continues a string
// ending at end, or -1: PostgreSQL joins 'a'<newline>'b' into 'ab' when
// only whitespace, with at least one newline, stands between. (Before
// PostgreSQL 17 comments may stand between too; taking those segments
// for literals of their own errs towards refusing.)
func continuation(sql string, end int) int {
	i, newline := end, false
	for i < len(sql) {
		switch c := sql[i]; {
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == '\'' && newline:
			return i
		default:
			return -1
		}
	}
	return -1
}

// span is a token's byte range; end is -1 when it is not terminated.
type span struct{ start, end int }

// plainLiterals returns the plain '…' literals of sql, lexed as
// PostgreSQL does with standard_conforming_strings on: start is the
// opening quote's offset, end just past the closing quote. It stops at
// the first one that is not terminated.
func plainLiterals(sql string) []span {
	var out []span
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' && sql[i] != '\r' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			depth := 0
		comment:
			for i < n {
				switch {
				case sql[i] == '/' && i+1 < n && sql[i+1] == '*':
					depth++
					i += 2
				case sql[i] == '*' && i+1 < n && sql[i+1] == '/':
					depth--
					i += 2
					if depth == 0 {
						break comment
					}
				default:
					i++
				}
			}
			if depth > 0 {
				return out // not closed: the server rejects the text
			}
		case c == '"':
			if i = quotedEnd(sql, i, false); i < 0 {
				return out
			}
		case c == '$':
			i = dollarEnd(sql, i)
			if i < 0 {
				return out
			}
		case c == '\'':
			end := stringEnd(sql, i, false)
			out = append(out, span{i, end})
			if end < 0 {
				return out
			}
			i = end
		case isIdentStart(c):
			j := i + 1
			for j < n && (isIdentByte(sql[j]) || sql[j] == '$') {
				j++
			}
			word := sql[i:j]
			switch {
			case j < n && sql[j] == '\'' && (word == "e" || word == "E"):
				// Backslash escapes whatever the setting.
				if i = stringEnd(sql, j, true); i < 0 {
					return out
				}
				continue
			case j < n && sql[j] == '\'' && (word == "b" || word == "B" || word == "x" || word == "X"):
				// A bit string ends at the next quote (no doubling).
				for seg := j; ; {
					k := strings.IndexByte(sql[seg+1:], '\'')
					if k < 0 {
						return out
					}
					end := seg + 1 + k + 1
					if next := continuation(sql, end); next >= 0 {
						seg = next
						continue
					}
					i = end
					break
				}
				continue
			case j+1 < n && sql[j] == '&' && sql[j+1] == '\'' && (word == "u" || word == "U"):
				if i = stringEnd(sql, j+1, false); i < 0 {
					return out
				}
				continue
			case j+1 < n && sql[j] == '&' && sql[j+1] == '"' && (word == "u" || word == "U"):
				if i = quotedEnd(sql, j+1, false); i < 0 {
					return out
				}
				continue
			}
			i = j // a name, keyword or N prefix: a quote after it starts a plain literal
		case c >= '0' && c <= '9':
			i = numberEnd(sql, i)
		default:
			i++
		}
	}
	return out
}

// isIdentStart reports whether c may start an unquoted name.
func isIdentStart(c byte) bool {
	return c == '_' || c >= 0x80 || 'a' <= c|0x20 && c|0x20 <= 'z'
}

// quotedEnd returns the offset just past the quote (' or ") that closes
// the token opened at sql[open], a doubled quote standing for one, and a
// backslash escaping the next byte when backslashes is set; -1 when it is
// not closed.
func quotedEnd(sql string, open int, backslashes bool) int {
	q := sql[open]
	for j := open + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			if backslashes {
				j++
			}
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

// dollarEnd returns the offset just past the dollar-quoted string that
// starts at sql[i], or i+1 when sql[i] starts no such string (a parameter
// such as $1); -1 when it is not closed.
func dollarEnd(sql string, i int) int {
	j := i + 1
	if j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		return j // a parameter
	}
	for j < len(sql) && sql[j] != '$' {
		c := sql[j]
		if !(isIdentStart(c) || j > i+1 && c >= '0' && c <= '9') {
			return i + 1
		}
		j++
	}
	if j >= len(sql) {
		return i + 1
	}
	tag := sql[i : j+1]
	for k := j + 1; k+len(tag) <= len(sql); k++ {
		if sql[k:k+len(tag)] == tag {
			return k + len(tag)
		}
	}
	return -1
}

// numberEnd returns the offset past the number that starts at sql[i]:
// digits, a fraction (not "..", which a range uses), an exponent.
func numberEnd(sql string, i int) int {
	digits := func(j int) int {
		for j < len(sql) && (sql[j] >= '0' && sql[j] <= '9' || sql[j] == '_') {
			j++
		}
		return j
	}
	j := digits(i)
	if j < len(sql) && sql[j] == '.' && !(j+1 < len(sql) && sql[j+1] == '.') {
		j = digits(j + 1)
	}
	if j < len(sql) && (sql[j] == 'e' || sql[j] == 'E') {
		k := j + 1
		if k < len(sql) && (sql[k] == '+' || sql[k] == '-') {
			k++
		}
		if k < len(sql) && sql[k] >= '0' && sql[k] <= '9' {
			j = digits(k)
		}
	}
	return j
}

// continuedAcrossComment matches a string literal's closing quote, then
// whitespace with a newline, with -- comments on the quote's line or on
// lines of their own, then a quote: with a comment among them, PostgreSQL
// before 17 joins the two strings into one, while the proxy's parser (17)
// reads two tokens.
var continuedAcrossComment = regexp.MustCompile(`'(?:[ \t\f\v]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*[\n\r])*'`)

// ContinuesAcrossComment reports whether sql may hold a string literal
// continued on a later line with only -- comments and whitespace between,
// which PostgreSQL before 17 joins into one string and the proxy's parser
// does not ('BEGIN ' <newline> -- c <newline> 'INSERT …'). It errs towards
// yes: the form is rare, and the two readings may differ in anything.
func ContinuesAcrossComment(sql string) bool {
	if !strings.Contains(sql, "--") {
		return false
	}
	for _, m := range continuedAcrossComment.FindAllStringIndex(sql, -1) {
		if strings.Contains(sql[m[0]:m[1]], "--") {
			return true
		}
	}
	return false
}

// BackslashAfterMultibyte reports whether a backslash in sql follows a
// byte of a multibyte character: in SJIS, BIG5, GBK and GB18030 that
// backslash would be the character's second byte, not an escape, and a
// configuration reload may switch client_encoding to one of those unseen.
func BackslashAfterMultibyte(sql string) bool {
	for i := 1; i < len(sql); i++ {
		if sql[i] == '\\' && sql[i-1] >= 0x80 {
			return true
		}
	}
	return false
}
