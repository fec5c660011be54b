package wire

import (
	"encoding/binary"
	"io"
	"sync"
)

// writeBufferSize is large enough to batch a pipeline of small messages or a
// page of DataRows into one write.
const writeBufferSize = 64 << 10

// Buffers lends buffers to the Writers and Readers made with it. A Writer
// holds one only while it has bytes waiting for Flush; a Reader whose
// source can wait for data without a buffer (ReadWaiter) gives its buffer
// back whenever it has consumed all it read and must wait. An idle
// connection then holds none. Safe for concurrent use; one per proxy.
type Buffers struct{ pool, read sync.Pool }

// NewBuffers returns an empty set of buffers.
func NewBuffers() *Buffers {
	return &Buffers{
		pool: sync.Pool{New: func() any {
			b := make([]byte, 0, writeBufferSize)
			return &b
		}},
		read: sync.Pool{New: func() any {
			b := make([]byte, readBufferSize)
			return &b
		}},
	}
}

// Writer batches framed messages; nothing reaches the peer until Flush (or
// until the buffer fills). After a failed write it keeps returning that
// error.
type Writer struct {
	dst     io.Writer
	buf     []byte // pending bytes; nil when none and the buffer is lent
	bufs    *Buffers
	err     error
	written int64
}

// NewWriter returns a Writer on dst with a buffer of its own.
func NewWriter(dst io.Writer) *Writer {
	return &Writer{dst: dst, buf: make([]byte, 0, writeBufferSize)}
}

// NewWriter returns a Writer on dst whose buffer is lent by b.
func (b *Buffers) NewWriter(dst io.Writer) *Writer { return &Writer{dst: dst, bufs: b} }

// space makes sure n more bytes fit without growing the buffer, when n
// fits at all: it takes a buffer, or flushes.
func (w *Writer) space(n int) error {
	if w.buf == nil {
		w.buf = (*w.bufs.pool.Get().(*[]byte))[:0]
	}
	if len(w.buf)+n > cap(w.buf) && len(w.buf) > 0 {
		return w.flush(false)
	}
	return nil
}

// Header writes a message's type and length for a body of n bytes that the
// caller writes next (Write or a Reader's CopyBody).
func (w *Writer) Header(typ byte, n int) error {
	if w.err != nil {
		return w.err
	}
	if err := w.space(5); err != nil {
		return err
	}
	w.buf = append(w.buf, typ)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(n+4))
	w.written += 5
	return nil
}

// Message writes one whole message.
func (w *Writer) Message(typ byte, body []byte) error {
	if err := w.Header(typ, len(body)); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// Write writes raw bytes: an already framed message, or a body after Header.
// What does not fit the buffer is written through.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if err := w.space(len(p)); err != nil {
		return 0, err
	}
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		w.written += int64(len(p))
		return len(p), nil
	}
	// Larger than the whole buffer, which space emptied: write through.
	n, err := w.dst.Write(p)
	w.written += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = err
	}
	return n, err
}

// Reset makes the Writer write to dst from now on. Anything not yet
// flushed is dropped, so callers flush first.
func (w *Writer) Reset(dst io.Writer) {
	w.dst = dst
	if w.buf != nil {
		w.buf = w.buf[:0]
	}
	w.release()
}

// Flush sends everything buffered, and gives a lent buffer back.
func (w *Writer) Flush() error { return w.flush(true) }

func (w *Writer) flush(release bool) error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		n, err := w.dst.Write(w.buf)
		if err == nil && n < len(w.buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = err
			return err
		}
		w.buf = w.buf[:0]
	}
	if release {
		w.release()
	}
	return nil
}

// release gives an empty lent buffer back.
func (w *Writer) release() {
	if w.bufs != nil && w.buf != nil && len(w.buf) == 0 {
		b := w.buf
		w.buf = nil
		w.bufs.pool.Put(&b)
	}
}

// Buffered reports how many bytes wait for Flush.
func (w *Writer) Buffered() int { return len(w.buf) }

// TakeWritten returns the bytes written since the last call, for metrics.
func (w *Writer) TakeWritten() int64 {
	n := w.written
	w.written = 0
	return n
}
