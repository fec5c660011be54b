package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// COPY's binary format (FORMAT binary; pgx's CopyFrom uses it): a header
// (an 11-byte signature, 32-bit flags, a 32-bit extension length and the
// extension), then per row a 16-bit field count and per field a 32-bit
// length (-1 for NULL) and the value in the type's binary form, and a
// count of -1 as the trailer. A text column's binary form is its bytes, so
// the proxy swaps the bytes of policy fields for the envelope on the way in
// and back on the way out, and rewrites the lengths. Rows may be split
// across CopyData messages anywhere; a row is held until it is whole.

var copyBinarySignature = []byte("PGCOPY\n\xff\r\n\x00")

// copyBinary is the layout of one binary COPY's rows.
type copyBinary struct {
	cols    []*policyColumn // by field; nil entries are not encrypted
	pending []byte          // bytes of a header or row not yet whole
	header  bool            // the header has been seen
	done    bool            // the trailer has been seen
}

func newCopyBinary(cols []*policyColumn) *copyBinary { return &copyBinary{cols: cols} }

// in takes CopyData bytes from the client and returns the whole rows among
// them rewritten, enc encrypting a policy field; final (CopyDone) means no
// more bytes follow, so a row left incomplete is an error.
func (cb *copyBinary) in(dst, data []byte, final bool, enc func(pc *policyColumn, dst, plain []byte) ([]byte, error)) ([]byte, error) {
	dst, err := cb.rewrite(dst, data, enc)
	if err == nil && final && len(cb.pending) > 0 {
		err = errors.New("the COPY data ends inside a row")
	}
	return dst, err
}

// out rewrites the bytes of a CopyData from PostgreSQL, dec decrypting a
// policy field.
func (cb *copyBinary) out(dst, data []byte, dec func(pc *policyColumn, dst, env []byte) ([]byte, error)) ([]byte, error) {
	return cb.rewrite(dst, data, dec)
}

func (cb *copyBinary) rewrite(dst, data []byte, field func(pc *policyColumn, dst, v []byte) ([]byte, error)) ([]byte, error) {
	buf := data
	if len(cb.pending) > 0 {
		cb.pending = append(cb.pending, data...)
		buf = cb.pending
	}
	for len(buf) > 0 {
		if cb.done {
			// PostgreSQL refuses it too, but only once it has it.
			return nil, errors.New("data follows the end of the binary COPY data")
		}
		var n int
		var err error
		if !cb.header {
			n, err = cb.headerLen(buf)
			if err == nil && n > 0 {
				dst = append(dst, buf[:n]...)
				cb.header = true
			}
		} else {
			dst, n, err = cb.row(dst, buf, field)
		}
		if err != nil {
			return nil, err
		}
		if n == 0 { // incomplete: wait for more
			break
		}
		buf = buf[n:]
	}
	cb.pending = append(cb.pending[:0], buf...)
	return dst, nil
}

// headerLen returns the length of the header at the start of b, or 0 when b
// does not hold all of it yet.
func (cb *copyBinary) headerLen(b []byte) (int, error) {
	n := min(len(b), len(copyBinarySignature))
	if !bytes.Equal(b[:n], copyBinarySignature[:n]) {
		return 0, errors.New("the binary COPY signature is missing: is the data in another format?")
	}
	if len(b) < 19 {
		return 0, nil
	}
	flags := binary.BigEndian.Uint32(b[11:])
	if flags&(1<<16) != 0 {
		return 0, errors.New("binary COPY data WITH OIDS is not supported")
	}
	if flags>>16 != 0 {
		return 0, errors.New("binary COPY data has critical flags this proxy does not know")
	}
	ext := binary.BigEndian.Uint32(b[15:])
	if ext > 1<<20 {
		return 0, errors.New("binary COPY header extension too long")
	}
	if len(b) < 19+int(ext) {
		return 0, nil
	}
	return 19 + int(ext), nil
}

// row rewrites the row at the start of b into dst. It returns 0 consumed
// bytes when the row is not whole yet.
func (cb *copyBinary) row(dst, b []byte, field func(pc *policyColumn, dst, v []byte) ([]byte, error)) ([]byte, int, error) {
	if len(b) < 2 {
		return dst, 0, nil
	}
	count := int16(binary.BigEndian.Uint16(b))
	if count == -1 {
		cb.done = true
		return append(dst, b[:2]...), 2, nil
	}
	if int(count) != len(cb.cols) {
		return nil, 0, fmt.Errorf("a row has %d fields where the COPY lists %d columns", count, len(cb.cols))
	}
	// Find the row's end before writing anything of it.
	end := 2
	for range int(count) {
		if len(b) < end+4 {
			return dst, 0, nil
		}
		l := int32(binary.BigEndian.Uint32(b[end:]))
		end += 4
		if l < -1 {
			return nil, 0, fmt.Errorf("a field has length %d", l)
		}
		if l > 0 {
			if len(b)-end < int(l) {
				return dst, 0, nil
			}
			end += int(l)
		}
	}
	dst = append(dst, b[:2]...)
	off := 2
	for i, pc := range cb.cols {
		l := int32(binary.BigEndian.Uint32(b[off:]))
		off += 4
		if l < 0 { // NULL
			dst = binary.BigEndian.AppendUint32(dst, uint32(l))
			continue
		}
		v := b[off : off+int(l)]
		off += int(l)
		if pc == nil {
			dst = binary.BigEndian.AppendUint32(dst, uint32(l))
			dst = append(dst, v...)
			continue
		}
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var err error
		if dst, err = field(pc, dst, v); err != nil {
			return nil, 0, fmt.Errorf("field %d: %w", i+1, err)
		}
		w := len(dst) - at - 4
		if w > 1<<30 {
			return nil, 0, fmt.Errorf("field %d: the value is too long once rewritten", i+1)
		}
		binary.BigEndian.PutUint32(dst[at:], uint32(w))
	}
	return dst, end, nil
}
