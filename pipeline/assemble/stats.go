package assemble

import (
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/gdexport/gdexport/pipeline"
)

// Stats counts what the worker did. Safe for concurrent use.
type Stats struct {
	Received      atomic.Int64
	SealedBatches atomic.Int64
	Sealed        atomic.Int64
	Objects       atomic.Int64
	ObjectBytes   atomic.Int64
	Exported      atomic.Int64
	Events        atomic.Int64
	MissingRefs   atomic.Int64

	mu         sync.Mutex
	dropped    map[string]int64
	suppressed map[string]int64 // by filter name
	lastObject string
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
}

// ObjectWritten counts an object.
func (s *Stats) ObjectWritten(dest *pipeline.Destination, _ *pipeline.Batch, obj *pipeline.Object) {
	s.Objects.Add(1)
	s.ObjectBytes.Add(int64(len(obj.Body)))
	s.Exported.Add(int64(obj.Lines))
	if dest.Type == pipeline.DestinationLocal {
		s.mu.Lock()
		s.lastObject = filepath.Join(dest.Root, filepath.FromSlash(obj.Key))
		s.mu.Unlock()
	}
}

// EventsWritten counts events.
func (s *Stats) EventsWritten(_ *pipeline.Destination, _ *pipeline.Batch, n int) {
	s.Events.Add(int64(n))
}

// Missing counts references whose finding had left the stream.
func (s *Stats) Missing(_ *pipeline.Batch, n int) { s.MissingRefs.Add(int64(n)) }

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

// LastObject is the path of the last object written to a local destination.
func (s *Stats) LastObject() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastObject
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
