package proxy

import (
	"errors"
	"strings"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// How the proxy makes sure it reads a statement's literals, and a Bind's
// values, under the settings PostgreSQL will read them with
// (standard_conforming_strings and client_encoding).

// Why a statement carrying values of policy columns is not analysed (see
// lexingKnown).
var (
	errLexUTF8       = errors.New("statements on encrypted columns need client_encoding UTF8: PostgreSQL cannot convert encrypted values between encodings")
	errLexSCS        = errors.New("statements on encrypted columns that contain a backslash need standard_conforming_strings = on (the default): with it off the proxy cannot tell where literals end; use parameters, or turn it back on")
	errLexSCSDepends = errors.New("statements on encrypted columns must not hold a backslash that ends a '…' literal differently with standard_conforming_strings off (\\' or a trailing backslash): the server reports a change of that setting (a configuration reload, set_config) only after the statement it applies to has run; use parameters, or an E'…' string")
	errLexMultibyte  = errors.New("statements on encrypted columns must not hold a backslash right after a non-ASCII character: in SJIS, BIG5, GBK or GB18030 it would be that character's second byte, and a configuration reload can switch client_encoding unseen; use parameters")
	errLexSameText   = errors.New("a statement on encrypted columns that contains a backslash or a non-ASCII character must not share its text with statements that may change client_encoding or standard_conforming_strings (SET NAMES, set_config, RESET ALL, …): PostgreSQL reports the change only when the text has run; send them as queries of their own")
	errLexInGroup    = errors.New("a statement on encrypted columns that contains a backslash or a non-ASCII character, or a Bind of a non-ASCII value for one, must not follow, before a Sync, the Execute of a statement that may change client_encoding or standard_conforming_strings (for a backslash, any Execute: a view, rule or trigger may call set_config): PostgreSQL reports the change only at the Sync; send a Sync between them")
	errLexUnsettled  = errors.New("a statement on encrypted columns that contains a backslash or a non-ASCII character must not be sent while a COPY runs: the statements before it may change standard_conforming_strings or client_encoding, which decide what its literals say")
	errParamsUTF8    = errors.New("values for encrypted columns need client_encoding UTF8: PostgreSQL would convert the parameter from the client's encoding, and cannot convert an encrypted value; set client_encoding to UTF8")
)

// isASCII reports whether b holds only ASCII bytes, eight at a time.
func isASCII[T string | []byte](b T) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
			uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lexingKnown says whether the proxy may lex sql, a statement that may
// carry values of policy columns, as PostgreSQL will. The proxy lexes as
// PostgreSQL does with standard_conforming_strings on and UTF8. Those two
// settings change where tokens end only through the backslash byte: with
// standard_conforming_strings off it escapes the next character in '...',
// and in the client encodings that are not ASCII-safe (SJIS, BIG5, GBK,
// UHC, GB18030) 0x5c may be the second byte of a character. No quote, $
// or comment character can be. What a literal says also depends on the
// encoding through its non-ASCII bytes. So an ASCII text without a
// backslash lexes and reads the same under every setting and needs none
// known. Any other is analysed only under the settings the server last
// reported, with everything sent before it answered: any earlier
// statement may have changed them unseen (set_config in a SELECT, a
// FunctionCall, a user function), so the proxy waits for those answers
// first (settleSent). A configuration reload applies before the next
// statement but is reported after it, so a text whose '…' literals end
// elsewhere with standard_conforming_strings off is refused whatever was
// reported. (A value in a '…' literal with a backslash is encrypted as
// written with the setting on, what every driver that sends literals
// means; a reload in that window makes PostgreSQL read escapes in it,
// docs/sql.md.)
func (s *session) lexingKnown(sql string) error {
	sp := s.pol
	if sp.nonUTF8.Load() {
		return errLexUTF8
	}
	backslash := strings.IndexByte(sql, '\\') >= 0
	if !backslash && isASCII(sql) {
		return nil
	}
	if strings.Contains(strings.TrimRight(sql, "; \t\r\n"), ";") && mayChangeLexing(sql) {
		return errLexSameText
	}
	if backslash && !sp.atBoundary && sp.runGroup == s.track.Groups()+1 {
		// standard_conforming_strings decides what its backslashes say,
		// and anything run earlier in the group may have changed it
		// unseen (a view, rule or trigger calling set_config).
		return errLexInGroup
	}
	if err := s.lexingSettled(); err != nil {
		return err
	}
	switch {
	case !backslash:
		return nil
	case sp.nonStandardStrings.Load():
		return errLexSCS
	case rewrite.BackslashAfterMultibyte(sql):
		return errLexMultibyte
	case rewrite.LiteralsDependOnSCS(sql):
		return errLexSCSDepends
	}
	return nil
}

// lexingSettled makes sure the settings the server last reported are the
// ones the client's next message meets: the answers to earlier groups
// report theirs at their ReadyForQuery, so the proxy waits for them
// (settleSent). A change made earlier in the current group is reported
// only at its end: then the proxy cannot know and refuses.
func (s *session) lexingSettled() error {
	sp := s.pol
	if !sp.atBoundary && sp.lexGroup == s.track.Groups()+1 {
		return errLexInGroup
	}
	if s.track.GroupsDone() < s.track.Groups() {
		if err := s.settleSent(); err != nil {
			return err
		}
		if sp.nonUTF8.Load() {
			return errLexUTF8
		}
	}
	return nil
}

// lexWords are words of statements that may change client_encoding or
// standard_conforming_strings (or undo a change) when they run.
var lexWords = []string{"client_encoding", "standard_conforming_strings", "set_config", "pg_settings", "discard", "rollback", "abort", "execute", "do", "call"}

// mayChangeLexing reports whether running sql may change the settings that
// decide what a literal or a parameter says: SET or RESET of
// client_encoding or standard_conforming_strings, SET NAMES, RESET ALL,
// set_config, DISCARD ALL, a ROLLBACK that undoes a SET, or code that may
// do any of these (DO, CALL, EXECUTE). A function that calls set_config
// is not seen (docs/sql.md).
func mayChangeLexing(sql string) bool {
	if strings.Contains(sql, `U&"`) || strings.Contains(sql, `u&"`) {
		return true // a name spelled with escapes (U&"client\005fencoding")
	}
	switch firstWord(sql) {
	case "commit", "end":
		return true // the end of a transaction undoes its SET LOCAL
	}
	return rewrite.MentionsAnyWord(sql, lexWords) ||
		(rewrite.MentionsAnyWord(sql, []string{"set", "reset"}) && rewrite.MentionsAnyWord(sql, []string{"names", "all"}))
}

// firstWord returns sql's first word in lower case, after spaces and
// comments.
func firstWord(sql string) string {
	for {
		sql = strings.TrimLeft(sql, " \t\r\n\f(")
		switch {
		case strings.HasPrefix(sql, "--"):
			if i := strings.IndexByte(sql, '\n'); i >= 0 {
				sql = sql[i+1:]
				continue
			}
			return ""
		case strings.HasPrefix(sql, "/*"):
			// Comments nest in PostgreSQL.
			depth, i := 0, 0
			for i+1 < len(sql) {
				switch sql[i : i+2] {
				case "/*":
					depth, i = depth+1, i+2
				case "*/":
					depth, i = depth-1, i+2
				default:
					i++
				}
				if depth == 0 {
					break
				}
			}
			if depth != 0 {
				return ""
			}
			sql = sql[i:]
			continue
		}
		end := 0
		for end < len(sql) && (sql[end] >= 'a' && sql[end] <= 'z' || sql[end] >= 'A' && sql[end] <= 'Z' || sql[end] == '_') {
			end++
		}
		return strings.ToLower(sql[:end])
	}
}
