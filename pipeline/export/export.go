package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
)

// Resolver finds the destination a batch was sealed for.
type Resolver interface {
	Destination(id, account, region string) (*pipeline.Destination, bool)
}

// Encoder turns a batch's lines into an object for a destination: JSON
// Lines, gzip, then encryption.
type Encoder func(ctx context.Context, dest *pipeline.Destination, key string, lines [][]byte) (*pipeline.Object, error)

// Observer is told what was written (metrics, the run summary). Safe for
// concurrent use.
type Observer interface {
	ObjectWritten(dest *pipeline.Destination, b *pipeline.Batch, obj *pipeline.Object, fs []*pipeline.Finding)
	EventsWritten(dest *pipeline.Destination, b *pipeline.Batch, sink string, n int)
	Missing(b *pipeline.Batch, n int)
}

// ErrUnknownDestination is returned for a batch whose destination no longer
// exists.
var ErrUnknownDestination = errors.New("unknown destination")

// Exporter writes sealed batches. Its methods are safe for concurrent use.
type Exporter struct {
	NC       *nats.Conn
	Resolver Resolver
	Decode   func([]byte) (*pipeline.Finding, error)
	Encode   Encoder
	Objects  map[pipeline.DestinationType]pipeline.ObjectSink
	// Events are the event sinks by name ("nats", "eventbridge").
	Events   map[string]pipeline.EventSink
	Observer Observer
	Log      *slog.Logger
}

// ParseBatch reads a sealed batch record.
func ParseBatch(data []byte) (*pipeline.Batch, error) {
	var b pipeline.Batch
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("batch record: %w", err)
	}
	return &b, nil
}

// load rebuilds a batch's findings from the FINDINGS stream, in the sealed
// order. Findings that expired from the stream are counted and skipped.
func (x *Exporter) load(ctx context.Context, b *pipeline.Batch) ([]*pipeline.Finding, error) {
	seqs := make([]uint64, len(b.Refs))
	for i, r := range b.Refs {
		seqs[i] = r.Seq
	}
	msgs, err := natsx.GetSeqs(ctx, x.NC, natsx.StreamFindings, seqs)
	if err != nil {
		return nil, fmt.Errorf("load batch %s: %w", b.ID, err)
	}
	out := make([]*pipeline.Finding, 0, len(b.Refs))
	missing := 0
	for _, r := range b.Refs {
		m, ok := msgs[r.Seq]
		if !ok {
			missing++
			continue
		}
		f, err := x.Decode(m.Data)
		if err != nil || f.ID != r.ID || f.UpdatedAt != r.UpdatedAt {
			// The sequence no longer holds the sealed version: never export
			// something other than what was sealed.
			missing++
			continue
		}
		f.Seq = r.Seq
		f.ReceivedAt = m.Time.UnixMilli()
		out = append(out, f)
	}
	if missing > 0 {
		x.Log.Warn("findings of a sealed batch are no longer in the FINDINGS stream",
			slog.String("batch", b.ID), slog.Int("missing", missing))
		if x.Observer != nil {
			x.Observer.Missing(b, missing)
		}
	}
	return out, nil
}

func (x *Exporter) prepare(ctx context.Context, data []byte) (*pipeline.Batch, *pipeline.Destination, []*pipeline.Finding, error) {
	b, err := ParseBatch(data)
	if err != nil || b.Abandoned {
		return nil, nil, nil, err
	}
	dest, ok := x.Resolver.Destination(b.Destination, b.Account, b.Region)
	if !ok {
		return nil, nil, nil, fmt.Errorf("batch %s: %w %s", b.ID, ErrUnknownDestination, b.Destination)
	}
	fs, err := x.load(ctx, b)
	if err != nil {
		return nil, nil, nil, err
	}
	return b, dest, fs, nil
}

// WriteObject writes the object of one sealed batch record. It returns nil
// for an abandoned record. An error is retried by the caller.
func (x *Exporter) WriteObject(ctx context.Context, data []byte) error {
	b, dest, fs, err := x.prepare(ctx, data)
	if err != nil || b == nil || len(fs) == 0 {
		return err
	}
	sink, ok := x.Objects[dest.Type]
	if !ok {
		return fmt.Errorf("batch %s: no object sink for destination type %q", b.ID, dest.Type)
	}
	lines := make([][]byte, len(fs))
	for i, f := range fs {
		lines[i] = f.Raw
	}
	obj, err := x.Encode(ctx, dest, b.ObjectKey(dest.Prefix), lines)
	if err != nil {
		return fmt.Errorf("encode batch %s: %w", b.ID, err)
	}
	if err := sink.PutObject(ctx, dest, obj); err != nil {
		return fmt.Errorf("write %s: %w", obj.Key, err)
	}
	if x.Observer != nil {
		x.Observer.ObjectWritten(dest, b, obj, fs)
	}
	return nil
}

// WriteEvents emits, through the event sink named sink, the events of one
// sealed batch record. Each event sink consumes the batches on its own, so
// one failing bus never makes another repeat its events.
func (x *Exporter) WriteEvents(ctx context.Context, sink string, data []byte) error {
	s, ok := x.Events[sink]
	if !ok {
		return fmt.Errorf("no event sink %q", sink)
	}
	b, dest, fs, err := x.prepare(ctx, data)
	if err != nil || b == nil || len(fs) == 0 {
		return err
	}
	if err := s.PutEvents(ctx, dest, b, fs); err != nil {
		return fmt.Errorf("%s events of batch %s: %w", sink, b.ID, err)
	}
	if x.Observer != nil {
		x.Observer.EventsWritten(dest, b, sink, len(fs))
	}
	return nil
}
