package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/admin"
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
	return serve(ctx, cfg, logger, nil)
}

// listeners lets tests hand serve already-bound sockets; nil fields mean
// listen on the configured addresses.
type listeners struct {
	proxy, admin net.Listener
	ready        chan<- struct{} // closed once both accept connections
}

func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, ls *listeners) error {
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
	}
	srv, err := proxy.New(proxy.Options{
		Upstream:        cfg.Upstream,
		UpstreamTLS:     upTLS,
		ClientTLS:       clientTLS,
		ConnectTimeout:  cfg.ConnectTimeout,
		MaxMessageBytes: cfg.MaxMessageBytes,
		Logger:          logger,
		Metrics:         m,
	})
	if err != nil {
		return err
	}

	if ls == nil {
		ls = &listeners{}
	}
	pl, al := ls.proxy, ls.admin
	if pl == nil {
		if pl, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	if al == nil {
		if al, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			pl.Close()
			return fmt.Errorf("admin_listen: %w", err)
		}
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
	go func() { adminDone <- admin.Serve(adminCtx, al, admin.Handler(reg, ready)) }()
	proxyDone := make(chan error, 1)
	go func() { proxyDone <- srv.Serve(pl) }()

	logger.Info("pgcrypt-proxy started", "version", version, "listen", pl.Addr().String(),
		"admin", al.Addr().String(), "upstream", cfg.Upstream, "upstream_tls", cfg.UpstreamTLS.Mode,
		"client_tls", cfg.ClientTLS.Enabled(), "policy_tables", len(cfg.Encrypt), "active_key", cfg.Keys.Active)
	if ls.ready != nil {
		close(ls.ready)
	}

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
