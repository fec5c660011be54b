package cipher

import "fmt"

// Mode selects how a column's values are encrypted. The zero value is
// [Randomized], the default.
type Mode uint8

const (
	// Randomized is AES-256-GCM with a fresh random 96-bit nonce per value:
	// equal plaintexts give different envelopes. Envelope:
	// "<key id>:<base64 nonce>:<base64 ciphertext||tag>".
	Randomized Mode = iota
	// Deterministic is AES-SIV (RFC 5297, AES-CMAC-SIV with two 256-bit keys)
	// for columns searched by equality: equal plaintexts under the same key and
	// associated data give equal envelopes. Envelope:
	// "<key id>:siv:<base64 SIV||ciphertext>".
	Deterministic
)

// String returns "randomized" or "deterministic".
func (m Mode) String() string {
	switch m {
	case Randomized:
		return "randomized"
	case Deterministic:
		return "deterministic"
	default:
		return fmt.Sprintf("mode(%d)", uint8(m))
	}
}

func (m Mode) valid() bool { return m == Randomized || m == Deterministic }
