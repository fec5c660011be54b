package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5"

	"github.com/pgcrypt-proxy/pgcrypt-proxy/cipher"
)

// awsTestEnv is what the proxy and keygen need to reach the emulator:
// local-kms accepts any credentials.
var awsTestEnv = []string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true"}

// startLocalKMS builds and starts github.com/nsmithuk/local-kms (a tool
// dependency in go.mod) on a free port and returns its endpoint.
func startLocalKMS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "local-kms")
	build := exec.Command("go", "build", "-o", bin, "github.com/nsmithuk/local-kms")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building local-kms: %v\n%s", err, out)
	}
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "KMS_DATA_PATH="+filepath.Join(dir, "data"),
		"KMS_SEED_PATH="+filepath.Join(dir, "no-seed.yaml"), "KMS_REGION=eu-west-2")
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("local-kms log:\n%s", log.String())
		}
	})
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, "local-kms to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return endpoint
}

func kmsClient(endpoint string) *awskms.Client {
	return awskms.New(awskms.Options{
		Region:       "eu-west-2",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:   &http.Client{Timeout: 10 * time.Second},
	})
}

// TestAWSKMSKeys: keygen --aws-kms prints a data key wrapped by the KMS
// key; the proxy unwraps it at start and encrypts with it (the value
// decrypts with the key KMS unwraps, and only with it); a KMS refusal or
// an unreachable KMS stops serve with a message naming the key version,
// and on reload keeps the old keys in force.
func TestAWSKMSKeys(t *testing.T) {
	f := newEncFixture(t, false)
	ctx := testCtx(t)
	endpoint := startLocalKMS(t)
	client := kmsClient(endpoint)
	key, err := client.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := client.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keyID := *key.KeyMetadata.KeyId

	code, out, errOut := runCLI(t, awsTestEnv, "keygen", "--id", "v1", "--aws-kms", keyID, "--aws-region", "eu-west-2", "--aws-endpoint", endpoint)
	if code != 0 {
		t.Fatalf("keygen --aws-kms: exit %d\n%s", code, errOut)
	}
	var wrapped string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "ciphertext: "); ok {
			wrapped = v
		}
	}
	blob, err := base64.StdEncoding.DecodeString(wrapped)
	if err != nil || wrapped == "" {
		t.Fatalf("keygen printed no wrapped key:\n%s", out)
	}
	plain, err := client.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: blob})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, base64.StdEncoding.EncodeToString(plain.Plaintext)) {
		t.Fatal("keygen printed the plaintext data key")
	}
	file := filepath.Join(t.TempDir(), "v1.wrapped")
	if err := os.WriteFile(file, []byte(wrapped+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := func(kmsKey, endpoint string) string {
		return fmt.Sprintf("keys: { active: v1, versions: { v1: { aws_kms: { key_id: %q, region: eu-west-2, endpoint: %q }, ciphertext_file: %s } } }", kmsKey, endpoint, file)
	}
	const policy = "encrypt:\n  - table: clients\n    columns: [ { name: first_name } ]\n"
	p := startBinaryKeys(t, pg.Addr(), keys(keyID, endpoint), awsTestEnv, policy)
	conn := p.connect(t, f.db, pgx.QueryExecModeCacheStatement)
	if _, err := conn.Exec(ctx, "insert into clients (workspace_id, first_name, last_name) values ((select id from workspaces limit 1), $1, 'L')", "Kms Ann"); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := f.direct.QueryRow(ctx, "select first_name from clients").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	k, err := cipher.KeyFromBytes(plain.Plaintext)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := cipher.NewKeyring("v1", map[string]cipher.Key{"v1": k})
	col, _ := kr.Column("public.clients.first_name", cipher.Randomized, []byte("public.clients.first_name"))
	if pt, err := col.Decrypt(nil, []byte(stored)); err != nil || string(pt) != "Kms Ann" {
		t.Fatalf("the stored value does not decrypt with the key KMS unwraps: %q, %v", pt, err)
	}

	// KMS refuses (the data key was wrapped by another key), or cannot be
	// reached: serve does not start, and says which key version.
	for _, tc := range []struct {
		kmsKey, endpoint, want string
	}{
		{*other.KeyMetadata.KeyId, endpoint, "key v1: aws_kms " + *other.KeyMetadata.KeyId + ": KMS refused"},
		{keyID, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), "key v1: aws_kms " + keyID + ": KMS unreachable"},
	} {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		body := fmt.Sprintf("upstream: %s\n%s\n%s", pg.Addr(), keys(tc.kmsKey, tc.endpoint), policy)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCLI(t, awsTestEnv, "serve", "--config", cfg)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, wrapped) {
			t.Fatalf("serve with %s: exit %d\n%s\nwant a message with %q", tc.want, code, errOut, tc.want)
		}
	}

	// A reload whose key KMS refuses keeps the running keys.
	cur, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(cur), keyID, *other.KeyMetadata.KeyId, 1)
	if err := os.WriteFile(p.config, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "a failed reload", func() bool { r := p.reloads(t, "error"); return r != "" && r != "0" })
	var got string
	if err := conn.QueryRow(ctx, "select first_name from clients").Scan(&got); err != nil || got != "Kms Ann" {
		t.Fatalf("after a reload KMS refused: %q, %v", got, err)
	}
}
