package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/metrics"
)

// Options configure a Server.
type Options struct {
	Upstream    string      // PostgreSQL host:port
	UpstreamTLS UpstreamTLS // how to secure the upstream connection
	ClientTLS   *tls.Config // nil refuses TLS from clients
	// RequireClientTLS refuses a client that does not start TLS (with
	// FATAL 28000, as a pg_hba.conf hostssl rule would); it needs
	// ClientTLS.
	RequireClientTLS bool
	ConnectTimeout   time.Duration // for reaching PostgreSQL
	// StartupTimeout bounds a client's startup and authentication; 0
	// follows PostgreSQL's authentication_timeout, as the proxy last read
	// it (one minute, its default, until a session has read it).
	StartupTimeout  time.Duration
	MaxMessageBytes int     // largest message body accepted from either side
	Policy          *Policy // columns to encrypt; nil relays every statement unchanged
	// EventLoops is how many event loops relay sessions whose connections
	// are both plain sockets (Linux): 0 means DefaultEventLoops, a negative
	// number runs every session on goroutines instead.
	EventLoops int
	// IdleRetire is how long a session on an event loop waits idle, in
	// either direction, before that direction's coroutine is retired and
	// its stack given back; it starts again at the next message. 0 means
	// DefaultIdleRetire.
	IdleRetire time.Duration
	// CatalogMaxAge bounds how long a session trusts what it read of the
	// schema before reading it again (0 means DefaultCatalogMaxAge): the
	// delay with which schema changes made on other connections are seen.
	CatalogMaxAge time.Duration
	// Audit, when set, receives one event per statement that touches a
	// policy column and per statement the proxy refuses (see audit.Event).
	Audit   AuditLog
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// DefaultEventLoops is one event loop per two CPUs (GOMAXPROCS), at least
// one. A loop that shares its core with nothing else keeps the runtime from
// handing its processor to another thread whenever a write is preempted,
// which measured cheaper than one loop per CPU on a 2-core machine.
func DefaultEventLoops() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Server accepts client connections and runs their sessions.
type Server struct {
	opts    Options
	log     *slog.Logger
	m       *metrics.Metrics
	cancels cancelRegistry

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	draining  bool
	wg        sync.WaitGroup // one per connection goroutine
	idle      chan struct{}  // closed when draining and no session is left
	// startups is the parent of every connection's startup context;
	// Shutdown cancels it, which ends the logins still under way (a
	// client that sends nothing would otherwise hold Shutdown until its
	// startup timeout).
	startups    context.Context
	endStartups context.CancelFunc

	nextID atomic.Uint64
	// authTimeout is PostgreSQL's authentication_timeout as a session
	// last read it (0: not yet), for startupTimeout.
	authTimeout atomic.Int64
	// keywordsDiffer are the words the server's grammar and the proxy's
	// parser treat differently, read with the first catalog.
	keywordsDiffer atomic.Pointer[[]string]
	// wholeTableOIDs are the functions that read whole tables (see
	// rewrite.WholeTableFuncNames), refused in a FunctionCall message.
	wholeTableOIDs atomic.Pointer[map[uint32]bool]
	// policy is the policy new sessions take (Options.Policy, then
	// SetPolicy); a session keeps the one it started with.
	policy atomic.Pointer[Policy]

	loopsOnce sync.Once
	loops     []*eventLoop // started with the first session that can use them
	// bufs lends sessions their write buffers while they have bytes to
	// send: an idle session holds none.
	bufs *wire.Buffers
}

// New returns a Server. Logger and Metrics are required.
func New(opts Options) (*Server, error) {
	if opts.Upstream == "" {
		return nil, errors.New("proxy: no upstream address")
	}
	if opts.Logger == nil || opts.Metrics == nil {
		return nil, errors.New("proxy: Logger and Metrics are required")
	}
	if opts.RequireClientTLS && opts.ClientTLS == nil {
		return nil, errors.New("proxy: RequireClientTLS needs ClientTLS")
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.UpstreamTLS.Mode == "" {
		opts.UpstreamTLS.Mode = TLSDisable
	}
	if opts.EventLoops == 0 {
		opts.EventLoops = DefaultEventLoops()
	}
	if opts.CatalogMaxAge <= 0 {
		opts.CatalogMaxAge = DefaultCatalogMaxAge
	}

	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		m:         opts.Metrics,
		cancels:   cancelRegistry{m: map[cancelKey]cancelTarget{}},
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		bufs:      wire.NewBuffers(),
	}
	s.startups, s.endStartups = context.WithCancel(context.Background())
	s.policy.Store(opts.Policy)
	return s, nil
}

// SetPolicy replaces the policy (columns and keys) that sessions opened
// from now on use; nil relays every statement unchanged. A session keeps
// the policy it started with until it ends, so a statement is never
// analysed under one policy and its answer decrypted under another. To
// change only the keys, for every session, use Policy().SetKeys.
func (s *Server) SetPolicy(p *Policy) { s.policy.Store(p) }

// Policy returns the policy new sessions get (nil when there is none).
func (s *Server) Policy() *Policy { return s.policy.Load() }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts connections on ln until Shutdown. It always closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer ln.Close()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isDraining() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors or similar: wait, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accepting connections: %w", err)
		}
		backoff = 0
		s.wg.Add(1)
		go s.handle(conn) // calls s.wg.Done, maybe from an event loop
	}
}

// Ready reports whether the server accepts new sessions (false while draining).
func (s *Server) Ready() bool { return !s.isDraining() }

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Shutdown stops accepting connections and waits for open sessions to end.
// When ctx is done first, it closes the remaining sessions (each client gets
// a FATAL admin_shutdown error) and waits for them to unwind.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.endStartups()
	s.idle = make(chan struct{})
	if len(s.sessions) == 0 {
		close(s.idle)
	}
	idle := s.idle
	n := len(s.sessions)
	s.mu.Unlock()

	if n > 0 {
		s.log.Info("draining sessions", "sessions", n)
	}
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		s.mu.Lock()
		left := len(s.sessions)
		for sess := range s.sessions {
			sess.abort(abortShutdown)
		}
		s.mu.Unlock()
		s.log.Warn("drain timeout: closing sessions", "sessions", left)
		err = fmt.Errorf("closed %d sessions at the drain timeout: %w", left, ctx.Err())
	}
	s.wg.Wait()
	s.closeLoops()
	return err
}

// loopFor returns the event loop for session id, or nil to use goroutines.
func (s *Server) loopFor(id uint64) *eventLoop {
	if s.opts.EventLoops < 0 {
		return nil
	}
	s.loopsOnce.Do(func() {
		for range s.opts.EventLoops {
			l, err := newEventLoop(s.opts.IdleRetire)
			if err != nil {
				s.log.Warn("no event loop: sessions run on goroutines", "err", err)
				break
			}
			s.loops = append(s.loops, l)
		}
	})
	if len(s.loops) == 0 {
		return nil
	}
	return s.loops[id%uint64(len(s.loops))]
}

// closeLoops stops the event loops; every session has ended.
func (s *Server) closeLoops() {
	s.loopsOnce.Do(func() {}) // no loop may start after this
	for _, l := range s.loops {
		l.close()
	}
}

func (s *Server) addSession(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	if s.draining && len(s.sessions) == 0 && s.idle != nil {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
}

// startupTimeout is how long a client may take to start up and
// authenticate: Options.StartupTimeout, or else PostgreSQL's own
// authentication_timeout, so an abandoned login is let go when the server
// would let it go.
func (s *Server) startupTimeout() time.Duration {
	if s.opts.StartupTimeout > 0 {
		return s.opts.StartupTimeout
	}
	if d := time.Duration(s.authTimeout.Load()); d > 0 {
		return d
	}
	return time.Minute
}

// DefaultIdleRetire is Options.IdleRetire's default. Starting a retired
// direction again costs a few microseconds, so only sessions quiet for
// this long pay it, while an idle session keeps about 2 kB instead of 4 to
// 16 kB of stacks.
const DefaultIdleRetire = time.Second
