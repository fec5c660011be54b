package proxy

import (
	"encoding/binary"
	"errors"
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

// encryptTextArray rewrites an array literal in the text format.
func encryptTextArray(dst, v []byte, enc func(dst, plain []byte) ([]byte, error)) ([]byte, error) {
	if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
		return nil, errArrayShape
	}
	body := v[1 : len(v)-1]
	dst = append(dst, '{')
	if len(body) == 0 {
		return append(dst, '}'), nil
	}
	var elem []byte
	for i := 0; ; {
		// One element: quoted, or unquoted up to the next comma.
		elem = elem[:0]
		quoted := false
		for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n') {
			i++
		}
		if i < len(body) && body[i] == '"' {
			quoted = true
			i++
			for ; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					i++
					if i >= len(body) {
						return nil, errArrayShape
					}
				}
				elem = append(elem, body[i])
			}
			if i >= len(body) {
				return nil, errArrayShape
			}
			i++ // closing quote
			for i < len(body) && body[i] != ',' {
				if body[i] != ' ' && body[i] != '\t' && body[i] != '\n' {
					return nil, errArrayShape
				}
				i++
			}
		} else {
			for ; i < len(body) && body[i] != ','; i++ {
				switch body[i] {
				case '{', '}', '"', '\\':
					return nil, errArrayShape
				}
				elem = append(elem, body[i])
			}
			for len(elem) > 0 && (elem[len(elem)-1] == ' ' || elem[len(elem)-1] == '\t' || elem[len(elem)-1] == '\n') {
				elem = elem[:len(elem)-1]
			}
		}
		if !quoted && equalFoldASCII(elem, "null") {
			dst = append(dst, "NULL"...)
		} else {
			var err error
			if dst, err = enc(dst, elem); err != nil {
				return nil, err
			}
		}
		if i >= len(body) {
			break
		}
		dst = append(dst, ',')
		i++ // the comma
	}
	return append(dst, '}'), nil
}

func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// encryptBinaryArray rewrites an array in PostgreSQL's binary format.
func encryptBinaryArray(dst, v []byte, enc func(dst, plain []byte) ([]byte, error)) ([]byte, error) {
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
		return append(dst, v...), nil
	case 1:
	default:
		return nil, errArrayShape
	}
	if len(v) < 20 {
		return nil, errArrayShape
	}
	n := int(int32(binary.BigEndian.Uint32(v[12:])))
	dst = append(dst, v[:20]...)
	rest := v[20:]
	for range n {
		if len(rest) < 4 {
			return nil, errArrayShape
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
			continue
		}
		if int(l) > len(rest) {
			return nil, errArrayShape
		}
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		var err error
		if dst, err = enc(dst, rest[:l]); err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return nil, errArrayShape
	}
	return dst, nil
}
