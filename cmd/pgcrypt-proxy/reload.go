package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/audit"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/config"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/proxy"
)

// reloader re-reads the configuration and keys on SIGHUP and when the
// config file or a key file changes, and gives new sessions the new
// policy. An invalid configuration keeps the previous one in force.
type reloader struct {
	path      string
	lookupEnv func(string) (string, bool)
	log       *slog.Logger
	m         *metrics.Metrics
	srv       *proxy.Server
	current   *config.Config
	watcher   *fsnotify.Watcher // nil when file watching is unavailable
	audit     *audit.Logger     // reopened on SIGHUP, for logrotate; nil when off
	watched   map[string]bool   // directories watched
}

// watchedFiles are the files whose change triggers a reload: the config
// and the key files it names.
func watchedFiles(cfg *config.Config) []string {
	files := []string{cfg.Path}
	for _, k := range cfg.Keys.Versions {
		if k.File != "" {
			files = append(files, k.File)
		}
	}
	return files
}

// watch watches the directories of the current config's files: a
// directory watch also sees a file replaced by rename, as editors and
// Kubernetes (ConfigMap and Secret volumes) do.
func (r *reloader) watch() {
	if r.watcher == nil {
		return
	}
	for _, f := range watchedFiles(r.current) {
		dir := filepath.Dir(f)
		if r.watched[dir] {
			continue
		}
		if err := r.watcher.Add(dir); err != nil {
			r.log.Warn("cannot watch for configuration changes; reload with SIGHUP", "dir", dir, "err", err)
			continue
		}
		r.watched[dir] = true
	}
}

// relevant reports whether an event touches a watched file (or, for a
// Kubernetes volume, its ..data symlink).
func (r *reloader) relevant(ev fsnotify.Event) bool {
	base := filepath.Base(ev.Name)
	if base == "..data" {
		return true
	}
	for _, f := range watchedFiles(r.current) {
		if filepath.Clean(ev.Name) == filepath.Clean(f) {
			return true
		}
	}
	return false
}

func (r *reloader) run(ctx context.Context, hup <-chan os.Signal) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		r.log.Warn("cannot watch for configuration changes; reload with SIGHUP", "err", err)
	} else {
		r.watcher = w
		defer w.Close()
	}
	r.watched = map[string]bool{}
	r.watch()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if r.watcher != nil {
		events, errs = r.watcher.Events, r.watcher.Errors
	}
	// Editors write a file in several steps: reload once they are done.
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("SIGHUP: reloading the configuration")
			if r.audit != nil {
				if err := r.audit.Reopen(); err != nil {
					r.log.Error("audit log not reopened; still writing to the old file", "err", err)
				}
			}
			r.reload(ctx)
		case ev := <-events:
			if r.relevant(ev) {
				debounce.Reset(200 * time.Millisecond)
			}
		case err := <-errs:
			r.log.Warn("watching the configuration", "err", err)
		case <-debounce.C:
			r.log.Info("configuration file changed: reloading")
			r.reload(ctx)
		}
	}
}

// install puts cfg's policy in force. When only the keys changed (the same
// columns, modes and associated data), the running policy takes the new
// keys, so open sessions use them too: during a rotation a session that
// outlives it (a pool's) reads and searches values under the new version.
// Otherwise new sessions get a new policy. keysOnly says which it was.
func (r *reloader) install(cfg *config.Config) (keysOnly bool, err error) {
	specs, kr, err := policyParts(cfg)
	if err != nil {
		return false, err
	}
	allow := cfg.OnUnsupported == config.OnUnsupportedAllow
	if cur := r.srv.Policy(); cur != nil && specs != nil && cur.SameColumns(specs, allow) {
		return true, cur.SetKeys(kr)
	}
	var p *proxy.Policy
	if specs != nil {
		if p, err = proxy.NewPolicy(specs, kr, allow, r.m); err != nil {
			return false, err
		}
	}
	r.srv.SetPolicy(p)
	return false, nil
}

// reload loads and installs the configuration, or keeps the current one.
func (r *reloader) reload(ctx context.Context) {
	cfg, err := config.Load(ctx, r.path, config.WithLookupEnv(r.lookupEnv))
	keysOnly := false
	if err == nil {
		keysOnly, err = r.install(cfg)
	}
	if err != nil {
		r.m.ConfigReloads.WithLabelValues("error").Inc()
		r.log.Error("configuration not reloaded; the previous one stays in force", "err", err)
		return
	}
	old := r.current
	r.current = cfg
	r.watch()
	r.m.ConfigReloads.WithLabelValues("ok").Inc()
	if keysOnly {
		r.log.Info("keys reloaded: every session, open or new, uses them from its next statement",
			"active_key", cfg.Keys.Active, "key_versions", len(cfg.Keys.Material))
	} else {
		r.log.Info("configuration reloaded: new sessions use it, open sessions keep theirs until they end",
			"policy_tables", len(cfg.Encrypt), "active_key", cfg.Keys.Active)
	}
	for _, c := range []struct {
		name    string
		changed bool
	}{
		{"listen", old.Listen != cfg.Listen},
		{"admin_listen", old.AdminListen != cfg.AdminListen},
		{"upstream", old.Upstream != cfg.Upstream},
		{"upstream_tls", old.UpstreamTLS != cfg.UpstreamTLS},
		{"client_tls", old.ClientTLS != cfg.ClientTLS},
		{"event_loops", old.EventLoops != cfg.EventLoops},
		{"audit", old.Audit != cfg.Audit},
		{"max_message_bytes", old.MaxMessageBytes != cfg.MaxMessageBytes},
		{"connect_timeout", old.ConnectTimeout != cfg.ConnectTimeout},
		{"shutdown_timeout", old.ShutdownTimeout != cfg.ShutdownTimeout},
	} {
		if c.changed {
			r.log.Warn("changed setting takes effect only at restart", "setting", c.name)
		}
	}
}
