package main

import (
	"context"
	"flag"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/config"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/migrate"
)

// dbFlags are the flags of the commands that work on a database directly.
type dbFlags struct {
	config, dsn *string
}

func addDBFlags(fs *flag.FlagSet, e env) dbFlags {
	return dbFlags{
		config: fs.String("config", defaultConfigPath(e), "configuration file; defaults to $PGCRYPT_CONFIG when set"),
		dsn:    fs.String("dsn", "", "PostgreSQL connection string, straight to the database (not through the proxy); defaults to the PG* environment variables"),
	}
}

// open loads the configuration and connects to the database.
func (f dbFlags) open(ctx context.Context, e env) (*config.Config, *pgx.Conn, error) {
	cfg, err := config.Load(ctx, *f.config, config.WithLookupEnv(e.lookupEnv))
	if err != nil {
		return nil, nil, err
	}
	conn, err := pgx.Connect(ctx, *f.dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	return cfg, conn, nil
}

func runGuard(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("guard", e)
	db := addDBFlags(fs, e)
	remove := fs.Bool("remove", false, "drop the guard constraints instead of installing them")
	lockTimeout := fs.String("lock-timeout", "10s", "longest wait for each ALTER TABLE's brief lock")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, conn, err := db.open(ctx, e)
	if err != nil {
		return err
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
