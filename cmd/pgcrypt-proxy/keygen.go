package main

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

func runKeygen(_ context.Context, args []string, e env) error {
	fs := newFlagSet("keygen", e)
	id := fs.String("id", "", "also print a keys.versions YAML entry for this key id (e.g. v2)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id != "" {
		if err := cipher.ValidateKeyID(*id); err != nil {
			return &usageError{msg: err.Error()}
		}
	}
	key, err := cipher.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating key: %w", err)
	}
	if *id == "" {
		fmt.Fprintln(e.stdout, key.Base64())
		return nil
	}
	v := envName(*id)
	fmt.Fprintf(e.stdout, "# Store the key in a secret, then reference it from the config:\n")
	fmt.Fprintf(e.stdout, "#   export %s=%s\n", v, key.Base64())
	fmt.Fprintf(e.stdout, "keys:\n  versions:\n    %s: { env: %s }\n", *id, v)
	return nil
}

// envName turns a key id into the conventional variable name: v2 -> PGCRYPT_KEY_V2.
func envName(id string) string {
	b := []byte("PGCRYPT_KEY_")
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c == '.' || c == '-':
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}
