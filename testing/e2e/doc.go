// Package e2e holds helpers for end-to-end tests: reading back what a worker
// exported (objects under a LOCAL destination, events on the EVENTS stream,
// dead letters) so tests can assert exact lines.
package e2e
