package assemble

import (
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/telemetry"
	"github.com/gdexport/gdexport/stages/window"
)

// Stats counts what the worker did, for the run summary and, through
// Metrics, for Prometheus. Safe for concurrent use.
type Stats struct {
	Metrics *telemetry.Metrics

	Received      atomic.Int64
	SealedBatches atomic.Int64
	Sealed        atomic.Int64
	Objects       atomic.Int64
	ObjectBytes   atomic.Int64
	Exported      atomic.Int64
	Events        atomic.Int64
	MissingRefs   atomic.Int64
	Flushes       atomic.Int64

	mu         sync.Mutex
	dropped    map[string]int64
	suppressed map[string]int64 // by filter name
	lastObject string
	lastKey    string // the key file of lastObject ("" when not envelope)
}

func newStats() *Stats { return &Stats{Metrics: telemetry.NewMetrics()} }

// Receive counts an ingest message.
func (s *Stats) Receive() {
	s.Received.Add(1)
	s.Metrics.Received.Inc()
}

// SuppressedBy counts a finding an ARCHIVE filter suppressed, under the
// filter's name (the finding is also counted as dropped "suppressed").
func (s *Stats) SuppressedBy(filterName string) {
	s.mu.Lock()
	if s.suppressed == nil {
		s.suppressed = map[string]int64{}
	}
	s.suppressed[filterName]++
	s.mu.Unlock()
	s.Metrics.Dropped.WithLabelValues(pipeline.DropSuppressed, filterName).Inc()
}

// SuppressedByFilter returns a copy of the suppressed counts by filter name.
func (s *Stats) SuppressedByFilter() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.suppressed))
	for k, v := range s.suppressed {
		out[k] = v
	}
	return out
}

// Dropped counts findings dropped for reason.
func (s *Stats) Dropped(reason string, n int) {
	if reason != pipeline.DropSuppressed { // counted by filter name in SuppressedBy
		s.Metrics.Dropped.WithLabelValues(reason, "").Add(float64(n))
	}
	s.mu.Lock()
	if s.dropped == nil {
		s.dropped = map[string]int64{}
	}
	s.dropped[reason] += int64(n)
	s.mu.Unlock()
}

// Sealed counts a sealed batch.
func (s *Stats) SealedBatch(b *pipeline.Batch) {
	s.SealedBatches.Add(1)
	s.Sealed.Add(int64(len(b.Refs)))
	s.Metrics.SealedBatches.WithLabelValues(string(b.Lane)).Inc()
}

// ObjectWritten counts an object and observes the export latency of each
// of its findings.
func (s *Stats) ObjectWritten(dest *pipeline.Destination, b *pipeline.Batch, obj *pipeline.Object, received []int64) {
	s.Objects.Add(1)
	s.ObjectBytes.Add(int64(len(obj.Body)))
	s.Exported.Add(int64(obj.Lines))
	lane := string(b.Lane)
	m := s.Metrics
	m.Objects.WithLabelValues(dest.ID, lane).Inc()
	m.ObjectBytes.WithLabelValues(dest.ID).Add(float64(len(obj.Body)))
	m.Exported.WithLabelValues(dest.ID, lane).Add(float64(obj.Lines))
	now := time.Now().UnixMilli()
	lat := m.Latency.WithLabelValues(lane)
	for _, r := range received {
		if r > 0 {
			lat.Observe(float64(now-r) / 1000)
		}
	}
	if dest.Type == pipeline.DestinationLocal {
		s.mu.Lock()
		s.lastObject = filepath.Join(dest.Root, filepath.FromSlash(obj.Key))
		s.lastKey = ""
		if dest.Encryption == pipeline.EncryptionEnvelope {
			s.lastKey = dest.KeyFile
		}
		s.mu.Unlock()
	}
}

// EventsWritten counts events.
func (s *Stats) EventsWritten(dest *pipeline.Destination, _ *pipeline.Batch, sink string, n int) {
	s.Events.Add(int64(n))
	s.Metrics.Events.WithLabelValues(dest.ID, sink).Add(float64(n))
}

// SinkError counts a failed sink write by kind: access (the destination
// must be fixed) or transient.
func (s *Stats) SinkError(sink string, err error) {
	kind := "transient"
	if pipeline.IsAccess(err) {
		kind = "access"
	}
	s.Metrics.SinkErrors.WithLabelValues(sink, kind).Inc()
}

// ObjectFailed counts a failed object write by kind.
func (s *Stats) ObjectFailed(_ *pipeline.Destination, _ *pipeline.Batch, err error) {
	s.SinkError("objects", err)
}

// Parked counts a batch parked for its destination.
func (s *Stats) Parked(dest *pipeline.Destination, _ *pipeline.Batch) {
	s.Metrics.Parked.WithLabelValues(dest.ID).Inc()
}

// Flushed counts a finished window flush.
func (s *Stats) Flushed(r window.FlushReport) {
	s.Flushes.Add(1)
	s.Metrics.FlushDuration.Observe(r.Took.Seconds())
	s.Metrics.FlushFindings.Add(float64(r.Findings))
}

// Missing counts references whose finding had left the stream.
func (s *Stats) Missing(_ *pipeline.Batch, n int) {
	s.MissingRefs.Add(int64(n))
	s.Metrics.MissingFinding.Add(float64(n))
}

// DroppedByReason returns a copy of the drop counts.
func (s *Stats) DroppedByReason() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.dropped))
	for k, v := range s.dropped {
		out[k] = v
	}
	return out
}

// LastObject is the path of the last object written to a local destination
// and the local key file that opens it ("" for a plain object).
func (s *Stats) LastObject() (path, keyFile string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastObject, s.lastKey
}

// LogAttrs renders the counters as log attributes.
func (s *Stats) LogAttrs() []any {
	attrs := []any{
		slog.Int64("received", s.Received.Load()),
		slog.Int64("sealed", s.Sealed.Load()),
		slog.Int64("exported", s.Exported.Load()),
		slog.Int64("objects", s.Objects.Load()),
		slog.Int64("bytes", s.ObjectBytes.Load()),
		slog.Int64("events", s.Events.Load()),
	}
	d := s.DroppedByReason()
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var group []any
	for _, k := range keys {
		group = append(group, slog.Int64(k, d[k]))
	}
	if len(group) > 0 {
		attrs = append(attrs, slog.Group("dropped", group...))
	}
	sup := s.SuppressedByFilter()
	names := make([]string, 0, len(sup))
	for k := range sup {
		names = append(names, k)
	}
	sort.Strings(names)
	var byFilter []any
	for _, k := range names {
		byFilter = append(byFilter, slog.Int64(k, sup[k]))
	}
	if len(byFilter) > 0 {
		attrs = append(attrs, slog.Group("suppressed_by", byFilter...))
	}
	return attrs
}
