package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
	"github.com/pgcrypt-proxy/pgcrypt-proxy/kms"
)

func runKeygen(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("keygen", e)
	id := fs.String("id", "", "also print a keys.versions YAML entry for this key id (e.g. v2)")
	awsKey := fs.String("aws-kms", "", "have this AWS KMS key (id, ARN or alias/NAME) make a data key and print it wrapped; the plaintext key is never shown")
	region := fs.String("aws-region", "", "with --aws-kms: the key's region (default AWS_REGION)")
	endpoint := fs.String("aws-endpoint", "", "with --aws-kms: the KMS endpoint (default the region's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id != "" {
		if err := cipher.ValidateKeyID(*id); err != nil {
			return &usageError{msg: err.Error()}
		}
	}
	if *awsKey != "" {
		k := kms.AWS{KeyID: *awsKey, Region: *region, Endpoint: *endpoint}
		wrapped, err := k.GenerateDataKey(ctx)
		if err != nil {
			return err
		}
		name := *id
		if name == "" {
			name = "v1"
		}
		fmt.Fprintf(e.stdout, "# A data key made and wrapped by AWS KMS; the proxy unwraps it at start.\n")
		fmt.Fprintf(e.stdout, "keys:\n  versions:\n    %s:\n      aws_kms: { key_id: %q", name, *awsKey)
		if *region != "" {
			fmt.Fprintf(e.stdout, ", region: %q", *region)
		}
		if *endpoint != "" {
			fmt.Fprintf(e.stdout, ", endpoint: %q", *endpoint)
		}
		fmt.Fprintf(e.stdout, " }\n      ciphertext: %s\n", base64.StdEncoding.EncodeToString(wrapped))
		return nil
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
