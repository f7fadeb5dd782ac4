package pipeline

import "context"

// Drop reasons, used in metrics, logs and the dead letter's Gdexport-Reason.
const (
	DropInvalid       = "invalid"
	DropArchived      = "archived"
	DropSuppressed    = "suppressed"
	DropNoDestination = "no_destination"
	DropStale         = "stale"
	DropDuplicate     = "duplicate"
)

// Envelope carries one ingest message through the finding stages (decode,
// filter, fan-in). A stage that drops the message sets Drop and leaves the
// rest alone; it is not an error.
type Envelope struct {
	// Subject and Data are the message as received; Seq is its FINDINGS
	// stream sequence.
	Subject string
	Data    []byte
	Seq     uint64
	// Finding is set by decode.
	Finding *Finding
	// Destinations is set by fan-in: every destination this finding goes to.
	Destinations []*Destination
	// Drop is the reason the message goes no further ("" while it does);
	// DropDetail explains it (the dead letter's reason for invalid input, the
	// filter's name for suppressed findings).
	Drop       string
	DropDetail string
}

// Dropf marks e dropped with reason and a detail.
func (e *Envelope) Dropf(reason, detail string) {
	e.Drop = reason
	e.DropDetail = detail
}

// Stage is one step of the finding path. Process may block only on ctx; an
// error means the stage failed (the message is retried), not that the
// finding was filtered out.
type Stage interface {
	Process(ctx context.Context, e *Envelope) error
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, e *Envelope) error

// Process calls f.
func (f StageFunc) Process(ctx context.Context, e *Envelope) error { return f(ctx, e) }

// Middleware wraps a Stage from outside (metrics, recover, timeout).
type Middleware func(Stage) Stage

// Sequence runs stages in order and stops at the first error or drop.
type Sequence []Stage

// Process runs the sequence.
func (s Sequence) Process(ctx context.Context, e *Envelope) error {
	for _, st := range s {
		if err := st.Process(ctx, e); err != nil {
			return err
		}
		if e.Drop != "" {
			return nil
		}
	}
	return nil
}
