package bench

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// ThroughputResult is one end-to-end throughput run.
type ThroughputResult struct {
	Durability    string  `json:"durability"`
	Workers       int     `json:"workers"`
	Findings      int     `json:"findings"`
	Seconds       float64 `json:"seconds"`
	PerSecond     float64 `json:"findingsPerSecond"`
	Objects       float64 `json:"objects"`
	ObjectBytes   float64 `json:"objectBytes"`
	BytesPerFind  float64 `json:"bytesStoredPerFinding"`
	ObjectsPer1k  float64 `json:"objectsPer1000"`
	EventsPer1k   float64 `json:"eventsPer1000"`
	PeakHeapMB    float64 `json:"peakHeapMB"`
	PeakRSSMB     float64 `json:"peakRSSMB"`
	FindingsBytes float64 `json:"findingsBytes"`
	// Events says whether the NATS event bus was on (the default).
	Events bool `json:"events"`
}

// Throughput preloads n generated findings (one version each) into FINDINGS
// with no worker running, then starts workers and measures how long they
// take to export all of them (objects written) to the local destination,
// events on the NATS bus included. The producer's own speed is left out:
// the backlog is there before the clock starts.
func Throughput(ctx context.Context, bins Binaries, dir, durability string, workers, n int, newFindingDelay time.Duration, events bool) (ThroughputResult, error) {
	res := ThroughputResult{Durability: durability, Workers: workers, Findings: n, Events: events}
	ns, err := StartNATS(bins, filepath.Join(dir, "nats"), durability)
	if err != nil {
		return res, err
	}
	defer ns.Stop()
	yaml := fmt.Sprintf(`dataDir: %q
nats: {url: %q, durability: %s}
newFindingDelay: %s
defaultDestination: {destinationType: LOCAL}
eventBus: {nats: {enabled: %v}}
`, filepath.Join(dir, "data"), ns.URL, durability, newFindingDelay, events)
	// A first worker creates the topology, then stops: the backlog is
	// published with no consumer running.
	w0, err := StartWorker(bins, dir, "setup", yaml)
	if err != nil {
		return res, err
	}
	w0.Stop()
	pub, err := NewPublisher(ns.URL)
	if err != nil {
		return res, err
	}
	defer pub.Close()
	log.Printf("throughput %s/%d: preloading %d findings", durability, workers, n)
	var bytes int64
	src := Generated(2, n, 0)
	counted := func(emit func([]byte) error) error {
		return src(func(raw []byte) error { bytes += int64(len(raw)); return emit(raw) })
	}
	if _, _, err := pub.Publish(ctx, counted, 0); err != nil {
		return res, err
	}
	res.FindingsBytes = float64(bytes)
	var ws []*Worker
	for i := 0; i < workers; i++ {
		w, err := StartWorker(bins, dir, fmt.Sprintf("worker-%d", i+1), yaml)
		if err != nil {
			return res, err
		}
		defer w.Stop()
		ws = append(ws, w)
	}
	// The clock starts once the workers are ready: their start-up (the
	// topology, the shared state) is not throughput.
	start := time.Now()
	heap := sampleHeap(ws[0])
	if ProfileDir != "" {
		go saveProfile(ws[0].HTTP, filepath.Join(ProfileDir, fmt.Sprintf("cpu-%s-%d.pprof", durability, workers)), 5*time.Second)
		go saveProfile(ns.ProfAddr, filepath.Join(ProfileDir, fmt.Sprintf("cpu-nats-%s-%d.pprof", durability, workers)), 5*time.Second)
	}
	// Done when every finding is in an object and has its event.
	exported, evs := 0.0, 0.0
	deadline := time.Now().Add(30 * time.Minute)
	for exported < float64(n) || (res.Events && evs < float64(n)) {
		exported, evs = 0, 0
		for _, w := range ws {
			fams, err := w.Metrics(ctx)
			if err != nil {
				continue
			}
			exported += Sum(fams, "gdexport_findings_exported_total")
			evs += Sum(fams, "gdexport_events_published_total")
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("exported %.0f of %d (events %.0f) in 30 minutes", exported, n, evs)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.PerSecond = float64(n) / res.Seconds
	res.PeakHeapMB = heap.Peak() / (1 << 20)
	for _, w := range ws {
		fams, err := w.Metrics(ctx)
		if err == nil {
			res.Objects += Sum(fams, "gdexport_objects_written_total")
			res.ObjectBytes += Sum(fams, "gdexport_object_bytes_total")
			res.EventsPer1k += Sum(fams, "gdexport_events_published_total")
		}
		res.PeakRSSMB = max(res.PeakRSSMB, float64(w.PeakRSS())/(1<<20))
	}
	res.BytesPerFind = res.ObjectBytes / float64(n)
	res.ObjectsPer1k = res.Objects * 1000 / float64(n)
	res.EventsPer1k = res.EventsPer1k * 1000 / float64(n)
	return res, nil
}

// ProfileDir, when set, receives a CPU profile of the first worker of each
// throughput run.
var ProfileDir string

func saveProfile(addr, path string, d time.Duration) {
	if addr == "" {
		return
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}
