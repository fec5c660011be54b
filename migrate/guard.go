// Package migrate changes a live database for a policy, online: the guard
// constraints that make PostgreSQL itself refuse plaintext in policy
// columns. It talks to PostgreSQL directly (not through the proxy) with a
// connection the caller provides, and never reads or writes values.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Column is a policy column as the migration commands see it.
type Column struct {
	Schema, Table, Name string
	Deterministic       bool
}

// String returns schema.table.column.
func (c Column) String() string { return c.Schema + "." + c.Table + "." + c.Name }

func (c Column) table() string { return quoteIdent(c.Schema) + "." + quoteIdent(c.Table) }

// GuardPrefix starts the name of every guard constraint.
const GuardPrefix = "pgcrypt_guard_"

// GuardName returns the name of column c's guard constraint: the prefix
// and the column name, shortened with a hash to PostgreSQL's 63 bytes.
func GuardName(c Column) string {
	n := GuardPrefix + c.Name
	if len(n) <= 63 {
		return n
	}
	h := sha256.Sum256([]byte(c.Name))
	return n[:63-9] + "_" + hex.EncodeToString(h[:4])
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// GuardExpr returns the CHECK expression of column c's guard: NULL, or an
// envelope of c's mode under one of the key versions keyIDs (the format
// of docs/envelope.md; a char(n) column's padding is dropped by the cast
// to text that ~ applies).
func GuardExpr(c Column, keyIDs []string) (string, error) {
	if len(keyIDs) == 0 {
		return "", errors.New("no key versions")
	}
	ids := make([]string, len(keyIDs))
	for i, id := range keyIDs {
		if !keyIDPattern.MatchString(id) {
			return "", fmt.Errorf("key id %q is not a valid key id", id)
		}
		ids[i] = regexp.QuoteMeta(id)
	}
	const b64 = `[A-Za-z0-9+/]+={0,2}`
	body := `[A-Za-z0-9+/]{16}:` + b64 // 12-byte nonce, ciphertext and tag
	if c.Deterministic {
		body = `siv:` + b64
	}
	re := `^(` + strings.Join(ids, "|") + `):` + body + `$`
	col := quoteIdent(c.Name)
	return fmt.Sprintf("%s IS NULL OR %s ~ %s", col, col, quoteLiteral(re)), nil
}

// GuardKeyIDs returns the key versions a guard constraint accepts, read
// from its definition as pg_get_constraintdef prints it (the expression of
// GuardExpr). ok is false when def is not a guard's.
func GuardKeyIDs(def string) (ids []string, ok bool) {
	i := strings.Index(def, "'^(")
	if i < 0 {
		return nil, false
	}
	rest := def[i+3:]
	j := strings.Index(rest, "):")
	if j < 0 {
		return nil, false
	}
	// QuoteMeta escaped the dots of ids; printed with
	// standard_conforming_strings off, the backslashes are doubled.
	for _, id := range strings.Split(strings.ReplaceAll(rest[:j], `\`, ""), "|") {
		if !keyIDPattern.MatchString(id) {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}

// GuardResult is what Guard did to one column.
type GuardResult struct {
	Column Column
	// Action: "installed", "updated" (key versions changed), "unchanged",
	// "removed" or "absent" (nothing to remove).
	Action string
	// Validated: PostgreSQL has checked every existing row
	// (VALIDATE CONSTRAINT); otherwise the constraint is NOT VALID and only
	// new writes are checked.
	Validated bool
	// Plaintext is the number of rows whose value is not an envelope of a
	// configured key version (plaintext not yet backfilled), when not
	// validated.
	Plaintext int64
}

// GuardOptions tune Guard.
type GuardOptions struct {
	// Remove drops the guard constraints instead of installing them.
	Remove bool
	// LockTimeout bounds the wait for each ALTER TABLE's brief lock
	// (default 10s), so the command never queues behind a long
	// transaction and blocks the application's writes meanwhile.
	LockTimeout string
	// Report, when set, is called after each column.
	Report func(GuardResult)
}

// Guard installs, per policy column, a CHECK constraint that accepts only
// NULL or a well-formed envelope of a configured key version, so that
// plaintext written by any path (a function, a trigger, a DO block, a
// connection that bypasses the proxy) is refused by PostgreSQL itself. It
// adds the constraint NOT VALID (new writes are checked at once, existing
// rows are not scanned under the lock), then validates it, which takes
// only a SHARE UPDATE EXCLUSIVE lock, once no row holds anything else.
// Run again, it changes nothing, updates constraints whose key versions
// changed, and validates those it could not before.
func Guard(ctx context.Context, conn *pgx.Conn, cols []Column, keyIDs []string, opts GuardOptions) ([]GuardResult, error) {
	if opts.LockTimeout == "" {
		opts.LockTimeout = "10s"
	}
	var out []GuardResult
	for _, c := range cols {
		r, err := guardColumn(ctx, conn, c, keyIDs, opts)
		if err != nil {
			return out, fmt.Errorf("column %s: %w", c, err)
		}
		out = append(out, r)
		if opts.Report != nil {
			opts.Report(r)
		}
	}
	return out, nil
}

// guardComment marks a guard constraint with the expression it was made
// with, so a second run can tell whether it is current.
func guardComment(expr string) string { return "pgcrypt-proxy guard: " + expr }

func guardColumn(ctx context.Context, conn *pgx.Conn, c Column, keyIDs []string, opts GuardOptions) (GuardResult, error) {
	r := GuardResult{Column: c}
	name := GuardName(c)
	var exists, validated bool
	var comment *string
	err := conn.QueryRow(ctx, `SELECT true, k.convalidated, pg_catalog.obj_description(k.oid, 'pg_constraint')
		FROM pg_catalog.pg_constraint k WHERE k.conrelid = $1::regclass AND k.conname = $2`, c.table(), name).Scan(&exists, &validated, &comment)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return r, err
	}
	alter := func(stmts ...string) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = "+quoteLiteral(opts.LockTimeout)); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	}
	drop := "ALTER TABLE " + c.table() + " DROP CONSTRAINT IF EXISTS " + quoteIdent(name)
	if opts.Remove {
		r.Action = "absent"
		if exists {
			if err := alter(drop); err != nil {
				return r, err
			}
			r.Action = "removed"
		}
		return r, nil
	}
	expr, err := GuardExpr(c, keyIDs)
	if err != nil {
		return r, err
	}
	switch {
	case exists && comment != nil && *comment == guardComment(expr):
		r.Action = "unchanged"
	default:
		r.Action = "installed"
		stmts := []string{
			"ALTER TABLE " + c.table() + " ADD CONSTRAINT " + quoteIdent(name) + " CHECK (" + expr + ") NOT VALID",
			"COMMENT ON CONSTRAINT " + quoteIdent(name) + " ON " + c.table() + " IS " + quoteLiteral(guardComment(expr)),
		}
		if exists {
			r.Action = "updated"
			stmts = append([]string{drop}, stmts...)
		}
		if err := alter(stmts...); err != nil {
			return r, err
		}
		validated = false
	}
	if validated {
		r.Validated = true
		return r, nil
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+c.table()+" WHERE NOT ("+expr+")").Scan(&r.Plaintext); err != nil {
		return r, err
	}
	if r.Plaintext == 0 {
		if err := alter("ALTER TABLE " + c.table() + " VALIDATE CONSTRAINT " + quoteIdent(name)); err != nil {
			return r, err
		}
		r.Validated = true
	}
	return r, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes s for any standard_conforming_strings.
func quoteLiteral(s string) string {
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `''`) + "'"
	}
	return "'" + strings.ReplaceAll(s, `'`, `''`) + "'"
}

// NarrowGuards makes the guard constraints of cols that exist accept only
// key version active, once a rotation has left no value under another:
// validated, they tell the proxy that comparisons need not cover the other
// versions any more, and PostgreSQL refuses a value written under one by a
// proxy that still has it active. A constraint stays NOT VALID (new writes
// are checked) while any row is under another version.
func NarrowGuards(ctx context.Context, conn *pgx.Conn, cols []Column, active string) ([]GuardResult, error) {
	var out []GuardResult
	for _, c := range cols {
		var exists bool
		err := conn.QueryRow(ctx, `SELECT true FROM pg_catalog.pg_constraint k WHERE k.conrelid = $1::regclass AND k.conname = $2`,
			c.table(), GuardName(c)).Scan(&exists)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("column %s: %w", c, err)
		}
		r, err := guardColumn(ctx, conn, c, []string{active}, GuardOptions{LockTimeout: "10s"})
		if err != nil {
			return out, fmt.Errorf("column %s: %w", c, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ValidateGuards validates the guard constraints of cols that exist and
// are NOT VALID, where no row holds anything but envelopes any more (after
// a backfill). It installs none.
func ValidateGuards(ctx context.Context, conn *pgx.Conn, cols []Column, keyIDs []string) ([]GuardResult, error) {
	var out []GuardResult
	for _, c := range cols {
		var valid bool
		err := conn.QueryRow(ctx, `SELECT k.convalidated FROM pg_catalog.pg_constraint k WHERE k.conrelid = $1::regclass AND k.conname = $2`,
			c.table(), GuardName(c)).Scan(&valid)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && valid) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("column %s: %w", c, err)
		}
		r, err := guardColumn(ctx, conn, c, keyIDs, GuardOptions{LockTimeout: "10s"})
		if err != nil {
			return out, fmt.Errorf("column %s: %w", c, err)
		}
		out = append(out, r)
	}
	return out, nil
}
