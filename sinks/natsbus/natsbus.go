package natsbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
)

// Subject is the event subject of a destination owner's (region, account).
func Subject(region, account string) string { return "guardduty.events." + region + "." + account }

// EventID is the event id of a finding version exported to a destination: a
// UUID-shaped digest of (destination, id, updatedAt), so a retried event
// keeps its id and two destinations yield two distinct events.
func EventID(destID string, f *pipeline.Finding) string {
	h := sha256.New()
	h.Write([]byte(destID))
	h.Write([]byte{0})
	h.Write([]byte(f.ID))
	h.Write([]byte{0})
	h.Write([]byte(f.UpdatedAtText()))
	var sum [32]byte
	h.Sum(sum[:0])
	x := hex.EncodeToString(sum[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// AppendEnvelope appends the EventBridge envelope of f, as exported to the
// destination owned by (account, region), to dst.
func AppendEnvelope(dst []byte, id, account, region string, f *pipeline.Finding) []byte {
	dst = append(dst, `{"version":"0","id":"`...)
	dst = append(dst, id...)
	dst = append(dst, `","detail-type":"GuardDuty Finding","source":"aws.guardduty","account":"`...)
	dst = append(dst, account...)
	dst = append(dst, `","time":"`...)
	dst = time.UnixMilli(f.UpdatedAt).UTC().AppendFormat(dst, time.RFC3339)
	dst = append(dst, `","region":"`...)
	dst = append(dst, region...)
	dst = append(dst, `","resources":[],"detail":`...)
	dst = append(dst, f.Raw...)
	return append(dst, '}')
}

// Sink publishes events to JetStream. Safe for concurrent use.
type Sink struct {
	w natsx.Writer
}

var _ pipeline.EventSink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink)

// WithAtomicBatches publishes a batch's events in atomic batches over nc
// (strict durability: one disk sync per batch, not per event). The EVENTS
// stream must allow atomic publishing.
func WithAtomicBatches(nc *nats.Conn) Option {
	return func(s *Sink) { s.w.NC, s.w.Atomic = nc, true }
}

// New returns a sink publishing through js.
func New(js jetstream.JetStream, opts ...Option) *Sink {
	s := &Sink{w: natsx.Writer{JS: js}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Connect checks nothing: the EVENTS stream is created with the topology.
func (s *Sink) Connect(context.Context) error { return nil }

// Close does nothing; the connection belongs to the caller.
func (s *Sink) Close(context.Context) error { return nil }

// PutEvents publishes one event per finding and returns when every one is
// stored. Nats-Msg-Id is the event id, so a retry within the stream's
// duplicate window stores nothing twice.
func (s *Sink) PutEvents(ctx context.Context, dest *pipeline.Destination, b *pipeline.Batch, findings []*pipeline.Finding) error {
	subject := Subject(b.Region, b.Account)
	msgs := make([]*nats.Msg, len(findings))
	for i, f := range findings {
		id := EventID(dest.ID, f)
		m := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: AppendEnvelope(make([]byte, 0, len(f.Raw)+256), id, b.Account, b.Region, f)}
		m.Header.Set(jetstream.MsgIDHeader, id)
		msgs[i] = m
	}
	if err := s.w.Write(ctx, msgs); err != nil {
		return fmt.Errorf("publish %d events on %s: %w", len(findings), subject, err)
	}
	return nil
}
