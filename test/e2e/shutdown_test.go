package e2e

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestShutdownDrains: Shutdown refuses new connections at once, lets a
// running query finish and returns when its session ends.
func TestShutdownDrains(t *testing.T) {
	p := startProxy(t, nil)
	ctx := testCtx(t)
	conn := p.connect(t, p.ConnString(pg.Super, "postgres"))
	queryDone := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "select pg_sleep(0.5)")
		queryDone <- err
	}()
	direct, err := pgx.Connect(ctx, pg.SuperConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	waitFor(t, "the query to start", func() bool {
		var n int
		direct.QueryRow(ctx, "select count(*) from pg_stat_activity where query = 'select pg_sleep(0.5)' and state = 'active'").Scan(&n)
		return n == 1
	})

	shutdownDone := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shutdownDone <- p.Server.Shutdown(sctx)
	}()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", p.Addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if p.Server.Ready() {
		t.Fatal("Ready() is true while draining")
	}
	if err := <-queryDone; err != nil {
		t.Fatalf("in-flight query during drain: %v", err)
	}
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) while a session was open", err)
	case <-time.After(100 * time.Millisecond):
	}
	conn.Close(ctx)
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownTimeout: sessions still open at the drain timeout are closed
// with PostgreSQL's admin_shutdown error.
func TestShutdownTimeout(t *testing.T) {
	p := startProxy(t, nil)
	ctx := testCtx(t)
	idle, err := pgconn.Connect(ctx, p.ConnString(pg.Super, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Server.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the drain timeout", err)
	}
	_, err = idle.Exec(ctx, "select 1").ReadAll()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57P01" {
		t.Fatalf("query after forced shutdown: %v, want 57P01", err)
	}
	if got := p.errorCount("shutdown"); got != 1 {
		t.Fatalf("shutdown errors = %v, want 1", got)
	}
}
