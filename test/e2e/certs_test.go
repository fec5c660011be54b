package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgtest"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// TestUpstreamClientCertificate: the proxy logs in to PostgreSQL with its
// own client certificate (upstream_tls.cert_file) for a role that
// pg_hba.conf lets in by certificate only; without it PostgreSQL refuses.
func TestUpstreamClientCertificate(t *testing.T) {
	pg.RequireServerTLS(t)
	user := pg.User(t, pgtest.UserCert)
	certFile, keyFile, err := pg.IssueCert(user.Name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	with := startProxy(t, func(o *proxy.Options) {
		o.UpstreamTLS = upstreamTLS(t, proxy.UpstreamTLSOptions{Mode: "verify-full", CAFile: pg.CAFile, CertFile: certFile, KeyFile: keyFile})
	})
	conn := with.connect(t, with.ConnString(pgtest.User{Name: user.Name}, "postgres", "sslmode=disable"))
	var who string
	var ssl bool
	if err := conn.QueryRow(ctx, "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&who, &ssl); err != nil || who != user.Name || !ssl {
		t.Fatalf("logged in as %q over ssl=%v (%v)", who, ssl, err)
	}
	without := startProxy(t, func(o *proxy.Options) {
		o.UpstreamTLS = upstreamTLS(t, proxy.UpstreamTLSOptions{Mode: "verify-full", CAFile: pg.CAFile})
	})
	if _, err := pgx.Connect(ctx, without.ConnString(pgtest.User{Name: user.Name}, "postgres", "sslmode=disable")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a client certificate: %v, want PostgreSQL's refusal", err)
	}
}

// TestClientCertificates: with client_tls.client_auth: require, the proxy
// accepts only clients presenting a certificate its ca_file signed; with
// verify, one is checked when presented.
func TestClientCertificates(t *testing.T) {
	pg.RequireServerTLS(t)
	serverCert, serverKey, err := pg.IssueCert("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	appCert, appKey, err := pg.IssueCert("billing-app")
	if err != nil {
		t.Fatal(err)
	}
	scram := pg.User(t, pgtest.UserSCRAM)
	ctx := testCtx(t)
	for _, auth := range []string{"require", "verify"} {
		t.Run(auth, func(t *testing.T) {
			p := startBinary(t, pg.Addr(), fmt.Sprintf("client_tls: { cert_file: %s, key_file: %s, ca_file: %s, client_auth: %s }\n",
				serverCert, serverKey, pg.CAFile, auth))
			dsn := func(extra string) string {
				return fmt.Sprintf("host=127.0.0.1 port=%s user=%s password=%s dbname=postgres sslmode=verify-full sslrootcert=%s channel_binding=disable %s",
					strings.Split(p.listen, ":")[1], scram.Name, scram.Password, pg.CAFile, extra)
			}
			c, err := pgx.Connect(ctx, dsn("sslcert="+appCert+" sslkey="+appKey))
			if err != nil {
				t.Fatalf("a client with a certificate from ca_file: %v", err)
			}
			c.Close(ctx)
			_, err = pgx.Connect(ctx, dsn(""))
			if auth == "require" && err == nil {
				t.Fatal("a client without a certificate was let in")
			}
			if auth == "verify" && err != nil {
				t.Fatalf("client_auth: verify refused a client without a certificate: %v", err)
			}
			// A certificate from another CA is refused either way. (Go's
			// TLS client would not send one the proxy's request does not
			// ask for: send it anyway, as a hostile client would.)
			otherFile, otherKey := writeOtherCACert(t)
			other, err := tls.LoadX509KeyPair(otherFile, otherKey)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := pgx.ParseConfig(dsn(""))
			if err != nil {
				t.Fatal(err)
			}
			cfg.TLSConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &other, nil }
			if _, err := pgx.ConnectConfig(ctx, cfg); err == nil {
				t.Fatal("a client certificate from another CA was accepted")
			}
		})
	}
}

// writeOtherCACert writes a self-signed client certificate and its key,
// from no CA the proxy trusts.
func writeOtherCACert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "billing-app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
