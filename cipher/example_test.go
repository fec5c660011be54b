package cipher_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

func Example() {
	// Normally the config layer builds the sources from `keys.versions`.
	env := map[string]string{
		"PGCRYPT_KEY_V1": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"PGCRYPT_KEY_V2": "H+FIEHSzqBs1JSI0LbPgG/8Q6drGlgfMCIjMYBd1LH8=",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	kr, err := cipher.LoadKeyring(context.Background(), "v2", map[string]cipher.KeySource{
		"v1": cipher.EnvSource{Name: "PGCRYPT_KEY_V1", LookupEnv: lookup},
		"v2": cipher.EnvSource{Name: "PGCRYPT_KEY_V2", LookupEnv: lookup},
	})
	if err != nil {
		log.Fatal(err)
	}

	// One Column per policy column, built once.
	email, err := kr.Column("public.clients.email", cipher.Deterministic, []byte("public.clients.email"))
	if err != nil {
		log.Fatal(err)
	}
	env1, _ := email.Encrypt(nil, []byte("john@example.com"))
	env2, _ := email.Encrypt(nil, []byte("john@example.com"))
	fmt.Println(string(env1[:7]), string(env1) == string(env2))

	pt, _ := email.Decrypt(nil, env1)
	fmt.Println(string(pt))

	// Plaintext stored before a backfill is not an envelope.
	_, err = email.Decrypt(nil, []byte("jane@example.com"))
	fmt.Println(errors.Is(err, cipher.ErrNotEnvelope))

	// A value from another column does not authenticate.
	phone, _ := kr.Column("public.clients.phone", cipher.Deterministic, []byte("public.clients.phone"))
	_, err = phone.Decrypt(nil, env1)
	var de *cipher.DecryptError
	fmt.Println(errors.As(err, &de), de.Reason)
	fmt.Println(err)

	// Output:
	// v2:siv: true
	// john@example.com
	// true
	// true authentication failed
	// cipher: cannot decrypt value of column "public.clients.phone": authentication failed under key id "v2" (wrong key, tampered value, or value from another column)
}

func ExampleEnvelopeLen() {
	// first_name was varchar(255); the encrypted column needs:
	fmt.Println(cipher.EnvelopeLen(255, cipher.Randomized, "v1"))
	// ASCII-only data needs less:
	fmt.Println(cipher.EnvelopeLenBytes(255, cipher.Randomized, "v1"))
	// Output:
	// 1404
	// 384
}

func ExampleKey() {
	k, _ := cipher.GenerateKey(nil)
	cfg := struct {
		ID  string
		Key cipher.Key
	}{"v1", k}
	fmt.Printf("%v %+v %#v\n", cfg, cfg, k)
	// Output: {v1 [REDACTED]} {ID:v1 Key:[REDACTED]} [REDACTED]
}
