package cipher

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
)

// MaxPlaintextLen is the longest plaintext Encrypt accepts: the largest whose
// envelope (with a 32-character key id) still fits in a PostgreSQL field of
// 1 GiB.
const MaxPlaintextLen = (1<<30)/4*3 - 64

// Column encrypts and decrypts the values of one column. Build it once with
// [Keyring.Column] and reuse it; it is immutable and safe for concurrent use.
//
// Encrypt and Decrypt append to dst and return the extended slice, like
// strconv.Append*. Passing a reused buffer (buf[:0]) makes the randomized
// mode allocation-free; the deterministic mode makes a few small allocations
// inside Tink's AES-SIV. They use dst's spare capacity as scratch space, so
// the input must not overlap dst's spare capacity (in-place operation is not
// supported). The returned slice's spare capacity may hold nonce and
// ciphertext bytes, never plaintext.
//
// NULL is the caller's business: a SQL NULL is never passed in and stays NULL.
// An empty, non-NULL value is encrypted like any other.
type Column struct {
	name string
	mode Mode
	ad   []byte // nil means no associated data
	kr   *Keyring
}

// Name returns the name given to [Keyring.Column].
func (c *Column) Name() string { return c.name }

// Mode returns the mode Encrypt writes.
func (c *Column) Mode() Mode { return c.mode }

// Encrypt appends the envelope of plaintext, under the keyring's active key
// and in the column's mode, to dst. Plaintext may be any bytes, including
// empty; it must not overlap dst's spare capacity.
func (c *Column) Encrypt(dst, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintextLen {
		return dst, fmt.Errorf("cipher: encrypt value of column %q: %d bytes is longer than the maximum of %d", c.name, len(plaintext), MaxPlaintextLen)
	}
	kv := c.kr.active
	if c.mode == Deterministic {
		return c.encryptSIV(dst, kv, plaintext)
	}
	return c.sealGCM(dst, kv, plaintext, nil), nil
}

// sealGCM appends "<id>:<b64 nonce>:<b64 ct||tag>" to dst. A nil nonce means
// a fresh random one (tests pass fixed nonces to reproduce vectors).
func (c *Column) sealGCM(dst []byte, kv *keyVersion, plaintext, fixedNonce []byte) []byte {
	rawLen := len(plaintext) + tagSize
	envLen := len(kv.id) + 1 + nonceB64Len + 1 + base64.StdEncoding.EncodedLen(rawLen)
	base := len(dst)
	// Layout of the grown region: [envelope | nonce | ct||tag]; the last two
	// are scratch beyond the returned length.
	dst = slices.Grow(dst, envLen+nonceSize+rawLen)
	region := dst[base : base+envLen+nonceSize+rawLen]
	env := region[:envLen]
	nonce := region[envLen : envLen+nonceSize]
	if fixedNonce != nil {
		copy(nonce, fixedNonce)
	} else {
		// Never fails: crashes the program if the OS cannot supply randomness.
		_, _ = rand.Read(nonce)
	}
	sealed := kv.gcm.Seal(region[envLen+nonceSize:envLen+nonceSize], nonce, plaintext, c.ad)

	p := copy(env, kv.id)
	env[p] = ':'
	p++
	base64.StdEncoding.Encode(env[p:p+nonceB64Len], nonce)
	p += nonceB64Len
	env[p] = ':'
	p++
	base64.StdEncoding.Encode(env[p:], sealed)
	return dst[:base+envLen]
}

// encryptSIV appends "<id>:siv:<b64 siv||ct>" to dst.
func (c *Column) encryptSIV(dst []byte, kv *keyVersion, plaintext []byte) ([]byte, error) {
	sealed, err := kv.siv.EncryptDeterministically(plaintext, c.ad)
	if err != nil {
		return dst, fmt.Errorf("cipher: encrypt value of column %q: %w", c.name, err)
	}
	envLen := len(kv.id) + 1 + len(sivMarker) + 1 + base64.StdEncoding.EncodedLen(len(sealed))
	base := len(dst)
	dst = slices.Grow(dst, envLen)
	env := dst[base : base+envLen]
	p := copy(env, kv.id)
	env[p] = ':'
	p++
	p += copy(env[p:], sivMarker)
	env[p] = ':'
	p++
	base64.StdEncoding.Encode(env[p:], sealed)
	return dst[:base+envLen], nil
}

// EqualityEnvelopes returns the deterministic envelopes of plaintext under
// every key version of the keyring, the active one first. A search on a
// deterministic column must match all of them (col IN (...)) while values
// written under older versions remain, i.e. during a rotation. It fails on a
// randomized column, whose envelopes cannot be searched.
func (c *Column) EqualityEnvelopes(plaintext []byte) ([][]byte, error) {
	out := make([][]byte, 0, len(c.kr.search))
	for i := range c.kr.search {
		env, err := c.EqualityEnvelope(nil, plaintext, i)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// KeyVersions returns the number of key versions of the column's keyring:
// EqualityEnvelope takes 0 to KeyVersions()-1.
func (c *Column) KeyVersions() int { return len(c.kr.search) }

// HasKeyID reports whether the column's keyring has key id.
func (c *Column) HasKeyID(id string) bool { return c.kr.keys[id] != nil }

// KeyVersionID returns the id of key version i in EqualityEnvelope's order.
func (c *Column) KeyVersionID(i int) string { return c.kr.search[i].id }

// EqualityEnvelope appends to dst the deterministic envelope of plaintext
// under key version i: 0 is the active version, the others follow by key
// id (the order of EqualityEnvelopes). It fails on a randomized column.
func (c *Column) EqualityEnvelope(dst, plaintext []byte, i int) ([]byte, error) {
	if c.mode != Deterministic {
		return dst, fmt.Errorf("cipher: column %q is randomized: equality search is impossible", c.name)
	}
	if len(plaintext) > MaxPlaintextLen {
		return dst, fmt.Errorf("cipher: encrypt value of column %q: %d bytes is longer than the maximum of %d", c.name, len(plaintext), MaxPlaintextLen)
	}
	if i < 0 || i >= len(c.kr.search) {
		return dst, fmt.Errorf("cipher: column %q: no key version %d", c.name, i)
	}
	return c.encryptSIV(dst, c.kr.search[i], plaintext)
}

// Decrypt appends the plaintext of envelope to dst. Either envelope form is
// accepted whatever the column's mode, so a column switched between modes
// still reads its old values; the column's associated data is always used.
//
// Errors: [ErrNotEnvelope] if envelope does not have the shape of an envelope
// (the caller may treat it as plaintext); otherwise a [*DecryptError]. On
// error dst is returned with its original length.
func (c *Column) Decrypt(dst, envelope []byte) ([]byte, error) {
	// The hot path makes one pass over the payload: parseHeader checks
	// everything but the base64 alphabet, and base64.Decode (table-driven)
	// rejects any other character. Decode skips CR and LF instead of failing,
	// but then yields fewer bytes than the length parseHeader computed, so
	// the length checks below catch them. Every not-an-envelope verdict
	// therefore matches LooksLikeEnvelope (FuzzDecrypt checks this).
	e, ok := parseHeader(envelope)
	if !ok {
		return dst, ErrNotEnvelope
	}
	kv := c.kr.keys[string(e.keyID)]
	if kv == nil {
		if !e.alphabetOK() {
			return dst, ErrNotEnvelope
		}
		return dst, c.decryptError(e.keyID, ReasonUnknownKey)
	}
	base := len(dst)
	maxRaw := len(e.payload) / 4 * 3 // base64.Decode may write up to this much
	// Layout of the grown region: [payload, opened in place | nonce].
	dst = slices.Grow(dst, maxRaw+nonceSize)
	region := dst[base : base+maxRaw+nonceSize]
	raw, nonce := region[:maxRaw], region[maxRaw:]
	if e.mode == Randomized {
		if n, err := base64.StdEncoding.Decode(nonce, e.nonce); err != nil || n != nonceSize {
			return dst[:base], ErrNotEnvelope
		}
	}
	n, err := base64.StdEncoding.Decode(raw, e.payload)
	if err != nil || n != e.payloadLen {
		return dst[:base], ErrNotEnvelope
	}
	if !canonicalB64(e.payload) {
		return dst[:base], c.decryptError(e.keyID, ReasonMalformed)
	}
	if e.mode == Deterministic {
		pt, err := kv.siv.DecryptDeterministically(raw[:n], c.ad)
		if err != nil {
			return dst[:base], c.decryptError(e.keyID, ReasonAuthFailed)
		}
		dst = append(dst[:base], pt...)
		clear(pt)
		return dst, nil
	}
	pt, err := kv.gcm.Open(raw[:0], nonce, raw[:n], c.ad)
	if err != nil {
		return dst[:base], c.decryptError(e.keyID, ReasonAuthFailed)
	}
	return dst[:base+len(pt)], nil
}

// IsCurrent reports whether envelope is written under the keyring's active
// key and in the column's mode, i.e. whether a rotation would leave it alone.
// It reads only the envelope header and does not authenticate the value.
// Errors: [ErrNotEnvelope] for plaintext (a backfill candidate), and a
// [*DecryptError] with [ReasonUnknownKey] for a key id not in the keyring.
func (c *Column) IsCurrent(envelope []byte) (bool, error) {
	e, ok := parseEnvelope(envelope)
	if !ok {
		return false, ErrNotEnvelope
	}
	if c.kr.keys[string(e.keyID)] == nil {
		return false, c.decryptError(e.keyID, ReasonUnknownKey)
	}
	return string(e.keyID) == c.kr.active.id && e.mode == c.mode, nil
}

func (c *Column) decryptError(keyID []byte, r Reason) error {
	id := string(keyID)
	if c.kr.keys[id] == nil {
		id = ""
	}
	return &DecryptError{Column: c.name, KeyID: id, Reason: r}
}

// Damaged returns a [*DecryptError] with [ReasonMalformed] when b, which
// Decrypt found not to be an envelope, starts like one under a key of the
// keyring ("v1:siv:", or "v1:", a 16-character nonce field and ':'): an
// envelope cut short or altered, not plaintext written before encryption,
// which no one writes that way. Otherwise it returns nil.
func (c *Column) Damaged(b []byte) error {
	i := bytes.IndexByte(b, ':')
	if i < 1 || c.kr.keys[string(b[:i])] == nil {
		return nil
	}
	rest := b[i+1:]
	j := bytes.IndexByte(rest, ':')
	switch {
	case j == len(sivMarker) && string(rest[:j]) == sivMarker:
	case j == nonceB64Len && allB64Alphabet(rest[:j]):
	default:
		return nil
	}
	return c.decryptError(b[:i], ReasonMalformed)
}
