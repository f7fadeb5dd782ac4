//go:build integration

package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/sinks/s3"
	"github.com/gdexport/gdexport/testing/containers"
)

// env is one MinIO for the tests of this file, with an admin client.
type env struct {
	minio *containers.MinIO
	admin *awss3.Client
	creds aws.CredentialsProvider
}

func setup(t *testing.T) *env {
	t.Helper()
	m := containers.StartMinIO(t)
	creds := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	admin := awss3.New(awss3.Options{Region: m.Region, Credentials: creds, BaseEndpoint: aws.String(m.URL), UsePathStyle: true})
	return &env{minio: m, admin: admin, creds: creds}
}

func (e *env) bucket(t *testing.T, name string) {
	t.Helper()
	if _, err := e.admin.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

func (e *env) sink(t *testing.T, opts ...s3.Option) *s3.Sink {
	t.Helper()
	s, err := s3.New(append([]s3.Option{s3.WithCredentials(e.creds), s3.WithRegion(e.minio.Region)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) dest(bucket, prefix string) *pipeline.Destination {
	arn := "arn:aws:s3:::" + bucket
	if prefix != "" {
		arn += "/" + prefix
	}
	return &pipeline.Destination{ID: "d-" + bucket, Account: "111122223333", Region: "us-east-1", Type: pipeline.DestinationS3,
		Arn: arn, Prefix: prefix, KmsKeyArn: e.minio.KMSKey, Encryption: pipeline.EncryptionSSEKMS, Endpoint: e.minio.URL}
}

func batch() *pipeline.Batch {
	return &pipeline.Batch{ID: "00112233aabbccdd", Account: "111122223333", Region: "us-east-1", Lane: pipeline.LaneNew,
		SealedAt: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC).UnixMilli()}
}

func TestMinIO(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	t.Run("sse-kms object under the layout's key", func(t *testing.T) {
		e.bucket(t, "findings-sse")
		d := e.dest("findings-sse", "guardduty")
		key := batch().ObjectKey(d.Prefix)
		if key != "guardduty/AWSLogs/111122223333/GuardDuty/us-east-1/2026/03/14/20260314T120000Z-new-00112233aabbccdd.jsonl.gz" {
			t.Fatalf("key %s", key)
		}
		body := []byte("\x1f\x8b\x08\x00 gzip of a batch")
		s := e.sink(t)
		// Twice: a retried batch overwrites its own object.
		for range 2 {
			if err := s.PutObject(ctx, d, &pipeline.Object{Key: key, Body: body, ContentType: "application/gzip", SSEKMSKeyID: d.KmsKeyArn, Lines: 1}); err != nil {
				t.Fatal(err)
			}
		}
		head, err := e.admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("findings-sse"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if head.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !strings.HasSuffix(aws.ToString(head.SSEKMSKeyId), e.minio.KMSKey) {
			t.Fatalf("HeadObject: encryption %q key %q, want aws:kms and %s", head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId), e.minio.KMSKey)
		}
		t.Logf("HeadObject: %s, key id %s", head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId))
		if aws.ToString(head.ContentType) != "application/gzip" || head.ContentEncoding != nil {
			t.Fatalf("HeadObject: Content-Type %q, Content-Encoding %q; want application/gzip and none", aws.ToString(head.ContentType), aws.ToString(head.ContentEncoding))
		}
		if got := get(t, e.admin, "findings-sse", key); !bytes.Equal(got, body) {
			t.Fatalf("body %q", got)
		}
		list, err := e.admin.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("findings-sse")})
		if err != nil || len(list.Contents) != 1 {
			t.Fatalf("%d objects (%v), want 1", len(list.Contents), err)
		}
		if st := s.Stats(); st.Objects != 2 || st.Requests != 2 || st.Multipart != 0 {
			t.Fatalf("stats %+v, want 2 objects in 2 requests", st)
		}
	})

	t.Run("multipart above the threshold", func(t *testing.T) {
		e.bucket(t, "findings-multipart")
		d := e.dest("findings-multipart", "")
		s := e.sink(t, s3.WithMultipartThreshold(s3.MinPartSize), s3.WithPartSize(s3.MinPartSize))
		body := make([]byte, 11<<20)
		_, _ = rand.Read(body)
		key := batch().ObjectKey("")
		if err := s.PutObject(ctx, d, &pipeline.Object{Key: key, Body: body, ContentType: "application/gzip", SSEKMSKeyID: d.KmsKeyArn}); err != nil {
			t.Fatal(err)
		}
		head, err := e.admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("findings-multipart"), Key: aws.String(key)})
		if err != nil || head.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(head.ContentType) != "application/gzip" {
			t.Fatalf("HeadObject %+v, %v", head, err)
		}
		if got := get(t, e.admin, "findings-multipart", key); !bytes.Equal(got, body) {
			t.Fatal("multipart object differs from its body")
		}
		// Create, two parts (the 1 MiB tail folds into the second), complete.
		if st := s.Stats(); st.Multipart != 1 || st.Requests != 4 {
			t.Fatalf("stats %+v, want 1 multipart object in 4 requests", st)
		}
	})

	t.Run("create bucket and verify", func(t *testing.T) {
		d := e.dest("findings-created", "team-a")
		s := e.sink(t)
		warnings, err := s.CreateBucket(ctx, d, "arn:aws:iam::111122223333:role/gdexport")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("create-bucket warnings: %q", warnings)
		enc, err := e.admin.GetBucketEncryption(ctx, &awss3.GetBucketEncryptionInput{Bucket: aws.String("findings-created")})
		if err != nil {
			t.Fatalf("default encryption: %v", err)
		}
		if r := enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault; r.SSEAlgorithm != types.ServerSideEncryptionAwsKms {
			t.Fatalf("default encryption %+v", r)
		}
		// Creating again configures the bucket we own, without failing.
		if _, err := s.CreateBucket(ctx, d, "arn:aws:iam::111122223333:role/gdexport"); err != nil {
			t.Fatalf("create again: %v", err)
		}
		v, err := s.Verify(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if v.Region != "us-east-1" || !v.ProbeDeleted || !strings.HasPrefix(v.ProbeKey, "team-a/gdexport-write-probe/") || len(v.Warnings) == 0 {
			t.Fatalf("verification %+v", v)
		}
		list, _ := e.admin.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("findings-created")})
		if len(list.Contents) != 0 {
			t.Fatalf("probe left behind: %v", aws.ToString(list.Contents[0].Key))
		}
	})

	t.Run("access errors", func(t *testing.T) {
		e.bucket(t, "findings-denied")
		s := e.sink(t)
		obj := func(d *pipeline.Destination) *pipeline.Object {
			return &pipeline.Object{Key: batch().ObjectKey(""), Body: []byte("x"), ContentType: "application/gzip", SSEKMSKeyID: d.KmsKeyArn}
		}
		// A deleted bucket.
		gone := e.dest("findings-deleted", "")
		err := s.PutObject(ctx, gone, obj(gone))
		if !pipeline.IsAccess(err) || s3.ErrorCode(err) != "NoSuchBucket" {
			t.Fatalf("deleted bucket: err = %v, want an access error (NoSuchBucket)", err)
		}
		if _, err := s.Verify(ctx, gone); !pipeline.IsAccess(err) {
			t.Fatalf("verify deleted bucket: err = %v, want an access error", err)
		}
		// A key the store's KMS does not have.
		badKey := e.dest("findings-denied", "")
		badKey.KmsKeyArn = "no-such-key"
		if err := s.PutObject(ctx, badKey, obj(badKey)); !pipeline.IsAccess(err) {
			t.Fatalf("unknown KMS key: err = %v (code %s), want an access error", err, s3.ErrorCode(err))
		} else {
			t.Logf("unknown KMS key: %s", s3.ErrorCode(err))
		}
		// A write denied by policy: credentials whose session policy only reads.
		ro := readOnlyCredentials(t, e)
		denied, err := s3.New(s3.WithCredentials(ro), s3.WithRegion(e.minio.Region))
		if err != nil {
			t.Fatal(err)
		}
		d := e.dest("findings-denied", "")
		err = denied.PutObject(ctx, d, obj(d))
		if !pipeline.IsAccess(err) || s3.ErrorCode(err) != "AccessDenied" {
			t.Fatalf("denied write: err = %v, want an access error (AccessDenied)", err)
		}
		v, err := denied.Verify(ctx, d)
		if !pipeline.IsAccess(err) || v.Region != "us-east-1" {
			t.Fatalf("verify denied write: %+v, err = %v; want the Region read and an access error", v, err)
		}
		// A store that is not there is transient: retried, not a property to fix.
		down := e.dest("findings-denied", "")
		down.Endpoint = "http://127.0.0.1:1"
		if err := s.PutObject(ctx, down, obj(down)); err == nil || pipeline.IsAccess(err) {
			t.Fatalf("connection refused: err = %v, want a transient error", err)
		}
	})
}

// readOnlyCredentials asks MinIO's STS for temporary credentials of the
// root user restricted by a session policy that only reads.
func readOnlyCredentials(t *testing.T, e *env) aws.CredentialsProvider {
	t.Helper()
	c := sts.New(sts.Options{Region: e.minio.Region, Credentials: e.creds, BaseEndpoint: aws.String(e.minio.URL)})
	out, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::111122223333:role/read-only"),
		RoleSessionName: aws.String("gdexport-test"),
		Policy:          aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::*"]}]}`),
	})
	if err != nil {
		t.Fatalf("MinIO AssumeRole: %v", err)
	}
	cr := out.Credentials
	return credentials.NewStaticCredentialsProvider(aws.ToString(cr.AccessKeyId), aws.ToString(cr.SecretAccessKey), aws.ToString(cr.SessionToken))
}

func get(t *testing.T, c *awss3.Client, bucket, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
