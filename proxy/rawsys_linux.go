package proxy

import (
	"syscall"
	"unsafe"
)

// The event loop's reads, writes and epoll polls are on non-blocking
// descriptors with a zero timeout, so they cannot block. They are made
// without telling the scheduler (RawSyscall rather than Syscall): a
// Syscall runs entersyscall, which wakes the runtime's monitor thread
// whenever it sleeps because the process was idle, and that thread then
// polls every 20 µs until it decides the process is idle again. Under a
// request/response load the proxy goes idle between round trips, and this
// wake-up cycle cost about 2.5 extra system calls per transaction (futex,
// nanosleep), more than the loop's own epoll calls.

// rawRead is syscall.Read for a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawPeekEmpty reports whether a non-blocking socket has nothing to read
// now: a one-byte recv with MSG_PEEK gets EAGAIN. Data, end of file and
// errors count as something (the next read will see them).
func rawPeekEmpty(fd int) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN
}

// rawWrite is syscall.Write for a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawPollEvents is syscall.EpollWait with a zero timeout. epoll_pwait with
// no signal mask is epoll_wait, and exists on every Linux architecture.
func rawPollEvents(epfd int, events []syscall.EpollEvent) (int, error) {
	var p unsafe.Pointer
	if len(events) > 0 {
		p = unsafe.Pointer(&events[0])
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(p), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func bufPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Pointer(&p[0])
}
