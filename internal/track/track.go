// Package track follows the PostgreSQL frontend/backend protocol of one
// session as a pure state machine. It is fed every message sent to the
// server that the server answers, and every message the server sends, each
// side in order, and it says what each server message answers: which client
// message, whether that answer is complete, whether the server now skips to
// the next Sync (seen from its answers, or known in advance when the sender
// sent what fails: Fail), and where the COPY sub-protocol stands. A server message it
// cannot place is an error: a proxy that guessed instead could attach rows
// to the wrong statement.
//
// It also counts what has been sent and answered, which the caller's rules
// are keyed by: groups (Sync, Query, FunctionCall) sent and answered,
// Syncs, runs (Execute, Query, FunctionCall), whether an extended-protocol
// group is open, and the transaction status of the last ReadyForQuery.
//
// The caller attaches an opaque tag to each message it sends and gets it
// back with the answers. The tracker does no I/O, keeps no clock and knows
// nothing of encryption; one mutex lets the side that writes to the server
// and the side that reads from it share it. There is one wait: the writing
// side may wait for the reading side to settle up to one of its messages
// (Settled), or to settle where a COPY stands (CopyIn). Only the reading
// side settles (Settle), once it has acted on the answers it was given.
package track

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Kind is a client message the server answers.
type Kind uint8

// The client messages the server answers, with what it answers them with
// (an ErrorResponse may stand in for any of it).
const (
	Parse             Kind = iota + 1 // ParseComplete
	Bind                              // BindComplete
	DescribeStatement                 // ParameterDescription, then RowDescription or NoData
	DescribePortal                    // RowDescription or NoData
	Execute                           // DataRows or a COPY, then CommandComplete, EmptyQueryResponse or PortalSuspended
	Close                             // CloseComplete
	Sync                              // ReadyForQuery
	Query                             // any number of results, then ReadyForQuery
	FunctionCall                      // FunctionCallResponse, then ReadyForQuery
)

var kindNames = [...]string{"?", "Parse", "Bind", "Describe (statement)", "Describe (portal)", "Execute", "Close", "Sync", "Query", "FunctionCall"}

// String names the client message.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "?"
}

// EndsGroup reports whether ReadyForQuery ends the answer to k.
func (k Kind) EndsGroup() bool { return k == Sync || k == Query || k == FunctionCall }

// KindOf returns the Kind of a client message of type typ, or 0 for a
// message the server does not answer (Flush, CopyData, CopyDone,
// CopyFail, Terminate). target is a Describe's first body byte.
func KindOf(typ, target byte) Kind {
	switch typ {
	case 'P':
		return Parse
	case 'B':
		return Bind
	case 'D':
		if target == 'S' {
			return DescribeStatement
		}
		return DescribePortal
	case 'E':
		return Execute
	case 'C':
		return Close
	case 'S':
		return Sync
	case 'Q':
		return Query
	case 'F':
		return FunctionCall
	}
	return 0
}

// Copy is where the COPY sub-protocol stands.
type Copy uint8

const (
	CopyNone Copy = iota // no COPY is running
	CopyIn               // CopyInResponse came: the server reads the client's COPY data
	CopyOut              // CopyOutResponse came: the server sends COPY data
	CopyBoth             // CopyBothResponse came (replication)
)

// Place says what a server message is.
type Place struct {
	// Kind is the client message the server message answers; 0 for an
	// Async or Unsolicited one.
	Kind Kind
	// Async: a NoticeResponse, NotificationResponse or ParameterStatus,
	// which may come at any time and answer nothing.
	Async bool
	// Unsolicited: an ErrorResponse with nothing outstanding (a backend
	// terminated while idle). The connection ends after it.
	Unsolicited bool
	// Last: the answer to that message is complete.
	Last bool
	// Failed: an ErrorResponse. When it answers a message other than
	// Sync, Query or FunctionCall, the server skips to the next Sync:
	// the messages it skips are given to the tracker's skip function.
	Failed bool
	// Copy is the COPY state after the message.
	Copy Copy
}

// DesyncError is a server message the tracker cannot place.
type DesyncError struct {
	Type   byte // the server message's type
	Kind   Kind // the client message outstanding, 0 for none
	Reason string
}

func (e *DesyncError) Error() string {
	if e.Kind == 0 {
		return fmt.Sprintf("server message %q with no client message outstanding: %s", e.Type, e.Reason)
	}
	return fmt.Sprintf("server message %q while the answer to %s is outstanding: %s", e.Type, e.Kind, e.Reason)
}

type entry[T any] struct {
	kind Kind
	seq  uint64
	tag  T
}

// Tracker follows one session. Send is called by the side that writes to
// the server, Server by the side that reads from it; each side in the
// order of its messages. T is the caller's tag.
type Tracker[T any] struct {
	onSkip func(*T) // called, under the lock, for every message the server skips

	mu       sync.Mutex
	ring     []entry[T]
	head     int
	count    int
	syncs    int         // Syncs in the ring
	skipping bool        // the server skips to the next Sync
	failing  atomic.Bool // the sender sent what fails the group (Fail); until its Sync
	sent     uint64      // sequence numbers given out by Send
	done     uint64      // every message up to this one is answered or skipped
	settled  uint64      // done, as of the reading side's last Settle
	cur      entry[T]
	hasCur   bool
	copy     Copy
	copies   int  // COPY FROM STDINs ended in the message being answered
	paramsIn bool // a Describe (statement) has had its ParameterDescription
	// waiting is closed at the next change that Settled or CopyIn
	// reports; nil while nobody waits.
	waiting chan struct{}

	// What has been sent, counted by Send for the sending side: groups
	// (Sync, Query, FunctionCall), Syncs, runs (Execute, Query,
	// FunctionCall: any of them may open or close portals out of
	// sight), and whether an extended-protocol message has been sent
	// since the last Sync (only a Sync ends an extended-protocol group:
	// the server skips a Query sent after an error in it too).
	groups, syncsSent, runs atomic.Uint64
	inGroup                 atomic.Bool
	// What has been answered: groups whose ReadyForQuery came, and that
	// count at the last ReadyForQuery that reported no transaction open
	// (every portal then is gone), and its status byte.
	groupsDone, idleThrough atomic.Uint64
	txStatus                atomic.Uint32
}

// New returns a tracker for a session that is ready for a query. onSkip,
// if not nil, is told of each message the server skips after an error.
func New[T any](onSkip func(*T)) *Tracker[T] {
	return &Tracker[T]{onSkip: onSkip}
}

// Send records a message sent to the server that it answers, and
// returns its sequence number (from 1). queued is false when the server
// will skip the message without an answer (an error came earlier in the
// group and no Sync is sent yet); onSkip has then been told.
func (t *Tracker[T]) Send(k Kind, tag T) (seq uint64, queued bool) {
	return t.send(k, tag, true)
}

// SendOwn is Send for a query of the sender's own (a catalog read) that
// opens or closes no portal: it is not counted in Runs.
func (t *Tracker[T]) SendOwn(k Kind, tag T) (seq uint64, queued bool) {
	return t.send(k, tag, false)
}

func (t *Tracker[T]) send(k Kind, tag T, run bool) (seq uint64, queued bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	seq = t.sent
	t.count1(k, run)
	if k == Sync {
		t.failing.Store(false)
	}
	if t.skipping && k != Sync && t.syncs == 0 {
		if t.onSkip != nil {
			t.onSkip(&tag)
		}
		if t.settled == seq-1 {
			// Everything before it is settled, and so is a message the
			// server skips once onSkip has been told.
			t.settled = seq
		}
		t.finished(seq)
		return seq, false
	}
	if t.count == len(t.ring) {
		// Small at first: an idle session holds its ring.
		nb := make([]entry[T], max(4, 2*len(t.ring)))
		for i := 0; i < t.count; i++ {
			nb[i] = t.ring[(t.head+i)%len(t.ring)]
		}
		t.ring, t.head = nb, 0
	}
	t.ring[(t.head+t.count)%len(t.ring)] = entry[T]{k, seq, tag}
	t.count++
	if k == Sync {
		t.syncs++
	}
	return seq, true
}

// count1 counts a message sent in the sending side's counters.
func (t *Tracker[T]) count1(k Kind, run bool) {
	switch k {
	case Sync:
		t.groups.Add(1)
		t.syncsSent.Add(1)
		t.inGroup.Store(false)
		return
	case Query, FunctionCall:
		t.groups.Add(1)
	default:
		t.inGroup.Store(true)
	}
	if run && (k == Query || k == FunctionCall || k == Execute) {
		t.runs.Add(1)
	}
}

// Groups returns how many groups have been sent: Syncs, Queries and
// FunctionCalls, each answered by one ReadyForQuery.
func (t *Tracker[T]) Groups() uint64 { return t.groups.Load() }

// Syncs returns how many Syncs have been sent.
func (t *Tracker[T]) Syncs() uint64 { return t.syncsSent.Load() }

// Runs returns how many Executes, Queries and FunctionCalls have been
// sent: any of them may close a portal and open another of its name (SQL
// CLOSE and DECLARE, COMMIT, a function's cursors).
func (t *Tracker[T]) Runs() uint64 { return t.runs.Load() }

// InGroup reports whether an extended-protocol message has been sent
// since the last Sync: what is sent now belongs to that group.
func (t *Tracker[T]) InGroup() bool { return t.inGroup.Load() }

// GroupsDone returns how many groups the server has answered with
// ReadyForQuery, as placed by Server.
func (t *Tracker[T]) GroupsDone() uint64 { return t.groupsDone.Load() }

// Ready records the status byte of the ReadyForQuery just placed ('I'
// idle, 'T' in a transaction, 'E' in a failed one). Only the reading
// side calls it.
func (t *Tracker[T]) Ready(status byte) {
	t.txStatus.Store(uint32(status))
	if status == 'I' {
		t.idleThrough.Store(t.groupsDone.Load())
	}
}

// InTransaction reports whether the last ReadyForQuery said a
// transaction is open (or has failed).
func (t *Tracker[T]) InTransaction() bool {
	s := t.txStatus.Load()
	return s == 'T' || s == 'E'
}

// TxFailed reports whether the last ReadyForQuery said the transaction
// has failed.
func (t *Tracker[T]) TxFailed() bool { return t.txStatus.Load() == 'E' }

// IdleThrough returns GroupsDone as of the last ReadyForQuery that said
// no transaction is open: every portal of those groups is gone.
func (t *Tracker[T]) IdleThrough() uint64 { return t.idleThrough.Load() }

// finished records that every message up to seq is answered or skipped.
func (t *Tracker[T]) finished(seq uint64) {
	if seq > t.done {
		t.done = seq
		t.changed()
	}
}

func (t *Tracker[T]) changed() {
	if t.waiting != nil {
		close(t.waiting)
		t.waiting = nil
	}
}

// Settle records that the reading side has acted on every answer placed
// so far: Settled now reports them. Only the reading side calls it.
func (t *Tracker[T]) Settle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.settled != t.done {
		t.settled = t.done
		t.changed()
	}
}

// Settled tells whether the answers to every message up to seq have
// been placed and the reading side has settled them. If not, wait closes
// at the next change: ask again then. The answer is on its way once a
// Sync, Query or FunctionCall after seq has been sent and flushed.
func (t *Tracker[T]) Settled(seq uint64) (ok bool, wait <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.settled >= seq {
		return true, nil
	}
	if t.waiting == nil {
		t.waiting = make(chan struct{})
	}
	return false, t.waiting
}

// CopyIn tells whether the server will be reading COPY data for message
// seq (a Query or Execute that may run COPY FROM STDIN) when it reaches
// the client's next message, given that the client has ended ends of
// seq's COPYs (CopyDone or CopyFail) before it. settled is false while
// the server has not caught up with that far: wait for wait to close,
// then ask again. The server gets there without more from the client once
// it flushes what it has buffered, which a Flush makes it do.
func (t *Tracker[T]) CopyIn(seq uint64, ends int) (running, settled bool, wait <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.done >= seq:
		return false, true, nil
	case t.hasCur && t.cur.seq == seq && t.copy == CopyIn && t.copies >= ends:
		return true, true, nil
	}
	if t.waiting == nil {
		t.waiting = make(chan struct{})
	}
	return false, false, t.waiting
}

// CopyingIn reports whether the server is reading COPY data now (COPY
// FROM STDIN, or COPY BOTH): it answers nothing more until the client
// ends it, a Flush included.
func (t *Tracker[T]) CopyingIn() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.hasCur && (t.copy == CopyIn || t.copy == CopyBoth)
}

// Sent returns the sequence number of the last message sent (0 for none).
func (t *Tracker[T]) Sent() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// Outstanding returns how many messages sent are not yet wholly
// answered.
func (t *Tracker[T]) Outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.count
	if t.hasCur {
		n++
	}
	return n
}

// Fail records, on the sending side, that a message just sent will fail
// (a statement the sender made fail on purpose): the server skips what is
// sent after it until the next Sync, which the sender may then drop
// unsent. It holds until Send(Sync).
func (t *Tracker[T]) Fail() {
	t.failing.Store(true)
}

// Failing reports whether a Fail since the last Sync sent means the
// server will skip what is sent now.
func (t *Tracker[T]) Failing() bool {
	return t.failing.Load()
}

// Skipping reports whether the server skips what is sent until a Sync.
func (t *Tracker[T]) Skipping() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.skipping
}

// Current returns the tag of the message that the last server message
// placed with a Kind answers, valid until the next call of Server; nil
// before the first. Only the reading side may call it.
func (t *Tracker[T]) Current() *T {
	if t.cur.kind == 0 {
		return nil
	}
	return &t.cur.tag
}

// CurrentKind is the Kind of the message Current returns, or 0.
func (t *Tracker[T]) CurrentKind() Kind { return t.cur.kind }

// Server places a message of type typ from the server.
func (t *Tracker[T]) Server(typ byte) (Place, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch typ {
	case 'N', 'A', 'S':
		return Place{Async: true, Copy: t.copy}, nil
	}
	if !t.hasCur {
		if !t.next() {
			t.cur = entry[T]{}
			if typ == 'E' {
				return Place{Unsolicited: true}, nil
			}
			return Place{}, &DesyncError{Type: typ, Reason: "an answer to nothing sent"}
		}
	}
	k := t.cur.kind
	p := Place{Kind: k}
	bad := func(reason string) (Place, error) {
		return Place{}, &DesyncError{Type: typ, Kind: k, Reason: reason}
	}
	switch typ {
	case 'Z':
		if !k.EndsGroup() {
			return bad("ReadyForQuery out of turn")
		}
		if t.copy != CopyNone {
			return bad("ReadyForQuery during COPY")
		}
		p.Last = true
		t.groupsDone.Add(1)
	case 'E':
		p.Failed = true
		t.endCopy()
		if !k.EndsGroup() {
			p.Last = true
			t.startSkip()
		}
	case '1':
		if k != Parse {
			return bad("ParseComplete answers only Parse")
		}
		p.Last = true
	case '2':
		if k != Bind {
			return bad("BindComplete answers only Bind")
		}
		p.Last = true
	case '3':
		if k != Close {
			return bad("CloseComplete answers only Close")
		}
		p.Last = true
	case 't':
		if k != DescribeStatement || t.paramsIn {
			return bad("ParameterDescription answers only Describe (statement), once")
		}
		t.paramsIn = true
	case 'T', 'n':
		switch {
		case k == DescribeStatement && t.paramsIn, k == DescribePortal:
			p.Last = true
		case k == Query && typ == 'T' && t.copy == CopyNone:
		default:
			return bad("RowDescription or NoData out of place")
		}
	case 'D':
		if (k != Query && k != Execute) || t.copy != CopyNone {
			return bad("DataRow answers only Query or Execute, outside COPY")
		}
	case 'C':
		if k != Query && k != Execute {
			return bad("CommandComplete answers only Query or Execute")
		}
		if t.copy == CopyOut || t.copy == CopyBoth {
			return bad("CommandComplete before the server's CopyDone")
		}
		t.endCopy()
		p.Last = k == Execute
	case 'I':
		if (k != Query && k != Execute) || t.copy != CopyNone {
			return bad("EmptyQueryResponse answers only Query or Execute")
		}
		p.Last = k == Execute
	case 's':
		if k != Execute || t.copy != CopyNone {
			return bad("PortalSuspended answers only Execute")
		}
		p.Last = true
	case 'V':
		if k != FunctionCall {
			return bad("FunctionCallResponse answers only FunctionCall")
		}
	case 'G', 'H', 'W':
		if (k != Query && k != Execute) || t.copy != CopyNone {
			return bad("a COPY can start only in a Query or Execute, one at a time")
		}
		t.changed()
		switch typ {
		case 'G':
			t.copy = CopyIn
		case 'H':
			t.copy = CopyOut
		default:
			t.copy = CopyBoth
		}
	case 'd':
		if t.copy != CopyOut && t.copy != CopyBoth {
			return bad("CopyData from the server outside COPY TO")
		}
	case 'c':
		if t.copy != CopyOut && t.copy != CopyBoth {
			return bad("CopyDone from the server outside COPY TO")
		}
		t.copy = CopyNone
	default:
		return bad("not a message the server sends after startup")
	}
	p.Copy = t.copy
	if p.Last {
		t.hasCur, t.paramsIn = false, false
		t.finished(t.cur.seq)
	}
	return p, nil
}

// endCopy records the end of a COPY, if one runs.
func (t *Tracker[T]) endCopy() {
	if t.copy == CopyIn {
		t.copies++
	}
	if t.copy != CopyNone {
		t.copy = CopyNone
		t.changed()
	}
}

// next makes the oldest message sent the one being answered.
func (t *Tracker[T]) next() bool {
	if t.count == 0 {
		return false
	}
	t.cur = t.ring[t.head]
	t.ring[t.head] = entry[T]{} // drop the tag's references
	t.head = (t.head + 1) % len(t.ring)
	t.count--
	if t.cur.kind == Sync {
		t.syncs--
		t.skipping = false // the skip ends at this Sync
	}
	t.hasCur, t.copies = true, 0
	return true
}

// startSkip records that the server skips to the next Sync: what is sent
// before it is skipped, now and when it is sent.
func (t *Tracker[T]) startSkip() {
	t.skipping = true
	for t.count > 0 && t.ring[t.head].kind != Sync {
		if t.onSkip != nil {
			t.onSkip(&t.ring[t.head].tag)
		}
		t.finished(t.ring[t.head].seq)
		t.ring[t.head] = entry[T]{}
		t.head = (t.head + 1) % len(t.ring)
		t.count--
	}
}
