// Package cluster proves horizontal scaling in containers (build tag
// integration, run by make test): gdexport workers in containers of
// gdexport's own image (built FROM scratch, tagged by a hash of its
// inputs), on a 3-node NATS JetStream cluster started with
// deployments/nats/nats-cluster.conf, every stream and KV bucket R3,
// exporting to an S3 destination on MinIO (SSE-KMS with MinIO's built-in
// key), all on one Docker network created per test.
//
// The tests split the work over 1, 2 and 3 workers, kill workers with
// SIGKILL in the middle of new-lane batches and of a window flush, stop a
// NATS node during ingest, partition a worker for longer than its ack wait,
// and stop MinIO during export. Each checks the delivery semantics of
// DESIGN.md §2 on what MinIO holds: every accepted finding version exported
// (the latest version of every active id, when ids have several), no line
// in two different objects, every rewrite of an object identical to it
// (the bucket is versioned, so rewrites are seen), events only repeated
// with the same id. Each prints one result line: findings in, exported,
// duplicates, lost, seconds; with GDEXPORT_TEST_RESULTS set (make test
// sets it) the lines are also appended to that file, so that the suite's
// table is shown even when every test passes.
//
// Windows are the test-only windowOverride and ack waits the test-only
// ackWaitOverride, so every fault and every window takes seconds.
package cluster
