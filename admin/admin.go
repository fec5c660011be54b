// Package admin serves pgcrypt-proxy's operational HTTP endpoints:
// /metrics (Prometheus text format), /healthz (the process is alive) and
// /readyz (the proxy accepts sessions and PostgreSQL is reachable).
package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyFunc reports why the proxy is not ready, or nil when it is.
type ReadyFunc func(ctx context.Context) error

// Option adds an optional endpoint.
type Option func(*http.ServeMux)

// WithPprof serves net/http/pprof under /debug/pprof/, for profiling the
// proxy under load. Profiles show code, not data, but keep admin_listen
// private anyway.
func WithPprof() Option {
	return func(mux *http.ServeMux) {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
}

// Handler returns the admin endpoints.
func Handler(gatherer prometheus.Gatherer, ready ReadyFunc, opts ...Option) http.Handler {
	mux := http.NewServeMux()
	for _, o := range opts {
		o(mux)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

// UpstreamReachable returns a readiness check that opens (and closes) a TCP
// connection to addr.
func UpstreamReachable(addr string) ReadyFunc {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return errors.New("PostgreSQL at " + addr + " is unreachable: " + err.Error())
		}
		return c.Close()
	}
}

// Serve runs the admin endpoints on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
