package proxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// The proxy hands each client its own cancel secret (keeping PostgreSQL's
// process ID, so pg_backend_pid() and the key agree) and maps it to the
// server's. A CancelRequest is forwarded only for a key the proxy issued, to
// the backend it belongs to, and the server's secret never reaches clients.

type cancelKey struct {
	pid    uint32
	secret string
}

type cancelTarget struct {
	secret []byte // the server's secret for pid
}

type cancelRegistry struct {
	mu sync.Mutex
	m  map[cancelKey]cancelTarget
}

// issue records the server's key and returns the secret for the client.
func (r *cancelRegistry) issue(pid uint32, serverSecret []byte) (cancelKey, []byte, error) {
	secret := make([]byte, len(serverSecret))
	if _, err := rand.Read(secret); err != nil {
		return cancelKey{}, nil, fmt.Errorf("making a cancel secret: %w", err)
	}
	k := cancelKey{pid: pid, secret: string(secret)}
	r.mu.Lock()
	r.m[k] = cancelTarget{secret: append([]byte(nil), serverSecret...)}
	r.mu.Unlock()
	return k, secret, nil
}

func (r *cancelRegistry) forget(k cancelKey) {
	r.mu.Lock()
	delete(r.m, k)
	r.mu.Unlock()
}

func (r *cancelRegistry) lookup(k cancelKey) (cancelTarget, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.m[k]
	return t, ok
}

// forwardCancel handles a CancelRequest packet (length prefix included).
func (s *Server) forwardCancel(packet []byte) {
	if len(packet) < 16 {
		s.m.Error(metrics.ErrClientProtocol)
		return
	}
	pid := binary.BigEndian.Uint32(packet[8:12])
	k := cancelKey{pid: pid, secret: string(packet[12:])}
	t, ok := s.cancels.lookup(k)
	if !ok {
		s.m.Error(metrics.ErrCancelUnknown)
		s.log.Info("cancel request with an unknown key ignored", "pid", pid)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnectTimeout)
	defer cancel()
	// The same TLS as sessions: the key stays off the wire when they do.
	conn, err := dialUpstream(ctx, s.opts.Upstream, s.opts.UpstreamTLS)
	if err != nil {
		s.m.Error(metrics.ErrUpstreamConnect)
		s.log.Warn("forwarding cancel request", "pid", pid, "err", err)
		return
	}
	defer conn.Close()
	out := make([]byte, 12, 12+len(t.secret))
	binary.BigEndian.PutUint32(out[0:], uint32(12+len(t.secret)))
	binary.BigEndian.PutUint32(out[4:], wire.CodeCancel)
	binary.BigEndian.PutUint32(out[8:], pid)
	out = append(out, t.secret...)
	if _, err := conn.Write(out); err != nil {
		s.log.Warn("forwarding cancel request", "pid", pid, "err", err)
		return
	}
	// PostgreSQL closes the connection once it has acted; wait for that so
	// the cancel has been delivered when the client sees its socket close.
	var b [1]byte
	conn.SetReadDeadline(deadline(ctx))
	conn.Read(b[:])
	s.m.CancelRequests.Inc()
}
