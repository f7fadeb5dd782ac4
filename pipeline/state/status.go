package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/gdexport/gdexport/pipeline"
)

// Status is the publishing status of one destination (DESIGN.md B9, B10),
// kept in the status bucket (natsx.BucketStatus) under the destination's id
// and changed only with compare-and-set, so that concurrent workers change
// it once. Times are epoch milliseconds (0: never).
type Status struct {
	DestinationID string `json:"destinationId"`
	Account       string `json:"account,omitempty"`
	Region        string `json:"region,omitempty"`
	// Status is one of pipeline.StatusPendingVerification,
	// StatusPublishing, StatusUnableToPublish, StatusStopped.
	Status string `json:"status"`
	// PublishingFailureStartTimestamp is when the failure that made the
	// destination UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY began (kept
	// while STOPPED), as GuardDuty reports it.
	PublishingFailureStartTimestamp int64 `json:"publishingFailureStartTimestamp,omitempty"`
	// FailingSince is the first transient error since the last success,
	// while it is still PUBLISHING (or PENDING_VERIFICATION); it becomes
	// the failure start when the errors outlast the failure threshold.
	FailingSince int64 `json:"failingSince,omitempty"`
	// LastError and LastErrorKind (ErrorKindAccess or ErrorKindTransient)
	// describe the latest error recorded, at LastErrorAt.
	LastError     string `json:"lastError,omitempty"`
	LastErrorKind string `json:"lastErrorKind,omitempty"`
	LastErrorAt   int64  `json:"lastErrorAt,omitempty"`
	// Since is when Status last changed; Reason says why.
	Since  int64  `json:"since"`
	Reason string `json:"reason,omitempty"`
	// LastExport is the latest successful object write, recorded at most
	// once a minute.
	LastExport int64 `json:"lastExport,omitempty"`
	// VerifiedAt is the latest successful verification.
	VerifiedAt int64 `json:"verifiedAt,omitempty"`
	// Generation counts restarts (creation is 1): a verification started
	// before a restart does not decide the status after it.
	Generation int64 `json:"generation"`
	// Properties is PropertiesHash of the destination record to verify: a
	// worker verifies only once it sees that record.
	Properties string `json:"properties,omitempty"`
	// VerifyingBy and VerifyingUntil are a worker's lease on verifying.
	VerifyingBy    string `json:"verifyingBy,omitempty"`
	VerifyingUntil int64  `json:"verifyingUntil,omitempty"`
	// Deleted marks a deleted destination: its batches are dropped.
	Deleted bool `json:"deleted,omitempty"`
}

// Failing reports whether writes to the destination are failing while it
// is still PUBLISHING (a transient error since the last success).
func (s Status) Failing() bool { return s.FailingSince != 0 }

// Error kinds of Status.LastErrorKind.
const (
	ErrorKindAccess    = "access"
	ErrorKindTransient = "transient"
)

// StatusEventKind is what happened to a destination.
type StatusEventKind string

// The events of the status machine.
const (
	// EventWritten: an object was written.
	EventWritten StatusEventKind = "written"
	// EventWriteFailed: a write failed with StatusEvent.Err.
	EventWriteFailed StatusEventKind = "write-failed"
	// EventVerified: the destination's verification succeeded.
	EventVerified StatusEventKind = "verified"
	// EventVerifyFailed: its verification failed with StatusEvent.Err.
	EventVerifyFailed StatusEventKind = "verify-failed"
	// EventTick: time passed (failure threshold, disableAfter).
	EventTick StatusEventKind = "tick"
	// EventRestart: the destination was created, updated or restarted and
	// must be verified again.
	EventRestart StatusEventKind = "restart"
)

// StatusEvent is one input of the status machine.
type StatusEvent struct {
	Kind StatusEventKind
	// Err is the failure of EventWriteFailed and EventVerifyFailed: an
	// access error (pipeline.IsAccess) makes the destination
	// UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY at once, any other only
	// when errors persist longer than the failure threshold.
	Err error
	// Generation is the Status.Generation a verification was started for.
	Generation int64
	// Reason says why a restart happens (created, updated, restarted).
	Reason string
	// Properties is PropertiesHash of the destination record a restart is
	// for.
	Properties string
	// Started is when the write of EventWritten or EventWriteFailed began
	// (zero: unknown). A write that began before the status it would
	// change (or before the failure it would clear) is stale: concurrent
	// writes that straddle a change must not flip it back and forth.
	Started time.Time
}

// HealthPolicy holds the durations of DESIGN.md §2 "Errors".
type HealthPolicy struct {
	// FailureThreshold is how long transient errors may persist before the
	// destination becomes UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY.
	FailureThreshold time.Duration
	// DisableAfter is how long it may stay so before it is STOPPED.
	DisableAfter time.Duration
}

// DefaultHealthPolicy is the defaults table's: 5 minutes, 24 hours.
var DefaultHealthPolicy = HealthPolicy{FailureThreshold: 5 * time.Minute, DisableAfter: 24 * time.Hour}

// lastExportEvery is how often a healthy destination's LastExport is
// written: a KV write per object would cost throughput for nothing.
const lastExportEvery = time.Minute

// maxErrorLen bounds LastError (an SDK error can be long).
const maxErrorLen = 512

// Next is the status machine: the status after ev at now, and whether it
// differs from cur so that it must be written. It is a pure function;
// Statuses applies it with compare-and-set. The rules:
//
//   - a restart (create, update, restart) makes any status
//     PENDING_VERIFICATION with a new generation;
//   - verification of the current generation makes PENDING_VERIFICATION or
//     UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY PUBLISHING; its failure
//     with an access error makes PENDING_VERIFICATION UNABLE at once, and
//     transient failures after FailureThreshold;
//   - an access error on a write makes PUBLISHING UNABLE at once; transient
//     errors start FailingSince and make it UNABLE once they persist
//     longer than FailureThreshold (at the next error or tick);
//   - a successful write makes UNABLE PUBLISHING again and clears
//     FailingSince;
//   - a write that began before the status (or the failure) it would
//     change is ignored (StatusEvent.Started);
//   - UNABLE becomes STOPPED DisableAfter after its failure began; STOPPED
//     and PENDING_VERIFICATION ignore writes (only a restart or a
//     verification moves them).
func (p HealthPolicy) Next(cur Status, ev StatusEvent, now time.Time) (Status, bool) {
	ms := now.UnixMilli()
	next := cur
	if ev.Kind == EventRestart {
		next = Status{DestinationID: cur.DestinationID, Account: cur.Account, Region: cur.Region,
			Status: pipeline.StatusPendingVerification, Since: ms, Reason: ev.Reason, Generation: cur.Generation + 1,
			Properties: ev.Properties, LastExport: cur.LastExport, VerifiedAt: cur.VerifiedAt,
			LastError: cur.LastError, LastErrorKind: cur.LastErrorKind, LastErrorAt: cur.LastErrorAt}
		return next, true
	}
	if cur.Deleted {
		return cur, false
	}
	unable := func(start int64, reason string) (Status, bool) {
		next.Status, next.Since, next.Reason = pipeline.StatusUnableToPublish, ms, reason
		next.PublishingFailureStartTimestamp = start
		next.FailingSince = 0
		next.VerifyingBy, next.VerifyingUntil = "", 0
		return next, true
	}
	publishing := func(reason string) (Status, bool) {
		next.Status, next.Since, next.Reason = pipeline.StatusPublishing, ms, reason
		next.PublishingFailureStartTimestamp, next.FailingSince = 0, 0
		next.VerifyingBy, next.VerifyingUntil = "", 0
		return next, true
	}
	recordErr := func() bool {
		kind := ErrorKindTransient
		if pipeline.IsAccess(ev.Err) {
			kind = ErrorKindAccess
		}
		msg := "unknown error"
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		if len(msg) > maxErrorLen {
			// The cause (an S3 or KMS error code) is at the end of the
			// chain: keep both ends.
			head := maxErrorLen / 3
			msg = strings.ToValidUTF8(msg[:head]+" … "+msg[len(msg)-(maxErrorLen-head):], "")
		}
		next.LastError, next.LastErrorKind, next.LastErrorAt = msg, kind, ms
		return kind == ErrorKindAccess
	}
	overThreshold := func(since int64) bool { return since != 0 && ms-since >= p.FailureThreshold.Milliseconds() }
	startedBefore := func(t int64) bool { return !ev.Started.IsZero() && ev.Started.UnixMilli() < t }

	switch ev.Kind {
	case EventWritten:
		switch cur.Status {
		case pipeline.StatusPublishing:
			if cur.FailingSince != 0 && startedBefore(cur.FailingSince) {
				return cur, false // it proves nothing about the failure
			}
			if cur.FailingSince == 0 && ms-cur.LastExport < lastExportEvery.Milliseconds() {
				return cur, false
			}
			next.FailingSince, next.LastExport = 0, ms
			return next, true
		case pipeline.StatusUnableToPublish:
			if startedBefore(cur.Since) {
				return cur, false
			}
			next.LastExport = ms
			return publishing("recovered: an export write succeeded")
		}
	case EventWriteFailed:
		switch cur.Status {
		case pipeline.StatusPublishing:
			if startedBefore(cur.Since) {
				return cur, false // began before the destination was fixed
			}
			if recordErr() {
				start := ms
				if cur.FailingSince != 0 {
					start = cur.FailingSince
				}
				return unable(start, "export access error: the destination's properties must be fixed")
			}
			if cur.FailingSince == 0 {
				next.FailingSince = ms
				return next, true
			}
			if overThreshold(cur.FailingSince) {
				return unable(cur.FailingSince, "export errors persisted longer than failureThreshold ("+p.FailureThreshold.String()+")")
			}
			return cur, false
		case pipeline.StatusUnableToPublish:
			// Retries keep failing; record the error only when its kind
			// changes, so that a broken destination costs no KV write
			// per retry.
			access := pipeline.IsAccess(ev.Err)
			if (cur.LastErrorKind == ErrorKindAccess) != access {
				recordErr()
				return next, true
			}
			return cur, false
		}
	case EventVerified:
		if ev.Generation != cur.Generation {
			return cur, false
		}
		switch cur.Status {
		case pipeline.StatusPendingVerification, pipeline.StatusUnableToPublish:
			next.VerifiedAt = ms
			return publishing("verified")
		}
	case EventVerifyFailed:
		if ev.Generation != cur.Generation {
			return cur, false
		}
		switch cur.Status {
		case pipeline.StatusPendingVerification:
			next.VerifyingBy, next.VerifyingUntil = "", 0
			if recordErr() {
				return unable(ms, "verification failed: the destination's properties must be fixed")
			}
			if cur.FailingSince == 0 {
				next.FailingSince = ms
			} else if overThreshold(cur.FailingSince) {
				return unable(cur.FailingSince, "verification kept failing for longer than failureThreshold ("+p.FailureThreshold.String()+")")
			}
			return next, true
		case pipeline.StatusUnableToPublish:
			// Still broken: the lease runs out by itself.
			return cur, false
		}
	case EventTick:
		switch cur.Status {
		case pipeline.StatusPublishing, pipeline.StatusPendingVerification:
			if overThreshold(cur.FailingSince) {
				return unable(cur.FailingSince, "export errors persisted longer than failureThreshold ("+p.FailureThreshold.String()+")")
			}
		case pipeline.StatusUnableToPublish:
			if start := cur.PublishingFailureStartTimestamp; start != 0 && ms-start >= p.DisableAfter.Milliseconds() {
				next.Status, next.Since = pipeline.StatusStopped, ms
				next.Reason = "unresolved for disableAfter (" + p.DisableAfter.String() + "): export stopped until the destination is updated or restarted"
				next.VerifyingBy, next.VerifyingUntil = "", 0
				return next, true
			}
		}
	}
	return cur, false
}

// PropertiesHash identifies a destination record's content, so that a
// worker verifies the properties a restart was made for, not an older
// record it still holds.
func PropertiesHash(d *pipeline.Destination) string {
	b, _ := json.Marshal(d)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
