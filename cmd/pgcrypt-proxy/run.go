package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// env is what a command may touch of the process, so tests can run commands
// in-process.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// usageError makes run print usage and exit with code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e env) error
}

func commands() []command {
	return []command{
		{"serve", "run the proxy", runServe},
		{"keygen", "print a new random 32-byte key, base64", runKeygen},
		{"validate", "check a configuration and its keys without serving", runValidate},
		{"check", "report, read-only, on the live schema and rows of each policy column (--json)", runCheck},
		{"backfill", "encrypt plaintext already stored, online, in resumable batches", runBackfill},
		{"rotate", "re-encrypt values not under the active key", runRotate},
		{"decrypt", "turn envelopes back into plaintext (removes the guard first)", runDecrypt},
		{"guard", "install CHECK constraints that accept only envelopes in policy columns (--remove)", runGuard},
		{"version", "print the version", runVersion},
	}
}

const usageHead = `pgcrypt-proxy: a PostgreSQL proxy that encrypts the columns of a YAML policy

Usage: pgcrypt-proxy <command> [flags]

Commands:
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'pgcrypt-proxy <command> -h' for a command's flags.\n")
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		usage(e.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args[1:], e)
		var ue *usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "pgcrypt-proxy %s: %s\n", name, ue.msg)
			return 2
		default:
			fmt.Fprintf(e.stderr, "pgcrypt-proxy %s: %s\n", name, strings.TrimSpace(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "pgcrypt-proxy: unknown command %q\n\n", name)
	usage(e.stderr)
	return 2
}

// newFlagSet returns a FlagSet whose errors become usage errors.
func newFlagSet(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("pgcrypt-proxy "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func runVersion(_ context.Context, args []string, e env) error {
	if err := parseFlags(newFlagSet("version", e), args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "pgcrypt-proxy %s\n", version)
	return nil
}
