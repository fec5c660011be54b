//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"iter"
	"net"
	"syscall"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
)

// A session run by an event loop: its two coroutines, adoption of its
// sockets, and what the session asks of the loop.

// coro is one direction of a session.
type coro struct {
	ls       *loopSession
	body     func() // what the coroutine runs, from the top
	next     func() (struct{}, bool)
	yield    func(struct{}) bool
	wait     loopWait
	on       *loopConn
	budget   int // reads and writes left in this turn
	finished bool

	// An idle direction (waiting for a message at the top of its loop)
	// is retired by the loop's sweep after Options.IdleRetire: its body
	// returns, so the coroutine's goroutine and stack are freed, and it
	// is started afresh from the top when its socket is readable.
	idle      bool   // waiting in loopSession.idle
	idleEpoch uint32 // the loop's sweep epoch when it began to
	retire    bool   // the sweep asks it to return
	parked    bool   // retired: its body returned; restart on readability
}

// spend counts a read or write, and ends the turn when the budget is gone.
func (co *coro) spend() {
	co.budget--
	if co.budget <= 0 {
		co.ls.l.runq = append(co.ls.l.runq, co)
		co.block(waitTurn, nil)
	}
}

// block yields to the loop until what the coroutine waits for happens.
func (co *coro) block(w loopWait, c *loopConn) {
	co.wait, co.on = w, c
	co.yield(struct{}{})
	co.wait, co.on = waitNone, nil
}

// loopSession is a session run by an event loop.
type loopSession struct {
	s              *session
	l              *eventLoop
	client, server *loopConn
	c2s, s2c       coro
	done           chan struct{} // closed when both directions have ended
}

// resume runs co until it blocks or ends, then lets the client side
// recheck a signal it waits for, and ends the session once both are done.
func (ls *loopSession) resume(co *coro) {
	if co.finished {
		return
	}
	co.step()
	if c2s := &ls.c2s; co != c2s && c2s.wait == waitSignal {
		c2s.step()
	}
	if ls.c2s.finished && ls.s2c.finished {
		ls.end()
	}
}

// step runs co until it blocks, ends or is retired; a retired coroutine
// is started afresh.
func (co *coro) step() {
	on := co.on
	if co.parked {
		co.parked = false
		co.next = pull(co, co.body)
	}
	co.wait, co.on, co.budget = waitNone, nil, turnBudget
	if _, ok := co.next(); ok {
		return
	}
	if co.parked {
		// Retired while idle: what wakes it is its socket (or a close).
		co.wait, co.on = waitRead, on
		return
	}
	co.finished = true
}

// idle waits, at the top of a direction's loop with nothing buffered, until
// c has something to read or is closed, giving r's buffer back while it
// waits. It reports true when the loop retired the coroutine meanwhile:
// the caller then returns errParked, and the direction starts again from
// the top when c is readable.
func (ls *loopSession) idle(co *coro, c *loopConn, r *wire.Reader) bool {
	if !c.mayRead() {
		return false
	}
	r.Release()
	co.idle, co.idleEpoch = true, ls.l.epoch
	ls.l.scheduleSweep()
	for !c.readable && !c.closed.Load() {
		co.block(waitRead, c)
		if co.retire {
			co.idle, co.retire, co.parked = false, false, true
			return true
		}
	}
	co.idle = false
	return false
}

func (ls *loopSession) end() {
	for _, c := range []*loopConn{ls.client, ls.server} {
		if _, ok := ls.l.conns[int32(c.fd)]; !ok {
			continue
		}
		delete(ls.l.conns, int32(c.fd))
		syscall.EpollCtl(ls.l.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
		syscall.Close(c.fd)
		if c.deadlineTimer != nil {
			c.deadlineTimer.Stop()
		}
	}
	close(ls.done)
	// What the session's goroutine would have done on return (closing
	// the originals, metrics, removal from the server), off the loop.
	go ls.s.finish()
}

// start registers the session's sockets and runs both directions until
// they block. Loop goroutine.
func (ls *loopSession) start(c2s, s2c func()) {
	l := ls.l
	for _, c := range []*loopConn{ls.client, ls.server} {
		ev := syscall.EpollEvent{
			Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET,
			Fd:     int32(c.fd),
		}
		if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			// Without readiness events the session cannot run: end it
			// as if the sockets had closed.
			ls.s.log.Warn("event loop cannot watch a socket", "err", err)
			ls.client.closed.Store(true)
			ls.server.closed.Store(true)
		}
		l.conns[int32(c.fd)] = c
	}
	if ls.s.abortWhy.Load() != abortNone { // aborted while being handed over
		ls.server.closed.Store(true)
	}
	ls.c2s.body, ls.s2c.body = c2s, s2c
	ls.c2s.next = pull(&ls.c2s, c2s)
	ls.s2c.next = pull(&ls.s2c, s2c)
	ls.resume(&ls.c2s)
	ls.resume(&ls.s2c)
}

// pull makes body a coroutine. It is never stopped from outside: each
// body runs until its session's connections end, or until it is retired
// while idle (see loopSession.idle).
func pull(co *coro, body func()) func() (struct{}, bool) {
	next, _ := iter.Pull(func(yield func(struct{}) bool) {
		co.yield = yield
		body()
	})
	return next
}

// detachFD takes the socket out of conn, and out of the runtime poller,
// as a descriptor of our own; conn is closed after.
func detachFD(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = errno
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	return fd, nil
}

// adopt hands the session's two plain sockets to the loop; ok is false when
// they cannot be (the session then runs on goroutines as before).
func (l *eventLoop) adopt(s *session, c2s, s2c func()) (*loopSession, bool) {
	// A loop ends only after Server.Shutdown has seen every session end,
	// so it is alive here; checked all the same.
	if !l.alive() || !loopable(s.client) || !loopable(s.server) || s.cw.Buffered() > 0 || s.sw.Buffered() > 0 {
		return nil, false
	}
	ls := &loopSession{s: s, l: l, done: make(chan struct{})}
	ls.c2s.ls, ls.s2c.ls = ls, ls
	ls.client = &loopConn{fd: -1, l: l, ls: ls, reader: &ls.c2s, writer: &ls.s2c, readable: true, unsure: true, writable: true}
	ls.server = &loopConn{fd: -1, l: l, ls: ls, reader: &ls.s2c, writer: &ls.c2s, readable: true, unsure: true, writable: true}
	// Published before the sockets move, so that an abort from now on
	// reaches the loop (see start).
	s.lp.Store(ls)
	cfd, sfd, err := detachBoth(s.client, s.server)
	if err != nil {
		s.lp.Store(nil)
		if s.abortWhy.Load() != abortNone {
			s.server.Close() // the abort went to the loop session
		}
		s.log.Debug("session stays on goroutines", "err", err)
		return nil, false
	}
	ls.client.fd, ls.server.fd = cfd, sfd
	s.cr.Reset(ls.client)
	s.cw.Reset(ls.client)
	s.sr.Reset(ls.server)
	s.sw.Reset(ls.server)
	// The descriptors are ours now: the runtime poller lets go of the
	// originals.
	s.client.Close()
	s.server.Close()
	l.post(func() { ls.start(c2s, s2c) })
	return ls, true
}

// detachBoth duplicates both sockets' descriptors, non-blocking.
func detachBoth(client, server net.Conn) (cfd, sfd int, err error) {
	if cfd, err = detachFD(client); err != nil {
		return -1, -1, err
	}
	if sfd, err = detachFD(server); err != nil {
		syscall.Close(cfd)
		return -1, -1, err
	}
	for _, fd := range []int{cfd, sfd} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(cfd)
			syscall.Close(sfd)
			return -1, -1, err
		}
	}
	return cfd, sfd, nil
}

// Session hooks, called from the session's code.

// closeServer and closeClient stand for closing the net.Conn.
func (ls *loopSession) closeServer() { ls.server.close() }
func (ls *loopSession) closeClient() { ls.client.close() }

// setClientWriteDeadline: from the server-side direction only.
func (ls *loopSession) setClientWriteDeadline(t time.Time) { ls.client.setWriteDeadline(t) }

// offload runs f on a goroutine of its own while the direction (client:
// the client side) yields, so that the loop's other sessions go on.
func (ls *loopSession) offload(client bool, f func()) {
	co := &ls.s2c
	if client {
		co = &ls.c2s
	}
	done := false
	go func() {
		f()
		ls.l.post(func() {
			done = true
			if co.wait == waitOffload {
				ls.resume(co)
			}
		})
	}()
	for !done {
		co.block(waitOffload, nil)
	}
}

// idleClient and idleServer are loopSession.idle for each direction.
func (ls *loopSession) idleClient(r *wire.Reader) bool { return ls.idle(&ls.c2s, ls.client, r) }
func (ls *loopSession) idleServer(r *wire.Reader) bool { return ls.idle(&ls.s2c, ls.server, r) }

// awaitSignal yields the client-side direction until the server side has
// moved on.
func (ls *loopSession) awaitSignal() { ls.c2s.block(waitSignal, nil) }

// loopable reports whether conn is a plain socket the loop can run.
func loopable(conn net.Conn) bool {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}
