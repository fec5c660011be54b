package proxy

import (
	"bytes"
	"encoding/binary"
)

// SQLSTATE codes the proxy itself raises.
const (
	codeProtocolViolation    = "08P01"
	codeConnectionFailure    = "08006"
	codeCannotConnect        = "08001"
	codeAdminShutdown        = "57P01"
	codeInvalidAuthorization = "28000"
	codeFeatureNotSupported  = "0A000"
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

// errorFields is what the proxy reads of an ErrorResponse body: every
// ErrorResponse, from either side, is read here.
type errorFields struct {
	severity string // the non-localized severity (V) when sent, else S
	code     string
	message  string
}

func parseError(body []byte) errorFields {
	var f errorFields
	for len(body) > 0 && body[0] != 0 {
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			break // truncated: keep what was read
		}
		v := string(body[1 : 1+end])
		switch body[0] {
		case 'V':
			f.severity = v
		case 'S':
			if f.severity == "" {
				f.severity = v
			}
		case 'C':
			f.code = v
		case 'M':
			f.message = v
		}
		body = body[end+2:]
	}
	return f
}

// fatal reports severity FATAL or PANIC, after which PostgreSQL closes
// the connection itself.
func (f errorFields) fatal() bool { return f.severity == "FATAL" || f.severity == "PANIC" }
