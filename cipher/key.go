package cipher

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// KeySize is the size in bytes of a column master key (AES-256).
const KeySize = 32

// redacted is what every textual form of a [Key] prints.
const redacted = "[REDACTED]"

// keyHint tells an operator how to obtain a valid key.
const keyHint = "need the standard base64 encoding of 32 random bytes (44 characters); generate one with `pgcrypt-proxy keygen`"

// Key is a 32-byte column master key. The zero value holds no key and is
// rejected by [NewKeyring].
//
// A Key can never be printed: every fmt verb (%v, %+v, %#v, %s, %q, %x, ...),
// String, GoString, MarshalText, MarshalJSON and slog all produce
// "[REDACTED]". The bytes live behind a pointer, so even reflection-based
// printing of a struct holding a Key in an unexported field (which bypasses
// the methods) shows at most an address. The only way to get the material out is [Key.Base64], meant for
// `pgcrypt-proxy keygen`.
//
// Keys are immutable and safe to copy and share between goroutines.
type Key struct {
	// m is doubly indirect on purpose. fmt prints a pointer it reaches by
	// reflection (an unexported field under a verb such as %s) by
	// dereferencing it once; with one level it would print the bytes, with
	// two it prints the inner pointer's address.
	m *keyMaterial
}

type keyMaterial struct {
	b *[KeySize]byte
}

func newKey(b *[KeySize]byte) Key { return Key{m: &keyMaterial{b: b}} }

// ParseKey decodes a key from standard base64 with padding (the output of
// `pgcrypt-proxy keygen`, `openssl rand -base64 32`, or the seed's
// `base64.b64encode(secrets.token_bytes(32))`). Surrounding whitespace,
// including a trailing newline, is ignored. Errors wrap [ErrInvalidKey], say
// what was wrong and how to make a key, and never echo the input.
func ParseKey(b64 string) (Key, error) {
	s := strings.TrimSpace(b64)
	if s == "" {
		return Key{}, fmt.Errorf("%w: empty; %s", ErrInvalidKey, keyHint)
	}
	if len(s) > base64.StdEncoding.EncodedLen(KeySize)+8 {
		return Key{}, fmt.Errorf("%w: %d characters is too long for a 32-byte key; %s", ErrInvalidKey, len(s), keyHint)
	}
	// Fixed-size stack buffers, cleared afterwards, for the text and bytes.
	var text [KeySize*2 + 8]byte
	var buf [KeySize + 8]byte
	defer clear(text[:])
	defer clear(buf[:])
	copy(text[:], s)
	n, err := base64.StdEncoding.Decode(buf[:], text[:len(s)])
	if err != nil {
		// base64.CorruptInputError only reports an offset, never the data.
		return Key{}, fmt.Errorf("%w: not valid standard base64 (%w); %s", ErrInvalidKey, err, keyHint)
	}
	if n != KeySize {
		return Key{}, fmt.Errorf("%w: decodes to %d bytes, 32 bytes are needed; %s", ErrInvalidKey, n, keyHint)
	}
	return KeyFromBytes(buf[:n])
}

// KeyFromBytes returns a Key holding a copy of b, which must be exactly 32
// bytes. It is the constructor for key sources that obtain raw bytes (a future
// KMS unwrap, for example).
func KeyFromBytes(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("%w: %d bytes, 32 bytes are needed", ErrInvalidKey, len(b))
	}
	k := new([KeySize]byte)
	copy(k[:], b)
	return newKey(k), nil
}

// GenerateKey reads 32 bytes from r (crypto/rand.Reader if r is nil) and
// returns them as a Key.
func GenerateKey(r io.Reader) (Key, error) {
	if r == nil {
		r = rand.Reader
	}
	k := new([KeySize]byte)
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return Key{}, fmt.Errorf("cipher: generate key: %w", err)
	}
	return newKey(k), nil
}

// Base64 returns the key material in standard base64 with padding, the form
// [ParseKey] reads. It exists for `pgcrypt-proxy keygen`; nothing else should
// call it. It returns "" for the zero Key.
func (k Key) Base64() string {
	if k.m == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(k.m.b[:])
}

// IsZero reports whether k is the zero Key (holds no key material).
func (k Key) IsZero() bool { return k.m == nil }

// Equal reports, in constant time, whether k and o hold the same material.
// Two zero Keys are equal.
func (k Key) Equal(o Key) bool {
	if k.m == nil || o.m == nil {
		return k.m == nil && o.m == nil
	}
	return subtle.ConstantTimeCompare(k.m.b[:], o.m.b[:]) == 1
}

// bytes returns the key material; for use inside this package only.
func (k Key) bytes() []byte { return k.m.b[:] }

// Format implements fmt.Formatter: every verb and flag prints "[REDACTED]".
func (Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// String returns "[REDACTED]".
func (Key) String() string { return redacted }

// GoString returns "[REDACTED]".
func (Key) GoString() string { return redacted }

// MarshalText returns "[REDACTED]", so encoders using encoding.TextMarshaler
// (YAML, TOML, map keys in JSON) never see the material.
func (Key) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns the JSON string "[REDACTED]".
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue implements slog.LogValuer.
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }
