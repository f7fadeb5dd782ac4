package window

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/schedule"
	"github.com/gdexport/gdexport/testing/natstest"
)

// fakeClock is a settable clock for window decisions.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

type fixedSchedule schedule.Windows

func (f fixedSchedule) Windows(*pipeline.Destination) schedule.Windows { return schedule.Windows(f) }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

type lanes struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	topo    *natsx.Topology
	clock   *fakeClock
	counter *countingCounter
	sealer  *Sealer
	flusher *Flusher
	reports []FlushReport
}

type oneDest struct{}

func (oneDest) Destination(id, _, _ string) (*pipeline.Destination, bool) {
	return dest, id == dest.ID
}

func setupLanes(t *testing.T, length time.Duration, maxFindings int) *lanes {
	t.Helper()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The lanes' tests run with atomic batches (strict durability, the
	// default); the seal tests in seal_test.go run without.
	topo, err := natsx.Ensure(context.Background(), js, natsx.TopologyConfig{Atomic: true})
	if err != nil {
		t.Fatal(err)
	}
	l := &lanes{nc: nc, js: js, topo: topo, clock: &fakeClock{now: ts("2026-12-03T12:30:00Z")}, counter: &countingCounter{}}
	l.sealer = NewSealer(nc, js, SealerOptions{Counter: l.counter, Clock: l.clock.Now, Schedules: fixedSchedule{Length: length}, Grace: 10 * time.Second, Atomic: true})
	l.flusher = NewFlusher(js, topo.Flushes, topo.WindowsStream, l.sealer, oneDest{}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		FlusherOptions{Worker: "test", MaxFindings: maxFindings, OnFlushed: func(r FlushReport) { l.reports = append(l.reports, r) }})
	return l
}

// version is a finding version that arrived at received.
func version(id string, updatedAt, count int64, seq uint64, received string) *pipeline.Finding {
	f := finding(id, updatedAt, count, seq)
	f.ReceivedAt = ts(received).UnixMilli()
	return f
}

// seal runs findings through the new lane's seal as one batch.
func (l *lanes) seal(t *testing.T, fs ...*pipeline.Finding) *pipeline.Batch {
	t.Helper()
	req, msgs := request(pipeline.LaneNew, fs, false)
	b, err := l.sealer.Seal(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if a, _ := m.counts(); a != 1 {
			t.Fatal("a message was not acked after its seal")
		}
	}
	return b
}

// pendingOf returns every pending update of d by "<window start>/<id>".
func pendingOf(t *testing.T, s *Sealer, d *pipeline.Destination) map[string]Pending {
	t.Helper()
	out := map[string]Pending{}
	ctx := context.Background()
	st, err := s.js.Stream(ctx, "KV_"+natsx.BucketWindows)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("$KV."+natsx.BucketWindows+"."+d.ID+".>"))
	if err != nil {
		t.Fatal(err)
	}
	for subj := range info.State.Subjects {
		m, err := st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatal(err)
		}
		var p Pending
		if err := json.Unmarshal(m.Data, &p); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(subj, ".")
		start, _ := strconv.ParseInt(parts[3], 10, 64)
		out[time.UnixMilli(start).UTC().Format(time.RFC3339)+"/"+p.ID] = p
	}
	return out
}

func (l *lanes) markers(t *testing.T) []Marker {
	t.Helper()
	ctx := context.Background()
	keys, err := l.topo.Flushes.ListKeys(ctx, jetstream.MetaOnly())
	if err != nil {
		t.Fatal(err)
	}
	var out []Marker
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, "window.") {
			continue
		}
		e, err := l.topo.Flushes.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var m Marker
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (l *lanes) flushAll(t *testing.T) {
	t.Helper()
	for _, m := range l.markers(t) {
		if err := l.flusher.claimAndFlush(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// A new id goes out in the new lane; its later versions are staged in the
// window of their arrival, keeping only the latest (updatedAt, then count).
func TestUpdatesAreStagedLatestVersionWins(t *testing.T) {
	l := setupLanes(t, 6*time.Hour, 100)
	if b := l.seal(t, version("a", 1000, 1, 1, "2026-12-03T12:00:05Z")); b == nil || b.Lane != pipeline.LaneNew {
		t.Fatalf("first version not sealed in the new lane: %+v", b)
	}
	l.seal(t, version("a", 2000, 1, 2, "2026-12-03T12:10:00Z"))
	l.seal(t, version("a", 3000, 1, 3, "2026-12-03T12:20:00Z"))
	l.seal(t, version("a", 3000, 4, 4, "2026-12-03T12:21:00Z")) // same time, higher count: newer
	l.seal(t, version("a", 2500, 9, 5, "2026-12-03T12:22:00Z")) // older than pending: stale
	l.seal(t, version("a", 3000, 4, 4, "2026-12-03T12:23:00Z")) // the pending version again: duplicate
	l.seal(t, version("a", 500, 1, 6, "2026-12-03T12:24:00Z"))  // older than exported: stale
	l.seal(t, version("b", 7000, 1, 7, "2026-12-03T12:25:00Z")) // another id: new lane
	got := pendingOf(t, l.sealer, dest)
	want := map[string]uint64{"2026-12-03T12:00:00Z/a": 4}
	if len(got) != len(want) {
		t.Fatalf("pending = %+v, want only a's latest version in the 12:00 window", got)
	}
	for k, seq := range want {
		if got[k].Seq != seq {
			t.Errorf("pending %s = seq %d, want %d", k, got[k].Seq, seq)
		}
	}
	if l.counter.dropped[pipeline.DropStale] != 2 || l.counter.dropped[pipeline.DropDuplicate] != 1 {
		t.Errorf("dropped = %v, want stale 2 duplicate 1", l.counter.dropped)
	}
	ms := l.markers(t)
	if len(ms) != 1 || ms[0].Start != ts("2026-12-03T12:00:00Z").UnixMilli() || ms[0].End != ts("2026-12-03T18:00:00Z").UnixMilli() {
		t.Errorf("markers = %+v, want one for the 12:00–18:00 window", ms)
	}
}

// An update arriving in a window is staged there, unless the window closed
// more than the grace before it is staged: then it goes to the open window.
func TestLateArrivalGoesToTheOpenWindow(t *testing.T) {
	l := setupLanes(t, 6*time.Hour, 100)
	l.seal(t, version("a", 1000, 1, 1, "2026-12-03T11:00:00Z"), version("b", 1000, 1, 2, "2026-12-03T11:00:00Z"))
	l.clock.Set(ts("2026-12-03T18:00:05Z")) // within the grace
	l.seal(t, version("a", 2000, 1, 3, "2026-12-03T17:59:59Z"))
	l.clock.Set(ts("2026-12-03T18:00:11Z")) // past it
	l.seal(t, version("b", 2000, 1, 4, "2026-12-03T17:59:59Z"))
	got := pendingOf(t, l.sealer, dest)
	if _, ok := got["2026-12-03T12:00:00Z/a"]; !ok {
		t.Errorf("update within the grace not in its arrival window: %v", got)
	}
	if _, ok := got["2026-12-03T18:00:00Z/b"]; !ok {
		t.Errorf("late update not in the open window: %v", got)
	}
}

// The seed's example: with six hours, an update after 12:00 is exported at
// 18:00 (plus the grace), not before; the flush seals one update batch
// with the latest version and removes the window's state.
func TestFlushExportsTheLatestVersionWhenTheWindowCloses(t *testing.T) {
	l := setupLanes(t, 6*time.Hour, 100)
	l.seal(t, version("a", 1000, 1, 1, "2026-12-03T11:00:00Z"), version("b", 1000, 1, 2, "2026-12-03T11:00:00Z"))
	l.clock.Set(ts("2026-12-03T12:30:00Z"))
	l.seal(t, version("a", 2000, 1, 3, "2026-12-03T12:00:01Z"), version("b", 3000, 1, 4, "2026-12-03T12:10:00Z"))
	l.seal(t, version("a", 2500, 1, 5, "2026-12-03T13:00:00Z"))

	l.clock.Set(ts("2026-12-03T17:59:59Z"))
	if due := l.flusher.due(); len(due) != 0 {
		t.Fatalf("windows due before 18:00: %+v", due)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.flusher.Run(ctx) // so that due() knows the markers
	waitFor(t, func() bool { return len(l.flusher.Pending()) == 1 })
	l.clock.Set(ts("2026-12-03T18:00:09Z"))
	if due := l.flusher.due(); len(due) != 0 {
		t.Fatalf("window due within the grace: %+v", due)
	}
	l.clock.Set(ts("2026-12-03T18:00:10Z"))
	if due := l.flusher.due(); len(due) != 1 {
		t.Fatalf("window not due at 18:00 plus grace: %+v", due)
	}
	cancel()

	l.flushAll(t)
	if len(l.reports) != 1 || len(l.reports[0].Batches) != 1 {
		t.Fatalf("reports = %+v, want one flush with one batch", l.reports)
	}
	b := l.reports[0].Batches[0]
	if b.Lane != pipeline.LaneUpdate || b.Window != ts("2026-12-03T12:00:00Z").UnixMilli() || b.Part != 1 {
		t.Errorf("batch lane %s window %d part %d", b.Lane, b.Window, b.Part)
	}
	seqs := map[uint64]bool{}
	for _, r := range b.Refs {
		seqs[r.Seq] = true
	}
	if len(seqs) != 2 || !seqs[5] || !seqs[4] {
		t.Errorf("batch refs %+v, want a's latest (seq 5) and b's (seq 4)", b.Refs)
	}
	if p := pendingOf(t, l.sealer, dest); len(p) != 0 {
		t.Errorf("pending after the flush: %v", p)
	}
	if ms := l.markers(t); len(ms) != 0 {
		t.Errorf("markers after the flush: %v", ms)
	}
	if x := readExported(t, l.js, "a"); x.UpdatedAt != 2500 || x.Batch != b.ID || x.Lane != string(pipeline.LaneUpdate) {
		t.Errorf("exported record of a = %+v", x)
	}
	// A version older than the one just exported, arriving later, is stale.
	before := l.counter.dropped[pipeline.DropStale]
	l.seal(t, version("a", 2000, 1, 6, "2026-12-03T18:30:00Z"))
	if l.counter.dropped[pipeline.DropStale] != before+1 {
		t.Error("an already-exported older version was not dropped as stale")
	}
}

// A window larger than the object bound is sealed in parts.
func TestFlushSplitsLargeWindows(t *testing.T) {
	l := setupLanes(t, time.Hour, 3)
	var first, second []*pipeline.Finding
	for i := 0; i < 7; i++ {
		id := string(rune('a' + i))
		first = append(first, version(id, 1000, 1, uint64(1+i), "2026-12-03T11:00:00Z"))
		second = append(second, version(id, 2000, 1, uint64(100+i), "2026-12-03T12:05:00Z"))
	}
	l.seal(t, first...)
	l.seal(t, second...)
	l.clock.Set(ts("2026-12-03T13:01:00Z"))
	l.flushAll(t)
	var sizes []int
	total := 0
	for _, b := range l.reports[0].Batches {
		sizes = append(sizes, len(b.Refs))
		total += len(b.Refs)
		if b.Part != len(sizes) {
			t.Errorf("batch %d has part %d", len(sizes), b.Part)
		}
	}
	if total != 7 || len(sizes) != 3 || sizes[0] != 3 || sizes[2] != 1 {
		t.Errorf("parts %v, want 3+3+1", sizes)
	}
}

// A flush interrupted after sealing some batches, or after claiming
// records for a batch it never sealed, is finished by the next flush:
// nothing sealed twice, nothing left out.
func TestInterruptedFlushIsFinishedOnce(t *testing.T) {
	l := setupLanes(t, time.Hour, 2)
	var first, second []*pipeline.Finding
	for i := 0; i < 5; i++ {
		id := string(rune('a' + i))
		first = append(first, version(id, 1000, 1, uint64(1+i), "2026-12-03T11:00:00Z"))
		second = append(second, version(id, 2000, 1, uint64(100+i), "2026-12-03T12:05:00Z"))
	}
	l.seal(t, first...)
	l.seal(t, second...)
	ctx := context.Background()
	// The crashed flusher sealed a batch of a and b, and claimed c's
	// record for a batch it never sealed.
	start := ts("2026-12-03T12:00:00Z").UnixMilli()
	sealedBefore, err := l.sealer.sealFlush(ctx, &sealRequest{dest: dest, lane: pipeline.LaneUpdate, window: start, part: 1,
		entries: []*entry{{f: second[0], recovering: true}, {f: second[1], recovering: true}}})
	if err != nil || sealedBefore == nil {
		t.Fatal(err)
	}
	if _, _, err := l.sealer.claim(ctx, dest, "00000000deadbeef", pipeline.LaneUpdate, []*entry{{f: second[2]}}); err != nil {
		t.Fatal(err)
	}
	l.clock.Set(ts("2026-12-03T13:01:00Z"))
	l.flushAll(t)
	resealed := map[string]int{}
	for _, b := range l.reports[0].Batches {
		for _, r := range b.Refs {
			resealed[r.ID]++
		}
	}
	if len(resealed) != 3 || resealed["c"] != 1 || resealed["d"] != 1 || resealed["e"] != 1 {
		t.Errorf("the second flush sealed %v, want exactly c, d and e once", resealed)
	}
}

// Only one worker flushes a window; a claim whose lease ran out is taken
// over.
func TestClaimIsExclusiveUntilItsLeaseRunsOut(t *testing.T) {
	l := setupLanes(t, time.Hour, 100)
	m := Marker{Destination: dest.ID, Account: dest.Account, Region: dest.Region, Start: 0, End: 1}
	ctx := context.Background()
	if _, err := l.flusher.claim(ctx, m); err != nil {
		t.Fatal(err)
	}
	other := NewFlusher(l.js, l.topo.Flushes, l.topo.WindowsStream, l.sealer, oneDest{}, slog.New(slog.NewTextHandler(io.Discard, nil)), FlusherOptions{Worker: "other"})
	if _, err := other.claim(ctx, m); err != errClaimed {
		t.Fatalf("second claim: err = %v, want errClaimed", err)
	}
	l.clock.Set(l.clock.Now().Add(61 * time.Second))
	if _, err := other.claim(ctx, m); err != nil {
		t.Fatalf("take-over of an expired claim: %v", err)
	}
	if _, err := l.flusher.claim(ctx, m); err != errClaimed {
		t.Fatalf("the first worker reclaimed a window taken over: %v", err)
	}
}

// An update staged while a flush runs is not lost: the marker's new
// revision makes the flush look again before it forgets the window.
func TestUpdateStagedDuringFlushIsFlushed(t *testing.T) {
	l := setupLanes(t, time.Hour, 100)
	l.seal(t, version("a", 1000, 1, 1, "2026-12-03T11:00:00Z"), version("b", 1000, 1, 2, "2026-12-03T11:00:00Z"))
	l.seal(t, version("a", 2000, 1, 3, "2026-12-03T12:05:00Z"))
	l.clock.Set(ts("2026-12-03T13:00:05Z")) // within the grace: b's update still goes to 12:00
	m := l.markers(t)[0]
	// Stage b's update between the flush's first read of the marker and
	// its attempt to forget the window, as a concurrent worker would.
	wrapped := &stagingResolver{l: l, t: t, f: version("b", 2000, 1, 4, "2026-12-03T12:59:00Z")}
	l.flusher.resolver = wrapped
	if err := l.flusher.Flush(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, b := range l.reports[0].Batches {
		for _, r := range b.Refs {
			got[r.ID] = true
		}
	}
	if !got["a"] || !got["b"] {
		t.Errorf("flushed %v, want a and b (staged during the flush)", got)
	}
	if p := pendingOf(t, l.sealer, dest); len(p) != 0 {
		t.Errorf("pending after the flush: %v", p)
	}
}

// stagingResolver stages one update the first time the flusher resolves
// the destination, which happens after it read the marker.
type stagingResolver struct {
	l    *lanes
	t    *testing.T
	f    *pipeline.Finding
	done bool
}

func (r *stagingResolver) Destination(id, a, rg string) (*pipeline.Destination, bool) {
	if !r.done {
		r.done = true
		r.l.seal(r.t, r.f)
	}
	return oneDest{}.Destination(id, a, rg)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A destination keyed by the finding owner's account never mixes accounts
// in an update object either.
func TestFlushKeepsOwnerAccountsApart(t *testing.T) {
	l := setupLanes(t, time.Hour, 100)
	owned := *dest
	owned.KeyAccount = pipeline.KeyAccountOwner
	l.flusher.resolver = ownedDest{&owned}
	mk := func(id, account string, updatedAt int64, seq uint64, received string) *pipeline.Finding {
		f := version(id, updatedAt, 1, seq, received)
		f.AccountID = account
		return f
	}
	seal := func(fs ...*pipeline.Finding) {
		req, _ := request(pipeline.LaneNew, fs, false)
		req.dest = &owned
		if _, err := l.sealer.Seal(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	seal(mk("a", "444455556666", 1000, 1, "2026-12-03T11:00:00Z"), mk("b", "555566667777", 1000, 2, "2026-12-03T11:00:00Z"))
	seal(mk("a", "444455556666", 2000, 3, "2026-12-03T12:05:00Z"), mk("b", "555566667777", 2000, 4, "2026-12-03T12:06:00Z"))
	l.clock.Set(ts("2026-12-03T13:01:00Z"))
	l.flushAll(t)
	got := map[string][]string{}
	for _, b := range l.reports[0].Batches {
		for _, r := range b.Refs {
			got[b.KeyAccount] = append(got[b.KeyAccount], r.ID)
		}
	}
	if len(got) != 2 || len(got["444455556666"]) != 1 || got["444455556666"][0] != "a" || len(got["555566667777"]) != 1 {
		t.Errorf("update batches by key account = %v, want a under 444455556666 and b under 555566667777", got)
	}
}

type ownedDest struct{ d *pipeline.Destination }

func (o ownedDest) Destination(id, _, _ string) (*pipeline.Destination, bool) {
	return o.d, id == o.d.ID
}
