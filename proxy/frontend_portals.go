package proxy

import (
	"bytes"
	"errors"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
)

// Portals as the client's Describe, Execute and Close messages name them:
// what each one runs, whether its rows need a Describe of the proxy's own,
// and what its run changes.

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
	name = nameKey(name)
	var e expectation
	if body[0] == 'S' {
		e.stmt, _ = s.lookupStmt(name)
	} else {
		if e.portal = sp.portals[name]; e.portal == nil || e.portal.runsAt != s.track.Runs() {
			// An SQL cursor (DECLARE), or a portal of that name that
			// may have been closed and opened again since its Bind.
			e.portal = &portal{runsAt: s.track.Runs()}
			sp.portals[name] = e.portal
		}
		e.portal.describeSent = true
	}
	s.track.Send(track.KindOf('D', body[0]), e)
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
	name = nameKey(name)
	pin, pinned := sp.pinned[name]
	if pinned && s.track.IdleThrough() >= pin.group {
		delete(sp.pinned, name) // its transaction has ended
		pinned = false
	}
	pt := sp.portals[name]
	if pt == nil {
		// A portal the proxy forgot at a Sync (it may outlive it in a
		// transaction; pinned ones are kept), or an SQL cursor (DECLARE).
		// Describe it to learn its rows.
		if pt = pin.pt; !pinned {
			pt = &portal{runsAt: s.track.Runs()}
		}
		sp.portals[name] = pt
	}
	// Another run since its Bind may have closed the portal and opened a
	// cursor of its name (SQL CLOSE and DECLARE, COMMIT): then its rows
	// are described again (below). The proxy is sure what the portal
	// runs only when nothing ran since its Bind or its own last Execute.
	fresh := pt.runsAt == s.track.Runs()
	st := pt.stmt
	if !fresh {
		st = nil
	}
	if pinned && st == nil {
		return s.rejectPlan(true, errors.New("a portal that runs FETCH, EXECUTE, PREPARE, DEALLOCATE or DISCARD ALL must be executed in the pipeline of its Bind, before anything else runs: the proxy cannot otherwise be sure what the portal holds or what its rows are; bind it again"))
	}
	var made []*statement
	if st != nil && len(st.execs) > 0 {
		if err := s.checkExecs(st); err != nil {
			return s.rejectPlan(true, err)
		}
	}
	if st != nil && st.names != nil {
		// Its PREPARE or DEALLOCATE runs now; the answer settles what it
		// made.
		made = s.applyNames(st.an, st.names, st.cat, st.qualifiedFrom, st.qualifiedAs, false)
		for _, m := range made {
			m.copyStamp(st) // its text's literals are the Parse's
		}
	}
	// A Describe of the statement counts once answered: one that the
	// server skipped or refused left no shape. FETCH and EXECUTE return
	// what their cursor or statement holds when they first run, which may
	// have changed since any Describe: described before the first
	// Execute, and later Executes of the portal (nothing ran between, see
	// pinned) go on with that shape.
	volatile := pt.stmt != nil && pt.stmt.volatileShape
	if !fresh || pt.stmt == nil || (volatile && !pt.executed) || (!volatile && !pt.describeSent && pt.stmt.shape.Load() == nil) {
		d := append([]byte{'P'}, body[:bytes.IndexByte(body, 0)+1]...) // the name as sent
		s.track.Send(track.DescribePortal, expectation{portal: pt, hidden: true})
		if err := s.sw.Message('D', d); err != nil {
			return err
		}
		pt.describeSent = true
	}
	var run *auditRun
	if pt.stmt != nil && pt.stmt.audit != nil {
		run = &auditRun{stmts: []auditStmt{*pt.stmt.audit}}
	}
	sp.runGroup = s.track.Groups() + 1
	if pt.stmt == nil || pt.stmt.changesLexing {
		// What it runs may change client_encoding or
		// standard_conforming_strings, which PostgreSQL reports only at
		// the group's ReadyForQuery.
		sp.lexGroup = s.track.Groups() + 1
	}
	seq, _ := s.track.Send(track.Execute, expectation{portal: pt, audit: run, prepared: made})
	// Its own run leaves the portal what it was (an active portal cannot
	// be closed); any other portal may have changed.
	pt.runsAt, pt.executed = s.track.Runs(), true
	for _, m := range made {
		m.seq = seq
	}
	if (pt.stmt != nil && pt.stmt.copyFrom) || (pt.stmt == nil && sp.copyPortals[name]) {
		// A COPY FROM STDIN (its portal may have been bound before the
		// last Sync, in a transaction). COPY of policy columns is refused
		// at Parse.
		sp.followCopy(seq, false)
	}
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
	name = nameKey(name)
	if body[0] == 'S' {
		delete(sp.stmts, name)
	} else {
		delete(sp.portals, name)
		delete(sp.copyPortals, name)
	}
	s.track.Send(track.Close, expectation{})
	return s.sw.Message('C', body)
}
