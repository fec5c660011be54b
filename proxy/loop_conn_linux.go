//go:build linux

package proxy

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// A socket of a session run by an event loop.

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
	// unsure: readable is a guess (a new socket, or a read that filled
	// its buffer), not epoll's word; a peek tells before waiting.
	unsure        bool
	hup           bool // the peer closed or reset: read to the end, whatever its size
	writeDeadline time.Time
	deadlineTimer *time.Timer
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
			c.unsure = n == len(p)
			c.reader.spend()
			return n, nil
		}
	}
}

// WaitReadable yields until the socket has something to read, or is
// closed, having called release first if it must wait at all: an idle
// session gives its read buffer back (wire.ReadWaiter).
func (c *loopConn) WaitReadable(release func()) error {
	if !c.mayRead() {
		return nil
	}
	release()
	for !c.readable && !c.closed.Load() {
		c.reader.block(waitRead, c)
	}
	return nil
}

// mayRead reports whether a reader must wait for c to be readable (false:
// read at once, there may be data or an error).
func (c *loopConn) mayRead() bool {
	if c.readable && c.unsure && !c.hup && !c.closed.Load() {
		c.unsure = false
		if rawPeekEmpty(c.fd) {
			c.readable = false // epoll reports the next arrival
		}
	}
	return !c.readable && !c.closed.Load()
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
