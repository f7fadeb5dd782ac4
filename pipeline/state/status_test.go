package state_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/natstest"
)

var (
	errDenied  = fmt.Errorf("s3 put: %w: AccessDenied", pipeline.ErrAccess)
	errTimeout = errors.New("s3 put: i/o timeout")
)

// TestHealthPolicyNext drives the pure status machine with an injected
// clock through every rule of DESIGN.md §2 "Errors".
func TestHealthPolicyNext(t *testing.T) {
	p := state.HealthPolicy{FailureThreshold: 5 * time.Minute, DisableAfter: 24 * time.Hour}
	t0 := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := func(d time.Duration) int64 { return at(d).UnixMilli() }
	publishing := state.Status{DestinationID: "d", Status: pipeline.StatusPublishing, Generation: 1, LastExport: ms(0)}
	failing := publishing
	failing.FailingSince = ms(0)
	unable := state.Status{DestinationID: "d", Status: pipeline.StatusUnableToPublish, Generation: 1, Since: ms(0), PublishingFailureStartTimestamp: ms(0), LastErrorKind: state.ErrorKindAccess}
	pending := state.Status{DestinationID: "d", Status: pipeline.StatusPendingVerification, Generation: 2}
	stopped := unable
	stopped.Status = pipeline.StatusStopped

	tests := []struct {
		name      string
		cur       state.Status
		ev        state.StatusEvent
		now       time.Duration
		write     bool
		status    string
		failStart int64
		check     func(t *testing.T, s state.Status)
	}{
		// An access error needs the destination fixed: UNABLE at once.
		{"access error", publishing, state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied}, time.Second, true,
			pipeline.StatusUnableToPublish, ms(time.Second), func(t *testing.T, s state.Status) {
				if s.LastErrorKind != state.ErrorKindAccess || s.LastError == "" || s.FailingSince != 0 {
					t.Errorf("error fields %+v", s)
				}
			}},
		// A first transient error is recorded and the status stays.
		{"first transient error", publishing, state.StatusEvent{Kind: state.EventWriteFailed, Err: errTimeout}, time.Second, true,
			pipeline.StatusPublishing, 0, func(t *testing.T, s state.Status) {
				if s.FailingSince != ms(time.Second) || s.LastErrorKind != state.ErrorKindTransient {
					t.Errorf("failing since %d kind %q", s.FailingSince, s.LastErrorKind)
				}
			}},
		// Transient errors shorter than the threshold cost no write.
		{"transient within threshold", failing, state.StatusEvent{Kind: state.EventWriteFailed, Err: errTimeout}, 4 * time.Minute, false,
			pipeline.StatusPublishing, 0, nil},
		// Longer than the threshold: UNABLE, the failure began with the first error.
		{"transient past threshold", failing, state.StatusEvent{Kind: state.EventWriteFailed, Err: errTimeout}, 5 * time.Minute, true,
			pipeline.StatusUnableToPublish, ms(0), nil},
		// A tick notices the threshold even when no write is attempted.
		{"tick past threshold", failing, state.StatusEvent{Kind: state.EventTick}, 6 * time.Minute, true,
			pipeline.StatusUnableToPublish, ms(0), nil},
		{"tick within threshold", failing, state.StatusEvent{Kind: state.EventTick}, time.Minute, false,
			pipeline.StatusPublishing, 0, nil},
		// An access error while failing transiently keeps the first error's time.
		{"access error while failing", failing, state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied}, time.Minute, true,
			pipeline.StatusUnableToPublish, ms(0), nil},
		// A success clears the transient failure.
		{"success while failing", failing, state.StatusEvent{Kind: state.EventWritten}, time.Minute, true,
			pipeline.StatusPublishing, 0, func(t *testing.T, s state.Status) {
				if s.FailingSince != 0 || s.LastExport != ms(time.Minute) {
					t.Errorf("after success %+v", s)
				}
			}},
		// A healthy success is written at most once a minute.
		{"healthy success", publishing, state.StatusEvent{Kind: state.EventWritten}, 30 * time.Second, false, pipeline.StatusPublishing, 0, nil},
		{"healthy success a minute later", publishing, state.StatusEvent{Kind: state.EventWritten}, time.Minute, true, pipeline.StatusPublishing, 0, nil},
		// Recovery: a success makes UNABLE PUBLISHING.
		{"recovery", unable, state.StatusEvent{Kind: state.EventWritten}, time.Hour, true, pipeline.StatusPublishing, 0, nil},
		// Retries that keep failing the same way cost no write.
		{"unable, same error", unable, state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied}, time.Hour, false, pipeline.StatusUnableToPublish, ms(0), nil},
		{"unable, error kind changes", unable, state.StatusEvent{Kind: state.EventWriteFailed, Err: errTimeout}, time.Hour, true, pipeline.StatusUnableToPublish, ms(0), nil},
		// disableAfter unresolved: STOPPED, with the failure start kept.
		{"tick before disableAfter", unable, state.StatusEvent{Kind: state.EventTick}, 23 * time.Hour, false, pipeline.StatusUnableToPublish, ms(0), nil},
		{"tick at disableAfter", unable, state.StatusEvent{Kind: state.EventTick}, 24 * time.Hour, true, pipeline.StatusStopped, ms(0), nil},
		// STOPPED stays stopped: only a restart moves it.
		{"stopped ignores success", stopped, state.StatusEvent{Kind: state.EventWritten}, 25 * time.Hour, false, pipeline.StatusStopped, ms(0), nil},
		{"stopped ignores verification", stopped, state.StatusEvent{Kind: state.EventVerified, Generation: 1}, 25 * time.Hour, false, pipeline.StatusStopped, ms(0), nil},
		{"restart", stopped, state.StatusEvent{Kind: state.EventRestart, Reason: "restarted", Properties: "p2"}, 25 * time.Hour, true,
			pipeline.StatusPendingVerification, 0, func(t *testing.T, s state.Status) {
				if s.Generation != 2 || s.Properties != "p2" || s.Reason != "restarted" {
					t.Errorf("after restart %+v", s)
				}
			}},
		// Verification decides PENDING_VERIFICATION; an earlier generation's does not.
		{"verified", pending, state.StatusEvent{Kind: state.EventVerified, Generation: 2}, time.Second, true, pipeline.StatusPublishing, 0,
			func(t *testing.T, s state.Status) {
				if s.VerifiedAt != ms(time.Second) {
					t.Errorf("verifiedAt %d", s.VerifiedAt)
				}
			}},
		{"stale verification", pending, state.StatusEvent{Kind: state.EventVerified, Generation: 1}, time.Second, false, pipeline.StatusPendingVerification, 0, nil},
		{"verification denied", pending, state.StatusEvent{Kind: state.EventVerifyFailed, Generation: 2, Err: errDenied}, time.Second, true,
			pipeline.StatusUnableToPublish, ms(time.Second), nil},
		{"verification times out", pending, state.StatusEvent{Kind: state.EventVerifyFailed, Generation: 2, Err: errTimeout}, time.Second, true,
			pipeline.StatusPendingVerification, 0, nil},
		// Writes racing a restart do not decide a pending destination.
		{"pending ignores a write error", pending, state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied}, time.Second, false,
			pipeline.StatusPendingVerification, 0, nil},
		// Writes that straddle a change do not flip it back: a success that
		// began before the failure, a failure that began before the recovery.
		{"stale success while unable", unable, state.StatusEvent{Kind: state.EventWritten, Started: at(-time.Second)}, time.Hour, false,
			pipeline.StatusUnableToPublish, ms(0), nil},
		{"fresh success while unable", unable, state.StatusEvent{Kind: state.EventWritten, Started: at(time.Minute)}, time.Hour, true,
			pipeline.StatusPublishing, 0, nil},
		{"stale success while failing", failing, state.StatusEvent{Kind: state.EventWritten, Started: at(-time.Second)}, time.Minute, false,
			pipeline.StatusPublishing, 0, nil},
		{"stale failure after recovery", state.Status{DestinationID: "d", Status: pipeline.StatusPublishing, Since: ms(time.Hour), Generation: 1},
			state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied, Started: at(time.Hour - time.Second)}, time.Hour + time.Second, false,
			pipeline.StatusPublishing, 0, nil},
		// A re-verification of an UNABLE destination recovers it.
		{"unable verified", unable, state.StatusEvent{Kind: state.EventVerified, Generation: 1}, time.Hour, true, pipeline.StatusPublishing, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, write := p.Next(tc.cur, tc.ev, at(tc.now))
			if write != tc.write || got.Status != tc.status || got.PublishingFailureStartTimestamp != tc.failStart {
				t.Fatalf("Next = %s (failure start %d), write %v; want %s (%d), write %v", got.Status, got.PublishingFailureStartTimestamp, write,
					tc.status, tc.failStart, tc.write)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// countingNotifier records notifications.
type countingNotifier struct {
	mu  sync.Mutex
	got []state.Notification
}

func (c *countingNotifier) Notify(_ context.Context, n *state.Notification) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, *n)
	return nil
}

func (c *countingNotifier) statuses() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.got {
		out = append(out, n.PreviousStatus+">"+n.Status)
	}
	return out
}

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestStatusesLifecycle runs the status machine through the bucket, as
// several workers do at once: concurrent workers change a status once and
// notify once.
func TestStatusesLifecycle(t *testing.T) {
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo, err := natsx.Ensure(ctx, js, natsx.TopologyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC).UnixNano())
	notes := &countingNotifier{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy := state.HealthPolicy{FailureThreshold: 5 * time.Minute, DisableAfter: 24 * time.Hour}
	// Eight workers, each with its own view of the bucket.
	workers := make([]*state.Statuses, 8)
	for i := range workers {
		workers[i] = state.NewStatuses(topo.Status, log, state.WithHealthPolicy(policy), state.WithStatusClock(clock.now), state.WithNotifier(notes))
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func(s *state.Statuses) { defer close(done); _ = s.Run(runCtx) }(workers[i])
		t.Cleanup(func() { cancel(); <-done })
		<-workers[i].Ready()
	}
	dest := &pipeline.Destination{ID: "0123456789abcdef0123456789abcdef", Account: admin, Region: east, Type: pipeline.DestinationS3, Arn: "arn:aws:s3:::b"}
	all := func(ev state.StatusEvent) {
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := w.Record(ctx, dest, ev); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	status := func() state.Status {
		st, _, _, err := workers[0].Get(ctx, dest.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	wantNotes := func(want ...string) {
		t.Helper()
		got := notes.statuses()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("notifications %q, want %q", got, want)
		}
	}

	// A destination without a record is PUBLISHING; its first export
	// records it (so that status lists it), with no notification.
	all(state.StatusEvent{Kind: state.EventWritten})
	if st, _, found, _ := workers[0].Get(ctx, dest.ID); !found || st.Status != pipeline.StatusPublishing || st.LastExport == 0 || st.Generation != 0 {
		t.Fatalf("after a first export: %+v found %v, want an implicit PUBLISHING record with LastExport", st, found)
	}
	wantNotes()
	// Created: PENDING_VERIFICATION, no notification; a second create is refused.
	if _, err := workers[0].Create(ctx, dest, state.PropertiesHash(dest)); err != nil {
		t.Fatal(err)
	}
	if _, err := workers[1].Create(ctx, dest, "x"); !errors.Is(err, state.ErrStatusExists) {
		t.Fatalf("second create: %v", err)
	}
	// One worker wins the verification lease.
	wins := 0
	for i, w := range workers {
		if _, ok, err := w.ClaimVerification(ctx, dest.ID, fmt.Sprint("w", i), time.Minute); err != nil {
			t.Fatal(err)
		} else if ok {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d workers won the verification lease", wins)
	}
	all(state.StatusEvent{Kind: state.EventVerified, Generation: 1})
	wantNotes("PENDING_VERIFICATION>PUBLISHING")

	// Access errors on every worker at once: UNABLE once, one notification.
	clock.advance(time.Minute)
	all(state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied})
	if st := status(); st.Status != pipeline.StatusUnableToPublish || st.PublishingFailureStartTimestamp != clock.now().UnixMilli() {
		t.Fatalf("after access errors %+v", st)
	}
	wantNotes("PENDING_VERIFICATION>PUBLISHING", "PUBLISHING>UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY")
	// Retries keep failing: nothing more.
	all(state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied})
	// Recovery: one notification.
	clock.advance(time.Minute)
	all(state.StatusEvent{Kind: state.EventWritten})
	wantNotes("PENDING_VERIFICATION>PUBLISHING", "PUBLISHING>UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY>PUBLISHING")

	// Transient errors shorter than the threshold: still PUBLISHING, silent.
	e2e.Eventually(t, testWait, "the snapshot to show PUBLISHING", func() bool {
		st, _ := workers[3].Current(dest.ID)
		return st.Status == pipeline.StatusPublishing
	})
	all(state.StatusEvent{Kind: state.EventWriteFailed, Err: errTimeout})
	start := clock.now().UnixMilli()
	clock.advance(4 * time.Minute)
	all(state.StatusEvent{Kind: state.EventWriteFailed, Err: errTimeout})
	all(state.StatusEvent{Kind: state.EventTick})
	if st := status(); st.Status != pipeline.StatusPublishing || st.FailingSince != start {
		t.Fatalf("within the threshold %+v", st)
	}
	// Longer: UNABLE, the failure dated from the first error.
	clock.advance(time.Minute)
	all(state.StatusEvent{Kind: state.EventTick})
	if st := status(); st.Status != pipeline.StatusUnableToPublish || st.PublishingFailureStartTimestamp != start {
		t.Fatalf("past the threshold %+v (start %d)", st, start)
	}
	// disableAfter unresolved: STOPPED, once.
	clock.advance(23 * time.Hour)
	all(state.StatusEvent{Kind: state.EventTick})
	if st := status(); st.Status != pipeline.StatusUnableToPublish {
		t.Fatalf("before disableAfter %+v", st)
	}
	clock.advance(time.Hour)
	all(state.StatusEvent{Kind: state.EventTick})
	all(state.StatusEvent{Kind: state.EventWritten}) // a straggler's success does not restart it
	if st := status(); st.Status != pipeline.StatusStopped || st.PublishingFailureStartTimestamp != start {
		t.Fatalf("after disableAfter %+v", st)
	}
	// Restart: PENDING_VERIFICATION, then PUBLISHING once verified; a
	// verification of the earlier generation does not count.
	st, err := workers[5].Restart(ctx, dest, "restarted", state.PropertiesHash(dest))
	if err != nil || st.Status != pipeline.StatusPendingVerification || st.Generation != 2 {
		t.Fatalf("restart: %+v, %v", st, err)
	}
	all(state.StatusEvent{Kind: state.EventVerified, Generation: 1})
	if st := status(); st.Status != pipeline.StatusPendingVerification {
		t.Fatalf("stale verification decided %+v", st)
	}
	all(state.StatusEvent{Kind: state.EventVerified, Generation: 2})
	wantNotes("PENDING_VERIFICATION>PUBLISHING", "PUBLISHING>UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY>PUBLISHING",
		"PUBLISHING>UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY>STOPPED",
		"STOPPED>PENDING_VERIFICATION", "PENDING_VERIFICATION>PUBLISHING")
	notes.mu.Lock()
	last := notes.got[len(notes.got)-1]
	notes.mu.Unlock()
	if last.DestinationID != dest.ID || last.Account != admin || last.DestinationArn != dest.Arn || last.Version != "1" || last.ID == "" {
		t.Fatalf("notification %+v", last)
	}

	// Deleted: a tombstone every snapshot shows; events no longer change it.
	if err := workers[0].MarkDeleted(ctx, dest); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, testWait, "the tombstone in every snapshot", func() bool {
		for _, w := range workers {
			if st, ok := w.Current(dest.ID); !ok || !st.Deleted {
				return false
			}
		}
		return true
	})
	all(state.StatusEvent{Kind: state.EventWriteFailed, Err: errDenied})
	if st := status(); !st.Deleted || st.Status != "" {
		t.Fatalf("tombstone changed: %+v", st)
	}
	// Created again, it begins anew.
	if st, err := workers[0].Create(ctx, dest, "p"); err != nil || st.Status != pipeline.StatusPendingVerification {
		t.Fatalf("recreate: %+v, %v", st, err)
	}
}
