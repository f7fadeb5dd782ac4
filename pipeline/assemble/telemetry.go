package assemble

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/stages/window"
)

// backlogEvery is how often the backlog gauges are refreshed.
const backlogEvery = 5 * time.Second

// readiness reports whether the worker consumes findings: started,
// connected to NATS, its streams and buckets reachable.
func (w *Worker) readiness(ctx context.Context) error {
	select {
	case <-w.ready:
	default:
		return errors.New("starting")
	}
	if !w.nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", w.nc.Status())
	}
	if _, err := w.topo.Findings.Info(ctx); err != nil {
		return fmt.Errorf("stream %s: %w", natsx.StreamFindings, err)
	}
	if _, err := w.topo.Exported.Status(ctx); err != nil {
		return fmt.Errorf("bucket %s: %w", natsx.BucketExported, err)
	}
	return nil
}

// watchBacklog refreshes the backlog gauges until ctx ends: pending and
// unacknowledged messages per consumer with the age of the oldest, and the
// updates waiting per destination.
func (w *Worker) watchBacklog(ctx context.Context) {
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, backlogEvery)
		w.refreshBacklog(qctx)
		cancel()
	}
}

func (w *Worker) refreshBacklog(ctx context.Context) {
	m := w.stats.Metrics
	m.Held.Set(float64(w.newLane.Held()))
	consumers := []struct {
		stream jetstream.Stream
		name   string
	}{{w.topo.Findings, natsx.ConsumerIngest}}
	exportConsumers := append([]string(nil), w.exportConsumers...)
	// Each destination's parked backlog is a consumer of its own.
	names := w.topo.Batches.ConsumerNames(ctx)
	for name := range names.Name() {
		if _, ok := natsx.ParkedDestination(name); ok {
			exportConsumers = append(exportConsumers, name)
		}
	}
	for _, c := range exportConsumers {
		consumers = append(consumers, struct {
			stream jetstream.Stream
			name   string
		}{w.topo.Batches, c})
	}
	for _, c := range consumers {
		cons, err := c.stream.Consumer(ctx, c.name)
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		m.ConsumerPend.WithLabelValues(c.name).Set(float64(info.NumPending))
		m.ConsumerAck.WithLabelValues(c.name).Set(float64(info.NumAckPending))
		age := 0.0
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			var opts []jetstream.GetMsgOpt
			if _, parked := natsx.ParkedDestination(c.name); parked {
				// Its messages are a few among every batch's.
				opts = append(opts, jetstream.WithGetMsgSubject(info.Config.FilterSubject))
			}
			if oldest, err := c.stream.GetMsg(ctx, info.AckFloor.Stream+1, opts...); err == nil {
				age = time.Since(oldest.Time).Seconds()
			}
		}
		m.OldestPending.WithLabelValues(c.name).Set(age)
	}
	// Every pending update is one subject of the windows bucket (a flushed
	// window is purged), so the bucket's subject count is the total.
	if info, err := w.topo.WindowsStream.Info(ctx); err == nil {
		m.WindowPending.Set(float64(info.State.NumSubjects))
	}
	m.WindowsOpen.Set(float64(len(w.flusher.Pending())))
}

// windowSize counts the pending updates of a window: the subjects of its
// filter, as a last-per-subject consumer sees them.
// It creates a consumer to ask and removes it at once: call it on demand
// (status), not on a timer.
func (w *Worker) windowSize(ctx context.Context, mk window.Marker) (int, error) {
	cons, err := w.topo.WindowsStream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     window.WindowFilter(mk.Destination, mk.Start),
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 10 * time.Second,
		MemoryStorage:     true,
	})
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.topo.WindowsStream.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name) }()
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int(info.NumPending), nil
}
