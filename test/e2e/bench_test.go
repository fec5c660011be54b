package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// The encrypted workload of the seed's performance section: insert a client
// with a 1 KB medical history, read a random client back by id. "direct"
// runs it on PostgreSQL with no encryption; "proxy" through the proxy with
// the seed policy. scripts/bench-encrypt.sh runs both, interleaved, and
// prints the ratio.

type benchTarget struct {
	pool *pgxpool.Pool
	ids  []string
	n    atomic.Int64
}

func benchFixture(b *testing.B, viaProxy bool) *benchTarget {
	b.Helper()
	pg.Require(b)
	ctx := context.Background()
	db := pg.NewDatabase(b)
	direct := pg.SuperConn(b, db)
	schema, err := os.ReadFile("../../examples/clients.sql")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := direct.Exec(ctx, string(schema)+"; insert into workspaces(name) values ('w')"); err != nil {
		b.Fatal(err)
	}
	dsn := pg.SuperConnString(db)
	if viaProxy {
		key, _ := cipher.GenerateKey(nil)
		kr, err := cipher.NewKeyring("v1", map[string]cipher.Key{"v1": key})
		if err != nil {
			b.Fatal(err)
		}
		p := startBenchProxy(b, kr)
		dsn = fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", p.Host, p.Port, pg.Super.Name, db)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	bt := &benchTarget{pool: pool}
	for range 200 {
		bt.ids = append(bt.ids, bt.insert(b))
	}
	return bt
}

var benchHistory = strings.Repeat("Type 2 diabetes, hypertension; metformin 500 mg. ", 21)[:1024]

func (bt *benchTarget) insert(b *testing.B) string {
	var id string
	n := bt.n.Add(1)
	err := bt.pool.QueryRow(context.Background(), `insert into clients (workspace_id, first_name, last_name, email, phone, medical_history)
		values ((select id from workspaces limit 1), $1, $2, $3, $4, $5) returning id::text`,
		"First", "Last", fmt.Sprintf("c%d@example.com", n), "+1 555 0100", benchHistory).Scan(&id)
	if err != nil {
		b.Fatal(err)
	}
	return id
}

func (bt *benchTarget) read(b *testing.B, id string) {
	var first, last, history string
	var email, phone *string
	err := bt.pool.QueryRow(context.Background(), `select first_name, last_name, email, phone, medical_history from clients where id = $1`, id).
		Scan(&first, &last, &email, &phone, &history)
	if err != nil || len(history) != 1024 {
		b.Fatalf("read: %v (%d bytes)", err, len(history))
	}
}

// startBenchProxy is startProxy for benchmarks, with the seed policy.
func startBenchProxy(b *testing.B, kr *cipher.Keyring) *testProxy {
	return startProxyTB(b, func(o *proxy.Options) {
		pol, err := proxy.NewPolicy(seedColumns(), kr, false, o.Metrics)
		if err != nil {
			b.Fatal(err)
		}
		o.Policy = pol
	})
}

// BenchmarkEncryptedWorkload: one op is one insert plus one read by id,
// from 8 concurrent clients.
func BenchmarkEncryptedWorkload(b *testing.B) {
	for _, target := range []string{"direct", "proxy"} {
		b.Run(target, func(b *testing.B) {
			bt := benchFixture(b, target == "proxy")
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bt.insert(b)
					bt.read(b, bt.ids[rand.IntN(len(bt.ids))])
				}
			})
		})
	}
}

// BenchmarkSelect100Clients: one op reads 100 clients with every policy
// column (the seed's bulk decryption test, section 5.3).
func BenchmarkSelect100Clients(b *testing.B) {
	for _, target := range []string{"direct", "proxy"} {
		b.Run(target, func(b *testing.B) {
			bt := benchFixture(b, target == "proxy")
			ctx := context.Background()
			conn, err := bt.pool.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			b.ResetTimer()
			for range b.N {
				rows, err := conn.Query(ctx, "select id, first_name, last_name, email, phone, medical_history from clients limit 100")
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rows.Next() {
					n++
				}
				if rows.Err() != nil || n != 100 {
					b.Fatalf("%d rows, %v", n, rows.Err())
				}
			}
		})
	}
}
