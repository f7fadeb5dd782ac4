// Package generator makes realistic Amazon GuardDuty findings for tests,
// benchmarks and `gdexport publish --generate`.
//
// Generate streams compact camelCase finding JSON in the wire shape
// (schemaVersion, accountId, region, partition, id, arn, type, resource,
// service, severity, createdAt, updatedAt, title, description) for more than
// thirty finding types over EC2 instances, IAM access keys, S3 buckets, EKS
// clusters, ECS clusters, Lambda functions, RDS databases, Runtime Monitoring
// and Malware Protection. Each finding id has one or more versions with rising
// service.count and updatedAt (createdAt stays), some of them archived, and
// some archived and then unarchived, as B1 of DESIGN.md describes. Values are
// random (addresses, ids, host names, list lengths), so sizes range from about
// 1 KB to 10 KB and gzip ratios are honest. The output is a pure function of
// Config: the same Seed yields the same bytes.
package generator
