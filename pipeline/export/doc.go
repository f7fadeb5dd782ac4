// Package export turns sealed batches into sink writes. Each sink kind
// (objects, events) consumes the BATCHES stream through its own durable
// consumer, so each records its own progress per sealed batch and a broken
// bucket never holds back events, nor the reverse. A batch is rebuilt from
// its references in the FINDINGS stream, so any worker can write it and a
// retry writes the same lines under the same object name.
//
// With a Health (the destinations' publishing status), the objects
// consumer never waits for a destination that cannot take its batches:
// ExportObject parks them, once each, under gdexport.parked.<destination>.
// <batch> for that destination's own durable consumer, and RunParked drains
// every destination's backlog as its status allows (write while it
// publishes, probe with backoff while it fails, nothing while it is
// PENDING_VERIFICATION or STOPPED).
package export
