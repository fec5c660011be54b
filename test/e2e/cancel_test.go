package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// TestCancelDuringCatalogRead: a client that cancels its first statement
// at once (pgconn's CancelRequestContextWatcherHandler, as pgx's own
// stress test does) often cancels the proxy's catalog query, which runs on
// the session in that statement's place. The statement must then fail as
// canceled (57014) or succeed, and the session must stay usable; before,
// the proxy ended the session.
func TestCancelDuringCatalogRead(t *testing.T) {
	f := newEncFixture(t, false)
	cfg, err := pgconn.ParseConfig(f.p.ConnString(pg.Super, f.db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: 0, DeadlineDelay: 10 * time.Second}
	}
	canceled := 0
	for i := range 30 {
		conn, err := pgconn.ConnectConfig(testCtx(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%4)*500*time.Microsecond)
		_, err = conn.Exec(ctx, "select 1, pg_sleep(0.005)").ReadAll()
		cancel()
		var pe *pgconn.PgError
		switch {
		case err == nil:
		case errors.As(err, &pe) && pe.Code == "57014":
			canceled++
		case errors.Is(err, context.DeadlineExceeded):
			canceled++
		default:
			t.Fatalf("round %d: %v", i, err)
		}
		// A late cancel must not reach this one (pgx waits for its cancel
		// request to be done before it lets the connection be used).
		res := conn.ExecParams(testCtx(t), "select generate_series(1, $1)", [][]byte{[]byte("3")}, nil, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 3 {
			t.Fatalf("round %d: the session is not usable after a cancel: %v (closed: %v)", i, res.Err, conn.IsClosed())
		}
		conn.Close(context.Background())
	}
	t.Logf("%d of 30 first statements canceled", canceled)
}
