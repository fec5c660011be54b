package proxy

// The PHI access audit log (Options.Audit): what a statement that touches
// a policy column is, built once from its analysis (auditStmt), and the
// event made when the server answers it (auditRun) or the proxy refuses it.

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/audit"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/rewrite"
)

// AuditLog receives the audit events; *audit.Logger is one.
type AuditLog interface {
	Log(*audit.Event)
}

// auditSession is a session's part of every event.
type auditSession struct {
	user, database, client string
}

// startupParams reads user, database and application_name from a
// StartupMessage packet (length, protocol, then name\0value\0 pairs).
func startupParams(packet []byte) (user, database, app string) {
	if len(packet) < 8 {
		return "", "", ""
	}
	rest := packet[8:]
	for {
		name, r, err := cstring(rest)
		if err != nil || name == "" {
			break
		}
		value, r2, err := cstring(r)
		if err != nil {
			break
		}
		switch name {
		case "user":
			user = value
		case "database":
			database = value
		case "application_name":
			app = value
		}
		rest = r2
	}
	if database == "" {
		database = user
	}
	return user, database, app
}

// auditStmt is what the events of one statement say before it runs.
type auditStmt struct {
	kind        string
	fingerprint string
	searched    []string
	written     []string
	copyCols    []string // COPY TO: the policy columns whose values it returns
	keyVersions []string
}

// auditRun follows the statements of a Query, or the one of an Execute,
// through the server's answers.
type auditRun struct {
	stmts []auditStmt
	i     int
	rows  int64 // DataRows of the current statement
}

// auditStmts describes each statement of p's text for the audit log.
func (s *session) auditStmts(sql string, p *rewrite.Plan, lits []rewrite.Literal, params []rewrite.Param) []auditStmt {
	stmts := p.Statements()
	out := make([]auditStmt, len(stmts))
	cat := s.pol.cat.Load()
	for i, st := range stmts {
		a := &out[i]
		a.kind = st.Kind.String()
		if st.Start >= 0 && st.End <= len(sql) && st.Start <= st.End {
			a.fingerprint = rewrite.Fingerprint(sql[st.Start:st.End])
		}
		if c := st.Copy; c != nil {
			for _, col := range c.Columns {
				if col == nil {
					continue
				}
				if c.From {
					a.written = appendName(a.written, col.String())
					a.keyVersions = appendName(a.keyVersions, s.pol.p.column(col).cipher().KeyVersionID(0))
				} else {
					a.copyCols = appendName(a.copyCols, col.String())
				}
			}
		}
	}
	use := func(i int, col *rewrite.Column, u rewrite.Use) {
		if i < 0 || i >= len(out) {
			return
		}
		a := &out[i]
		c := s.pol.p.column(col).cipher()
		if u&rewrite.UseWrite != 0 {
			a.written = appendName(a.written, col.String())
			a.keyVersions = appendName(a.keyVersions, c.KeyVersionID(0))
		}
		if u&rewrite.UseCompare != 0 {
			a.searched = appendName(a.searched, col.String())
			if c.Mode() == cipher.Deterministic {
				for _, k := range cat.searchVersions(col, c, nil) {
					a.keyVersions = appendName(a.keyVersions, c.KeyVersionID(k))
				}
			}
		}
	}
	for _, l := range lits {
		use(l.Statement, l.Column, l.Use)
	}
	for _, prm := range params {
		use(len(out)-1, prm.Column, prm.Use) // parameters belong to the text's one statement
	}
	return out
}

func appendName(names []string, n string) []string {
	if slices.Contains(names, n) {
		return names
	}
	return append(names, n)
}

// auditRefused logs a statement the proxy refused.
func (s *session) auditRefused(reason, column string) {
	sp := s.pol
	if s.srv.opts.Audit == nil || sp == nil {
		return
	}
	fp := sp.auditFP
	if fp == "" && sp.auditText != "" {
		fp = rewrite.Fingerprint(sp.auditText)
	}
	e := s.auditEvent(sp.auditKind, fp)
	e.Outcome, e.Reason = "refused", reason
	if column != "" {
		e.Searched = []string{column} // the column the refusal names
		e.Tables = tablesOf(e.Searched)
	}
	s.srv.opts.Audit.Log(e)
}

func (s *session) auditEvent(kind, fingerprint string) *audit.Event {
	e := &audit.Event{
		Time: time.Now().UTC(), Session: s.id, User: s.audit.user, Database: s.audit.database,
		Client: s.audit.client, Statement: kind, Fingerprint: fingerprint,
	}
	if app := s.pol.auditApp.Load(); app != nil {
		e.Application = *app
	}
	return e
}

// auditDone ends the run's current statement: PostgreSQL answered it with
// tag (CommandComplete or PortalSuspended: ok), or with an error (code).
// read is the result's row shape, if any.
func (s *session) auditDone(run *auditRun, tag []byte, code string, read *rowShape) {
	if run.i >= len(run.stmts) {
		return
	}
	a := &run.stmts[run.i]
	run.i++
	rows := run.rows
	run.rows = 0
	var readCols []string
	if read != nil {
		for _, pc := range read.cols {
			if pc != nil {
				readCols = appendName(readCols, pc.name)
			}
		}
	}
	for _, c := range a.copyCols {
		readCols = appendName(readCols, c)
	}
	if len(readCols) == 0 && len(a.searched) == 0 && len(a.written) == 0 {
		return // the statement touched no policy column
	}
	e := s.auditEvent(a.kind, a.fingerprint)
	e.Read, e.Searched, e.Written, e.KeyVersions = readCols, a.searched, a.written, a.keyVersions
	e.Tables = tablesOf(slices.Concat(readCols, a.searched, a.written))
	switch {
	case code != "":
		e.Outcome, e.SQLState = "error", code
	default:
		e.Outcome = "ok"
		if n, ok := tagRows(tag); ok {
			rows = n
		}
	}
	e.Rows = rows
	s.srv.opts.Audit.Log(e)
}

// auditAnswered ends the audited statement cur's answer typ ends:
// CommandComplete (body is its tag), PortalSuspended, or EmptyQueryResponse
// (a statement that was only a comment: nothing to log).
func (s *session) auditAnswered(cur *expectation, k track.Kind, typ byte, body []byte) {
	run := cur.audit
	if typ == 'I' {
		run.i++
		run.rows = 0
		return
	}
	var shape *rowShape
	switch k {
	case track.Query:
		shape = s.pol.rows
	case track.Execute:
		if cur.portal != nil {
			shape = cur.portal.rowShape()
		}
	}
	var tag []byte
	if typ == 'C' {
		tag = body
	}
	s.auditDone(run, tag, "", shape) // a suspended portal's next Execute has its own event
}

// tablesOf returns the schema.table of each schema.table.column.
func tablesOf(cols []string) []string {
	var out []string
	for _, c := range cols {
		if i := strings.LastIndexByte(c, '.'); i > 0 {
			out = appendName(out, c[:i])
		}
	}
	return out
}

// tagRows reads the row count at the end of a CommandComplete tag
// ("SELECT 5", "INSERT 0 5", "COPY 10").
func tagRows(tag []byte) (int64, bool) {
	tag = bytes.TrimRight(tag, "\x00")
	i := bytes.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(tag[i+1:]), 10, 64)
	return n, err == nil
}
