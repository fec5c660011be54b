// Package metrics defines pgcrypt-proxy's Prometheus metrics.
//
// All metrics live on a Metrics value registered on a registry the caller
// passes in; there is no package-level state. Label values are drawn from
// fixed sets (directions, error kinds) so series stay bounded.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds counted by Errors. Keep this set closed: it is a label.
const (
	ErrClientProtocol  = "client_protocol"   // malformed or unexpected message from a client
	ErrClientTLS       = "client_tls"        // TLS handshake with a client failed or was refused
	ErrUpstreamConnect = "upstream_connect"  // could not reach PostgreSQL
	ErrUpstreamTLS     = "upstream_tls"      // TLS with PostgreSQL failed or was refused
	ErrUpstreamLost    = "upstream_lost"     // PostgreSQL closed or broke a live session
	ErrUpstreamProto   = "upstream_protocol" // malformed message from PostgreSQL
	ErrAuthFailed      = "auth_failed"       // PostgreSQL rejected a client's credentials
	ErrCancelUnknown   = "cancel_unknown"    // CancelRequest with a key the proxy never issued
	ErrBackend         = "backend_error"     // ErrorResponse relayed from PostgreSQL
	ErrShutdown        = "shutdown"          // session closed by a drain timeout
	ErrDecrypt         = "decrypt_failed"    // a stored value did not decrypt (wrong key, tampering, moved between columns)
	ErrCatalog         = "catalog"           // the proxy could not read the catalog it needs
)

// Directions for Bytes.
const (
	ClientToServer = "client_to_server"
	ServerToClient = "server_to_client"
)

// Metrics holds every metric the proxy exports.
type Metrics struct {
	ConnectionsActive prometheus.Gauge
	ConnectionsTotal  prometheus.Counter
	QueryDuration     prometheus.Histogram
	UpstreamConnect   prometheus.Histogram
	Bytes             *prometheus.CounterVec
	Errors            *prometheus.CounterVec
	CancelRequests    prometheus.Counter

	// Encryption. Table and column labels come from the policy, so they
	// are bounded by the configuration.
	FieldsEncrypted    *prometheus.CounterVec
	FieldsDecrypted    *prometheus.CounterVec
	PlaintextValues    *prometheus.CounterVec
	CryptoDuration     *prometheus.HistogramVec
	AnalysisDuration   prometheus.Histogram
	StatementsRejected *prometheus.CounterVec
	// ConfigReloads counts reloads of the configuration and keys
	// (SIGHUP or a changed file) by result: ok or error.
	ConfigReloads *prometheus.CounterVec
	// AuditEvents counts PHI access audit events by result: written,
	// dropped (the queue was full and audit.on_full is drop) or error
	// (the file could not be written). AuditQueue is the events waiting.
	AuditEvents *prometheus.CounterVec
	AuditQueue  prometheus.Gauge
	reg         prometheus.Registerer

	// The analysis cache of the current policy (WatchAnalysisCache) and
	// the counts of the caches of policies it replaced.
	cacheMu    sync.Mutex
	cacheStats func() (hits, misses uint64)
	cacheBase  [2]uint64

	// Resolved children, so hot paths skip the label lookup.
	BytesIn, BytesOut prometheus.Counter
	EncryptDuration   prometheus.Observer
	DecryptDuration   prometheus.Observer
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		ConnectionsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgcrypt_client_connections_active",
			Help: "Client connections currently open.",
		}),
		ConnectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgcrypt_client_connections_total",
			Help: "Client connections accepted since start.",
		}),
		QueryDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pgcrypt_query_duration_seconds",
			Help:    "Client-observed time from a query's first message to its ReadyForQuery.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		UpstreamConnect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pgcrypt_upstream_connect_duration_seconds",
			Help:    "Time to open a connection to PostgreSQL, TLS included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_bytes_total",
			Help: "Protocol bytes relayed, by direction.",
		}, []string{"direction"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_errors_total",
			Help: "Errors by kind.",
		}, []string{"kind"}),
		CancelRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgcrypt_cancel_requests_total",
			Help: "CancelRequests forwarded to PostgreSQL.",
		}),
		FieldsEncrypted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_fields_encrypted_total",
			Help: "Values of policy columns encrypted on their way to PostgreSQL.",
		}, []string{"table", "column"}),
		FieldsDecrypted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_fields_decrypted_total",
			Help: "Values of policy columns decrypted on their way to clients.",
		}, []string{"table", "column"}),
		PlaintextValues: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_plaintext_values_total",
			Help: "Values read from policy columns that were not envelopes (stored before backfill) and were passed through.",
		}, []string{"table", "column"}),
		CryptoDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pgcrypt_crypto_duration_seconds",
			Help:    "Time spent encrypting or decrypting the policy values of one message.",
			Buckets: []float64{.000001, .0000025, .000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .005, .01},
		}, []string{"op"}),
		AnalysisDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pgcrypt_analysis_duration_seconds",
			Help:    "Time spent analysing a statement (cache hits included).",
			Buckets: []float64{.0000005, .000001, .0000025, .000005, .00001, .000025, .00005, .0001, .00025, .0005, .001, .005},
		}),
		StatementsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_statements_rejected_total",
			Help: "Statements the proxy refused because they cannot work on ciphertext or would store plaintext, by reason.",
		}, []string{"reason"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_config_reloads_total",
			Help: "Reloads of the configuration and keys (SIGHUP or a changed file), by result: ok, or error (the previous configuration stays in force).",
		}, []string{"result"}),
		AuditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pgcrypt_audit_events_total",
			Help: "PHI access audit events, by result: written, dropped (queue full with audit.on_full: drop) or error (the audit file could not be written).",
		}, []string{"result"}),
		AuditQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pgcrypt_audit_queue_length",
			Help: "PHI access audit events waiting to be written.",
		}),
		reg: reg,
	}
	for _, c := range []prometheus.Collector{
		m.ConnectionsActive, m.ConnectionsTotal, m.QueryDuration, m.UpstreamConnect,
		m.Bytes, m.Errors, m.CancelRequests,
		m.FieldsEncrypted, m.FieldsDecrypted, m.PlaintextValues, m.CryptoDuration,
		m.AnalysisDuration, m.StatementsRejected, m.ConfigReloads,
		m.AuditEvents, m.AuditQueue,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.BytesIn = m.Bytes.WithLabelValues(ClientToServer)
	m.BytesOut = m.Bytes.WithLabelValues(ServerToClient)
	m.EncryptDuration = m.CryptoDuration.WithLabelValues("encrypt")
	m.DecryptDuration = m.CryptoDuration.WithLabelValues("decrypt")
	m.ConfigReloads.WithLabelValues("ok")
	m.ConfigReloads.WithLabelValues("error")
	for _, r := range []string{"written", "dropped", "error"} {
		m.AuditEvents.WithLabelValues(r)
	}
	for _, k := range []string{ErrClientProtocol, ErrClientTLS, ErrUpstreamConnect, ErrUpstreamTLS,
		ErrUpstreamLost, ErrUpstreamProto, ErrAuthFailed, ErrCancelUnknown, ErrBackend, ErrShutdown,
		ErrDecrypt, ErrCatalog} {
		m.Errors.WithLabelValues(k) // export zeros so alerts can use rate() from the start
	}
	return m, nil
}

// Error counts one error of the given kind.
func (m *Metrics) Error(kind string) { m.Errors.WithLabelValues(kind).Inc() }

// WatchAnalysisCache exports the statement analysis cache's counters, read
// from stats at each scrape.
func (m *Metrics) WatchAnalysisCache(stats func() (hits, misses uint64)) error {
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	if m.cacheStats != nil {
		// A reloaded policy brings a new cache: keep the counters
		// monotonic by adding the old one's final counts.
		h, ms := m.cacheStats()
		m.cacheBase[0] += h
		m.cacheBase[1] += ms
		m.cacheStats = stats
		return nil
	}
	m.cacheStats = stats
	read := func(i int) func() float64 {
		return func() float64 {
			m.cacheMu.Lock()
			defer m.cacheMu.Unlock()
			h, ms := m.cacheStats()
			return float64(m.cacheBase[i] + [2]uint64{h, ms}[i])
		}
	}
	for i, result := range []string{"hit", "miss"} {
		c := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "pgcrypt_analysis_cache_total",
			Help:        "Statement analysis cache lookups, by result.",
			ConstLabels: prometheus.Labels{"result": result},
		}, read(i))
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
