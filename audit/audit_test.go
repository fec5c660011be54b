package audit

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestLogReopenClose: events reach the file as JSON lines, in order; after
// the file is moved away (logrotate) and Reopen, new events go to a new
// file; Close writes what is queued.
func TestLogReopenClose(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := New(Options{Path: path, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		l.Log(&Event{Session: uint64(i), Statement: "select", Read: []string{"public.clients.email"}, Outcome: "ok"})
	}
	waitWritten := func(n float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for testutil.ToFloat64(m.AuditEvents.WithLabelValues("written")) < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %v events written, want %v", testutil.ToFloat64(m.AuditEvents.WithLabelValues("written")), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitWritten(100)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log(&Event{Session: 100, Statement: "insert", Written: []string{"public.clients.email"}, Outcome: "refused", Reason: "plaintext_write"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, cur := readEvents(t, path+".1"), readEvents(t, path)
	if len(old) != 100 || len(cur) != 1 {
		t.Fatalf("%d events before the rotation, %d after; want 100 and 1", len(old), len(cur))
	}
	for i, e := range old {
		if e.Session != uint64(i) || e.Read[0] != "public.clients.email" {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
	if cur[0].Outcome != "refused" || cur[0].Reason != "plaintext_write" {
		t.Fatalf("after reopen: %+v", cur[0])
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the audit file's mode: %v %v", fi.Mode(), err)
	}
}

// TestDropWhenFull: with on_full: drop a stalled writer costs events, not
// sessions, and every dropped event is counted.
func TestDropWhenFull(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe() // nobody reads: the writer stalls on its first flush
	defer r.Close()
	l, err := New(Options{Path: "-", Stdout: w, Queue: 4, OnFull: Drop, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for range 200 {
			l.Log(&Event{Statement: "select", Outcome: "ok"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Log blocked with on_full: drop")
	}
	dropped := testutil.ToFloat64(m.AuditEvents.WithLabelValues("dropped"))
	if dropped < 200-4-1-64 || dropped > 200 {
		t.Fatalf("%v events dropped of 200 with a queue of 4", dropped)
	}
	go io.Copy(io.Discard, r) // let the writer finish
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEventJSON: the fields a log collector indexes are always present,
// and a bad on_full is refused.
func TestEventJSON(t *testing.T) {
	b, err := json.Marshal(Event{Statement: "select", Outcome: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"time"`, `"session"`, `"user"`, `"database"`, `"application_name"`, `"client_addr"`, `"statement"`, `"rows"`, `"outcome"`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("%s lacks %s", b, f)
		}
	}
	if _, err := New(Options{Path: "-", OnFull: "sometimes"}); err == nil {
		t.Error("on_full: sometimes was accepted")
	}
}
