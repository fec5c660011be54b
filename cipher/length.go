package cipher

import (
	"encoding/base64"
	"unicode/utf8"
)

// EnvelopeLen returns the maximum length, in bytes (which, the envelope being
// ASCII, is also characters), of the envelope of a plaintext of at most
// maxChars characters, e.g. the n of the varchar(n) a column had before
// encryption. It is exact for UTF-8, assuming the worst case of 4 bytes per
// character; use [EnvelopeLenBytes] when the byte length is known.
//
// keyID is the longest key id that will write the column; "" means the worst
// case over all valid ids (32 characters). The result is the same for both
// modes except that the randomized form is 13 characters longer ("siv" vs a
// 16-character nonce). It panics if maxChars is negative.
//
// This replaces the seed's approximation ceil((n+28)*4/3)+30 (section 3.4),
// which ignores multi-byte characters.
func EnvelopeLen(maxChars int, mode Mode, keyID string) int {
	if maxChars < 0 {
		panic("cipher: EnvelopeLen: negative length")
	}
	return EnvelopeLenBytes(utf8.UTFMax*maxChars, mode, keyID)
}

// EnvelopeLenBytes returns the exact length of the envelope of a plaintext of
// maxBytes bytes (envelope length grows with plaintext length, so it is also
// the maximum for shorter plaintexts). See [EnvelopeLen] for keyID. It panics
// if maxBytes is negative.
//
//	randomized:    len(keyID) + 1 + 16 + 1 + 4*ceil((maxBytes+16)/3)
//	deterministic: len(keyID) + 1 +  3 + 1 + 4*ceil((maxBytes+16)/3)
func EnvelopeLenBytes(maxBytes int, mode Mode, keyID string) int {
	if maxBytes < 0 {
		panic("cipher: EnvelopeLenBytes: negative length")
	}
	idLen := len(keyID)
	if idLen == 0 {
		idLen = MaxKeyIDLen
	}
	mid := nonceB64Len
	if mode == Deterministic {
		mid = len(sivMarker)
	}
	return idLen + 1 + mid + 1 + base64.StdEncoding.EncodedLen(maxBytes+tagSize)
}
