// Command gdexport-bench runs gdexport's benchmarks on this machine (see
// package bench), prints one table and writes the results as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gdexport/gdexport/testing/bench"
)

// Results is the JSON written under testing/bench/results.
type Results struct {
	Date       string                   `json:"date"`
	Machine    string                   `json:"machine"`
	Pending    *bench.PendingResult     `json:"pending,omitempty"`
	Throughput []bench.ThroughputResult `json:"throughput,omitempty"`
	Latency    []bench.LatencyResult    `json:"latency,omitempty"`
	Limits     []bench.LimitsResult     `json:"limits,omitempty"`
	S3         []bench.S3Result         `json:"s3,omitempty"`
	GoBench    []bench.GoBenchResult    `json:"goBenchmarks,omitempty"`
}

func main() {
	var (
		scenarios   = flag.String("scenarios", "gobench,limits,throughput,latency,s3,pending", "comma-separated scenarios to run: gobench, limits, throughput, objects-only, latency, s3, pending")
		pendingN    = flag.Int("pending", 1_000_000, "pending updated findings in the pending scenario")
		findingsN   = flag.Int("findings", 100_000, "findings per throughput run")
		modes       = flag.String("modes", "fast,strict", "durability modes of the throughput runs")
		workersN    = flag.String("workers", "1,2", "worker counts of the throughput runs")
		s3N         = flag.Int("s3-findings", 20_000, "findings per S3 run")
		latencyN    = flag.Int("latency-findings", 50_000, "findings of the latency run")
		latencyRate = flag.Int("latency-rate", 5000, "offered findings per second of the latency run")
		strictRate  = flag.Int("latency-rate-strict", 2000, "a second, lower offered rate for the strict latency run (5,000/s is above this machine's strict publish rate); 0 for none")
		window      = flag.Duration("window", 5*time.Minute, "update window of the pending scenario")
		out         = flag.String("out", "", "JSON results file (default testing/bench/results/<date>.json)")
		work        = flag.String("work", "", "working directory for stores and logs (default a temporary one)")
		profile     = flag.String("profile", "", "directory for CPU profiles of the first worker of each throughput run")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := *work
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "gdexport-bench"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	bench.ProfileDir = *profile
	bins, err := bench.Build(filepath.Join(dir, "bin"))
	if err != nil {
		log.Fatal(err)
	}
	res := Results{Date: time.Now().UTC().Format(time.RFC3339), Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())}
	var rows [][3]string
	for _, s := range strings.Split(*scenarios, ",") {
		switch strings.TrimSpace(s) {
		case "pending":
			d := filepath.Join(dir, "pending")
			r, err := bench.Pending(ctx, bins, d, *pendingN, *window)
			if err != nil {
				log.Fatalf("pending: %v", err)
			}
			res.Pending = &r
			rows = append(rows,
				[3]string{"pending updates in one window", fmt.Sprintf("%d", r.Pending), ""},
				[3]string{"worker peak heap in use, updates pending and flushed", fmt.Sprintf("%.0f MB", r.PeakHeapMB), "goal ≤ 200 MB"},
				[3]string{"worker peak heap in use, exporting the first versions", fmt.Sprintf("%.0f MB", r.LoadHeapMB), ""},
				[3]string{"worker peak RSS", fmt.Sprintf("%.0f MB", r.PeakRSSMB), ""},
				[3]string{"staging the updates", fmt.Sprintf("%.0f s (%.0f/s)", r.StageSeconds, float64(r.Pending)/r.StageSeconds), ""},
				[3]string{"window flushed and exported after its end", fmt.Sprintf("%.0f s", r.FlushSeconds), ""},
			)
		case "limits":
			for _, mode := range strings.Split(*modes, ",") {
				r, err := bench.Limits(ctx, bins, filepath.Join(dir, "limits-"+mode), mode, *findingsN)
				if err != nil {
					log.Fatalf("limits %s: %v", mode, err)
				}
				res.Limits = append(res.Limits, r)
				rows = append(rows,
					[3]string{fmt.Sprintf("machine: JetStream publish, %s", mode), fmt.Sprintf("%.0f findings/s", r.PublishPerSec), ""},
					[3]string{fmt.Sprintf("machine: one hop (fetch, publish, ack), %s", mode), fmt.Sprintf("%.0f findings/s", r.HopPerSec), ""},
				)
				if mode == strings.Split(*modes, ",")[0] {
					rows = append(rows,
						[3]string{"gzip level 6, the default (gdexport / standard library)", fmt.Sprintf("%.0f / %.0f MB/s (%.2f×), ratio %.1f / %.1f", r.GzipMBps, r.StdlibGzipMBps, r.GzipMBps/r.StdlibGzipMBps, r.GzipRatio, r.StdlibRatio), "≥ 1.5× the standard library"},
						[3]string{"gzip output on 1,000 findings: level 6 / level 8 / gzip(1) -6", fmt.Sprintf("%d / %d / %d B", r.GzipBytes, r.Gzip8Bytes, r.GzipCmdBytes), "no larger than gzip -6"},
						[3]string{"gzip level 8 speed (gdexport / standard library level 6)", fmt.Sprintf("%.0f MB/s (%.2f×)", r.Gzip8MBps, r.Gzip8MBps/r.StdlibGzipMBps), ""},
					)
				}
			}
		case "objects-only":
			// The same as throughput's first run, without the NATS event
			// bus: what objects alone cost.
			mode := strings.Split(*modes, ",")[0]
			r, err := bench.Throughput(ctx, bins, filepath.Join(dir, "objects-only-"+mode), mode, 1, *findingsN, time.Second, false)
			if err != nil {
				log.Fatalf("objects-only %s: %v", mode, err)
			}
			res.Throughput = append(res.Throughput, r)
			rows = append(rows, [3]string{fmt.Sprintf("end to end without events, %s, 1 worker", mode), fmt.Sprintf("%.0f findings/s (%d in %.1f s)", r.PerSecond, r.Findings, r.Seconds), ""})
		case "gobench":
			r, err := bench.GoBench(ctx, bench.HotPathPackages)
			if err != nil {
				log.Fatalf("gobench: %v", err)
			}
			res.GoBench = r
			for _, b := range r {
				v := fmt.Sprintf("%.0f ns/op, %.0f B/op, %.0f allocs/op", b.NsPerOp, b.BytesPerOp, b.AllocsPerOp)
				if b.MBPerSec > 0 {
					v = fmt.Sprintf("%.1f MB/s, ", b.MBPerSec) + v
				}
				rows = append(rows, [3]string{"go: " + path.Base(b.Package) + "." + strings.TrimPrefix(b.Name, "Benchmark"), v, ""})
			}
		case "s3":
			mode := strings.Split(*modes, ",")[0]
			r, err := bench.S3(ctx, bins, filepath.Join(dir, "s3"), mode, *s3N)
			if err != nil {
				log.Fatalf("s3: %v", err)
			}
			res.S3 = r
			for _, x := range r {
				rows = append(rows,
					[3]string{fmt.Sprintf("S3 (MinIO), %s: objects / S3 write requests per 1,000 findings", x.Encryption), fmt.Sprintf("%.2f / %.2f (%d findings, %.0f/s)", x.ObjectsPer1k, x.RequestsPer1k, x.Findings, x.PerSecond), ""},
					[3]string{fmt.Sprintf("S3 (MinIO), %s: S3 write requests per object", x.Encryption), fmt.Sprintf("%.2f (%.0f for %.0f objects, %d listed; %.0f failed writes; verification %.0f more)", x.RequestsPerObj, x.S3Requests, x.Objects, x.ListedObjects, x.SinkErrors, x.VerifyRequests), "1"},
					[3]string{fmt.Sprintf("S3 (MinIO), %s: gdexport's KMS calls per object", x.Encryption), fmt.Sprintf("%.2f (%.0f calls; verification %.0f more)", x.KMSPerObj, x.KMSCalls, x.VerifyKMSCalls), "≤ 1"},
					[3]string{fmt.Sprintf("S3 (MinIO), %s: bytes stored per finding", x.Encryption), fmt.Sprintf("%.0f", x.BytesPerFind), ""},
				)
			}
		case "latency":
			for _, mode := range strings.Split(*modes, ",") {
				rates := []int{*latencyRate}
				if mode == bench.Strict && *strictRate > 0 && *strictRate != *latencyRate {
					rates = append(rates, *strictRate)
				}
				for _, rate := range rates {
					d := filepath.Join(dir, fmt.Sprintf("latency-%s-%d", mode, rate))
					r, err := bench.Latency(ctx, bins, d, mode, rate, *latencyN, time.Second)
					if err != nil {
						log.Fatalf("latency %s %d/s: %v", mode, rate, err)
					}
					res.Latency = append(res.Latency, r)
					goal := ""
					if rate == *latencyRate {
						goal = "p99 ≤ 2 s"
					}
					rows = append(rows, [3]string{fmt.Sprintf("new-finding latency, %s, %d/s offered (%.0f/s achieved), delay 1s", mode, r.Offered, r.Achieved),
						fmt.Sprintf("p50 %.2f s, p95 %.2f s, p99 %.2f s, max %.2f s", r.P50, r.P95, r.P99, r.Max), goal})
				}
			}
		case "throughput":
			for _, mode := range strings.Split(*modes, ",") {
				for _, wn := range strings.Split(*workersN, ",") {
					var n int
					fmt.Sscanf(wn, "%d", &n)
					d := filepath.Join(dir, "throughput-"+mode+"-"+wn)
					r, err := bench.Throughput(ctx, bins, d, mode, n, *findingsN, time.Second, true)
					if err != nil {
						log.Fatalf("throughput %s %d: %v", mode, n, err)
					}
					res.Throughput = append(res.Throughput, r)
					rows = append(rows,
						[3]string{fmt.Sprintf("end to end, %s, %d worker(s)", mode, n), fmt.Sprintf("%.0f findings/s (%d in %.1f s)", r.PerSecond, r.Findings, r.Seconds), ""},
						[3]string{fmt.Sprintf("  stored per finding, %s, %d worker(s)", mode, n), fmt.Sprintf("%.0f bytes (input %.0f)", r.BytesPerFind, r.FindingsBytes/float64(r.Findings)), ""},
						[3]string{fmt.Sprintf("  objects / events per 1,000, %s, %d worker(s)", mode, n), fmt.Sprintf("%.2f / %.0f", r.ObjectsPer1k, r.EventsPer1k), ""},
						[3]string{fmt.Sprintf("  worker peak heap / RSS, %s, %d worker(s)", mode, n), fmt.Sprintf("%.0f / %.0f MB", r.PeakHeapMB, r.PeakRSSMB), ""},
					)
				}
			}
		default:
			log.Fatalf("unknown scenario %q", s)
		}
	}
	// gdexport against the machine's own limits, mode by mode.
	for _, tp := range res.Throughput {
		for _, lim := range res.Limits {
			if lim.Durability != tp.Durability || lim.HopPerSec == 0 {
				continue
			}
			goal := ""
			switch {
			case tp.Durability == bench.Fast && tp.Workers == 1:
				goal = "≥ 15,000 findings/s"
			case tp.Durability == bench.Strict:
				goal = "≥ 50% of the strict hop"
			}
			events := ""
			if !tp.Events {
				events = " without events"
				goal = ""
			}
			rows = append(rows, [3]string{fmt.Sprintf("end to end%s / one hop, %s, %d worker(s)", events, tp.Durability, tp.Workers),
				fmt.Sprintf("%.0f%% (%.0f of %.0f findings/s)", 100*tp.PerSecond/lim.HopPerSec, tp.PerSecond, lim.HopPerSec), goal})
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tresult\tgoal")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r[0], r[1], r[2])
	}
	tw.Flush()
	outPath := *out
	if outPath == "" {
		outPath = filepath.Join("testing", "bench", "results", time.Now().UTC().Format("2006-01-02")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		log.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(outPath, append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println("results written to", outPath)
}
