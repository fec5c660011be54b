// Package pgarray reads PostgreSQL's text form of a one-dimensional array
// ({a,"b c",NULL}) exactly as the server's array_in does, so that the
// proxy encrypts the very elements PostgreSQL will see and refuses what
// PostgreSQL would refuse. It does no I/O.
package pgarray

import "errors"

var (
	// ErrMalformed is returned where PostgreSQL reports "malformed array
	// literal" (SQLSTATE 22P02).
	ErrMalformed = errors.New("malformed array literal")
	// ErrUnsupported is returned for valid input the proxy does not
	// handle: more than one dimension, or explicit bounds ([1:2]={...}).
	ErrUnsupported = errors.New("only one-dimensional arrays without explicit bounds are supported")
)

// isSpace is PostgreSQL's scanner_isspace, which array_in uses.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// Parse reads v and calls fn with each element in order: its value with
// quotes and backslash escapes removed, or null for an unquoted NULL (in
// any case). elem is only valid during the call. An error from fn stops
// the parse and is returned.
func Parse(v []byte, fn func(elem []byte, null bool) error) error {
	i := 0
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	if i < len(v) && v[i] == '[' {
		return ErrUnsupported
	}
	if i >= len(v) || v[i] != '{' {
		return ErrMalformed
	}
	i++
	// The elements are checked in full before fn sees any, so that a
	// malformed tail never lets a prefix through.
	var elems [][]byte
	var nulls []bool
	k := i
	for k < len(v) && isSpace(v[k]) {
		k++
	}
	if k < len(v) && v[k] == '}' {
		i = k + 1 // no elements
	} else {
		for {
			for i < len(v) && isSpace(v[i]) {
				i++
			}
			if i >= len(v) {
				return ErrMalformed
			}
			var elem []byte
			null := false
			switch v[i] {
			case '{':
				return nestedOrMalformed(v)
			case '"':
				i++
				elem = []byte{}
				for {
					if i >= len(v) {
						return ErrMalformed
					}
					c := v[i]
					if c == '"' {
						i++
						break
					}
					if c == '\\' {
						i++
						if i >= len(v) {
							return ErrMalformed
						}
						c = v[i]
					}
					elem = append(elem, c)
					i++
				}
				for i < len(v) && isSpace(v[i]) {
					i++
				}
			default:
				elem = []byte{}
				keep := 0 // length up to the last escaped or non-space byte
				escaped := false
				for {
					if i >= len(v) {
						return ErrMalformed
					}
					c := v[i]
					if c == ',' || c == '}' {
						break
					}
					switch c {
					case '"', '{':
						return ErrMalformed
					case '\\':
						i++
						if i >= len(v) {
							return ErrMalformed
						}
						escaped = true
						elem = append(elem, v[i])
						keep = len(elem)
						i++
						continue
					}
					elem = append(elem, c)
					if !isSpace(c) {
						keep = len(elem)
					}
					i++
				}
				elem = elem[:keep]
				if len(elem) == 0 && !escaped {
					return ErrMalformed // an empty unquoted element
				}
				null = !escaped && len(elem) == 4 && (elem[0]|0x20) == 'n' && (elem[1]|0x20) == 'u' && (elem[2]|0x20) == 'l' && (elem[3]|0x20) == 'l'
			}
			if i >= len(v) {
				return ErrMalformed
			}
			elems = append(elems, elem)
			nulls = append(nulls, null)
			if v[i] == '}' {
				i++
				break
			}
			if v[i] != ',' {
				return ErrMalformed
			}
			i++
		}
	}
	for ; i < len(v); i++ {
		if !isSpace(v[i]) {
			return ErrMalformed // junk after the closing brace
		}
	}
	for k, e := range elems {
		if err := fn(e, nulls[k]); err != nil {
			return err
		}
	}
	return nil
}

// nestedOrMalformed tells a well-formed multi-dimensional array, which the
// proxy does not handle, from malformed input: only a crude check, since
// either way the input is refused; the error only picks the SQLSTATE.
func nestedOrMalformed(v []byte) error {
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth < 0 {
				return ErrMalformed
			}
		}
	}
	if depth != 0 || quoted {
		return ErrMalformed
	}
	return ErrUnsupported
}
