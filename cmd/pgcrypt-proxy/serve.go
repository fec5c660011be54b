package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/admin"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/audit"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/config"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

func defaultConfigPath(e env) string {
	if p, ok := e.lookupEnv("PGCRYPT_CONFIG"); ok && p != "" {
		return p
	}
	return "config.yaml"
}

func runServe(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("serve", e)
	cfgPath := fs.String("config", defaultConfigPath(e), "configuration file; defaults to $PGCRYPT_CONFIG when set")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error (debug logs protocol events, never values)")
	pprofOn := fs.Bool("pprof", false, "serve Go profiles under /debug/pprof/ on admin_listen")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	logger, err := newLogger(e.stderr, *logFormat, *logLevel)
	if err != nil {
		return &usageError{msg: err.Error()}
	}
	cfg, err := config.Load(ctx, *cfgPath, config.WithLookupEnv(e.lookupEnv))
	if err != nil {
		return err
	}
	return serve(ctx, cfg, logger, serveOptions{pprof: *pprofOn, lookupEnv: e.lookupEnv, stdout: e.stdout})
}

// serveOptions are serve's settings that do not belong in the config file.
type serveOptions struct {
	pprof     bool // serve /debug/pprof/ on the admin listener
	lookupEnv func(string) (string, bool)
	stdout    io.Writer // audit.file: -
}

func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, so serveOptions) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.New(reg)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	host, _, _ := net.SplitHostPort(cfg.Upstream)
	upTLS, err := proxy.NewUpstreamTLS(proxy.UpstreamTLSOptions{
		Mode:       cfg.UpstreamTLS.Mode,
		CAFile:     cfg.UpstreamTLS.CAFile,
		CertFile:   cfg.UpstreamTLS.CertFile,
		KeyFile:    cfg.UpstreamTLS.KeyFile,
		ServerName: cfg.UpstreamTLS.ServerName,
	}, host)
	if err != nil {
		return err
	}
	var clientTLS *tls.Config
	if cfg.ClientTLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cfg.ClientTLS.CertFile, cfg.ClientTLS.KeyFile)
		if err != nil {
			return fmt.Errorf("client_tls: %w", err)
		}
		clientTLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"postgresql"},
		}
		if a := cfg.ClientTLS.ClientAuth; a == config.ClientAuthVerify || a == config.ClientAuthRequire {
			pem, err := os.ReadFile(cfg.ClientTLS.CAFile)
			if err != nil {
				return fmt.Errorf("client_tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("client_tls.ca_file: %s holds no PEM certificate", cfg.ClientTLS.CAFile)
			}
			clientTLS.ClientCAs = pool
			clientTLS.ClientAuth = tls.VerifyClientCertIfGiven
			if a == config.ClientAuthRequire {
				clientTLS.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
	}
	var auditLog proxy.AuditLog
	var auditLogger *audit.Logger
	if cfg.Audit.Enabled() {
		auditLogger, err = audit.New(audit.Options{
			Path: cfg.Audit.File, Stdout: so.stdout, Queue: cfg.Audit.Queue, OnFull: audit.Overflow(cfg.Audit.OnFull), Metrics: m,
			OnError: func(err error) { logger.Error("cannot write the audit log; events are counted as errors", "err", err) },
		})
		if err != nil {
			return err
		}
		// Closed last: sessions draining at shutdown still log.
		defer auditLogger.Close()
		auditLog = auditLogger
	}
	policy, err := buildPolicy(cfg, m)
	if err != nil {
		return err
	}
	srv, err := proxy.New(proxy.Options{
		Policy:           policy,
		Upstream:         cfg.Upstream,
		UpstreamTLS:      upTLS,
		ClientTLS:        clientTLS,
		RequireClientTLS: cfg.ClientTLS.Mode == config.ClientTLSRequire,
		ConnectTimeout:   cfg.ConnectTimeout,
		MaxMessageBytes:  cfg.MaxMessageBytes,
		EventLoops:       cfg.EventLoops,
		Audit:            auditLog,
		Logger:           logger,
		Metrics:          m,
	})
	if err != nil {
		return err
	}

	pl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	al, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		pl.Close()
		return fmt.Errorf("admin_listen: %w", err)
	}
	upstreamUp := admin.UpstreamReachable(cfg.Upstream)
	ready := func(ctx context.Context) error {
		if !srv.Ready() {
			return errors.New("shutting down")
		}
		return upstreamUp(ctx)
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	adminDone := make(chan error, 1)
	var adminOpts []admin.Option
	if so.pprof {
		adminOpts = append(adminOpts, admin.WithPprof())
	}
	go func() { adminDone <- admin.Serve(adminCtx, al, admin.Handler(reg, ready, adminOpts...)) }()
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- srv.Serve(pl) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reloadCtx, stopReload := context.WithCancel(context.Background())
	defer stopReload()
	rl := &reloader{path: cfg.Path, lookupEnv: so.lookupEnv, log: logger, m: m, srv: srv, current: cfg, audit: auditLogger}
	go rl.run(reloadCtx, hup)

	logger.Info("pgcrypt-proxy started", "version", version, "listen", pl.Addr().String(),
		"admin", al.Addr().String(), "upstream", cfg.Upstream, "upstream_tls", cfg.UpstreamTLS.Mode,
		"client_tls", cfg.ClientTLS.Enabled(), "client_auth", cfg.ClientTLS.ClientAuth, "policy_tables", len(cfg.Encrypt), "active_key", cfg.Keys.Active,
		"audit", cfg.Audit.File)

	select {
	case <-ctx.Done():
		logger.Info("shutting down: no new connections; waiting for sessions", "drain_timeout", cfg.ShutdownTimeout.String())
	case err := <-proxyDone:
		return fmt.Errorf("proxy listener: %w", err)
	case err := <-adminDone:
		srv.Shutdown(context.Background())
		return fmt.Errorf("admin listener: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	err = srv.Shutdown(sctx)
	<-proxyDone
	stopAdmin()
	<-adminDone
	if err != nil {
		return err
	}
	logger.Info("stopped", "drained_in", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
}

// buildPolicy turns the encrypt section into the proxy's policy, or nil
// when it lists no table.
func buildPolicy(cfg *config.Config, m *metrics.Metrics) (*proxy.Policy, error) {
	specs, kr, err := policyParts(cfg)
	if err != nil || specs == nil {
		return nil, err
	}
	return proxy.NewPolicy(specs, kr, cfg.OnUnsupported == config.OnUnsupportedAllow, m)
}

// policyParts returns the encrypt section's columns (nil when it lists no
// table) and the keyring.
func policyParts(cfg *config.Config) ([]proxy.ColumnSpec, *cipher.Keyring, error) {
	if len(cfg.Encrypt) == 0 {
		return nil, nil, nil
	}
	kr, err := cipher.NewKeyring(cfg.Keys.Active, cfg.Keys.Material)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: %w", err)
	}
	var specs []proxy.ColumnSpec
	for _, t := range cfg.Encrypt {
		for _, c := range t.Columns {
			specs = append(specs, proxy.ColumnSpec{
				Schema: t.Schema, Table: t.Name, Column: c.Ident,
				Deterministic:  c.Deterministic(),
				AssociatedData: c.AssociatedDataFor(t),
			})
		}
	}
	return specs, kr, nil
}
