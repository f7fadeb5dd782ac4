// Package eventbridge is the Amazon EventBridge event sink: one event per
// exported finding, sent with PutEvents as DESIGN.md B11 says — Source
// configurable (default gdexport.guardduty; EventBridge refuses custom
// sources that begin with "aws."), DetailType "GuardDuty Finding", Time the
// finding's updatedAt, Detail the finding exactly as exported, on the
// configured event bus. EventBridge itself fills version, id, account and
// region.
//
// Calls carry at most 10 entries and at most 256 KB of entries, measured as
// EventBridge measures them. When some entries of a call fail, only those
// are sent again, after a capped exponential backoff. A finding whose event
// alone exceeds the limit is never sent and never silently dropped: PutEvents
// returns a *TooLargeError (wrapping ErrTooLarge) naming it, after sending
// the rest, so the caller can dead-letter it with the reason.
package eventbridge
