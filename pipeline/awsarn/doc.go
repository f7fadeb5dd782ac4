// Package awsarn parses and checks the AWS names a destination is made of,
// without the AWS SDK: S3 destination ARNs (arn:<partition>:s3:::bucket[/prefix],
// with S3's bucket naming rules and the prefix rules of DESIGN.md §6), KMS
// key and alias ARNs, bare key ids (only for emulators and S3-compatible
// stores, which are reached through an endpoint override) and the rule that
// a key lives in its bucket's Region.
//
// Every error names the bad value and what was expected, and wraps one of
// the sentinels below, so configuration validation, the CLI and the sinks
// report the same problem in the same words.
package awsarn
