package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
)

// Errors of the status operations.
var (
	// ErrStatusExists is returned by Statuses.Create for a destination
	// that already has a (not deleted) status.
	ErrStatusExists = errors.New("destination status exists")
	// ErrStatusContention is returned when compare-and-set kept losing to
	// concurrent writers.
	ErrStatusContention = errors.New("destination status changed concurrently too often")
)

// Notification is the JSON message sent on every status change, on
// gdexport.notifications.<destinationId> and to the webhook.
type Notification struct {
	// Version of this format: "1".
	Version string `json:"version"`
	// Type is always "gdexport.destination.status".
	Type string `json:"type"`
	// ID is unique per change: <destinationId>:<status revision>.
	ID string `json:"id"`
	// Time is when the status changed (RFC 3339, UTC, milliseconds).
	Time            string `json:"time"`
	DestinationID   string `json:"destinationId"`
	Account         string `json:"account,omitempty"`
	Region          string `json:"region,omitempty"`
	DestinationType string `json:"destinationType,omitempty"`
	DestinationArn  string `json:"destinationArn,omitempty"`
	Root            string `json:"root,omitempty"`
	PreviousStatus  string `json:"previousStatus"`
	Status          string `json:"status"`
	// PublishingFailureStartTimestamp (epoch ms) is set while the
	// destination is UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY or STOPPED.
	PublishingFailureStartTimestamp int64  `json:"publishingFailureStartTimestamp,omitempty"`
	Reason                          string `json:"reason,omitempty"`
	LastError                       string `json:"lastError,omitempty"`
	LastErrorKind                   string `json:"lastErrorKind,omitempty"`
}

// Notifier sends status notifications. Implementations must be safe for
// concurrent use.
type Notifier interface {
	Notify(ctx context.Context, n *Notification) error
}

// NATSNotifier publishes notifications on gdexport.notifications.<id>
// (stream EVENTS), deduplicated by Notification.ID.
type NATSNotifier struct{ JS jetstream.JetStream }

// Notify publishes n and waits for the stream's ack (at most 10 s).
func (n NATSNotifier) Notify(ctx context.Context, no *Notification) error {
	b, err := json.Marshal(no)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m := &nats.Msg{Subject: natsx.NotificationSubject(no.DestinationID), Data: b, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, "status:"+no.ID)
	if _, err := n.JS.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish notification %s: %w", no.ID, err)
	}
	return nil
}

// Statuses keeps the publishing status of every destination in the status
// bucket. Record changes a status with compare-and-set and sends exactly
// one notification per status change: the writer whose change wins sends
// it. Run keeps a snapshot for Current, All and Changed. Safe for
// concurrent use.
type Statuses struct {
	kv       jetstream.KeyValue
	policy   HealthPolicy
	clock    func() time.Time
	notifier Notifier
	hook     func(Status)
	log      *slog.Logger

	mu        sync.RWMutex
	snap      map[string]Status
	changed   chan struct{}
	ready     chan struct{}
	readyOnce sync.Once
}

// StatusOption configures Statuses.
type StatusOption func(*Statuses)

// WithHealthPolicy sets the failure threshold and disableAfter (default
// DefaultHealthPolicy).
func WithHealthPolicy(p HealthPolicy) StatusOption { return func(s *Statuses) { s.policy = p } }

// WithStatusClock injects the clock (default time.Now).
func WithStatusClock(clock func() time.Time) StatusOption {
	return func(s *Statuses) { s.clock = clock }
}

// WithNotifier sends a notification for every status change this
// Statuses makes (none by default).
func WithNotifier(n Notifier) StatusOption { return func(s *Statuses) { s.notifier = n } }

// WithStatusHook calls fn with every status Run sees (a deleted
// destination's has Deleted set), for metrics. fn must not block.
func WithStatusHook(fn func(Status)) StatusOption { return func(s *Statuses) { s.hook = fn } }

// NewStatuses returns the statuses kept in kv (natsx.BucketStatus); log
// may be nil (nothing is logged).
func NewStatuses(kv jetstream.KeyValue, log *slog.Logger, opts ...StatusOption) *Statuses {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Statuses{kv: kv, policy: DefaultHealthPolicy, clock: time.Now, log: log,
		snap: map[string]Status{}, changed: make(chan struct{}), ready: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Policy returns the health policy.
func (s *Statuses) Policy() HealthPolicy { return s.policy }

// Run keeps the snapshot current until ctx ends. It returns an error only
// when the watch cannot start or ends.
func (s *Statuses) Run(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.kv.Bucket(), err)
	}
	defer w.Stop()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case e, ok = <-w.Updates():
		}
		if !ok {
			return fmt.Errorf("watch %s ended", s.kv.Bucket())
		}
		if e == nil {
			s.readyOnce.Do(func() { close(s.ready) })
			s.broadcast()
			continue
		}
		var st Status
		if e.Operation() == jetstream.KeyValuePut {
			if err := json.Unmarshal(e.Value(), &st); err != nil || st.DestinationID != e.Key() {
				s.log.Warn("ignoring unreadable destination status", slog.String("key", e.Key()), slog.Any("error", err))
				continue
			}
		} else {
			st = Status{DestinationID: e.Key(), Deleted: true}
		}
		s.mu.Lock()
		if st.Deleted && e.Operation() != jetstream.KeyValuePut {
			delete(s.snap, e.Key())
		} else {
			s.snap[e.Key()] = st
		}
		s.mu.Unlock()
		if s.hook != nil {
			s.hook(st)
		}
		s.broadcast()
	}
}

func (s *Statuses) broadcast() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Ready is closed once Run has loaded every status.
func (s *Statuses) Ready() <-chan struct{} { return s.ready }

// Changed returns a channel closed at the next change Run sees.
func (s *Statuses) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Current returns the destination's status as the snapshot holds it;
// found is false when it has none (a destination without a status record,
// such as an instance of the default destination, is PUBLISHING).
func (s *Statuses) Current(id string) (st Status, found bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, found = s.snap[id]
	return st, found
}

// All returns every status of the snapshot, by destination id.
func (s *Statuses) All() []Status {
	s.mu.RLock()
	out := make([]Status, 0, len(s.snap))
	for _, st := range s.snap {
		out = append(out, st)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].DestinationID < out[j].DestinationID })
	return out
}

// Get reads a destination's status from the bucket, with its revision;
// found is false when there is none.
func (s *Statuses) Get(ctx context.Context, id string) (st Status, rev uint64, found bool, err error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Status{}, 0, false, nil
	}
	if err != nil {
		return Status{}, 0, false, fmt.Errorf("read status of destination %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return Status{}, 0, false, fmt.Errorf("read status of destination %s: %w", id, err)
	}
	return st, e.Revision(), true, nil
}

// implicit is the status of a destination without a record: PUBLISHING.
func implicit(dest *pipeline.Destination) Status {
	return Status{DestinationID: dest.ID, Account: dest.Account, Region: dest.Region, Status: pipeline.StatusPublishing}
}

// casAttempts bounds the compare-and-set retries of one change.
const casAttempts = 20

// isConflict reports a lost compare-and-set.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Record applies ev to dest's status (HealthPolicy.Next) with
// compare-and-set and returns the status after it. When the status
// changes, the writer that wins sends the one notification. A successful
// write of a healthy destination costs no KV access (the snapshot shows
// there is nothing to change) but once a minute, to record LastExport; a
// destination without a record (an instance of the default destination)
// gets one at its first export, so that `gdexport status` lists it.
func (s *Statuses) Record(ctx context.Context, dest *pipeline.Destination, ev StatusEvent) (Status, error) {
	if ev.Kind == EventWritten && s.loaded() {
		if st, found := s.Current(dest.ID); found {
			if next, write := s.policy.Next(st, ev, s.clock()); !write {
				return next, nil
			}
		}
	}
	for range casAttempts {
		cur, rev, found, err := s.Get(ctx, dest.ID)
		if err != nil {
			return cur, err
		}
		if !found {
			if ev.Kind == EventTick {
				return implicit(dest), nil
			}
			cur = implicit(dest)
		}
		if cur.Account == "" {
			cur.Account, cur.Region = dest.Account, dest.Region
		}
		now := s.clock()
		next, write := s.policy.Next(cur, ev, now)
		if !write {
			return cur, nil
		}
		nrev, err := s.put(ctx, dest.ID, next, rev, found)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return cur, err
		}
		if next.Status != cur.Status {
			s.log.Info("destination status changed", slog.String("destination", dest.ID),
				slog.String("from", cur.Status), slog.String("to", next.Status), slog.String("reason", next.Reason),
				slog.String("lastError", next.LastError))
			s.notify(ctx, dest, cur.Status, next, nrev, now)
		}
		return next, nil
	}
	return Status{}, fmt.Errorf("destination %s: %w", dest.ID, ErrStatusContention)
}

func (s *Statuses) loaded() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

func (s *Statuses) put(ctx context.Context, id string, st Status, rev uint64, exists bool) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if exists {
		return s.kv.Update(ctx, id, b, rev)
	}
	return s.kv.Create(ctx, id, b)
}

func (s *Statuses) notify(ctx context.Context, dest *pipeline.Destination, prev string, st Status, rev uint64, now time.Time) {
	if s.notifier == nil {
		return
	}
	n := &Notification{Version: "1", Type: "gdexport.destination.status", ID: dest.ID + ":" + strconv.FormatUint(rev, 10),
		Time: now.UTC().Format("2006-01-02T15:04:05.000Z07:00"), DestinationID: dest.ID, Account: dest.Account, Region: dest.Region,
		DestinationType: string(dest.Type), DestinationArn: dest.Arn, PreviousStatus: prev, Status: st.Status,
		PublishingFailureStartTimestamp: st.PublishingFailureStartTimestamp, Reason: st.Reason}
	if dest.Type == pipeline.DestinationLocal {
		n.Root = dest.Root
	}
	if st.Status == pipeline.StatusUnableToPublish || st.Status == pipeline.StatusStopped {
		n.LastError, n.LastErrorKind = st.LastError, st.LastErrorKind
	}
	// The change is already durable: a notification that cannot be sent
	// is logged, never allowed to hold the export path.
	if err := s.notifier.Notify(context.WithoutCancel(ctx), n); err != nil {
		s.log.Warn("status notification not sent", slog.String("destination", dest.ID), slog.String("status", st.Status), slog.Any("error", err))
	}
}

// Create gives a new destination its first status, PENDING_VERIFICATION
// for the record whose PropertiesHash is properties, without a
// notification (nothing changed: it begins). A deleted destination's
// tombstone is replaced; any other existing status is returned with
// ErrStatusExists.
func (s *Statuses) Create(ctx context.Context, dest *pipeline.Destination, properties string) (Status, error) {
	now := s.clock().UnixMilli()
	st := Status{DestinationID: dest.ID, Account: dest.Account, Region: dest.Region, Status: pipeline.StatusPendingVerification,
		Since: now, Reason: "created", Generation: 1, Properties: properties}
	for range casAttempts {
		cur, rev, found, err := s.Get(ctx, dest.ID)
		if err != nil {
			return cur, err
		}
		// A record a first export made (generation 0: an instance of the
		// default destination, or a destination whose record was lost) is
		// not a creation.
		if found && !cur.Deleted && cur.Generation > 0 {
			return cur, fmt.Errorf("destination %s: %w (%s)", dest.ID, ErrStatusExists, cur.Status)
		}
		if found {
			st.Generation = cur.Generation + 1
		}
		_, err = s.put(ctx, dest.ID, st, rev, found)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("write status of destination %s: %w", dest.ID, err)
		}
		return st, nil
	}
	return Status{}, fmt.Errorf("destination %s: %w", dest.ID, ErrStatusContention)
}

// Restart makes the destination PENDING_VERIFICATION again (a new
// generation) for the record whose PropertiesHash is properties; reason is
// "updated" or "restarted". The change is notified when the status was
// another.
func (s *Statuses) Restart(ctx context.Context, dest *pipeline.Destination, reason, properties string) (Status, error) {
	return s.Record(ctx, dest, StatusEvent{Kind: EventRestart, Reason: reason, Properties: properties})
}

// MarkDeleted replaces the destination's status with a tombstone, so that
// workers drop its remaining batches instead of waiting for it.
func (s *Statuses) MarkDeleted(ctx context.Context, dest *pipeline.Destination) error {
	st := Status{DestinationID: dest.ID, Account: dest.Account, Region: dest.Region, Deleted: true, Since: s.clock().UnixMilli(), Reason: "deleted"}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, dest.ID, b); err != nil {
		return fmt.Errorf("write status of destination %s: %w", dest.ID, err)
	}
	return nil
}

// ClaimVerification takes the lease on verifying the destination for ttl,
// for the worker named by: only when it is PENDING_VERIFICATION or
// UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY and no other worker holds an
// unexpired lease. It returns the status claimed (whose Generation the
// verification reports) and whether the lease is by's.
func (s *Statuses) ClaimVerification(ctx context.Context, id, by string, ttl time.Duration) (Status, bool, error) {
	for range casAttempts {
		cur, rev, found, err := s.Get(ctx, id)
		if err != nil || !found || cur.Deleted {
			return cur, false, err
		}
		if cur.Status != pipeline.StatusPendingVerification && cur.Status != pipeline.StatusUnableToPublish {
			return cur, false, nil
		}
		now := s.clock()
		if cur.VerifyingUntil > now.UnixMilli() && cur.VerifyingBy != by {
			return cur, false, nil
		}
		next := cur
		next.VerifyingBy, next.VerifyingUntil = by, now.Add(ttl).UnixMilli()
		_, err = s.put(ctx, id, next, rev, true)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return cur, false, err
		}
		return next, true, nil
	}
	return Status{}, false, fmt.Errorf("destination %s: %w", id, ErrStatusContention)
}
