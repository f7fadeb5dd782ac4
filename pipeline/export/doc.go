// Package export turns sealed batches into sink writes. Each sink kind
// (objects, events) consumes the BATCHES stream through its own durable
// consumer, so each records its own progress per sealed batch and a broken
// bucket never holds back events, nor the reverse. A batch is rebuilt from
// its references in the FINDINGS stream, so any worker can write it and a
// retry writes the same lines under the same object name.
package export
