package encrypt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gdexport/gdexport/pipeline"
)

func TestEncrypt(t *testing.T) {
	ctx := context.Background()
	local := &countingProvider{KeyProvider: testLocal(t)}
	gz := []byte("\x1f\x8b\x08\x00 gzip of a batch")
	const key = "guardduty/AWSLogs/111122223333/GuardDuty/us-east-1/2026/03/14/20260314T120000Z-new-00112233aabbccdd.jsonl.gz"
	const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	providerFor := func(*pipeline.Destination) (KeyProvider, error) { return local, nil }
	cases := []struct {
		name        string
		dest        pipeline.Destination
		providerFor ProviderFor
		want        pipeline.Object // Body checked separately
		wantErr     error
		wantCalls   int64
	}{
		{
			// The embedded default: a LOCAL directory sealed with the local key.
			name:        "envelope",
			dest:        pipeline.Destination{ID: "d-env", Type: pipeline.DestinationLocal, Encryption: pipeline.EncryptionEnvelope},
			providerFor: providerFor,
			want:        pipeline.Object{Key: key + ".enc", ContentType: "application/octet-stream", Lines: 7},
			wantCalls:   1,
		},
		{
			// Envelope on S3 (opt-in): the context also names the bucket.
			name:        "envelope on s3",
			dest:        pipeline.Destination{ID: "d-s3env", Type: pipeline.DestinationS3, Arn: "arn:aws:s3:::my-findings-bucket/guardduty", Encryption: pipeline.EncryptionEnvelope},
			providerFor: providerFor,
			want:        pipeline.Object{Key: key + ".enc", ContentType: "application/octet-stream", Lines: 7},
			wantCalls:   1,
		},
		{
			// GuardDuty's own mode: the store encrypts; the body stays gzip.
			name: "sse-kms",
			dest: pipeline.Destination{ID: "d-kms", Type: pipeline.DestinationS3, Encryption: pipeline.EncryptionSSEKMS, KmsKeyArn: arn},
			want: pipeline.Object{Key: key, ContentType: "application/gzip", SSEKMSKeyID: arn, Lines: 7},
		},
		{
			// A typo in configuration must not write unencrypted objects.
			name:    "unknown mode",
			dest:    pipeline.Destination{ID: "d-x", Type: pipeline.DestinationS3, Encryption: "aes"},
			wantErr: ErrEncryptionMode,
		},
		{
			name:    "empty mode",
			dest:    pipeline.Destination{ID: "d-x", Type: pipeline.DestinationS3},
			wantErr: ErrEncryptionMode,
		},
		{
			// SSE-KMS needs the key the bucket policy demands.
			name:    "sse-kms without key",
			dest:    pipeline.Destination{ID: "d-x", Type: pipeline.DestinationS3, Encryption: pipeline.EncryptionSSEKMS},
			wantErr: ErrEncryptionMode,
		},
		{
			// A local directory cannot apply SSE-KMS: it would store plaintext.
			name:    "sse-kms on local",
			dest:    pipeline.Destination{ID: "d-x", Type: pipeline.DestinationLocal, Encryption: pipeline.EncryptionSSEKMS, KmsKeyArn: arn},
			wantErr: ErrEncryptionMode,
		},
		{
			name:    "envelope without providers",
			dest:    pipeline.Destination{ID: "d-x", Type: pipeline.DestinationLocal, Encryption: pipeline.EncryptionEnvelope},
			wantErr: ErrEncryptionMode,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := local.generate.Load()
			obj, err := NewEncryptor(tc.providerFor).Encrypt(ctx, &tc.dest, key, gz, 7)
			if calls := local.generate.Load() - before; calls != tc.wantCalls {
				t.Fatalf("%d key provider calls, want %d", calls, tc.wantCalls)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !pipeline.IsAccess(err) {
					t.Fatalf("err = %v, want %v and pipeline.ErrAccess", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body := obj.Body
			if obj.Key != tc.want.Key || obj.ContentType != tc.want.ContentType || obj.SSEKMSKeyID != tc.want.SSEKMSKeyID || obj.Lines != tc.want.Lines {
				t.Fatalf("object = %+v, want %+v", *obj, tc.want)
			}
			if tc.dest.Encryption == pipeline.EncryptionSSEKMS {
				if !bytes.Equal(body, gz) {
					t.Fatal("SSE-KMS body differs from the gzip bytes")
				}
				return
			}
			_, _, encCtx, err := Header(body)
			wantCtx := 2
			if tc.dest.Type == pipeline.DestinationS3 {
				wantCtx = 3
				if encCtx[ContextBucket] != "my-findings-bucket" {
					t.Fatalf("encryption context %v, want bucket my-findings-bucket", encCtx)
				}
			}
			if err != nil || encCtx[ContextDestination] != tc.dest.ID || encCtx[ContextKey] != key || len(encCtx) != wantCtx {
				t.Fatalf("encryption context %v (%v), want destination %s and key without .enc", encCtx, err, tc.dest.ID)
			}
			plain, err := Open(ctx, Providers(local), body)
			if err != nil || !bytes.Equal(plain, gz) {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

func TestLocalKeys(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	keys := NewLocalKeys(filepath.Join(dir, "data", "keys", "local-master.key"))
	get := func(keyFile string) KeyProvider {
		t.Helper()
		p, err := keys.ForDestination(&pipeline.Destination{ID: "d", KeyFile: keyFile})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := get("")
	// The same file by a relative and an absolute path is one cached key.
	if get("data/keys/local-master.key") != def || get(filepath.Join(dir, "data/keys/local-master.key")) != def {
		t.Fatal("one key file gave two providers")
	}
	other := get("other/local-master.key")
	if other == def || other.KeyID() == def.KeyID() {
		t.Fatal("two key files gave one key")
	}
	// Cached: a key file replaced under a running worker is not re-read.
	if err := os.Remove("other/local-master.key"); err != nil {
		t.Fatal(err)
	}
	if get("other/local-master.key") != other {
		t.Fatal("provider not cached per path")
	}
	if _, err := NewLocalKeys("").ForDestination(&pipeline.Destination{ID: "d"}); !errors.Is(err, ErrNoKeyFile) || !pipeline.IsAccess(err) {
		t.Fatalf("no key file anywhere: err = %v, want ErrNoKeyFile", err)
	}
	// A refused key file is not cached: fixing it takes effect at once.
	bad := filepath.Join(dir, "bad.key")
	writeKey(t, bad, make([]byte, 32), 0o644)
	if _, err := keys.Get(bad); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("err = %v, want ErrKeyFile", err)
	}
	if err := os.Chmod(bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Get(bad); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
}
