//go:build linux

package proxy

import (
	"net"
	"syscall"
)

// waitConn is a socket that a wire.Reader can wait on without holding a
// read buffer (wire.ReadWaiter): during startup and on the goroutine
// relay, a session that waits for its peer holds no buffer, as on the
// event loop. Only plain sockets qualify; TLS keeps data of its own.
type waitConn struct {
	net.Conn
	rc syscall.RawConn
}

// readWaiter returns c as a wire.ReadWaiter when it can be one, else c.
func readWaiter(c net.Conn) net.Conn {
	var sc syscall.Conn
	switch x := c.(type) {
	case *net.TCPConn:
		sc = x
	case *net.UnixConn:
		sc = x
	default:
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &waitConn{Conn: c, rc: rc}
}

// WaitReadable parks on the runtime poller until the socket has data, an
// end or an error for the next Read, having called release first if it
// must wait at all. The connection's read deadline applies.
func (c *waitConn) WaitReadable(release func()) error {
	released := false
	return c.rc.Read(func(fd uintptr) bool {
		if !rawPeekEmpty(int(fd)) {
			return true
		}
		if !released {
			release()
			released = true
		}
		return false
	})
}
