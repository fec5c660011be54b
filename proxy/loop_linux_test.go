//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/wire"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (ours, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	ours, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer = <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ours.Close(); peer.Close() })
	return ours, peer
}

// loopFixture is a session between two peers, ready to be adopted.
type loopFixture struct {
	l                      *eventLoop
	s                      *session
	clientPeer, serverPeer net.Conn
}

func newLoopFixture(t *testing.T) *loopFixture {
	t.Helper()
	l, err := newEventLoop(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return newLoopFixtureOn(t, l)
}

func newLoopFixtureOn(t *testing.T, l *eventLoop) *loopFixture {
	t.Helper()
	client, clientPeer := tcpPair(t)
	server, serverPeer := tcpPair(t)
	s := &session{id: 1, client: client, server: server, log: slog.New(slog.DiscardHandler), track: newTracker()}
	s.cr, s.cw = wire.NewReader(client, 0), wire.NewWriter(client)
	s.sr, s.sw = wire.NewReader(server, 0), wire.NewWriter(server)
	s.serverDone = make(chan struct{})
	return &loopFixture{l: l, s: s, clientPeer: clientPeer, serverPeer: serverPeer}
}

// copier relays framed messages from r to w, flushing when r has nothing
// buffered, the way the session's loops do.
func copier(r *wire.Reader, w *wire.Writer) error {
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		typ, n, err := r.Header()
		if err != nil {
			return err
		}
		body, err := r.Body(n)
		if err != nil {
			return err
		}
		if err := w.Message(typ, body); err != nil {
			return err
		}
	}
}

func (f *loopFixture) adoptCopiers(t *testing.T) *loopSession {
	t.Helper()
	return f.adoptWith(t, nil, nil)
}

// adoptWith hands the session to the loop with c2s and s2c as the bodies
// of its directions (nil: a copier), each ended as the session's are.
func (f *loopFixture) adoptWith(t *testing.T, c2s, s2c func()) *loopSession {
	t.Helper()
	s := f.s
	if c2s == nil {
		c2s = func() { copier(s.cr, s.sw) }
	}
	if s2c == nil {
		s2c = func() { copier(s.sr, s.cw) }
	}
	ls, ok := f.l.adopt(s, func() {
		c2s()
		s.closeServer()
	}, func() {
		s2c()
		close(s.serverDone)
		s.closeClient()
	})
	if !ok {
		t.Fatal("adopt refused two plain TCP connections")
	}
	return ls
}

func waitDone(t *testing.T, ls *loopSession) {
	t.Helper()
	select {
	case <-ls.done:
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
}

func frame(typ byte, body []byte) []byte {
	w := &bytes.Buffer{}
	ww := wire.NewWriter(w)
	ww.Message(typ, body)
	ww.Flush()
	return w.Bytes()
}

// TestLoopRelay: both directions at once, with bytes the session had
// already buffered before the hand-over, and a message far larger than the
// socket buffers while the receiving peer reads slowly (writes that block
// and resume on EPOLLOUT).
func TestLoopRelay(t *testing.T) {
	f := newLoopFixture(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	var toServer []byte
	for i := range 500 {
		toServer = append(toServer, frame('Q', []byte{byte(i)})...)
	}
	toServer = append(toServer, frame('d', big)...)
	toServer = append(toServer, frame('X', nil)...)

	// The first message arrives before the hand-over, and the reader
	// takes more than it off the socket.
	if _, err := f.clientPeer.Write(toServer[:4096]); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := f.s.cr.Next(); err != nil || typ != 'Q' {
		t.Fatalf("first message: %q %v", typ, err)
	}
	ls := f.adoptCopiers(t)

	go f.clientPeer.Write(toServer[4096:])
	var toClient []byte
	for i := range 300 {
		toClient = append(toClient, frame('D', bytes.Repeat([]byte{byte(i)}, i*40))...)
	}
	go f.serverPeer.Write(toClient)

	// A lost wake-up shows as a stall: fail it rather than hang.
	f.clientPeer.SetReadDeadline(time.Now().Add(20 * time.Second))
	f.serverPeer.SetReadDeadline(time.Now().Add(20 * time.Second))
	gotClient := make([]byte, len(toClient))
	clientErr := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(f.clientPeer, gotClient)
		clientErr <- err
	}()
	want := toServer[len(frame('Q', []byte{0})):] // all but the message read before
	got := make([]byte, len(want))
	for n := 0; n < len(got); {
		time.Sleep(time.Millisecond) // a slow reader: the relay's writes block
		m, err := f.serverPeer.Read(got[n:min(len(got), n+256<<10)])
		if err != nil {
			t.Fatalf("server peer read after %d bytes: %v", n, err)
		}
		n += m
	}
	if !bytes.Equal(got, want) {
		t.Fatal("server peer got different bytes")
	}
	if err := <-clientErr; err != nil || !bytes.Equal(gotClient, toClient) {
		t.Fatalf("client peer: %v, equal=%v", err, bytes.Equal(gotClient, toClient))
	}

	// The client hangs up: both directions end and both sockets close.
	f.clientPeer.Close()
	waitDone(t, ls)
	f.serverPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := f.serverPeer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("server peer after the end: %v, want EOF", err)
	}
}

// TestLoopAbort: abort from another goroutine (what Shutdown does) ends a
// session whose directions are both waiting to read.
func TestLoopAbort(t *testing.T) {
	f := newLoopFixture(t)
	ls := f.adoptCopiers(t)
	time.Sleep(10 * time.Millisecond) // let both block
	f.s.abort(abortShutdown)
	waitDone(t, ls)
	f.clientPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := f.clientPeer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client peer after abort: %v, want EOF", err)
	}
}

// TestLoopWriteDeadline: a client that never reads cannot hold the
// server-side direction past its write deadline.
func TestLoopWriteDeadline(t *testing.T) {
	f := newLoopFixture(t)
	s := f.s
	werr := make(chan error, 1)
	ls := f.adoptWith(t, nil, func() {
		s.lp.Load().setClientWriteDeadline(time.Now().Add(200 * time.Millisecond))
		chunk := make([]byte, 1<<20)
		var err error
		for err == nil {
			_, err = s.cw.Write(chunk)
		}
		werr <- err
	})
	select {
	case err := <-werr:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write error %v, want a deadline error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write deadline did not fire")
	}
	waitDone(t, ls)
}

// TestLoopAwait: the client side waits for the server side (as a Bind
// waits for its Parse's outcome) without blocking the loop.
func TestLoopAwait(t *testing.T) {
	f := newLoopFixture(t)
	s := f.s
	known := make(chan struct{})
	result := make(chan bool, 1)
	ls := f.adoptWith(t, func() {
		result <- s.await(known)
		copier(s.cr, s.sw)
	}, func() {
		if _, _, err := s.sr.Next(); err == nil {
			close(known)
		}
		copier(s.sr, s.cw)
	})
	select {
	case <-result:
		t.Fatal("await returned before the signal")
	case <-time.After(50 * time.Millisecond):
	}
	f.serverPeer.Write(frame('1', nil))
	select {
	case got := <-result:
		if !got {
			t.Fatal("await reported the server side gone")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("await never returned")
	}
	f.serverPeer.Close() // the server side ends: so does the session
	waitDone(t, ls)
}

// TestLoopFairness: a direction that never has to wait (its socket always
// holds more) still lets the loop's other sessions run.
func TestLoopFairness(t *testing.T) {
	a := newLoopFixture(t)
	b := newLoopFixtureOn(t, a.l)
	const n = 1 << 16
	if _, err := a.clientPeer.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.clientPeer.Write(frame('Q', []byte("ping"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // both sockets hold their bytes

	bServed := make(chan struct{})
	bFirst := make(chan bool, 1)
	sa := a.s
	lsA := a.adoptWith(t, func() {
		one := make([]byte, 1)
		conn := sa.lp.Load().client
		for range n { // one byte per read: never a short read, never a wait
			if _, err := conn.Read(one); err != nil {
				break
			}
		}
		select {
		case <-bServed:
			bFirst <- true
		default:
			bFirst <- false
		}
	}, nil)
	sb := b.s
	lsB := b.adoptWith(t, func() {
		if _, _, err := sb.cr.Next(); err == nil {
			close(bServed)
		}
		copier(sb.cr, sb.sw)
	}, nil)
	select {
	case first := <-bFirst:
		if !first {
			t.Fatal("a session that never waits held the loop until it was done")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the busy session did not finish")
	}
	b.clientPeer.Close()
	waitDone(t, lsA)
	waitDone(t, lsB)
}

// TestLoopDataThenClose: a peer's last bytes and its close can arrive in
// one epoll edge; the short read of the bytes must not be taken to mean
// the socket is drained, or the end is never read and the session hangs.
// Both sides, many times, as the timing decides whether it happens.
func TestLoopDataThenClose(t *testing.T) {
	for i := range 30 {
		fromClient := i%2 == 0
		f := newLoopFixture(t)
		ls := f.adoptCopiers(t)
		time.Sleep(2 * time.Millisecond) // both directions wait to read
		peer, other := f.serverPeer, f.clientPeer
		if fromClient {
			peer, other = f.clientPeer, f.serverPeer
		}
		peer.Write(frame('Q', []byte("select 1\x00")))
		peer.Close()
		other.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(other)
		if err != nil {
			t.Fatalf("round %d (close from the client: %v): after %d bytes: %v; want the message, then EOF", i, fromClient, len(got), err)
		}
		waitDone(t, ls)
	}
}

// TestLoopOffload: a large computation (a big statement's parse or
// encryption) runs off the loop, so the loop's other sessions go on
// meanwhile. The computation here waits until the other session has been
// served: run on the loop, it would wait forever.
func TestLoopOffload(t *testing.T) {
	a := newLoopFixture(t)
	b := newLoopFixtureOn(t, a.l)
	release := make(chan struct{})
	computed := make(chan struct{})
	sa := a.s
	lsA := a.adoptWith(t, func() {
		sa.lp.Load().offload(true, func() { <-release })
		close(computed)
		copier(sa.cr, sa.sw)
	}, nil)
	lsB := b.adoptCopiers(t)
	b.clientPeer.Write(frame('Q', []byte("ping")))
	b.serverPeer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(frame('Q', []byte("ping"))))
	if _, err := io.ReadFull(b.serverPeer, got); err != nil {
		t.Fatalf("the other session was not served while one computed: %v", err)
	}
	close(release)
	select {
	case <-computed:
	case <-time.After(10 * time.Second):
		t.Fatal("the computing direction did not resume")
	}
	a.clientPeer.Close()
	b.clientPeer.Close()
	waitDone(t, lsA)
	waitDone(t, lsB)
}

// TestLoopIdleRetire: directions idle at the top of their loops are
// retired (their bodies return, giving their stacks back) and started
// again from the top by the next message, in either direction, any number
// of times; a close still ends the session.
func TestLoopIdleRetire(t *testing.T) {
	f := newLoopFixture(t) // retires after 1ms
	s := f.s
	var starts [2]atomic.Int32
	// idleCopier is copier with the session's idle wait at the top; it
	// returns true when retired, and ends its side as the session does
	// otherwise.
	idleCopier := func(dir int, r *wire.Reader, w *wire.Writer, idle func(*wire.Reader) bool, end func()) func() {
		return func() {
			starts[dir].Add(1)
			for {
				if r.Buffered() == 0 {
					if err := w.Flush(); err != nil {
						break
					}
					if idle(r) {
						return
					}
				}
				typ, n, err := r.Header()
				if err != nil {
					break
				}
				body, err := r.Body(n)
				if err != nil || w.Message(typ, body) != nil {
					break
				}
			}
			end()
		}
	}
	var ls *loopSession
	ls, ok := f.l.adopt(s,
		idleCopier(0, s.cr, s.sw, func(r *wire.Reader) bool { return ls.idleClient(r) }, s.closeServer),
		idleCopier(1, s.sr, s.cw, func(r *wire.Reader) bool { return ls.idleServer(r) }, func() {
			close(s.serverDone)
			s.closeClient()
		}))
	if !ok {
		t.Fatal("adopt refused two plain TCP connections")
	}
	parked := func() bool {
		got := make(chan bool, 1)
		f.l.post(func() { got <- ls.c2s.parked && ls.s2c.parked })
		return <-got
	}
	waitParked := func(round int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !parked(); {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: idle directions not retired", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// roundTrip writes msg to peer in parts, pausing between them, and
	// reads it whole from other.
	roundTrip := func(peer, other net.Conn, msg []byte, cut int) {
		t.Helper()
		for i, part := range [][]byte{msg[:cut], msg[cut:]} {
			if i > 0 {
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := peer.Write(part); err != nil {
				t.Fatal(err)
			}
		}
		got := make([]byte, len(msg))
		other.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(other, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("relayed %q (%v), want %q", got, err, msg)
		}
	}
	for round := range 3 {
		waitParked(round)
		// A message split over two writes: the restarted direction
		// waits for its rest inside its body, not at the top.
		roundTrip(f.clientPeer, f.serverPeer, frame('Q', []byte("SELECT 1")), 3)
		roundTrip(f.serverPeer, f.clientPeer, frame('Z', []byte("I")), 6)
	}
	if c, s := starts[0].Load(), starts[1].Load(); c < 4 || s < 4 {
		t.Errorf("directions started %d and %d times, want at least 4 each", c, s)
	}
	waitParked(3)
	f.clientPeer.Close() // wakes the retired client side, which ends
	waitDone(t, ls)
}
