package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// TLS modes, as libpq's sslmode.
const (
	TLSDisable    = "disable"
	TLSPrefer     = "prefer"
	TLSRequire    = "require"
	TLSVerifyCA   = "verify-ca"
	TLSVerifyFull = "verify-full"
)

// UpstreamTLS says how the proxy secures its connections to PostgreSQL.
type UpstreamTLS struct {
	Mode   string
	Config *tls.Config // nil for disable
}

// UpstreamTLSOptions are the settings NewUpstreamTLS turns into a tls.Config.
type UpstreamTLSOptions struct {
	Mode       string
	CAFile     string // roots for verify-ca and verify-full; empty means the system roots
	CertFile   string // optional client certificate
	KeyFile    string
	ServerName string // host name verify-full checks; defaults to the upstream host
}

// NewUpstreamTLS builds the TLS settings for mode, with libpq's semantics:
// prefer and require encrypt without verifying (require verifies the chain,
// like verify-ca, when a CA file is given), verify-ca checks the chain only,
// verify-full checks the chain and the host name.
func NewUpstreamTLS(o UpstreamTLSOptions, upstreamHost string) (UpstreamTLS, error) {
	if o.Mode == TLSDisable {
		return UpstreamTLS{Mode: TLSDisable}, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: upstreamHost}
	if o.ServerName != "" {
		cfg.ServerName = o.ServerName
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return UpstreamTLS{}, fmt.Errorf("loading upstream client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	var roots *x509.CertPool
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return UpstreamTLS{}, fmt.Errorf("reading upstream_tls.ca_file: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return UpstreamTLS{}, fmt.Errorf("upstream_tls.ca_file %s holds no PEM certificate", o.CAFile)
		}
	}
	switch o.Mode {
	case TLSPrefer, TLSRequire:
		cfg.InsecureSkipVerify = true
		if o.Mode == TLSRequire && roots != nil {
			cfg.VerifyConnection = verifyChain(roots)
		}
	case TLSVerifyCA:
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = verifyChain(roots)
	case TLSVerifyFull:
		cfg.RootCAs = roots
	default:
		return UpstreamTLS{}, fmt.Errorf("unknown upstream TLS mode %q", o.Mode)
	}
	return UpstreamTLS{Mode: o.Mode, Config: cfg}, nil
}

// verifyChain checks the server's certificate chain against roots without
// checking the host name (verify-ca). A nil pool means the system roots.
func verifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("server sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
}

// errTLSRefused means PostgreSQL answered 'N' to SSLRequest in a mode that
// needs TLS.
var errTLSRefused = errors.New("PostgreSQL refused TLS (answered N to SSLRequest); set upstream_tls.mode to prefer or disable, or enable ssl on the server")

var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// dialUpstream opens a connection to PostgreSQL and negotiates TLS as
// configured. The returned error says whether the TCP or the TLS step failed.
func dialUpstream(ctx context.Context, addr string, t UpstreamTLS) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &upstreamError{step: "connect", err: err}
	}
	if t.Mode == TLSDisable {
		return conn, nil
	}
	tc, err := startTLS(ctx, conn, t)
	if err != nil {
		conn.Close()
		return nil, &upstreamError{step: "tls", err: err}
	}
	return tc, nil
}

// startTLS sends SSLRequest and, on 'S', runs the handshake. It reads the
// one-byte answer straight from the socket, so no bytes the server might
// send before the handshake can be taken for TLS data.
func startTLS(ctx context.Context, conn net.Conn, t UpstreamTLS) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
		defer conn.SetDeadline(timeZero)
	}
	if _, err := conn.Write(sslRequest); err != nil {
		return nil, fmt.Errorf("sending SSLRequest: %w", err)
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, fmt.Errorf("reading the answer to SSLRequest: %w", err)
	}
	switch answer[0] {
	case 'S':
		tc := tls.Client(conn, t.Config)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake with PostgreSQL: %w", err)
		}
		return tc, nil
	case 'N':
		if t.Mode == TLSPrefer {
			return conn, nil
		}
		return nil, errTLSRefused
	default:
		return nil, fmt.Errorf("unexpected answer %q to SSLRequest", answer[0])
	}
}

// upstreamError records which step of reaching PostgreSQL failed.
type upstreamError struct {
	step string // "connect" or "tls"
	err  error
}

func (e *upstreamError) Error() string {
	if e.step == "tls" {
		return "TLS to PostgreSQL: " + e.err.Error()
	}
	return "connecting to PostgreSQL: " + e.err.Error()
}

func (e *upstreamError) Unwrap() error { return e.err }
