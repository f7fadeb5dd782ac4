package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
)

// Defaults of a Sink.
const (
	// DefaultMultipartThreshold is the body size from which PutObject
	// uploads in parts. It is above what the default batch bounds produce
	// (64 MiB of JSON Lines before gzip), so by default every object is one
	// PUT, as GuardDuty's are.
	DefaultMultipartThreshold = 64 << 20
	// DefaultPartSize is the size of each part of a multipart upload.
	DefaultPartSize = 16 << 20
	// MinPartSize is S3's smallest part (except the last).
	MinPartSize = 5 << 20
	// FallbackRegion is used when neither the bucket's Region, the
	// destination's nor the standard chain's is known.
	FallbackRegion = "us-east-1"
)

// ErrOption is wrapped by every invalid option.
var ErrOption = errors.New("invalid s3 sink option")

// Option configures a Sink.
type Option func(*Sink) error

// WithMultipartThreshold sets the body size from which objects are uploaded
// in parts (default DefaultMultipartThreshold; at least MinPartSize).
func WithMultipartThreshold(n int) Option {
	return func(s *Sink) error {
		if n < MinPartSize {
			return fmt.Errorf("%w: multipart threshold %d is below S3's minimum part size %d", ErrOption, n, MinPartSize)
		}
		s.threshold = n
		return nil
	}
}

// WithPartSize sets the part size of multipart uploads (default
// DefaultPartSize; at least MinPartSize).
func WithPartSize(n int) Option {
	return func(s *Sink) error {
		if n < MinPartSize {
			return fmt.Errorf("%w: part size %d is below S3's minimum %d", ErrOption, n, MinPartSize)
		}
		s.partSize = n
		return nil
	}
}

// WithRegion sets the Region used for a destination without one (default:
// the standard chain's, else FallbackRegion).
func WithRegion(region string) Option {
	return func(s *Sink) error {
		if !pipeline.ValidRegion(region) {
			return fmt.Errorf("%w: %q is not an AWS Region name", ErrOption, region)
		}
		s.region = region
		return nil
	}
}

// WithCredentials replaces the standard credential chain (tests, stores
// with static keys).
func WithCredentials(c aws.CredentialsProvider) Option {
	return func(s *Sink) error {
		if c == nil {
			return fmt.Errorf("%w: nil credentials provider", ErrOption)
		}
		s.creds = c
		return nil
	}
}

// WithHTTPClient sets the HTTP client of every S3 client.
func WithHTTPClient(c *http.Client) Option {
	return func(s *Sink) error {
		if c == nil {
			return fmt.Errorf("%w: nil HTTP client", ErrOption)
		}
		s.httpClient = c
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Sink) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrOption)
		}
		s.log = l
		return nil
	}
}

// KeyChecker checks that a destination's KMS key is usable, typically with
// one KMS GenerateDataKey call (the KMS key provider under stages/encrypt
// has one); an unusable key must wrap pipeline.ErrAccess.
type KeyChecker func(ctx context.Context, dest *pipeline.Destination) error

// WithKeyChecker lets Verify check the key through a KMS API where one is
// reachable for it (DESIGN.md B12). Without it the write probe is the only
// check of an SSE-KMS key.
func WithKeyChecker(c KeyChecker) Option {
	return func(s *Sink) error {
		if c == nil {
			return fmt.Errorf("%w: nil key checker", ErrOption)
		}
		s.keyChecker = c
		return nil
	}
}

// Stats counts what a Sink sent, for the benchmark's S3 PUTs per 1,000
// findings.
type Stats struct {
	// Objects is how many objects were written.
	Objects int64
	// Requests is how many write requests exporting objects sent: one per
	// PutObject, and for a multipart upload one to create it, one per part
	// and one to complete it (S3 bills each as a PUT/POST request). Failed
	// requests count too.
	Requests int64
	// VerifyRequests is how many requests verification sent: the write
	// probe's PUT and its DELETE.
	VerifyRequests int64
	// SetupRequests is how many requests creating and configuring buckets
	// sent (CreateBucket).
	SetupRequests int64
	// Multipart is how many objects were written in parts.
	Multipart int64
	// Bytes is the body bytes of the written objects.
	Bytes int64
}

// Sink writes objects to S3 buckets. It is safe for concurrent use.
type Sink struct {
	threshold  int
	partSize   int
	region     string
	creds      aws.CredentialsProvider
	httpClient *http.Client
	log        *slog.Logger
	keyChecker KeyChecker

	objects, requests, verifyRequests, setupRequests, multipart, bytes atomic.Int64

	mu      sync.Mutex
	base    *aws.Config
	clients map[clientKey]*s3.Client
	regions map[regionKey]string // bucket → Region, learnt
}

var _ pipeline.ObjectSink = (*Sink)(nil)

type clientKey struct{ region, endpoint, role, externalID string }

type regionKey struct{ endpoint, bucket string }

// New returns a Sink with opts applied.
func New(opts ...Option) (*Sink, error) {
	s := &Sink{threshold: DefaultMultipartThreshold, partSize: DefaultPartSize, log: slog.Default(),
		clients: map[clientKey]*s3.Client{}, regions: map[regionKey]string{}}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Connect loads the standard AWS configuration (environment, shared
// files); it sends nothing. Credentials are resolved on the first request.
func (s *Sink) Connect(ctx context.Context) error {
	_, err := s.baseConfig(ctx)
	return err
}

// Close does nothing: clients hold no connections worth closing.
func (s *Sink) Close(context.Context) error { return nil }

// Stats returns the counters so far.
func (s *Sink) Stats() Stats {
	return Stats{Objects: s.objects.Load(), Requests: s.requests.Load(), VerifyRequests: s.verifyRequests.Load(),
		SetupRequests: s.setupRequests.Load(), Multipart: s.multipart.Load(), Bytes: s.bytes.Load()}
}

func (s *Sink) baseConfig(ctx context.Context) (aws.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.base != nil {
		return *s.base, nil
	}
	var lo []func(*awsconfig.LoadOptions) error
	if s.region != "" {
		lo = append(lo, awsconfig.WithRegion(s.region))
	}
	if s.creds != nil {
		lo = append(lo, awsconfig.WithCredentialsProvider(s.creds))
	}
	if s.httpClient != nil {
		lo = append(lo, awsconfig.WithHTTPClient(s.httpClient))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = FallbackRegion
	}
	s.base = &cfg
	return cfg, nil
}

// target is a destination resolved for one call.
type target struct {
	bucket   awsarn.S3Destination
	endpoint string
}

func resolve(dest *pipeline.Destination) (target, error) {
	b, err := awsarn.ParseS3Destination(dest.Arn)
	if err != nil {
		return target{}, fmt.Errorf("destination %s: %w: %w", dest.ID, pipeline.ErrAccess, err)
	}
	return target{bucket: b, endpoint: dest.Endpoint}, nil
}

// regionOf returns the Region to address the bucket in: learnt, else the
// destination's, else the default.
func (s *Sink) regionOf(ctx context.Context, dest *pipeline.Destination, t target) (string, error) {
	s.mu.Lock()
	r, ok := s.regions[regionKey{t.endpoint, t.bucket.Bucket}]
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	if dest.Region != "" {
		return dest.Region, nil
	}
	cfg, err := s.baseConfig(ctx)
	return cfg.Region, err
}

func (s *Sink) learnRegion(t target, region string) {
	s.mu.Lock()
	s.regions[regionKey{t.endpoint, t.bucket.Bucket}] = region
	s.mu.Unlock()
}

// client returns the S3 client for a destination in region.
func (s *Sink) client(ctx context.Context, dest *pipeline.Destination, region string) (*s3.Client, error) {
	base, err := s.baseConfig(ctx)
	if err != nil {
		return nil, err
	}
	ck := clientKey{region: region, endpoint: dest.Endpoint, role: dest.RoleArn, externalID: dest.ExternalID}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[ck]; ok {
		return c, nil
	}
	cfg := base.Copy()
	cfg.Region = region
	if ck.role != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), ck.role, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "gdexport"
			if ck.externalID != "" {
				o.ExternalID = aws.String(ck.externalID)
			}
		}))
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if ck.endpoint != "" {
			o.BaseEndpoint = aws.String(ck.endpoint)
			// S3-compatible stores rarely serve virtual-hosted buckets.
			o.UsePathStyle = true
		}
	})
	s.clients[ck] = c
	return c, nil
}

// withRegion calls fn with the client of the bucket's Region; when S3
// answers that the bucket lives in another Region, it learns that Region
// and calls fn once more there.
func (s *Sink) withRegion(ctx context.Context, dest *pipeline.Destination, t target, fn func(*s3.Client) error) error {
	region, err := s.regionOf(ctx, dest, t)
	if err != nil {
		return err
	}
	c, err := s.client(ctx, dest, region)
	if err != nil {
		return err
	}
	err = fn(c)
	if r := redirectRegion(err); r != "" && r != region && pipeline.ValidRegion(r) {
		s.log.Info("bucket is in another Region; following", slog.String("bucket", t.bucket.Bucket),
			slog.String("region", r), slog.String("destination", dest.ID))
		s.learnRegion(t, r)
		if c, err = s.client(ctx, dest, r); err != nil {
			return err
		}
		err = fn(c)
	}
	return err
}

// PutObject writes obj under the destination's bucket at obj.Key (which
// already holds the prefix, Batch.ObjectKey). Writing the same key again
// replaces the object, so a retried batch overwrites its own object. With
// obj.SSEKMSKeyID set the request carries x-amz-server-side-encryption:
// aws:kms and that key; Content-Type is obj.ContentType and no
// Content-Encoding is sent. Bodies of at least the multipart threshold are
// uploaded in parts (aborted on failure). Errors are classified (Classify).
func (s *Sink) PutObject(ctx context.Context, dest *pipeline.Destination, obj *pipeline.Object) error {
	t, err := resolve(dest)
	if err != nil {
		return err
	}
	err = s.withRegion(ctx, dest, t, func(c *s3.Client) error {
		if len(obj.Body) >= s.threshold {
			return s.putMultipart(ctx, c, t.bucket.Bucket, obj)
		}
		s.requests.Add(1)
		return s.putSingle(ctx, c, t.bucket.Bucket, obj)
	})
	if err != nil {
		return Classify(fmt.Errorf("s3 put s3://%s/%s: %w", t.bucket.Bucket, obj.Key, err))
	}
	s.objects.Add(1)
	s.bytes.Add(int64(len(obj.Body)))
	return nil
}

func sse(keyID string) (types.ServerSideEncryption, *string) {
	if keyID == "" {
		return "", nil
	}
	return types.ServerSideEncryptionAwsKms, aws.String(keyID)
}

func contentType(obj *pipeline.Object) *string {
	if obj.ContentType == "" {
		return aws.String("application/octet-stream")
	}
	return aws.String(obj.ContentType)
}

func (s *Sink) putSingle(ctx context.Context, c *s3.Client, bucket string, obj *pipeline.Object) error {
	mode, key := sse(obj.SSEKMSKeyID)
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:               aws.String(bucket),
		Key:                  aws.String(obj.Key),
		Body:                 bytes.NewReader(obj.Body),
		ContentLength:        aws.Int64(int64(len(obj.Body))),
		ContentType:          contentType(obj),
		ServerSideEncryption: mode,
		SSEKMSKeyId:          key,
	})
	return err
}

func (s *Sink) putMultipart(ctx context.Context, c *s3.Client, bucket string, obj *pipeline.Object) error {
	mode, key := sse(obj.SSEKMSKeyID)
	s.requests.Add(1)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(bucket),
		Key:                  aws.String(obj.Key),
		ContentType:          contentType(obj),
		ServerSideEncryption: mode,
		SSEKMSKeyId:          key,
		ChecksumAlgorithm:    types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return err
	}
	abort := func(cause error) error {
		// A fresh context: the upload's parts cost storage until aborted.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := c.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(obj.Key), UploadId: up.UploadId}); aerr != nil {
			s.log.Warn("abort multipart upload failed; a lifecycle rule for incomplete uploads cleans it up",
				slog.String("bucket", bucket), slog.String("key", obj.Key), slog.Any("error", aerr))
		}
		return cause
	}
	var parts []types.CompletedPart
	for i, b := range partBounds(len(obj.Body), s.partSize) {
		n := int32(i + 1)
		s.requests.Add(1)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:            aws.String(bucket),
			Key:               aws.String(obj.Key),
			UploadId:          up.UploadId,
			PartNumber:        aws.Int32(n),
			Body:              bytes.NewReader(obj.Body[b[0]:b[1]]),
			ContentLength:     aws.Int64(int64(b[1] - b[0])),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		if err != nil {
			return abort(fmt.Errorf("part %d: %w", n, err))
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n), ChecksumCRC32: out.ChecksumCRC32})
	}
	s.requests.Add(1)
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(bucket),
		Key:             aws.String(obj.Key),
		UploadId:        up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return abort(err)
	}
	s.multipart.Add(1)
	return nil
}

// partBounds splits size bytes into parts of partSize, the last one folding
// in a tail shorter than MinPartSize (S3 refuses a non-last part below it).
func partBounds(size, partSize int) [][2]int {
	var out [][2]int
	for off := 0; off < size; {
		end := off + partSize
		if size-end < MinPartSize {
			end = size
		}
		out = append(out, [2]int{off, end})
		off = end
	}
	return out
}
