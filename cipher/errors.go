package cipher

import (
	"errors"
	"fmt"
)

// ErrNotEnvelope is returned by [Column.Decrypt], [Column.IsCurrent] and
// [Inspect] when a value does not have the exact shape of an envelope (see the
// package documentation for the grammar). Such a value is plaintext as far as
// this package is concerned: a caller that tolerates plaintext still stored in
// a column (for example before a backfill) may pass it through unchanged.
//
// A value that has the shape of an envelope never yields ErrNotEnvelope, even
// if its key id is unknown: that is a [*DecryptError] with [ReasonUnknownKey].
var ErrNotEnvelope = errors.New("cipher: value is not an envelope")

// ErrInvalidKey is wrapped by every error about key material: bad base64,
// wrong length, empty, zero value. Use errors.Is to detect it.
var ErrInvalidKey = errors.New("cipher: invalid key")

// ErrInvalidKeyID is wrapped by every error about a malformed key id.
var ErrInvalidKeyID = errors.New("cipher: invalid key id")

// Reason says why a value that looks like an envelope could not be decrypted.
type Reason uint8

// The reasons a [DecryptError] can carry. New reasons may be added; treat
// unknown ones like ReasonAuthFailed.
const (
	// ReasonUnknownKey: the envelope names a key id that is not in the keyring.
	ReasonUnknownKey Reason = iota + 1
	// ReasonMalformed: the envelope has the shape of one but cannot be decoded
	// (non-canonical base64: non-zero padding bits).
	ReasonMalformed
	// ReasonAuthFailed: the AEAD rejected the value: wrong key material under
	// that id, a tampered value, or a value copied from a column with different
	// associated data.
	ReasonAuthFailed
)

// String returns a short, stable, lower-case name suitable for a metric label.
func (r Reason) String() string {
	switch r {
	case ReasonUnknownKey:
		return "unknown key id"
	case ReasonMalformed:
		return "malformed envelope"
	case ReasonAuthFailed:
		return "authentication failed"
	default:
		return fmt.Sprintf("reason(%d)", uint8(r))
	}
}

// DecryptError reports a value that looks like an envelope but could not be
// decrypted. Its message names the column, the key id and the reason; it never
// contains the value, the ciphertext or key material. Use errors.As to get it:
//
//	var de *cipher.DecryptError
//	if errors.As(err, &de) { metrics.DecryptErrors(de.Column, de.Reason.String()) }
type DecryptError struct {
	// Column is the name given to [Keyring.Column]; it is only used here.
	Column string
	// KeyID is the key id written in the envelope when the keyring has
	// that key, else "": a value that only looks like an envelope may be
	// plaintext, whose first characters must not reach an error or log.
	KeyID string
	// Reason says what went wrong.
	Reason Reason
}

func (e *DecryptError) Error() string {
	if e.KeyID == "" {
		return fmt.Sprintf("cipher: cannot decrypt value of column %q: it is shaped like an envelope under a key id not in the keyring (%s; the id is not shown, as the value may be plaintext)", e.Column, e.Reason)
	}
	switch e.Reason {
	case ReasonUnknownKey:
		return fmt.Sprintf("cipher: cannot decrypt value of column %q: unknown key id %q (not in the keyring)", e.Column, e.KeyID)
	case ReasonMalformed:
		return fmt.Sprintf("cipher: cannot decrypt value of column %q: malformed envelope under key id %q", e.Column, e.KeyID)
	case ReasonAuthFailed:
		return fmt.Sprintf("cipher: cannot decrypt value of column %q: authentication failed under key id %q (wrong key, tampered value, or value from another column)", e.Column, e.KeyID)
	default:
		return fmt.Sprintf("cipher: cannot decrypt value of column %q under key id %q: %s", e.Column, e.KeyID, e.Reason)
	}
}
