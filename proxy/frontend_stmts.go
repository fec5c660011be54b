package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// Prepared statements as the client's messages create and name them: what
// each name holds on the server, and which values of a plan to encrypt.

// noteStatements updates session state that statements change: prepared
// statements made and dropped by SQL (in a Query, when byQuery; a Parse's
// take effect at each Execute, see applyNames), and what makes the catalog
// stale.
func (s *session) noteStatements(an *rewrite.Analysis, p *rewrite.Plan, byQuery bool) ([]*statement, error) {
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
	if byQuery {
		made = s.applyNames(an, p, sp.cat.Load(), sp.qualifiedFrom, sp.qualifiedAs, true)
	}
	for _, st := range p.Statements() {
		if st.Kind == rewrite.StmtOther {
			sp.catalogStale = true
		}
	}
	if sp.p.analyzer.ChangesNames(an.SQL()) {
		sp.catalogStale = true
	}
	return made, nil
}

// applyNames applies the SQL PREPAREs, DEALLOCATEs and DISCARD ALLs of
// p, which an analyzed and planned with cat, to the session's statement
// names, and returns the statements made, whose outcome the answer to
// their Query (byQuery) or Execute settles.
func (s *session) applyNames(an *rewrite.Analysis, p *rewrite.Plan, cat *catalog, qf *rewrite.Analysis, qa []rewrite.ColumnList, byQuery bool) []*statement {
	sp := s.pol
	var made []*statement
	for i, st := range p.Statements() {
		switch st.Kind {
		case rewrite.StmtPrepare:
			ns := newStatement(st.Prepared, s.track.Groups(), s.track.Syncs())
			ns.byQuery = byQuery
			ns.an, ns.index, ns.cat, ns.sql = an, i, cat, an.SQL()
			ns.qualifiedFrom, ns.qualifiedAs = qf, qa
			sp.record(st.Name, ns)
			made = append(made, ns)
		case rewrite.StmtDeallocate:
			if st.Name == "" {
				clear(sp.stmts)
			} else {
				delete(sp.stmts, nameKey(st.Name))
			}
		}
	}
	return made
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
	name = nameKey(name)
	st := sp.stmts[name]
	for st != nil {
		if (st.byQuery && st.groupAt == s.track.Groups()) || (!st.byQuery && st.syncAt == s.track.Syncs()) {
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
			if !s.awaitSettled(st.seq) {
				return nil, errors.New("the connection to PostgreSQL ended")
			}
			if o = st.outcome.Load(); o == outcomePending {
				return nil, fmt.Errorf("prepared statement %q: its answer settled nothing", name)
			}
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
	name = nameKey(name)
	if name != "" {
		st.prev = sp.stmts[name]
	}
	sp.stmts[name] = st
}

// statementValues returns the literals and parameters of a plan to
// encrypt, those of SQL-level EXECUTEs of prepared statements included
// (with the statements their arguments were encrypted for), and refuses
// what the proxy cannot encrypt: COPY data of policy columns, and EXECUTE
// of a statement it never saw prepared.
func (s *session) statementValues(p *rewrite.Plan) ([]rewrite.Literal, []rewrite.Param, []execRef, error) {
	lits, params := p.Literals(), p.Params()
	var execs []execRef
	extra := false
	for i, st := range p.Statements() {
		switch {
		case (st.Kind == rewrite.StmtExecute || st.Kind == rewrite.StmtExplain) && st.Name != "" && len(st.Execute) == 0:
			// EXECUTE without arguments, also inside EXPLAIN ANALYZE, but
			// the literals of its PREPARE's text may be under keys
			// reloaded since (currentParams): checked now, and at each
			// Execute of a Parse of it (checkExecs).
			ps, err := s.lookupStmt(st.Name)
			if err != nil {
				return nil, nil, nil, err
			}
			if ps != nil {
				if _, err := s.currentParams(ps); err != nil {
					return nil, nil, nil, err
				}
				execs = append(execs, execRef{st.Name, ps, true})
			}
		case len(st.Execute) > 0: // EXECUTE, also inside EXPLAIN ANALYZE (which runs it)
			ps, err := s.lookupStmt(st.Name)
			if err != nil {
				return nil, nil, nil, err
			}
			if ps == nil {
				return nil, nil, nil, fmt.Errorf("EXECUTE %s: the proxy did not see this statement prepared, so it cannot tell which arguments to encrypt", st.Name)
			}
			pp, err := s.currentParams(ps)
			if err != nil {
				return nil, nil, nil, err
			}
			l, prm, err := st.ExecuteLiterals(i, pp)
			if err != nil {
				return nil, nil, nil, err
			}
			execs = append(execs, execRef{st.Name, ps, false})
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
	return lits, params, execs, nil
}

// checkExecs refuses to run a Parse's EXECUTE once its statement name
// holds another statement than the one its arguments were encrypted for
// (or, after DEALLOCATE, none), or once the literals of that statement's
// text are under keys reloaded since.
func (s *session) checkExecs(st *statement) error {
	for _, x := range st.execs {
		now, err := s.lookupStmt(x.name)
		if err != nil {
			return err
		}
		if now != x.st && !x.noArgs {
			return fmt.Errorf("EXECUTE %s: %s was prepared again or deallocated since this statement was parsed, and its arguments were encrypted for the statement it held then; parse it again", x.name, x.name)
		}
		if now != nil {
			if _, err := s.currentParams(now); err != nil {
				return err
			}
		}
	}
	return nil
}

// frontendFunctionCall relays a FunctionCall message, unless it calls a
// function that reads whole tables (query_to_xml by OID): the envelopes in
// its answer could not be decrypted.
func (s *session) frontendFunctionCall(n int) error {
	body, err := s.cr.Body(n)
	if err != nil {
		return err
	}
	if len(body) >= 4 {
		if oids := s.srv.wholeTableOIDs.Load(); oids != nil && (*oids)[binary.BigEndian.Uint32(body)] {
			return s.reject(false, codeFeatureNotSupported, "pgcrypt-proxy: "+errWholeTableCall.Error(), "", "whole_table")
		}
	}
	s.track.Send(track.FunctionCall, expectation{start: time.Now()})
	return s.sw.Message('F', body)
}

var errWholeTableCall = errors.New("a FunctionCall of a function that reads whole tables or queries inside the server (query_to_xml, table_to_xml and kin); select the columns instead")
