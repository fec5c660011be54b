package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/admin"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/config"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/migrate"
)

func runBackfill(ctx context.Context, args []string, e env) error {
	return runJob(ctx, migrate.JobEncrypt, args, e)
}

func runRotate(ctx context.Context, args []string, e env) error {
	return runJob(ctx, migrate.JobRotate, args, e)
}

func runDecrypt(ctx context.Context, args []string, e env) error {
	return runJob(ctx, migrate.JobDecrypt, args, e)
}

// runJob runs backfill, rotate or decrypt over every policy table.
func runJob(ctx context.Context, job migrate.Job, args []string, e env) error {
	name := map[migrate.Job]string{migrate.JobEncrypt: "backfill", migrate.JobRotate: "rotate", migrate.JobDecrypt: "decrypt"}[job]
	fs := newFlagSet(name, e)
	db := addDBFlags(fs, e)
	batch := fs.Int("batch", 500, "rows per transaction")
	workers := fs.Int("workers", 1, "parallel workers")
	shard := fs.String("shard", "0/1", "i/n: this process's share of the rows, for n processes (a Kubernetes Indexed Job)")
	rate := fs.Float64("rate", 0, "most rows changed per second (0: no limit)")
	dryRun := fs.Bool("dry-run", false, "count what would change, change nothing")
	maxLag := fs.Duration("max-lag", 10*time.Second, "pause while a replica's replay lag exceeds this (0: never)")
	maxWaiters := fs.Int("max-lock-waiters", 10, "pause while more sessions than this wait for locks (-1: never)")
	adminListen := fs.String("admin-listen", "", "serve Prometheus metrics of the run on this address (GET /metrics), e.g. 127.0.0.1:9188")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	i, n, err := parseShard(*shard)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	cfg, err := config.Load(ctx, *db.config, config.WithLookupEnv(e.lookupEnv))
	if err != nil {
		return err
	}
	kr, err := cipher.NewKeyring(cfg.Keys.Active, cfg.Keys.Material)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	pool, err := pgxpool.New(ctx, *db.dsn)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer pool.Close()
	if job == migrate.JobDecrypt && !*dryRun {
		// The guard would refuse the plaintext: take it off first.
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		_, err = migrate.Guard(ctx, conn.Conn(), guardColumns(cfg), keyIDs(cfg), migrate.GuardOptions{Remove: true})
		conn.Release()
		if err != nil {
			return fmt.Errorf("removing the guard first: %w", err)
		}
	}
	out := newProgressPrinter(e, name, *dryRun)
	if *adminListen != "" {
		stop, err := serveJobMetrics(*adminListen, name, out)
		if err != nil {
			return err
		}
		defer stop()
	}
	for _, t := range cfg.Encrypt {
		var cols []migrate.CipherColumn
		for _, c := range t.Columns {
			mode := cipher.Randomized
			if c.Deterministic() {
				mode = cipher.Deterministic
			}
			cc, err := kr.Column(t.Schema+"."+t.Name+"."+c.Ident, mode, c.AssociatedDataFor(t))
			if err != nil {
				return err
			}
			cols = append(cols, migrate.CipherColumn{Column: migrate.Column{Schema: t.Schema, Table: t.Name, Name: c.Ident, Deterministic: c.Deterministic()}, Cipher: cc})
		}
		p, err := migrate.Backfill(ctx, pool, cols, migrate.BackfillOptions{
			Job: job, Batch: *batch, Workers: *workers, Shard: i, Shards: n, Rate: *rate, DryRun: *dryRun, Progress: out.update,
			MaxLag: *maxLag, MaxLockWaiters: *maxWaiters, Paused: out.paused,
		})
		out.finish(p)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t.Schema, t.Name, err)
		}
	}
	if job == migrate.JobRotate && !*dryRun {
		// No value is under another version now (unless written meanwhile
		// by a proxy still writing under one): guards narrowed to the
		// active version say so to every proxy, which then stops
		// comparing with the others, and refuse such writes.
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		res, err := migrate.NarrowGuards(ctx, conn.Conn(), guardColumns(cfg), cfg.Keys.Active)
		if err != nil {
			return fmt.Errorf("narrowing the guard to %s: %w", cfg.Keys.Active, err)
		}
		for _, r := range res {
			if r.Validated {
				fmt.Fprintf(e.stderr, "%s: guard accepts only %s now (validated): proxies compare with %s alone; remove the other versions from keys.versions\n", r.Column, cfg.Keys.Active, cfg.Keys.Active)
			} else {
				fmt.Fprintf(e.stderr, "%s: guard accepts only %s for new writes, but %d rows are still under another version (written meanwhile, or another shard still running); run rotate again\n", r.Column, cfg.Keys.Active, r.Plaintext)
			}
		}
	}
	if job == migrate.JobEncrypt && !*dryRun {
		// Validate guard constraints that plaintext kept NOT VALID.
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		if _, err := migrate.ValidateGuards(ctx, conn.Conn(), guardColumns(cfg), keyIDs(cfg)); err != nil {
			return fmt.Errorf("validating the guard: %w", err)
		}
	}
	return nil
}

func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 ≤ i < n, e.g. 0/4", s)
	}
	return i, n, nil
}

// progressPrinter shows progress: a line redrawn in place on a terminal,
// one JSON line every few seconds otherwise (logs, Kubernetes Jobs).
type progressPrinter struct {
	e        env
	name     string
	dry      bool
	terminal bool
	mu       sync.Mutex
	start    time.Time
	last     time.Time
	// For --admin-listen: the latest totals per table, and pauses.
	tables map[string]migrate.Progress
	pauses int
}

func (p *progressPrinter) record(pr migrate.Progress) {
	if p.tables == nil {
		p.tables = map[string]migrate.Progress{}
	}
	p.tables[pr.Table] = pr
}

// Collect-time snapshot for the metrics (see serveJobMetrics).
func (p *progressPrinter) snapshot() (map[string]migrate.Progress, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.tables), p.pauses
}

func newProgressPrinter(e env, name string, dry bool) *progressPrinter {
	term := false
	if f, ok := e.stdout.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			term = true
		}
	}
	return &progressPrinter{e: e, name: name, dry: dry, terminal: term, start: time.Now()}
}

func (p *progressPrinter) update(pr migrate.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record(pr)
	now := time.Now()
	every := 5 * time.Second
	if p.terminal {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.print(pr, false)
}

// paused reports a throttled batch, at most every few seconds.
func (p *progressPrinter) paused(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pauses++
	if time.Since(p.last) < 5*time.Second {
		return
	}
	p.last = time.Now()
	if p.terminal {
		fmt.Fprintf(p.e.stdout, "\r%s: paused: %s", p.name, why)
		return
	}
	b, _ := json.Marshal(map[string]any{"job": p.name, "paused": why})
	fmt.Fprintln(p.e.stdout, string(b))
}

func (p *progressPrinter) finish(pr migrate.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record(pr)
	p.print(pr, true)
	p.start = time.Now()
}

func (p *progressPrinter) print(pr migrate.Progress, done bool) {
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(pr.Changed) / secs
	}
	verb := "changed"
	if p.dry {
		verb = "would change"
	}
	if p.terminal {
		end := ""
		if done {
			end = "\n"
		}
		fmt.Fprintf(p.e.stdout, "\r%s %s: %d rows scanned, %d %s, %d changed meanwhile through the proxy, %.0f rows/s%s",
			p.name, pr.Table, pr.Scanned, pr.Changed, verb, pr.Conflicts, rate, end)
		return
	}
	b, _ := json.Marshal(map[string]any{"job": p.name, "table": pr.Table, "scanned": pr.Scanned, "changed": pr.Changed,
		"dry_run": p.dry, "conflicts": pr.Conflicts, "rows_per_second": int(rate), "done": done})
	fmt.Fprintln(p.e.stdout, string(b))
}

// jobCollector exports a run's progress as Prometheus metrics.
type jobCollector struct {
	job                        string
	p                          *progressPrinter
	scanned, changed, conflict *prometheus.Desc
	pauses                     *prometheus.Desc
}

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.scanned
	ch <- c.changed
	ch <- c.conflict
	ch <- c.pauses
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	tables, pauses := c.p.snapshot()
	for t, pr := range tables {
		ch <- prometheus.MustNewConstMetric(c.scanned, prometheus.CounterValue, float64(pr.Scanned), c.job, t)
		ch <- prometheus.MustNewConstMetric(c.changed, prometheus.CounterValue, float64(pr.Changed), c.job, t)
		ch <- prometheus.MustNewConstMetric(c.conflict, prometheus.CounterValue, float64(pr.Conflicts), c.job, t)
	}
	ch <- prometheus.MustNewConstMetric(c.pauses, prometheus.CounterValue, float64(pauses), c.job)
}

// serveJobMetrics serves /metrics (and /healthz) for a backfill, rotate or
// decrypt run, and returns a function that stops it.
func serveJobMetrics(addr, job string, p *progressPrinter) (func(), error) {
	reg := prometheus.NewRegistry()
	labels := []string{"job", "table"}
	reg.MustRegister(&jobCollector{job: job, p: p,
		scanned:  prometheus.NewDesc("pgcrypt_backfill_rows_scanned_total", "Rows read by a backfill, rotate or decrypt run.", labels, nil),
		changed:  prometheus.NewDesc("pgcrypt_backfill_rows_changed_total", "Rows a backfill, rotate or decrypt run wrote.", labels, nil),
		conflict: prometheus.NewDesc("pgcrypt_backfill_rows_conflict_total", "Rows changed meanwhile through the proxy and left as they were.", labels, nil),
		pauses:   prometheus.NewDesc("pgcrypt_backfill_pauses_total", "Batches that waited for replication lag or lock waits to fall.", []string{"job"}, nil),
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin-listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		admin.Serve(ctx, ln, admin.Handler(reg, func(context.Context) error { return nil }))
		close(done)
	}()
	return func() { cancel(); <-done }, nil
}
