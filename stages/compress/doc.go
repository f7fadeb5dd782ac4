// Package compress is the compress stage: it turns a sealed batch's findings
// into the body of one export object, gzip of JSON Lines (each finding's
// compact JSON followed by "\n"), the format GuardDuty writes to S3 and that
// its consumers (Wazuh, Elastic, Grafana Loki, Tailpipe) read.
//
// Output is deterministic: the gzip header carries no file name, no
// modification time and OS "unknown" (255), so the same lines always give
// byte-identical objects and a retried batch rewrites its object unchanged.
//
// Compression uses github.com/klauspost/compress/gzip at Level, chosen for
// speed: see Level for how it compares with the standard library's level 6
// in size and speed, and BenchmarkGzip, BenchmarkStdlibGzip and TestGzipSize,
// which measure it on realistic findings.
package compress
