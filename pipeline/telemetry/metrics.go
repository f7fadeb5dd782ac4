package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every gdexport metric.
const Namespace = "gdexport"

// Metrics are a worker's Prometheus metrics. The zero value is not usable;
// call NewMetrics. Every method is safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	Received       prometheus.Counter
	Dropped        *prometheus.CounterVec // reason, filter
	Exported       *prometheus.CounterVec // destination, lane
	Objects        *prometheus.CounterVec // destination, lane
	ObjectBytes    *prometheus.CounterVec // destination
	Events         *prometheus.CounterVec // destination, sink
	SinkErrors     *prometheus.CounterVec // sink, kind
	Parked         *prometheus.CounterVec // destination
	DestStatus     *prometheus.GaugeVec   // destination, account, region, status
	ConsumerPend   *prometheus.GaugeVec   // consumer
	ConsumerAck    *prometheus.GaugeVec   // consumer
	OldestPending  *prometheus.GaugeVec   // consumer
	WindowPending  prometheus.Gauge
	WindowsOpen    prometheus.Gauge
	Held           prometheus.Gauge
	Latency        *prometheus.HistogramVec // lane
	FlushDuration  prometheus.Histogram
	FlushFindings  prometheus.Counter
	SealedBatches  *prometheus.CounterVec // lane
	MissingFinding prometheus.Counter
}

// NewMetrics registers every metric, with the Go runtime and process
// collectors, on a new registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{r}
	return &Metrics{
		Registry: r,
		Received: f.counter("findings_received_total", "Ingest messages received (redeliveries included)."),
		Dropped: f.counterVec("findings_dropped_total",
			"Findings not exported, by reason (invalid, archived, suppressed, no_destination, disassociated, stale, duplicate) and, for suppressed, the filter's name.",
			"reason", "filter"),
		Exported:    f.counterVec("findings_exported_total", "Finding versions written in objects, per destination and lane (new, upd).", "destination", "lane"),
		Objects:     f.counterVec("objects_written_total", "Objects written, per destination and lane.", "destination", "lane"),
		ObjectBytes: f.counterVec("object_bytes_total", "Bytes of objects written (compressed and encrypted), per destination.", "destination"),
		Events:      f.counterVec("events_published_total", "Events published, per destination and event sink (nats, eventbridge).", "destination", "sink"),
		SinkErrors:  f.counterVec("sink_errors_total", "Failed sink writes, by sink (objects, events) and kind (access, transient).", "sink", "kind"),
		Parked: f.counterVec("batches_parked_total",
			"Sealed batches parked because their destination could not take them (not PUBLISHING, failing or slow); each is written once it publishes again.", "destination"),
		DestStatus: f.gaugeVec("destination_status",
			"1 for the current publishing status of each destination (PENDING_VERIFICATION, PUBLISHING, UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY, STOPPED), 0 for the others.",
			"destination", "account", "region", "status"),
		ConsumerPend:  f.gaugeVec("consumer_pending_messages", "Messages not yet delivered, per durable consumer (ingest, objects, events).", "consumer"),
		ConsumerAck:   f.gaugeVec("consumer_ack_pending_messages", "Messages delivered and not yet acknowledged, per durable consumer.", "consumer"),
		OldestPending: f.gaugeVec("consumer_oldest_pending_age_seconds", "Age of the oldest message not yet acknowledged, per durable consumer (0 when none).", "consumer"),
		WindowPending: f.gauge("window_pending_updates", "Updated findings waiting in update windows, across destinations."),
		WindowsOpen:   f.gauge("windows_pending", "Update windows holding pending updates."),
		Held:          f.gauge("lane_held_bytes", "Bytes of findings this worker holds in open batches."),
		Latency: f.histogramVec("export_latency_seconds", "From receipt (stored in FINDINGS) to object written, per finding and lane.",
			[]float64{0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 7 * 3600}, "lane"),
		FlushDuration:  f.histogram("window_flush_duration_seconds", "Time to seal an update window's batches.", prometheus.ExponentialBuckets(0.01, 3, 10)),
		FlushFindings:  f.counter("window_flushed_findings_total", "Updated findings sealed by window flushes."),
		SealedBatches:  f.counterVec("batches_sealed_total", "Batches sealed, per lane.", "lane"),
		MissingFinding: f.counter("sealed_findings_missing_total", "Findings of sealed batches no longer in FINDINGS when written (retention)."),
	}
}

type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.r.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.r.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.r.MustRegister(h)
	return h
}

// RegisterExportCache publishes the export cache's hit and miss counts
// (batches exported from memory, and read back from FINDINGS).
func (m *Metrics) RegisterExportCache(hits, misses func() float64) {
	for result, f := range map[string]func() float64{"hit": hits, "miss": misses} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: Namespace, Name: "export_cache_batches_total",
			Help:        "Sealed batches exported from this worker's memory (hit) or read back from FINDINGS (miss).",
			ConstLabels: prometheus.Labels{"result": result},
		}, f))
	}
}

// Calls are counts of the calls a worker makes to paid services, by
// purpose.
type Calls struct {
	// S3Export is S3 write requests writing objects: one per PutObject;
	// for a multipart upload one to create it, one per part and one to
	// complete it. Failed requests count too.
	S3Export func() float64
	// S3Verify is verification's requests (the write probe and its
	// deletion); S3Setup bucket creation's.
	S3Verify, S3Setup func() float64
	// KMSExport is KMS calls for objects (GenerateDataKey when one is
	// encrypted, Decrypt when one is read back); KMSVerify key checks'.
	KMSExport, KMSVerify func() float64
}

// RegisterCalls publishes c as gdexport_s3_requests_total and
// gdexport_kms_calls_total, labelled by purpose (export, verify, setup):
// the benchmark's sink and KMS calls per object.
func (m *Metrics) RegisterCalls(c Calls) {
	for purpose, f := range map[string]func() float64{"export": c.S3Export, "verify": c.S3Verify, "setup": c.S3Setup} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "s3_requests_total",
			Help:        "S3 write requests sent, by purpose: export (one per PutObject; a multipart upload's create, parts and complete), verify (write probe and its deletion), setup (bucket creation). Failed requests count too.",
			ConstLabels: prometheus.Labels{"purpose": purpose}}, f))
	}
	for purpose, f := range map[string]func() float64{"export": c.KMSExport, "verify": c.KMSVerify} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "kms_calls_total",
			Help:        "KMS calls made, by purpose: export (GenerateDataKey per encrypted object, Decrypt per object read back), verify (key checks).",
			ConstLabels: prometheus.Labels{"purpose": purpose}}, f))
	}
}

// Statuses are the publishing statuses DestStatus reports, in GuardDuty's
// names.
var Statuses = []string{"PENDING_VERIFICATION", "PUBLISHING", "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", "STOPPED"}

// SetStatus sets the status gauge of a destination: 1 for status, 0 for the
// others.
func (m *Metrics) SetStatus(destination, account, region, status string) {
	for _, s := range Statuses {
		v := 0.0
		if s == status {
			v = 1
		}
		m.DestStatus.WithLabelValues(destination, account, region, s).Set(v)
	}
}
