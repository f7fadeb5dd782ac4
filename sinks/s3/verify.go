package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
)

// Verification is what Verify found out about a destination.
type Verification struct {
	Bucket string
	Prefix string
	// Region is the bucket's Region per GetBucketLocation.
	Region string
	// KeyChecked is true when the key was checked through a KMS API
	// (GenerateDataKey), beyond the write probe.
	KeyChecked bool
	// ProbeKey is the key of the write probe; ProbeDeleted says whether it
	// was cleaned up.
	ProbeKey     string
	ProbeDeleted bool
	// Warnings are checks that were skipped or cleanups that failed; each
	// is also logged.
	Warnings []string
}

// Verify checks a destination before it is PUBLISHING (DESIGN.md B12): the
// ARN and key are well-formed; the bucket exists and its Region is read
// (GetBucketLocation); the key is in the bucket's Region (skipped, with a
// warning, for a bare key id or behind an endpoint override); the key is
// usable through the KeyChecker where a KMS API is reachable for it; and a
// write probe with the destination's encryption headers succeeds under the
// prefix (<prefix>/gdexport-write-probe/…), then is deleted (a failed
// delete is a warning). Errors are classified like PutObject's; a bad ARN
// or a key in another Region wraps pipeline.ErrAccess. The returned
// Verification is filled as far as the checks went, even with an error.
func (s *Sink) Verify(ctx context.Context, dest *pipeline.Destination) (*Verification, error) {
	v := &Verification{}
	warn := func(msg string) {
		v.Warnings = append(v.Warnings, msg)
		s.log.Warn(msg, slog.String("destination", dest.ID))
	}
	t, err := resolve(dest)
	if err != nil {
		return v, err
	}
	v.Bucket, v.Prefix = t.bucket.Bucket, t.bucket.Prefix
	override := dest.Endpoint != "" || dest.KmsEndpoint != ""
	var key awsarn.KMSKey
	hasKey := dest.KmsKeyArn != ""
	if hasKey {
		if key, err = awsarn.ParseKMSKey(dest.KmsKeyArn, override); err != nil {
			return v, fmt.Errorf("destination %s: %w: %w", dest.ID, pipeline.ErrAccess, err)
		}
	} else if dest.Encryption != pipeline.EncryptionEnvelope {
		return v, fmt.Errorf("destination %s: SSE-KMS without a KMS key: %w", dest.ID, pipeline.ErrAccess)
	}

	region, err := s.BucketRegion(ctx, dest)
	if err != nil {
		return v, err
	}
	v.Region = region

	if hasKey {
		skipped, err := awsarn.CheckKeyRegion(key, t.bucket.Partition, region, dest.Endpoint != "")
		if err != nil {
			return v, fmt.Errorf("destination %s: %w: %w", dest.ID, pipeline.ErrAccess, err)
		}
		if skipped != "" {
			warn(skipped)
		}
		// A KMS API is reachable for AWS itself, or behind a KMS endpoint
		// override; an S3-compatible store's built-in KMS is not one.
		switch {
		case s.keyChecker == nil:
			warn("no KMS key checker configured: only the write probe checks key " + key.Raw)
		case dest.Endpoint != "" && dest.KmsEndpoint == "" && dest.Encryption != pipeline.EncryptionEnvelope:
			warn("S3 endpoint override without a KMS endpoint: the store's own KMS is checked by the write probe only")
		default:
			if err := s.keyChecker(ctx, dest); err != nil {
				return v, fmt.Errorf("destination %s: key %s: %w", dest.ID, key.Raw, err)
			}
			v.KeyChecked = true
		}
	}

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	probe := ProbeFolder + "/" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:]) + ".txt"
	if t.bucket.Prefix != "" {
		probe = t.bucket.Prefix + "/" + probe
	}
	v.ProbeKey = probe
	obj := &pipeline.Object{Key: probe, Body: []byte("gdexport write probe: checks that export objects can be written here; safe to delete\n"), ContentType: "text/plain"}
	if dest.Encryption != pipeline.EncryptionEnvelope {
		obj.SSEKMSKeyID = dest.KmsKeyArn
	}
	if err := s.withRegion(ctx, dest, t, func(c *s3.Client) error {
		s.verifyRequests.Add(1)
		return s.putSingle(ctx, c, t.bucket.Bucket, obj)
	}); err != nil {
		return v, Classify(fmt.Errorf("destination %s: write probe s3://%s/%s: %w", dest.ID, t.bucket.Bucket, probe, err))
	}
	err = s.withRegion(ctx, dest, t, func(c *s3.Client) error {
		s.verifyRequests.Add(1)
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(t.bucket.Bucket), Key: aws.String(probe)})
		return err
	})
	if err != nil {
		warn(fmt.Sprintf("write probe s3://%s/%s not deleted (%v): delete it, or allow s3:DeleteObject on %s/ (destination policy does)", t.bucket.Bucket, probe, err, ProbeFolder))
	} else {
		v.ProbeDeleted = true
	}
	return v, nil
}

// BucketRegion returns the Region of the destination's bucket, per
// GetBucketLocation ("" means us-east-1, "EU" eu-west-1), and remembers it
// for the destination's writes. Errors are classified (Classify).
func (s *Sink) BucketRegion(ctx context.Context, dest *pipeline.Destination) (string, error) {
	t, err := resolve(dest)
	if err != nil {
		return "", err
	}
	var loc types.BucketLocationConstraint
	err = s.withRegion(ctx, dest, t, func(c *s3.Client) error {
		out, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(t.bucket.Bucket)})
		if err == nil {
			loc = out.LocationConstraint
		}
		return err
	})
	if err != nil {
		return "", Classify(fmt.Errorf("destination %s: GetBucketLocation %s: %w", dest.ID, t.bucket.Bucket, err))
	}
	region := string(loc)
	switch region {
	case "":
		region = "us-east-1"
	case "EU":
		region = "eu-west-1"
	}
	s.learnRegion(t, region)
	return region, nil
}

// CreateBucket creates the destination's bucket for principalArn
// (gdexport's IAM role): in the key's Region (else the destination's), with
// every public access blocked, default encryption SSE-KMS with the
// destination's key (S3 Bucket Key on; SSE-S3 for an envelope destination
// without a key) and BucketPolicy. A bucket this account already owns is
// configured the same way. Where the store answers NotImplemented for a
// setting, CreateBucket warns (returned and logged) and goes on. Errors are
// classified (Classify).
func (s *Sink) CreateBucket(ctx context.Context, dest *pipeline.Destination, principalArn string) (warnings []string, err error) {
	t, err := resolve(dest)
	if err != nil {
		return nil, err
	}
	policy, err := BucketPolicy(dest, principalArn)
	if err != nil {
		return nil, err
	}
	warn := func(setting string, err error) {
		msg := fmt.Sprintf("the store does not implement %s (%v): set it by other means", setting, err)
		warnings = append(warnings, msg)
		s.log.Warn(msg, slog.String("destination", dest.ID), slog.String("bucket", t.bucket.Bucket))
	}
	region := dest.Region
	if k, err := awsarn.ParseKMSKey(dest.KmsKeyArn, true); err == nil && k.Region != "" {
		region = k.Region
	}
	if region == "" {
		cfg, err := s.baseConfig(ctx)
		if err != nil {
			return nil, err
		}
		region = cfg.Region
	}
	c, err := s.client(ctx, dest, region)
	if err != nil {
		return nil, err
	}
	bucket := aws.String(t.bucket.Bucket)
	in := &s3.CreateBucketInput{Bucket: bucket}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	s.setupRequests.Add(1)
	if _, err := c.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return warnings, Classify(fmt.Errorf("create bucket %s in %s: %w", t.bucket.Bucket, region, err))
		}
		s.log.Info("bucket exists and is ours; configuring it", slog.String("bucket", t.bucket.Bucket))
	}
	s.learnRegion(t, region)

	steps := []struct {
		setting string
		call    func() error
	}{
		{"the public access block", func() error {
			_, err := c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: bucket, PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{
				BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})
			return err
		}},
		{"default encryption", func() error {
			rule := types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256}
			if dest.KmsKeyArn != "" {
				rule = types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(dest.KmsKeyArn)}
			}
			_, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: bucket, ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
				Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &rule, BucketKeyEnabled: aws.Bool(dest.KmsKeyArn != "")}}}})
			return err
		}},
		{"the bucket policy", func() error {
			_, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: bucket, Policy: aws.String(policy)})
			return err
		}},
	}
	for _, st := range steps {
		s.setupRequests.Add(1)
		if err := st.call(); err != nil {
			if isNotImplemented(err, dest.Endpoint != "") {
				warn(st.setting, err)
				continue
			}
			return warnings, Classify(fmt.Errorf("bucket %s: set %s: %w", t.bucket.Bucket, st.setting, err))
		}
	}
	return warnings, nil
}
