package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgtest"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// clientTLSConfig returns a server-side TLS config for the proxy with a
// certificate from the cluster's CA.
func clientTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	pg.RequireServerTLS(t)
	certFile, keyFile, err := pg.IssueCert("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"postgresql"}}
}

func upstreamTLS(t *testing.T, o proxy.UpstreamTLSOptions) proxy.UpstreamTLS {
	t.Helper()
	u, err := proxy.NewUpstreamTLS(o, pg.Host)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestClientTLS: clients verify the proxy's certificate, may also connect
// without TLS, and are never offered SCRAM-SHA-256-PLUS.
func TestClientTLS(t *testing.T) {
	ctls := clientTLSConfig(t)
	p := startProxy(t, func(o *proxy.Options) { o.ClientTLS = ctls })
	scram := pg.User(t, pgtest.UserSCRAM)
	ctx := testCtx(t)

	conn := p.connect(t, p.ConnString(scram, "postgres", "sslmode=verify-full", "sslrootcert="+pg.CAFile))
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatal("verify-full connection is not TLS")
	}
	p.connect(t, p.ConnString(scram, "postgres", "sslmode=disable"))

	_, err := pgx.Connect(ctx, p.ConnString(scram, "postgres", "sslmode=verify-full", "sslrootcert="+pg.OtherCAFile))
	if err == nil {
		t.Fatal("a client trusting another CA accepted the proxy's certificate")
	}
	_, err = pgx.Connect(ctx, p.ConnString(scram, "postgres", "sslmode=require", "channel_binding=require"))
	if err == nil || !strings.Contains(err.Error(), "SCRAM-SHA-256-PLUS") {
		t.Fatalf("channel_binding=require: %v, want a refusal because PLUS is not offered", err)
	}
}

// TestClientTLSRequired: with client_tls.mode require a client that does not
// start TLS is refused as a hostssl-only pg_hba.conf refuses it (28000, "no
// encryption"), with the fix in the hint; TLS clients, a client that tries
// plaintext first (sslmode=allow) and cancel requests still work.
func TestClientTLSRequired(t *testing.T) {
	p := startProxy(t, func(o *proxy.Options) { o.ClientTLS = clientTLSConfig(t); o.RequireClientTLS = true })
	scram := pg.User(t, pgtest.UserSCRAM)
	ctx := testCtx(t)
	_, err := pgx.Connect(ctx, p.ConnString(scram, "postgres", "sslmode=disable"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" || !strings.HasSuffix(pgErr.Message, "no encryption") || !strings.Contains(pgErr.Hint, "sslmode=require") {
		t.Fatalf("sslmode=disable: %v, want 28000 ending in \"no encryption\" with a hint", err)
	}
	if got := p.errorCount("client_tls"); got != 1 {
		t.Fatalf("client_tls errors = %v, want 1", got)
	}
	for _, mode := range []string{"sslmode=require", "sslmode=prefer", "sslmode=allow"} {
		conn := p.connect(t, p.ConnString(scram, "postgres", mode))
		if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
			t.Fatalf("%s: the connection is not TLS", mode)
		}
	}
	// pgx sends its cancel request in plaintext, as PostgreSQL takes it.
	conn := p.connect(t, p.ConnString(scram, "postgres", "sslmode=require"))
	go func() {
		time.Sleep(300 * time.Millisecond)
		conn.PgConn().CancelRequest(context.Background())
	}()
	_, err = conn.Exec(ctx, "SELECT pg_sleep(30)")
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("a canceled statement: %v, want 57014", err)
	}
}

// TestClientTLSWithUpstreamTLS: a TLS client that announces channel binding
// support ("y") is refused by a TLS upstream; the error says how to fix it,
// and the fix works.
func TestClientTLSWithUpstreamTLS(t *testing.T) {
	ctls := clientTLSConfig(t)
	p := startProxy(t, func(o *proxy.Options) {
		o.ClientTLS = ctls
		o.UpstreamTLS = upstreamTLS(t, proxy.UpstreamTLSOptions{Mode: proxy.TLSVerifyFull, CAFile: pg.CAFile})
	})
	scram := pg.User(t, pgtest.UserSCRAM)
	_, err := pgx.Connect(testCtx(t), p.ConnString(scram, "postgres", "sslmode=require"))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Hint, "channel_binding=disable") {
		t.Fatalf("got %v, want PostgreSQL's channel binding error with the proxy's hint", err)
	}
	conn := p.connect(t, p.ConnString(scram, "postgres", "sslmode=require", "channel_binding=disable"))
	var ssl bool
	if err := conn.QueryRow(testCtx(t), "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("upstream ssl = %v, %v", ssl, err)
	}
}

// TestDirectTLS: PostgreSQL 17 clients may start TLS without SSLRequest.
func TestDirectTLS(t *testing.T) {
	ctls := clientTLSConfig(t)
	withTLS := startProxy(t, func(o *proxy.Options) { o.ClientTLS = ctls })
	conn := withTLS.connect(t, withTLS.ConnString(pg.Super, "postgres", "sslmode=verify-full", "sslrootcert="+pg.CAFile, "sslnegotiation=direct"))
	if err := conn.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	without := startProxy(t, nil)
	_, err := pgx.Connect(testCtx(t), without.ConnString(pg.Super, "postgres", "sslmode=require", "sslnegotiation=direct"))
	if err == nil {
		t.Fatal("direct TLS accepted by a proxy without client_tls")
	}
	if got := without.errorCount("client_tls"); got != 1 {
		t.Fatalf("client_tls errors = %v, want 1", got)
	}
	// Direct TLS without the postgresql ALPN protocol is refused.
	raw, err := tls.Dial("tcp", withTLS.Addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err == nil {
		raw.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = raw.Read(make([]byte, 1))
		raw.Close()
	}
	if err == nil {
		t.Fatal("direct TLS without ALPN postgresql was served")
	}
}

// TestGSSENCRefused: GSSAPI encryption is declined with 'N', after which the
// client may go on in clear text, as against a server without GSSAPI.
func TestGSSENCRefused(t *testing.T) {
	p := startProxy(t, nil)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, req := range [][]byte{
		{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}, // GSSENCRequest
		{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}, // SSLRequest, no client_tls
	} {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != 'N' {
			t.Fatalf("answer %q, %v; want N", b[0], err)
		}
	}
}

// TestUpstreamTLSModes connects as a role that pg_hba.conf admits only over
// TLS, through each upstream mode.
func TestUpstreamTLSModes(t *testing.T) {
	pg.RequireServerTLS(t)
	user := pg.User(t, pgtest.UserSSLOnly)
	tests := []struct {
		name    string
		opts    proxy.UpstreamTLSOptions
		wantSSL bool
		wantErr string // metric kind, or "" for success
	}{
		{"disable", proxy.UpstreamTLSOptions{Mode: proxy.TLSDisable}, false, "backend"},
		{"prefer", proxy.UpstreamTLSOptions{Mode: proxy.TLSPrefer}, true, ""},
		{"require", proxy.UpstreamTLSOptions{Mode: proxy.TLSRequire}, true, ""},
		{"require with a wrong CA", proxy.UpstreamTLSOptions{Mode: proxy.TLSRequire, CAFile: pg.OtherCAFile}, false, "upstream_tls"},
		{"verify-ca", proxy.UpstreamTLSOptions{Mode: proxy.TLSVerifyCA, CAFile: pg.CAFile}, true, ""},
		{"verify-ca with a wrong CA", proxy.UpstreamTLSOptions{Mode: proxy.TLSVerifyCA, CAFile: pg.OtherCAFile}, false, "upstream_tls"},
		{"verify-ca ignores the host name", proxy.UpstreamTLSOptions{Mode: proxy.TLSVerifyCA, CAFile: pg.CAFile, ServerName: "db.invalid"}, true, ""},
		{"verify-full", proxy.UpstreamTLSOptions{Mode: proxy.TLSVerifyFull, CAFile: pg.CAFile}, true, ""},
		{"verify-full with a wrong host name", proxy.UpstreamTLSOptions{Mode: proxy.TLSVerifyFull, CAFile: pg.CAFile, ServerName: "db.invalid"}, false, "upstream_tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, func(o *proxy.Options) { o.UpstreamTLS = upstreamTLS(t, tc.opts) })
			ctx := testCtx(t)
			conn, err := pgx.Connect(ctx, p.ConnString(user, "postgres"))
			if tc.wantErr != "" {
				if err == nil {
					conn.Close(ctx)
					t.Fatal("connected, want an error")
				}
				if tc.wantErr == "upstream_tls" {
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != "08001" || p.errorCount("upstream_tls") != 1 {
						t.Fatalf("got %v, want 08001 and an upstream_tls error", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var ssl bool
			if err := conn.QueryRow(ctx, "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&ssl); err != nil || ssl != tc.wantSSL {
				t.Fatalf("upstream ssl = %v, %v; want %v", ssl, err, tc.wantSSL)
			}
		})
	}
}
