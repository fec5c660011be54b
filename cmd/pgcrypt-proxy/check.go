package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/migrate"
)

func runCheck(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("check", e)
	db := addDBFlags(fs, e)
	asJSON := fs.Bool("json", false, "print one JSON document instead of the table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, conn, err := db.open(ctx, e)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// Read-only, whatever the role may do.
	if _, err := conn.Exec(ctx, "SET default_transaction_read_only = on"); err != nil {
		return err
	}
	reports, err := migrate.Check(ctx, conn, guardColumns(cfg), keyIDs(cfg))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"columns": reports}); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			printReport(e, r)
		}
	}
	var blocking []string
	for _, r := range reports {
		if r.Blocking() {
			blocking = append(blocking, r.Column)
		}
	}
	if len(blocking) > 0 {
		return fmt.Errorf("%d column(s) have blocking findings: %s", len(blocking), strings.Join(blocking, ", "))
	}
	return nil
}

func printReport(e env, r migrate.ColumnReport) {
	if !r.Exists {
		fmt.Fprintf(e.stdout, "%s (%s): not found\n", r.Column, r.Mode)
		return
	}
	var keys []string
	for k := range r.Envelopes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var counts []string
	for _, k := range keys {
		counts = append(counts, fmt.Sprintf("%s %d", k, r.Envelopes[k]))
	}
	if len(counts) == 0 {
		counts = []string{"no envelopes"}
	}
	fmt.Fprintf(e.stdout, "%s (%s, %s): guard %s; %d rows: %s; %d plaintext, %d unknown key, %d NULL\n",
		r.Column, r.Mode, r.Type, r.Guard, r.Rows, strings.Join(counts, ", "), r.Plaintext, r.OtherKey, r.Nulls)
	for _, f := range r.Findings {
		mark := "  -"
		if f.Blocking {
			mark = "  BLOCKING:"
		}
		fmt.Fprintf(e.stdout, "%s %s\n", mark, f.What)
	}
}
