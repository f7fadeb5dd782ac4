package bench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gdexport/gdexport/stages/compress"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/stages/encrypt"
)

// LatencyResult is the new-finding latency at a fixed offered load: from
// the publish of each finding to the write of the object that holds it
// (the object file's modification time).
type LatencyResult struct {
	Durability      string  `json:"durability"`
	Offered         int     `json:"offeredPerSecond"`
	Achieved        float64 `json:"achievedPerSecond"`
	Findings        int     `json:"findings"`
	NewFindingDelay float64 `json:"newFindingDelaySeconds"`
	P50             float64 `json:"p50Seconds"`
	P95             float64 `json:"p95Seconds"`
	P99             float64 `json:"p99Seconds"`
	Max             float64 `json:"maxSeconds"`
}

// Latency publishes n new findings at rate per second to a running worker
// with newFindingDelay delay and measures, per finding, publish → object
// written.
func Latency(ctx context.Context, bins Binaries, dir, durability string, rate, n int, delay time.Duration) (LatencyResult, error) {
	res := LatencyResult{Durability: durability, Offered: rate, Findings: n, NewFindingDelay: delay.Seconds()}
	ns, err := StartNATS(bins, filepath.Join(dir, "nats"), durability)
	if err != nil {
		return res, err
	}
	defer ns.Stop()
	dataDir := filepath.Join(dir, "data")
	w, err := StartWorker(bins, dir, "worker", fmt.Sprintf(`dataDir: %q
nats: {url: %q, durability: %s}
newFindingDelay: %s
defaultDestination: {destinationType: LOCAL}
`, dataDir, ns.URL, durability, delay))
	if err != nil {
		return res, err
	}
	defer w.Stop()
	pub, err := NewPublisher(ns.URL)
	if err != nil {
		return res, err
	}
	defer pub.Close()
	// Findings are made first so that making them costs no time during
	// the run; their publish times are taken as they are sent.
	var findings [][]byte
	if err := Generated(3, n, 0)(func(raw []byte) error { findings = append(findings, raw); return nil }); err != nil {
		return res, err
	}
	sent := make(map[string]time.Time, n)
	var mu sync.Mutex
	src := func(emit func([]byte) error) error {
		for _, raw := range findings {
			f, err := decode.Decode(raw)
			if err != nil {
				return err
			}
			mu.Lock()
			sent[f.ID] = time.Now()
			mu.Unlock()
			if err := emit(raw); err != nil {
				return err
			}
		}
		return nil
	}
	log.Printf("latency %s: %d findings at %d/s", durability, n, rate)
	_, took, err := pub.Publish(ctx, src, rate)
	if err != nil {
		return res, err
	}
	res.Achieved = float64(n) / took.Seconds()
	if err := waitMetric(ctx, w, "gdexport_findings_exported_total", float64(n), 10*time.Minute); err != nil {
		return res, err
	}
	key, err := encrypt.LoadLocal(filepath.Join(dataDir, "keys", "local-master.key"))
	if err != nil {
		return res, err
	}
	var lat []float64
	err = filepath.WalkDir(filepath.Join(dataDir, "export"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".enc") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		gz, err := encrypt.Open(ctx, encrypt.Providers(key), data)
		if err != nil {
			return err
		}
		plain, err := compress.Gunzip(bytes.NewReader(gz))
		if err != nil {
			return err
		}
		for _, l := range compress.SplitLines(plain) {
			f, err := decode.Decode(l)
			if err != nil {
				return err
			}
			if t, ok := sent[f.ID]; ok {
				lat = append(lat, fi.ModTime().Sub(t).Seconds())
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if len(lat) != n {
		return res, fmt.Errorf("found %d of %d findings in the objects", len(lat), n)
	}
	sort.Float64s(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	res.P50, res.P95, res.P99, res.Max = q(0.50), q(0.95), q(0.99), lat[len(lat)-1]
	return res, nil
}
