package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/config"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/migrate"
)

func runGuard(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("guard", e)
	cfgPath := fs.String("config", defaultConfigPath(e), "configuration file; defaults to $PGCRYPT_CONFIG when set")
	dsn := fs.String("dsn", "", "PostgreSQL connection string, straight to the database (not through the proxy); defaults to the PG* environment variables")
	remove := fs.Bool("remove", false, "drop the guard constraints instead of installing them")
	lockTimeout := fs.String("lock-timeout", "10s", "longest wait for each ALTER TABLE's brief lock")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(ctx, *cfgPath, config.WithLookupEnv(e.lookupEnv))
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	report := func(r migrate.GuardResult) {
		switch {
		case r.Action == "removed" || r.Action == "absent":
			fmt.Fprintf(e.stdout, "%s: %s\n", r.Column, r.Action)
		case r.Validated:
			fmt.Fprintf(e.stdout, "%s: %s, validated\n", r.Column, r.Action)
		default:
			fmt.Fprintf(e.stdout, "%s: %s, NOT VALID: %d rows hold plaintext or another key's envelope; new writes are checked (backfill, then run guard again to validate)\n", r.Column, r.Action, r.Plaintext)
		}
	}
	_, err = migrate.Guard(ctx, conn, guardColumns(cfg), keyIDs(cfg), migrate.GuardOptions{Remove: *remove, LockTimeout: *lockTimeout, Report: report})
	return err
}

// guardColumns lists the policy's columns for the migrate package.
func guardColumns(cfg *config.Config) []migrate.Column {
	var cols []migrate.Column
	for _, t := range cfg.Encrypt {
		for _, c := range t.Columns {
			cols = append(cols, migrate.Column{Schema: t.Schema, Table: t.Name, Name: c.Ident, Deterministic: c.Deterministic()})
		}
	}
	return cols
}

// keyIDs returns the configured key versions, sorted.
func keyIDs(cfg *config.Config) []string {
	var ids []string
	for id := range cfg.Keys.Versions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
