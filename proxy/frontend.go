package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
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
	switch typ {
	case 'd', 'c', 'f':
		return s.frontendCopyMessage(typ, n)
	case 'H':
	case 'S':
		if cq := sp.copyMaybe; cq != nil {
			running, ok := s.settleCopy(cq, sp.copyEnds)
			if !ok {
				return errors.New("the connection to PostgreSQL ended")
			}
			if running {
				// PostgreSQL ignores it while it copies. Dropped rather
				// than relayed, it cannot be answered should the COPY
				// fail just before the server reads it.
				return s.cr.CopyBody(discard{}, n)
			}
			sp.copyMaybe, sp.copyIn = nil, nil
		}
	default:
		// Any other message ends what the client sends of a COPY (if
		// PostgreSQL still copies, it ends the session: "unexpected
		// message type during COPY").
		sp.copyMaybe, sp.copyIn = nil, nil
	}
	if sp.skipToSync && typ != 'S' && typ != 'H' {
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
			sp.skipToSync = false
			sp.group++
			sp.syncs++
			clear(sp.portals) // the proxy describes portals it meets again
			s.expect.push(expectation{kind: expSync, start: s.takeGroupStart()})
		case 'F':
			sp.group++
			s.expect.push(expectation{kind: expFunction, start: time.Now()})
		}
		return s.forward(s.cr, s.sw, typ, n)
	}
	body, err := s.cr.Body(n)
	if err != nil {
		return err
	}
	// Between groups the proxy may run its own catalog query first.
	sp.atBoundary = s.groupStart.IsZero()
	sp.catalogReadNow = false
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
	e := errorMessage("ERROR", code, msg, hint)
	if !extended {
		s.pol.group++
		s.expect.push(expectation{kind: expQuery, start: time.Now(), reject: e})
		return s.sw.Message('Q', append([]byte(poisonSQL), 0))
	}
	s.pol.skipToSync = true
	s.expect.push(expectation{kind: expParse, reject: e})
	body := make([]byte, 0, len(poisonName)+len(poisonSQL)+4)
	body = append(append(body, poisonName...), 0)
	body = append(append(body, poisonSQL...), 0)
	body = append(body, 0, 0)
	return s.sw.Message('P', body)
}

// frontendQuery handles a simple-protocol Query.
func (s *session) frontendQuery(body []byte) error {
	sql, _, err := cstring(body)
	if err != nil {
		return err
	}
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
		if made, err = s.noteStatements(an, p); err != nil {
			return refuse(err)
		}
	}
	var copyOut copyCodec
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
		lits, params, err := s.statementValues(p)
		if err != nil {
			return refuse(err)
		}
		if len(params) > 0 {
			return refuse(errors.New("a simple-protocol query cannot carry parameters"))
		}
		if len(lits) > 0 {
			out, err := s.encryptLiteralsOff(sql, lits)
			if err != nil {
				return refuse(err)
			}
			body = append([]byte(out), 0)
		}
	}
	s.pol.group++
	clear(s.pol.portals)
	var cq *copyQuery
	if mayCopyFromStdin(sql) {
		cq = newCopyQuery(s.pol.copyIn != nil)
		s.pol.copyMaybe, s.pol.copyEnds = cq, 0
	}
	s.expect.push(expectation{kind: expQuery, start: time.Now(), prepared: made, copyOut: copyOut, copy: cq})
	return s.sw.Message('Q', body)
}

// mayCopyFromStdin reports whether sql may run COPY FROM STDIN (it has both
// words), so that the proxy follows whether the server is copying.
func mayCopyFromStdin(sql string) bool {
	return rewrite.MentionsAnyWord(sql, []string{"copy"}) && rewrite.MentionsAnyWord(sql, []string{"stdin"})
}

// frontendCopyMessage handles the client's CopyData, CopyDone and
// CopyFail (see session.copyMaybe).
func (s *session) frontendCopyMessage(typ byte, n int) error {
	sp := s.pol
	switch cq := sp.copyMaybe; {
	case sp.copyIn != nil:
		return s.frontendCopy(typ, n)
	case cq != nil && !cq.policy:
		// Relayed as it is only into a COPY the server has started for
		// this Query or Execute: if none runs (it failed, never started,
		// or the message that was to start it interrupted a COPY of
		// policy columns), the data may be that COPY's plaintext.
		running, ok := s.settleCopy(cq, sp.copyEnds)
		if !ok {
			return errors.New("the connection to PostgreSQL ended")
		}
		if !running {
			return s.cr.CopyBody(discard{}, n)
		}
		if typ != 'd' {
			sp.copyEnds++
		}
		return s.forward(s.cr, s.sw, typ, n)
	default:
		return s.cr.CopyBody(discard{}, n)
	}
}

// copyPlan returns the codec for a COPY of policy columns to or from the
// client (from: data comes from the client), or nil when the statements
// hold none. One such COPY per query, in text or binary format.
func (s *session) copyPlan(p *rewrite.Plan) (copyCodec, bool, error) {
	var found *rewrite.Copy
	copies := 0
	for _, st := range p.Statements() {
		if st.Kind != rewrite.StmtCopy || st.Copy == nil || !st.Copy.Stdio {
			continue
		}
		copies++
		if st.Copy.Columns != nil {
			found = st.Copy
		}
	}
	if found == nil {
		return nil, false, nil
	}
	if copies > 1 {
		return nil, false, errors.New("a query with several COPY statements cannot copy encrypted columns; send them one at a time")
	}
	if found.Invalid != "" {
		return nil, false, fmt.Errorf("COPY of encrypted columns with options PostgreSQL will refuse (%s): the proxy will not guess how the data reads", found.Invalid)
	}
	if !utf8Encoding(found.Encoding) {
		return nil, false, errors.New("COPY of encrypted columns needs its data in UTF8, the session's encoding: leave out ENCODING or give UTF8")
	}
	if found.Default != "" || found.ForceNull {
		return nil, false, errors.New("COPY of encrypted columns cannot take DEFAULT, FORCE_NULL or FORCE_NOT_NULL: the proxy would have to judge which values are NULL as the server does; leave them out, or use INSERT with parameters")
	}
	cols := make([]*policyColumn, len(found.Columns))
	for i, c := range found.Columns {
		if c != nil {
			cols[i] = s.pol.p.column(c)
		}
	}
	switch found.Format {
	case rewrite.CopyBinary:
		return newCopyBinary(cols), found.From, nil
	case rewrite.CopyCSV:
		cc, err := newCopyCSV(found.Delimiter, found.Quote, found.Escape, found.Null, found.Header, cols)
		if err != nil {
			return nil, false, err
		}
		return cc, found.From, nil
	}
	ct, err := newCopyText(found.Delimiter, found.Null, found.NullSet, found.Header, cols)
	if err != nil {
		return nil, false, err
	}
	return ct, found.From, nil
}

// utf8Encoding reports whether a COPY ENCODING option ("" when not given)
// names UTF8, however spelled.
func utf8Encoding(name string) bool {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(name))
	return n == "" || n == "utf8" || n == "unicode"
}

// frontendCopy rewrites the client's COPY data for policy columns. A value
// that cannot be encrypted ends the COPY with CopyFail, so nothing of it is
// stored.
func (s *session) frontendCopy(typ byte, n int) error {
	sp := s.pol
	body, err := s.cr.Body(n)
	if err != nil {
		return err
	}
	if typ == 'f' {
		sp.copyIn = nil // COPY data after the end goes nowhere
		sp.copyEnds++
		return s.sw.Message(typ, body)
	}
	start := time.Now()
	out, err := s.copyInOff(sp.copyBuf[:0], body, typ == 'c')
	s.srv.m.EncryptDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		sp.copyIn = nil // what the client sends of this COPY from now on is dropped
		sp.copyEnds++
		msg := "pgcrypt-proxy: cannot encrypt COPY data: " + err.Error()
		return s.sw.Message('f', append([]byte(msg), 0))
	}
	sp.copyBuf = out
	if len(out) > 0 {
		if err := s.sw.Message('d', out); err != nil {
			return err
		}
	}
	if typ == 'c' {
		sp.copyIn = nil // COPY data after the end goes nowhere
		sp.copyEnds++
		return s.sw.Message(typ, body)
	}
	return nil
}

// noteStatements updates session state that statements change: prepared
// statements made and dropped by SQL, and what makes the catalog stale.
func (s *session) noteStatements(an *rewrite.Analysis, p *rewrite.Plan) ([]*statement, error) {
	sp := s.pol
	if p == nil {
		// Cannot involve a policy table by name; it may still change
		// what names resolve to.
		if sp.p.analyzer.ChangesNames(an.SQL()) {
			sp.catalogStale = true
		}
		return nil, nil
	}
	var made []*statement
	for i, st := range p.Statements() {
		switch st.Kind {
		case rewrite.StmtPrepare:
			ns := newStatement(st.Prepared, sp.group, sp.syncs)
			ns.byQuery = true
			ns.an, ns.index, ns.cat = an, i, sp.cat.Load()
			ns.qualifiedFrom, ns.qualifiedAs = sp.qualifiedFrom, sp.qualifiedAs
			sp.record(st.Name, ns)
			made = append(made, ns)
		case rewrite.StmtDeallocate:
			if st.Name == "" {
				clear(sp.stmts)
			} else {
				delete(sp.stmts, st.Name)
			}
		case rewrite.StmtOther:
			sp.catalogStale = true
		}
	}
	if sp.p.analyzer.ChangesNames(an.SQL()) {
		sp.catalogStale = true
	}
	return made, nil
}

// lookupStmt returns the statement a name holds on the server, as far as
// the proxy can know. A Parse or PREPARE of a name the proxy already knows is
// recorded over the old one (which it keeps as prev): PostgreSQL refuses it
// if the old one still exists, and accepts it if the name was freed behind
// the proxy's back (a DEALLOCATE run by a function, say). Which happened is
// known from the answer. Until that answer
// matters no wait is needed: after a Parse, up to the next Sync (if the
// Parse failed or was skipped, PostgreSQL skips everything up to that
// Sync, the Bind included), and after a PREPARE, within its own Query.
// Later the answer is on its way, and the lookup waits for it: so a
// PREPARE of a name already taken, pipelined with an EXECUTE, is not
// trusted before its answer.
func (s *session) lookupStmt(name string) (*statement, error) {
	sp := s.pol
	st := sp.stmts[name]
	for st != nil {
		if (st.byQuery && st.groupAt == sp.group) || (!st.byQuery && st.syncAt == sp.syncs) {
			// Made in this Query, or by a Parse with no Sync sent since: if
			// the server refused or skipped it, it skips this message too
			// (up to that Sync, Queries included). Values are encrypted for
			// the statement the client means, never for an older one.
			return st, nil
		}
		o := st.outcome.Load()
		if o == outcomePending {
			if err := s.sw.Flush(); err != nil {
				return nil, err
			}
			if !s.await(st.known) {
				return nil, errors.New("the connection to PostgreSQL ended")
			}
			o = st.outcome.Load()
		}
		switch o {
		case outcomeFailed:
			st = st.prev
		case outcomeUncertain:
			return nil, fmt.Errorf("prepared statement %q may or may not exist after an earlier error; DEALLOCATE it first", name)
		default:
			if o == outcomeOK {
				st.prev = nil // anything older is gone from the server
			}
			return st, nil
		}
	}
	return nil, nil
}

// record makes st the statement name holds, keeping the previous one in
// case the server refuses st.
func (sp *sessionPolicy) record(name string, st *statement) {
	if name != "" {
		st.prev = sp.stmts[name]
	}
	sp.stmts[name] = st
}

// statementValues returns the literals and parameters of a plan to
// encrypt, those of SQL-level EXECUTEs of prepared statements included, and
// refuses what the proxy cannot encrypt: COPY data of policy columns, and
// EXECUTE of a statement it never saw prepared.
func (s *session) statementValues(p *rewrite.Plan) ([]rewrite.Literal, []rewrite.Param, error) {
	lits, params := p.Literals(), p.Params()
	extra := false
	for i, st := range p.Statements() {
		switch {
		case len(st.Execute) > 0: // EXECUTE, also inside EXPLAIN ANALYZE (which runs it)
			ps, err := s.lookupStmt(st.Name)
			if err != nil {
				return nil, nil, err
			}
			if ps == nil {
				return nil, nil, fmt.Errorf("EXECUTE %s: the proxy did not see this statement prepared, so it cannot tell which arguments to encrypt", st.Name)
			}
			pp, err := s.currentParams(ps)
			if err != nil {
				return nil, nil, err
			}
			l, prm, err := st.ExecuteLiterals(i, pp)
			if err != nil {
				return nil, nil, err
			}
			if len(l) > 0 || len(prm) > 0 {
				if !extra {
					lits, params = append([]rewrite.Literal(nil), lits...), append([]rewrite.Param(nil), params...)
					extra = true
				}
				lits, params = append(lits, l...), append(params, prm...)
			}
		}
	}
	if extra {
		slices.SortFunc(lits, func(a, b rewrite.Literal) int { return a.Start - b.Start })
		slices.SortFunc(params, func(a, b rewrite.Param) int { return a.Number - b.Number })
	}
	return lits, params, nil
}

// encryptLiterals returns sql with each policy literal replaced by its
// envelope.
func (s *session) encryptLiterals(sql string, lits []rewrite.Literal) (string, error) {
	if s.pol.nonStandardStrings.Load() && strings.IndexByte(sql, '\\') >= 0 {
		return "", errLexSCS // see lexingKnown
	}
	repl := make([]string, len(lits))
	start := time.Now()
	for i, l := range lits {
		pc := s.pol.p.column(l.Column)
		out, err := pc.c.Encrypt(s.pol.scratch[:0], []byte(l.Value))
		if err != nil {
			return "", fmt.Errorf("encrypting a literal for column %s: %w", pc.name, err)
		}
		if err := s.fits(l.Column, l.Use, len(out)); err != nil {
			return "", err
		}
		s.pol.scratch = out
		repl[i] = string(out)
		pc.encrypted.Inc()
	}
	s.srv.m.EncryptDuration.Observe(time.Since(start).Seconds())
	return rewrite.Rewrite(sql, lits, repl)
}

// frontendParse handles Parse: analysis, literal encryption, and the
// statement's parameters to encrypt at Bind.
func (s *session) frontendParse(body []byte) error {
	sp := s.pol
	var msg pgproto3.Parse
	if err := msg.Decode(body); err != nil {
		return &wire.ProtocolError{Type: 'P', Length: len(body) + 4, Reason: err.Error()}
	}
	named, an, p, err := s.planNamed(msg.Query)
	if err != nil {
		return s.rejectPlan(true, err)
	}
	renamed := named != msg.Query
	msg.Query = named
	st := newStatement(nil, sp.group, sp.syncs)
	st.changesPath = sp.p.analyzer.ChangesPathWhenRun(msg.Query)
	st.copyFrom = mayCopyFromStdin(msg.Query)
	// FETCH and EXECUTE return the rows of whatever cursor or statement
	// their name holds when they run.
	st.volatileShape = rewrite.MentionsAnyWord(msg.Query, []string{"fetch", "execute"})
	if p != nil {
		// An SQL PREPARE or DEALLOCATE in a Parse takes effect only if the
		// statement is executed, which the proxy would have to follow;
		// no driver sends them this way.
		for _, x := range p.Statements() {
			if x.Kind == rewrite.StmtPrepare || x.Kind == rewrite.StmtDeallocate {
				return s.rejectPlan(true, errors.New("PREPARE, DEALLOCATE and DISCARD ALL must be sent as simple queries through the proxy, not through Parse: it follows what prepared statement names run"))
			}
			if x.Kind == rewrite.StmtCopy {
				// Run later, it could resolve to a policy table (after a
				// search_path change) with no codec for its data.
				return s.rejectPlan(true, errors.New("COPY of a table named like one with encrypted columns works through the simple query protocol only (as psql's \\copy and pgx's CopyFrom send it)"))
			}
			if len(x.Execute) > 0 {
				// Its arguments would be encrypted, or not, for the
				// statement the name holds now; the portal may run after
				// the name was prepared again.
				return s.rejectPlan(true, fmt.Errorf("EXECUTE %s(...) with arguments must be sent as a simple query, not through Parse: the proxy encrypts its arguments for the statement %s holds when they are sent", x.Name, x.Name))
			}
		}
		if _, err := s.noteStatements(an, p); err != nil {
			return s.rejectPlan(true, err)
		}
		lits, params, err := s.statementValues(p)
		if err != nil {
			return s.rejectPlan(true, err)
		}
		for _, prm := range params {
			if i := prm.Number - 1; i < len(msg.ParameterOIDs) {
				switch oid := msg.ParameterOIDs[i]; {
				case oid == 0 || oid == oidUnknown:
				case !prm.Array && (oid == oidText || oid == oidVarchar || oid == oidBpchar):
				case prm.Array && (oid == oidTextArray || oid == oidVarcharArray || oid == oidBpcharArray):
				default:
					return s.rejectPlan(true, fmt.Errorf("column %s: parameter $%d is declared as type OID %d; encrypted values are text, so declare it as text (text[] for an array) or leave its type unspecified", prm.Column, prm.Number, oid))
				}
			}
		}
		st.params = params
		st.an, st.cat, st.lits = an, sp.cat.Load(), litSigs(lits)
		st.qualifiedFrom, st.qualifiedAs = sp.qualifiedFrom, sp.qualifiedAs
		if len(lits) > 0 {
			out, err := s.encryptLiteralsOff(msg.Query, lits)
			if err != nil {
				return s.rejectPlan(true, err)
			}
			msg.Query, renamed = out, true
		}
		if renamed {
			if body, err = msg.Encode(nil); err != nil {
				return err
			}
			body = body[5:]
		}
	} else if an != nil {
		s.noteStatements(an, nil)
	}
	sp.record(msg.Name, st)
	s.expect.push(expectation{kind: expParse, prepared: []*statement{st}})
	return s.sw.Message('P', body)
}

// frontendBind encrypts the parameters that belong to policy columns.
func (s *session) frontendBind(body []byte) error {
	sp := s.pol
	portalName, rest, err := cstring(body)
	if err != nil {
		return err
	}
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
		if body, err = s.encryptParamsOff(body, params); err != nil {
			return s.rejectPlan(true, err)
		}
	}
	pt := &portal{stmt: st}
	sp.portals[portalName] = pt
	if st.copyFrom {
		if sp.copyPortals == nil {
			sp.copyPortals = map[string]bool{}
		}
		sp.copyPortals[portalName] = true
	} else {
		delete(sp.copyPortals, portalName)
	}
	s.expect.push(expectation{kind: expBind})
	return s.sw.Message('B', body)
}

// encryptParams rewrites a Bind body with the policy parameters encrypted.
// Text and binary formats carry a text value as the same bytes, so the
// format codes stay as they are.
func (s *session) encryptParams(body []byte, params []rewrite.Param) ([]byte, error) {
	bad := func(why string) error { return &wire.ProtocolError{Type: 'B', Length: len(body) + 4, Reason: why} }
	// Skip the portal and statement names and the parameter format codes.
	pos := 0
	for range 2 {
		z := bytes.IndexByte(body[pos:], 0)
		if z < 0 {
			return nil, bad("unterminated name")
		}
		pos += z + 1
	}
	if len(body) < pos+2 {
		return nil, bad("truncated Bind")
	}
	nf := int(binary.BigEndian.Uint16(body[pos:]))
	formats := body[pos+2 : min(len(body), pos+2+2*nf)]
	pos += 2 + 2*nf
	if len(body) < pos+2 {
		return nil, bad("truncated Bind")
	}
	np := int(binary.BigEndian.Uint16(body[pos:]))
	pos += 2
	sp := s.pol
	out := append(sp.bindBuf[:0], body[:pos]...)
	start := time.Now()
	next := 0 // index into params, which are sorted by Number
	for i := 0; i < np; i++ {
		if len(body) < pos+4 {
			return nil, bad("truncated Bind")
		}
		l := int32(binary.BigEndian.Uint32(body[pos:]))
		pos += 4
		var v []byte
		if l >= 0 {
			if int(l) > len(body)-pos {
				return nil, bad("truncated Bind")
			}
			v = body[pos : pos+int(l)]
			pos += int(l)
		}
		for next < len(params) && params[next].Number-1 < i {
			next++
		}
		if l < 0 || next >= len(params) || params[next].Number-1 != i {
			out = append(out, body[pos-4-len(v):pos]...) // relayed as is; NULL stays NULL
			continue
		}
		pc := sp.p.column(params[next].Column)
		lenAt := len(out)
		out = append(out, 0, 0, 0, 0)
		var err error
		if params[next].Array {
			enc := func(dst, plain []byte) ([]byte, error) { return pc.c.Encrypt(dst, plain) }
			if paramFormat(formats, i) == 1 {
				out, err = encryptBinaryArray(out, v, enc)
			} else {
				out, err = encryptTextArray(out, v, enc)
			}
		} else {
			out, err = pc.c.Encrypt(out, v)
			if err == nil {
				err = s.fits(params[next].Column, params[next].Use, len(out)-lenAt-4)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("encrypting parameter $%d for column %s: %w", params[next].Number, pc.name, err)
		}
		binary.BigEndian.PutUint32(out[lenAt:], uint32(len(out)-lenAt-4))
		pc.encrypted.Inc()
	}
	s.srv.m.EncryptDuration.Observe(time.Since(start).Seconds())
	out = append(out, body[pos:]...) // result format codes
	sp.bindBuf = out
	return out, nil
}

// paramFormat returns parameter i's format code from a Bind's list: none
// means all text, one applies to all.
func paramFormat(formats []byte, i int) int {
	switch n := len(formats) / 2; {
	case n == 0:
		return 0
	case n == 1:
		return int(binary.BigEndian.Uint16(formats))
	case i < n:
		return int(binary.BigEndian.Uint16(formats[2*i:]))
	}
	return 0
}

// currentParams returns the parameters to encrypt for a prepared
// statement, planning it again when the search_path or the schema changed
// since it was prepared, as PostgreSQL re-resolves its names then. Literals
// are baked into a Parse's text, so a statement whose literals would now
// belong elsewhere must be prepared again.
func (s *session) currentParams(st *statement) ([]rewrite.Param, error) {
	sp := s.pol
	if st.an == nil || (!sp.catalogStale && sp.cat.Load() == st.cat) {
		return st.params, nil
	}
	if err := s.freshCatalog(); err != nil {
		return nil, err
	}
	cat := sp.cat.Load()
	if st.qualifiedFrom != nil {
		// Its relation names were written out schema-qualified as they
		// resolved when it was prepared; PostgreSQL would now resolve
		// them elsewhere.
		p0, err := s.planOff(st.qualifiedFrom, cat)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(p0.Qualifications(), st.qualifiedAs) {
			return nil, errors.New("this prepared statement's tables resolve to another schema since a search_path change, and the proxy pinned them to the schema they had when it was prepared; prepare it again")
		}
	}
	p, err := s.planOff(st.an, cat)
	if err != nil {
		return nil, err
	}
	if err := cat.checkWrites(p); err != nil {
		return nil, err
	}
	var params []rewrite.Param
	if st.index >= 0 {
		stmts := p.Statements()
		if st.index >= len(stmts) || stmts[st.index].Kind != rewrite.StmtPrepare {
			return nil, errors.New("a prepared statement could not be planned again; prepare it again")
		}
		params = stmts[st.index].Prepared
	} else {
		lits, prm, err := s.statementValues(p)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(litSigs(lits), st.lits) {
			return nil, errors.New("this prepared statement's literals belong to other columns since a search_path or schema change; prepare it again")
		}
		params = prm
	}
	st.params, st.cat = params, cat
	// Its rows may now come from another table: describe it again.
	st.shape.Store(nil)
	return params, nil
}

// frontendDescribe records which statement or portal a Describe asks about.
func (s *session) frontendDescribe(body []byte) error {
	sp := s.pol
	if len(body) < 2 {
		return &wire.ProtocolError{Type: 'D', Length: len(body) + 4, Reason: "short Describe"}
	}
	name, _, err := cstring(body[1:])
	if err != nil {
		return err
	}
	e := expectation{kind: expDescribePortal}
	if body[0] == 'S' {
		e.kind = expDescribeStmt
		e.stmt, _ = s.lookupStmt(name)
	} else {
		if e.portal = sp.portals[name]; e.portal == nil {
			e.portal = &portal{} // an SQL cursor (DECLARE)
			sp.portals[name] = e.portal
		}
		e.portal.describeSent = true
	}
	s.expect.push(e)
	return s.sw.Message('D', body)
}

// frontendExecute makes sure the proxy will know the shape of the rows the
// Execute returns: drivers that cache statements describe them only once,
// and some never do; then the proxy asks itself.
func (s *session) frontendExecute(body []byte) error {
	sp := s.pol
	name, _, err := cstring(body)
	if err != nil {
		return err
	}
	pt := sp.portals[name]
	if pt == nil {
		// A portal the proxy forgot at a Sync (it may outlive it in a
		// transaction), or an SQL cursor (DECLARE). Describe it to learn
		// its rows.
		pt = &portal{}
		sp.portals[name] = pt
	}
	// A Describe of the statement counts once answered: one that the
	// server skipped or refused left no shape. FETCH and EXECUTE return
	// what their cursor or statement holds when they run, which may have
	// changed since any Describe.
	if pt.stmt == nil || pt.stmt.volatileShape || (!pt.describeSent && pt.stmt.shape.Load() == nil) {
		d := append([]byte{'P'}, body[:len(name)+1]...)
		s.expect.push(expectation{kind: expDescribePortal, portal: pt, hidden: true})
		if err := s.sw.Message('D', d); err != nil {
			return err
		}
		pt.describeSent = true
	}
	var cq *copyQuery
	if (pt.stmt != nil && pt.stmt.copyFrom) || (pt.stmt == nil && sp.copyPortals[name]) {
		// A COPY FROM STDIN (its portal may have been bound before the
		// last Sync, in a transaction). COPY of policy columns is refused
		// at Parse.
		cq = newCopyQuery(false)
		sp.copyMaybe, sp.copyEnds = cq, 0
	}
	s.expect.push(expectation{kind: expExecute, portal: pt, copy: cq})
	return s.sw.Message('E', body)
}

// frontendClose forgets a statement or portal.
func (s *session) frontendClose(body []byte) error {
	sp := s.pol
	if len(body) < 2 {
		return &wire.ProtocolError{Type: 'C', Length: len(body) + 4, Reason: "short Close"}
	}
	name, _, err := cstring(body[1:])
	if err != nil {
		return err
	}
	if body[0] == 'S' {
		delete(sp.stmts, name)
	} else {
		delete(sp.portals, name)
		delete(sp.copyPortals, name)
	}
	s.expect.push(expectation{kind: expClose})
	return s.sw.Message('C', body)
}

// startPolicy reads the catalog before the first client message is
// relayed, so results are decrypted from the first query on. A session
// whose role cannot read it ends with the reason.
func (s *session) startPolicy() error {
	if s.pol == nil {
		return nil
	}
	if err := s.loadCatalog(); err != nil {
		s.log.Warn("cannot read the catalog", "err", err)
		s.abortErr.Store(ptr("pgcrypt-proxy cannot read the catalog it needs to encrypt: " + err.Error()))
		s.abortWhy.CompareAndSwap(abortNone, abortClientProtocol)
		return err
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// loadCatalog runs the catalog query on the session and installs the
// result. It runs between groups: at the start of the session, or before a
// statement that needs the catalog after DDL.
func (s *session) loadCatalog() error {
	q := &internalQuery{done: make(chan struct{})}
	s.expect.push(expectation{kind: expQuery, hidden: true, inner: q})
	if err := s.sw.Message('Q', append([]byte(catalogQuery(s.pol.p.tableNames, s.pol.p.tables, &s.pol.p.known)), 0)); err != nil {
		return err
	}
	if err := s.sw.Flush(); err != nil {
		return err
	}
	if !s.await(q.done) {
		return errors.New("the connection to PostgreSQL ended")
	}
	if q.res.code == "25P02" {
		return errTxFailed
	}
	cat, err := buildCatalog(s.pol.p, &q.res)
	if err != nil {
		s.srv.m.Error(metrics.ErrCatalog)
		return fmt.Errorf("reading the catalog: %w", err)
	}
	s.pol.cat.Store(cat)
	s.pol.catalogReadNow = true
	return nil
}
