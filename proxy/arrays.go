package proxy

import (
	"encoding/binary"
	"errors"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/internal/pgarray"
)

// Array parameters compared with a deterministic column, as in
// email = ANY($1): each element is encrypted on its own, in the array's
// text ({a,"b c",NULL}) or binary (array_send) format. One-dimensional
// arrays of text-like elements only.

// Array type OIDs a policy array parameter may be declared as.
const (
	oidTextArray    = 1009
	oidVarcharArray = 1015
	oidBpcharArray  = 1014
)

var errArrayShape = errors.New("only one-dimensional arrays of text can be compared with an encrypted column")

// elemEncrypter appends the k-th of an element's envelopes to dst (see
// encryptTextArray).
type elemEncrypter func(dst, plain []byte, k int) ([]byte, error)

// encryptTextArray rewrites an array literal in the text format, read as
// PostgreSQL's array_in reads it (see internal/pgarray): malformed input
// is refused as PostgreSQL would refuse it, never passed on re-quoted.
// Each element becomes copies elements, enc's envelopes 0 to copies-1 of
// it (one per key version during a rotation; envelopes need no quoting).
func encryptTextArray(dst, v []byte, copies int, enc elemEncrypter) ([]byte, error) {
	dst = append(dst, '{')
	first := true
	err := pgarray.Parse(v, func(elem []byte, null bool) error {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		if null {
			dst = append(dst, "NULL"...)
			return nil
		}
		for k := range copies {
			if k > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = enc(dst, elem, k); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, pgarray.ErrUnsupported):
		return nil, errArrayShape
	case err != nil:
		return nil, err
	}
	return append(dst, '}'), nil
}

// encryptBinaryArray rewrites an array in PostgreSQL's binary format, each
// element as copies elements as encryptTextArray does.
func encryptBinaryArray(dst, v []byte, copies int, enc elemEncrypter) ([]byte, error) {
	if len(v) < 12 {
		return nil, errArrayShape
	}
	ndim := int32(binary.BigEndian.Uint32(v))
	elemType := binary.BigEndian.Uint32(v[8:])
	switch elemType {
	case oidText, oidVarchar, oidBpchar:
	default:
		return nil, errArrayShape
	}
	switch ndim {
	case 0:
		// An empty array is its header alone: anything after it would be
		// relayed as it is (PostgreSQL refuses it, but only once sent).
		if len(v) != 12 {
			return nil, errArrayShape
		}
		return append(dst, v...), nil
	case 1:
	default:
		return nil, errArrayShape
	}
	if len(v) < 20 {
		return nil, errArrayShape
	}
	n := int(int32(binary.BigEndian.Uint32(v[12:])))
	if n < 0 {
		return nil, errArrayShape
	}
	head := len(dst)
	dst = append(dst, v[:20]...)
	rest := v[20:]
	total := 0
	for range n {
		if len(rest) < 4 {
			return nil, errArrayShape
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
			total++
			continue
		}
		if int(l) > len(rest) {
			return nil, errArrayShape
		}
		for k := range copies {
			at := len(dst)
			dst = append(dst, 0, 0, 0, 0)
			var err error
			if dst, err = enc(dst, rest[:l], k); err != nil {
				return nil, err
			}
			binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
			total++
		}
		rest = rest[l:]
	}
	binary.BigEndian.PutUint32(dst[head+12:], uint32(total))
	if len(rest) != 0 {
		return nil, errArrayShape
	}
	return dst, nil
}
