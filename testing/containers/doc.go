// Package containers starts the servers of gdexport's integration tests in
// Docker containers with testcontainers-go: MinIO (S3, with SSE-KMS through
// its built-in KMS key), local-kms (the KMS API) and NATS (one server or a
// JetStream cluster on a network of its own).
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
// Containers follow the workplace's rules (DESIGN.md §7): the Ryuk reaper is
// off (TESTCONTAINERS_RYUK_DISABLED=true; the Makefile exports it) and each
// container is removed with testcontainers.CleanupContainer; published ports
// are bound to 127.0.0.1 and tests reach them there
// (TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1, set by the Makefile and by
// Require when unset). Every helper takes a testing.TB and fails the test,
// never skips it, when Docker is missing: the integration tests are behind
// the build tag integration, so plain `go test ./...` never needs Docker.
package containers
