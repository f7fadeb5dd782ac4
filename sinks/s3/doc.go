// Package s3 is the Amazon S3 object sink (and of S3-compatible stores such
// as MinIO): it writes each batch object under the destination's bucket with
// PutObject, or a multipart upload above a size threshold, with
// Content-Type from the object and never a Content-Encoding (an HTTP client
// must not silently gunzip a .gz object), and SSE-KMS headers
// (x-amz-server-side-encryption: aws:kms and the destination's key) when the
// object asks for them (DESIGN.md B8).
//
// Clients are made per (Region, endpoint, role): the Region is the
// bucket's (read with GetBucketLocation, or learnt from a redirect), an
// endpoint override switches to path-style addressing, and credentials come
// from the standard AWS chain (environment, shared profiles, web identity,
// IMDS), optionally assuming the destination's role with its external id
// for a bucket in another account.
//
// Errors are classified once (Classify): the faults only fixing the
// destination can cure (AccessDenied, NoSuchBucket, the KMS faults S3
// reports on an SSE-KMS write such as KMS.DisabledException, bad
// credentials) wrap pipeline.ErrAccess; throttling, 5xx, timeouts and
// connection errors are returned as they are, transient.
//
// Verify checks a destination before it is PUBLISHING (DESIGN.md B12),
// CreateBucket creates a bucket the way the design asks (public access
// blocked, default encryption with the key, a bucket policy for gdexport's
// principal), and BucketPolicy and KeyPolicyStatement render the policies
// `gdexport destination policy` prints.
package s3
