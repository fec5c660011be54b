package rewrite

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Options tune an Analyzer.
type Options struct {
	// CacheSize is the number of analyses kept, by exact SQL text
	// (default 4096; negative disables the cache). Eviction is CLOCK
	// (second chance): an entry used since the last sweep survives it.
	CacheSize int
	// MaxCachedSQL is the length above which a statement is analysed but
	// not cached (default 64 KiB), so large one-off statements (bulk
	// INSERTs with literals) do not crowd out prepared ones.
	MaxCachedSQL int
	// ExtraNames are more bare relation names that make
	// Analysis.MayInvolvePolicy true: views over policy tables,
	// partitions and inheritance children of policy tables, or anything
	// else the proxy wants analysed. The resolver decides what they are.
	ExtraNames []string
}

// Analyzer analyses statements for one Policy and caches the results. It is
// safe for concurrent use; create one per policy and share it between
// sessions.
type Analyzer struct {
	pol   *Policy
	names map[string]struct{} // bare names that may involve the policy
	lower []string            // the same, lower-cased, for the parse-failure scan
	// valueWords finds lower and valueTexts (MayMentionValues).
	valueWords *foldSet
	cache      *clockCache
	shapes     *clockCache // by shape (shapeOf), of texts that have strings
	parses     atomic.Uint64
	maxSQL     int
	noCache    bool
}

// NewAnalyzer returns an Analyzer for p.
func NewAnalyzer(p *Policy, opts Options) *Analyzer {
	a := &Analyzer{pol: p, names: make(map[string]struct{}), maxSQL: opts.MaxCachedSQL}
	for n := range p.names {
		a.names[n] = struct{}{}
	}
	for _, n := range opts.ExtraNames {
		a.names[n] = struct{}{}
	}
	for n := range a.names {
		a.lower = append(a.lower, TextSpellings(n)...)
	}
	a.valueWords = newFoldSet(append(append([]string(nil), a.lower...), valueTexts...))
	if a.maxSQL <= 0 {
		a.maxSQL = 64 << 10
	}
	switch {
	case opts.CacheSize < 0:
		a.noCache = true
	case opts.CacheSize == 0:
		a.cache = newClockCache(4096)
	default:
		a.cache = newClockCache(opts.CacheSize)
	}
	if a.cache != nil {
		a.shapes = newClockCache(a.cache.max)
	}
	return a
}

// Policy returns the analyzer's policy.
func (a *Analyzer) Policy() *Policy { return a.pol }

// CacheStats returns the cache counters (zero when the cache is disabled).
func (a *Analyzer) CacheStats() CacheStats {
	if a.noCache {
		return CacheStats{}
	}
	st := a.cache.stats()
	sh := a.shapes.stats()
	st.Hits += sh.Hits
	st.ShapeHits = sh.Hits
	st.Misses = a.parses.Load()
	return st
}

// Analyze parses sql (one statement, or several separated by semicolons as
// in a simple Query message) and returns its analysis. Results, including
// parse errors, are cached by exact text: a cache hit does not parse and
// does not allocate. A text that differs from an analysed one only in what
// its '…' strings hold is not parsed either (see shape.go).
//
// When sql cannot be parsed the error is a *ParseError (errors.Is
// ErrParse); see ParseError.MayInvolvePolicy for what the proxy may do.
func (a *Analyzer) Analyze(sql string) (*Analysis, error) {
	if a.noCache {
		a.parses.Add(1)
		return a.analyze(sql)
	}
	if an, err, ok := a.cache.get(sql); ok {
		return an, err
	}
	key, spans, shaped := shapeOf(sql)
	shaped = shaped && len(spans) > 0 && len(sql) <= a.maxSQL // the analysis keeps its text
	if shaped {
		if rep, _, ok := a.shapes.get(key); ok {
			return &Analysis{sql: sql, tree: rep.tree, az: a, relations: rep.relations, mayInvolve: rep.mayInvolve, rep: rep, spans: spans}, nil
		}
	}
	a.parses.Add(1)
	an, err := a.analyze(sql)
	if shaped && err == nil && an.dmlOnly() {
		an.spans = spans
		a.shapes.put(key, an, nil)
		return an, nil // the shape stands for it
	}
	if len(sql) <= a.maxSQL {
		a.cache.put(sql, an, err)
	}
	return an, err
}

// dmlOnly reports whether every statement of the text is a SELECT, INSERT,
// UPDATE, DELETE or MERGE: the texts whose analysis reads strings only for
// their values (see shape.go).
func (an *Analysis) dmlOnly() bool {
	for _, raw := range an.tree.Stmts {
		switch raw.Stmt.GetNode().(type) {
		case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt:
		default:
			return false
		}
	}
	return true
}

func (a *Analyzer) analyze(sql string) (*Analysis, error) {
	if strings.IndexByte(sql, 0) >= 0 {
		return nil, &ParseError{msg: "statement contains a NUL byte", Cursor: strings.IndexByte(sql, 0), MayInvolvePolicy: a.unparsableMayInvolve(sql)}
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		pe := &ParseError{msg: redactParseMessage(err.Error()), Cursor: -1, MayInvolvePolicy: a.unparsableMayInvolve(sql), err: err}
		var perr *pgparser.Error
		if errors.As(err, &perr) && perr.Cursorpos > 0 {
			pe.Cursor = charToByteOffset(sql, perr.Cursorpos-1)
		}
		return nil, pe
	}
	an := &Analysis{sql: sql, tree: tree, az: a}
	c := collect(tree, a)
	an.relations = c.relations
	an.mayInvolve = c.mayInvolve
	return an, nil
}

// ChangesNames reports whether running sql may change, for later
// statements, what names refer to or which columns relations have: DDL,
// SET or RESET of the search_path or role, DISCARD, set_config, a write to
// pg_settings. MayChangeResolution filters; the parse tree decides, so a
// column named role or a created_at does not count. Transaction ends are
// left to the caller. Text that cannot be parsed counts as changing.
func (a *Analyzer) ChangesNames(sql string) bool {
	return MayChangeResolution(sql) && a.anyStatement(sql, true, func(n *pg_query.Node) bool {
		_, txn := n.GetNode().(*pg_query.Node_TransactionStmt)
		return !txn && changesResolution(n)
	})
}

// WritesCatalog reports whether sql writes to a system catalog directly
// (UPDATE pg_class SET relname = …), which renames or changes relations
// the way DDL does.
func (a *Analyzer) WritesCatalog(sql string) bool {
	// A catalog's name may be spelled with U&"…" escapes.
	return (anyWord(sql, catalogTables) || containsFold(sql, "u&")) && anyWord(sql, writeWords) && a.anyStatement(sql, true, writesCatalog)
}

// anyStatement reports whether one of sql's statements satisfies pred;
// unparsable text gives ifUnparsable.
func (a *Analyzer) anyStatement(sql string, ifUnparsable bool, pred func(*pg_query.Node) bool) bool {
	an, err := a.Analyze(sql)
	if err != nil {
		return ifUnparsable
	}
	for _, raw := range an.tree.Stmts {
		if pred(raw.Stmt) {
			return true
		}
	}
	return false
}

// mayChangePathText is the cheap filter in front of the parse-tree checks
// below: words a statement that changes the search_path or role contains.
func mayChangePathText(sql string) bool {
	return anyWord(sql, pathWords) || containsFold(sql, `u&"`)
}

var pathWords = []string{"search_path", "set_config", "pg_settings", "role", "authorization", "discard", "schema", "reset"}

// ChangesPathWhenRun reports whether running sql may change the search_path
// or the role (which "$user" in the search_path follows): SET or RESET of
// them (SET SCHEMA, RESET ALL), DISCARD, a call of set_config, a write to
// pg_settings. The proxy asks it of each prepared statement and notes the
// change at every run. Text that cannot be parsed counts as changing.
func (a *Analyzer) ChangesPathWhenRun(sql string) bool {
	return mayChangePathText(sql) && a.anyStatement(sql, true, stmtChangesPath)
}

// DefersPathChange reports whether sql prepares a change of the search_path
// that would run later, out of the proxy's sight: a PREPARE or DECLARE
// CURSOR of such a statement. (A DO block runs at once: ChangesNames.)
func (a *Analyzer) DefersPathChange(sql string) bool {
	// Unparsable text: PostgreSQL refuses it too, with its own error.
	return mayChangePathText(sql) && a.anyStatement(sql, false, func(n *pg_query.Node) bool {
		switch x := n.GetNode().(type) {
		case *pg_query.Node_PrepareStmt:
			return stmtChangesPath(x.PrepareStmt.Query)
		case *pg_query.Node_DeclareCursorStmt:
			return stmtChangesPath(x.DeclareCursorStmt.Query)
		}
		return false
	})
}

// stmtChangesPath reports whether running a statement may change the
// search_path or the role.
func stmtChangesPath(n *pg_query.Node) bool {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_VariableSetStmt:
		if x.VariableSetStmt.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
			return true
		}
		switch strings.ToLower(x.VariableSetStmt.Name) { // "Search_Path" is the same setting
		case "search_path", "role", "session_authorization":
			return true
		}
		return false
	case *pg_query.Node_DiscardStmt, *pg_query.Node_DoStmt, *pg_query.Node_CallStmt:
		return true // DO and procedures may run anything, dynamic SQL included
	}
	return callsSettings(n)
}

// callsSettings reports whether a statement calls set_config or names
// pg_settings anywhere (names as the parser decoded them).
func callsSettings(n *pg_query.Node) bool {
	var walk func(m protoreflect.Message) bool
	walk = func(m protoreflect.Message) bool {
		switch m.Descriptor() {
		case rangeVarDesc:
			if m.Interface().(*pg_query.RangeVar).Relname == "pg_settings" {
				return true
			}
		case funcCallDesc:
			if names := m.Interface().(*pg_query.FuncCall).Funcname; len(names) > 0 && names[len(names)-1].GetString_().GetSval() == "set_config" {
				return true
			}
		}
		found := false
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len() && !found; i++ {
					found = walk(l.Get(i).Message())
				}
			} else {
				found = walk(v.Message())
			}
			return !found
		})
		return found
	}
	return walk(n.ProtoReflect())
}

var funcCallDesc = (&pg_query.FuncCall{}).ProtoReflect().Descriptor()

// unparsableMayInvolve is the conservative scan used when parsing fails:
// what MayMention finds, or a backslash (an escape string may spell a
// name, the server may lex the text otherwise).
func (a *Analyzer) unparsableMayInvolve(sql string) bool {
	return a.MayMention(sql) || strings.IndexByte(sql, '\\') >= 0
}

// charToByteOffset converts PostgreSQL's character cursor to a byte offset.
func charToByteOffset(s string, chars int) int {
	n := 0
	for i := range s {
		if n == chars {
			return i
		}
		n++
	}
	return len(s)
}

// ErrParse is matched (errors.Is) by every *ParseError.
var ErrParse = errors.New("rewrite: cannot parse statement")

// ParseError is returned by Analyze for SQL that PostgreSQL's parser (the
// version pg_query_go embeds) rejects.
//
// The server would normally reject the text too, so relaying it is harmless
// for data at rest; but the server logs failed statements with their text
// (log_min_error_statement), and a newer server may accept syntax this
// parser does not know, possibly writing plaintext. Hence the rule for the
// proxy: when MayInvolvePolicy is true, reject the statement (fail closed);
// otherwise it may relay it and let the server answer.
type ParseError struct {
	msg string
	// Cursor is the byte offset (from 0) of the error, or -1.
	Cursor int
	// MayInvolvePolicy is true when the text contains, anywhere and in any
	// case, the name of a policy table (or of Options.ExtraNames), or
	// anything else by which MayMention finds names, or a backslash.
	MayInvolvePolicy bool
	err              error
}

// Error returns the parser's message with the quoted text near the error
// removed (it may be a value).
func (e *ParseError) Error() string {
	return "rewrite: cannot parse statement: " + e.msg
}

// Is reports whether target is ErrParse.
func (e *ParseError) Is(target error) bool { return target == ErrParse }

// Unwrap returns the parser's error, whose message may contain statement
// text: do not log it.
func (e *ParseError) Unwrap() error { return e.err }

// redactParseMessage drops the `at or near "..."` part of a parser message.
func redactParseMessage(m string) string {
	if i := strings.Index(m, " at or near "); i >= 0 {
		return m[:i]
	}
	if i := strings.IndexAny(m, "\"'"); i >= 0 {
		return strings.TrimSpace(m[:i])
	}
	return m
}

// Analysis is the parsed, policy-filtered form of one SQL text. It is
// immutable (but for an internal memo) and safe for concurrent use.
type Analysis struct {
	sql        string
	tree       *pg_query.ParseResult
	az         *Analyzer
	relations  []RelName
	mayInvolve bool
	memo       atomic.Pointer[planMemo]
	// spans are the text's '…' strings when it was analysed by shape;
	// rep, for a text that was not parsed, is the analysis of the text
	// of the same shape it shares a parse tree with, and full its own
	// analysis when one is needed after all (Plan).
	spans []span
	rep   *Analysis
	full  atomic.Pointer[Analysis]
}

type planMemo struct {
	resolved []Relation
	plan     *Plan
}

// SQL returns the analysed text.
func (an *Analysis) SQL() string { return an.sql }

// NumStatements returns the number of statements in the text.
func (an *Analysis) NumStatements() int { return len(an.tree.Stmts) }

// Relations returns the distinct relation names the statements reference,
// sorted by schema then name: FROM items, JOINs, subqueries, CTE bodies,
// INSERT/UPDATE/DELETE/MERGE targets, COPY, DDL targets. Names that turn
// out to be CTE references are included (the resolver's answer for them is
// ignored). Read-only.
func (an *Analysis) Relations() []RelName { return an.relations }

// MayInvolvePolicy reports whether the statements may touch a policy
// column: some referenced relation's bare name equals a policy table name
// (or an Options.ExtraNames entry), an SQL-level EXECUTE passes arguments
// (its prepared statement may insert them into a policy table), or a DO
// block mentions a policy table. When false, the proxy relays the
// statement untouched without calling Plan. The test is by name only: a
// view or a function over a policy table under another name is not caught
// unless listed in Options.ExtraNames.
func (an *Analysis) MayInvolvePolicy() bool { return an.mayInvolve }

// Plan resolves the referenced relations with resolve and returns the plan.
// The plan of the last resolution is memoized: when resolve gives the same
// answers again, Plan returns the same *Plan without re-analysing and
// without allocating.
func (an *Analysis) Plan(resolve Resolver) *Plan {
	if an.rep != nil {
		if p := an.rep.Plan(resolve).reshaped(an.sql, an.rep.spans, an.spans); p != nil {
			return p
		}
		full := an.full.Load()
		if full == nil {
			f, err := an.az.analyze(an.sql)
			if err != nil {
				// The same shape parsed before; it cannot fail now.
				return &Plan{rejections: []Rejection{{Reason: ReasonUnencryptableValue, Detail: "a statement the proxy could not parse again", Location: -1}}}
			}
			an.az.parses.Add(1)
			an.full.Store(f)
			full = f
		}
		return full.Plan(resolve)
	}
	if m := an.memo.Load(); m != nil {
		same := true
		for i, n := range an.relations {
			if !resolve(n).equal(m.resolved[i]) {
				same = false
				break
			}
		}
		if same {
			return m.plan
		}
	}
	resolved := make([]Relation, len(an.relations))
	rels := make(map[RelName]Relation, len(an.relations))
	for i, n := range an.relations {
		resolved[i] = resolve(n)
		rels[n] = resolved[i]
	}
	plan := buildPlan(an, rels)
	an.memo.Store(&planMemo{resolved: resolved, plan: plan})
	return plan
}

// String describes the analysis without statement text.
func (an *Analysis) String() string {
	return fmt.Sprintf("analysis of %d statement(s), %d relation(s), may involve policy: %t", len(an.tree.Stmts), len(an.relations), an.mayInvolve)
}
