package s3

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/gdexport/gdexport/pipeline"
)

// accessCodes are the error codes that only fixing the destination (its
// bucket, policy, key or credentials) can cure: S3's own, the KMS faults S3
// reports on an SSE-KMS write (KMS.*), and KMS's when called directly.
var accessCodes = map[string]bool{
	// S3
	"AccessDenied":                 true,
	"AllAccessDisabled":            true,
	"AccountProblem":               true,
	"NoSuchBucket":                 true,
	"InvalidBucketName":            true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"InvalidToken":                 true,
	"PermanentRedirect":            true, // the bucket is in another Region and we could not follow
	"AuthorizationHeaderMalformed": true,
	"BucketAlreadyExists":          true, // owned by another account
	"InvalidArgument":              true, // a malformed key id or encryption header
	"InvalidRequest":               true,
	"KMS.DisabledException":        true,
	"KMS.NotFoundException":        true,
	"KMS.KMSInvalidStateException": true,
	"KMS.AccessDeniedException":    true,
	"KMS.InvalidKeyUsageException": true,
	"KMS.ValidationException":      true,
	// MinIO's spelling of KMS faults on an SSE-KMS write
	"kms:KeyNotFound":     true,
	"kms:NotAuthorized":   true,
	"kms:KeyNotSupported": true,
	"kms:NotSupported":    true,
	// KMS, called directly (verification)
	"DisabledException":           true,
	"KMSInvalidStateException":    true,
	"NotFoundException":           true,
	"AccessDeniedException":       true,
	"InvalidKeyUsageException":    true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
}

// Classify returns err wrapped with pipeline.ErrAccess when it is an export
// access error — an S3 or KMS error code of the table above, or any HTTP 403
// — and err unchanged otherwise (throttling such as SlowDown, 5xx,
// timeouts, connection refused, a cancelled context: transient, retried
// with backoff). nil stays nil. Every S3 and KMS caller in gdexport can use
// it: the lead's destination status and the sinks agree on one list.
func Classify(err error) error {
	if err == nil || pipeline.IsAccess(err) {
		return err
	}
	if IsAccessCode(err) {
		return fmt.Errorf("%w: %w", pipeline.ErrAccess, err)
	}
	return err
}

// IsAccessCode reports whether err carries an access error code or HTTP
// status 403 (Classify without wrapping).
func IsAccessCode(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && accessCodes[apiErr.ErrorCode()] {
		return true
	}
	return httpStatus(err) == http.StatusForbidden
}

// ErrorCode returns the S3 or KMS error code err carries ("" for none).
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// httpStatus returns the HTTP status of a failed call (0 when none).
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.HTTPStatusCode()
	}
	return 0
}

// isNotImplemented reports whether the store does not implement a call or
// setting: NotImplemented (501) from any store; behind an endpoint
// override also MalformedXML and MethodNotAllowed, which is how MinIO
// answers a setting it lacks (PutPublicAccessBlock).
func isNotImplemented(err error, endpointOverride bool) bool {
	code := ErrorCode(err)
	if code == "NotImplemented" || code == "XNotImplemented" || httpStatus(err) == http.StatusNotImplemented {
		return true
	}
	return endpointOverride && (code == "MalformedXML" || code == "MethodNotAllowed" || httpStatus(err) == http.StatusMethodNotAllowed)
}

// redirectRegion returns the Region S3 names in a redirect or wrong-Region
// answer (x-amz-bucket-region), "" when err is not one.
func redirectRegion(err error) string {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	switch re.HTTPStatusCode() {
	case http.StatusMovedPermanently, http.StatusBadRequest, http.StatusForbidden:
		return re.Response.Header.Get("X-Amz-Bucket-Region")
	}
	return ""
}
