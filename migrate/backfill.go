package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// Job is what Backfill does to each value.
type Job string

// Jobs.
const (
	// JobEncrypt encrypts plaintext (values stored before the proxy).
	JobEncrypt Job = "encrypt"
	// JobRotate re-encrypts envelopes not under the active key.
	JobRotate Job = "rotate"
	// JobDecrypt turns envelopes back into plaintext: the exit ramp.
	JobDecrypt Job = "decrypt"
)

// CipherColumn is a policy column with the cipher that encrypts it.
type CipherColumn struct {
	Column
	Cipher *cipher.Column
}

// BackfillOptions tune Backfill.
type BackfillOptions struct {
	Job     Job
	Batch   int     // rows per transaction (default 500)
	Workers int     // parallel workers in this process (default 1)
	Shard   int     // this process's shard, 0 ≤ Shard < Shards
	Shards  int     // processes sharing the work (default 1)
	Rate    float64 // most rows changed per second by this process; 0 is no limit
	DryRun  bool    // count what would change, change nothing
	// MaxLag pauses before a batch while a replica's replay lag exceeds
	// it (pg_stat_replication, which needs pg_monitor); 0 is no limit.
	MaxLag time.Duration
	// MaxLockWaiters pauses before a batch while more sessions than this
	// wait for a lock (the application queued behind something); negative
	// is no limit.
	MaxLockWaiters int
	// Paused, when set, is called with the reason each time a batch waits.
	Paused func(why string)
	// Progress, when set, is called after each batch (from any worker).
	Progress func(Progress)
}

// Progress is the state of a Backfill run.
type Progress struct {
	Table            string
	Scanned, Changed int64
	Conflicts        int64 // rows changed concurrently (through the proxy) and left as they are
	Done             bool
}

// progressTable keeps each worker's position, so that a run killed at any
// moment resumes where it stopped.
const progressTable = "pgcrypt_backfill_progress"

// Backfill changes the values of cols (all of one table) online, in
// keyset batches by primary key, each a short transaction that writes a
// row only if none of its policy values changed since it was read
// (compare-and-set), so no concurrent write through the proxy is lost. It
// records its position per worker in pgcrypt_backfill_progress and
// resumes from there; a finished run records that too, and running it
// again rescans from the start (changing nothing once all is done).
func Backfill(ctx context.Context, pool *pgxpool.Pool, cols []CipherColumn, opts BackfillOptions) (Progress, error) {
	if len(cols) == 0 {
		return Progress{}, errors.New("no columns")
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.Shards <= 0 {
		opts.Shards = 1
	}
	if opts.Shard < 0 || opts.Shard >= opts.Shards {
		return Progress{}, fmt.Errorf("shard %d/%d: want 0 ≤ i < n", opts.Shard, opts.Shards)
	}
	t := cols[0].Column
	table := t.table()
	pk, err := primaryKey(ctx, pool, t)
	if err != nil {
		return Progress{}, err
	}
	if !opts.DryRun {
		if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+progressTable+` (job text, tbl text, part int, parts int,
			last_key text[], done boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (job, tbl, part, parts))`); err != nil {
			return Progress{}, fmt.Errorf("creating %s: %w", progressTable, err)
		}
	}
	var total Progress
	total.Table = t.Schema + "." + t.Table
	var mu sync.Mutex
	report := func(p Progress) {
		mu.Lock()
		total.Scanned += p.Scanned
		total.Changed += p.Changed
		total.Conflicts += p.Conflicts
		snapshot := total
		mu.Unlock()
		if opts.Progress != nil {
			opts.Progress(snapshot)
		}
	}
	limiter := newRateLimiter(opts.Rate)
	parts := opts.Shards * opts.Workers
	errs := make(chan error, opts.Workers)
	var wg sync.WaitGroup
	for w := range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := opts.Shard*opts.Workers + w
			errs <- backfillPart(ctx, pool, cols, pk, table, string(opts.Job), part, parts, opts, limiter, report)
		}()
	}
	wg.Wait()
	close(errs)
	var errList []error
	for err := range errs {
		if err != nil {
			errList = append(errList, err)
		}
	}
	total.Done = len(errList) == 0
	return total, errors.Join(errList...)
}

type pkColumn struct{ name, typ string }

func primaryKey(ctx context.Context, pool *pgxpool.Pool, t Column) ([]pkColumn, error) {
	rows, err := pool.Query(ctx, `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
		FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::pg_catalog.int2[])
		WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::pg_catalog.int2[], a.attnum)`, t.table())
	if err != nil {
		return nil, fmt.Errorf("reading the primary key of %s.%s: %w", t.Schema, t.Table, err)
	}
	pk, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pkColumn, error) {
		var c pkColumn
		return c, r.Scan(&c.name, &c.typ)
	})
	if err != nil {
		return nil, err
	}
	if len(pk) == 0 {
		return nil, fmt.Errorf("table %s.%s has no primary key: backfill reads and writes rows by it (add one, e.g. ALTER TABLE ... ADD PRIMARY KEY)", t.Schema, t.Table)
	}
	return pk, nil
}

func backfillPart(ctx context.Context, pool *pgxpool.Pool, cols []CipherColumn, pk []pkColumn, table, job string, part, parts int,
	opts BackfillOptions, limiter *rateLimiter, report func(Progress)) error {
	var pkNames, pkText, keyParams, colNames []string
	// Output columns get names of their own: ORDER BY id would otherwise
	// sort by the text output column id, not the key.
	for i, c := range pk {
		pkNames = append(pkNames, table+"."+quoteIdent(c.name))
		pkText = append(pkText, fmt.Sprintf("%s::text AS _pgcrypt_k%d", quoteIdent(c.name), i))
		keyParams = append(keyParams, fmt.Sprintf("$%d::%s", i+1, c.typ))
	}
	for i, c := range cols {
		colNames = append(colNames, fmt.Sprintf("%s::text AS _pgcrypt_v%d", quoteIdent(c.Name), i))
	}
	// Batches walk the primary key index; which rows need a change is
	// decided per row (convert). A filter in the query would let the
	// planner prefer scanning the whole table for each batch.
	where := "true"
	if parts > 1 {
		where = fmt.Sprintf("abs(pg_catalog.hashtext(ROW(%s)::text)::bigint) %% %d = %d", strings.Join(pkNames, ", "), parts, part)
	}
	tbl := cols[0].Schema + "." + cols[0].Table
	var last []string
	if !opts.DryRun {
		var done bool
		err := pool.QueryRow(ctx, `SELECT last_key, done FROM `+progressTable+` WHERE job = $1 AND tbl = $2 AND part = $3 AND parts = $4`,
			job, tbl, part, parts).Scan(&last, &done)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if done {
			last = nil // a finished run starts over: new plaintext may have come since
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		q := "SELECT " + strings.Join(append(pkText, colNames...), ", ") + " FROM " + table + " WHERE " + where
		var args []any
		if last != nil {
			q += " AND (" + strings.Join(pkNames, ", ") + ") > (" + strings.Join(keyParams, ", ") + ")"
			for _, k := range last {
				args = append(args, k)
			}
		}
		q += " ORDER BY " + strings.Join(pkNames, ", ") + " LIMIT " + fmt.Sprint(opts.Batch)
		if err := throttle(ctx, pool, opts); err != nil {
			return err
		}
		p, next, err := backfillBatch(ctx, pool, cols, pk, table, q, args, opts, limiter)
		if err != nil {
			return err
		}
		if next == nil {
			if !opts.DryRun {
				if err := saveProgress(ctx, pool, job, tbl, part, parts, last, true); err != nil {
					return err
				}
			}
			report(p)
			return nil
		}
		last = next
		if !opts.DryRun {
			if err := saveProgress(ctx, pool, job, tbl, part, parts, last, false); err != nil {
				return err
			}
		}
		report(p)
	}
}

func saveProgress(ctx context.Context, pool *pgxpool.Pool, job, tbl string, part, parts int, last []string, done bool) error {
	_, err := pool.Exec(ctx, `INSERT INTO `+progressTable+` (job, tbl, part, parts, last_key, done) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (job, tbl, part, parts) DO UPDATE SET last_key = EXCLUDED.last_key, done = EXCLUDED.done, updated_at = now()`,
		job, tbl, part, parts, last, done)
	return err
}

// backfillBatch reads one batch and writes its rows back changed, in one
// statement; it returns the batch's last key, or nil after the last.
func backfillBatch(ctx context.Context, pool *pgxpool.Pool, cols []CipherColumn, pk []pkColumn, table, q string, qargs []any,
	opts BackfillOptions, limiter *rateLimiter) (Progress, []string, error) {
	var p Progress
	rows, err := pool.Query(ctx, q, qargs...)
	if err != nil {
		return p, nil, err
	}
	type row struct {
		key    []string
		values []*string
	}
	var batch []row
	for rows.Next() {
		vals := make([]*string, len(pk)+len(cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return p, nil, err
		}
		r := row{values: vals[len(pk):]}
		for _, k := range vals[:len(pk)] {
			r.key = append(r.key, *k)
		}
		batch = append(batch, r)
	}
	if err := rows.Err(); err != nil {
		return p, nil, err
	}
	if len(batch) == 0 {
		return p, nil, nil
	}
	p.Scanned = int64(len(batch))
	// One UPDATE per batch: the rows to change with their old and new
	// values as arrays, written only where every policy value is still the
	// one read (compare-and-set).
	keys := make([][]string, len(pk))
	olds := make([][]*string, len(cols))
	news := make([][]*string, len(cols))
	for _, r := range batch {
		changed := false
		nv := make([]*string, len(cols))
		for i, c := range cols {
			v, ch, err := convert(opts.Job, c, r.values[i])
			if err != nil {
				return p, nil, fmt.Errorf("row %v, column %s: %w", r.key, c, err)
			}
			nv[i], changed = v, changed || ch
		}
		if !changed {
			continue
		}
		for i, k := range r.key {
			keys[i] = append(keys[i], k)
		}
		for i := range cols {
			olds[i] = append(olds[i], r.values[i])
			news[i] = append(news[i], nv[i])
		}
		p.Changed++
	}
	if p.Changed == 0 || opts.DryRun {
		return p, batch[len(batch)-1].key, nil
	}
	var set, cond, arrays, names []string
	var args []any
	for i, c := range pk {
		names = append(names, fmt.Sprintf("k%d", i))
		arrays = append(arrays, fmt.Sprintf("$%d::text[]", len(args)+1))
		args = append(args, keys[i])
		cond = append(cond, fmt.Sprintf("%s.%s = u.k%d::%s", table, quoteIdent(c.name), i, c.typ))
	}
	for i, c := range cols {
		names = append(names, fmt.Sprintf("o%d", i), fmt.Sprintf("n%d", i))
		arrays = append(arrays, fmt.Sprintf("$%d::text[]", len(args)+1), fmt.Sprintf("$%d::text[]", len(args)+2))
		args = append(args, olds[i], news[i])
		set = append(set, fmt.Sprintf("%s = u.n%d", quoteIdent(c.Name), i))
		cond = append(cond, fmt.Sprintf("%s.%s::text IS NOT DISTINCT FROM u.o%d", table, quoteIdent(c.Name), i))
	}
	update := "UPDATE " + table + " SET " + strings.Join(set, ", ") +
		" FROM unnest(" + strings.Join(arrays, ", ") + ") AS u(" + strings.Join(names, ", ") + ")" +
		" WHERE " + strings.Join(cond, " AND ")
	limiter.wait(ctx, int(p.Changed))
	tag, err := pool.Exec(ctx, update, args...)
	if err != nil {
		return p, nil, err
	}
	// Rows changed meanwhile through the proxy keep their (encrypted) value.
	p.Conflicts = p.Changed - tag.RowsAffected()
	p.Changed = tag.RowsAffected()
	return p, batch[len(batch)-1].key, nil
}

// convert returns the value to store for v under job, and whether it
// differs.
func convert(job Job, c CipherColumn, v *string) (*string, bool, error) {
	if v == nil {
		return nil, false, nil
	}
	b := []byte(*v)
	isEnv := cipher.LooksLikeEnvelope(b)
	str := func(b []byte, err error) (*string, bool, error) {
		if err != nil {
			return nil, false, err
		}
		s := string(b)
		return &s, true, nil
	}
	switch job {
	case JobEncrypt:
		if isEnv {
			return v, false, nil
		}
		return str(c.Cipher.Encrypt(nil, b))
	case JobRotate:
		if !isEnv {
			return v, false, nil
		}
		if cur, err := c.Cipher.IsCurrent(b); err != nil || cur {
			return v, false, err
		}
		plain, err := c.Cipher.Decrypt(nil, b)
		if err != nil {
			return nil, false, err
		}
		return str(c.Cipher.Encrypt(nil, plain))
	case JobDecrypt:
		if !isEnv {
			return v, false, nil
		}
		return str(c.Cipher.Decrypt(nil, b))
	}
	return nil, false, fmt.Errorf("unknown job %q", job)
}

// throttle waits while the database is under the strain opts bound, as
// gh-ost does: replicas lagging, or sessions queued on locks.
func throttle(ctx context.Context, pool *pgxpool.Pool, opts BackfillOptions) error {
	if opts.MaxLag <= 0 && opts.MaxLockWaiters < 0 {
		return nil
	}
	for {
		var lag float64
		var waiters int
		err := pool.QueryRow(ctx, `SELECT coalesce((SELECT extract(epoch FROM max(replay_lag)) FROM pg_catalog.pg_stat_replication), 0)::float8,
			(SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid())::int`).Scan(&lag, &waiters)
		if err != nil {
			return fmt.Errorf("reading replication lag and lock waits: %w", err)
		}
		why := ""
		switch {
		case opts.MaxLag > 0 && lag > opts.MaxLag.Seconds():
			why = fmt.Sprintf("replication lag %.1fs over %v", lag, opts.MaxLag)
		case opts.MaxLockWaiters >= 0 && waiters > opts.MaxLockWaiters:
			why = fmt.Sprintf("%d sessions waiting for locks, over %d", waiters, opts.MaxLockWaiters)
		default:
			return nil
		}
		if opts.Paused != nil {
			opts.Paused(why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// rateLimiter spaces batches so that at most rate rows change per second.
type rateLimiter struct {
	rate float64
	mu   sync.Mutex
	next time.Time
}

func newRateLimiter(rate float64) *rateLimiter { return &rateLimiter{rate: rate} }

func (l *rateLimiter) wait(ctx context.Context, rows int) {
	if l.rate <= 0 {
		return
	}
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(time.Duration(float64(rows) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	select {
	case <-time.After(time.Until(at)):
	case <-ctx.Done():
	}
}
