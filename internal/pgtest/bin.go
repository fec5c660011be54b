package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// UnavailableError reports that PostgreSQL cannot be run here at all, for
// instance because no server binaries are installed. RunMain turns it into
// skipped tests.
type UnavailableError struct {
	Reason string
}

func (e *UnavailableError) Error() string {
	return "pgtest: PostgreSQL unavailable: " + e.Reason
}

// binaries describes one installation of the PostgreSQL server binaries.
type binaries struct {
	dir     string // holds initdb and postgres
	version string // e.g. "15.14"
	major   int
	minor   int
}

// defaultBinGlob is where Debian and Ubuntu install each major version.
const defaultBinGlob = "/usr/lib/postgresql/*/bin"

// findBinaries returns the installation to use: override when given, else
// the highest version among the one found on PATH and those under
// /usr/lib/postgresql/*/bin.
func findBinaries(override string) (binaries, error) {
	if override != "" {
		b, err := probeBinDir(override)
		if err != nil {
			return binaries{}, &UnavailableError{Reason: fmt.Sprintf("Options.BinDir %s: %v", override, err)}
		}
		return b, nil
	}

	var dirs []string
	for _, name := range []string{"postgres", "initdb"} {
		if p, err := exec.LookPath(name); err == nil {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				p = r
			}
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	globbed, _ := filepath.Glob(defaultBinGlob) // the pattern is valid
	dirs = append(dirs, globbed...)

	var (
		best    binaries
		found   bool
		seen    = map[string]bool{}
		reasons []string
	)
	for _, d := range dirs {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			d = r
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		b, err := probeBinDir(d)
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", d, err))
			continue
		}
		if !found || b.major > best.major || (b.major == best.major && b.minor > best.minor) {
			best, found = b, true
		}
	}
	if !found {
		reason := "no initdb and postgres on PATH or in " + defaultBinGlob
		if len(reasons) > 0 {
			reason += " (" + strings.Join(reasons, "; ") + ")"
		}
		return binaries{}, &UnavailableError{Reason: reason}
	}
	return best, nil
}

// probeBinDir checks that dir holds initdb and postgres and asks postgres
// for its version.
func probeBinDir(dir string) (binaries, error) {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return binaries{}, fmt.Errorf("no %s: %w", name, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return binaries{}, fmt.Errorf("%s is not executable", name)
		}
	}
	// "postgres --version" is allowed as root.
	out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output()
	if err != nil {
		return binaries{}, fmt.Errorf("postgres --version: %w", err)
	}
	// "postgres (PostgreSQL) 15.14 (Debian 15.14-1.pgdg12+1)"
	s := strings.TrimSpace(string(out))
	_, rest, ok := strings.Cut(s, "(PostgreSQL) ")
	if !ok {
		return binaries{}, fmt.Errorf("unexpected postgres --version output %q", s)
	}
	version, _, _ := strings.Cut(rest, " ")
	majorStr, minorStr, _ := strings.Cut(version, ".")
	major, err := strconv.Atoi(leadingDigits(majorStr))
	if err != nil {
		return binaries{}, fmt.Errorf("unexpected postgres --version output %q: %w", s, err)
	}
	minor, _ := strconv.Atoi(leadingDigits(minorStr)) // "16beta1" has none
	return binaries{dir: dir, version: version, major: major, minor: minor}, nil
}

// leadingDigits returns the decimal digits s starts with.
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
