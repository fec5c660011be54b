package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// The client side of an encrypting session: every statement is analysed
// (cached by text), parameters and literals of policy columns are encrypted
// before they leave, and statements that cannot work on ciphertext are
// replaced by a "poison" message that fails on the server, whose error the
// server-side loop swaps for the proxy's own. Letting PostgreSQL fail the
// statement keeps its transaction and pipeline rules exactly: the group is
// aborted and skipped to Sync as if the statement itself had failed.

// poisonSQL fails to parse (42601) without side effects.
const poisonSQL = "pgcrypt-proxy rejected this statement"

// poisonName keeps poison Parses away from the client's statements.
const poisonName = "pgcrypt_proxy_rejected"

// Text-like type OIDs a policy parameter may be declared as.
const (
	oidText    = 25
	oidVarchar = 1043
	oidBpchar  = 1042
	oidUnknown = 705
)

// frontend handles one client message of an encrypting session.
func (s *session) frontend(typ byte, n int) error {
	sp := s.pol
	if s.srv.policy.Load() != sp.p {
		// A reload changed the policy's tables or columns (one that
		// changes only keys keeps the policy and gives it the new keys):
		// this session would read a new column's envelopes and write it
		// in plaintext, from its next message on, be it the Bind of a
		// Parse sent before or the next row of a COPY. It ends, and the
		// client reconnects under the new policy.
		s.abortWhy.CompareAndSwap(abortNone, abortPolicyChanged)
		s.log.Info("the policy was reloaded with other tables or columns; session ended")
		return errPolicyChanged
	}
	switch typ {
	case 'd', 'c', 'f':
		return s.frontendCopyMessage(typ, n)
	case 'H':
	case 'S':
		if sp.copySeq != 0 {
			running, ok := s.settleCopy()
			if !ok {
				return errors.New("the connection to PostgreSQL ended")
			}
			if running {
				// PostgreSQL ignores it while it copies. Dropped rather
				// than relayed, it cannot be answered should the COPY
				// fail just before the server reads it.
				return s.cr.CopyBody(discard{}, n)
			}
			sp.copySeq, sp.copyIn = 0, nil
		}
	default:
		// Any other message ends what the client sends of a COPY (if
		// PostgreSQL still copies, it ends the session: "unexpected
		// message type during COPY").
		sp.copySeq, sp.copyIn = 0, nil
	}
	if typ != 'S' && typ != 'H' && s.track.Failing() {
		// The group was rejected: PostgreSQL skips these anyway, and their
		// values may be plaintext. Flush still goes through, so a client
		// that waits for answers after it gets the error.
		return s.cr.CopyBody(discard{}, n)
	}
	switch typ {
	case 'P', 'B', 'Q', 'D', 'E', 'C':
	default:
		switch typ {
		case 'S':
			clear(sp.portals) // the proxy describes portals it meets again
			s.track.Send(track.Sync, expectation{start: s.takeGroupStart()})
		case 'F':
			return s.frontendFunctionCall(n)
		}
		return s.forward(s.cr, s.sw, typ, n)
	}
	body, err := s.cr.Body(n)
	if err != nil {
		return err
	}
	// Between groups the proxy may run its own catalog query first.
	sp.atBoundary = !s.track.InGroup()
	sp.catalogReadNow = false
	if ce := sp.cancelPending; ce != nil && (typ == 'Q' || typ == 'P') {
		sp.cancelPending = nil
		return s.rejectPlan(typ == 'P', ce)
	}
	if sp.atBoundary && (typ == 'Q' || typ == 'P') && !endsTransaction(typ, body) {
		if err := s.refreshIfOld(); err != nil {
			return s.rejectPlan(typ == 'P', err)
		}
	}
	switch typ {
	case 'Q':
		return s.frontendQuery(body)
	case 'P':
		s.groupStarted()
		return s.frontendParse(body)
	case 'B':
		s.groupStarted()
		return s.frontendBind(body)
	case 'D':
		s.groupStarted()
		return s.frontendDescribe(body)
	case 'E':
		s.groupStarted()
		return s.frontendExecute(body)
	default: // 'C'
		s.groupStarted()
		return s.frontendClose(body)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// cstring splits a NUL-terminated string off b.
func cstring(b []byte) (string, []byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, &wire.ProtocolError{Reason: "unterminated string"}
	}
	return string(b[:i]), b[i+1:], nil
}

// reject answers the current statement with the proxy's error: a poison
// message takes its place on the server, and in the extended protocol the
// rest of the group is dropped.
func (s *session) reject(extended bool, code, msg, hint, reason string) error {
	s.srv.m.StatementsRejected.WithLabelValues(reason).Inc()
	s.log.Info("statement rejected", "reason", reason)
	s.auditRefused(reason, s.pol.auditCol)
	s.pol.auditCol = ""
	e := errorMessage("ERROR", code, msg, hint)
	if !extended {
		s.track.Send(track.Query, expectation{start: time.Now(), reject: e})
		return s.sw.Message('Q', append([]byte(poisonSQL), 0))
	}
	s.track.Send(track.Parse, expectation{reject: e})
	s.track.Fail()
	body := make([]byte, 0, len(poisonName)+len(poisonSQL)+4)
	body = append(append(body, poisonName...), 0)
	body = append(append(body, poisonSQL...), 0)
	body = append(body, 0, 0)
	return s.sw.Message('P', body)
}

// errPolicyChanged ends a session whose policy a reload replaced.
var errPolicyChanged = errors.New("the policy was reloaded with other tables or columns")

// frontendQuery handles a simple-protocol Query.
func (s *session) frontendQuery(body []byte) error {
	sql, _, err := cstring(body)
	if err != nil {
		return err
	}
	s.pol.auditText, s.pol.auditFP, s.pol.auditKind = sql, "", ""
	named, an, p, err := s.planNamed(sql)
	if err != nil {
		return s.rejectPlan(false, err)
	}
	if named != sql {
		sql, body = named, append([]byte(named), 0)
	}
	// PREPARE and DEALLOCATE take effect on the proxy's side before the
	// rest is checked (an EXECUTE later in the query needs them); if the
	// query is refused after all, the server never runs them.
	var saved map[string]*statement
	if p != nil && slices.ContainsFunc(p.Statements(), func(x rewrite.Statement) bool {
		return x.Kind == rewrite.StmtPrepare || x.Kind == rewrite.StmtDeallocate
	}) {
		saved = maps.Clone(s.pol.stmts)
	}
	var made []*statement
	refuse := func(err error) error {
		for _, st := range made {
			st.settle(outcomeFailed)
		}
		if saved != nil {
			s.pol.stmts = saved
		}
		s.pol.copyIn = nil
		return s.rejectPlan(false, err)
	}
	if an != nil {
		if made, err = s.noteStatements(an, p, true); err != nil {
			return refuse(err)
		}
	}
	var copyOut copyCodec
	var run *auditRun
	if p != nil {
		ct, from, err := s.copyPlan(p)
		if err != nil {
			return refuse(err)
		}
		if ct != nil && from {
			s.pol.copyIn = ct
		} else {
			copyOut = ct
		}
		lits, params, _, err := s.statementValues(p)
		if err != nil {
			return refuse(err)
		}
		if s.srv.opts.Audit != nil {
			run = &auditRun{stmts: s.auditStmts(sql, p, lits, params)}
		}
		if len(params) > 0 {
			return refuse(errors.New("a simple-protocol query cannot carry parameters"))
		}
		if len(lits) > 0 || len(p.Splices()) > 0 {
			s.pol.stamping = len(made) > 0 // a PREPARE keeps these literals
			out, err := s.encryptLiteralsOff(sql, lits, p.Splices())
			s.pol.stamping = false
			if err != nil {
				return refuse(err)
			}
			body = append([]byte(out), 0)
		}
		for _, st := range made {
			s.pol.stampLits(st, lits)
		}
		s.pol.endStamp()
	}
	clear(s.pol.portals)
	seq, _ := s.track.Send(track.Query, expectation{start: time.Now(), prepared: made, copyOut: copyOut, audit: run})
	for _, st := range made {
		st.seq = seq
	}
	if mayCopyFromStdin(sql) {
		s.pol.followCopy(seq, s.pol.copyIn != nil)
	}
	return s.sw.Message('Q', body)
}

// encryptLiterals returns sql with each policy literal replaced by its
// envelope (its envelopes under every key version, for a compared literal
// of a column that has several) and the plan's splices applied.
func (s *session) encryptLiterals(sql string, lits []rewrite.Literal, splices []rewrite.Splice) (string, error) {
	if s.pol.nonStandardStrings.Load() && strings.IndexByte(sql, '\\') >= 0 {
		return "", errLexSCS // see lexingKnown
	}
	vals := make([][]string, len(lits))
	flat := make([]string, 0, len(lits)) // vals' backing: one allocation for the usual one envelope each
	cat := s.pol.cat.Load()
	start := time.Now()
	if s.pol.stamping {
		clear(s.pol.searched)
	}
	for i, l := range lits {
		pc := s.pol.p.column(l.Column)
		c := pc.cipher()
		var versions []int
		if l.Use&rewrite.UseCompare != 0 && c.Mode() == cipher.Deterministic {
			versions = cat.searchVersions(l.Column, c, s.pol.versions)
			s.pol.versions = versions
			s.pol.noteSearched(l.Column, c, versions)
			if len(versions) > 1 && ((!l.Joined && l.Expand == rewrite.ExpandNone) || l.Use&rewrite.UseWrite != 0) {
				// A value also written takes one envelope, which would
				// miss the rows under the other versions.
				return "", &rotationError{col: pc.name, versions: len(versions), written: l.Use&rewrite.UseWrite != 0}
			}
		}
		copies := max(len(versions), 1)
		first := len(flat)
		for k := range copies {
			var out []byte
			var err error
			if len(versions) > 1 || (l.Joined && len(versions) > 0) {
				out, err = c.EqualityEnvelope(s.pol.scratch[:0], []byte(l.Value), versions[k])
			} else {
				out, err = c.Encrypt(s.pol.scratch[:0], []byte(l.Value))
			}
			if err != nil {
				return "", fmt.Errorf("encrypting a literal for column %s: %w", pc.name, err)
			}
			if err := s.fits(l.Column, l.Use, len(out)); err != nil {
				return "", err
			}
			s.pol.scratch = out
			flat = append(flat, string(out))
		}
		vals[i] = flat[first:len(flat):len(flat)]
		pc.encrypted.Inc()
	}
	s.srv.m.EncryptDuration.Observe(time.Since(start).Seconds())
	return rewrite.RewriteAll(sql, lits, vals, splices)
}

// frontendParse handles Parse: analysis, literal encryption, and the
// statement's parameters to encrypt at Bind.
func (s *session) frontendParse(body []byte) error {
	sp := s.pol
	var msg pgproto3.Parse
	if err := msg.Decode(body); err != nil {
		return &wire.ProtocolError{Type: 'P', Length: len(body) + 4, Reason: err.Error()}
	}
	sp.auditText, sp.auditFP, sp.auditKind = msg.Query, "", ""
	named, an, p, err := s.planNamed(msg.Query)
	if err != nil {
		return s.rejectPlan(true, err)
	}
	renamed := named != msg.Query
	msg.Query = named
	st := newStatement(nil, s.track.Groups(), s.track.Syncs())
	st.sql, st.cat, st.unnamed = msg.Query, sp.cat.Load(), msg.Name == ""
	st.changesPath = sp.p.analyzer.ChangesPathWhenRun(msg.Query)
	st.copyFrom = mayCopyFromStdin(msg.Query)
	// FETCH and EXECUTE return the rows of whatever cursor or statement
	// their name holds when they run.
	st.volatileShape = rewrite.MentionsAnyWord(msg.Query, []string{"fetch", "execute"})
	st.changesLexing = mayChangeLexing(msg.Query)
	if p != nil {
		for _, x := range p.Statements() {
			switch {
			case x.Kind == rewrite.StmtPrepare || x.Kind == rewrite.StmtDeallocate:
				// An SQL PREPARE, DEALLOCATE or DISCARD ALL in a Parse
				// takes effect at each Execute of it: applied then.
				st.names = p
			case x.Kind == rewrite.StmtCopy:
				// Run later, it could resolve to a policy table (after a
				// search_path change) with no codec for its data.
				return s.rejectPlan(true, errors.New("COPY of a table named like one with encrypted columns works through the simple query protocol only (as psql's \\copy and pgx's CopyFrom send it)"))
			}
		}
		if _, err := s.noteStatements(an, p, false); err != nil {
			return s.rejectPlan(true, err)
		}
		lits, params, execs, err := s.statementValues(p)
		if err != nil {
			return s.rejectPlan(true, err)
		}
		// An EXECUTE's arguments are encrypted for the statement its name
		// holds now; each Execute checks that it still does.
		st.execs = execs
		for _, prm := range params {
			if i := prm.Number - 1; i < len(msg.ParameterOIDs) {
				switch oid := msg.ParameterOIDs[i]; {
				case oid == 0 || oid == oidUnknown:
				case !prm.Array && (oid == oidText || oid == oidVarchar):
				case prm.Array && (oid == oidTextArray || oid == oidVarcharArray):
				default:
					return s.rejectPlan(true, fmt.Errorf("column %s: parameter $%d is declared as type OID %d; encrypted values are text, so declare it as text (text[] for an array) or leave its type unspecified", prm.Column, prm.Number, oid))
				}
			}
		}
		st.params = params
		st.an, st.cat, st.lits = an, sp.cat.Load(), litSigs(lits)
		if s.srv.opts.Audit != nil {
			if as := s.auditStmts(msg.Query, p, lits, params); len(as) > 0 {
				st.audit = &as[len(as)-1]
			}
		}
		st.qualifiedFrom, st.qualifiedAs = sp.qualifiedFrom, sp.qualifiedAs
		if len(lits) > 0 || len(p.Splices()) > 0 {
			sp.stamping = true
			out, err := s.encryptLiteralsOff(msg.Query, lits, p.Splices())
			sp.stamping = false
			if err != nil {
				return s.rejectPlan(true, err)
			}
			msg.Query, renamed = out, true
		}
		sp.stampLits(st, lits)
		sp.endStamp()
		if renamed {
			if body, err = msg.Encode(nil); err != nil {
				return err
			}
			body = body[5:]
		}
	} else if an != nil {
		s.noteStatements(an, nil, false)
	}
	st.staleAtParse = sp.catalogStale
	sp.record(msg.Name, st)
	st.seq, _ = s.track.Send(track.Parse, expectation{prepared: []*statement{st}})
	return s.sw.Message('P', body)
}

// frontendBind encrypts the parameters that belong to policy columns.
func (s *session) frontendBind(body []byte) error {
	sp := s.pol
	portalName, rest, err := cstring(body)
	if err != nil {
		return err
	}
	portalName = nameKey(portalName)
	stmtName, _, err := cstring(rest)
	if err != nil {
		return err
	}
	if sp.atBoundary && stmtName != "" {
		// A driver that caches statements sends no Query or Parse for a
		// long time: the catalog is checked here too (not before the
		// unnamed statement, which the proxy's catalog query would drop).
		if err := s.refreshIfOld(); err != nil {
			return s.rejectPlan(true, err)
		}
	}
	st, err := s.lookupStmt(stmtName)
	if err != nil {
		return s.rejectPlan(true, err)
	}
	sp.auditText, sp.auditFP, sp.auditKind = "", "", ""
	if st != nil && st.audit != nil {
		sp.auditFP, sp.auditKind = st.audit.fingerprint, st.audit.kind
	}
	if st == nil {
		return s.reject(true, "26000", fmt.Sprintf("pgcrypt-proxy: prepared statement %q does not exist (or was rejected)", stmtName), "", "unknown_statement")
	}
	params, err := s.currentParams(st)
	if err != nil {
		return s.rejectPlan(true, err)
	}
	if st.changesPath {
		// Every run may move the search_path (a per-request
		// set_config('search_path', $1, false), say): what follows is
		// resolved again.
		sp.catalogStale, sp.pathTouched = true, true
	}
	if len(params) > 0 {
		if sp.nonUTF8.Load() {
			return s.rejectPlan(true, errParamsUTF8)
		}
		// Unanswered messages may have changed client_encoding, which
		// decides what a value's non-ASCII bytes say: such a value waits
		// for their answers (errSettleFirst).
		sp.encodingUnsure = s.track.GroupsDone() < s.track.Groups() || (!sp.atBoundary && sp.lexGroup == s.track.Groups()+1)
		enc, err := s.encryptParamsOff(body, params)
		if err == errSettleFirst {
			if err := s.lexingSettled(); err != nil {
				return s.rejectPlan(true, err)
			}
			if sp.nonUTF8.Load() {
				return s.rejectPlan(true, errParamsUTF8)
			}
			sp.encodingUnsure = false
			enc, err = s.encryptParamsOff(body, params)
		}
		if err != nil {
			return s.rejectPlan(true, err)
		}
		body = enc
	}
	pt := &portal{stmt: st, runsAt: s.track.Runs()}
	sp.portals[portalName] = pt
	if st.copyFrom {
		if sp.copyPortals == nil {
			sp.copyPortals = map[string]bool{}
		}
		sp.copyPortals[portalName] = true
	} else {
		delete(sp.copyPortals, portalName)
	}
	if st.pinned() {
		// Not forgotten at a later Bind or Close of the name: the server
		// may skip those.
		if sp.pinned == nil {
			sp.pinned = map[string]pinnedPortal{}
		}
		sp.pinned[portalName] = pinnedPortal{pt, s.track.Groups() + 1}
	}
	s.track.Send(track.Bind, expectation{})
	return s.sw.Message('B', body)
}

// startPolicy reads the catalog before the first client message is
// relayed, so results are decrypted from the first query on. A session
// whose role cannot read it ends with the reason.
func (s *session) startPolicy() error {
	if s.pol == nil {
		return nil
	}
	var ce *canceledError
	if err := s.loadCatalog(true); errors.As(err, &ce) {
		// The client's cancel request for its first statement reached
		// PostgreSQL while the proxy's query ran: that statement is
		// answered as canceled, and the catalog read before the next.
		s.pol.cancelPending = ce
		return nil
	} else if err != nil {
		s.log.Warn("cannot read the catalog", "err", err)
		s.abortErr.Store(ptr("pgcrypt-proxy cannot read the catalog it needs to encrypt: " + err.Error()))
		s.abortWhy.CompareAndSwap(abortNone, abortClientProtocol)
		return err
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
