//go:build !linux

package proxy

import (
	"errors"
	"net"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
)

// The event-loop relay is Linux only (epoll); elsewhere every session runs
// on goroutines.

type eventLoop struct{}

func newEventLoop(time.Duration) (*eventLoop, error) {
	return nil, errors.New("no event loop on this platform")
}

func (l *eventLoop) close() {}

func (l *eventLoop) adopt(*session, func(), func()) (*loopSession, bool) { return nil, false }

type loopSession struct{ done chan struct{} }

func (ls *loopSession) closeServer()                     {}
func (ls *loopSession) closeClient()                     {}
func (ls *loopSession) setClientWriteDeadline(time.Time) {}
func (ls *loopSession) awaitSignal()                     {}
func (ls *loopSession) offload(_ bool, f func())         { f() }

// readWaiter is the identity here: readers keep their buffers while they
// wait (see waitconn_linux.go).
func readWaiter(c net.Conn) net.Conn { return c }

func (ls *loopSession) idleClient(*wire.Reader) bool { return false }
func (ls *loopSession) idleServer(*wire.Reader) bool { return false }
