// Package decode is the first finding stage: it judges the bytes of an ingest
// message once and turns them into a pipeline.Finding, or drops the message
// as invalid with a reason that names the value and what was expected.
//
// The exported line (Finding.Raw) is the finding as received with
// insignificant whitespace removed (DESIGN.md §4): key order, unknown fields
// and the text of every value are kept byte for byte; nothing is ever
// re-marshalled through a struct or a map. The only transformations are
//
//   - member names of AWS CLI output (PascalCase, recognised by a top-level
//     "AccountId", "Id" or "SchemaVersion") are converted to the wire
//     camelCase by lowercasing their first letter; string values are never
//     touched;
//   - an EventBridge event whose "detail-type" is "GuardDuty Finding" is
//     unwrapped to its "detail".
//
// Normalize does that transformation alone; Decode normalises and then reads
// the fields the pipeline routes and judges on (id, type, accountId, region,
// updatedAt, createdAt, service.archived, service.count, severity); Stage is
// Decode as a pipeline.Stage. Split is the reading side of `gdexport publish`:
// it streams a file in any of the input forms of DESIGN.md §3 (a finding, a
// JSON array, JSON Lines, get-findings output, EventBridge events) and hands
// out one normalised finding at a time, refusing only what publish cannot
// route.
//
// ParseTimestamp and ParseTimestampString read the timestamp forms of
// DESIGN.md §4 (ISO-8601, epoch seconds with a fraction, epoch milliseconds)
// over the text rules of pipeline/timestamp, which the filter engine shares.
// IsRegion is the AWS Region name rule.
package decode
