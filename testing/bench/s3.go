package bench

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gdexport/gdexport/testing/containers"
)

// S3Result is what an S3 destination costs in calls: objects, S3 write
// requests and KMS calls the worker made for n findings, counted by the
// worker itself (gdexport_s3_requests_total, gdexport_kms_calls_total)
// from before the first finding, and the objects checked in the bucket.
type S3Result struct {
	// Encryption is the destination's: sse-kms (S3 encrypts with MinIO's
	// built-in key) or envelope (gdexport encrypts, data keys from
	// local-kms).
	Encryption string  `json:"encryption"`
	Findings   int     `json:"findings"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"findingsPerSecond"`
	Objects    float64 `json:"objects"`
	// ListedObjects is how many objects a listing of the bucket's
	// AWSLogs/ found at the end.
	ListedObjects int     `json:"listedObjects"`
	S3Requests    float64 `json:"s3WriteRequests"`
	KMSCalls      float64 `json:"kmsCalls"`
	// S3Requests and KMSCalls above are export's (objects);
	// VerifyRequests and VerifyKMSCalls verification's, apart.
	VerifyRequests float64 `json:"s3VerifyRequests"`
	VerifyKMSCalls float64 `json:"kmsVerifyCalls"`
	// SinkErrors is how many object and event writes failed (and were
	// retried); a failed PUT is a request too.
	SinkErrors     float64 `json:"sinkErrors"`
	RequestsPerObj float64 `json:"s3WriteRequestsPerObject"`
	KMSPerObj      float64 `json:"kmsCallsPerObject"`
	RequestsPer1k  float64 `json:"s3WriteRequestsPer1000"`
	ObjectsPer1k   float64 `json:"objectsPer1000"`
	BytesPerFind   float64 `json:"bytesStoredPerFinding"`
}

// S3 runs one worker against MinIO (and, for envelope, local-kms) in
// containers, each encryption in turn, with the default destination an S3
// bucket: it publishes n generated findings and waits until all are in
// objects.
func S3(ctx context.Context, bins Binaries, dir, durability string, n int) (res []S3Result, err error) {
	h := &harness{}
	defer h.cleanup()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			err = errors.New(string(f))
		}
	}()
	containers.Require(h)
	log.Printf("s3: starting MinIO and local-kms (images are built when missing)")
	minio := containers.StartMinIO(h)
	kmsSrv := containers.StartLocalKMS(h)
	creds := credentials.NewStaticCredentialsProvider(minio.AccessKey, minio.SecretKey, "")
	h.Setenv("AWS_ACCESS_KEY_ID", minio.AccessKey)
	h.Setenv("AWS_SECRET_ACCESS_KEY", minio.SecretKey)
	h.Setenv("AWS_REGION", minio.Region)
	s3c := awss3.New(awss3.Options{Region: minio.Region, Credentials: creds, BaseEndpoint: aws.String(minio.URL), UsePathStyle: true})
	kmsc := awskms.New(awskms.Options{Region: kmsSrv.Region, Credentials: creds, BaseEndpoint: aws.String(kmsSrv.URL)})
	key, err := kmsc.CreateKey(ctx, &awskms.CreateKeyInput{})
	if err != nil {
		return nil, fmt.Errorf("local-kms CreateKey: %w", err)
	}
	for _, enc := range []string{"sse-kms", "envelope"} {
		bucket := "bench-" + enc
		if _, err := s3c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
			return res, fmt.Errorf("create bucket %s: %w", bucket, err)
		}
		keyArn, kmsEndpoint := minio.KMSKey, ""
		if enc == "envelope" {
			keyArn, kmsEndpoint = aws.ToString(key.KeyMetadata.Arn), kmsSrv.URL
		}
		r, err := s3Run(ctx, bins, filepath.Join(dir, enc), durability, n, s3c, bucket, fmt.Sprintf(`defaultDestination:
  destinationType: S3
  destinationProperties:
    destinationArn: "arn:aws:s3:::%s"
    kmsKeyArn: %q
  encryption: %s
  endpoint: %s
  kmsEndpoint: %q
`, bucket, keyArn, enc, minio.URL, kmsEndpoint))
		if err != nil {
			return res, fmt.Errorf("%s: %w", enc, err)
		}
		r.Encryption = enc
		res = append(res, r)
	}
	return res, nil
}

func s3Run(ctx context.Context, bins Binaries, dir, durability string, n int, s3c *awss3.Client, bucket, dest string) (S3Result, error) {
	res := S3Result{Findings: n}
	ns, err := StartNATS(bins, filepath.Join(dir, "nats"), durability)
	if err != nil {
		return res, err
	}
	defer ns.Stop()
	w, err := StartWorker(bins, dir, "worker", fmt.Sprintf("dataDir: %q\nnats: {url: %q, durability: %s}\nnewFindingDelay: 1s\n%s",
		filepath.Join(dir, "data"), ns.URL, durability, dest))
	if err != nil {
		return res, err
	}
	defer w.Stop()
	// The default destination's instances are written without a
	// verification first (their gate is open until a status says
	// otherwise), so the counters start from what the worker did before
	// any finding arrived, normally nothing.
	before, err := w.Metrics(ctx)
	if err != nil {
		return res, err
	}
	pub, err := NewPublisher(ns.URL)
	if err != nil {
		return res, err
	}
	defer pub.Close()
	log.Printf("s3: publishing %d findings to an S3 destination (%s)", n, bucket)
	start := time.Now()
	if _, _, err := pub.Publish(ctx, Generated(3, n, 0), 0); err != nil {
		return res, err
	}
	if err := waitMetric(ctx, w, "gdexport_findings_exported_total", float64(n), 10*time.Minute); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.PerSecond = float64(n) / res.Seconds
	after, err := w.Metrics(ctx)
	if err != nil {
		return res, err
	}
	diff := func(name string) float64 { return Sum(after, name) - Sum(before, name) }
	res.Objects = diff("gdexport_objects_written_total")
	diffOf := func(name, purpose string) float64 {
		return sumWhere(after, name, "purpose", purpose) - sumWhere(before, name, "purpose", purpose)
	}
	res.S3Requests = diffOf("gdexport_s3_requests_total", "export")
	res.KMSCalls = diffOf("gdexport_kms_calls_total", "export")
	res.VerifyRequests = diffOf("gdexport_s3_requests_total", "verify")
	res.VerifyKMSCalls = diffOf("gdexport_kms_calls_total", "verify")
	res.SinkErrors = diff("gdexport_sink_errors_total")
	bytes := diff("gdexport_object_bytes_total")
	if res.Objects == 0 {
		return res, fmt.Errorf("no objects written")
	}
	p := awss3.NewListObjectsV2Paginator(s3c, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("AWSLogs/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return res, fmt.Errorf("list %s: %w", bucket, err)
		}
		res.ListedObjects += len(page.Contents)
	}
	if float64(res.ListedObjects) != res.Objects {
		return res, fmt.Errorf("the worker counted %.0f objects, the bucket lists %d", res.Objects, res.ListedObjects)
	}
	res.RequestsPerObj = res.S3Requests / res.Objects
	res.KMSPerObj = res.KMSCalls / res.Objects
	res.RequestsPer1k = res.S3Requests * 1000 / float64(n)
	res.ObjectsPer1k = res.Objects * 1000 / float64(n)
	res.BytesPerFind = bytes / float64(n)
	return res, nil
}

// harness is a containers.TB for a program that is not a test: Fatalf
// panics with fatal (S3 recovers it as its error), cleanups run in reverse
// when the scenario ends, and Setenv is undone then.
type harness struct{ cleanups []func() }

type fatal string

func (h *harness) Helper()                         {}
func (h *harness) Logf(format string, args ...any) { log.Printf(format, args...) }
func (h *harness) Fatalf(format string, args ...any) {
	panic(fatal(fmt.Sprintf(format, args...)))
}
func (h *harness) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }
func (h *harness) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	h.Cleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}

func (h *harness) cleanup() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
}

var _ containers.TB = (*harness)(nil)
