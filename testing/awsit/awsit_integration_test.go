//go:build integration

package awsit

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/sinks/s3"
	"github.com/gdexport/gdexport/stages/compress"
	"github.com/gdexport/gdexport/stages/encrypt"
	"github.com/gdexport/gdexport/stages/encrypt/kms"
	"github.com/gdexport/gdexport/testing/containers"
	"github.com/gdexport/gdexport/testing/process"
)

func TestEnvelopeOnS3ThroughKMS(t *testing.T) {
	ctx := context.Background()
	containers.Require(t) // before any AWS client: fences the SDK in on loopback
	m := containers.StartMinIO(t)
	lk := containers.StartLocalKMS(t)
	// local-kms accepts any credentials: one identity for both, as in production.
	creds := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	admin := awss3.New(awss3.Options{Region: m.Region, Credentials: creds, BaseEndpoint: aws.String(m.URL), UsePathStyle: true})
	kmsAdmin := awskms.New(awskms.Options{Region: lk.Region, Credentials: creds, BaseEndpoint: aws.String(lk.URL)})
	newKey := func() string {
		out, err := kmsAdmin.CreateKey(ctx, &awskms.CreateKeyInput{})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		return aws.ToString(out.KeyMetadata.Arn)
	}
	if _, err := admin.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String("findings-envelope")}); err != nil {
		t.Fatal(err)
	}
	keys, err := kms.NewKeys(kms.WithCredentials(creds), kms.WithRegion(lk.Region))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := s3.New(s3.WithCredentials(creds), s3.WithRegion(m.Region), s3.WithKeyChecker(keys.CheckKey))
	if err != nil {
		t.Fatal(err)
	}
	dest := func(keyArn string) *pipeline.Destination {
		return &pipeline.Destination{ID: "d-envelope", Account: "111122223333", Region: "us-east-1", Type: pipeline.DestinationS3,
			Arn: "arn:aws:s3:::findings-envelope/guardduty", Prefix: "guardduty", KmsKeyArn: keyArn,
			Encryption: pipeline.EncryptionEnvelope, Endpoint: m.URL, KmsEndpoint: lk.URL}
	}
	enc := encrypt.NewEncryptor(keys.ForDestination)
	lines := [][]byte{[]byte(`{"id":"f1","accountId":"111122223333","region":"us-east-1"}`), []byte(`{"id":"f2","accountId":"111122223333","region":"us-east-1"}`)}
	gz, err := compress.Gzip(nil, lines)
	if err != nil {
		t.Fatal(err)
	}
	b := &pipeline.Batch{ID: "00112233aabbccdd", Account: "111122223333", Region: "us-east-1", Lane: pipeline.LaneNew,
		SealedAt: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC).UnixMilli()}
	write := func(d *pipeline.Destination) (*pipeline.Object, error) {
		obj, err := enc.Encrypt(ctx, d, b.ObjectKey(d.Prefix), gz, len(lines))
		if err != nil {
			return nil, err
		}
		return obj, sink.PutObject(ctx, d, obj)
	}

	arn := newKey()
	v, err := sink.Verify(ctx, dest(arn))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !v.KeyChecked || !v.ProbeDeleted {
		t.Fatalf("verification %+v: want the key checked through KMS and the probe deleted", v)
	}
	obj, err := write(dest(arn))
	if err != nil {
		t.Fatal(err)
	}
	wantKey := "guardduty/AWSLogs/111122223333/GuardDuty/us-east-1/2026/03/14/20260314T120000Z-new-00112233aabbccdd.jsonl.gz.enc"
	if obj.Key != wantKey {
		t.Fatalf("key %s, want %s", obj.Key, wantKey)
	}
	head, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("findings-envelope"), Key: aws.String(wantKey)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(head.ContentType) != "application/octet-stream" || head.ContentEncoding != nil || head.ServerSideEncryption == "aws:kms" {
		t.Fatalf("HeadObject: type %q encoding %v sse %q", aws.ToString(head.ContentType), head.ContentEncoding, head.ServerSideEncryption)
	}
	got, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("findings-envelope"), Key: aws.String(wantKey)})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	reader, err := kms.NewKeys(kms.WithCredentials(creds), kms.WithEndpoint(lk.URL))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := encrypt.Open(ctx, func(_, keyID string) (encrypt.KeyProvider, error) { return reader.Provider(ctx, keyID, "") }, body)
	if err != nil || !bytes.Equal(plain, gz) {
		t.Fatalf("open through local-kms: %v", err)
	}

	// gdexport decrypt reads it back through KMS Decrypt with the standard chain.
	dir := t.TempDir()
	file := filepath.Join(dir, filepath.Base(wantKey))
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := process.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	decrypt := func() (string, error) {
		cmd := exec.Command(bin, "decrypt", "--kms-endpoint", lk.URL, "--region", lk.Region, file)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			return errOut.String(), err
		}
		return out.String(), nil
	}
	out, err := decrypt()
	if err != nil || out != string(lines[0])+"\n"+string(lines[1])+"\n" {
		t.Fatalf("gdexport decrypt: %q, %v", out, err)
	}

	// A disabled key: the write, the verification and the read are access errors.
	if _, err := kmsAdmin.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := write(dest(arn)); !pipeline.IsAccess(err) {
		t.Fatalf("write with a disabled key: err = %v, want an access error", err)
	}
	if _, err := sink.Verify(ctx, dest(arn)); !pipeline.IsAccess(err) {
		t.Fatalf("verify with a disabled key: err = %v, want an access error", err)
	}
	if msg, err := decrypt(); err == nil || !strings.Contains(msg, "DisabledException") {
		t.Fatalf("gdexport decrypt with a disabled key: %q, %v", msg, err)
	}
	// A deleted key (pending deletion) and a missing one likewise.
	deleted := newKey()
	if _, err := kmsAdmin.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(deleted), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{deleted, "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"} {
		if _, err := write(dest(k)); !pipeline.IsAccess(err) {
			t.Fatalf("write with key %s: err = %v, want an access error", k, err)
		}
		if _, err := sink.Verify(ctx, dest(k)); !pipeline.IsAccess(err) {
			t.Fatalf("verify with key %s: err = %v, want an access error", k, err)
		}
	}
}
