// Package audit writes the PHI access log: one JSON line per statement that
// touches a policy column, and per statement the proxy refused. An event
// names who (session, database user, application, client address), what
// (statement kind and fingerprint, the policy columns read, searched and
// written, rows) and how it ended; it never holds a value or the statement
// text. Events are written off the sessions' path by one goroutine through
// a bounded queue.
package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// Event is one audited statement. Column names are schema.table.column.
type Event struct {
	Time    time.Time `json:"time"`
	Session uint64    `json:"session"`
	User    string    `json:"user"`
	// Database, Application (application_name, as the session last set
	// it) and Client (the client's address) say where it came from.
	Database    string `json:"database"`
	Application string `json:"application_name"`
	Client      string `json:"client_addr"`
	// Statement is the statement's kind (select, insert, update, delete,
	// merge, copy, ...); Fingerprint identifies its text with constants
	// and parameters removed (libpg_query's fingerprint), so one query of
	// the application has one fingerprint.
	Statement   string   `json:"statement"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	Tables      []string `json:"tables,omitempty"`
	// Read are the policy columns whose values the client received
	// (decrypted), Searched those it compared with a value (WHERE email =
	// $1), Written those it stored values into.
	Read     []string `json:"read,omitempty"`
	Searched []string `json:"searched,omitempty"`
	Written  []string `json:"written,omitempty"`
	// Rows is the number of rows returned or affected, as the server's
	// command tag says (or counted, for a suspended portal).
	Rows int64 `json:"rows"`
	// Outcome is ok, refused (by the proxy; Reason says why, as the
	// pgcrypt_statements_rejected_total label does) or error (by
	// PostgreSQL; SQLState is its code).
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason,omitempty"`
	SQLState string `json:"sqlstate,omitempty"`
	// KeyVersions are the key versions the proxy encrypted or searched
	// under for this statement.
	KeyVersions []string `json:"key_versions,omitempty"`
}

// Overflow says what Log does when the queue is full.
type Overflow string

const (
	// Block makes the session wait until the writer catches up: no event
	// is lost, and a stalled audit file stalls the statements it audits.
	Block Overflow = "block"
	// Drop discards the event and counts it
	// (pgcrypt_audit_events_total{result="dropped"}).
	Drop Overflow = "drop"
)

// DefaultQueue is the default queue length.
const DefaultQueue = 10000

// Options configure a Logger.
type Options struct {
	// Path is the file events are appended to; "-" writes to Stdout.
	Path   string
	Stdout io.Writer
	// Queue is the number of events that may wait (DefaultQueue when 0).
	Queue  int
	OnFull Overflow
	// Metrics, when set, counts events and shows the queue's length.
	Metrics *metrics.Metrics
	// OnError is told about a failure to write the file (at most once
	// per failure streak); the events of a failed write are counted as
	// errors.
	OnError func(error)
	// Interval is how often queued events are written and the file
	// flushed (DefaultInterval when 0). Sessions only queue; the writer
	// wakes on this clock, not per event, so auditing costs a session
	// an encoding and a channel send.
	Interval time.Duration
}

// DefaultInterval is Options.Interval's default.
const DefaultInterval = 50 * time.Millisecond

// Logger queues events and writes them as JSON lines. Its methods are safe
// for concurrent use.
type Logger struct {
	opts  Options
	queue chan *Event
	stop  chan struct{} // closed by Close
	done  chan struct{} // closed when the writer has written everything

	mu     sync.Mutex // guards f and w against Reopen
	f      *os.File   // nil for stdout
	w      *bufio.Writer
	failed bool // the last write failed (OnError was told)

	closeOnce sync.Once
}

// New opens the file (creating it with mode 0600, appending) and starts the
// writer.
func New(opts Options) (*Logger, error) {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	switch opts.OnFull {
	case "":
		opts.OnFull = Block
	case Block, Drop:
	default:
		return nil, fmt.Errorf("audit: on_full %q: use block or drop", opts.OnFull)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	l := &Logger{opts: opts, queue: make(chan *Event, opts.Queue), stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.open(); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

func (l *Logger) open() error {
	if l.opts.Path == "-" {
		out := l.opts.Stdout
		if out == nil {
			out = os.Stdout
		}
		l.w = bufio.NewWriterSize(out, 64<<10)
		return nil
	}
	f, err := os.OpenFile(l.opts.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.f, l.w = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

// Log queues e. With Block it waits while the queue is full; with Drop it
// discards e and counts it.
func (l *Logger) Log(e *Event) {
	if l.opts.OnFull == Drop {
		select {
		case l.queue <- e:
		default:
			if m := l.opts.Metrics; m != nil {
				m.AuditEvents.WithLabelValues("dropped").Inc()
			}
			return
		}
	} else {
		l.queue <- e
	}
}

// run writes what is queued every Interval, and everything at Close.
func (l *Logger) run() {
	defer close(l.done)
	tick := time.NewTicker(l.opts.Interval)
	defer tick.Stop()
	enc := make([]byte, 0, 1024)
	drain := func() {
		for {
			select {
			case e := <-l.queue:
				var err error
				enc, err = appendJSON(enc[:0], e)
				l.write(enc, err)
			default:
				l.flush()
				if m := l.opts.Metrics; m != nil {
					m.AuditQueue.Set(float64(len(l.queue)))
				}
				return
			}
		}
	}
	for {
		select {
		case <-tick.C:
			drain()
		case <-l.stop:
			drain()
			return
		}
	}
}

func appendJSON(dst []byte, e *Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return dst, err
	}
	return append(append(dst, b...), '\n'), nil
}

func (l *Logger) write(line []byte, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		_, err = l.w.Write(line)
	}
	l.account(err)
}

func (l *Logger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		l.account(err)
	}
}

// account counts a write (under l.mu) and reports the first failure of a
// streak.
func (l *Logger) account(err error) {
	m := l.opts.Metrics
	if err == nil {
		l.failed = false
		if m != nil {
			m.AuditEvents.WithLabelValues("written").Inc()
		}
		return
	}
	if m != nil {
		m.AuditEvents.WithLabelValues("error").Inc()
	}
	if !l.failed && l.opts.OnError != nil {
		l.opts.OnError(err)
	}
	l.failed = true
}

// Reopen flushes and reopens the file, for logrotate's move-then-signal
// rotation (serve calls it on SIGHUP). A failure keeps the old file.
func (l *Logger) Reopen() error {
	if l.opts.Path == "-" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.opts.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: reopening: %w", err)
	}
	flushErr := l.w.Flush()
	old := l.f
	l.f = f
	l.w.Reset(f)
	return errors.Join(flushErr, old.Close())
}

// Close writes what is queued and closes the file. Log must not be called
// after Close.
func (l *Logger) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		err = l.w.Flush()
		if l.f != nil {
			err = errors.Join(err, l.f.Close())
		}
	})
	return err
}
