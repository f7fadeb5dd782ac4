package natsx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream, subject, bucket and consumer names of the defaults table
// (DESIGN.md §3). They are part of gdexport's contract with its users.
const (
	StreamFindings   = "FINDINGS"
	StreamDeadLetter = "DEADLETTER"
	StreamEvents     = "EVENTS"
	StreamBatches    = "BATCHES"

	SubjectFindings      = "findings.>"
	SubjectDeadLetter    = "deadletter.findings"
	SubjectEvents        = "guardduty.events.>"
	SubjectNotifications = "gdexport.notifications.>"
	SubjectBatches       = "gdexport.batches.>"
	// SubjectParked holds the sealed batches of destinations that could not
	// take them (gdexport.parked.<destinationId>.<batchId>), on the BATCHES
	// stream: each destination's backlog waits there for its own consumer
	// (ParkedConsumer) while the shared consumers go on with the others.
	SubjectParked = "gdexport.parked.>"

	// HeaderReason carries the dead-letter reason.
	HeaderReason = "Gdexport-Reason"
	// HeaderSubject and HeaderSeq record where a dead-lettered message came from.
	HeaderSubject = "Gdexport-Subject"
	HeaderSeq     = "Gdexport-Seq"

	BucketDestinations = "gdexport_destinations"
	BucketDetectors    = "gdexport_detectors"
	BucketExported     = "gdexport_exported"
	BucketWindows      = "gdexport_windows"
	BucketFlushes      = "gdexport_flushes"
	BucketFilters      = "gdexport_filters"
	BucketMembers      = "gdexport_members"
	// BucketStatus holds each destination's publishing status under its id.
	BucketStatus = "gdexport_status"

	ConsumerIngest  = "ingest"
	ConsumerObjects = "objects"
	ConsumerEvents  = "events"
	// ConsumerEventBridge writes events to Amazon EventBridge, apart from
	// the NATS bus, so that each bus records its own progress.
	ConsumerEventBridge = "eventbridge"
	// ConsumerWebhook posts status notifications to the configured webhook.
	ConsumerWebhook = "webhook"
	// ParkedConsumerPrefix starts the name of every destination's parked
	// backlog consumer (ParkedConsumer).
	ParkedConsumerPrefix = "parked_"
)

// NotificationSubject is the subject of a destination's status
// notifications.
func NotificationSubject(destID string) string { return "gdexport.notifications." + destID }

// ParkedSubject is the subject a sealed batch of destID is parked under.
func ParkedSubject(destID, batchID string) string { return "gdexport.parked." + destID + "." + batchID }

// ParkedFilter matches every parked batch of destID.
func ParkedFilter(destID string) string { return "gdexport.parked." + destID + ".>" }

// ParkedConsumer names the durable consumer of destID's parked batches on
// the BATCHES stream, shared by every worker.
func ParkedConsumer(destID string) string { return ParkedConsumerPrefix + destID }

// ParkedDestination returns the destination id of a parked backlog
// consumer's name, and false for any other consumer.
func ParkedDestination(consumer string) (string, bool) {
	id, ok := strings.CutPrefix(consumer, ParkedConsumerPrefix)
	return id, ok && id != ""
}

// TopologyConfig sizes the streams and buckets.
type TopologyConfig struct {
	// Replicas is the replica count of every stream and bucket (1 on a
	// single node, 3 on a cluster).
	Replicas int
	// Retention is how long findings (and what refers to them) are kept:
	// GuardDuty's 90 days by default.
	Retention time.Duration
	// EventRetention is how long events stay on the EVENTS stream (7 days).
	EventRetention time.Duration
	// IngestAckWait is the ingest consumer's ack wait; it must exceed
	// newFindingDelay plus the time a seal takes.
	IngestAckWait time.Duration
	// IngestMaxAckPending bounds the findings held unacked across workers.
	IngestMaxAckPending int
	// Atomic allows atomic batch publishing on the streams written per
	// finding (EVENTS and the exported and windows buckets): with
	// sync_interval always, one disk sync per batch instead of one per
	// message. It needs nats-server 2.12 or later; once on, it is never
	// turned off by a worker that runs without it.
	Atomic bool
}

func (c *TopologyConfig) defaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Retention <= 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.EventRetention <= 0 {
		c.EventRetention = 7 * 24 * time.Hour
	}
	if c.IngestAckWait <= 0 {
		c.IngestAckWait = 60 * time.Second
	}
	if c.IngestMaxAckPending <= 0 {
		c.IngestMaxAckPending = 100_000
	}
}

// Topology is the set of JetStream resources a worker uses.
type Topology struct {
	Findings     jetstream.Stream
	Batches      jetstream.Stream
	Destinations jetstream.KeyValue
	Detectors    jetstream.KeyValue
	Exported     jetstream.KeyValue
	// Windows holds the pending updates of every open update window;
	// WindowsStream is its stream, which flushes read and purge.
	Windows       jetstream.KeyValue
	WindowsStream jetstream.Stream
	// Flushes holds the markers of windows with pending updates and the
	// claims on their flushes.
	Flushes jetstream.KeyValue
	Filters jetstream.KeyValue
	Members jetstream.KeyValue
	// Status holds the publishing status of each destination.
	Status jetstream.KeyValue
	Ingest jetstream.Consumer
	Config TopologyConfig
}

// ensureAttempt bounds one JetStream API call of Ensure. A call whose
// answer does not come in time is made again (each is idempotent) until
// Ensure's context ends: on a cluster that has just formed, routes are
// still being replaced and an answer may be lost, which would otherwise
// cost the caller's whole deadline.
var ensureAttempt = 5 * time.Second

// retry calls fn, each time with a context bounded by ensureAttempt, until
// it succeeds, fails for another reason than a missing answer, or ctx
// ends; it returns fn's last error.
func retry[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		v, err := fn(actx)
		cancel()
		lost := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
		if err == nil || !lost || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Ensure creates or updates every stream, bucket and durable consumer.
// It is idempotent: each worker calls it at start, and a second call with
// the same configuration changes nothing. Each is created first and
// updated only when it exists with another configuration: workers that
// start together on a new cluster then all create the same resources,
// which JetStream answers alike, whereas an update racing a creation
// (nats.go's CreateOrUpdate*) goes unanswered and stalls the cluster's
// API for tens of seconds. A call left without an answer is made again
// until ctx ends.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg TopologyConfig) (*Topology, error) {
	cfg.defaults()
	t := &Topology{Config: cfg}
	var err error
	streams := []jetstream.StreamConfig{
		{Name: StreamFindings, Subjects: []string{SubjectFindings}, MaxAge: cfg.Retention, AllowDirect: true,
			Description: "GuardDuty findings as published, one message per finding version"},
		{Name: StreamDeadLetter, Subjects: []string{SubjectDeadLetter}, MaxAge: cfg.Retention,
			Description: "findings the pipeline refused, with the reason in Gdexport-Reason"},
		{Name: StreamEvents, Subjects: []string{SubjectEvents, SubjectNotifications}, MaxAge: cfg.EventRetention,
			Description: "one GuardDuty Finding event per exported finding; destination status notifications"},
		{Name: StreamBatches, Subjects: []string{SubjectBatches, SubjectParked}, MaxAge: cfg.Retention, AllowDirect: true,
			Description: "sealed batches: the composition of every exported object, as references"},
	}
	for _, sc := range streams {
		sc.Replicas = cfg.Replicas
		sc.Storage = jetstream.FileStorage
		if sc.Name == StreamEvents {
			sc.AllowAtomicPublish = cfg.Atomic || isAtomic(ctx, js, sc.Name)
		}
		s, err := retry(ctx, func(ctx context.Context) (jetstream.Stream, error) {
			s, err := js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return js.UpdateStream(ctx, sc)
			}
			return s, err
		})
		if err != nil {
			return nil, fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
		switch sc.Name {
		case StreamFindings:
			t.Findings = s
		case StreamBatches:
			t.Batches = s
		}
	}
	buckets := []struct {
		kv   *jetstream.KeyValue
		name string
		ttl  time.Duration
		desc string
	}{
		{&t.Destinations, BucketDestinations, 0, "publishing destinations per (account, Region)"},
		{&t.Detectors, BucketDetectors, 0, "detector settings per (account, Region): finding publishing frequency"},
		{&t.Exported, BucketExported, cfg.Retention, "latest finding version each destination has sealed for export"},
		{&t.Windows, BucketWindows, cfg.Retention, "pending updated findings per destination and update window"},
		{&t.Flushes, BucketFlushes, 0, "update windows with pending updates, and the claims on their flushes"},
		{&t.Filters, BucketFilters, 0, "saved filters (suppression rules) per (account, Region): <account>.<region>.<name>"},
		{&t.Members, BucketMembers, 0, "member accounts' administrator per Region: <region>.<member>"},
		{&t.Status, BucketStatus, 0, "publishing status of each destination, by destination id"},
	}
	for _, b := range buckets {
		// Buckets are created, then brought to kc through their stream's
		// configuration (ensureBucket), never recreated from kc: that
		// would turn off the atomic publishing a bucket gained.
		atomic := (b.name == BucketExported || b.name == BucketWindows) && cfg.Atomic
		kc := jetstream.KeyValueConfig{Bucket: b.name, Description: b.desc, TTL: b.ttl, Replicas: cfg.Replicas, Storage: jetstream.FileStorage}
		*b.kv, err = retry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
			return ensureBucket(ctx, js, kc, atomic)
		})
		if err != nil {
			return nil, fmt.Errorf("ensure bucket %s: %w", b.name, err)
		}
	}
	if t.WindowsStream, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, "KV_"+BucketWindows) }); err != nil {
		return nil, fmt.Errorf("stream of bucket %s: %w", BucketWindows, err)
	}
	ingest := jetstream.ConsumerConfig{
		Durable:       ConsumerIngest,
		Description:   "decode, filter, route and batch findings; shared by every worker",
		FilterSubject: SubjectFindings,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.IngestAckWait,
		MaxAckPending: cfg.IngestMaxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	t.Ingest, err = retry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		c, err := js.CreateConsumer(ctx, StreamFindings, ingest)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			return js.UpdateConsumer(ctx, StreamFindings, ingest)
		}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", ConsumerIngest, StreamFindings, err)
	}
	return t, nil
}

// isAtomic reports whether an existing stream allows atomic publishing.
func isAtomic(ctx context.Context, js jetstream.JetStream, name string) bool {
	s, err := js.Stream(ctx, name)
	return err == nil && s.CachedInfo().Config.AllowAtomicPublish
}

// ensureBucket creates a KV bucket, or brings an existing one's stream to
// cfg's replicas, TTL and description, allowing atomic publishing when
// atomic is set (and keeping it when it was on). An existing bucket is
// changed through its stream's configuration, never recreated from cfg, so
// that settings this bucket gained stay.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, atomic bool) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if kv, err = js.CreateKeyValue(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return nil, err
		}
		if errors.Is(err, jetstream.ErrBucketExists) { // another worker was first
			if kv, err = js.KeyValue(ctx, cfg.Bucket); err != nil {
				return nil, err
			}
		}
	} else if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, err
	}
	sc := s.CachedInfo().Config
	want := sc
	want.Replicas = cfg.Replicas
	want.MaxAge = cfg.TTL
	want.Description = cfg.Description
	want.AllowAtomicPublish = sc.AllowAtomicPublish || atomic
	if want.Replicas != sc.Replicas || want.MaxAge != sc.MaxAge || want.Description != sc.Description || want.AllowAtomicPublish != sc.AllowAtomicPublish {
		if _, err := js.UpdateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("update stream of bucket %s: %w", cfg.Bucket, err)
		}
	}
	return kv, nil
}

// ParkedAckWait is the ack wait of the parked backlog consumers; workers
// keep the batches they write alive with InProgress.
const ParkedAckWait = 30 * time.Second

// EnsureParked creates destID's parked backlog consumer on the BATCHES
// stream, or returns it when it exists (the call is idempotent). It is
// durable and shared, delivers from the first parked batch and never gives
// up on one (MaxDeliver -1).
func EnsureParked(ctx context.Context, batches jetstream.Stream, destID string) (jetstream.Consumer, error) {
	c, err := batches.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       ParkedConsumer(destID),
		Description:   "parked sealed batches of destination " + destID + ", written once it publishes again",
		FilterSubject: ParkedFilter(destID),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ParkedAckWait,
		MaxAckPending: 64,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", ParkedConsumer(destID), StreamBatches, err)
	}
	return c, nil
}
