package proxy

import (
	"maps"
	"slices"
	"sync/atomic"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// sessionPolicy is a session's encryption state. Fields marked "client"
// belong to the client-side loop; "server" to the server-side loop; the
// rest are shared through atomics.
type sessionPolicy struct {
	p        *Policy
	database string // as the client's startup packet names it
	// ownSchema: the session read the catalog inside a transaction, where
	// it may have changed the schema unseen by others: it never takes
	// another session's catalog (see sharedCatalogs).
	ownSchema          bool
	cat                atomic.Pointer[catalog]
	nonStandardStrings atomic.Bool // standard_conforming_strings is off
	nonUTF8            atomic.Bool // client_encoding is not UTF8
	// lexGroup is the number of the last group (Tracker.Groups()+1 while
	// it is sent) in which an Execute may have changed client_encoding or
	// standard_conforming_strings, which PostgreSQL reports only at its
	// ReadyForQuery (mayChangeLexing).
	lexGroup uint64
	// runGroup is the number of the last group with an Execute.
	runGroup uint64
	// encodingUnsure: unanswered messages may have changed
	// client_encoding (set by frontendBind for encryptParams).
	encodingUnsure bool
	// catalogSuspect is set when results name a relation newer than the
	// catalog; the client side then re-reads it at the next group.
	catalogSuspect atomic.Bool
	// auditApp is application_name as the server last reported it.
	auditApp atomic.Pointer[string]

	// client
	stmts        map[string]*statement // prepared statements by name ("" is the unnamed one)
	portals      map[string]*portal
	catalogStale bool // DDL or a search_path change ran since the catalog was read
	// copySeq is the tracker's number of the last Query or Execute if it
	// may run COPY FROM STDIN (copyPolicy: a COPY of policy columns), and
	// copyEnds counts the CopyDone and CopyFail messages sent to the
	// server since. COPY messages from the client reach the server
	// only as part of such a COPY: through copyIn's codec for policy
	// columns, and unchanged for others once the server has started that
	// COPY. Anything else (after a refusal, a failed or interrupted COPY)
	// is dropped: the server would ignore it, and it may be plaintext.
	copySeq    uint64
	copyPolicy bool
	copyEnds   int
	// copyPortals are the portals bound to a COPY FROM STDIN statement,
	// kept across Syncs (portals, which the proxy forgets at Sync, outlive
	// them in a transaction).
	copyPortals map[string]bool
	// pinned are the portals bound to a statement the proxy must be sure
	// of when it runs (statement.pinned), kept across Syncs, with the
	// group of their Bind. Until a ReadyForQuery of that group or a later
	// one says no transaction is open (Tracker.IdleThrough), which ends every
	// portal, an Execute of the name is refused unless the proxy is sure
	// what it runs. A later Bind or Close of the name does not end it:
	// the server may have skipped that.
	pinned      map[string]pinnedPortal
	pathTouched bool // the session has changed its search_path or schema
	// schemaTouched: DDL naming a policy table ran through the session;
	// the catalog is read again before the next statement.
	schemaTouched bool
	// atBoundary: the current message starts a group (no
	// extended-protocol message since the last Sync: Tracker.InGroup).
	atBoundary bool
	// qualifiedFrom and qualifiedAs: what planNamed qualified in the
	// current message's text (see statement.qualifiedFrom).
	qualifiedFrom *rewrite.Analysis
	qualifiedAs   []rewrite.ColumnList
	// catalogReadNow: the catalog was read for the current message.
	catalogReadNow bool
	// cancelPending: a cancel request canceled the proxy's catalog query
	// at the session's start; the client's next statement is answered
	// as canceled in its place.
	cancelPending *canceledError
	scratch       []byte
	bindBuf       []byte    // a Bind rewritten with envelopes, reused
	versions      []int     // searchVersions' result, reused
	copyIn        copyCodec // a COPY FROM STDIN of policy columns is under way
	copyBuf       []byte
	// searched: the key versions compared literals were encrypted under
	// in the current message, recorded only while stamping: the message
	// prepares a statement that keeps them (see stampLits).
	searched map[*rewrite.Column][]string
	stamping bool
	// auditText, auditFP and auditKind: the current message's statement
	// text, or its fingerprint and kind when known, and auditCol the
	// column a refusal names, for the audit event of a refusal.
	auditText, auditFP, auditKind, auditCol string

	// server
	groupFailed bool      // the current group had an error
	swallow     bool      // drop answers up to the group's ReadyForQuery (after a decryption failure)
	rows        *rowShape // the current simple-query result set
	outBuf      []byte
	plainBuf    []byte
	inner       *internalQuery
	copyOut     copyCodec // a COPY TO STDOUT of policy columns is under way
	rowBuf      []byte
}

// statement is a prepared statement as the proxy tracks it. Whether
// PostgreSQL accepted it is learnt from the answer to its Parse (or to the
// Query that ran its PREPARE): the proxy must never believe a name holds one
// statement while the server holds another, or it would encrypt the
// parameters of the wrong one.
type statement struct {
	// changesLexing: its text may change client_encoding or
	// standard_conforming_strings when it runs (mayChangeLexing).
	changesLexing bool
	params        []rewrite.Param // parameters to encrypt at Bind
	// an, index and cat say how params were found: the analysis, the
	// statement's index in it for an SQL PREPARE (-1 for a Parse), and the
	// catalog it was planned with. PostgreSQL re-resolves a prepared
	// statement's names when the search_path or the schema changes, so the
	// proxy plans it again then (client-side loop only).
	an    *rewrite.Analysis
	index int
	cat   *catalog
	sql   string // the text it was prepared with (for a PREPARE, its Query's)
	// unnamed: the unnamed statement, which the proxy's own catalog
	// query (a simple Query) would destroy on the server.
	unnamed      bool
	staleAtParse bool     // the catalog was stale when it was parsed
	lits         []litSig // the literals encrypted into a Parse's text
	// litsGen is Policy.keysGen + 1 when literals were encrypted into the
	// text it was prepared from (0: none), litsCompare whether one is
	// compared with a column, and litsKey the key id they were written
	// under. After a keys reload a compared literal would miss the rows
	// under the new version and a written one may be under a retired key:
	// the statement must be prepared again (see currentParams).
	litsGen uint64
	litsKey string
	// litsSearched: for each column a literal is compared with, the key
	// versions it was encrypted under.
	litsSearched map[*rewrite.Column][]string
	// qualifiedFrom is the analysis of the client's text when the proxy
	// wrote schemas into its relation names (qualifiedAs): after a
	// catalog change the statement is refused if they would differ now.
	qualifiedFrom *rewrite.Analysis
	qualifiedAs   []rewrite.ColumnList
	prev          *statement // what the name held before, in case the server refuses this one
	copyFrom      bool       // its text may be a COPY FROM STDIN
	// names is the plan of a Parse whose text is an SQL PREPARE,
	// DEALLOCATE or DISCARD ALL: each Execute of it changes what a name
	// holds, which the proxy applies when it sends the Execute.
	names *rewrite.Plan
	// execs are the EXECUTEs with arguments a Parse's text runs, with the
	// statement each one's arguments were encrypted for: an Execute is
	// refused if the name holds another by then.
	execs []execRef
	// volatileShape: its rows depend on what a name holds when it runs
	// (FETCH, EXECUTE), so every Execute is described.
	volatileShape bool
	changesPath   bool   // running it may change the search_path (rewrite.ChangesPathWhenRun)
	groupAt       uint64 // client: groups sent before its Parse or PREPARE (Tracker.Groups)
	syncAt        uint64 // client: Syncs sent before its Parse or PREPARE (Tracker.Syncs)
	byQuery       bool   // made by an SQL PREPARE in a Query, not by a Parse
	shape         atomic.Pointer[rowShape]
	audit         *auditStmt   // what its audit events say (Options.Audit)
	outcome       atomic.Int32 // one of the outcome constants
	// seq is the tracker's number of the message whose answer settles
	// outcome: its Parse, or the Query of its PREPARE (client).
	seq uint64
}

// maxNameBytes is NAMEDATALEN - 1: PostgreSQL tells prepared statement
// and portal names apart by that many bytes only (its hash tables compare
// no more), and cuts SQL identifiers to it.
const maxNameBytes = 63

// nameKey is the name PostgreSQL files a prepared statement or portal
// under: the proxy must key its own maps the same way, or a name longer
// than the limit would be one statement to the server and two to it.
func nameKey(s string) string {
	if len(s) > maxNameBytes {
		return s[:maxNameBytes]
	}
	return s
}

// stampLits records on st the keys its text's literals were encrypted
// under.
func (sp *sessionPolicy) stampLits(st *statement, lits []rewrite.Literal) {
	if len(lits) == 0 {
		return
	}
	st.litsGen = sp.p.keysGen.Load() + 1
	st.litsKey = sp.p.column(lits[0].Column).cipher().KeyVersionID(0)
	if len(sp.searched) > 0 {
		st.litsSearched = maps.Clone(sp.searched)
	}
}

// endStamp drops what encryptLiterals recorded for stampLits.
func (sp *sessionPolicy) endStamp() { clear(sp.searched) }

// noteSearched records, while literals are encrypted, the key versions a
// compared literal of column rc was encrypted under (see stampLits).
func (sp *sessionPolicy) noteSearched(rc *rewrite.Column, c *cipher.Column, versions []int) {
	if !sp.stamping {
		return // nothing keeps these literals (a Query without PREPARE)
	}
	if sp.searched == nil {
		sp.searched = map[*rewrite.Column][]string{}
	}
	ids := sp.searched[rc]
	if len(versions) == 0 {
		ids = append(ids, c.KeyVersionID(0))
	}
	for _, v := range versions {
		ids = append(ids, c.KeyVersionID(v))
	}
	sp.searched[rc] = ids
}

// litsCurrent reports whether the literals encrypted into st's text are
// still right under the keys now: each compared one was encrypted under
// every version the column is searched under now, and the written ones
// under a key the keyring still has.
func (sp *sessionPolicy) litsCurrent(st *statement) bool {
	if !sp.p.cols[0].cipher().HasKeyID(st.litsKey) {
		return false
	}
	cat := sp.cat.Load()
	for rc, baked := range st.litsSearched {
		c := sp.p.column(rc).cipher()
		for _, v := range cat.searchVersions(rc, c, nil) {
			if !slices.Contains(baked, c.KeyVersionID(v)) {
				return false
			}
		}
	}
	return true
}

// copyStamp gives st the literal stamp of from, whose text it came from.
func (st *statement) copyStamp(from *statement) {
	st.litsGen, st.litsKey, st.litsSearched = from.litsGen, from.litsKey, from.litsSearched
}

// execRef is an EXECUTE of a prepared statement name and the statement
// the name held when its arguments were encrypted.
type execRef struct {
	name string
	st   *statement
	// noArgs: an EXECUTE without arguments, which runs whatever the name
	// holds then; only that statement's literal stamp is checked.
	noArgs bool
}

// pinned reports whether the proxy must be sure, at each Execute of a
// portal of st, that the portal still holds st: st changes what statement
// names hold, or runs an EXECUTE whose arguments were encrypted for what
// a name held, or its rows are those of what a cursor or statement name
// held at its first Execute (FETCH, EXECUTE), which no later Describe
// tells (PostgreSQL describes what the name holds then, and crashes
// describing a FETCH whose cursor is gone).
func (st *statement) pinned() bool {
	return st.names != nil || len(st.execs) > 0 || st.volatileShape
}

// Outcomes of a Parse or PREPARE.
const (
	outcomePending   int32 = iota
	outcomeOK              // the server holds the statement
	outcomeFailed          // the server rejected or skipped it
	outcomeUncertain       // a PREPARE in a query that failed somewhere: it may or may not exist
)

func newStatement(params []rewrite.Param, groupAt, syncAt uint64) *statement {
	return &statement{params: params, groupAt: groupAt, syncAt: syncAt, index: -1}
}

// litSig identifies an encrypted literal without its value.
type litSig struct {
	start, end int
	col        *rewrite.Column
}

func litSigs(lits []rewrite.Literal) []litSig {
	out := make([]litSig, len(lits))
	for i, l := range lits {
		out[i] = litSig{l.Start, l.End, l.Column}
	}
	return out
}

// settle records the server's verdict (server-side loop, before the
// tracker settles st.seq).
func (st *statement) settle(o int32) {
	if st != nil {
		st.outcome.CompareAndSwap(outcomePending, o)
	}
}

// pinnedPortal is a portal of a pinned statement and the group of its
// Bind.
type pinnedPortal struct {
	pt    *portal
	group uint64
}

// portal is a bound portal.
type portal struct {
	stmt         *statement
	describeSent bool // client: a Describe of it (or of its statement) reached the server
	// runsAt is sessionPolicy.runs when what the name holds was last
	// known (its Bind, a Describe of it, its own Execute); the proxy
	// trusts stmt and describeSent only while no other run came since.
	// If its Bind failed or was skipped, so is an Execute up to the next
	// Sync; and the error that made the server skip it ended the
	// transaction, or aborted it until a run (ROLLBACK TO) brings back
	// an older portal of the name.
	runsAt   uint64
	executed bool // client: an Execute of it was sent
	shape    atomic.Pointer[rowShape]
}

// rowShape says which fields of a result row belong to policy columns.
type rowShape struct {
	cols  []*policyColumn // by field; nil entries are not encrypted
	any   bool
	stale *staleCatalogError // rows refused: a policy table whose columns changed since the catalog was read, or a policy column of another type than text
}

var noPolicyRows = &rowShape{}

func (pt *portal) rowShape() *rowShape {
	if r := pt.shape.Load(); r != nil || pt.stmt == nil {
		return r
	}
	return pt.stmt.shape.Load()
}

// internalQuery is a query the proxy runs on the client's session for
// itself; the server-side loop captures its answer in res before the
// tracker settles it.
type internalQuery struct {
	res internalResult
}

// internalResult holds the rows of each result set, as text, or the error.
type internalResult struct {
	sets   [][][][]byte
	err    error
	code   string // err's SQLSTATE
	msg    string // and its message
	status byte   // of its ReadyForQuery: 'I' when it ran outside a transaction
}
