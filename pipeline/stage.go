package pipeline

import "context"

// Drop reasons, used in metrics, logs and the dead letter's Gdexport-Reason.
const (
	DropInvalid       = "invalid"
	DropArchived      = "archived"
	DropSuppressed    = "suppressed"
	DropNoDestination = "no_destination"
	// DropDisassociated is a finding of a disassociated member account that
	// has no destination of its own (it is not served by the default
	// destination either).
	DropDisassociated = "disassociated"
	DropStale         = "stale"
	DropDuplicate     = "duplicate"
	// DropSuperseded counts a version replaced, before its batch was
	// sealed, by a later version of the same finding (the later one is
	// exported: "updates that arrive before that export merge into it").
	DropSuperseded = "superseded"
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

	// parsed is Finding.Raw as parsed by decode, shared with the stages
	// that read members decode does not keep (filter); release gives its
	// memory back.
	parsed  any
	release func()
}

// SetParsed records the parsed form of Finding.Raw (decode stores a
// *fastjson.Value) so that later stages do not parse the finding again.
// release, if not nil, is called by Release; v must not be used after it.
func (e *Envelope) SetParsed(v any, release func()) {
	e.Release()
	e.parsed, e.release = v, release
}

// Parsed returns what SetParsed recorded (nil when nothing was). It is valid
// until Release.
func (e *Envelope) Parsed() any { return e.parsed }

// Release frees the parsed form. The caller of the finding stages calls it
// once they are done; Finding itself stays valid.
func (e *Envelope) Release() {
	if e.release != nil {
		e.release()
	}
	e.parsed, e.release = nil, nil
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
