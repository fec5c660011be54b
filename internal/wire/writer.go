package wire

import (
	"bufio"
	"encoding/binary"
	"io"
)

// writeBufferSize is large enough to batch a pipeline of small messages or a
// page of DataRows into one write.
const writeBufferSize = 64 << 10

// Writer batches framed messages; nothing reaches the peer until Flush (or
// until the buffer fills).
type Writer struct {
	bw      *bufio.Writer
	written int64
}

// NewWriter returns a Writer on dst.
func NewWriter(dst io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(dst, writeBufferSize)}
}

// Header writes a message's type and length for a body of n bytes that the
// caller writes next (Write or a Reader's CopyBody).
func (w *Writer) Header(typ byte, n int) error {
	// Built in the buffer's free space: a local array would escape
	// through bufio's io.Writer and cost an allocation per message.
	hdr := append(w.bw.AvailableBuffer(), typ)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(n+4))
	_, err := w.Write(hdr)
	return err
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
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.bw.Write(p)
	w.written += int64(n)
	return n, err
}

// Reset makes the Writer write to dst from now on. Anything not yet
// flushed is dropped, so callers flush first.
func (w *Writer) Reset(dst io.Writer) { w.bw.Reset(dst) }

// Flush sends everything buffered.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered reports how many bytes wait for Flush.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

// TakeWritten returns the bytes written since the last call, for metrics.
func (w *Writer) TakeWritten() int64 {
	n := w.written
	w.written = 0
	return n
}
