// Package cipher implements pgcrypt-proxy's column encryption: the ciphertext
// envelope, the keyring of key versions, randomized and deterministic AEAD,
// and key sources. It is pure: it knows nothing of the PostgreSQL protocol
// and does no I/O except reading key files.
//
// The envelope format below is stored in users' databases for years. It is
// pinned by test vectors produced by an independent Python implementation
// (testdata/gen_vectors.py, testdata/vectors.json). Do not change it; add a
// new form instead.
//
// # Envelope grammar
//
// An envelope is ASCII text with no whitespace:
//
//	envelope      = key-id ":" ( randomized / deterministic )
//	key-id        = 1*32( ALPHA / DIGIT / "_" / "." / "-" )
//	randomized    = nonce-b64 ":" payload-b64
//	deterministic = "siv" ":" payload-b64
//	nonce-b64     = 16( b64char )            ; 12 bytes, never padded
//	payload-b64   = 1*( 4b64char ) / *( 4b64char ) ( 3b64char "=" / 2b64char "==" )
//	b64char       = ALPHA / DIGIT / "+" / "/"
//
// payload-b64 is standard base64 (RFC 4648 section 4) with "=" padding: a
// non-empty multiple of 4 characters, at most two trailing "=", and it must
// decode to at least 16 bytes (the tag or synthetic IV). Encoders write the canonical encoding; decoders reject
// non-zero padding bits (so every byte string has exactly one valid encoding,
// which deterministic equality search relies on).
//
// The two forms can never be confused: the middle field is either exactly the
// three characters "siv" or exactly 16 base64 characters.
//
// A value that does not match this grammar exactly is not an envelope:
// [Column.Decrypt] returns [ErrNotEnvelope] and the caller may treat it as
// plaintext (for example plaintext still stored before a backfill); see
// [LooksLikeEnvelope]. A value that matches the grammar is always treated as
// an envelope: an unknown key id is an error ([ReasonUnknownKey]), not
// plaintext. The grammar is narrow enough that natural text practically never
// matches it. Note that accepting plaintext lets anyone who can write to the
// database inject values that are returned as is; callers should count them.
//
// # Randomized form (default)
//
//	<key id>:<base64 nonce>:<base64 ciphertext||tag>
//
// AES-256-GCM (NIST SP 800-38D) under the 32-byte column master key itself,
// with a fresh 12-byte nonce from crypto/rand for every value and a 16-byte
// tag appended to the ciphertext. This is exactly the seed's
// "v1:nonce:ciphertext" EncryptedString format: with no associated data it is
//
//	key_id + ":" + b64encode(nonce) + ":" + b64encode(AESGCM(key).encrypt(nonce, pt, None))
//
// in Python's cryptography, so values written by the seed's application-side
// code decrypt here and the reverse. Equal plaintexts give unrelated
// envelopes. It leaks the plaintext length (in bytes) and nothing else. With
// random 96-bit nonces a key should encrypt fewer than 2^32 values (NIST's
// limit); rotate keys well before that.
//
// # Deterministic form (search: equality)
//
//	<key id>:siv:<base64 SIV||ciphertext>
//
// AES-SIV as specified in RFC 5297 (AES-CMAC-SIV with two 256-bit keys,
// i.e. a 64-byte key; the 16-byte synthetic IV is prepended to the
// ciphertext), through Tink's daead/subtle.AESSIV. The S2V input is exactly
// one associated-data component (empty when the column has none) followed by
// the plaintext, as Tink's DeterministicAEAD defines it; in Python's
// cryptography that is AESSIV(k).encrypt(pt, [ad or b""]). The 64-byte SIV
// key is derived from the 32-byte column master key:
//
//	siv_key = HKDF-SHA256(ikm = master key, salt = empty, info = "pgcrypt-proxy aes-siv v1", L = 64)
//
// (RFC 5869; an empty salt is the same as a salt of 32 zero bytes). The
// master key is thus used directly by AES-GCM and, separately, as HKDF input;
// the two uses do not interact.
//
// What it leaks, by design, so that `WHERE col = $1` works on ciphertext:
// whether two values are equal, for values under the same key version and the
// same associated data (so within one column by default, across columns that
// share a fixed associated data string, and never across key versions), and the
// plaintext length in bytes. Because equality does not hold across key
// versions, a column being rotated has one envelope per version for the same
// plaintext until the rotation finishes, and a search must match all of them
// ([Column.EqualityEnvelopes]). Anyone seeing the
// column can count duplicates and, with side knowledge, guess frequent
// values. It does not leak anything else about the plaintext, and it is
// authenticated like the randomized form. Do not use it for low-entropy
// columns whose values an attacker could enumerate and compare against
// envelopes he can get the proxy to write.
//
// # Reading
//
// Decryption reads both forms whatever the column's mode (the mode only
// chooses what is written), so a column switched between modes keeps reading
// its old values until they are rewritten. The outcome is one of: the
// plaintext; [ErrNotEnvelope] (the value does not match the grammar); or a
// [*DecryptError] whose [Reason] is [ReasonUnknownKey] (key id not in the
// keyring), [ReasonMalformed] (non-canonical base64) or [ReasonAuthFailed]
// (wrong key material, tampering, or a value from a column with other
// associated data; AES-GCM and AES-SIV cannot tell these apart).
//
// # Associated data
//
// Each [Column] has fixed associated data (AD) given by the caller: by
// default the UTF-8 bytes of "schema.table.column", so an envelope copied into
// another column fails to authenticate; none (nil), the seed's own format; or
// any fixed string (so a renamed column keeps reading its values). nil and
// empty AD are the same. The AD is not stored in the envelope; it must be
// configured identically on every reader.
//
// # Keys and key ids
//
// A key version is a [Key] (32 random bytes, written as standard base64 with
// padding, as `pgcrypt-proxy keygen` prints) named by a key id. A [Keyring]
// holds all versions: the active one encrypts, all of them decrypt, and the id
// written at the start of an envelope selects the version. Rotation is: add a
// version, make it active, re-encrypt values for which [Column.IsCurrent] is
// false, then remove the old version. Keys come from a [KeySource]
// ([EnvSource], [FileSource], later KMS).
//
// Key material is never printed: [Key] redacts itself in every format, and
// no error of this package contains key bytes, plaintext or ciphertext.
//
// # NULL and empty values
//
// A SQL NULL is never passed to this package and stays NULL. The empty
// string is a value like any other and is encrypted (its envelope carries a
// 16-byte tag only).
//
// # Lengths
//
// The envelope of an n-byte plaintext is exactly
// len(key id) + 2 + 16 + 4*ceil((n+16)/3) characters for the randomized form
// and len(key id) + 2 + 3 + 4*ceil((n+16)/3) for the deterministic one; see
// [EnvelopeLen] for sizing varchar(n) columns.
package cipher
