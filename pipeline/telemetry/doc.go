// Package telemetry is how a worker shows what it does: Prometheus metrics
// on a registry of its own, and the HTTP listener that serves them with the
// health probes (/healthz, /readyz) and the status page.
package telemetry
