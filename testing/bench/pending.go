package bench

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// PendingResult is what the pending-updates scenario measured.
type PendingResult struct {
	Pending int `json:"pending"`
	// PeakHeapMB is the worker's peak heap in use from the moment the
	// updates are published until the window is flushed and exported;
	// LoadHeapMB while the first versions were exported at full speed.
	PeakHeapMB    float64 `json:"peakHeapMB"`
	LoadHeapMB    float64 `json:"loadHeapMB"`
	PeakRSSMB     float64 `json:"peakRSSMB"`
	StageSeconds  float64 `json:"stageSeconds"`
	FlushSeconds  float64 `json:"flushSeconds"`
	WindowSeconds float64 `json:"windowSeconds"`
}

// heapSampler polls a worker's heap in use until stopped and keeps the peak.
type heapSampler struct {
	once sync.Once
	mu   sync.Mutex
	peak float64
	stop chan struct{}
	done chan struct{}
}

func sampleHeap(w *Worker) *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			fams, err := w.Metrics(ctx)
			cancel()
			if err != nil {
				continue
			}
			v := Sum(fams, "go_memstats_heap_inuse_bytes")
			h.mu.Lock()
			grew := v > h.peak*1.05
			h.peak = max(h.peak, v)
			h.mu.Unlock()
			if grew && ProfileDir != "" && v > 100<<20 {
				saveHeapProfile(w, filepath.Join(ProfileDir, "heap-peak.pprof"))
			}
		}
	}()
	return h
}

func (h *heapSampler) Peak() float64 {
	h.once.Do(func() { close(h.stop) })
	<-h.done
	return h.peak
}

// waitMetric polls a worker until the sum of metric reaches want.
func waitMetric(ctx context.Context, w *Worker, metric string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := 0.0
	for {
		fams, err := w.Metrics(ctx)
		if err == nil {
			last = Sum(fams, metric)
			if last >= want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s reached %.0f of %.0f in %s", metric, last, want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Pending measures the worker's memory with n distinct updated findings
// pending in one update window, and while that window is flushed: n new
// findings are exported first, then their next versions are published
// right after a window boundary, so that all of them wait in one window.
// nats-server runs as its own process (durability fast: this scenario
// measures memory, not fsync).
func Pending(ctx context.Context, bins Binaries, dir string, n int, window time.Duration) (PendingResult, error) {
	res := PendingResult{Pending: n, WindowSeconds: window.Seconds()}
	ns, err := StartNATS(bins, filepath.Join(dir, "nats"), Fast)
	if err != nil {
		return res, err
	}
	defer ns.Stop()
	w, err := StartWorker(bins, dir, "worker", fmt.Sprintf(`dataDir: %q
nats: {url: %q, durability: fast}
newFindingDelay: 1s
windowOverride: %s
defaultDestination: {destinationType: LOCAL}
eventBus: {nats: {enabled: false}}
`, filepath.Join(dir, "data"), ns.URL, window))
	if err != nil {
		return res, err
	}
	defer w.Stop()
	heap := sampleHeap(w)
	defer func() {
		if res.PeakHeapMB == 0 {
			heap.Peak()
		}
	}()
	pub, err := NewPublisher(ns.URL)
	if err != nil {
		return res, err
	}
	defer pub.Close()

	log.Printf("pending: generating and publishing %d new findings", n)
	if _, _, err := pub.Publish(ctx, Generated(1, n, 0), 0); err != nil {
		return res, err
	}
	if err := waitMetric(ctx, w, "gdexport_batches_sealed_total", 1, time.Minute); err != nil {
		return res, err
	}
	if err := waitMetric(ctx, w, "gdexport_findings_exported_total", float64(n), 30*time.Minute); err != nil {
		return res, fmt.Errorf("new findings: %w", err)
	}
	res.LoadHeapMB = heap.Peak() / (1 << 20)
	heap = sampleHeap(w)
	// Start right after a boundary, so that every update arrives in one window.
	next := time.Now().Truncate(window).Add(window)
	log.Printf("pending: waiting for the window boundary at %s", next.Format(time.TimeOnly))
	time.Sleep(time.Until(next) + time.Second)
	start := time.Now()
	if _, _, err := pub.Publish(ctx, Generated(1, n, time.Hour), 0); err != nil {
		return res, err
	}
	if err := waitMetric(ctx, w, "gdexport_window_pending_updates", float64(n), window); err != nil {
		return res, fmt.Errorf("staging: %w", err)
	}
	res.StageSeconds = time.Since(start).Seconds()
	if time.Now().After(next.Add(window)) {
		return res, fmt.Errorf("staging %d updates took %.0fs, longer than the %s window: use a longer one", n, res.StageSeconds, window)
	}
	log.Printf("pending: %d updates pending after %.0fs; waiting for the flush", n, res.StageSeconds)
	if err := waitMetric(ctx, w, "gdexport_window_flushed_findings_total", float64(n), 2*window+30*time.Minute); err != nil {
		return res, fmt.Errorf("flush: %w", err)
	}
	res.FlushSeconds = time.Since(next.Add(window)).Seconds()
	if err := waitMetric(ctx, w, "gdexport_findings_exported_total", float64(2*n), 30*time.Minute); err != nil {
		return res, fmt.Errorf("updated findings: %w", err)
	}
	res.PeakHeapMB = heap.Peak() / (1 << 20)
	res.PeakRSSMB = float64(w.PeakRSS()) / (1 << 20)
	return res, nil
}

// saveHeapProfile saves the worker's heap profile (live objects after a GC).
func saveHeapProfile(w *Worker, path string) {
	resp, err := http.Get("http://" + w.HTTP + "/debug/pprof/heap?gc=1")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}
