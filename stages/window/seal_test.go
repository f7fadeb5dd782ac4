package window

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

type fakeMsg struct {
	mu    sync.Mutex
	acks  int
	naks  int
	ackCh chan struct{}
}

func newFakeMsg() *fakeMsg { return &fakeMsg{ackCh: make(chan struct{}, 8)} }

func (m *fakeMsg) Ack() error {
	m.mu.Lock()
	m.acks++
	m.mu.Unlock()
	m.ackCh <- struct{}{}
	return nil
}

func (m *fakeMsg) NakWithDelay(time.Duration) error {
	m.mu.Lock()
	m.naks++
	m.mu.Unlock()
	m.ackCh <- struct{}{}
	return nil
}

func (m *fakeMsg) InProgress() error { return nil }

func (m *fakeMsg) counts() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acks, m.naks
}

type countingCounter struct {
	mu      sync.Mutex
	dropped map[string]int
	sealed  int
}

func (c *countingCounter) Dropped(reason string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped == nil {
		c.dropped = map[string]int{}
	}
	c.dropped[reason] += n
}

func (c *countingCounter) Sealed(*pipeline.Batch) {
	c.mu.Lock()
	c.sealed++
	c.mu.Unlock()
}

func setup(t *testing.T) (*nats.Conn, jetstream.JetStream, *Sealer, *countingCounter) {
	t.Helper()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := natsx.Ensure(ctx, js, natsx.TopologyConfig{}); err != nil {
		t.Fatal(err)
	}
	c := &countingCounter{}
	return nc, js, NewSealer(nc, js, SealerOptions{Counter: c}), c
}

var dest = &pipeline.Destination{ID: "d1", Account: "111122223333", Region: "us-east-1"}

func finding(id string, updatedAt, count int64, seq uint64) *pipeline.Finding {
	return &pipeline.Finding{ID: id, UpdatedAt: updatedAt, Count: count, Seq: seq, Raw: []byte(`{"id":"` + id + `"}`)}
}

func request(lane pipeline.Lane, fs []*pipeline.Finding, redelivered bool) (*sealRequest, []*fakeMsg) {
	req := &sealRequest{dest: dest, lane: lane}
	var msgs []*fakeMsg
	for _, f := range fs {
		m := newFakeMsg()
		h := NewHold(m, 1, redelivered, nil)
		req.entries = append(req.entries, &entry{f: f, holds: []*Hold{h}})
		req.holds = append(req.holds, h)
		msgs = append(msgs, m)
	}
	return req, msgs
}

func readExported(t *testing.T, js jetstream.JetStream, findingID string) Exported {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), natsx.BucketExported)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), FindingKey(dest.ID, findingID))
	if err != nil {
		t.Fatalf("exported record of %s: %v", findingID, err)
	}
	var x Exported
	if err := json.Unmarshal(e.Value(), &x); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestSealPersistsThenAcks(t *testing.T) {
	_, js, s, c := setup(t)
	req, msgs := request(pipeline.LaneNew, []*pipeline.Finding{finding("a", 1000, 1, 1), finding("b", 2000, 1, 2)}, false)
	b, err := s.Seal(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil || len(b.Refs) != 2 || b.Refs[0].Seq != 1 || b.Refs[1].ID != "b" {
		t.Fatalf("sealed batch = %+v", b)
	}
	for i, m := range msgs {
		if a, n := m.counts(); a != 1 || n != 0 {
			t.Errorf("message %d: acks %d naks %d, want 1 ack", i, a, n)
		}
	}
	st, _ := js.Stream(context.Background(), natsx.StreamBatches)
	raw, err := st.GetLastMsgForSubject(context.Background(), BatchSubject(dest.ID, b.ID))
	if err != nil {
		t.Fatalf("batch record missing: %v", err)
	}
	var stored pipeline.Batch
	_ = json.Unmarshal(raw.Data, &stored)
	if stored.ID != b.ID || len(stored.Refs) != 2 || stored.Abandoned {
		t.Errorf("stored batch = %+v", stored)
	}
	if x := readExported(t, js, "a"); x.Batch != b.ID || x.UpdatedAt != 1000 {
		t.Errorf("exported record of a = %+v", x)
	}
	if c.sealed != 1 {
		t.Errorf("sealed count = %d", c.sealed)
	}
}

func TestSealDropsStaleAndDuplicateVersions(t *testing.T) {
	_, _, s, c := setup(t)
	ctx := context.Background()
	first, _ := request(pipeline.LaneNew, []*pipeline.Finding{finding("a", 2000, 3, 1), finding("b", 2000, 1, 2)}, false)
	if _, err := s.Seal(ctx, first); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		f       *pipeline.Finding
		staged  bool
		dropped string
	}{
		// An older updatedAt than the one sealed is stale.
		{"older updatedAt", finding("a", 1000, 9, 3), false, pipeline.DropStale},
		// Same updatedAt, lower count: stale too (count breaks ties).
		{"same time lower count", finding("a", 2000, 2, 4), false, pipeline.DropStale},
		// The very version sealed before, published again: a duplicate.
		{"identical version", finding("a", 2000, 3, 5), false, pipeline.DropDuplicate},
		// A later count at the same time is a newer version: an update of
		// an exported id, staged in its window rather than sealed anew.
		{"same time higher count", finding("b", 2000, 2, 6), true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.dropped[tc.dropped]
			req, msgs := request(pipeline.LaneNew, []*pipeline.Finding{tc.f}, false)
			b, err := s.Seal(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				t.Fatalf("a version of an exported id was sealed in the new lane: %+v", b)
			}
			if got := len(pendingOf(t, s, dest)) > 0; got != tc.staged {
				t.Fatalf("staged = %v, want %v", got, tc.staged)
			}
			if !tc.staged && c.dropped[tc.dropped] != before+1 {
				t.Errorf("dropped[%s] = %d, want %d", tc.dropped, c.dropped[tc.dropped], before+1)
			}
			if a, _ := msgs[0].counts(); a != 1 {
				t.Errorf("message not acked (a dropped version is resolved too)")
			}
		})
	}
}

// A worker that crashed after claiming records but before sealing leaves
// records naming a batch that does not exist. A redelivered message
// abandons that batch and exports the finding; the crashed batch can then
// never be sealed.
func TestOrphanedClaimIsAbandonedOnRedelivery(t *testing.T) {
	_, js, s, _ := setup(t)
	ctx := context.Background()
	crashed := "00000000deadbeef"
	kept, _, err := s.claim(ctx, dest, crashed, pipeline.LaneNew, []*entry{{f: finding("a", 1000, 1, 1)}})
	if err != nil || len(kept) != 1 {
		t.Fatalf("claim = %v, %v", kept, err)
	}
	// Not redelivered: the same version is someone else's (live) claim.
	req, _ := request(pipeline.LaneNew, []*pipeline.Finding{finding("a", 1000, 1, 1)}, false)
	if b, err := s.Seal(ctx, req); err != nil || b != nil {
		t.Fatalf("fresh duplicate sealed: %v %v", b, err)
	}
	// Redelivered: the orphan is abandoned and the finding exported.
	req, msgs := request(pipeline.LaneNew, []*pipeline.Finding{finding("a", 1000, 1, 1)}, true)
	b, err := s.Seal(ctx, req)
	if err != nil || b == nil {
		t.Fatalf("redelivered finding not sealed: %v %v", b, err)
	}
	if a, _ := msgs[0].counts(); a != 1 {
		t.Error("redelivered message not acked")
	}
	if x := readExported(t, js, "a"); x.Batch != b.ID {
		t.Errorf("record names %s, want the new batch %s", x.Batch, b.ID)
	}
	// The crashed worker's late seal of its batch must fail.
	body, _ := json.Marshal(pipeline.Batch{ID: crashed})
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: BatchSubject(dest.ID, crashed), Data: body}, jetstream.WithExpectLastSequencePerSubject(0))
	if !isWrongLastSeq(err) {
		t.Fatalf("late seal of abandoned batch: err = %v, want wrong last sequence", err)
	}
}

// A sealed batch is never abandoned: the redelivered message is a duplicate.
func TestRedeliveryOfSealedFindingIsDuplicate(t *testing.T) {
	_, _, s, c := setup(t)
	ctx := context.Background()
	req, _ := request(pipeline.LaneNew, []*pipeline.Finding{finding("a", 1000, 1, 1)}, false)
	if _, err := s.Seal(ctx, req); err != nil {
		t.Fatal(err)
	}
	req, msgs := request(pipeline.LaneNew, []*pipeline.Finding{finding("a", 1000, 1, 1)}, true)
	b, err := s.Seal(ctx, req)
	if err != nil || b != nil {
		t.Fatalf("redelivery of a sealed finding re-batched: %v %v", b, err)
	}
	if c.dropped[pipeline.DropDuplicate] != 1 {
		t.Errorf("duplicates = %d, want 1", c.dropped[pipeline.DropDuplicate])
	}
	if a, _ := msgs[0].counts(); a != 1 {
		t.Error("duplicate not acked")
	}
}

func TestSealFailureRedelivers(t *testing.T) {
	_, _, s, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, msgs := request(pipeline.LaneNew, []*pipeline.Finding{finding("a", 1000, 1, 1)}, false)
	if _, err := s.Seal(ctx, req); err == nil {
		t.Fatal("seal with a cancelled context succeeded")
	}
	if a, n := msgs[0].counts(); a != 0 || n != 1 {
		t.Errorf("acks %d naks %d, want the message nak'ed", a, n)
	}
}

func TestNewLaneMergesVersionsAndSealsOnDelay(t *testing.T) {
	_, _, s, c := setup(t)
	lane := NewNewLane(NewLaneConfig{Delay: 100 * time.Millisecond, MaxFindings: 100, MaxBytes: 1 << 20}, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var mu sync.Mutex
	var sealed []*pipeline.Batch
	lane.OnSealed = func(b *pipeline.Batch, _ []*pipeline.Finding) { mu.Lock(); sealed = append(sealed, b); mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lane.Run(ctx, context.Background()); close(done) }()

	m1, m2, m3 := newFakeMsg(), newFakeMsg(), newFakeMsg()
	lane.Add(finding("a", 1000, 1, 1), dest, NewHold(m1, 1, false, nil), 0)
	lane.Add(finding("a", 3000, 2, 2), dest, NewHold(m2, 1, false, nil), 0) // later: replaces
	lane.Add(finding("a", 2000, 5, 3), dest, NewHold(m3, 1, false, nil), 0) // older than held: merged away
	for _, m := range []*fakeMsg{m1, m2, m3} {
		select {
		case <-m.ackCh:
		case <-time.After(10 * time.Second):
			t.Fatal("message not resolved within 10s")
		}
		if a, _ := m.counts(); a != 1 {
			t.Error("message not acked")
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(sealed) != 1 || len(sealed[0].Refs) != 1 || sealed[0].Refs[0].Seq != 2 {
		t.Fatalf("sealed = %+v, want one batch holding only seq 2 (the latest version)", sealed)
	}
	// Received = exported + dropped: the replaced and the older version count.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped[pipeline.DropSuperseded] != 1 || c.dropped[pipeline.DropStale] != 1 {
		t.Errorf("dropped = %v, want superseded 1 and stale 1", c.dropped)
	}
}

func TestNewLaneSealsAtSizeBound(t *testing.T) {
	_, _, s, _ := setup(t)
	lane := NewNewLane(NewLaneConfig{Delay: time.Hour, MaxFindings: 3, MaxBytes: 1 << 20}, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lane.Run(ctx, context.Background()); close(done) }()
	defer func() { cancel(); <-done }()
	var msgs []*fakeMsg
	for i, id := range []string{"a", "b", "c"} {
		m := newFakeMsg()
		msgs = append(msgs, m)
		lane.Add(finding(id, 1000, 1, uint64(i+1)), dest, NewHold(m, 1, false, nil), 0)
	}
	for _, m := range msgs {
		select {
		case <-m.ackCh:
		case <-time.After(10 * time.Second):
			t.Fatal("a full batch was not sealed before its delay")
		}
	}
}

// The lane bounds the memory it holds: past MaxHeldBytes it seals the
// largest open batch early instead of waiting for newFindingDelay.
func TestNewLaneBoundsHeldMemory(t *testing.T) {
	_, _, s, _ := setup(t)
	lane := NewNewLane(NewLaneConfig{Delay: time.Hour, MaxFindings: 1000, MaxBytes: 1 << 20, MaxHeldBytes: 2000}, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lane.Run(ctx, context.Background()); close(done) }()
	dests := []*pipeline.Destination{{ID: "d1"}, {ID: "d2"}, {ID: "d3"}}
	var msgs []*fakeMsg
	peak := 0
	for i := 0; i < 30; i++ {
		m := newFakeMsg()
		msgs = append(msgs, m)
		lane.Add(finding(string(rune('a'+i)), 1000, 1, uint64(i+1)), dests[i%3], NewHold(m, 1, false, nil), 300)
		peak = max(peak, lane.Held())
	}
	if peak > 2000+400 {
		t.Errorf("lane held %d bytes, bound 2000 (plus one finding)", peak)
	}
	// What exceeded the bound was sealed without waiting for the hour.
	waitFor(t, func() bool { return lane.Held() <= 2000 })
	acked := 0
	for _, m := range msgs {
		if a, _ := m.counts(); a == 1 {
			acked++
		}
	}
	if acked < 20 {
		t.Errorf("%d of 30 findings sealed early, want at least 20 (all but what fits in 2000 bytes)", acked)
	}
	cancel()
	<-done
	for _, m := range msgs {
		if a, _ := m.counts(); a != 1 {
			t.Fatal("a finding was not sealed at shutdown")
		}
	}
	waitFor(t, func() bool { return lane.Held() == 0 })
}
