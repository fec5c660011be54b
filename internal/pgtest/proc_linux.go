//go:build linux

package pgtest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// runAs is the OS user the server binaries run as when the test runs as root.
type runAs struct {
	name     string
	uid, gid uint32
}

// sysProcAttr returns the process attributes for initdb (server false) and
// postgres (server true). The server gets its own process group, so a ^C in
// the terminal reaches only the test binary, and SIGQUIT (immediate
// shutdown) when the test binary dies. The kernel delivers that signal when
// the thread that started the server exits; Go keeps its threads unless a
// goroutine exits while locked to one, so do not call Start from a goroutine
// that called runtime.LockOSThread.
func sysProcAttr(ra *runAs, server bool) (*syscall.SysProcAttr, error) {
	a := &syscall.SysProcAttr{}
	if ra != nil {
		// Groups is empty: drop root's supplementary groups.
		a.Credential = &syscall.Credential{Uid: ra.uid, Gid: ra.gid}
	}
	if server {
		a.Setpgid = true
		a.Pdeathsig = syscall.SIGQUIT
	}
	return a, nil
}

// immediateShutdown asks a postmaster for an immediate shutdown.
func immediateShutdown(p *os.Process) error {
	return p.Signal(syscall.SIGQUIT)
}

// processAlive reports whether a process with this pid exists and is not a
// zombie. (In containers, orphans may stay zombies: pid 1 may not reap.)
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: assume alive
	}
	// "pid (comm) state ...", and comm may contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// canTraverse reports whether the user ra can search every directory from
// the root down to dir, going by the permission bits.
func canTraverse(dir string, ra *runAs) bool {
	for d := dir; ; {
		fi, err := os.Stat(d)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		perm := fi.Mode().Perm()
		var allowed bool
		switch {
		case st.Uid == ra.uid:
			allowed = perm&0o100 != 0
		case st.Gid == ra.gid:
			allowed = perm&0o010 != 0
		default:
			allowed = perm&0o001 != 0
		}
		if !allowed {
			return false
		}
		parent := filepath.Dir(d)
		if parent == d {
			return true
		}
		d = parent
	}
}

// fileOwner returns the uid owning a file.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
