package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// initdb takes about a second, most of Start. Its result depends only on
// the binaries and the arguments, so the first Start keeps a pristine copy
// of the new data directory (before any configuration) next to the
// cluster directories, and later Starts, in this and other test binaries,
// copy it instead of running initdb again.

// templatePrefix starts the names of initdb templates. It does not start
// with dirPrefix, so sweepStale leaves templates alone.
const templatePrefix = "pgtest.initdb-"

// initdbArgs are the initdb arguments besides --pgdata.
func initdbArgs() []string {
	return []string{
		"--username=postgres",
		"--auth=trust",
		"--encoding=UTF8",
		"--no-locale",
		"--no-sync",
		"--wal-segsize=1", // MB: a smaller data directory to copy
	}
}

// templateDir returns the directory holding the initdb template for the
// binaries, arguments and OS user in use.
func (c *Cluster) templateDir() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "pgtest template v2\n%s\n%s\n", c.bin.dir, c.bin.version)
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(c.bin.dir, name))
		if err != nil {
			return "", fmt.Errorf("pgtest: %w", err)
		}
		fmt.Fprintf(h, "%s %d %d\n", name, fi.Size(), fi.ModTime().UnixNano())
	}
	fmt.Fprintf(h, "%s\nuid %d\n", strings.Join(initdbArgs(), " "), c.ownerUID())
	return filepath.Join(filepath.Dir(c.Dir), templatePrefix+hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// ownerUID returns the uid that owns the data directory.
func (c *Cluster) ownerUID() int {
	if c.runAs != nil {
		return int(c.runAs.uid)
	}
	return os.Geteuid()
}

// createDataDir fills c.DataDir from the initdb template, or runs initdb
// and saves the template when there is none (or opts.NoInitdbCache).
func (c *Cluster) createDataDir(ctx context.Context, noCache bool) error {
	if noCache {
		return c.initdb(ctx)
	}
	tmpl, err := c.templateDir()
	if err != nil {
		return err
	}
	src := filepath.Join(tmpl, "data")
	if trustedDir(tmpl, c.ownerUID()) {
		if err := copyTree(src, c.DataDir, c.runAs); err == nil {
			return nil
		}
		// Fall back to initdb below.
		if err := os.RemoveAll(c.DataDir); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	if err := c.initdb(ctx); err != nil {
		return err
	}
	c.saveTemplate(tmpl)
	return nil
}

// saveTemplate copies the fresh data directory to tmpl, atomically, unless
// another test binary got there first. Failures only cost speed later.
func (c *Cluster) saveTemplate(tmpl string) {
	tmp, err := os.MkdirTemp(filepath.Dir(tmpl), filepath.Base(tmpl)+".tmp-")
	if err != nil {
		return
	}
	if err := copyTree(c.DataDir, filepath.Join(tmp, "data"), c.runAs); err != nil {
		_ = os.RemoveAll(tmp)
		return
	}
	if c.runAs != nil {
		_ = os.Chown(tmp, int(c.runAs.uid), int(c.runAs.gid))
	}
	if err := os.Rename(tmp, tmpl); err != nil {
		// Most likely it exists already.
		_ = os.RemoveAll(tmp)
	}
}

// trustedDir reports whether dir is an initdb template that the user uid
// made: a real directory owned by uid, writable by nobody else, holding a
// data directory.
func trustedDir(dir string, uid int) bool {
	for _, p := range []string{dir, filepath.Join(dir, "data")} {
		fi, err := os.Lstat(p)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
			return false
		}
		if owner, ok := fileOwner(fi); !ok || owner != uid {
			return false
		}
	}
	_, err := os.Stat(filepath.Join(dir, "data", "global", "pg_control"))
	return err == nil
}

// copyTree copies the directory tree src to dst, which must not exist,
// keeping permission bits and giving everything to ra when not nil.
func copyTree(src, dst string, ra *runAs) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			if ra != nil {
				return os.Lchown(target, int(ra.uid), int(ra.gid))
			}
			return nil
		case d.Type().IsRegular():
			if err := copyFile(path, target, info.Mode().Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("pgtest: unexpected file type %v: %s", d.Type(), path)
		}
		// Mkdir and OpenFile apply the umask.
		if err := os.Chmod(target, info.Mode().Perm()); err != nil {
			return err
		}
		if ra != nil {
			return os.Chown(target, int(ra.uid), int(ra.gid))
		}
		return nil
	})
}

// copyFile copies the regular file src to the new file dst.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
