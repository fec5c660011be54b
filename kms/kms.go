// Package kms loads data keys wrapped by a key management service: the
// configuration holds only the wrapped (encrypted) key, the service
// unwraps it once at start and at each reload, and the plaintext key lives
// only in the proxy's memory.
//
// Unwrapper is the whole interface a service needs. AWS KMS implements it
// here; another service (HashiCorp Vault's Transit engine, Google Cloud
// KMS) is a type with an Unwrap that calls that service's decrypt
// operation on the wrapped key, plus a case in config.KeyRef.Source.
package kms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// Unwrapper decrypts a wrapped data key.
type Unwrapper interface {
	// Unwrap returns the plaintext of a wrapped key.
	Unwrap(ctx context.Context, wrapped []byte) ([]byte, error)
	// Describe names the service and key for messages, e.g.
	// "aws_kms alias/pgcrypt".
	Describe() string
}

// AWS is a key in AWS KMS (or a service that speaks its API, such as
// local-kms in tests). Credentials come from the SDK's default chain: the
// environment, a shared profile, an EKS pod identity or IRSA web identity
// token, or the instance's role.
type AWS struct {
	KeyID    string // key id, ARN, alias name (alias/...) or alias ARN
	Region   string // "" uses the SDK's default (AWS_REGION)
	Endpoint string // "" uses the region's public endpoint
}

// Describe returns "aws_kms KEY".
func (a AWS) Describe() string { return "aws_kms " + a.KeyID }

func (a AWS) client(ctx context.Context) (*awskms.Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if a.Region != "" {
		opts = append(opts, awsconfig.WithRegion(a.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: AWS configuration: %w", a.Describe(), err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("%s: no region: set aws_kms.region or AWS_REGION", a.Describe())
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) {
		if a.Endpoint != "" {
			o.BaseEndpoint = aws.String(a.Endpoint)
		}
	}), nil
}

// Unwrap decrypts wrapped with KMS, which must find it made by KeyID.
func (a AWS) Unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	c, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: wrapped, KeyId: aws.String(a.KeyID)})
	if err != nil {
		return nil, fmt.Errorf("%s: %s", a.Describe(), explain(err))
	}
	return out.Plaintext, nil
}

// GenerateDataKey asks KMS for a new 256-bit data key and returns it
// wrapped by KeyID. The plaintext is dropped: the proxy unwraps it when it
// loads the configuration.
func (a AWS) GenerateDataKey(ctx context.Context) ([]byte, error) {
	c, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{
		KeyId: aws.String(a.KeyID), KeySpec: types.DataKeySpecAes256,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %s", a.Describe(), explain(err))
	}
	return out.CiphertextBlob, nil
}

// explain turns an SDK error into one line: the service's code and
// message, or why it could not be reached.
func explain(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return "KMS refused: " + ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return "KMS unreachable: " + err.Error()
}

// Source is a cipher.KeySource for a data key wrapped by U: the wrapped key
// is Wrapped (base64) or the contents of WrappedFile (base64 or raw).
type Source struct {
	U           Unwrapper
	Wrapped     string
	WrappedFile string
}

// Describe names the service and where the wrapped key is.
func (s Source) Describe() string {
	if s.WrappedFile != "" {
		return s.U.Describe() + " (ciphertext_file " + s.WrappedFile + ")"
	}
	return s.U.Describe()
}

// LoadKey implements cipher.KeySource.
func (s Source) LoadKey(ctx context.Context) (cipher.Key, error) {
	wrapped, err := s.wrapped()
	if err != nil {
		return cipher.Key{}, fmt.Errorf("%s: %w", s.Describe(), err)
	}
	plain, err := s.U.Unwrap(ctx, wrapped)
	if err != nil {
		return cipher.Key{}, err
	}
	defer clear(plain)
	k, err := cipher.KeyFromBytes(plain)
	if err != nil {
		return cipher.Key{}, fmt.Errorf("%s: the unwrapped key: %w", s.Describe(), err)
	}
	return k, nil
}

func (s Source) wrapped() ([]byte, error) {
	text := s.Wrapped
	if s.WrappedFile != "" {
		b, err := os.ReadFile(s.WrappedFile)
		if err != nil {
			return nil, err
		}
		if d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil {
			return d, nil
		}
		return b, nil // the raw CiphertextBlob, as `aws kms encrypt --output text | base64 -d` writes
	}
	d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("ciphertext is not base64: %w", err)
	}
	return d, nil
}
