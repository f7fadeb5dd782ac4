// Package localdir is the local-directory object sink: it writes objects
// under a LOCAL destination's root with the same key layout as S3
// (AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/<name>), each atomically
// through a temporary file and a rename, so a reader never sees a partial
// object and a retried batch replaces its own object.
package localdir
