package proxy

import (
	"errors"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/track"
)

// PostgreSQL answers every client message in order, and ReadyForQuery ends
// the answer to each Sync, Query and FunctionCall. The client side sends
// each message it writes to the server to the session's tracker (package
// track) with an expectation as its tag; the server side asks the tracker
// what each server message answers and gets that tag back: which statement
// a DataRow belongs to, which answers are the proxy's own (not forwarded),
// and when a query started.

// expectation is one client message's pending answer.
type expectation struct {
	start  time.Time      // for group ends: the group's first message, for the latency metric
	hidden bool           // the proxy's own message: its answers are not forwarded
	reject []byte         // an ErrorResponse to show in place of the server's (for the proxy's poison messages)
	stmt   *statement     // Describe S: where the row shape goes
	portal *portal        // Describe P and Execute
	inner  *internalQuery // the proxy's own Query: its results are captured
	// prepared are the statements an SQL PREPARE in this Query made, or
	// for a Parse the statement it makes: settled by the answer.
	prepared []*statement
	copyOut  copyCodec // the Query's COPY TO STDOUT of policy columns
	audit    *auditRun // the audit events of a Query's or Execute's statements
}

// settleSkipped records that PostgreSQL skips e: the tracker calls it for
// each message it learns will never run.
func settleSkipped(e *expectation) {
	for _, st := range e.prepared {
		st.settle(outcomeFailed)
	}
	if e.inner != nil {
		e.inner.res.err = errors.New("the server skipped the proxy's query")
	}
}

// newTracker returns the protocol tracker of a session.
func newTracker() *track.Tracker[expectation] {
	return track.New(settleSkipped)
}

// awaitSettled waits, on the client side, until the server side has
// settled the answers up to the tracker's message seq; false means the
// server-side loop ended first.
func (s *session) awaitSettled(seq uint64) bool {
	for {
		ok, wait := s.track.Settled(seq)
		if ok {
			return true
		}
		if !s.await(wait) {
			return false
		}
	}
}

// await waits, on the client side, for ch to close; false means the
// server-side loop ended first.
func (s *session) await(ch <-chan struct{}) bool {
	for {
		select {
		case <-ch:
			return true
		default:
		}
		select {
		case <-s.serverDone:
			return false
		default:
		}
		ls := s.lp.Load()
		if ls == nil {
			select {
			case <-ch:
				return true
			case <-s.serverDone:
				return false
			}
		}
		ls.awaitSignal()
	}
}

// errSettleFirst: a Bind's value for an encrypted column is not ASCII,
// and an unanswered message may have changed client_encoding (see
// settleSent).
var errSettleFirst = errors.New("settle first")

// settleSent is a pipeline barrier: it has PostgreSQL answer everything
// sent to it so far (a Flush) and waits until those answers are acted on,
// so that the settings they changed (ParameterStatus) are known. Used
// only before a statement whose values the settings decide, after
// unanswered messages.
func (s *session) settleSent() error {
	seq := s.track.Sent()
	flushed := false
	for {
		ok, wait := s.track.Settled(seq)
		if ok {
			return nil
		}
		if s.track.CopyingIn() {
			// A COPY FROM STDIN the client has not ended: the server
			// answers nothing, a Flush included, until it does.
			return errLexUnsettled
		}
		if !flushed {
			if err := s.sw.Message('H', nil); err != nil {
				return err
			}
			if err := s.sw.Flush(); err != nil {
				return err
			}
			flushed = true
		}
		if !s.await(wait) {
			return errors.New("the connection to PostgreSQL ended")
		}
	}
}
