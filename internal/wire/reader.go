package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxMessage is PostgreSQL's own limit on a message (1 GiB - 1).
const DefaultMaxMessage = 1<<30 - 1

// readBufferSize is the size of a Reader's buffer. Messages that fit are
// returned as slices of it without copying.
const readBufferSize = 32 << 10

// ProtocolError reports a message that violates the framing rules. The
// connection it came from cannot be trusted to be in sync any more.
type ProtocolError struct {
	Type   byte // message type, 0 for startup packets
	Length int  // the length the peer claimed
	Reason string
}

func (e *ProtocolError) Error() string {
	if e.Type == 0 {
		return fmt.Sprintf("invalid startup packet: %s (length %d)", e.Reason, e.Length)
	}
	return fmt.Sprintf("invalid message %q: %s (length %d)", e.Type, e.Reason, e.Length)
}

// Reader reads framed messages. Bodies returned by Next and Body are valid
// only until the next call on the Reader: the buffer they are slices of
// may be lent to another Reader by then.
type Reader struct {
	src   io.Reader
	buf   []byte // nil while lent back (bufs)
	bp    *[]byte
	bufs  *Buffers
	r, w  int // unread data is buf[r:w]
	max   int
	large []byte // scratch for messages larger than buf, released after use
}

// ReadWaiter is a source that can wait until it has data without a buffer
// to read it into. WaitReadable returns at once when data may be there;
// otherwise it calls release, then waits.
type ReadWaiter interface {
	WaitReadable(release func()) error
}

// NewReader returns a Reader with a buffer of its own that rejects
// messages whose body is longer than maxBody bytes (0 means
// DefaultMaxMessage).
func NewReader(src io.Reader, maxBody int) *Reader {
	if maxBody <= 0 {
		maxBody = DefaultMaxMessage
	}
	return &Reader{src: src, buf: make([]byte, readBufferSize), max: maxBody}
}

// NewReader returns a Reader like wire.NewReader whose buffer is lent by
// b, and given back while it waits on a source that is a ReadWaiter.
func (b *Buffers) NewReader(src io.Reader, maxBody int) *Reader {
	r := NewReader(nil, maxBody)
	r.src, r.buf, r.bufs = src, nil, b
	return r
}

// take makes sure the Reader holds a buffer.
func (r *Reader) take() {
	if r.buf == nil {
		r.bp = r.bufs.read.Get().(*[]byte)
		r.buf = *r.bp
	}
}

// Release gives a lent buffer back, with whatever it holds unread: for a
// Reader that is done.
func (r *Reader) Release() { r.release() }

// release gives the buffer back; nothing unread is in it.
func (r *Reader) release() {
	if r.bufs != nil && r.buf != nil {
		r.bufs.read.Put(r.bp)
		r.buf, r.bp = nil, nil
	}
}

// Reset makes the Reader read from src from now on, keeping what it has
// buffered.
func (r *Reader) Reset(src io.Reader) { r.src = src }

// Buffered reports how many bytes have been read from the source but not yet
// consumed. A relay flushes its output when this is zero, just before it
// would block.
func (r *Reader) Buffered() int { return r.w - r.r }

// fill reads until at least n unread bytes are buffered. n must not exceed
// len(r.buf).
func (r *Reader) fill(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
		if ws, ok := r.src.(ReadWaiter); ok && r.bufs != nil {
			if err := ws.WaitReadable(r.release); err != nil {
				return err
			}
		}
	}
	r.take()
	if r.r > 0 && len(r.buf)-r.r < n {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for r.w-r.r < n {
		m, err := r.src.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			if r.w-r.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && r.w-r.r > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// Header reads the next message's type and body length. The caller must then
// consume exactly that many bytes with Body, Discard or CopyBody.
func (r *Reader) Header() (typ byte, n int, err error) {
	if err := r.fill(5); err != nil {
		return 0, 0, err
	}
	typ = r.buf[r.r]
	l := int32(binary.BigEndian.Uint32(r.buf[r.r+1:]))
	if l < 4 {
		return typ, 0, &ProtocolError{Type: typ, Length: int(l), Reason: "length below 4"}
	}
	n = int(l) - 4
	if n > r.max {
		return typ, n, &ProtocolError{Type: typ, Length: int(l), Reason: fmt.Sprintf("body longer than the limit of %d bytes", r.max)}
	}
	r.r += 5
	return typ, n, nil
}

// Body returns the next n bytes. Bodies that fit the read buffer are not
// copied; larger ones are read into a scratch buffer that is dropped when a
// later call needs less, so one huge message does not pin memory.
func (r *Reader) Body(n int) ([]byte, error) {
	if n <= readBufferSize {
		if r.large != nil && n < readBufferSize {
			r.large = nil
		}
		if err := r.fill(n); err != nil {
			return nil, unexpected(err)
		}
		b := r.buf[r.r : r.r+n : r.r+n]
		r.r += n
		return b, nil
	}
	if cap(r.large) < n {
		r.large = make([]byte, n)
	}
	b := r.large[:n]
	c := copy(b, r.buf[r.r:r.w])
	r.r += c
	if _, err := io.ReadFull(r.src, b[c:]); err != nil {
		return nil, unexpected(err)
	}
	return b, nil
}

// CopyBody writes the next n bytes to w without holding them all in memory.
func (r *Reader) CopyBody(w io.Writer, n int) error {
	c := min(n, r.w-r.r)
	if c > 0 {
		if _, err := w.Write(r.buf[r.r : r.r+c]); err != nil {
			return err
		}
		r.r += c
	}
	if rest := int64(n - c); rest > 0 {
		if _, err := io.CopyN(w, r.src, rest); err != nil {
			return unexpected(err)
		}
	}
	return nil
}

// Next reads one whole message.
func (r *Reader) Next() (typ byte, body []byte, err error) {
	typ, n, err := r.Header()
	if err != nil {
		return typ, nil, err
	}
	body, err = r.Body(n)
	return typ, body, err
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
