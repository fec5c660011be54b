//go:build linux

package proxy

import (
	"cmp"
	"fmt"
	"os"
	"sync"
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

	// epoch counts sweeps for idle coroutines; sweeping is set while
	// one is scheduled (see sweep).
	epoch    uint32
	sweeping bool
	retire   time.Duration // Options.IdleRetire

	// poll is l.pollOnce, bound once so that parking allocates nothing;
	// it leaves its result in polled and pollErr.
	poll    func(uintptr) bool
	polled  int
	pollErr error
}

// newEventLoop starts a loop that retires coroutines idle for retire (0:
// DefaultIdleRetire).
func newEventLoop(retire time.Duration) (*eventLoop, error) {
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
		retire: cmp.Or(retire, DefaultIdleRetire),
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
				c.readable, c.unsure = true, false
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

// scheduleSweep makes sure a sweep runs within l.retire. Loop goroutine.
func (l *eventLoop) scheduleSweep() {
	if l.sweeping {
		return
	}
	l.sweeping = true
	time.AfterFunc(l.retire, func() { l.post(l.sweep) })
}

// sweep retires the coroutines that have waited idle since before the
// previous sweep, at least l.retire: they return, giving back their
// stacks, and start again when their sockets are readable. Loop goroutine.
func (l *eventLoop) sweep() {
	l.sweeping = false
	l.epoch++
	pending := false
	for _, c := range l.conns {
		co := c.reader
		if co == nil || !co.idle || co.on != c || co.wait != waitRead {
			continue
		}
		if l.epoch-co.idleEpoch < 2 {
			pending = true
			continue
		}
		co.retire = true
		c.ls.resume(co)
	}
	if pending {
		l.scheduleSweep()
	}
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
