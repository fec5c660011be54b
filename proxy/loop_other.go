//go:build !linux

package proxy

import (
	"errors"
	"time"
)

// The event-loop relay is Linux only (epoll); elsewhere every session runs
// on goroutines.

type eventLoop struct{}

func newEventLoop() (*eventLoop, error) { return nil, errors.New("no event loop on this platform") }

func (l *eventLoop) close() {}

func (l *eventLoop) adopt(*session, func(), func()) (*loopSession, bool) { return nil, false }

type loopSession struct{ done chan struct{} }

func (ls *loopSession) closeServer()                     {}
func (ls *loopSession) closeClient()                     {}
func (ls *loopSession) setClientWriteDeadline(time.Time) {}
func (ls *loopSession) awaitSignal()                     {}
func (ls *loopSession) offload(_ bool, f func())         { f() }
