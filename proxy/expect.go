package proxy

import (
	"sync"
	"time"
)

// PostgreSQL answers every client message in order, and ReadyForQuery ends
// the answer to each Sync, Query and FunctionCall. The client-side loop
// records what it sent as expectations; the server-side loop takes them in
// the same order to know what each server message answers: which statement
// a DataRow belongs to, which answers are the proxy's own (not forwarded),
// and when a query started.

type expKind uint8

const (
	expParse          expKind = iota + 1 // ParseComplete
	expBind                              // BindComplete
	expDescribeStmt                      // ParameterDescription, then RowDescription or NoData
	expDescribePortal                    // RowDescription or NoData
	expExecute                           // DataRows, then CommandComplete, EmptyQuery or PortalSuspended (COPY in between)
	expClose                             // CloseComplete
	expSync                              // ReadyForQuery
	expQuery                             // any number of results, then ReadyForQuery
	expFunction                          // FunctionCallResponse, then ReadyForQuery
)

// String names the message whose answer is expected.
func (k expKind) String() string {
	names := [...]string{"?", "Parse", "Bind", "Describe (statement)", "Describe (portal)", "Execute", "Close", "Sync", "Query", "FunctionCall"}
	if int(k) < len(names) {
		return names[k]
	}
	return "?"
}

// endsGroup reports whether ReadyForQuery answers this kind.
func (k expKind) endsGroup() bool { return k == expSync || k == expQuery || k == expFunction }

// expectation is one client message's pending answer.
type expectation struct {
	kind   expKind
	start  time.Time      // for group ends: the group's first message, for the latency metric
	hidden bool           // the proxy's own message: its answers are not forwarded
	reject []byte         // an ErrorResponse to show in place of the server's (for the proxy's poison messages)
	stmt   *statement     // Describe S: where the row shape goes
	portal *portal        // Describe P and Execute
	inner  *internalQuery // the proxy's own Query: its results are captured
	// prepared are the statements an SQL PREPARE in this Query made, or
	// for a Parse the statement it makes: settled by the answer.
	prepared []*statement
	copyOut  copyCodec  // the Query's COPY TO STDOUT of policy columns
	copy     *copyQuery // a Query or Execute that may run COPY FROM STDIN: its COPY state
	audit    *auditRun  // the audit events of a Query's or Execute's statements
}

// expectQueue is a FIFO of expectations shared by the two loops.
type expectQueue struct {
	mu    sync.Mutex
	buf   []expectation
	head  int
	count int
	// skipping: PostgreSQL reported an error in an extended-protocol
	// group and skips the client's messages up to the next Sync. What it
	// skips never runs: the statements a skipped Parse or PREPARE would
	// make, and the COPY of a skipped Query, are settled here, because the
	// client side may be waiting to learn them (lookupStmt, settleCopy)
	// before it sends that Sync.
	skipping bool
}

// settleSkipped records that PostgreSQL skips e.
func settleSkipped(e *expectation) {
	for _, st := range e.prepared {
		st.settle(outcomeFailed)
	}
	if e.copy != nil {
		e.copy.ended()
	}
}

func (q *expectQueue) push(e expectation) {
	q.mu.Lock()
	if q.skipping && e.kind != expSync && !q.syncQueuedLocked() {
		settleSkipped(&e) // sent before the Sync that ends the skip
	}
	if q.count == len(q.buf) {
		nb := make([]expectation, max(16, 2*len(q.buf)))
		for i := 0; i < q.count; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.count)%len(q.buf)] = e
	q.count++
	q.mu.Unlock()
}

func (q *expectQueue) pop() (expectation, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.count == 0 {
		return expectation{}, false
	}
	e := q.buf[q.head]
	q.buf[q.head] = expectation{} // drop references
	q.head = (q.head + 1) % len(q.buf)
	q.count--
	if e.kind == expSync {
		// PostgreSQL's skip ends at this Sync: what is queued from now on
		// comes after it, with no window before its ReadyForQuery.
		q.skipping = false
	}
	return e, true
}

// startSkip records that PostgreSQL skips to the next Sync; pop ends the
// skip when it takes that Sync's expectation.
func (q *expectQueue) startSkip() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.skipping = true
	for i := 0; i < q.count; i++ {
		e := &q.buf[(q.head+i)%len(q.buf)]
		if e.kind == expSync {
			return
		}
		settleSkipped(e)
	}
}

func (q *expectQueue) syncQueuedLocked() bool {
	for i := 0; i < q.count; i++ {
		if q.buf[(q.head+i)%len(q.buf)].kind == expSync {
			return true
		}
	}
	return false
}
