package proxy

import "encoding/binary"

// SQLSTATE codes the proxy itself raises.
const (
	codeProtocolViolation   = "08P01"
	codeConnectionFailure   = "08006"
	codeCannotConnect       = "08001"
	codeAdminShutdown       = "57P01"
	codeFeatureNotSupported = "0A000"
)

// errorMessage encodes an ErrorResponse. Messages never carry values from a
// query: callers pass fixed text or names only.
func errorMessage(severity, code, msg, hint string) []byte {
	b := []byte{'E', 0, 0, 0, 0}
	field := func(t byte, v string) {
		if v != "" {
			b = append(b, t)
			b = append(b, v...)
			b = append(b, 0)
		}
	}
	field('S', severity)
	field('V', severity)
	field('C', code)
	field('M', msg)
	field('H', hint)
	b = append(b, 0)
	binary.BigEndian.PutUint32(b[1:], uint32(len(b)-1))
	return b
}

// isFatal reports whether an ErrorResponse body has severity FATAL or PANIC,
// after which PostgreSQL closes the connection itself.
func isFatal(body []byte) bool {
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		end := 1
		for end < len(body) && body[end] != 0 {
			end++
		}
		if field == 'V' || field == 'S' {
			v := string(body[1:end])
			return v == "FATAL" || v == "PANIC"
		}
		if end >= len(body) {
			return false
		}
		body = body[end+1:]
	}
	return false
}

// sqlstate returns the code field of an ErrorResponse body.
func sqlstate(body []byte) string {
	for len(body) > 0 && body[0] != 0 {
		field := body[0]
		end := 1
		for end < len(body) && body[end] != 0 {
			end++
		}
		if field == 'C' {
			return string(body[1:end])
		}
		if end >= len(body) {
			return ""
		}
		body = body[end+1:]
	}
	return ""
}
