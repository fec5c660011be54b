//go:build !linux

package pgtest

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// runAs is the OS user the server binaries run as when the test runs as root.
type runAs struct {
	name     string
	uid, gid uint32
}

// sysProcAttr returns the process attributes for initdb and postgres.
// Running them as another user is only implemented on Linux.
func sysProcAttr(ra *runAs, _ bool) (*syscall.SysProcAttr, error) {
	if ra != nil {
		return nil, errors.New("running the server as another OS user is only supported on Linux; run the tests as a non-root user")
	}
	return nil, nil
}

// immediateShutdown asks a postmaster to stop.
func immediateShutdown(p *os.Process) error {
	if err := p.Signal(os.Interrupt); err != nil {
		return p.Kill()
	}
	return nil
}

// processAlive reports whether a process with this pid may exist. Without a
// portable check it says yes, so that no directory is swept.
func processAlive(int) bool { return true }

// canTraverse is only consulted when running as another user.
func canTraverse(string, *runAs) bool { return true }

// fileOwner is not implemented here, so no initdb template is trusted.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
