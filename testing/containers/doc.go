// Package containers starts the servers of gdexport's integration tests in
// Docker containers with testcontainers-go: MinIO (S3, with SSE-KMS through
// its built-in KMS key), local-kms (the KMS API), NATS (one server, or the
// 3-node JetStream cluster of deployments/nats/nats-cluster.conf on a
// Docker network) and gdexport workers themselves (StartWorker), which
// tests can kill, stop, cut off their network and reconnect.
//
// No container registry is reachable, so every image is built locally
// FROM scratch around a static binary (CGO_ENABLED=0) compiled from the Go
// module proxy. The tools that are not gdexport's own dependencies are
// pinned in their own module, testing/tools (go.mod with tool directives),
// so they never enter gdexport's dependency graph. Each image is tagged
// gdexport-test/<tool>:<hash of its inputs> (the tools module's go.mod and
// go.sum, the Dockerfile, the package and the Go toolchain) and built only
// when that tag is missing: the first run compiles (minio takes minutes),
// later runs start at once. A file lock keeps parallel test binaries from
// building the same image twice.
//
// gdexport's own image is built the same way from deployments/Dockerfile
// (the file `make image` uses): a static binary of ./cmd/gdexport FROM
// scratch with CA certificates and the non-root user gdexport, tagged
// gdexport-test/gdexport:<hash> over the Go and embedded files of the
// packages the binary is built from, go.mod, go.sum and the image's files,
// so that it is rebuilt exactly when what it is made of changes.
//
// Containers follow the workplace's rules (DESIGN.md §7): the Ryuk reaper is
// off (TESTCONTAINERS_RYUK_DISABLED=true; the Makefile exports it) and each
// container is removed when the test ends (testcontainers.TerminateContainer
// in a cleanup); published ports
// are bound to 127.0.0.1 and tests reach them there
// (TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1, set by the Makefile and by
// Require when unset). Every helper takes a testing.TB (MinIO's and
// local-kms's take TB, its subset, so the benchmark can start them too) and
// fails the test,
// never skips it, when Docker is missing: the integration tests are behind
// the build tag integration, so plain `go test ./...` never needs Docker.
package containers
