package proxy

// Analysis of a session's statements: which statements to analyse, under
// which catalog and settings, with which names and column lists written
// in, and how a refusal is answered.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgarray"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// viewError refuses a statement that names a view over a policy table: the
// proxy cannot see which of its columns carry ciphertext, so it could neither
// encrypt what is written through it nor decrypt what is read.
type viewError struct {
	view  string
	was   string // for reachRenamed
	reach string // how it reaches a policy table (reachView, reachChild, reachParent)
}

func (e *viewError) Error() string {
	switch e.reach {
	case reachChild:
		return "table " + e.view + " is a partition or child of a table with encrypted columns; the proxy encrypts through the parent only, so use the parent table"
	case reachParent:
		return "table " + e.view + " has a table with encrypted columns among its partitions or inheritance children, whose rows it would write and read unencrypted; use that table itself"
	case reachRenamed:
		return "table " + e.view + " is policy table " + e.was + " renamed or moved by another connection, which the policy no longer covers; change the policy to the new name (associated_data keeps its values readable), then reload the proxy"
	case reachColumnGone:
		return "policy table " + e.view + " has no column " + e.was + " any more (renamed or dropped by another connection), so the proxy cannot tell which column holds its values; rename it back, or change the policy and reload the proxy"
	case reachForeignKey:
		return "table " + e.view + " is linked by a foreign key to encrypted column " + e.was + ", so its values and the column's would pass into each other unencrypted or encrypted (ON UPDATE CASCADE); drop the foreign key"
	}
	return "view " + e.view + " reads a table with encrypted columns, and the proxy cannot see through views; use the table itself"
}

// wholeTableFuncs are the functions that read whole tables, queries or
// schemas inside the server.
var wholeTableFuncs = rewrite.WholeTableFuncNames()

// opaqueCodeWords start statements whose code runs inside the server.
var opaqueCodeWords = []string{"do", "function", "procedure", "rule", "trigger"}

var (
	errCatalogWrite           = errors.New("a direct write to a system catalog (pg_class, pg_trigger, …) may rename a table with encrypted columns or attach code to it unseen; use DDL, or run it directly on the server")
	errOpaqueCodeView         = errors.New("a DO block, function, procedure, rule or trigger names a view, partition, child or parent of a table with encrypted columns; its statements would run inside the server, unseen; send them yourself")
	errArrayNulls             = errors.New("array_nulls decides whether NULL in an array is a NULL or the string \"NULL\"; the proxy reads arrays as the default (on) does, so it cannot be changed through the proxy")
	errContinuedAcrossComment = errors.New("a string literal continued on a later line with only -- comments between: PostgreSQL before 17 joins the two, the proxy's parser does not; put them on adjacent lines or use one literal")
)

var errDerivedColumn = errors.New("the statement names a generated column computed from an encrypted column, on its ciphertext (or a column of that name): what it holds is meaningless and would reach the client as ciphertext; drop the generated column")

var errWholeTableStored = errors.New("a function that reads whole tables or queries inside the server (query_to_xml, ts_stat and kin) in DDL: stored in a function, default, view or domain it runs later, where the proxy cannot see what it reads; create it directly on the server")

var errWholeTableView = errors.New("a function that reads a whole table, query or schema inside the server (query_to_xml, table_to_xml, ts_stat and kin) names a view, partition, child or parent of a table with encrypted columns, or a schema that holds one; the proxy cannot decrypt what it returns")

// rotationError refuses a comparison with a deterministic column whose
// keyring has several versions when the compared value stands where it
// can take only one envelope: rows stored under the other versions would
// silently not match.
type rotationError struct {
	col      string
	versions int
	written  bool // the value is also written
}

func (e *rotationError) Error() string {
	if e.written {
		return fmt.Sprintf("column %s is searched under %d key versions while a rotation may have left values under each, and this value is both written to it and compared with it, which one envelope cannot do for every version; send the value once for each use, or finish the rotation (pgcrypt-proxy rotate) and remove the old key version from keys.versions", e.col, e.versions)
	}
	return fmt.Sprintf("column %s is searched under %d key versions while a rotation may have left values under each, and this comparison can take one envelope only, so it would miss rows; "+
		"compare the column with a bare value or parameter (col = $1, col <> 'x', col IN ('a', 'b'), col IN ($1, $2), col = ANY($1)), or finish the rotation (pgcrypt-proxy rotate) and remove the old key version from keys.versions", e.col, e.versions)
}

// canceledError: the proxy's own catalog query was canceled (57014: the
// client's cancel request reached PostgreSQL while it ran in place of the
// client's statement, or statement_timeout). The client's statement is
// answered with PostgreSQL's error, as if it had been canceled itself,
// and the session goes on.
type canceledError struct{ msg string }

func (e *canceledError) Error() string {
	if e.msg == "" {
		return "canceling statement due to user request"
	}
	return e.msg
}

// refusedColumn returns the policy column a refusal names, or "".
func refusedColumn(err error) string {
	var r *rewrite.Rejection
	var he *hazardError
	var re *rotationError
	switch {
	case errors.As(err, &r) && r.Column != nil:
		return r.Column.String()
	case errors.As(err, &he):
		return he.col.String()
	case errors.As(err, &re):
		return re.col
	}
	return ""
}

// errTxFailed: the session is in a failed transaction, where the catalog
// query cannot run (nor can any statement but the one that ends it).
var errTxFailed = errors.New("current transaction is aborted, commands ignored until end of transaction block (the proxy could not read the schema this statement needs: send ROLLBACK, or ROLLBACK TO SAVEPOINT, as a statement of its own)")

func (s *session) rejectPlan(extended bool, err error) error {
	s.pol.auditCol = refusedColumn(err)
	if errors.Is(err, errTxFailed) {
		return s.reject(extended, "25P02", "pgcrypt-proxy: "+err.Error(), "", "other")
	}
	var he *hazardError
	if errors.As(err, &he) {
		s.log.Warn("write refused: schema hazard", "column", he.col.String(), "hazard", he.what)
		return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+he.Error(), "", "schema_hazard")
	}
	var le *lengthError
	if errors.As(err, &le) {
		return s.reject(extended, "22001", "pgcrypt-proxy: "+le.Error(), "", "value_too_long")
	}
	if errors.Is(err, pgarray.ErrMalformed) {
		return s.reject(extended, "22P02", "pgcrypt-proxy: "+err.Error(), "", "malformed_value")
	}
	if errors.Is(err, errInvalidText) {
		return s.reject(extended, "22021", "pgcrypt-proxy: "+err.Error(), "", "malformed_value")
	}
	var ce *canceledError
	if errors.As(err, &ce) {
		return s.reject(extended, "57014", ce.Error(), "", "canceled")
	}
	var re *rotationError
	if errors.As(err, &re) {
		return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+re.Error(), "", "key_rotation")
	}
	if errors.Is(err, errOpaqueCodeView) {
		return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+err.Error(), "", "opaque_code")
	}
	if errors.Is(err, errContinuedAcrossComment) {
		return s.reject(extended, "42601", "pgcrypt-proxy: "+err.Error(), "", "parse_error")
	}
	if errors.Is(err, errDerivedColumn) {
		return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+err.Error(), "", "schema_hazard")
	}
	if errors.Is(err, errWholeTableView) || errors.Is(err, errWholeTableStored) {
		return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+err.Error(), "", "whole_table")
	}
	var ge *grammarError
	if errors.As(err, &ge) {
		return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+ge.Error(), "", "grammar")
	}
	var ve *viewError
	if errors.As(err, &ve) {
		return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+ve.Error(), "", "view")
	}
	var r *rewrite.Rejection
	if errors.As(err, &r) && r.Reason == rewrite.ReasonColumnsUnknown {
		s.pol.catalogStale = true // read the table's columns again before the next statement
	}
	if errors.As(err, &r) {
		hint := ""
		if r.Relaxable && !s.pol.p.allowReads {
			hint = "This statement only reads; on_unsupported: allow would run it unchanged, but results computed from encrypted values are then meaningless."
		}
		return s.reject(extended, r.SQLState(), "pgcrypt-proxy: "+r.Error(), hint, r.Reason.String())
	}
	var pe *rewrite.ParseError
	if errors.As(err, &pe) {
		return s.reject(extended, "42601", "pgcrypt-proxy: "+pe.Error()+" (it may touch a table with encrypted columns, so it is not sent unanalysed)", "", "parse_error")
	}
	return s.reject(extended, codeFeatureNotSupported, "pgcrypt-proxy: "+err.Error(), "", "other")
}

// plan analyses sql. It returns a nil plan for statements that cannot
// involve a policy column, and an error for ones to reject.
func (s *session) plan(sql string) (*rewrite.Analysis, *rewrite.Plan, error) {
	sp := s.pol
	// DDL on a policy table run through this session may have made another
	// relation a partition, child or parent of it, under a name the text
	// filter below does not know yet: read the catalog again first.
	if sp.schemaTouched && !onlyEndsTransaction(sql) {
		switch {
		case !sp.atBoundary:
			return nil, nil, errors.New("a statement after DDL on a table with encrypted columns in the same pipeline; send Sync first, so the proxy reads the schema again")
		case !s.track.TxFailed():
			sp.catalogStale = true
			if err := s.freshCatalog(); err != nil {
				return nil, nil, err
			}
			sp.schemaTouched = false
		}
	}
	if rewrite.ContinuesAcrossComment(sql) {
		return nil, nil, errContinuedAcrossComment
	}
	if rewrite.MentionsAnyWord(sql, []string{"array_nulls"}) {
		return nil, nil, errArrayNulls
	}
	cat := sp.cat.Load()
	viewHit := cat != nil && rewrite.MentionsAny(sql, cat.viewNames)
	if cat != nil && len(cat.derivedNames) > 0 && (rewrite.MentionsAnyWord(sql, cat.derivedNames) || rewrite.MentionsAny(sql, []string{`u&"`})) {
		return nil, nil, errDerivedColumn
	}
	if viewHit && rewrite.MentionsAnyWord(sql, opaqueCodeWords) {
		// Code the server runs unseen, naming a view, partition, child
		// or parent of a policy table: refused like one naming the table.
		return nil, nil, errOpaqueCodeView
	}
	// Statements that may undo a search_path change (the end of a
	// transaction, RESET, DISCARD) once the session has made one.
	if sp.pathTouched && rewrite.MentionsAnyWord(sql, []string{"rollback", "abort", "commit", "end", "reset", "discard", "release"}) {
		sp.catalogStale = true
	}
	if sp.p.analyzer.WritesCatalog(sql) {
		return nil, nil, errCatalogWrite
	}
	changesNames := sp.p.analyzer.ChangesNames(sql)
	if changesNames {
		sp.pathTouched = true
		if sp.p.analyzer.MayMentionValues(sql) && rewrite.MentionsAnyWord(sql, []string{"create", "alter"}) {
			sp.schemaTouched = true
		}
	}
	// values: the statement may carry values of policy columns; otherwise
	// it is parsed only to follow prepared statement names (PREPARE,
	// DEALLOCATE, DISCARD ALL), which lexing settings cannot affect.
	values := viewHit || sp.p.analyzer.MayMentionValues(sql)
	// An escape string may spell a name the scans cannot see (a DO or
	// function body written E'…legacy\137notes…'): parse those.
	escaped := strings.IndexByte(sql, '\\') >= 0
	if values && rewrite.MentionsAnyWord(sql, wholeTableFuncs) && rewrite.MentionsAnyWord(sql, []string{"create", "alter"}) {
		// Stored in a function, default, view or domain, it would run
		// later, where the proxy cannot see what it reads.
		return nil, nil, errWholeTableStored
	}
	if !values && !escaped && !sp.p.analyzer.MayMention(sql) {
		if sp.p.analyzer.DefersPathChange(sql) {
			return nil, nil, errors.New("a prepared statement, cursor or DO block that changes the search_path or role would change it unseen when it runs; run SET or set_config as a query of its own")
		}
		// Cannot name a policy table: relay without parsing.
		if changesNames {
			sp.catalogStale = true
		}
		return nil, nil, nil
	}
	// scsDepends: literals would end elsewhere with
	// standard_conforming_strings off; refused below unless the statement
	// is a COPY whose only such literals are its options.
	scsDepends := false
	lexCheck := func() error {
		err := s.lexingKnown(sql)
		if err == errLexSCSDepends {
			scsDepends, err = true, nil
		}
		return err
	}
	if values {
		if err := lexCheck(); err != nil {
			return nil, nil, err
		}
	}
	start := time.Now()
	an, err := s.analyzeOff(sql)
	defer func() { s.srv.m.AnalysisDuration.Observe(time.Since(start).Seconds()) }()
	if err != nil {
		var pe *rewrite.ParseError
		if errors.As(err, &pe) && !pe.MayInvolvePolicy && !viewHit {
			// PostgreSQL will answer with its own syntax error. (A
			// server of another version may accept it, but then it
			// names no policy table or view of one, and holds nothing
			// that could spell one.)
			return nil, nil, nil
		}
		return nil, nil, err
	}
	// A function that reads a whole table, query or schema inside the
	// server (query_to_xml, ts_stat) takes the name as a string, which
	// analysis cannot resolve: refuse it when the text names a view,
	// partition, child or parent of a policy table, or a schema holding
	// one.
	if cat != nil && len(cat.views) > 0 && rewrite.MentionsAnyWord(sql, wholeTableFuncs) &&
		(viewHit || rewrite.MentionsAny(sql, cat.viewSchemas)) {
		return nil, nil, errWholeTableView
	}
	// The text scan finds views by name as written; a name spelled with
	// U&"…" escapes is caught here, from the parse tree.
	var viewsChecked *catalog
	if viewHit || (cat != nil && len(cat.views) > 0) {
		if err := s.freshCatalog(); err != nil {
			return nil, nil, err
		}
		viewsChecked = sp.cat.Load()
		if err := viewsNamed(an, viewsChecked); err != nil {
			return nil, nil, err
		}
	}
	// EXECUTE of a prepared statement names no table, but the literals of
	// its PREPARE's text may be under keys reloaded since: it is planned,
	// for statementValues to check the statement it runs.
	if !an.MayInvolvePolicy() && !rewrite.MentionsAnyWord(sql, []string{"execute"}) {
		return an, nil, nil
	}
	if !values {
		if err := lexCheck(); err != nil {
			return nil, nil, err
		}
	}
	if w := s.srv.grammarWord(sql); w != "" {
		return nil, nil, &grammarError{word: w}
	}
	if err := s.freshCatalog(); err != nil {
		return nil, nil, err
	}
	if cat := sp.cat.Load(); cat != viewsChecked && len(cat.views) > 0 {
		// Read again just now (after a refusal for columns the proxy did
		// not know, say): it may know views, or a policy table renamed
		// or with a policy column gone, that the one before did not.
		if err := viewsNamed(an, cat); err != nil {
			return nil, nil, err
		}
		if rewrite.MentionsAnyWord(sql, wholeTableFuncs) && rewrite.MentionsAny(sql, cat.viewSchemas) {
			return nil, nil, errWholeTableView
		}
	}
	p, err := s.planOff(an, sp.cat.Load())
	if err != nil {
		return nil, nil, err
	}
	if scsDepends && !copyWithOptionsOnly(p, sql) {
		return nil, nil, errLexSCSDepends
	}
	if err := sp.cat.Load().checkWrites(p); err != nil {
		return nil, nil, err
	}
	for _, st := range p.Statements() {
		if st.TriggerFunction == "" {
			continue
		}
		if len(p.Statements()) > 1 {
			// Another statement of the text (ALTER FUNCTION … RENAME)
			// could give the function its name after the catalog read.
			return nil, nil, fmt.Errorf("send CREATE OR REPLACE of trigger function %s as a query of its own: the proxy checks, from the catalog, that no trigger on a table with encrypted columns runs it", rewrite.QuoteIdent(st.TriggerFunction))
		}
		if !sp.catalogReadNow {
			// A trigger made on the server since the last read counts.
			sp.catalogStale = true
			if err := s.freshCatalog(); err != nil {
				return nil, nil, err
			}
		}
		if sp.cat.Load().triggerFuncs[st.TriggerFunction] {
			return nil, nil, fmt.Errorf("CREATE OR REPLACE of %s, a trigger function that a trigger on a table with encrypted columns runs: its new body could fill an encrypted column with anything; drop the trigger first, or replace the function directly on the server after review", rewrite.QuoteIdent(st.TriggerFunction))
		}
	}
	return an, p, nil
}

// copyWithOptionsOnly reports whether p is one COPY to or from the client
// without a WHERE clause: its literals are options (ESCAPE '\' in CSV is
// common), none of which holds a value, so lexing them otherwise cannot
// expose one.
func copyWithOptionsOnly(p *rewrite.Plan, sql string) bool {
	sts := p.Statements()
	return len(sts) == 1 && sts[0].Kind == rewrite.StmtCopy && sts[0].Copy != nil && sts[0].Copy.Stdio &&
		!rewrite.MentionsAnyWord(sql, []string{"where"})
}

// lengthError: an envelope longer than its column's varchar(n) or char(n).
type lengthError struct {
	col       *rewrite.Column
	max, need int
}

func (e *lengthError) Error() string {
	return fmt.Sprintf("column %s holds at most %d characters, and the encrypted value needs %d; widen the column (text, or varchar of at least %d)", e.col, e.max, e.need, e.need)
}

// fits checks the length of an envelope of n bytes written to col.
func (s *session) fits(col *rewrite.Column, use rewrite.Use, n int) error {
	cat := s.pol.cat.Load()
	if cat == nil || use&rewrite.UseWrite == 0 {
		return nil
	}
	if max := cat.maxLen[col]; max > 0 && n > max {
		return &lengthError{col: col, max: max, need: n}
	}
	return nil
}

// planNamed is plan, with the column lists of INSERTs and COPYs that use a
// policy table's columns by position, and the schema of every relation
// name that may denote a policy table, written into the text first (see
// rewrite.ColumnList). It returns the text to send, which the plan is of.
func (s *session) planNamed(sql string) (string, *rewrite.Analysis, *rewrite.Plan, error) {
	s.pol.qualifiedFrom, s.pol.qualifiedAs = nil, nil
	an, p, err := s.plan(sql)
	if err != nil || p == nil || len(p.Insertions()) == 0 {
		return sql, an, p, err
	}
	// The client means the columns' order on the server now; the catalog
	// may be up to CatalogMaxAge old, and another connection may have
	// changed the table since. Read it again, which needs a point between
	// groups.
	if len(p.ColumnLists()) > 0 && !s.pol.catalogReadNow {
		if !s.pol.atBoundary {
			return sql, nil, nil, errors.New("an INSERT or COPY without a column list on a table with encrypted columns must start its own pipeline (the proxy reads the column order first), or list the columns")
		}
		s.pol.catalogStale = true
		if err := s.freshCatalog(); err != nil {
			return sql, nil, nil, err
		}
		if an, p, err = s.plan(sql); err != nil || p == nil || len(p.Insertions()) == 0 {
			return sql, an, p, err
		}
	}
	named := rewrite.WithColumnLists(sql, p.Insertions())
	if len(p.Qualifications()) > 0 {
		// Statements prepared from this text are checked again at each
		// Bind or EXECUTE after a catalog change (currentParams).
		s.pol.qualifiedFrom, s.pol.qualifiedAs = an, p.Qualifications()
	}
	an, p, err = s.plan(named)
	if err == nil && p != nil && len(p.Insertions()) > 0 {
		err = errors.New("the proxy could not name the columns and tables of a statement on encrypted columns; list the columns and qualify the tables with their schema")
	}
	return named, an, p, err
}

// viewsNamed refuses the statement an analysed when it names a relation
// that cat lists among the views of policy tables.
func viewsNamed(an *rewrite.Analysis, cat *catalog) error {
	for _, rn := range an.Relations() {
		if v := cat.policyView(rn); v != nil {
			return &viewError{view: v.schema + "." + v.name, reach: v.reach, was: v.was}
		}
	}
	return nil
}

// freshCatalog re-reads the catalog when DDL or a search_path change made
// it stale. That needs a point between groups, where the proxy's own query
// cannot disturb the client's.
func (s *session) freshCatalog() error {
	sp := s.pol
	if !sp.catalogStale && sp.cat.Load() != nil {
		return nil
	}
	if !sp.atBoundary {
		return errors.New("the schema or search_path changed earlier in this pipeline; send Sync, then retry the statement")
	}
	if err := s.loadCatalog(false); err != nil {
		return err
	}
	sp.catalogStale = false
	return nil
}

// endsTransaction reports whether a Query's or Parse's text starts with
// ROLLBACK or ABORT: such a statement needs no catalog, and a re-read first
// could only fail it (in a transaction that a failed re-read aborted).
func endsTransaction(typ byte, body []byte) bool {
	if typ == 'P' { // the statement name comes first
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			return false
		}
		body = body[i+1:]
	}
	sql := bytes.TrimLeft(body, " \t\r\n")
	word := sql
	for j, c := range sql {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			word = sql[:j]
			break
		}
	}
	return bytes.EqualFold(word, []byte("rollback")) || bytes.EqualFold(word, []byte("abort"))
}

// refreshIfOld re-reads the catalog, between groups, when it is older than
// CatalogMaxAge or a result named a relation it does not know. In a
// transaction that has already failed (which the proxy may not know yet
// when the client pipelines its ROLLBACK), the catalog stays stale: only a
// statement that needs it is refused, and a ROLLBACK needs none. Any other
// failure is returned, for the client's statement to be refused with it:
// the proxy's query may have aborted the client's transaction (a lock
// timeout, say), which the client must learn before it commits.
func (s *session) refreshIfOld() error {
	sp := s.pol
	cat := sp.cat.Load()
	if s.track.TxFailed() {
		return nil // the query would fail; the next statement can only end the transaction
	}
	suspect := sp.catalogSuspect.Swap(false)
	if cat == nil || time.Since(cat.loaded) > s.srv.opts.CatalogMaxAge || suspect {
		// Only old (no DDL through the session, no unknown relation in
		// a result): another session's newer snapshot will do.
		err := s.loadCatalog(!sp.catalogStale && !suspect)
		sp.catalogStale = err != nil
		if err != nil && !errors.Is(err, errTxFailed) {
			return err
		}
	}
	return nil
}

// onlyEndsTransaction reports whether sql is one COMMIT, END, ROLLBACK or
// ABORT and nothing else: it carries no value and needs no catalog, and
// must reach the server even when the transaction failed before the proxy
// could read the catalog again.
func onlyEndsTransaction(sql string) bool {
	s := strings.TrimSpace(sql)
	end := len(s)
	for end > 0 && (s[end-1] == ';' || s[end-1] == ' ' || s[end-1] == '\t' || s[end-1] == '\r' || s[end-1] == '\n') {
		end--
	}
	s = s[:end]
	if strings.ContainsAny(s, ";'\"$-/") {
		return false
	}
	word := s
	if i := strings.IndexAny(s, " \t\r\n"); i >= 0 {
		word = s[:i]
	}
	switch strings.ToLower(word) {
	case "commit", "end", "rollback", "abort":
		return true
	}
	return false
}
