package awsarn

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseS3Destination(t *testing.T) {
	cases := []struct {
		name    string
		arn     string
		want    S3Destination
		wantErr error
		msg     string // part of the error message
	}{
		// GuardDuty's documented forms: a bucket, with a prefix, with a trailing slash.
		{name: "bucket", arn: "arn:aws:s3:::my-findings-bucket", want: S3Destination{"aws", "my-findings-bucket", ""}},
		{name: "prefix", arn: "arn:aws:s3:::my-findings-bucket/guardduty", want: S3Destination{"aws", "my-findings-bucket", "guardduty"}},
		{name: "trailing slash", arn: "arn:aws:s3:::b.example.com/a/b/", want: S3Destination{"aws", "b.example.com", "a/b"}},
		// Other partitions address buckets the same way.
		{name: "gov partition", arn: "arn:aws-us-gov:s3:::gov-bucket", want: S3Destination{"aws-us-gov", "gov-bucket", ""}},
		{name: "china partition", arn: "arn:aws-cn:s3:::cn-bucket/x", want: S3Destination{"aws-cn", "cn-bucket", "x"}},
		// A plain bucket name is a common mistake: say what is expected.
		{name: "not an arn", arn: "my-findings-bucket", wantErr: ErrBucketARN, msg: "expected arn:aws:s3:::bucket"},
		{name: "wrong service", arn: "arn:aws:kms:::bucket", wantErr: ErrBucketARN, msg: `service "kms"`},
		{name: "unknown partition", arn: "arn:azure:s3:::bucket", wantErr: ErrBucketARN, msg: `partition "azure"`},
		// An access point or a bucket ARN with Region and account is not a bucket ARN.
		{name: "region field", arn: "arn:aws:s3:us-east-1:111122223333:bucket", wantErr: ErrBucketARN, msg: "empty Region and account"},
		{name: "no bucket", arn: "arn:aws:s3:::/prefix", wantErr: ErrBucketARN, msg: "no bucket name"},
		{name: "bad bucket", arn: "arn:aws:s3:::My_Bucket", wantErr: ErrBucketName, msg: "uppercase"},
		// Prefix rules of DESIGN.md §6.
		{name: "dotdot prefix", arn: "arn:aws:s3:::bucket/a/../b", wantErr: ErrPrefix, msg: ".."},
		{name: "leading slash prefix", arn: "arn:aws:s3:::bucket//a", wantErr: ErrPrefix, msg: "must not start with /"},
		{name: "control prefix", arn: "arn:aws:s3:::bucket/a\tb", wantErr: ErrPrefix, msg: "control characters"},
		{name: "empty element", arn: "arn:aws:s3:::bucket/a//b", wantErr: ErrPrefix, msg: "empty path element"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseS3Destination(tc.arn)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), strconv.Quote(tc.arn)) {
					t.Fatalf("err = %v, want %v naming %q and saying %q", err, tc.wantErr, tc.arn, tc.msg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestObjectsARN(t *testing.T) {
	d, _ := ParseS3Destination("arn:aws:s3:::bucket/guardduty/")
	if d.BucketARN() != "arn:aws:s3:::bucket" || d.ObjectsARN() != "arn:aws:s3:::bucket/guardduty/*" {
		t.Fatalf("%s %s", d.BucketARN(), d.ObjectsARN())
	}
	d, _ = ParseS3Destination("arn:aws:s3:::bucket")
	if d.ObjectsARN() != "arn:aws:s3:::bucket/*" {
		t.Fatal(d.ObjectsARN())
	}
}

func TestCheckBucketName(t *testing.T) {
	cases := []struct {
		name, bucket, msg string // msg empty: valid
	}{
		{name: "plain", bucket: "my-findings-bucket"},
		{name: "dots and digits", bucket: "logs.2026.example"},
		{name: "shortest", bucket: "abc"},
		{name: "longest", bucket: strings.Repeat("a", 63)},
		{name: "too short", bucket: "ab", msg: "2 characters"},
		{name: "too long", bucket: strings.Repeat("a", 64), msg: "64 characters"},
		// Legacy us-east-1 names allowed these; new buckets cannot have them.
		{name: "uppercase", bucket: "MyBucket", msg: "uppercase"},
		{name: "underscore", bucket: "my_bucket", msg: `'_'`},
		{name: "starts with hyphen", bucket: "-bucket", msg: "begin and end"},
		{name: "ends with dot", bucket: "bucket.", msg: "begin and end"},
		{name: "adjacent dots", bucket: "a..b", msg: "adjacent periods"},
		// Virtual-hosted addressing would read it as a host.
		{name: "ip address", bucket: "192.168.5.4", msg: "IP address"},
		{name: "reserved prefix xn--", bucket: "xn--bucket", msg: `"xn--"`},
		{name: "reserved prefix sthree-", bucket: "sthree-bucket", msg: `"sthree-"`},
		{name: "reserved suffix -s3alias", bucket: "bucket-s3alias", msg: `"-s3alias"`},
		{name: "reserved suffix --ol-s3", bucket: "bucket--ol-s3", msg: `"--ol-s3"`},
		{name: "directory bucket", bucket: "bucket--use1-az4--x-s3", msg: `"--x-s3"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckBucketName(tc.bucket)
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrBucketName) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want ErrBucketName saying %q", err, tc.msg)
			}
		})
	}
}

func TestParseKMSKey(t *testing.T) {
	const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	cases := []struct {
		name     string
		ref      string
		override bool
		want     KMSKey
		wantErr  error
		msg      string
	}{
		// The seed's example key.
		{name: "key arn", ref: arn, want: KMSKey{Raw: arn, Partition: "aws", Region: "us-east-1", Account: "111122223333", ID: "1234abcd-12ab-34cd-56ef-1234567890ab"}},
		// Multi-Region keys have mrk- ids.
		{name: "multi-region key", ref: "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab",
			want: KMSKey{Raw: "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", Partition: "aws", Region: "eu-west-1", Account: "111122223333", ID: "mrk-1234abcd12ab34cd56ef1234567890ab"}},
		{name: "alias arn", ref: "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/guardduty-export",
			want: KMSKey{Raw: "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/guardduty-export", Partition: "aws-us-gov", Region: "us-gov-west-1", Account: "111122223333", Alias: true, ID: "guardduty-export"}},
		// MinIO's built-in KMS key and local-kms ids are bare: fine behind an endpoint override.
		{name: "bare id with override", ref: "gdexport-key", override: true, want: KMSKey{Raw: "gdexport-key", ID: "gdexport-key"}},
		{name: "bare alias with override", ref: "alias/testing", override: true, want: KMSKey{Raw: "alias/testing", Alias: true, ID: "testing"}},
		// Against AWS the bucket policy and GuardDuty need the full ARN.
		{name: "bare id without override", ref: "1234abcd-12ab-34cd-56ef-1234567890ab", wantErr: ErrKeyARN, msg: "only with an endpoint override"},
		{name: "bare id with space", ref: "my key", override: true, wantErr: ErrKeyARN, msg: "spaces"},
		{name: "empty", ref: "", wantErr: ErrKeyARN, msg: "empty"},
		{name: "wrong service", ref: "arn:aws:s3:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", wantErr: ErrKeyARN, msg: `service "s3"`},
		{name: "bad region", ref: "arn:aws:kms:useast1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", wantErr: ErrKeyARN, msg: `Region "useast1"`},
		{name: "no region", ref: "arn:aws:kms::111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", wantErr: ErrKeyARN, msg: `Region ""`},
		{name: "bad account", ref: "arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab", wantErr: ErrKeyARN, msg: `account "1111"`},
		{name: "bad key id", ref: "arn:aws:kms:us-east-1:111122223333:key/not-a-uuid", wantErr: ErrKeyARN, msg: `key id "not-a-uuid"`},
		{name: "uppercase key id", ref: "arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12ab-34cd-56ef-1234567890ab", wantErr: ErrKeyARN, msg: "key id"},
		{name: "unknown resource", ref: "arn:aws:kms:us-east-1:111122223333:grant/x", wantErr: ErrKeyARN, msg: "neither key/<key-id> nor alias/<name>"},
		// An AWS managed key's policy cannot grant gdexport's role.
		{name: "aws managed alias", ref: "arn:aws:kms:us-east-1:111122223333:alias/aws/s3", wantErr: ErrKeyARN, msg: "AWS managed key"},
		{name: "bad alias char", ref: "arn:aws:kms:us-east-1:111122223333:alias/a.b", wantErr: ErrKeyARN, msg: "alias name has character"},
		{name: "truncated arn", ref: "arn:aws:kms:us-east-1", wantErr: ErrKeyARN, msg: "expected arn:aws:kms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKMSKey(tc.ref, tc.override)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %v saying %q", err, tc.wantErr, tc.msg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestCheckKeyRegion(t *testing.T) {
	key := func(ref string) KMSKey {
		k, err := ParseKMSKey(ref, true)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	east := key("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
	cases := []struct {
		name             string
		key              KMSKey
		partition        string
		region           string
		override         bool
		wantErr, skipped bool
	}{
		{name: "same region", key: east, partition: "aws", region: "us-east-1"},
		// GetBucketLocation answers "" for us-east-1.
		{name: "empty location is us-east-1", key: east, partition: "aws", region: ""},
		// S3 cannot use a key from another Region: fix the destination.
		{name: "other region", key: east, partition: "aws", region: "eu-west-1", wantErr: true},
		{name: "other partition", key: east, partition: "aws-cn", region: "us-east-1", wantErr: true},
		// MinIO's key name has no Region: warn, do not refuse.
		{name: "bare id", key: key("minio-key"), partition: "aws", region: "us-east-1", skipped: true},
		// Emulators ignore Regions: warn, do not refuse.
		{name: "override", key: east, partition: "aws", region: "eu-west-1", override: true, skipped: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			skipped, err := CheckKeyRegion(tc.key, tc.partition, tc.region, tc.override)
			if tc.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrRegionMismatch)) {
				t.Fatalf("err = %v, want error %v (ErrRegionMismatch)", err, tc.wantErr)
			}
			if tc.skipped != (skipped != "") {
				t.Fatalf("skipped = %q, want skipped %v", skipped, tc.skipped)
			}
		})
	}
}
