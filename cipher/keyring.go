package cipher

import (
	"context"
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/tink-crypto/tink-go/v2/daead/subtle"
)

// MaxKeyIDLen is the longest key id allowed.
const MaxKeyIDLen = 32

// sivKeyInfo is the HKDF info string that derives the AES-SIV key from a
// column master key. Changing it changes every deterministic envelope.
const sivKeyInfo = "pgcrypt-proxy aes-siv v1"

// ValidateKeyID checks that id is 1-32 characters of [A-Za-z0-9_.-]. Errors
// wrap [ErrInvalidKeyID].
func ValidateKeyID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty; use 1-%d characters of A-Z a-z 0-9 _ . -", ErrInvalidKeyID, MaxKeyIDLen)
	}
	if len(id) > MaxKeyIDLen {
		return fmt.Errorf("%w: %q is %d characters long; at most %d are allowed", ErrInvalidKeyID, id, len(id), MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !isKeyIDChar(id[i]) {
			return fmt.Errorf("%w: %q contains %q at offset %d; use only A-Z a-z 0-9 _ . -", ErrInvalidKeyID, id, id[i], i)
		}
	}
	return nil
}

func isKeyIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '.' || c == '-'
}

// keyVersion holds the precomputed primitives of one key version. It never
// keeps the master key itself.
type keyVersion struct {
	id  string
	gcm stdcipher.AEAD // AES-256-GCM under the master key
	siv *subtle.AESSIV // AES-SIV under HKDF(master key)
}

func newKeyVersion(id string, k Key) (*keyVersion, error) {
	block, err := aes.NewCipher(k.bytes())
	if err != nil {
		return nil, fmt.Errorf("cipher: key %s: %w", id, err)
	}
	gcm, err := stdcipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("cipher: key %s: %w", id, err)
	}
	sivKey, err := deriveSIVKey(k)
	if err != nil {
		return nil, fmt.Errorf("cipher: key %s: %w", id, err)
	}
	siv, err := subtle.NewAESSIV(sivKey)
	// NewAESSIV keeps sivKey (its second half is the CTR key), so it must
	// not be cleared here.
	if err != nil {
		return nil, fmt.Errorf("cipher: key %s: %w", id, err)
	}
	return &keyVersion{id: id, gcm: gcm, siv: siv}, nil
}

// deriveSIVKey returns HKDF-SHA256(ikm = master key, salt = empty,
// info = "pgcrypt-proxy aes-siv v1", L = 64).
func deriveSIVKey(k Key) ([]byte, error) {
	return hkdf.Key(sha256.New, k.bytes(), nil, sivKeyInfo, subtle.AESSIVKeySize)
}

// Keyring holds every key version, of which one is active for writes. All
// versions can decrypt; the key id written in an envelope selects the version.
// A Keyring is immutable and safe for concurrent use.
type Keyring struct {
	active *keyVersion
	keys   map[string]*keyVersion
	ids    []string // sorted
	// search is every version, the active one first, then the others by
	// id: the order of Column.EqualityEnvelope.
	search []*keyVersion
}

// NewKeyring builds a keyring from key versions by id, writing under active.
// Ids must satisfy [ValidateKeyID]; active must be one of them; no key may be
// the zero Key. The keyring precomputes the AES-GCM and AES-SIV primitives of
// every version and does not retain the Keys.
func NewKeyring(active string, keys map[string]Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("cipher: keyring: no key versions given")
	}
	if err := ValidateKeyID(active); err != nil {
		return nil, fmt.Errorf("cipher: keyring: active key: %w", err)
	}
	if _, ok := keys[active]; !ok {
		return nil, fmt.Errorf("cipher: keyring: active key id %q is not among the key versions", active)
	}
	kr := &Keyring{keys: make(map[string]*keyVersion, len(keys))}
	for id := range keys {
		kr.ids = append(kr.ids, id)
	}
	slices.Sort(kr.ids)
	for _, id := range kr.ids {
		if err := ValidateKeyID(id); err != nil {
			return nil, fmt.Errorf("cipher: keyring: %w", err)
		}
		k := keys[id]
		if k.IsZero() {
			return nil, fmt.Errorf("cipher: keyring: key %s: %w: no key material (zero Key)", id, ErrInvalidKey)
		}
		kv, err := newKeyVersion(id, k)
		if err != nil {
			return nil, err
		}
		kr.keys[id] = kv
	}
	kr.active = kr.keys[active]
	kr.search = append(kr.search, kr.active)
	for _, id := range kr.ids {
		if id != active {
			kr.search = append(kr.search, kr.keys[id])
		}
	}
	return kr, nil
}

// LoadKeyring loads every source (in key id order, stopping at the first
// error) and calls [NewKeyring]. Errors name the key id and the source,
// e.g. `cipher: key v2: env PGCRYPT_KEY_V2: variable is not set; ...`.
func LoadKeyring(ctx context.Context, active string, sources map[string]KeySource) (*Keyring, error) {
	if len(sources) == 0 {
		return nil, errors.New("cipher: keyring: no key versions given")
	}
	if _, ok := sources[active]; !ok {
		return nil, fmt.Errorf("cipher: keyring: active key id %q is not among the key versions", active)
	}
	ids := make([]string, 0, len(sources))
	for id := range sources {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	keys := make(map[string]Key, len(sources))
	for _, id := range ids {
		if err := ValidateKeyID(id); err != nil {
			return nil, fmt.Errorf("cipher: keyring: %w", err)
		}
		src := sources[id]
		if src == nil {
			return nil, fmt.Errorf("cipher: key %s: no source given", id)
		}
		k, err := src.LoadKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("cipher: key %s: %w", id, err)
		}
		keys[id] = k
	}
	return NewKeyring(active, keys)
}

// Active returns the id of the key version used for new envelopes.
func (kr *Keyring) Active() string { return kr.active.id }

// KeyIDs returns the ids of all key versions, sorted.
func (kr *Keyring) KeyIDs() []string { return slices.Clone(kr.ids) }

// Has reports whether the keyring holds key version id.
func (kr *Keyring) Has(id string) bool { _, ok := kr.keys[id]; return ok }

// Column returns the cipher for one column. Build it once per column and
// reuse it: it is immutable and safe for concurrent use.
//
// name is used only in error messages (typically "schema.table.column").
// mode selects the envelope written by [Column.Encrypt]; [Column.Decrypt]
// reads both forms. ad is the associated data that binds values to the
// column; it is copied. nil or empty means no associated data, which is the
// seed's own format (Python AESGCM(key).encrypt(nonce, pt, None)).
func (kr *Keyring) Column(name string, mode Mode, ad []byte) (*Column, error) {
	if !mode.valid() {
		return nil, fmt.Errorf("cipher: column %q: invalid mode %d", name, uint8(mode))
	}
	var adCopy []byte
	if len(ad) > 0 {
		adCopy = slices.Clone(ad)
	}
	return &Column{name: name, mode: mode, ad: adCopy, kr: kr}, nil
}
