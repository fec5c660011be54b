package pgtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// defaultCertHosts returns the names in the local server's certificate.
func defaultCertHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// certValidity is how long generated certificates are valid.
const certValidity = 365 * 24 * time.Hour

// newCA generates a self-signed ECDSA P-256 certificate authority.
func newCA(commonName string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pgtest: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"pgtest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pgtest: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pgtest: parse CA certificate: %w", err)
	}
	return cert, key, nil
}

// issueCert generates an ECDSA P-256 key and a certificate for hosts (DNS
// names or IP addresses), usable by servers and clients, signed by the CA.
// It returns both in PEM.
func issueCert(caCert *x509.Certificate, caKey crypto.Signer, hosts []string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("pgtest: issue certificate: no hosts")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pgtest: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"pgtest"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pgtest: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pgtest: marshal key: %w", err)
	}
	return certToPEM(der), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func certToPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pgtest: certificate serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// writeFile writes data to path with mode perm and, when ra is not nil,
// gives it to that user.
func writeFile(path string, data []byte, perm os.FileMode, ra *runAs) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	// WriteFile applies the umask only when it creates the file.
	if err := os.Chmod(path, perm); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if ra != nil {
		if err := os.Chown(path, int(ra.uid), int(ra.gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	return nil
}

// IssueCert signs a new certificate for hosts (DNS names or IP addresses;
// default localhost, 127.0.0.1 and ::1) with the cluster's CA, which
// clients trust through CAFile, and writes it and its key (mode 0600) as
// PEM files in the cluster directory. The certificate is valid for server
// and client authentication.
func (c *Cluster) IssueCert(hosts ...string) (certFile, keyFile string, err error) {
	if c.CACert == nil || c.CAKey == nil {
		return "", "", fmt.Errorf("pgtest: issue certificate: cluster has no CA")
	}
	if len(hosts) == 0 {
		hosts = defaultCertHosts()
	}
	certPEM, keyPEM, err := issueCert(c.CACert, c.CAKey, hosts)
	if err != nil {
		return "", "", err
	}
	n := c.certSeq.Add(1)
	certFile = filepath.Join(c.Dir, fmt.Sprintf("issued-%d.crt", n))
	keyFile = filepath.Join(c.Dir, fmt.Sprintf("issued-%d.key", n))
	if err := writeFile(keyFile, keyPEM, 0o600, nil); err != nil {
		return "", "", err
	}
	if err := writeFile(certFile, certPEM, 0o644, nil); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// CertPool returns a pool holding the cluster's CA, for tls.Config.RootCAs
// or ClientCAs.
func (c *Cluster) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	if c.CACert != nil {
		p.AddCert(c.CACert)
	}
	return p
}
