package assemble

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/export"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/pipeline/telemetry"
	"github.com/gdexport/gdexport/sinks/localdir"
	"github.com/gdexport/gdexport/sinks/s3"
	"github.com/gdexport/gdexport/sinks/webhook"
	"github.com/gdexport/gdexport/stages/encrypt"
	"github.com/gdexport/gdexport/stages/encrypt/kms"
)

// Verification timing.
const (
	// verifyTimeout bounds one verification; the lease lasts longer so
	// that no other worker starts while it may still run.
	verifyTimeout = time.Minute
	verifyLease   = 2 * time.Minute
	// maxVerifying bounds the verifications a worker runs at once.
	maxVerifying = 4
	// reportTimeout bounds recording a write's outcome in the status.
	reportTimeout = 10 * time.Second
	// hashGrace is how long a worker waits to see the destination record
	// a verification is for.
	hashGrace = 30 * time.Second
)

// buildSinks makes the object sinks and key providers the exporter and
// verification share.
func (w *Worker) buildSinks() error {
	w.localKeys = encrypt.NewLocalKeys(filepath.Join(w.cfg.DataDir, "keys", "local-master.key"))
	var err error
	w.kmsKeys, err = kms.NewKeys(append([]kms.Option{kms.WithLogger(w.log)}, w.opts.KMS...)...)
	if err != nil {
		return err
	}
	w.s3Sink, err = s3.New(append([]s3.Option{s3.WithLogger(w.log), s3.WithKeyChecker(w.kmsKeys.CheckKey)}, w.opts.S3...)...)
	if err != nil {
		return err
	}
	w.localSink = localdir.New()
	w.stats.Metrics.RegisterCalls(telemetry.Calls{
		S3Export:  func() float64 { return float64(w.s3Sink.Stats().Requests) },
		S3Verify:  func() float64 { return float64(w.s3Sink.Stats().VerifyRequests) },
		S3Setup:   func() float64 { return float64(w.s3Sink.Stats().SetupRequests) },
		KMSExport: func() float64 { return float64(w.kmsKeys.Calls()) },
		KMSVerify: func() float64 { return float64(w.kmsKeys.VerifyCalls()) },
	})
	return nil
}

// keyProvider is the envelope key provider of a destination: its KMS key on
// S3, else the local master key file.
func (w *Worker) keyProvider(dest *pipeline.Destination) (encrypt.KeyProvider, error) {
	if dest.Type == pipeline.DestinationS3 && dest.KmsKeyArn != "" {
		return w.kmsKeys.ForDestination(dest)
	}
	return w.localKeys.ForDestination(dest)
}

// verify checks a destination before it publishes (DESIGN.md B12): for S3
// the sink's Verify (bucket, Region, key, write probe); for LOCAL a write
// probe under the root and, for envelope, the key file.
func (w *Worker) verify(ctx context.Context, dest *pipeline.Destination) error {
	switch dest.Type {
	case pipeline.DestinationS3:
		_, err := w.s3Sink.Verify(ctx, dest)
		return err
	case pipeline.DestinationLocal:
		if err := w.localSink.Verify(ctx, dest); err != nil {
			return err
		}
		if dest.Encryption == pipeline.EncryptionEnvelope {
			if _, err := w.localKeys.ForDestination(dest); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("destination %s: type %q: %w", dest.ID, dest.Type, pipeline.ErrAccess)
}

// health is the exporter's view of the destinations' statuses.
type health struct {
	st  *state.Statuses
	log *slog.Logger
}

var _ export.Health = health{}

// Gate maps a status to what the exporter may write: a destination
// without a status (an instance of the default destination) is open.
func (h health) Gate(destID string) export.Gate {
	s, ok := h.st.Current(destID)
	switch {
	case !ok:
		return export.GateOpen
	case s.Deleted:
		return export.GateGone
	case s.Status == pipeline.StatusPublishing && !s.Failing():
		return export.GateOpen
	case s.Status == pipeline.StatusPublishing, s.Status == pipeline.StatusUnableToPublish:
		return export.GateProbe
	default:
		return export.GateClosed
	}
}

func (h health) Report(ctx context.Context, dest *pipeline.Destination, started time.Time, err error) {
	ev := state.StatusEvent{Kind: state.EventWritten, Started: started}
	if err != nil {
		ev = state.StatusEvent{Kind: state.EventWriteFailed, Err: err, Started: started}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	if _, rerr := h.st.Record(rctx, dest, ev); rerr != nil {
		h.log.Warn("destination status not recorded", slog.String("destination", dest.ID), slog.Any("error", rerr))
	}
}

func (h health) Changed() <-chan struct{} { return h.st.Changed() }

// statusMetric keeps the destination_status gauge in step with the status
// bucket (every worker watches it).
func (w *Worker) statusMetric(s state.Status) {
	if s.Deleted {
		w.stats.Metrics.DestStatus.DeletePartialMatch(map[string]string{"destination": s.DestinationID})
		return
	}
	w.stats.Metrics.SetStatus(s.DestinationID, s.Account, s.Region, s.Status)
}

// superviseDestinations verifies destinations and applies the status
// machine's timers until ctx ends: every PENDING_VERIFICATION destination
// is verified by one worker (a lease in its status), with backoff
// (retryInitial doubling to retryMax) while verification fails
// transiently; an UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY destination
// with no parked batch to probe with is verified again on the same
// backoff, so that it recovers even when nothing is exported meanwhile;
// the failure threshold and disableAfter are applied as time passes.
func (w *Worker) superviseDestinations(ctx context.Context) {
	every := min(max(w.cfg.RetryInitial.D()/2, 100*time.Millisecond), 5*time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	type retry struct {
		generation int64
		status     string
		next       time.Time
		backoff    time.Duration
	}
	retries := map[string]*retry{}
	var mu sync.Mutex
	inflight := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	policy := w.statuses.Policy()
	for {
		changed := w.statuses.Changed()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-changed:
		}
		now := w.clock()
		for _, st := range w.statuses.All() {
			if st.Deleted {
				delete(retries, st.DestinationID)
				continue
			}
			dest, ok := w.store.Destination(st.DestinationID, st.Account, st.Region)
			if !ok {
				continue // not (yet) in this worker's snapshot
			}
			if _, write := policy.Next(st, state.StatusEvent{Kind: state.EventTick}, now); write {
				if _, err := w.statuses.Record(ctx, dest, state.StatusEvent{Kind: state.EventTick}); err != nil && ctx.Err() == nil {
					w.log.Warn("destination status not updated", slog.String("destination", dest.ID), slog.Any("error", err))
				}
				continue
			}
			switch st.Status {
			case pipeline.StatusPendingVerification:
				// The record to verify may not have reached this worker
				// yet; a mismatch that lasts (a worker of another version
				// hashing differently) does not block verification.
				if st.Properties != "" && st.Properties != state.PropertiesHash(dest) && now.Sub(time.UnixMilli(st.Since)) < hashGrace {
					continue
				}
			case pipeline.StatusUnableToPublish:
			default:
				delete(retries, st.DestinationID)
				continue
			}
			r := retries[st.DestinationID]
			if r == nil || r.generation != st.Generation || r.status != st.Status {
				r = &retry{generation: st.Generation, status: st.Status, backoff: w.cfg.RetryInitial.D()}
				if st.Status == pipeline.StatusUnableToPublish {
					// Parked batches probe first; verification follows.
					r.next = now.Add(r.backoff)
				}
				retries[st.DestinationID] = r
			}
			if now.Before(r.next) {
				continue
			}
			mu.Lock()
			busy := inflight[dest.ID] || len(inflight) >= maxVerifying
			mu.Unlock()
			if busy {
				continue
			}
			r.next = now.Add(r.backoff)
			r.backoff = min(2*r.backoff, w.cfg.RetryMax.D())
			if st.Status == pipeline.StatusUnableToPublish && !w.backlogEmpty(ctx, dest.ID) {
				continue // the parked batches' drainers probe it
			}
			claimed, ok, err := w.statuses.ClaimVerification(ctx, dest.ID, w.name, verifyLease)
			if err != nil || !ok {
				continue
			}
			mu.Lock()
			inflight[dest.ID] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(inflight, dest.ID)
					mu.Unlock()
				}()
				w.verifyAndRecord(ctx, dest, claimed)
			}()
		}
	}
}

// verifyAndRecord verifies dest for the claimed status's generation and
// records the outcome.
func (w *Worker) verifyAndRecord(ctx context.Context, dest *pipeline.Destination, claimed state.Status) {
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	err := w.verify(vctx, dest)
	cancel()
	if ctx.Err() != nil {
		return
	}
	ev := state.StatusEvent{Kind: state.EventVerified, Generation: claimed.Generation}
	if err != nil {
		ev = state.StatusEvent{Kind: state.EventVerifyFailed, Generation: claimed.Generation, Err: err}
		w.log.Warn("destination verification failed", slog.String("destination", dest.ID),
			slog.String("status", claimed.Status), slog.Bool("access", pipeline.IsAccess(err)), slog.Any("error", err))
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer rcancel()
	if _, err := w.statuses.Record(rctx, dest, ev); err != nil {
		w.log.Warn("destination status not recorded", slog.String("destination", dest.ID), slog.Any("error", err))
	}
}

// backlogEmpty reports whether the destination has no parked batch
// waiting (true when it never had any).
func (w *Worker) backlogEmpty(ctx context.Context, destID string) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := w.topo.Batches.Consumer(cctx, natsx.ParkedConsumer(destID))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	info, err := c.Info(cctx)
	return err == nil && info.NumPending+uint64(info.NumAckPending) == 0
}

// webhookAttempts bounds the deliveries of one notification to the
// webhook.
const webhookAttempts = 5

// runWebhook posts every status notification to url until ctx ends,
// through a durable consumer of its own (so the export path never waits
// for it), retrying each at most webhookAttempts times with backoff. It
// starts with the notifications sent after its consumer was first created.
func (w *Worker) runWebhook(ctx context.Context, url string) {
	post, err := webhook.New(url, nil)
	if err != nil {
		w.log.Error("notifications.webhook unusable", slog.Any("error", err))
		return
	}
	var cons jetstream.Consumer
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err = w.js.CreateOrUpdateConsumer(cctx, natsx.StreamEvents, jetstream.ConsumerConfig{
			Durable:       natsx.ConsumerWebhook,
			Description:   "status notifications posted to notifications.webhook",
			FilterSubject: natsx.SubjectNotifications,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       30 * time.Second,
			MaxDeliver:    -1,
			DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		cancel()
		if err == nil {
			break
		}
		w.log.Warn("webhook consumer not created; retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		pctx, cancel := context.WithTimeout(ctx, webhook.DefaultTimeout)
		err := post.Post(pctx, m.Data())
		cancel()
		if err == nil {
			_ = m.Ack()
			return
		}
		attempt := uint64(1)
		if meta, merr := m.Metadata(); merr == nil {
			attempt = meta.NumDelivered
		}
		if attempt >= webhookAttempts {
			w.log.Error("notification not delivered to the webhook; giving up", slog.String("subject", m.Subject()),
				slog.Uint64("attempts", attempt), slog.Any("error", err))
			_ = m.Term()
			return
		}
		w.log.Warn("notification not delivered to the webhook; will retry", slog.String("subject", m.Subject()),
			slog.Uint64("attempt", attempt), slog.Any("error", err))
		_ = m.NakWithDelay(time.Duration(1<<attempt) * time.Second)
	})
	if err != nil {
		w.log.Error("webhook consumer not started", slog.Any("error", err))
		return
	}
	<-ctx.Done()
	cc.Stop()
}

// workerSuffix tells apart workers of one process (tests run several).
func workerSuffix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
