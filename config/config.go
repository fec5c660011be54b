package config

import (
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/kms"
)

// Defaults for optional settings.
const (
	DefaultListen          = "127.0.0.1:6432"
	DefaultAdminListen     = "127.0.0.1:9187"
	DefaultShutdownTimeout = 30 * time.Second
	DefaultConnectTimeout  = 10 * time.Second
	DefaultMaxMessageBytes = 1<<30 - 1
)

// TLS modes for the upstream connection, as libpq's sslmode.
const (
	TLSDisable    = "disable"
	TLSPrefer     = "prefer"
	TLSRequire    = "require"
	TLSVerifyCA   = "verify-ca"
	TLSVerifyFull = "verify-full"
)

// Config is a validated configuration. Fields hold the YAML values after
// defaults are applied; Keys holds the resolved key material.
type Config struct {
	Listen          string        `yaml:"listen"`
	Upstream        string        `yaml:"upstream"`
	UpstreamTLS     UpstreamTLS   `yaml:"upstream_tls"`
	ClientTLS       ClientTLS     `yaml:"client_tls"`
	AdminListen     string        `yaml:"admin_listen"`
	Keys            Keys          `yaml:"keys"`
	Encrypt         []Table       `yaml:"encrypt"`
	OnUnsupported   string        `yaml:"on_unsupported"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	ConnectTimeout  time.Duration `yaml:"connect_timeout"`
	MaxMessageBytes int           `yaml:"max_message_bytes"`
	// EventLoops: 0 picks for the machine, -1 relays on goroutines only.
	EventLoops int `yaml:"event_loops"`
	// Audit configures the PHI access audit log; off when File is "".
	Audit Audit `yaml:"audit"`

	// Path is the file the configuration was read from.
	Path string `yaml:"-"`
}

// UpstreamTLS configures the proxy's connection to PostgreSQL.
type UpstreamTLS struct {
	Mode       string `yaml:"mode"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`   // client certificate for PostgreSQL, optional
	KeyFile    string `yaml:"key_file"`    // its key
	ServerName string `yaml:"server_name"` // overrides the host name checked by verify-full
}

// ClientTLS configures TLS between applications and the proxy. Both files set
// means TLS is offered to clients; neither set means it is refused.
type ClientTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Mode says whether a client may connect without TLS: prefer (the
	// default: TLS offered, plaintext accepted) or require (a client that
	// does not start TLS is refused, as pg_hba.conf's hostssl lines do).
	Mode string `yaml:"mode"`
	// CAFile holds the certificates client certificates must chain to;
	// ClientAuth says whether a client must present one: none (the
	// default), verify (checked when given) or require.
	CAFile     string `yaml:"ca_file"`
	ClientAuth string `yaml:"client_auth"`
}

// Modes of ClientTLS.Mode.
const (
	ClientTLSPrefer  = "prefer"
	ClientTLSRequire = "require"
)

// Client certificate policies of ClientTLS.ClientAuth.
const (
	ClientAuthNone    = "none"
	ClientAuthVerify  = "verify"
	ClientAuthRequire = "require"
)

// Audit configures the PHI access audit log: one JSON line per statement
// that touches a policy column, and per refused statement.
type Audit struct {
	// File is the file appended to ("-" for standard output).
	File string `yaml:"file"`
	// Queue is how many events may wait to be written (default 10000).
	Queue int `yaml:"queue"`
	// OnFull says what a session does when the queue is full: block
	// (wait: no event is lost) or drop (go on; the event is counted in
	// pgcrypt_audit_events_total{result="dropped"}).
	OnFull string `yaml:"on_full"`
}

// Enabled reports whether the audit log is on.
func (a Audit) Enabled() bool { return a.File != "" }

// Enabled reports whether the proxy offers TLS to its clients.
func (c ClientTLS) Enabled() bool { return c.CertFile != "" }

// Keys lists the key versions and which one encrypts new values.
type Keys struct {
	Active   string            `yaml:"active"`
	Versions map[string]KeyRef `yaml:"versions"`

	// Material is each version's key, resolved from its source by Load.
	Material map[string]cipher.Key `yaml:"-"`
}

// KeyRef says where one key version comes from: an environment variable,
// a file, or a data key wrapped by a KMS (AWSKMS with Ciphertext or
// CiphertextFile).
type KeyRef struct {
	Env            string  `yaml:"env"`
	File           string  `yaml:"file"`
	AWSKMS         *AWSKMS `yaml:"aws_kms"`
	Ciphertext     string  `yaml:"ciphertext"`      // the wrapped key, base64
	CiphertextFile string  `yaml:"ciphertext_file"` // a file holding it (base64 or raw)
}

// AWSKMS names the AWS KMS key that wrapped a data key.
type AWSKMS struct {
	KeyID    string `yaml:"key_id"`   // key id, ARN or alias/NAME
	Region   string `yaml:"region"`   // default: AWS_REGION
	Endpoint string `yaml:"endpoint"` // default: the region's; a VPC endpoint or an emulator
}

// Source returns the cipher key source the reference names.
func (k KeyRef) Source(lookupEnv func(string) (string, bool)) cipher.KeySource {
	switch {
	case k.AWSKMS != nil:
		return kms.Source{U: kms.AWS{KeyID: k.AWSKMS.KeyID, Region: k.AWSKMS.Region, Endpoint: k.AWSKMS.Endpoint},
			Wrapped: k.Ciphertext, WrappedFile: k.CiphertextFile}
	case k.File != "":
		return cipher.FileSource{Path: k.File}
	}
	return cipher.EnvSource{Name: k.Env, LookupEnv: lookupEnv}
}

// Table is one encrypt entry: a table and its policy columns.
type Table struct {
	Table   string   `yaml:"table"`
	Columns []Column `yaml:"columns"`

	// Schema and Name are Table split and normalised (unquoted names folded
	// to lower case, unqualified meaning public).
	Schema string `yaml:"-"`
	Name   string `yaml:"-"`
}

// Search modes.
const (
	SearchNone     = ""
	SearchEquality = "equality"
)

// Column is one policy column.
type Column struct {
	Name           string  `yaml:"name"`
	Search         string  `yaml:"search"`
	AssociatedData *string `yaml:"associated_data"`

	// Ident is Name normalised like Table.Name.
	Ident string `yaml:"-"`
}

// Deterministic reports whether the column uses deterministic encryption.
func (c Column) Deterministic() bool { return c.Search == SearchEquality }

// AssociatedDataFor returns the associated data bytes that bind values to
// this column: schema.table.column by default, nil for "none", or the given
// string.
func (c Column) AssociatedDataFor(t Table) []byte {
	switch {
	case c.AssociatedData == nil || *c.AssociatedData == "column":
		return []byte(t.Schema + "." + t.Name + "." + c.Ident)
	case *c.AssociatedData == "none":
		return nil
	default:
		return []byte(*c.AssociatedData)
	}
}

// Unsupported statement policies.
const (
	OnUnsupportedReject = "reject"
	OnUnsupportedAllow  = "allow"
)
