// Package natsx holds gdexport's JetStream plumbing: the embedded server, the
// topology of streams, KV buckets and durable consumers that every worker
// creates idempotently at start, and batched direct reads of stream messages.
package natsx
