package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func frame(typ byte, body string) []byte {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.Message(typ, []byte(body)); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func TestReaderFramesMessages(t *testing.T) {
	big := strings.Repeat("x", readBufferSize*3+7)
	var stream []byte
	stream = append(stream, frame('Q', "select 1\x00")...)
	stream = append(stream, frame('S', "")...)
	stream = append(stream, frame('d', big)...)
	stream = append(stream, frame('X', "")...)

	// One byte at a time exercises every refill path.
	for name, src := range map[string]io.Reader{
		"whole":    bytes.NewReader(stream),
		"bytewise": iotest.OneByteReader(bytes.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			r := NewReader(src, 0)
			want := []struct {
				typ  byte
				body string
			}{{'Q', "select 1\x00"}, {'S', ""}, {'d', big}, {'X', ""}}
			for _, w := range want {
				typ, body, err := r.Next()
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				if typ != w.typ || string(body) != w.body {
					t.Fatalf("got %q (%d bytes), want %q (%d bytes)", typ, len(body), w.typ, len(w.body))
				}
			}
			if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("after last message: %v, want EOF", err)
			}
		})
	}
}

func TestReaderCopyBodyStreams(t *testing.T) {
	big := strings.Repeat("y", readBufferSize*2+3)
	stream := append(frame('d', big), frame('c', "")...)
	r := NewReader(bytes.NewReader(stream), 0)
	typ, n, err := r.Header()
	if err != nil || typ != 'd' || n != len(big) {
		t.Fatalf("Header = %q, %d, %v", typ, n, err)
	}
	var out bytes.Buffer
	if err := r.CopyBody(&out, n); err != nil {
		t.Fatal(err)
	}
	if out.String() != big {
		t.Fatalf("copied %d bytes, want %d", out.Len(), len(big))
	}
	if typ, _, err := r.Next(); err != nil || typ != 'c' {
		t.Fatalf("next = %q, %v", typ, err)
	}
}

func TestReaderRejectsBadLengths(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		max   int
	}{
		{"length below four", []byte{'Q', 0, 0, 0, 3}, 0},
		{"negative length", []byte{'Q', 0xff, 0xff, 0xff, 0xff}, 0},
		{"over the limit", []byte{'Q', 0, 0, 1, 0}, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewReader(bytes.NewReader(tc.input), tc.max).Next()
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ProtocolError", err)
			}
		})
	}
}

func TestReaderTruncated(t *testing.T) {
	msg := frame('Q', "select 1\x00")
	for cut := 1; cut < len(msg); cut++ {
		_, _, err := NewReader(bytes.NewReader(msg[:cut]), 0).Next()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: err = %v, want ErrUnexpectedEOF", cut, err)
		}
	}
}

func TestReadStartup(t *testing.T) {
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	code, pkt, err := ReadStartup(bytes.NewReader(append(ssl, 'x')))
	if err != nil || code != CodeSSLRequest || !bytes.Equal(pkt, ssl) {
		t.Fatalf("ReadStartup = %d, %x, %v", code, pkt, err)
	}
	for _, bad := range [][]byte{
		{0, 0, 0, 4, 0, 0, 0, 0},
		{0, 1, 0, 0, 0, 0, 0, 0},
		{0xff, 0xff, 0xff, 0xff},
	} {
		var pe *ProtocolError
		if _, _, err := ReadStartup(bytes.NewReader(bad)); !errors.As(err, &pe) {
			t.Errorf("ReadStartup(%x) err = %v, want *ProtocolError", bad, err)
		}
	}
}

// TestWriterMessageAllocatesNothing guards the relay's per-message cost: a
// header built on the stack used to escape through bufio's io.Writer.
func TestWriterMessageAllocatesNothing(t *testing.T) {
	w := NewWriter(io.Discard)
	body := []byte("SELECT 1\x00")
	allocs := testing.AllocsPerRun(1000, func() {
		if err := w.Message('Q', body); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Message+Flush allocates %.1f times per call, want 0", allocs)
	}
}

// A Writer made by Buffers holds a buffer only while bytes wait for Flush,
// writes what is larger than a buffer through, and keeps a write error.
func TestLentWriter(t *testing.T) {
	bufs := NewBuffers()
	var out bytes.Buffer
	w := bufs.NewWriter(&out)
	if w.buf != nil {
		t.Fatal("a new writer holds a buffer")
	}
	if err := w.Message('Q', []byte("SELECT 1\x00")); err != nil {
		t.Fatal(err)
	}
	if w.Buffered() != 14 || out.Len() != 0 {
		t.Fatalf("buffered %d, written %d", w.Buffered(), out.Len())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.buf != nil || out.String() != "Q\x00\x00\x00\x0dSELECT 1\x00" {
		t.Fatalf("after Flush: holds a buffer %t, wrote %q", w.buf != nil, out.String())
	}
	big := bytes.Repeat([]byte("x"), writeBufferSize+10)
	w.Header('d', len(big))
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if out.Len() != 14+5+len(big) || !bytes.HasSuffix(out.Bytes(), big) {
		t.Fatalf("large message: %d bytes written", out.Len())
	}
	if n := w.TakeWritten(); n != int64(14+5+len(big)) {
		t.Errorf("TakeWritten %d", n)
	}
	fail := bufs.NewWriter(iotestErrWriter{})
	fail.Message('Q', []byte("x"))
	if err := fail.Flush(); err == nil {
		t.Fatal("no error from a failing destination")
	}
	if err := fail.Message('Q', []byte("y")); err == nil {
		t.Error("the error was not kept")
	}
}

type iotestErrWriter struct{}

func (iotestErrWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// chunkWaiter is a source that delivers its chunks one Read at a time and
// is "readable" only when a chunk is pending; waiting makes the next one
// pending.
type chunkWaiter struct {
	chunks   [][]byte
	pending  bool
	releases int
	held     func() bool // whether the reader holds a buffer, when released
}

func (c *chunkWaiter) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks, c.pending = c.chunks[1:], false
	}
	return n, nil
}

func (c *chunkWaiter) WaitReadable(release func()) error {
	if c.pending {
		return nil
	}
	release()
	if c.held() {
		return errors.New("release left the buffer held")
	}
	c.releases++
	c.pending = true
	return nil
}

// A Reader made by Buffers on a ReadWaiter gives its buffer back each time
// it has consumed everything and must wait, and reads on correctly after:
// a message split across waits, and two messages in one chunk.
func TestLentReader(t *testing.T) {
	bufs := NewBuffers()
	src := &chunkWaiter{chunks: [][]byte{
		[]byte("Q\x00\x00\x00\x09ab"), []byte("cd\x00"), // split across a wait
		[]byte("S\x00\x00\x00\x04S\x00\x00\x00\x04"), // two in one chunk
	}}
	r := bufs.NewReader(src, 0)
	src.held = func() bool { return r.buf != nil }
	typ, body, err := r.Next()
	if err != nil || typ != 'Q' || string(body) != "abcd\x00" {
		t.Fatalf("first message: %q %q %v", typ, body, err)
	}
	for range 2 {
		if typ, body, err := r.Next(); err != nil || typ != 'S' || len(body) != 0 {
			t.Fatalf("Sync: %q %q %v", typ, body, err)
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
	// A wait at the start, one before the chunk of two Syncs, and one at
	// the end; none inside the first message, while bytes were unread
	// (there Read itself waits, holding the buffer).
	if src.releases != 3 {
		t.Errorf("%d releases, want 3", src.releases)
	}
	r.Release()
	if r.buf != nil {
		t.Error("Release kept the buffer")
	}
}
