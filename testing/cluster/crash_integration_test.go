//go:build integration

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/export"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/stages/window"
	"github.com/gdexport/gdexport/testing/containers"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/generator"
)

// TestWorkerKilledMidBatch kills one of three workers with SIGKILL while
// findings stream in, so it dies holding open new-lane batches (unacked
// messages) and maybe sealed batches it was writing. The survivors take
// its messages over after the ack wait and finish: every finding exported,
// none in two different objects.
func TestWorkerKilledMidBatch(t *testing.T) {
	start := time.Now()
	e := setup(t, options{})
	e.startWorkers(3)
	p := newPlan(t, generator.Config{Seed: 21, Versions: 4000, MaxVersionsPerID: 1})
	published := e.publish(p.msgs, 200, 250*time.Millisecond)
	e2e.Eventually(t, time.Minute, "some findings exported before the kill", func() bool { return e.exported() > 400 })
	victim := e.receivingWorker(e.workers)
	redelivered := e.watchRedelivered()
	victim.Kill(t)
	exportedBefore := e.exported()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if exportedBefore >= p.expected() {
		t.Fatalf("everything (%d) was exported before the kill: the test proves nothing", exportedBefore)
	}
	e.waitSettled(p, exportTimeout)
	taken := redelivered()
	if taken == 0 {
		t.Errorf("no message of the killed worker was redelivered: it held no open batch, the test proves nothing")
	}
	r := e.check(p)
	r.note = fmt.Sprintf("killed %s with %d findings exported; %d messages taken over", victim.Name, exportedBefore, taken)
	report(t, t.Name(), start, r)
	e.checkWorkers()
}

// receivingWorker returns the worker of ws that received the most ingest
// messages over the last half second: it holds them in open new-lane
// batches (they wait newFindingDelay before their seal).
func (e *env) receivingWorker(ws []*containers.Worker) *containers.Worker {
	e.t.Helper()
	received := func() []float64 {
		out := make([]float64, len(ws))
		for i, w := range ws {
			v, err := w.Metric("gdexport_findings_received_total")
			if err != nil {
				e.t.Fatalf("%s metrics: %v", w.Name, err)
			}
			out[i] = v
		}
		return out
	}
	var best *containers.Worker
	e2e.Eventually(e.t, 30*time.Second, "a worker receiving findings", func() bool {
		before := received()
		time.Sleep(500 * time.Millisecond) // the interval measured
		after := received()
		most := 0.0
		for i := range ws {
			if d := after[i] - before[i]; d > most {
				best, most = ws[i], d
			}
		}
		return best != nil
	})
	return best
}

// TestWorkerKilledMidFlush runs three workers with 10-second update windows
// and findings with up to 8 versions, and kills with SIGKILL a worker that
// has claimed a window flush as soon as the flush has sealed its first
// batch, before it releases the claim: the flush is cut in the middle,
// part sealed, part not. Another worker takes the flush over when the
// lease runs out and finishes it: what was sealed stays sealed, nothing is
// sealed twice, every id's latest active version is exported exactly once.
func TestWorkerKilledMidFlush(t *testing.T) {
	start := time.Now()
	// Small objects (4 findings) and 10-second windows make a flush many
	// seals long, so that a kill lands inside even on a busy machine and
	// now that seals no longer wait for room in the export cache (with 20,
	// flushes ended before the kill in 5 attempts of 5).
	e := setup(t, options{windowOverride: 10 * time.Second, maxBatchFindings: 4})
	e.startWorkers(3)
	p := newPlan(t, generator.Config{Seed: 31, Versions: 6000, MaxVersionsPerID: 8})
	claims := e.watchClaims()
	sealed := e.watchSealed()
	published := e.publish(p.msgs, 200, 500*time.Millisecond)

	byName := map[string]*containers.Worker{}
	for _, w := range e.workers {
		byName[w.Name] = w
	}
	var killed *containers.Worker
	var claimKey string
	for attempt := 1; killed == nil; attempt++ {
		if attempt > 6 {
			t.Fatalf("no kill landed inside a window flush in %d attempts", attempt-1)
		}
		var c claimSeen
		select {
		case c = <-claims:
		case <-time.After(2 * time.Minute):
			t.Fatal("no window flush was claimed within 2 minutes")
		}
		w := byName[strings.TrimSuffix(c.worker, "/1")]
		if w == nil {
			attempt-- // a claim of a worker killed already
			continue
		}
		// Kill it once the flush has sealed a batch of its window.
		dest, window := claimWindow(c.key)
		firstSeal := time.After(10 * time.Second)
		sawSeal := false
	waitSeal:
		for {
			select {
			case b := <-sealed:
				if b.Destination == dest && b.Window == window && b.Lane == pipeline.LaneUpdate {
					sawSeal = true
					break waitSeal
				}
			case <-firstSeal:
				break waitSeal // sealed nothing in 10s: kill it anyway, and try again
			}
		}
		w.Kill(t)
		delete(byName, w.Name)
		// The flush was cut when its claim outlives its holder: a flush
		// releases its claim only when done.
		if held, err := e.claimHeldBy(c.key, c.worker); err != nil {
			t.Fatal(err)
		} else if held && sawSeal {
			killed, claimKey = w, c.key
			break
		}
		t.Logf("attempt %d: the kill of %s did not land between the first and the last seal of the flush of %s; again with a fresh worker", attempt, w.Name, c.key)
		nw := e.startWorker()
		byName[nw.Name] = nw
	}
	exportedBefore := e.exported()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitSettled(p, exportTimeout)
	// A survivor says it finished the dead worker's flush.
	tookOver := ""
	for _, w := range byName {
		if strings.Contains(w.Log(t), "took over a window flush whose claim ran out") {
			tookOver = w.Name
		}
	}
	if tookOver == "" {
		t.Errorf("no surviving worker logged taking over the flush %s", claimKey)
	}
	r := e.check(p)
	r.note = fmt.Sprintf("killed %s after the first seal of the flush of %s, %d exported; taken over by %s", killed.Name, shortKey(claimKey), exportedBefore, tookOver)
	report(t, t.Name(), start, r)
	e.checkWorkers()
}

// claimSeen is a window-flush claim as the test saw it created.
type claimSeen struct {
	key, worker string
}

// watchClaims reports every window-flush claim taken (created, or taken
// over by another worker; not its renewals) until the test ends.
func (e *env) watchClaims() <-chan claimSeen {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	kv, err := e.js.KeyValue(ctx, natsx.BucketFlushes)
	if err != nil {
		e.t.Fatalf("flushes bucket: %v", err)
	}
	watch, err := kv.Watch(ctx, "claim.>", jetstream.UpdatesOnly())
	if err != nil {
		e.t.Fatalf("watch claims: %v", err)
	}
	out := make(chan claimSeen, 64)
	go func() {
		defer watch.Stop()
		holder := map[string]string{}
		for {
			select {
			case <-ctx.Done():
				return
			case entry, ok := <-watch.Updates():
				if !ok {
					return
				}
				if entry == nil {
					continue
				}
				if entry.Operation() != jetstream.KeyValuePut {
					delete(holder, entry.Key()) // released
					continue
				}
				var c window.Claim
				if json.Unmarshal(entry.Value(), &c) != nil || holder[entry.Key()] == c.Worker {
					continue
				}
				holder[entry.Key()] = c.Worker
				select {
				case out <- claimSeen{key: entry.Key(), worker: c.Worker}:
				default: // the test reads only the first few
				}
			}
		}
	}()
	return out
}

// claimHeldBy reports whether the claim key still names worker.
func (e *env) claimHeldBy(key, worker string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, natsx.BucketFlushes)
	if err != nil {
		return false, err
	}
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read claim %s: %w", key, err)
	}
	var c window.Claim
	if err := json.Unmarshal(entry.Value(), &c); err != nil {
		return false, fmt.Errorf("claim %s: %w", key, err)
	}
	return c.Worker == worker, nil
}

// watchSealed reports every batch record sealed from now on (a plain NATS
// subscription sees what the BATCHES stream stores) until the test ends.
func (e *env) watchSealed() <-chan *pipeline.Batch {
	e.t.Helper()
	out := make(chan *pipeline.Batch, 1024)
	sub, err := e.nc.Subscribe(natsx.SubjectBatches, func(m *nats.Msg) {
		b, err := export.ParseBatch(m.Data)
		if err != nil || b.Abandoned {
			return
		}
		select {
		case out <- b:
		default: // the test reads only a few
		}
	})
	if err != nil {
		e.t.Fatalf("watch sealed batches: %v", err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return out
}

// claimWindow splits a claim key (claim.<destination>.<window start>).
func claimWindow(key string) (dest string, start int64) {
	rest := strings.TrimPrefix(key, "claim.")
	i := strings.LastIndexByte(rest, '.')
	start, _ = strconv.ParseInt(rest[i+1:], 10, 64)
	return rest[:i], start
}

// shortKey names a claim's window by its start, for the result line.
func shortKey(key string) string {
	_, start := claimWindow(key)
	return "window " + time.UnixMilli(start).UTC().Format("15:04:05")
}
