package proxy

import "sync"

// copyQuery follows whether PostgreSQL is reading COPY data for a Query or
// an Execute that may run COPY FROM STDIN. The client side needs it for a
// Sync sent during the COPY: PostgreSQL ignores a Sync while it copies and
// answers it otherwise, and the proxy must expect an answer exactly when
// one comes. The server side updates it from CopyInResponse, the end of
// each statement, and the end of the Query or Execute.
type copyQuery struct {
	policy bool // a COPY of policy columns (the client's data goes through a codec)

	mu       sync.Mutex
	state    copyState
	finished int           // COPYs that have ended (CommandComplete or an error while copying)
	changed  chan struct{} // closed, and replaced, at every change
}

type copyState uint8

const (
	copyPending copyState = iota // no COPY is running yet, or the last one ended and more may follow
	copyRunning                  // CopyInResponse came: the server reads COPY data
	copyEnded                    // no COPY can run any more: the Query or Execute is over
)

func newCopyQuery(policy bool) *copyQuery {
	return &copyQuery{policy: policy, changed: make(chan struct{})}
}

func (q *copyQuery) load() (copyState, int, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.state, q.finished, q.changed
}

// update applies f to the state under the lock and wakes the waiters.
func (q *copyQuery) update(f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state == copyEnded {
		return
	}
	f()
	close(q.changed)
	q.changed = make(chan struct{})
}

// started records a CopyInResponse.
func (q *copyQuery) started() { q.update(func() { q.state = copyRunning }) }

// statementEnded records the end of one statement (CommandComplete,
// EmptyQueryResponse or ErrorResponse); last says that nothing more can
// run (the answer to an Execute).
func (q *copyQuery) statementEnded(last bool) {
	q.update(func() {
		if q.state == copyRunning {
			q.finished++
		}
		q.state = copyPending
		if last {
			q.state = copyEnded
		}
	})
}

// ended records that the Query is over (ReadyForQuery), or was skipped.
func (q *copyQuery) ended() { q.update(func() { q.state = copyEnded }) }

// settleCopy tells whether PostgreSQL will be reading COPY data when it
// reaches the client's next message, given that the client has ended
// (CopyDone or CopyFail) ends of q's COPYs before it: it waits until the
// server has caught up with those ends and either copies again or has
// finished q. The server gets there without more input from the client,
// once it flushes what it has buffered (in the extended protocol it would
// wait for a Flush or Sync): the proxy sends a Flush of its own, which has
// no answer and which PostgreSQL ignores while copying. So waiting cannot
// deadlock. ok is false when the server side ended.
func (s *session) settleCopy(q *copyQuery, ends int) (running, ok bool) {
	for {
		st, finished, changed := q.load()
		switch {
		case st == copyEnded:
			return false, true
		case st == copyRunning && finished >= ends:
			return true, true
		}
		if err := s.sw.Message('H', nil); err != nil {
			return false, false
		}
		if err := s.sw.Flush(); err != nil {
			return false, false
		}
		if !s.await(changed) {
			return false, false
		}
	}
}
