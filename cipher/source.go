package cipher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// KeySource loads one key version. It is the seam between configuration and
// key material: the config layer turns `{ env: NAME }` into an [EnvSource] and
// `{ file: PATH }` into a [FileSource], and [LoadKeyring] calls LoadKey once
// per version at startup.
//
// A future KMS source (AWS KMS, GCP KMS, Vault transit: a wrapped key stored
// in config or a file, unwrapped by a remote call) implements this same
// interface: LoadKey performs the remote call, honouring ctx for deadlines and
// cancellation, and returns the plaintext key via [KeyFromBytes] or
// [ParseKey]; Describe returns something like "kms arn:aws:kms:...:key/...".
//
// Implementations must never put key material in errors or in Describe.
type KeySource interface {
	// LoadKey returns the key. Errors should start with Describe().
	LoadKey(ctx context.Context) (Key, error)
	// Describe names the source for messages and logs, e.g.
	// "env PGCRYPT_KEY_V1" or "file /var/run/secrets/pgcrypt/v2".
	Describe() string
}

// EnvSource reads a base64 key from an environment variable.
type EnvSource struct {
	// Name of the variable, e.g. PGCRYPT_KEY_V1.
	Name string
	// LookupEnv looks the variable up; nil means os.LookupEnv. Tests and
	// embedders can supply their own environment.
	LookupEnv func(string) (string, bool)
}

// Describe returns "env NAME", without the name when it does not look
// like a variable's (a key pasted in its place must not be printed).
func (s EnvSource) Describe() string {
	if !envName(s.Name) {
		return "env (the name given is not a variable name, so it is not shown: is it a key? give the name of the variable that holds the key)"
	}
	return "env " + s.Name
}

// envName reports whether name is a plausible environment variable
// name: letters, digits and underscores, not starting with a digit, and
// shorter than a key written in base64 or hex.
func envName(name string) bool {
	if name == "" || len(name) > 40 || ('0' <= name[0] && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// LoadKey implements [KeySource].
func (s EnvSource) LoadKey(ctx context.Context) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, fmt.Errorf("%s: %w", s.Describe(), err)
	}
	if s.Name == "" {
		return Key{}, errors.New("env: no variable name given")
	}
	lookup := s.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(s.Name)
	if !ok {
		return Key{}, fmt.Errorf("%s: variable is not set; set it to the output of `pgcrypt-proxy keygen`", s.Describe())
	}
	k, err := ParseKey(v)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", s.Describe(), err)
	}
	return k, nil
}

// maxKeyFileSize bounds how much of a key file is read. A key is 44
// characters; the slack allows comments-free files with odd whitespace.
const maxKeyFileSize = 4096

// FileSource reads a base64 key from a file, such as a Kubernetes Secret
// mounted as a volume. Surrounding whitespace (a trailing newline) is ignored.
type FileSource struct {
	Path string
}

// Describe returns "file PATH".
func (s FileSource) Describe() string { return "file " + s.Path }

// LoadKey implements [KeySource].
func (s FileSource) LoadKey(ctx context.Context) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, fmt.Errorf("%s: %w", s.Describe(), err)
	}
	if s.Path == "" {
		return Key{}, errors.New("file: no path given")
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return Key{}, fmt.Errorf("%s: cannot read key: %w", s.Describe(), err)
	}
	defer f.Close()
	buf := make([]byte, maxKeyFileSize+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		return Key{}, fmt.Errorf("%s: %w: file is larger than %d bytes; %s", s.Describe(), ErrInvalidKey, maxKeyFileSize, keyHint)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Read the whole file.
	default:
		return Key{}, fmt.Errorf("%s: cannot read key: %w", s.Describe(), err)
	}
	k, err := ParseKey(string(buf[:n]))
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", s.Describe(), err)
	}
	return k, nil
}
