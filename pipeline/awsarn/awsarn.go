package awsarn

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gdexport/gdexport/pipeline"
)

var (
	// ErrBucketARN means a destination ARN is not an S3 bucket ARN of the
	// form arn:<partition>:s3:::bucket[/prefix].
	ErrBucketARN = errors.New("not an S3 bucket ARN")
	// ErrBucketName means a bucket name breaks S3's naming rules for general
	// purpose buckets.
	ErrBucketName = errors.New("invalid S3 bucket name")
	// ErrPrefix means an object-key prefix could escape its folder or
	// confuse readers: "..", a leading "/", control characters.
	ErrPrefix = errors.New("invalid object key prefix")
	// ErrKeyARN means a KMS key reference is neither a key ARN, an alias ARN
	// nor (with an endpoint override) a bare key id.
	ErrKeyARN = errors.New("invalid KMS key ARN")
	// ErrRegionMismatch means a KMS key is not in its bucket's Region (or
	// not in its partition): S3 cannot use a key of another Region.
	ErrRegionMismatch = errors.New("KMS key not in the bucket's Region")
)

// S3Destination is a parsed S3 destination ARN.
type S3Destination struct {
	Partition string
	Bucket    string
	// Prefix is the object-key prefix without leading or trailing "/" ("" for
	// none); GuardDuty accepts arn:aws:s3:::bucket/prefix/ with a trailing
	// slash.
	Prefix string
}

// BucketARN returns the bucket's ARN, arn:<partition>:s3:::<bucket>.
func (d S3Destination) BucketARN() string { return "arn:" + d.Partition + ":s3:::" + d.Bucket }

// ObjectsARN returns the ARN pattern of every object under the prefix,
// arn:<partition>:s3:::<bucket>/[<prefix>/]*, as a bucket policy names it.
func (d S3Destination) ObjectsARN() string {
	if d.Prefix == "" {
		return d.BucketARN() + "/*"
	}
	return d.BucketARN() + "/" + d.Prefix + "/*"
}

// ParseS3Destination parses arn:<partition>:s3:::bucket[/prefix[/]]. The
// Region and account fields of an S3 bucket ARN are empty; the bucket name
// must follow S3's naming rules (CheckBucketName) and the prefix the prefix
// rules (CheckPrefix).
func ParseS3Destination(arn string) (S3Destination, error) {
	const want = "expected arn:aws:s3:::bucket[/prefix]"
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return S3Destination{}, fmt.Errorf("%q: %w: %s", arn, ErrBucketARN, want)
	}
	if !ValidPartition(parts[1]) {
		return S3Destination{}, fmt.Errorf("%q: %w: partition %q is not aws, aws-cn, aws-us-gov or another aws-* partition", arn, ErrBucketARN, parts[1])
	}
	if parts[2] != "s3" {
		return S3Destination{}, fmt.Errorf("%q: %w: service %q, %s", arn, ErrBucketARN, parts[2], want)
	}
	if parts[3] != "" || parts[4] != "" {
		return S3Destination{}, fmt.Errorf("%q: %w: a bucket ARN has empty Region and account fields (arn:%s:s3:::bucket)", arn, ErrBucketARN, parts[1])
	}
	bucket, prefix, _ := strings.Cut(parts[5], "/")
	if bucket == "" {
		return S3Destination{}, fmt.Errorf("%q: %w: no bucket name, %s", arn, ErrBucketARN, want)
	}
	if err := CheckBucketName(bucket); err != nil {
		return S3Destination{}, fmt.Errorf("%q: %w", arn, err)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix != "" {
		if err := CheckPrefix(prefix); err != nil {
			return S3Destination{}, fmt.Errorf("%q: %w", arn, err)
		}
		for _, part := range strings.Split(prefix, "/") {
			if part == "" {
				return S3Destination{}, fmt.Errorf("%q: %w %q: empty path element (//)", arn, ErrPrefix, prefix)
			}
		}
	}
	return S3Destination{Partition: parts[1], Bucket: bucket, Prefix: prefix}, nil
}

// ValidPartition reports whether p looks like an AWS partition: "aws" or
// "aws-" followed by lowercase words (aws-cn, aws-us-gov, aws-iso-b,
// aws-eusc).
func ValidPartition(p string) bool {
	if p == "aws" {
		return true
	}
	rest, ok := strings.CutPrefix(p, "aws-")
	if !ok || rest == "" {
		return false
	}
	for _, w := range strings.Split(rest, "-") {
		if w == "" {
			return false
		}
		for i := 0; i < len(w); i++ {
			if w[i] < 'a' || w[i] > 'z' {
				return false
			}
		}
	}
	return true
}

// CheckBucketName checks S3's naming rules for general purpose buckets:
// 3 to 63 characters of lowercase letters, digits, dots and hyphens,
// beginning and ending with a letter or digit, no two adjacent dots, not an
// IP address, none of the reserved prefixes (xn--, sthree-, amzn-s3-demo-)
// and suffixes (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3).
func CheckBucketName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBucketName, name, why) }
	if len(name) < 3 || len(name) > 63 {
		return bad(fmt.Sprintf("%d characters, expected 3 to 63", len(name)))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		case c >= 'A' && c <= 'Z':
			return bad("uppercase letters are not allowed")
		default:
			return bad(fmt.Sprintf("character %q is not allowed: expected lowercase letters, digits, '.' and '-'", c))
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return bad("must begin and end with a lowercase letter or a digit")
	}
	if strings.Contains(name, "..") {
		return bad("two adjacent periods are not allowed")
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return bad("must not be formatted as an IP address")
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad(fmt.Sprintf("the prefix %q is reserved", p))
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return bad(fmt.Sprintf("the suffix %q is reserved", s))
		}
	}
	return nil
}

// CheckPrefix refuses object-key prefixes that could escape their folder or
// confuse readers: "..", a leading "/", control characters (DESIGN.md §6).
func CheckPrefix(prefix string) error {
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%w %q: must not start with /", ErrPrefix, prefix)
	}
	for _, part := range strings.Split(prefix, "/") {
		if part == ".." {
			return fmt.Errorf("%w %q: must not contain ..", ErrPrefix, prefix)
		}
	}
	for _, r := range prefix {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w %q: must not contain control characters", ErrPrefix, prefix)
		}
	}
	return nil
}

// KMSKey is a parsed KMS key reference.
type KMSKey struct {
	// Raw is the reference as given; it is what S3 and KMS are sent.
	Raw string
	// Partition, Region and Account are empty for a bare key id.
	Partition, Region, Account string
	// Alias is true for alias ARNs (arn:…:alias/<name>) and bare alias/<name>.
	Alias bool
	// ID is the key id (a UUID or mrk-<32 hex>) or the alias name without
	// "alias/"; for a bare key id, the id as given.
	ID string
}

// IsARN reports whether the key was given as an ARN.
func (k KMSKey) IsARN() bool { return k.Partition != "" }

// ParseKMSKey parses a KMS key reference: a key ARN
// arn:<partition>:kms:<region>:<account>:key/<key-id> (key-id a UUID, or
// mrk-<32 hex> for a multi-Region key) or an alias ARN
// arn:<partition>:kms:<region>:<account>:alias/<name>. With an endpoint
// override (an emulator or an S3-compatible store such as MinIO, whose
// built-in KMS has named keys) a bare key id or alias/<name> is accepted
// too; without one it is refused, since S3's bucket policy and GuardDuty
// need the ARN.
func ParseKMSKey(ref string, endpointOverride bool) (KMSKey, error) {
	const want = "expected arn:aws:kms:<region>:<account>:key/<key-id> or arn:aws:kms:<region>:<account>:alias/<name>"
	if ref == "" {
		return KMSKey{}, fmt.Errorf("%w: empty, %s", ErrKeyARN, want)
	}
	if !strings.HasPrefix(ref, "arn:") {
		if !endpointOverride {
			return KMSKey{}, fmt.Errorf("%q: %w: a bare key id is accepted only with an endpoint override (an emulator or S3-compatible store); %s", ref, ErrKeyARN, want)
		}
		if len(ref) > 2048 {
			return KMSKey{}, fmt.Errorf("%.40q…: %w: key id longer than 2048 characters", ref, ErrKeyARN)
		}
		for _, r := range ref {
			if r <= 0x20 || r == 0x7f {
				return KMSKey{}, fmt.Errorf("%q: %w: key id must not contain spaces or control characters", ref, ErrKeyARN)
			}
		}
		if name, ok := strings.CutPrefix(ref, "alias/"); ok {
			if err := checkAlias(ref, name); err != nil {
				return KMSKey{}, err
			}
			return KMSKey{Raw: ref, Alias: true, ID: name}, nil
		}
		return KMSKey{Raw: ref, ID: ref}, nil
	}
	parts := strings.SplitN(ref, ":", 6)
	if len(parts) != 6 {
		return KMSKey{}, fmt.Errorf("%q: %w: %s", ref, ErrKeyARN, want)
	}
	k := KMSKey{Raw: ref, Partition: parts[1], Region: parts[3], Account: parts[4]}
	switch {
	case !ValidPartition(k.Partition):
		return KMSKey{}, fmt.Errorf("%q: %w: partition %q is not aws, aws-cn, aws-us-gov or another aws-* partition", ref, ErrKeyARN, k.Partition)
	case parts[2] != "kms":
		return KMSKey{}, fmt.Errorf("%q: %w: service %q, %s", ref, ErrKeyARN, parts[2], want)
	case !pipeline.ValidRegion(k.Region):
		return KMSKey{}, fmt.Errorf("%q: %w: Region %q is not an AWS Region name such as us-east-1", ref, ErrKeyARN, k.Region)
	case !pipeline.ValidAccount(k.Account):
		return KMSKey{}, fmt.Errorf("%q: %w: account %q is not 12 digits", ref, ErrKeyARN, k.Account)
	}
	kind, id, ok := strings.Cut(parts[5], "/")
	switch {
	case ok && kind == "key":
		if !validKeyID(id) {
			return KMSKey{}, fmt.Errorf("%q: %w: key id %q is neither a UUID (1234abcd-12ab-34cd-56ef-1234567890ab) nor mrk- and 32 hex digits", ref, ErrKeyARN, id)
		}
		k.ID = id
	case ok && kind == "alias":
		if err := checkAlias(ref, id); err != nil {
			return KMSKey{}, err
		}
		k.Alias, k.ID = true, id
	default:
		return KMSKey{}, fmt.Errorf("%q: %w: resource %q is neither key/<key-id> nor alias/<name>", ref, ErrKeyARN, parts[5])
	}
	return k, nil
}

// checkAlias checks an alias name (after "alias/"): 1 to 250 characters of
// letters, digits, '/', '_' and '-', not one of the AWS managed aliases
// (aws/…), whose key policies cannot grant gdexport anything.
func checkAlias(ref, name string) error {
	if name == "" || len(name) > 250 {
		return fmt.Errorf("%q: %w: alias name must have 1 to 250 characters", ref, ErrKeyARN)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-') {
			return fmt.Errorf("%q: %w: alias name has character %q; expected letters, digits, '/', '_' and '-'", ref, ErrKeyARN, c)
		}
	}
	if strings.HasPrefix(name, "aws/") {
		return fmt.Errorf("%q: %w: alias/aws/… names an AWS managed key, whose key policy cannot be changed; use a customer managed key", ref, ErrKeyARN)
	}
	return nil
}

// validKeyID reports whether id is a KMS key id: a lowercase UUID or mrk-
// followed by 32 lowercase hex digits.
func validKeyID(id string) bool {
	if hex, ok := strings.CutPrefix(id, "mrk-"); ok {
		return len(hex) == 32 && isHex(hex)
	}
	if len(id) != 36 {
		return false
	}
	for i, g := range strings.Split(id, "-") {
		if len(g) != []int{8, 4, 4, 4, 12}[i] || !isHex(g) {
			return false
		}
		if i == 4 {
			return true
		}
	}
	return false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// CheckKeyRegion checks that key can encrypt objects of a bucket in
// bucketRegion of partition bucketPartition ("" when unknown): a key ARN
// must name the same partition and Region. A bare key id has no Region to
// compare, and behind an endpoint override Regions mean nothing to the
// store: then the check is skipped and skipped says why (for a warning).
// An empty bucketRegion is read as us-east-1, as GetBucketLocation means it.
func CheckKeyRegion(key KMSKey, bucketPartition, bucketRegion string, endpointOverride bool) (skipped string, err error) {
	if bucketRegion == "" {
		bucketRegion = "us-east-1"
	}
	switch {
	case !key.IsARN():
		return fmt.Sprintf("key %q is not an ARN: cannot check that it is in the bucket's Region %s", key.Raw, bucketRegion), nil
	case endpointOverride:
		return fmt.Sprintf("endpoint override: not checking that key %s is in the bucket's Region %s", key.Raw, bucketRegion), nil
	case bucketPartition != "" && key.Partition != bucketPartition:
		return "", fmt.Errorf("key %s is in partition %s, the bucket in %s: %w", key.Raw, key.Partition, bucketPartition, ErrRegionMismatch)
	case key.Region != bucketRegion:
		return "", fmt.Errorf("key %s is in %s, the bucket in %s: %w (create or replicate the key in %s)", key.Raw, key.Region, bucketRegion, ErrRegionMismatch, bucketRegion)
	}
	return "", nil
}
