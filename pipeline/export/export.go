package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	ObjectWritten(dest *pipeline.Destination, b *pipeline.Batch, obj *pipeline.Object)
	EventsWritten(dest *pipeline.Destination, b *pipeline.Batch, n int)
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
	Events   []pipeline.EventSink
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
		x.Observer.ObjectWritten(dest, b, obj)
	}
	return nil
}

// WriteEvents emits the events of one sealed batch record.
func (x *Exporter) WriteEvents(ctx context.Context, data []byte) error {
	b, dest, fs, err := x.prepare(ctx, data)
	if err != nil || b == nil || len(fs) == 0 || len(x.Events) == 0 {
		return err
	}
	var errs []error
	dead := 0
	for _, s := range x.Events {
		err := s.PutEvents(ctx, dest, b, fs)
		if n, ok := x.deadLetterUndeliverable(ctx, dest, err); ok {
			dead = max(dead, n)
			err = nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("events of batch %s: %w", b.ID, err)
	}
	if x.Observer != nil {
		x.Observer.EventsWritten(dest, b, len(fs)-dead)
	}
	return nil
}

// Undeliverable is implemented by an event sink's error that names findings
// the sink can never deliver, such as an event larger than EventBridge's
// limit. A sink returns such an error itself, unwrapped, when everything
// else was delivered; its findings then go to the dead letter with the
// reason instead of the batch being retried forever.
type Undeliverable interface {
	error
	Undeliverable() (findings []*pipeline.Finding, reasons []string)
}

// deadLetterUndeliverable stores the findings of an Undeliverable error on
// the dead-letter stream (reason in Gdexport-Reason, deduplicated per
// destination and finding version) and reports how many, and true, once
// they are stored. For any other error, or when storing fails, it reports
// false and the caller retries the batch.
func (x *Exporter) deadLetterUndeliverable(ctx context.Context, dest *pipeline.Destination, err error) (int, bool) {
	u, ok := err.(Undeliverable)
	if !ok {
		return 0, false
	}
	fs, reasons := u.Undeliverable()
	js, jerr := jetstream.New(x.NC)
	if jerr != nil {
		x.Log.Warn("dead letter not stored; events will be retried", slog.Any("error", jerr))
		return 0, false
	}
	for i, f := range fs {
		m := &nats.Msg{Subject: natsx.SubjectDeadLetter, Data: f.Raw, Header: nats.Header{}}
		m.Header.Set(natsx.HeaderReason, reasons[i])
		if f.Seq > 0 {
			m.Header.Set(natsx.HeaderSeq, strconv.FormatUint(f.Seq, 10))
		}
		m.Header.Set(jetstream.MsgIDHeader, "dl:event:"+dest.ID+":"+f.VersionKey())
		if _, perr := js.PublishMsg(ctx, m); perr != nil {
			x.Log.Warn("dead letter not stored; events will be retried", slog.String("finding", f.ID), slog.Any("error", perr))
			return 0, false
		}
		x.Log.Warn("finding dead-lettered: its event cannot be delivered", slog.String("finding", f.ID),
			slog.String("destination", dest.ID), slog.String("reason", reasons[i]))
	}
	return len(fs), true
}
