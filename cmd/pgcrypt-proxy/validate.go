package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/config"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// runValidate checks a configuration and its keys as serve would load
// them, without serving.
func runValidate(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("validate", e)
	cfgPath := fs.String("config", defaultConfigPath(e), "configuration file; defaults to $PGCRYPT_CONFIG when set")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(ctx, *cfgPath, config.WithLookupEnv(e.lookupEnv))
	if err != nil {
		return err
	}
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		return err
	}
	if _, err := buildPolicy(cfg, m); err != nil {
		return err
	}
	cols := len(guardColumns(cfg))
	fmt.Fprintf(e.stdout, "%s: OK: %d policy tables, %d columns, key versions %s (active %s)\n",
		cfg.Path, len(cfg.Encrypt), cols, strings.Join(keyIDs(cfg), ", "), cfg.Keys.Active)
	return nil
}
