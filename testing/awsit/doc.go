// Package awsit holds the integration tests that put the AWS-facing parts
// together against emulators in containers: envelope-encrypted objects
// written to MinIO by the S3 sink with data keys from local-kms, read back
// through KMS (also by `gdexport decrypt`), and destination verification
// with a KMS key check. Its tests carry the build tag integration.
package awsit
