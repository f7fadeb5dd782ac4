package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

// fakeHealth is a settable gate that records reports.
type fakeHealth struct {
	mu      sync.Mutex
	gate    Gate
	reports []error
	changed chan struct{}
}

func (h *fakeHealth) Gate(string) Gate { h.mu.Lock(); defer h.mu.Unlock(); return h.gate }
func (h *fakeHealth) Report(_ context.Context, _ *pipeline.Destination, _ time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, err)
}
func (h *fakeHealth) Changed() <-chan struct{} { h.mu.Lock(); defer h.mu.Unlock(); return h.changed }
func (h *fakeHealth) set(g Gate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gate = g
	close(h.changed)
	h.changed = make(chan struct{})
}

// fakeStore writes objects in memory, or fails with err.
type fakeStore struct {
	mu      sync.Mutex
	err     error
	objects map[string]int // key → writes
}

func (s *fakeStore) Connect(context.Context) error { return nil }
func (s *fakeStore) Close(context.Context) error   { return nil }
func (s *fakeStore) PutObject(_ context.Context, _ *pipeline.Destination, obj *pipeline.Object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.objects[obj.Key]++
	return nil
}
func (s *fakeStore) writes() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, w := range s.objects {
		n += w
	}
	return len(s.objects), n
}

type oneDest struct{ d *pipeline.Destination }

func (r oneDest) Destination(id, _, _ string) (*pipeline.Destination, bool) { return r.d, id == r.d.ID }

type plainLines struct{ b bytes.Buffer }

func (w *plainLines) Line(l []byte) error                                                           { w.b.Write(l); w.b.WriteByte('\n'); return nil }
func (w *plainLines) Close() ([]byte, error)                                                        { return w.b.Bytes(), nil }
func (w *plainLines) Abort()                                                                        {}
func (nopObserver) ObjectWritten(*pipeline.Destination, *pipeline.Batch, *pipeline.Object, []int64) {}

type nopObserver struct{}

func (nopObserver) EventsWritten(*pipeline.Destination, *pipeline.Batch, string, int) {}
func (nopObserver) Missing(*pipeline.Batch, int)                                      {}
func (nopObserver) ObjectFailed(*pipeline.Destination, *pipeline.Batch, error)        {}
func (nopObserver) Parked(*pipeline.Destination, *pipeline.Batch)                     {}

// A failed write parks its batch once, however often the batch comes
// again; a closed gate writes nothing; once open, the backlog is written
// once per batch.
func TestParkAndDrain(t *testing.T) {
	ctx := context.Background()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := natsx.Ensure(ctx, js, natsx.TopologyConfig{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dest := &pipeline.Destination{ID: "0123456789abcdef0123456789abcdef", Account: "111122223333", Region: "us-east-1", Type: pipeline.DestinationLocal}
	store := &fakeStore{objects: map[string]int{}, err: fmt.Errorf("%w: no such bucket", pipeline.ErrAccess)}
	health := &fakeHealth{changed: make(chan struct{})}
	x := &Exporter{NC: nc, Resolver: oneDest{dest}, Log: slog.New(slog.DiscardHandler), Observer: nopObserver{},
		Decode: func(b []byte) (*pipeline.Finding, error) {
			var f struct {
				ID string `json:"id"`
				U  int64  `json:"u"`
			}
			err := json.Unmarshal(b, &f)
			return &pipeline.Finding{ID: f.ID, UpdatedAt: f.U, Raw: b}, err
		},
		Compress: func() LineWriter { return &plainLines{} },
		Encrypt: func(_ context.Context, _ *pipeline.Destination, key string, gz []byte, lines int) (*pipeline.Object, error) {
			return &pipeline.Object{Key: key, Body: gz, Lines: lines}, nil
		},
		Objects: map[pipeline.DestinationType]pipeline.ObjectSink{pipeline.DestinationLocal: store},
		Health:  health, JS: js, Batches: topo.Batches, RetryInitial: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}
	var records [][]byte
	for i := range 3 {
		ack, err := js.Publish(ctx, "findings.us-east-1.111122223333", fmt.Appendf(nil, `{"id":"f%d","u":1}`, i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(&pipeline.Batch{ID: fmt.Sprintf("00000000000000b%d", i), Destination: dest.ID, Account: dest.Account, Region: dest.Region,
			Lane: pipeline.LaneNew, SealedAt: time.Now().UnixMilli(), Refs: []pipeline.Ref{{Seq: ack.Sequence, ID: fmt.Sprintf("f%d", i), UpdatedAt: 1}}})
		records = append(records, b)
	}
	// The first write fails and parks; redeliveries park nothing more;
	// once the gate is not open nothing is written at all.
	for range 2 {
		if err := x.ExportObject(ctx, records[0]); err != nil {
			t.Fatal(err)
		}
	}
	health.set(GateProbe)
	for _, r := range records[1:] {
		if err := x.ExportObject(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if len(health.reports) != 2 || !pipeline.IsAccess(health.reports[0]) || !errors.Is(health.reports[0], ErrSink) {
		t.Fatalf("reports %v, want the two failed writes", health.reports)
	}
	info, err := topo.Batches.Info(ctx, jetstream.WithSubjectFilter(natsx.ParkedFilter(dest.ID)))
	if err != nil || len(info.State.Subjects) != 3 {
		t.Fatalf("parked subjects %v (%v), want the 3 batches once each", info.State.Subjects, err)
	}
	for s, n := range info.State.Subjects {
		if n != 1 {
			t.Errorf("%s parked %d times", s, n)
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); x.RunParked(runCtx) }()
	defer func() { cancel(); <-done }()
	health.set(GateClosed)
	store.mu.Lock()
	store.err = nil
	store.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	if objs, _ := store.writes(); objs != 0 {
		t.Fatalf("a closed destination was written %d objects", objs)
	}
	health.set(GateOpen)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if objs, _ := store.writes(); objs == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("backlog not written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if objs, writes := store.writes(); objs != 3 || writes != 3 {
		t.Fatalf("%d objects in %d writes, want 3 in 3", objs, writes)
	}
	c, _ := topo.Batches.Consumer(ctx, natsx.ParkedConsumer(dest.ID))
	ci, _ := c.Info(ctx)
	if ci.NumPending+uint64(ci.NumAckPending) != 0 {
		t.Fatalf("backlog left: %d pending, %d unacked", ci.NumPending, ci.NumAckPending)
	}
}
