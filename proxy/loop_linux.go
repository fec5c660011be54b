//go:build linux

package proxy

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The event-loop relay.
//
// With a goroutine per direction, every wait for a socket costs a read that
// fails with EAGAIN, a park on the runtime's poller and a wake-up through the
// scheduler: on a loopback round trip that is about 7 system calls where a
// C event loop such as PgBouncer's needs under 5, and system calls are most
// of a relay's cost. So sessions whose two connections are plain sockets
// are run by an event loop of our own instead. Each direction of a session
// is a coroutine (iter.Pull) running the same code as the goroutine relay;
// its reads and writes go straight to the socket, and where they would
// block the coroutine yields to the loop, which resumes it when epoll says
// the socket is ready. A read shorter than asked means the socket is empty
// (the edge-triggered epoll reports the next arrival), so no read is made
// only to learn that.
//
// The loop's epoll descriptor is itself registered with the runtime poller,
// so an idle loop parks like any goroutine. Blocking in epoll_wait instead
// was measured to cost more: the scheduler hands the blocked loop's P to
// another thread, and back, at every wait.

// epollET is syscall.EPOLLET as the uint32 epoll_event wants (the constant
// is negative in package syscall).
const epollET = 1 << 31

// loopWait is what a coroutine is waiting for.
type loopWait uint8

const (
	waitNone    loopWait = iota
	waitRead             // the conn to be readable
	waitWrite            // the conn to be writable
	waitSignal           // the session's other direction to make progress
	waitTurn             // its turn in the run queue, having used its budget
	waitOffload          // a computation running on another goroutine
)

// turnBudget is how many reads and writes a coroutine makes in one turn
// before it lets the loop's other sessions run: a COPY whose two ends keep
// up with each other would otherwise never block, and hold the loop.
const turnBudget = 64

// eventLoop runs the relay of many sessions on one goroutine.
type eventLoop struct {
	epfd   int
	wakefd int // eventfd: commands are queued
	ep     *os.File
	raw    syscall.RawConn
	events []syscall.EpollEvent

	mu   sync.Mutex
	cmds []func()
	stop bool // close was called: end once no session is left
	dead bool // run has returned; its descriptors are closed

	// Loop goroutine only.
	conns map[int32]*loopConn
	runq  []*coro // coroutines that used their budget, to resume next
	done  chan struct{}

	// poll is l.pollOnce, bound once so that parking allocates nothing;
	// it leaves its result in polled and pollErr.
	poll    func(uintptr) bool
	polled  int
	pollErr error
}

func newEventLoop() (*eventLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakefd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, fmt.Errorf("eventfd2: %w", errno)
	}
	l := &eventLoop{
		epfd:   epfd,
		wakefd: int(wakefd),
		events: make([]syscall.EpollEvent, 128),
		conns:  map[int32]*loopConn{},
		done:   make(chan struct{}),
	}
	l.poll = l.pollOnce
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.wakefd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, l.wakefd, &ev); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	// os.NewFile hands a non-blocking descriptor to the runtime poller.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	l.ep = os.NewFile(uintptr(epfd), "epoll")
	if l.raw, err = l.ep.SyscallConn(); err != nil {
		l.ep.Close()
		syscall.Close(l.wakefd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	go l.run()
	return l, nil
}

func (l *eventLoop) closeFDs() {
	syscall.Close(l.epfd)
	syscall.Close(l.wakefd)
}

// close stops the loop once its sessions have ended. It may be called
// more than once.
func (l *eventLoop) close() {
	l.post(func() {
		l.mu.Lock()
		l.stop = true
		l.mu.Unlock()
	})
	<-l.done
}

// alive reports whether the loop still runs sessions.
func (l *eventLoop) alive() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.dead
}

// post queues f to run on the loop goroutine; it is dropped once the loop
// has ended.
func (l *eventLoop) post(f func()) {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		return
	}
	first := len(l.cmds) == 0
	l.cmds = append(l.cmds, f)
	if first {
		// Under the lock, so that run cannot close wakefd meanwhile.
		var one = [8]byte{1}
		syscall.Write(l.wakefd, one[:])
	}
	l.mu.Unlock()
}

// wait returns the next batch of events, parking on the runtime poller
// when there are none and no coroutine waits for its turn.
func (l *eventLoop) wait() (int, error) {
	if len(l.runq) > 0 {
		n, err := rawPollEvents(l.epfd, l.events)
		if err == syscall.EINTR {
			return 0, nil
		}
		return n, err
	}
	if err := l.raw.Read(l.poll); err != nil {
		return 0, err
	}
	return l.polled, l.pollErr
}

// pollOnce is the RawConn.Read callback of wait: it reports done when
// epoll_wait returned events or failed, and asks to park otherwise.
func (l *eventLoop) pollOnce(uintptr) bool {
	l.polled, l.pollErr = rawPollEvents(l.epfd, l.events)
	if l.pollErr == syscall.EINTR {
		l.polled, l.pollErr = 0, nil
		return true
	}
	return l.polled != 0 || l.pollErr != nil
}

func (l *eventLoop) run() {
	defer func() {
		l.mu.Lock()
		l.dead = true
		l.ep.Close()
		syscall.Close(l.wakefd)
		l.mu.Unlock()
		close(l.done)
	}()
	for {
		n, err := l.wait()
		if err != nil {
			// epoll_wait fails only on arguments that are wrong, which
			// ours are not; should it happen, retry rather than give up
			// on the sessions.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, ev := range l.events[:n] {
			if ev.Fd == int32(l.wakefd) {
				if l.runCommands() {
					return
				}
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil {
				continue
			}
			if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				// Data and the close can come in one edge: after a short
				// read the end is still to be read, and no edge will say so.
				c.hup = true
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				c.readable = true
				if co := c.reader; co != nil && co.wait == waitRead && co.on == c {
					c.ls.resume(co)
				}
			}
			if ev.Events&(syscall.EPOLLOUT|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				c.writable = true
				if co := c.writer; co != nil && co.wait == waitWrite && co.on == c {
					c.ls.resume(co)
				}
			}
		}
		if q := l.runq; len(q) > 0 {
			l.runq = nil
			for _, co := range q {
				if co.wait == waitTurn {
					co.ls.resume(co)
				}
			}
		}
	}
}

// runCommands runs what other goroutines queued; it reports whether the
// loop is to stop.
func (l *eventLoop) runCommands() bool {
	var buf [8]byte
	syscall.Read(l.wakefd, buf[:])
	l.mu.Lock()
	cmds := l.cmds
	l.cmds = nil
	l.mu.Unlock()
	for _, f := range cmds {
		f()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stop && len(l.conns) == 0
}

// wake resumes whatever waits on c, which has been closed or timed out.
func (l *eventLoop) wake(c *loopConn) {
	if co := c.reader; co != nil && co.on == c && co.wait == waitRead {
		c.ls.resume(co)
	}
	if co := c.writer; co != nil && co.on == c && co.wait == waitWrite {
		c.ls.resume(co)
	}
}

// loopConn is one socket of a session run by an event loop. Its read side
// belongs to one coroutine and its write side to the other; only close may
// be called from another goroutine.
type loopConn struct {
	fd     int
	l      *eventLoop
	ls     *loopSession
	reader *coro // the coroutine that reads c
	writer *coro // the coroutine that writes c

	closed atomic.Bool

	// Loop goroutine only.
	readable, writable bool
	hup                bool // the peer closed or reset: read to the end, whatever its size
	writeDeadline      time.Time
	deadlineTimer      *time.Timer
}

// Read reads what the socket has, yielding until it has something.
func (c *loopConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		if !c.readable {
			c.reader.block(waitRead, c)
			continue
		}
		n, err := rawRead(c.fd, p)
		switch {
		case err == syscall.EAGAIN:
			c.readable = false
		case err == syscall.EINTR:
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		default:
			if n < len(p) && !c.hup {
				c.readable = false // drained: epoll reports the next arrival
			}
			c.reader.spend()
			return n, nil
		}
	}
}

// Write writes all of p, yielding while the socket's buffer is full.
func (c *loopConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		if c.closed.Load() {
			return done, net.ErrClosed
		}
		if !c.writable {
			if !c.writeDeadline.IsZero() && !time.Now().Before(c.writeDeadline) {
				return done, os.ErrDeadlineExceeded
			}
			c.writer.block(waitWrite, c)
			continue
		}
		n, err := rawWrite(c.fd, p[done:])
		switch {
		case err == syscall.EAGAIN:
			c.writable = false
		case err == syscall.EINTR:
		case err != nil:
			return done, os.NewSyscallError("write", err)
		default:
			done += n
			if done < len(p) {
				c.writable = false
			}
			c.writer.spend()
		}
	}
	return done, nil
}

// setWriteDeadline bounds later writes; a writer waiting past it is woken
// and gets os.ErrDeadlineExceeded. Loop goroutine only.
func (c *loopConn) setWriteDeadline(t time.Time) {
	c.writeDeadline = t
	if c.deadlineTimer != nil {
		c.deadlineTimer.Stop()
		c.deadlineTimer = nil
	}
	if !t.IsZero() {
		c.deadlineTimer = time.AfterFunc(time.Until(t), func() {
			c.l.post(func() { c.l.wake(c) })
		})
	}
}

// close makes the conn's reads and writes fail with net.ErrClosed and
// wakes its waiters; the socket itself is closed when the session ends.
// Safe from any goroutine.
func (c *loopConn) close() {
	if c.closed.Swap(true) {
		return
	}
	c.l.post(func() { c.l.wake(c) })
}

// coro is one direction of a session.
type coro struct {
	ls       *loopSession
	next     func() (struct{}, bool)
	yield    func(struct{}) bool
	wait     loopWait
	on       *loopConn
	budget   int // reads and writes left in this turn
	finished bool
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
	co.wait, co.on, co.budget = waitNone, nil, turnBudget
	if _, ok := co.next(); !ok {
		co.finished = true
	}
	if c2s := &ls.c2s; co != c2s && c2s.wait == waitSignal {
		c2s.wait, c2s.budget = waitNone, turnBudget
		if _, ok := c2s.next(); !ok {
			c2s.finished = true
		}
	}
	if ls.c2s.finished && ls.s2c.finished {
		ls.end()
	}
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
	ls.c2s.next = pull(&ls.c2s, c2s)
	ls.s2c.next = pull(&ls.s2c, s2c)
	ls.resume(&ls.c2s)
	ls.resume(&ls.s2c)
}

// pull makes body a coroutine. It is never stopped from outside: each
// body runs until its session's connections end.
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
	ls.client = &loopConn{fd: -1, l: l, ls: ls, reader: &ls.c2s, writer: &ls.s2c, readable: true, writable: true}
	ls.server = &loopConn{fd: -1, l: l, ls: ls, reader: &ls.s2c, writer: &ls.c2s, readable: true, writable: true}
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
