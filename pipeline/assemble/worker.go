package assemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/export"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/schedule"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/pipeline/status"
	"github.com/gdexport/gdexport/pipeline/telemetry"
	"github.com/gdexport/gdexport/pipeline/wmjs"
	"github.com/gdexport/gdexport/sinks/eventbridge"
	"github.com/gdexport/gdexport/sinks/localdir"
	"github.com/gdexport/gdexport/sinks/natsbus"
	"github.com/gdexport/gdexport/sinks/s3"
	"github.com/gdexport/gdexport/stages/compress"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/stages/encrypt"
	"github.com/gdexport/gdexport/stages/encrypt/kms"
	"github.com/gdexport/gdexport/stages/fanin"
	"github.com/gdexport/gdexport/stages/filter"
	"github.com/gdexport/gdexport/stages/window"
)

// Options configure a Worker.
type Options struct {
	// Config is the validated configuration with defaults applied.
	Config *config.Config
	Log    *slog.Logger
	// Clock is injected wherever batches and windows are decided (nil:
	// time.Now).
	Clock func() time.Time
	// ShutdownGrace bounds how long a stopping worker spends sealing open
	// batches and finishing in-flight writes (default 10s).
	ShutdownGrace time.Duration
	// SummaryEvery is how often a changed summary is logged (default 2s;
	// negative disables it).
	SummaryEvery time.Duration
	// S3 and KMS are extra options of the S3 sink and the KMS key provider
	// (tests inject credentials and HTTP clients; by default both use the
	// standard AWS chain).
	S3  []s3.Option
	KMS []kms.Option
}

type workerConfig struct{ *config.Config }

// batchWriteTimeout bounds one attempt at writing a sealed batch to a sink.
const batchWriteTimeout = 2 * time.Minute

// Memory bounds of a worker (with the lanes' 48 MiB of held findings): the
// findings of sealed batches kept for their export (export.Cache), and
// what the ingest consumer fetches ahead.
const (
	exportCacheBytes    = 32 << 20
	ingestPrefetchBytes = 4 << 20
)

// windowGrace is how long, beyond newFindingDelay, a closed update window
// waits for updates still in flight before it is flushed.
const windowGrace = 5 * time.Second

// ingestAckWait and exportAckWait are the ack waits of the ingest and export
// consumers: how long the messages a crashed worker held wait before
// another worker gets them. Live workers keep their messages alive with
// InProgress, however long the work takes.
const (
	ingestAckWait = 30 * time.Second
	exportAckWait = 30 * time.Second
)

// asyncAckTimeout bounds the wait for the ack of an asynchronous publish
// (the seal's compare-and-set claims, staged updates, events). Without it
// an ack lost with its connection (a partition) is waited for forever, and
// the messages of the batch are kept alive by InProgress all that time.
const asyncAckTimeout = 10 * time.Second

// takeover returns the ack waits of the ingest and export consumers and the
// lease of a window flush: 30s, 30s and 60s, or the test-only
// ackWaitOverride, twice it for the lease. The ingest ack wait is at least
// three newFindingDelays, so that a message waiting in an open batch is
// kept alive (every third of it) before it could expire.
func (c workerConfig) takeover() (ingest, export, lease time.Duration) {
	ingest, export, lease = ingestAckWait, exportAckWait, 0 // 0: the flusher's default (60s)
	if o := c.AckWaitOverride.D(); o > 0 {
		ingest, export, lease = o, o, 2*o
	}
	return max(ingest, 3*c.NewFindingDelay.D()), export, lease
}

// Worker is one gdexport worker. Any number of workers share one JetStream
// and split the work.
type Worker struct {
	opts  Options
	cfg   workerConfig
	log   *slog.Logger
	clock func() time.Time
	stats *Stats

	embedded *server.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	topo     *natsx.Topology
	store    *state.Store
	stages   pipeline.Sequence
	newLane  *window.NewLane
	flusher  *window.Flusher
	cache    *export.Cache
	// exportConsumers are the durable consumers of the export path, one per
	// sink kind.
	exportConsumers []string
	holds           *window.Holds
	// statuses is every destination's publishing status; the sinks and
	// keys are the exporter's, shared with verification.
	statuses  *state.Statuses
	exporter  *export.Exporter
	s3Sink    *s3.Sink
	localSink *localdir.Sink
	localKeys *encrypt.LocalKeys
	kmsKeys   *kms.Keys
	// name identifies this worker in leases (flushes, verifications).
	name string

	readyOnce sync.Once
	ready     chan struct{}
	httpAddr  string
}

// New returns a worker; Run starts it.
func New(opts Options) *Worker {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	if opts.SummaryEvery == 0 {
		opts.SummaryEvery = 2 * time.Second
	}
	return &Worker{opts: opts, cfg: workerConfig{opts.Config}, log: opts.Log, clock: opts.Clock,
		stats: newStats(), ready: make(chan struct{}), name: workerName() + "/" + workerSuffix()}
}

// HTTPAddr is the address the metrics, health and status listener is
// bound to. Valid after Ready.
func (w *Worker) HTTPAddr() string { return w.httpAddr }

// Stats returns the worker's counters.
func (w *Worker) Stats() *Stats { return w.stats }

// State is the shared configuration the worker routes and filters with
// (valid after Ready).
func (w *Worker) State() *state.Store { return w.store }

// Ready is closed once the worker consumes findings.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

// NATSURL is the URL clients use to reach the worker's NATS (the embedded
// server's when it runs one). Valid after Ready.
func (w *Worker) NATSURL() string { return w.nc.ConnectedUrl() }

// connect starts the embedded server when no URL is configured, then
// connects.
func (w *Worker) connect() error {
	url := w.cfg.NATS.URL
	if url == "" {
		s, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Listen: w.cfg.NATS.Listen, StoreDir: w.cfg.NATS.StoreDir, Durability: w.cfg.NATS.Durability})
		if err != nil {
			return err
		}
		w.embedded = s
		url = s.ClientURL()
		w.log.Info("embedded NATS JetStream server started", slog.String("listen", w.cfg.NATS.Listen),
			slog.String("store", w.cfg.NATS.StoreDir), slog.String("durability", w.cfg.NATS.Durability))
	}
	nc, err := nats.Connect(url, nats.Name("gdexport-worker"), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				w.log.Warn("disconnected from NATS", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { w.log.Info("reconnected to NATS", slog.String("url", c.ConnectedUrl())) }))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	w.nc = nc
	w.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(asyncAckTimeout))
	return err
}

// applyMemoryLimit sets the Go runtime's soft memory limit from the
// configuration unless GOMEMLIMIT already did.
func (w *Worker) applyMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" || w.cfg.MemoryLimit == nil || *w.cfg.MemoryLimit <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(*w.cfg.MemoryLimit))
}

// Run runs the worker until ctx ends, then shuts down gracefully: it stops
// fetching, seals open batches within the grace period (or gives their
// messages back), finishes in-flight sink writes, and never acks what was
// not delivered.
func (w *Worker) Run(ctx context.Context) error {
	w.applyMemoryLimit()
	if err := w.connect(); err != nil {
		return err
	}
	defer w.closeConn()

	setupCtx, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	defer cancelSetup()
	var err error
	// Held messages are kept alive with InProgress (window.Holds), so the
	// ack wait only decides how soon the messages of a crashed worker go
	// to another one.
	ackWait, exportWait, lease := w.cfg.takeover()
	w.topo, err = natsx.Ensure(setupCtx, w.js, natsx.TopologyConfig{
		Replicas: w.cfg.NATS.Replicas, Retention: w.cfg.Retention.D(), IngestAckWait: ackWait, Atomic: w.atomic(),
	})
	if err != nil {
		return err
	}
	w.statuses = state.NewStatuses(w.topo.Status, w.log,
		state.WithHealthPolicy(state.HealthPolicy{FailureThreshold: w.cfg.FailureThreshold.D(), DisableAfter: w.cfg.DisableAfter.D()}),
		state.WithStatusClock(w.clock), state.WithNotifier(state.NATSNotifier{JS: w.js}), state.WithStatusHook(w.statusMetric))
	w.store = state.New(w.topo.Destinations, w.topo.Detectors, w.log,
		state.WithFilters(w.topo.Filters), state.WithMembers(w.topo.Members), state.WithStatuses(w.statuses))
	if err := w.store.Apply(setupCtx, w.cfg.Config); err != nil {
		return fmt.Errorf("apply configuration: %w", err)
	}

	runCtx, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAll()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := w.statuses.Run(runCtx); err != nil {
			w.log.Error("status watch ended", slog.Any("error", err))
		}
	}()
	select {
	case <-w.statuses.Ready():
	case <-setupCtx.Done():
		return fmt.Errorf("load destination statuses: %w", setupCtx.Err())
	}
	httpSrv, err := telemetry.Listen(w.cfg.HTTP.Listen, w.stats.Metrics, w.readiness, status.Handler(w.statusReport), w.log, w.cfg.HTTP.Pprof)
	if err != nil {
		return err
	}
	w.httpAddr = httpSrv.Addr()
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := httpSrv.Serve(runCtx); err != nil {
			w.log.Error("http listener ended", slog.Any("error", err))
		}
	}()
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := w.store.Run(runCtx); err != nil {
			w.log.Error("state watch ended", slog.Any("error", err))
		}
	}()
	select {
	case <-w.store.Ready():
	case <-setupCtx.Done():
		return fmt.Errorf("load shared state: %w", setupCtx.Err())
	}

	w.stages = pipeline.Sequence{decode.Stage{}, &filter.Stage{Rules: w.store}, &fanin.Stage{Router: w.store}}
	// Updates arriving in a window are staged into it for this long after
	// it ends: they may have waited newFindingDelay in the lane.
	grace := w.cfg.NewFindingDelay.D() + windowGrace
	// Batches this worker seals are exported from memory when their
	// consumers deliver them here (the usual case), without reading them
	// back from FINDINGS: one entry per export consumer to write them.
	sinks := 1 // objects
	if w.cfg.EventBus.NATS.On() {
		sinks++
	}
	if w.cfg.EventBus.EventBridge.EventBusName != "" {
		sinks++
	}
	w.cache = export.NewCache(exportCacheBytes, sinks)
	w.stats.Metrics.RegisterExportCache(func() float64 { return float64(w.cache.Hits.Load()) }, func() float64 { return float64(w.cache.Misses.Load()) })
	sealer := window.NewSealer(w.nc, w.js, window.SealerOptions{Counter: w, Clock: w.clock, Schedules: w, Grace: grace, Atomic: w.atomic(), Keep: w.cache})
	w.newLane = window.NewNewLane(window.NewLaneConfig{
		Delay: w.cfg.NewFindingDelay.D(), MaxFindings: w.cfg.MaxBatchFindings, MaxBytes: w.cfg.MaxBatchBytes,
	}, sealer, w.log)
	w.flusher = window.NewFlusher(w.js, w.topo.Flushes, w.topo.WindowsStream, sealer, w.store, w.log, window.FlusherOptions{
		Worker: workerName(), Grace: grace, Lease: lease, MaxFindings: w.cfg.MaxBatchFindings, MaxBytes: w.cfg.MaxBatchBytes,
		OnFlushed: w.stats.Flushed,
	})
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := w.flusher.Run(runCtx); err != nil {
			w.log.Error("window flusher ended", slog.Any("error", err))
		}
	}()

	if err := w.buildSinks(); err != nil {
		return err
	}
	router, err := w.exportRouter(exportWait)
	if err != nil {
		return err
	}
	// The parked backlogs stop with the router; verification and the
	// webhook with everything else.
	parkedCtx, stopParked := context.WithCancel(runCtx)
	defer stopParked()
	bg.Add(2)
	go func() { defer bg.Done(); w.exporter.RunParked(parkedCtx) }()
	go func() { defer bg.Done(); w.superviseDestinations(runCtx) }()
	if hook := w.cfg.Notifications.Webhook; hook != "" {
		bg.Add(1)
		go func() { defer bg.Done(); w.runWebhook(runCtx, hook) }()
	}

	// Ingest stops first; the lane then seals what it holds; the export
	// router stops last, so sealed batches get written while the grace
	// lasts (and are picked up by any worker otherwise).
	ingestCtx, stopIngest := context.WithCancel(runCtx)
	defer stopIngest()
	laneCtx, stopLane := context.WithCancel(runCtx)
	defer stopLane()
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	w.holds = window.NewHolds()
	go w.holds.KeepAlive(laneCtx, ackWait/3)
	laneDone := make(chan struct{})
	go func() { defer close(laneDone); w.newLane.Run(laneCtx, drainCtx) }()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(runCtx) }()
	select {
	case <-router.Running():
	case err := <-routerDone:
		return fmt.Errorf("export router: %w", err)
	}
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- w.ingest(ingestCtx) }()
	w.readyOnce.Do(func() { close(w.ready) })
	w.log.Info("worker running", slog.String("nats", w.nc.ConnectedUrl()), slog.String("http", "http://"+w.httpAddr),
		slog.Duration("newFindingDelay", w.cfg.NewFindingDelay.D()))
	summaryDone := make(chan struct{})
	go func() { defer close(summaryDone); w.summaries(runCtx) }()
	bg.Add(1)
	go func() { defer bg.Done(); w.watchBacklog(runCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-ingestDone:
		ingestDone <- runErr
	case runErr = <-routerDone:
		routerDone <- runErr
	}
	w.log.Info("shutting down", slog.Duration("grace", w.opts.ShutdownGrace))
	timer := time.AfterFunc(w.opts.ShutdownGrace, cancelDrain)
	defer timer.Stop()
	stopIngest()
	<-ingestDone
	stopLane()
	<-laneDone
	// Give the export consumers what remains of the grace to write what
	// was just sealed.
	w.waitExported(drainCtx)
	stopParked()
	_ = router.Close()
	stopAll()
	<-summaryDone
	bg.Wait()
	w.logSummary("final export summary")
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	return runErr
}

// waitExported waits until every sealed batch has been written by both
// export consumers, or ctx ends.
func (w *Worker) waitExported(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := uint64(0)
		for _, name := range w.exportConsumers {
			c, err := w.topo.Batches.Consumer(ctx, name)
			if err != nil {
				return
			}
			info, err := c.Info(ctx)
			if err != nil {
				return
			}
			pending += info.NumPending + uint64(info.NumAckPending)
		}
		if pending == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *Worker) closeConn() {
	if w.nc != nil {
		_ = w.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !w.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		w.nc.Close()
	}
	if w.embedded != nil {
		w.embedded.Shutdown()
		w.embedded.WaitForShutdown()
	}
}

// exportRouter builds the Watermill router of the export path: one durable
// consumer per sink kind on the BATCHES stream, each with ack wait ackWait.
func (w *Worker) exportRouter(ackWait time.Duration) (*message.Router, error) {
	wlog := watermill.NewSlogLoggerWithLevelMapping(w.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: w.opts.ShutdownGrace}, wlog)
	if err != nil {
		return nil, err
	}
	router.AddMiddleware(middleware.Recoverer)

	// Envelope on S3 wraps data keys with the destination's KMS key; without
	// one (and on LOCAL) with the local master key file.
	enc := encrypt.NewEncryptor(w.keyProvider)
	x := &export.Exporter{
		NC:       w.nc,
		Resolver: w.store,
		Decode:   decode.Decode,
		Compress: func() export.LineWriter { return compress.NewWriterLevel(nil, w.cfg.Compression.Level) },
		Encrypt:  enc.Encrypt,
		Objects:  map[pipeline.DestinationType]pipeline.ObjectSink{pipeline.DestinationLocal: w.localSink, pipeline.DestinationS3: w.s3Sink},
		Observer: w.stats,
		Log:      w.log,

		Health:       health{st: w.statuses, log: w.log},
		JS:           w.js,
		Batches:      w.topo.Batches,
		RetryInitial: w.cfg.RetryInitial.D(),
		RetryMax:     w.cfg.RetryMax.D(),
		WriteTimeout: batchWriteTimeout,
		Clock:        w.clock,
	}
	w.exporter = x
	type handler struct {
		consumer, sink string
		handle         func(context.Context, []byte) error
	}
	// Objects go through the destination's status: a broken destination's
	// batches are parked, never retried on the shared consumer.
	handlers := []handler{{natsx.ConsumerObjects, "objects", x.ExportObject}}
	x.Events = map[string]pipeline.EventSink{}
	if w.cfg.EventBus.NATS.On() {
		var opts []natsbus.Option
		if w.atomic() {
			opts = append(opts, natsbus.WithAtomicBatches(w.nc))
		}
		x.Events["nats"] = natsbus.New(w.js, opts...)
		handlers = append(handlers, handler{natsx.ConsumerEvents, "nats", func(ctx context.Context, data []byte) error {
			return x.WriteEvents(ctx, "nats", data)
		}})
	}
	if eb := w.cfg.EventBus.EventBridge; eb.EventBusName != "" {
		opts := []eventbridge.Option{eventbridge.WithLogger(w.log)}
		if eb.Source != "" {
			opts = append(opts, eventbridge.WithSource(eb.Source))
		}
		if eb.Endpoint != "" {
			opts = append(opts, eventbridge.WithEndpoint(eb.Endpoint))
		}
		bus, err := eventbridge.New(eb.EventBusName, opts...)
		if err != nil {
			return nil, fmt.Errorf("eventBus.eventbridge: %w", err)
		}
		x.Events["eventbridge"] = bus
		handlers = append(handlers, handler{natsx.ConsumerEventBridge, "eventbridge", func(ctx context.Context, data []byte) error {
			return x.WriteEvents(ctx, "eventbridge", data)
		}})
	}
	x.Cache = w.cache
	w.exportConsumers = nil
	for _, h := range handlers {
		w.exportConsumers = append(w.exportConsumers, h.consumer)
	}
	for _, h := range handlers {
		sub, err := wmjs.NewSubscriber(w.js, wmjs.SubscriberConfig{
			Durable:       func(string) string { return h.consumer },
			Stream:        func(string) string { return natsx.StreamBatches },
			AckWait:       ackWait,
			MaxAckPending: 256,
			FetchBatch:    16,
			// Each batch in flight holds its compressed object (a few MB
			// at most) and a chunk of findings.
			Concurrency: 3,
			NackDelay:   wmjs.BackoffNackDelay(time.Second, time.Minute),
			Logger:      wlog,
		})
		if err != nil {
			return nil, err
		}
		handle := h.handle
		name := h.consumer
		sink := h.sink
		router.AddConsumerHandler(name, natsx.SubjectBatches, sub, func(msg *message.Message) error {
			// Bounded, so a hung store cannot hold a batch forever: the
			// subscriber keeps the message alive while the handler runs.
			ctx, cancel := context.WithTimeout(msg.Context(), batchWriteTimeout)
			defer cancel()
			if err := handle(ctx, msg.Payload); err != nil {
				w.stats.SinkError(sink, err)
				w.log.Warn("export write failed; will retry", slog.String("sink", name), slog.Any("error", err))
				return err
			}
			return nil
		})
	}
	return router, nil
}

// Windows implements window.Schedules: the update windows of a destination
// follow its owner's findingPublishingFrequency, or the test-only
// windowOverride.
func (w *Worker) Windows(dest *pipeline.Destination) schedule.Windows {
	return w.store.Detector(dest.Account, dest.Region).Windows(w.cfg.WindowOverride.D())
}

// atomic reports whether the records written per finding go in atomic
// batches: with strict durability, where every write is synced to disk, one
// sync per batch instead of per finding.
func (w *Worker) atomic() bool { return w.cfg.NATS.Durability != natsx.DurabilityFast }

// statusReport builds the status page's report from this worker's view of
// the shared state.
func (w *Worker) statusReport(r *http.Request) (*status.Report, error) {
	select {
	case <-w.ready:
	default:
		return nil, errors.New("the worker is starting")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	return status.Build(ctx, status.Sources{
		JS:       w.js,
		Statuses: func(context.Context) ([]state.Status, error) { return w.statuses.All(), nil },
		Destination: func(_ context.Context, st state.Status) (*pipeline.Destination, bool) {
			return w.store.Destination(st.DestinationID, st.Account, st.Region)
		},
		Frequency: func(_ context.Context, account, region string) string {
			return w.store.Detector(account, region).FindingPublishingFrequency
		},
		Grace: w.cfg.NewFindingDelay.D() + windowGrace,
		Now:   w.clock,
	}, status.Filter{Account: r.URL.Query().Get("account"), Region: r.URL.Query().Get("region")})
}

// workerName names this worker in flush claims: host and process id.
func workerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// Dropped implements window.Counter.
func (w *Worker) Dropped(reason string, n int) { w.stats.Dropped(reason, n) }

// Sealed implements window.Counter.
func (w *Worker) Sealed(b *pipeline.Batch) { w.stats.SealedBatch(b) }

func (w *Worker) summaries(ctx context.Context) {
	if w.opts.SummaryEvery < 0 {
		return
	}
	tick := time.NewTicker(w.opts.SummaryEvery)
	defer tick.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			cur := fmt.Sprint(w.stats.LogAttrs()...)
			if cur != last {
				last = cur
				w.logSummary("export summary")
			}
		}
	}
}

func (w *Worker) logSummary(msg string) {
	attrs := w.stats.LogAttrs()
	if p, key := w.stats.LastObject(); p != "" {
		cmd := selfCommand() + " decrypt "
		// decrypt finds ./data/keys/local-master.key by itself; name any
		// other key file.
		if def, _ := filepath.Abs(filepath.Join("data", "keys", "local-master.key")); key != "" && key != def {
			cmd += "--key-file " + relative(key) + " "
		}
		attrs = append(attrs, slog.String("read_one_with", cmd+relative(p)))
	}
	w.log.Info(msg, attrs...)
}

// selfCommand is how the user can run this binary again from the working
// directory: ./bin/gdexport after make build, gdexport when on the PATH.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "gdexport"
	}
	if found, err := exec.LookPath(filepath.Base(exe)); err == nil {
		if abs, err := filepath.Abs(found); err == nil && abs == exe {
			return filepath.Base(exe)
		}
	}
	rel := relative(exe)
	if !filepath.IsAbs(rel) && !strings.HasPrefix(rel, ".") {
		rel = "./" + rel
	}
	return rel
}

// relative shortens p to a path relative to the working directory when it
// lies below it.
func relative(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(wd, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return rel
}
