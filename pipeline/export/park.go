package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
)

// Gate says what may be written to a destination now.
type Gate int

// The gates, from a destination's status.
const (
	// GateOpen: PUBLISHING without errors since the last success; write.
	GateOpen Gate = iota
	// GateProbe: failing (UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY, or
	// transient errors while PUBLISHING): one attempt per backoff period.
	GateProbe
	// GateClosed: PENDING_VERIFICATION or STOPPED; write nothing, the
	// batches wait.
	GateClosed
	// GateGone: the destination was deleted; its batches are dropped.
	GateGone
)

// Health is the destinations' publishing status as the exporter needs it.
// Implementations must be safe for concurrent use and Gate must not block.
type Health interface {
	// Gate returns the destination's gate.
	Gate(destID string) Gate
	// Report records how a write to dest that began at started went: nil
	// for success, else an error wrapping ErrSink (pipeline.IsAccess tells
	// access errors). A write that began before the destination's status
	// last changed does not change it again.
	Report(ctx context.Context, dest *pipeline.Destination, started time.Time, err error)
	// Changed returns a channel closed at the next change of any status.
	Changed() <-chan struct{}
}

// Defaults of the parked backlog.
const (
	defaultRetryInitial = 5 * time.Second
	defaultRetryMax     = 5 * time.Minute
	defaultSlowAfter    = 15 * time.Second
	defaultWriteTimeout = 2 * time.Minute
	// parkedScanEvery is how often a worker looks for parked backlogs that
	// another worker created.
	parkedScanEvery = 10 * time.Second
	// parkedFetch is how many parked batches a drainer takes at once: few,
	// since those waiting their turn are not kept alive.
	parkedFetch = 4
	// ensureEvery is how long a worker trusts that a parked backlog
	// consumer it made still exists.
	ensureEvery = 30 * time.Second
	// closedRecheck bounds how long a drainer of a closed destination
	// waits without a status change.
	closedRecheck = 30 * time.Second
)

func (x *Exporter) now() time.Time {
	if x.Clock != nil {
		return x.Clock()
	}
	return time.Now()
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ExportObject writes the object of one sealed batch record from the
// shared objects consumer, so that a destination that cannot take it never
// holds that consumer: a batch whose destination is not open (Gate), or
// whose writes are in flight for longer than SlowAfter, is parked without
// a write; a batch whose write fails is parked after the failure is
// reported to Health. Parked batches wait for their destination in its own
// consumer (RunParked). The error returned (to be retried by the caller)
// is a failure to read the batch or to park it, never the destination's.
// Without Health it is WriteObject.
func (x *Exporter) ExportObject(ctx context.Context, data []byte) error {
	b, dest, err := x.prepare(data)
	if err != nil || b == nil {
		return err
	}
	if x.Health == nil {
		return x.writeObject(ctx, b, dest)
	}
	if x.Health.Gate(dest.ID) != GateOpen || x.slow(dest.ID) {
		return x.park(ctx, b, dest, data)
	}
	started := x.now()
	err = x.writeTracked(ctx, b, dest)
	if err == nil {
		x.Health.Report(ctx, dest, started, nil)
		return nil
	}
	if !errors.Is(err, ErrSink) || errors.Is(ctx.Err(), context.Canceled) {
		// Not the destination's fault, or the worker is stopping (a
		// write cut short says nothing about the destination).
		return err
	}
	x.failed(ctx, dest, b, started, err)
	if perr := x.park(ctx, b, dest, data); perr != nil {
		return errors.Join(err, perr)
	}
	return nil
}

func (x *Exporter) failed(ctx context.Context, dest *pipeline.Destination, b *pipeline.Batch, started time.Time, err error) {
	x.Log.Warn("export write failed; the batch waits for its destination", slog.String("destination", dest.ID),
		slog.String("batch", b.ID), slog.Bool("access", pipeline.IsAccess(err)), slog.Any("error", err))
	if x.Observer != nil {
		x.Observer.ObjectFailed(dest, b, err)
	}
	x.Health.Report(ctx, dest, started, err)
}

// writeTracked is writeObject, recorded as in flight for slow.
func (x *Exporter) writeTracked(ctx context.Context, b *pipeline.Batch, dest *pipeline.Destination) error {
	x.flightsMu.Lock()
	if x.flights == nil {
		x.flights = map[string]map[uint64]time.Time{}
	}
	x.flightSeq++
	seq := x.flightSeq
	if x.flights[dest.ID] == nil {
		x.flights[dest.ID] = map[uint64]time.Time{}
	}
	x.flights[dest.ID][seq] = time.Now()
	x.flightsMu.Unlock()
	defer func() {
		x.flightsMu.Lock()
		delete(x.flights[dest.ID], seq)
		if len(x.flights[dest.ID]) == 0 {
			delete(x.flights, dest.ID)
		}
		x.flightsMu.Unlock()
	}()
	return x.writeObject(ctx, b, dest)
}

// slow reports whether a write to the destination has been in flight for
// longer than SlowAfter: a hung store must not take every handler of the
// shared consumer.
func (x *Exporter) slow(destID string) bool {
	limit := durationOr(x.SlowAfter, defaultSlowAfter)
	x.flightsMu.Lock()
	defer x.flightsMu.Unlock()
	for _, start := range x.flights[destID] {
		if time.Since(start) > limit {
			return true
		}
	}
	return false
}

func (x *Exporter) wake() chan string {
	x.parkedOnce.Do(func() { x.parkedNew = make(chan string, 64) })
	return x.parkedNew
}

// park stores the batch record under its destination's parked subject, at
// most once per batch (a subject per batch, created only when empty), after
// making sure the destination's parked consumer exists.
func (x *Exporter) park(ctx context.Context, b *pipeline.Batch, dest *pipeline.Destination, data []byte) error {
	// The consumer may have been deleted with its destination since: make
	// sure of it again now and then. A batch parked while it is missing is
	// not lost: a new consumer delivers every parked batch of the subject.
	if at, ok := x.ensured.Load(dest.ID); !ok || time.Since(at.(time.Time)) > ensureEvery {
		if _, err := natsx.EnsureParked(ctx, x.Batches, dest.ID); err != nil {
			return fmt.Errorf("park batch %s: %w", b.ID, err)
		}
		x.ensured.Store(dest.ID, time.Now())
	}
	_, err := x.JS.PublishMsg(ctx, &nats.Msg{Subject: natsx.ParkedSubject(dest.ID, b.ID), Data: data},
		jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil && !isWrongLastSeq(err) {
		return fmt.Errorf("park batch %s of destination %s: %w", b.ID, dest.ID, err)
	}
	if err == nil {
		x.Log.Debug("batch parked", slog.String("destination", dest.ID), slog.String("batch", b.ID))
		if x.Observer != nil {
			x.Observer.Parked(dest, b)
		}
	}
	select {
	case x.wake() <- dest.ID:
	default:
	}
	return nil
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// RunParked drains every destination's parked batches until ctx ends: one
// drainer per parked backlog consumer (found at start, every 10 s, and at
// once when this worker parks a batch). A drainer writes while its
// destination is open, probes with one batch per backoff period
// (RetryInitial doubling to RetryMax) while it fails, and fetches nothing
// while it is PENDING_VERIFICATION or STOPPED, so that waiting batches
// burn no deliveries. It blocks until every drainer has stopped.
func (x *Exporter) RunParked(ctx context.Context) {
	running := map[string]bool{}
	done := make(chan string)
	var wg sync.WaitGroup
	start := func(id string) {
		if running[id] {
			return
		}
		running[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.drain(ctx, id)
			select {
			case done <- id:
			case <-ctx.Done():
			}
		}()
	}
	scan := func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		names := x.Batches.ConsumerNames(sctx)
		for name := range names.Name() {
			if id, ok := natsx.ParkedDestination(name); ok {
				start(id)
			}
		}
		if err := names.Err(); err != nil && ctx.Err() == nil {
			x.Log.Warn("listing parked backlogs failed", slog.Any("error", err))
		}
	}
	scan()
	tick := time.NewTicker(parkedScanEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case id := <-x.wake():
			start(id)
		case id := <-done:
			delete(running, id)
		case <-tick.C:
			scan()
		}
	}
}

// drain is the drainer of one destination's parked batches.
func (x *Exporter) drain(ctx context.Context, destID string) {
	name := natsx.ParkedConsumer(destID)
	cons, err := x.Batches.Consumer(ctx, name)
	if err != nil {
		if ctx.Err() == nil {
			x.Log.Debug("parked backlog consumer unavailable", slog.String("consumer", name), slog.Any("error", err))
		}
		return
	}
	initial := durationOr(x.RetryInitial, defaultRetryInitial)
	maxDelay := max(durationOr(x.RetryMax, defaultRetryMax), initial)
	backoff := initial
	// A batch is parked right after a failure: the first probe waits.
	nextProbe := time.Now().Add(backoff)
	failures := 0
	lastGate := GateProbe
	for ctx.Err() == nil {
		changed := x.Health.Changed()
		gate := x.Health.Gate(destID)
		if gate == GateOpen && lastGate != GateOpen {
			// Recovered (perhaps through another worker): drain at once.
			backoff, failures = initial, 0
		}
		lastGate = gate
		n := parkedFetch
		switch gate {
		case GateGone, GateClosed:
			// A deleted destination's backlog is removed by the delete
			// itself; should the destination be created again, what is
			// left is written then.
			sleep(ctx, changed, closedRecheck)
			continue
		case GateProbe, GateOpen:
			// While failing, one attempt per backoff period; an open gate
			// that just failed here waits too, until the status says more.
			if gate == GateProbe || failures > 0 {
				if d := time.Until(nextProbe); d > 0 {
					sleep(ctx, changed, d)
					continue
				}
			}
			if gate == GateProbe {
				n = 1
			}
		}
		var batch jetstream.MessageBatch
		cancelFetch := func() {}
		if gate == GateOpen {
			var fctx context.Context
			fctx, cancelFetch = context.WithTimeout(ctx, 5*time.Second)
			batch, err = cons.Fetch(n, jetstream.FetchContext(fctx))
		} else {
			batch, err = cons.FetchNoWait(n)
		}
		if err != nil {
			cancelFetch()
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return
			}
			if ctx.Err() == nil {
				x.Log.Debug("fetching parked batches failed", slog.String("destination", destID), slog.Any("error", err))
			}
			sleep(ctx, nil, time.Second)
			continue
		}
		// Each batch is written as it arrives; after a failure the rest of
		// the fetch is given back for one backoff period.
		got := 0
		var failed error
		for m := range batch.Messages() {
			got++
			switch {
			case ctx.Err() != nil:
				_ = m.Nak()
				continue
			case failed != nil:
				_ = m.NakWithDelay(backoff)
				continue
			}
			if err := x.writeParked(ctx, m); err != nil {
				failed = err
				if ctx.Err() != nil {
					_ = m.Nak()
				} else {
					_ = m.NakWithDelay(backoff)
				}
				continue
			}
			_ = m.Ack()
			backoff, failures = initial, 0
		}
		cancelFetch()
		if err := batch.Error(); errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			return
		}
		switch {
		case ctx.Err() != nil:
			return
		case failed != nil:
			failures++
			if failures == 1 || failures%20 == 0 {
				x.Log.Info("parked batches wait for their destination", slog.String("destination", destID),
					slog.Duration("retryIn", backoff), slog.Int("failures", failures), slog.Any("error", failed))
			}
			nextProbe = time.Now().Add(backoff)
			backoff = min(2*backoff, maxDelay)
		case got == 0 && gate == GateProbe:
			// Nothing to probe with: the destination's verification is
			// retried instead (by whoever verifies).
			nextProbe = time.Now().Add(backoff)
		}
	}
}

// writeParked writes one parked batch, keeping the message alive while it
// works, and reports the outcome to Health. nil means the message is done
// (written, or nothing to write).
func (x *Exporter) writeParked(ctx context.Context, m jetstream.Msg) error {
	b, dest, err := x.prepare(m.Data())
	if err != nil || b == nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, durationOr(x.WriteTimeout, defaultWriteTimeout))
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(natsx.ParkedAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	started := x.now()
	err = x.writeTracked(wctx, b, dest)
	if err == nil {
		x.Health.Report(ctx, dest, started, nil)
		return nil
	}
	if errors.Is(err, ErrSink) && ctx.Err() == nil {
		x.failed(ctx, dest, b, started, err)
	}
	return err
}

// sleep waits for d, a close of changed, or the end of ctx.
func sleep(ctx context.Context, changed <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-changed:
	case <-t.C:
	}
}
