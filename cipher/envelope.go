package cipher

import "bytes"

// Sizes fixed by the envelope format.
const (
	nonceSize   = 12 // AES-GCM nonce
	nonceB64Len = 16 // base64 of 12 bytes, never padded
	tagSize     = 16 // AES-GCM tag and AES-SIV synthetic IV
	sivMarker   = "siv"
)

// envelope is a parsed, not yet decoded, envelope. The slices alias the input.
type envelope struct {
	keyID      []byte
	mode       Mode
	nonce      []byte // base64 text, 16 characters; Randomized only
	payload    []byte // base64 text
	payloadLen int    // decoded length of payload, >= 16
}

// parseEnvelope checks the envelope grammar documented in the package doc
// without decoding anything. ok is false for a value that is not an envelope.
func parseEnvelope(b []byte) (e envelope, ok bool) {
	e, ok = parseHeader(b)
	return e, ok && e.alphabetOK()
}

// alphabetOK checks the part of the grammar parseHeader leaves out: that the
// nonce and the payload (before its padding) are base64 alphabet characters.
func (e *envelope) alphabetOK() bool {
	p := e.payload // parseHeader guarantees len(p) >= 4
	for i := 0; i < 2 && p[len(p)-1] == '='; i++ {
		p = p[:len(p)-1]
	}
	return allB64Alphabet(e.nonce) && allB64Alphabet(p)
}

// parseHeader checks the grammar except the base64 alphabet of the nonce
// and the payload: key id, separators, the "siv" marker or a 16-byte nonce
// field, the payload's length (a non-empty multiple of 4, decoding to at
// least 16 bytes) and at most two trailing '='. Decrypt completes the check
// by decoding, which rejects any other character; see Column.Decrypt.
func parseHeader(b []byte) (e envelope, ok bool) {
	i := bytes.IndexByte(b, ':')
	if i < 1 || i > MaxKeyIDLen {
		return e, false
	}
	for _, c := range b[:i] {
		if !isKeyIDChar(c) {
			return e, false
		}
	}
	e.keyID = b[:i]
	rest := b[i+1:]
	j := bytes.IndexByte(rest, ':')
	if j < 0 {
		return e, false
	}
	mid := rest[:j]
	e.payload = rest[j+1:]
	switch {
	case len(mid) == len(sivMarker) && string(mid) == sivMarker:
		e.mode = Deterministic
	case len(mid) == nonceB64Len:
		e.mode = Randomized
		e.nonce = mid
	default:
		return e, false
	}
	n, ok := paddedB64Len(e.payload)
	if !ok || n < tagSize {
		return e, false
	}
	e.payloadLen = n
	return e, true
}

// notB64 has a 0 at the index of each standard base64 alphabet character
// ([A-Za-z0-9+/]) and a 1 everywhere else (including '=', CR and LF). A
// constant string keeps it immutable; indexing by a byte needs no bounds check.
const notB64 = "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x01\x01\x01\x01" +
	"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x01\x01\x01" +
	"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x01\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01" +
	"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"

// allB64Alphabet reports whether every byte of b is a base64 alphabet
// character. It is branch-free per byte: ciphertext characters are random,
// and a chain of comparisons would mispredict.
func allB64Alphabet(b []byte) bool {
	var bad byte
	for _, c := range b {
		bad |= notB64[c]
	}
	return bad == 0
}

// paddedB64Len returns the decoded length of b if b has the length of
// standard base64 with padding: a non-empty multiple of 4 characters, the
// last one or two of which may be '='. The alphabet is not checked here.
func paddedB64Len(b []byte) (int, bool) {
	if len(b) == 0 || len(b)%4 != 0 {
		return 0, false
	}
	pad := 0
	if b[len(b)-1] == '=' {
		pad++
		if b[len(b)-2] == '=' {
			pad++
		}
	}
	return len(b)/4*3 - pad, true
}

// canonicalB64 reports whether the padding bits of b, already accepted by
// paddedB64Len, are zero, as an encoder writes them. Together with the
// alphabet check this makes the accepted encoding of a byte string unique.
func canonicalB64(b []byte) bool {
	switch {
	case b[len(b)-2] == '=':
		return b64Value(b[len(b)-3])&0x0f == 0
	case b[len(b)-1] == '=':
		return b64Value(b[len(b)-2])&0x03 == 0
	default:
		return true
	}
}

// b64Value returns the 6-bit value of a base64 alphabet character.
func b64Value(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '+':
		return 62
	default: // '/'
		return 63
	}
}

// LooksLikeEnvelope reports whether b has the exact shape of an envelope
// (see the grammar in the package documentation), whether or not its key id
// is known and whether or not it would authenticate. It is equivalent to
// [Column.Decrypt] not returning [ErrNotEnvelope]. Decrypt makes this check
// itself, more cheaply; there is no need to call both.
func LooksLikeEnvelope(b []byte) bool {
	_, ok := parseEnvelope(b)
	return ok
}

// EnvelopeInfo is what can be learnt from an envelope without a key.
type EnvelopeInfo struct {
	KeyID string
	Mode  Mode
}

// Inspect returns the key id and mode written in an envelope, without
// checking that the key is known or that the value authenticates. It returns
// [ErrNotEnvelope] if b is not shaped like an envelope.
func Inspect(b []byte) (EnvelopeInfo, error) {
	e, ok := parseEnvelope(b)
	if !ok {
		return EnvelopeInfo{}, ErrNotEnvelope
	}
	return EnvelopeInfo{KeyID: string(e.keyID), Mode: e.mode}, nil
}

// FindEnvelope returns where the first envelope inside text is, as
// text[start:end], or -1, -1: for text that may quote stored values (a
// server's error detail, "Failing row contains (…)", a COPY line) and
// must not carry them on. It finds the start of an envelope too, as
// PostgreSQL cuts long lines it quotes: a key id, then "siv" or a
// 16-character nonce field, between colons, and the longest run of base64
// characters after them. Key id characters just before the key id count
// as part of it.
func FindEnvelope(text []byte) (start, end int) {
	for from := 0; from < len(text); {
		c := bytes.IndexByte(text[from:], ':')
		if c < 0 {
			break
		}
		c += from
		from = c + 1
		s := c
		for s > 0 && isKeyIDChar(text[s-1]) {
			s--
		}
		if s == c {
			continue
		}
		e := c + 1
		for e < len(text) && notB64[text[e]] == 0 && e-c <= nonceB64Len {
			e++
		}
		mid := text[c+1 : e]
		if string(mid) != sivMarker && len(mid) != nonceB64Len {
			continue
		}
		if e == len(text) || bytes.HasPrefix(text[e:], []byte("...")) {
			return s, e // cut just after the nonce field (PostgreSQL's "...")
		}
		if text[e] != ':' {
			continue
		}
		e++
		for e < len(text) && notB64[text[e]] == 0 {
			e++
		}
		for pad := 0; pad < 2 && e < len(text) && text[e] == '='; pad++ {
			e++
		}
		return s, e
	}
	return -1, -1
}
