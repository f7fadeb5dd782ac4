//go:build integration

package kms_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/stages/encrypt"
	"github.com/gdexport/gdexport/stages/encrypt/kms"
	"github.com/gdexport/gdexport/testing/containers"
)

func TestLocalKMS(t *testing.T) {
	lk := containers.StartLocalKMS(t)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("gdexport-test", "gdexport-test-secret", "")
	admin := awskms.New(awskms.Options{Region: lk.Region, Credentials: creds, BaseEndpoint: aws.String(lk.URL)})
	newKey := func(t *testing.T) string {
		t.Helper()
		out, err := admin.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("gdexport test")})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		return aws.ToString(out.KeyMetadata.Arn)
	}
	keys, err := kms.NewKeys(kms.WithEndpoint(lk.URL), kms.WithCredentials(creds), kms.WithRegion(lk.Region))
	if err != nil {
		t.Fatal(err)
	}
	const objKey = "guardduty/AWSLogs/111122223333/GuardDuty/us-east-1/2026/03/14/20260314T120000Z-new-00112233aabbccdd.jsonl.gz"
	dest := func(keyArn string) *pipeline.Destination {
		return &pipeline.Destination{ID: "d-env", Account: "111122223333", Region: "us-east-1", Type: pipeline.DestinationS3,
			Arn: "arn:aws:s3:::findings-env/guardduty", Prefix: "guardduty", KmsKeyArn: keyArn, Encryption: pipeline.EncryptionEnvelope}
	}
	enc := encrypt.NewEncryptor(keys.ForDestination)
	gz := []byte("\x1f\x8b\x08\x00 gzip of a batch")
	seal := func(d *pipeline.Destination) (*pipeline.Object, error) { return enc.Encrypt(ctx, d, objKey, gz, 1) }
	open := func(body []byte) ([]byte, error) {
		return encrypt.Open(ctx, func(provider, keyID string) (encrypt.KeyProvider, error) {
			if provider != kms.ProviderName {
				return nil, encrypt.ErrUnknownProvider
			}
			return keys.Provider(ctx, keyID, "")
		}, body)
	}

	t.Run("envelope round trip", func(t *testing.T) {
		arn := newKey(t)
		d := dest(arn)
		calls, checks := keys.Calls(), keys.VerifyCalls()
		if err := keys.CheckKey(ctx, d); err != nil {
			t.Fatalf("CheckKey: %v", err)
		}
		if keys.VerifyCalls() != checks+1 || keys.Calls() != calls {
			t.Fatalf("CheckKey counted %d verification and %d object calls, want 1 and 0", keys.VerifyCalls()-checks, keys.Calls()-calls)
		}
		obj, err := seal(d)
		if err != nil {
			t.Fatal(err)
		}
		provider, keyID, encCtx, err := encrypt.Header(obj.Body)
		if err != nil || provider != kms.ProviderName || keyID != arn || encCtx["bucket"] != "findings-env" || encCtx["key"] != objKey {
			t.Fatalf("header %s %s %v %v", provider, keyID, encCtx, err)
		}
		plain, err := open(obj.Body)
		if err != nil || string(plain) != string(gz) {
			t.Fatalf("open: %q, %v", plain, err)
		}
		// One GenerateDataKey to seal the object, one Decrypt to open it.
		if got := keys.Calls() - calls; got != 2 {
			t.Fatalf("%d KMS calls for one object sealed and opened, want 2 (generate, decrypt)", got)
		}
	})

	t.Run("disabled key", func(t *testing.T) {
		arn := newKey(t)
		obj, err := seal(dest(arn))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
		if _, err := seal(dest(arn)); !pipeline.IsAccess(err) {
			t.Fatalf("seal with a disabled key: err = %v, want an access error", err)
		}
		if err := keys.CheckKey(ctx, dest(arn)); !pipeline.IsAccess(err) {
			t.Fatalf("check a disabled key: err = %v, want an access error", err)
		}
		if _, err := open(obj.Body); !pipeline.IsAccess(err) {
			t.Fatalf("open with a disabled key: err = %v, want an access error", err)
		}
	})

	t.Run("deleted key", func(t *testing.T) {
		arn := newKey(t)
		if _, err := admin.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(arn), PendingWindowInDays: aws.Int32(7)}); err != nil {
			t.Fatal(err)
		}
		if _, err := seal(dest(arn)); !pipeline.IsAccess(err) {
			t.Fatalf("seal with a key pending deletion: err = %v, want an access error", err)
		}
	})

	t.Run("missing key", func(t *testing.T) {
		arn := "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"
		if _, err := seal(dest(arn)); !pipeline.IsAccess(err) {
			t.Fatalf("seal with a missing key: err = %v, want an access error", err)
		}
	})

	t.Run("altered context", func(t *testing.T) {
		arn := newKey(t)
		p, err := keys.ForDestination(dest(arn))
		if err != nil {
			t.Fatal(err)
		}
		_, wrapped, err := p.GenerateDataKey(ctx, map[string]string{"key": "a"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Decrypt(ctx, arn, wrapped, map[string]string{"key": "b"}); !errors.Is(err, encrypt.ErrTampered) {
			t.Fatalf("decrypt with another context: err = %v, want ErrTampered", err)
		}
	})
}
