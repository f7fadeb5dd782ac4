package pipeline

import (
	"context"
	"errors"
)

// Object is one encoded batch: gzip JSON Lines, possibly envelope-encrypted.
type Object struct {
	// Key is the full object key (ObjectKey, plus ".enc" for envelope objects).
	Key         string
	Body        []byte
	ContentType string
	// SSEKMSKeyID asks the store to encrypt with this KMS key (SSE-KMS); empty
	// for envelope-encrypted objects.
	SSEKMSKeyID string
	// Lines is how many findings the object holds.
	Lines int
}

// ObjectSink writes objects for destinations of one type. PutObject must be
// idempotent: a retried batch writes the same key again.
type ObjectSink interface {
	Connect(ctx context.Context) error
	PutObject(ctx context.Context, dest *Destination, obj *Object) error
	Close(ctx context.Context) error
}

// EventSink emits one event per exported finding of a sealed batch. Event ids
// are deterministic per (destination, finding version), so a retried batch
// repeats ids rather than inventing new ones.
type EventSink interface {
	Connect(ctx context.Context) error
	PutEvents(ctx context.Context, dest *Destination, b *Batch, findings []*Finding) error
	Close(ctx context.Context) error
}

// ErrAccess marks an export access error (bucket missing, access denied, KMS
// key disabled or missing): the destination's properties must be fixed, so
// its status changes at once. Sinks wrap such errors with it; every other
// sink error is treated as transient and retried with backoff.
var ErrAccess = errors.New("export access error")

// IsAccess reports whether err is an export access error.
func IsAccess(err error) bool { return errors.Is(err, ErrAccess) }
