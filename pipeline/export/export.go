package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
)

// Resolver finds the destination a batch was sealed for.
type Resolver interface {
	Destination(id, account, region string) (*pipeline.Destination, bool)
}

// LineWriter compresses an object's JSON Lines as they come (the compress
// stage's Writer).
type LineWriter interface {
	Line(l []byte) error
	Close() ([]byte, error)
	Abort()
}

// Encrypter turns an object's gzip bytes into the object to write for a
// destination (the encrypt stage).
type Encrypter func(ctx context.Context, dest *pipeline.Destination, key string, gz []byte, lines int) (*pipeline.Object, error)

// Observer is told what was written (metrics, the run summary). Safe for
// concurrent use.
type Observer interface {
	// ObjectWritten reports an object; received holds, per line, when the
	// FINDINGS stream stored it (epoch ms).
	ObjectWritten(dest *pipeline.Destination, b *pipeline.Batch, obj *pipeline.Object, received []int64)
	EventsWritten(dest *pipeline.Destination, b *pipeline.Batch, sink string, n int)
	Missing(b *pipeline.Batch, n int)
	// ObjectFailed reports a failed write to the destination (err wraps
	// ErrSink; pipeline.IsAccess tells access errors apart).
	ObjectFailed(dest *pipeline.Destination, b *pipeline.Batch, err error)
	// Parked reports a batch parked for its destination (Exporter.Health).
	Parked(dest *pipeline.Destination, b *pipeline.Batch)
}

// ErrUnknownDestination is returned for a batch whose destination no longer
// exists.
var ErrUnknownDestination = errors.New("unknown destination")

// ErrSink marks a failed write to the destination itself (encryption with
// its key, or its store), as opposed to a failure to rebuild the batch from
// JetStream: only the former says anything about the destination's health.
var ErrSink = errors.New("destination write failed")

// chunk is how many findings of a batch are read from FINDINGS at once: a
// batch of 10,000 is never held whole, only its compressed form.
const chunk = 500

// Exporter writes sealed batches. Its methods are safe for concurrent use.
type Exporter struct {
	NC       *nats.Conn
	Resolver Resolver
	Decode   func([]byte) (*pipeline.Finding, error)
	// Compress starts an object's compressed JSON Lines.
	Compress func() LineWriter
	Encrypt  Encrypter
	Objects  map[pipeline.DestinationType]pipeline.ObjectSink
	// Events are the event sinks by name ("nats", "eventbridge").
	Events   map[string]pipeline.EventSink
	Observer Observer
	Log      *slog.Logger
	// Cache, when set, holds the findings of batches this worker sealed.
	Cache *Cache

	// Health, when set, gates object writes by each destination's status
	// and hears how every write went (ExportObject, RunParked); JS and
	// Batches are then required. Nil: ExportObject writes every batch and
	// returns its errors for the caller to retry.
	Health  Health
	JS      jetstream.JetStream
	Batches jetstream.Stream
	// RetryInitial and RetryMax bound the backoff between retries of a
	// failing destination's parked batches (defaults 5s and 5m).
	RetryInitial, RetryMax time.Duration
	// SlowAfter treats a destination whose oldest write in flight has run
	// this long as failing: its next batches are parked instead of
	// occupying the shared consumer (default 15s).
	SlowAfter time.Duration
	// WriteTimeout bounds one attempt at writing a parked batch (default
	// 2m).
	WriteTimeout time.Duration
	// Clock dates the writes reported to Health (default time.Now); it
	// must be the clock of the statuses.
	Clock func() time.Time

	parkedOnce sync.Once
	parkedNew  chan string
	ensured    sync.Map // destination id → time.Time its parked consumer was made sure of
	flightsMu  sync.Mutex
	flights    map[string]map[uint64]time.Time // destination id → writes in flight by start
	flightSeq  uint64
}

// ParseBatch reads a sealed batch record.
func ParseBatch(data []byte) (*pipeline.Batch, error) {
	var b pipeline.Batch
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("batch record: %w", err)
	}
	return &b, nil
}

// each calls fn with the batch's findings in the sealed order, chunk by
// chunk, read from the FINDINGS stream. Findings that expired from the
// stream (or whose sequence holds another version) are counted and
// skipped: never export something other than what was sealed.
func (x *Exporter) each(ctx context.Context, b *pipeline.Batch, fn func(fs []*pipeline.Finding) error) error {
	if fs, ok := x.Cache.get(b.ID); ok {
		for start := 0; start < len(fs); start += chunk {
			if err := fn(fs[start:min(start+chunk, len(fs))]); err != nil {
				return err
			}
		}
		return nil
	}
	missing := 0
	fs := make([]*pipeline.Finding, 0, min(chunk, len(b.Refs)))
	for start := 0; start < len(b.Refs); start += chunk {
		refs := b.Refs[start:min(start+chunk, len(b.Refs))]
		seqs := make([]uint64, len(refs))
		for i, r := range refs {
			seqs[i] = r.Seq
		}
		msgs, err := natsx.GetSeqs(ctx, x.NC, natsx.StreamFindings, seqs)
		if err != nil {
			return fmt.Errorf("load batch %s: %w", b.ID, err)
		}
		fs = fs[:0]
		for _, r := range refs {
			m, ok := msgs[r.Seq]
			if !ok {
				missing++
				continue
			}
			f, err := x.Decode(m.Data)
			if err != nil || f.ID != r.ID || f.UpdatedAt != r.UpdatedAt {
				missing++
				continue
			}
			f.Seq = r.Seq
			f.ReceivedAt = m.Time.UnixMilli()
			fs = append(fs, f)
		}
		if len(fs) > 0 {
			if err := fn(fs); err != nil {
				return err
			}
		}
	}
	if missing > 0 {
		x.Log.Warn("findings of a sealed batch are no longer in the FINDINGS stream",
			slog.String("batch", b.ID), slog.Int("missing", missing))
		if x.Observer != nil {
			x.Observer.Missing(b, missing)
		}
	}
	return nil
}

// prepare reads a batch record and resolves its destination. A nil batch
// with a nil error means there is nothing to write: an abandoned or empty
// record, or one of a deleted destination (dropped and logged).
func (x *Exporter) prepare(data []byte) (*pipeline.Batch, *pipeline.Destination, error) {
	b, err := ParseBatch(data)
	if err != nil || b.Abandoned || len(b.Refs) == 0 {
		return nil, nil, err
	}
	dest, ok := x.Resolver.Destination(b.Destination, b.Account, b.Region)
	if !ok {
		if x.Health != nil && x.Health.Gate(b.Destination) == GateGone {
			x.Log.Info("batch of a deleted destination dropped", slog.String("destination", b.Destination),
				slog.String("batch", b.ID), slog.Int("findings", len(b.Refs)))
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("batch %s: %w %s", b.ID, ErrUnknownDestination, b.Destination)
	}
	return b, dest, nil
}

// WriteObject writes the object of one sealed batch record, compressing
// its findings as they are read. It returns nil for an abandoned or empty
// record. An error is retried by the caller; a failed write to the
// destination itself wraps ErrSink.
func (x *Exporter) WriteObject(ctx context.Context, data []byte) error {
	b, dest, err := x.prepare(data)
	if err != nil || b == nil {
		return err
	}
	return x.writeObject(ctx, b, dest)
}

func (x *Exporter) writeObject(ctx context.Context, b *pipeline.Batch, dest *pipeline.Destination) error {
	sink, ok := x.Objects[dest.Type]
	if !ok {
		return fmt.Errorf("%w: batch %s: no object sink for destination type %q: %w", ErrSink, b.ID, dest.Type, pipeline.ErrAccess)
	}
	w := x.Compress()
	received := make([]int64, 0, len(b.Refs))
	err := x.each(ctx, b, func(fs []*pipeline.Finding) error {
		for _, f := range fs {
			if err := w.Line(f.Raw); err != nil {
				return fmt.Errorf("batch %s finding %s: %w", b.ID, f.ID, err)
			}
			received = append(received, f.ReceivedAt)
		}
		return nil
	})
	if err != nil {
		w.Abort()
		return err
	}
	gz, err := w.Close()
	if err != nil {
		return fmt.Errorf("compress batch %s: %w", b.ID, err)
	}
	if len(received) == 0 {
		return nil // every finding expired: nothing to write
	}
	obj, err := x.Encrypt(ctx, dest, b.ObjectKey(dest.Prefix), gz, len(received))
	if err != nil {
		return fmt.Errorf("%w: encrypt batch %s: %w", ErrSink, b.ID, err)
	}
	if err := sink.PutObject(ctx, dest, obj); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrSink, obj.Key, err)
	}
	if x.Observer != nil {
		x.Observer.ObjectWritten(dest, b, obj, received)
	}
	x.Cache.done(b.ID)
	return nil
}

// WriteEvents emits, through the event sink named sink, the events of one
// sealed batch record, chunk by chunk. Each event sink consumes the batches
// on its own, so one failing bus never makes another repeat its events.
func (x *Exporter) WriteEvents(ctx context.Context, sink string, data []byte) error {
	s, ok := x.Events[sink]
	if !ok {
		return fmt.Errorf("no event sink %q", sink)
	}
	b, dest, err := x.prepare(data)
	if err != nil || b == nil {
		return err
	}
	n := 0
	err = x.each(ctx, b, func(fs []*pipeline.Finding) error {
		err := s.PutEvents(ctx, dest, b, fs)
		dead, ok := x.deadLetterUndeliverable(ctx, dest, err)
		if ok {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("%s events of batch %s: %w", sink, b.ID, err)
		}
		n += len(fs) - dead
		return nil
	})
	if err != nil {
		return err
	}
	if x.Observer != nil && n > 0 {
		x.Observer.EventsWritten(dest, b, sink, n)
	}
	x.Cache.done(b.ID)
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
