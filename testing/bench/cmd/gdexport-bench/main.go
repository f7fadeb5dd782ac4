// Command gdexport-bench runs gdexport's benchmarks on this machine (see
// package bench), prints one table and writes the results as JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
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
	// Options are the flags of the run; Errors the scenarios that failed.
	Options []string `json:"options"`
	Errors  []string `json:"errors,omitempty"`
}

func main() {
	o, err := parseOptions(flag.CommandLine, os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "gdexport-bench:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "gdexport-bench:", err)
		os.Exit(1)
	}
}

// run runs o's scenarios in order. A failing scenario is reported and the
// others still run; the table and the JSON hold what was measured.
func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir := o.work
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "gdexport-bench"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	bench.ProfileDir = o.profile
	bins, err := bench.Build(filepath.Join(dir, "bin"))
	if err != nil {
		return err
	}
	res := Results{Date: time.Now().UTC().Format(time.RFC3339), Machine: fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU()), Options: o.args}
	var rows [][3]string
	var failed []string
	for _, s := range o.scenarios {
		if ctx.Err() != nil {
			failed = append(failed, s+": not run (interrupted)")
			continue
		}
		err := func() error {
			switch s {
			case "pending":
				d := filepath.Join(dir, "pending")
				r, err := bench.Pending(ctx, bins, d, o.pending, o.window)
				if err != nil {
					return fmt.Errorf("pending: %v", err)
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
				for _, mode := range o.modes {
					r, err := bench.Limits(ctx, bins, filepath.Join(dir, "limits-"+mode), mode, o.findings)
					if err != nil {
						return fmt.Errorf("limits %s: %v", mode, err)
					}
					res.Limits = append(res.Limits, r)
					rows = append(rows,
						[3]string{fmt.Sprintf("machine: JetStream publish, %s", mode), fmt.Sprintf("%.0f findings/s", r.PublishPerSec), ""},
						[3]string{fmt.Sprintf("machine: one hop (fetch, publish, ack), %s", mode), fmt.Sprintf("%.0f findings/s", r.HopPerSec), ""},
					)
					if mode == o.modes[0] {
						rows = append(rows,
							[3]string{"gzip level 6, the default (gdexport / standard library)", fmt.Sprintf("%.0f / %.0f MB/s (%.2f×), ratio %.1f / %.1f", r.GzipMBps, r.StdlibGzipMBps, r.GzipMBps/r.StdlibGzipMBps, r.GzipRatio, r.StdlibRatio), "≥ 1.5× the standard library"},
							[3]string{fmt.Sprintf("gzip output on %d findings: level 6 / level 8 / gzip(1) -6", r.GzipFindings), fmt.Sprintf("%d / %d / %d B", r.GzipBytes, r.Gzip8Bytes, r.GzipCmdBytes), "no larger than gzip -6"},
							[3]string{"gzip level 8 speed (gdexport / standard library level 6)", fmt.Sprintf("%.0f MB/s (%.2f×)", r.Gzip8MBps, r.Gzip8MBps/r.StdlibGzipMBps), ""},
						)
					}
				}
			case "objects-only":
				// The same as throughput's first run, without the NATS event
				// bus: what objects alone cost.
				mode := o.modes[0]
				r, err := bench.Throughput(ctx, bins, filepath.Join(dir, "objects-only-"+mode), mode, 1, o.findings, time.Second, false)
				if err != nil {
					return fmt.Errorf("objects-only %s: %v", mode, err)
				}
				res.Throughput = append(res.Throughput, r)
				rows = append(rows, [3]string{fmt.Sprintf("end to end without events, %s, 1 worker", mode), fmt.Sprintf("%.0f findings/s (%d in %.1f s)", r.PerSecond, r.Findings, r.Seconds), ""})
			case "gobench":
				r, err := bench.GoBench(ctx, bench.HotPathPackages)
				if err != nil {
					return fmt.Errorf("gobench: %v", err)
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
				mode := o.modes[0]
				r, err := bench.S3(ctx, bins, filepath.Join(dir, "s3"), mode, o.s3Findings)
				if err != nil {
					return fmt.Errorf("s3: %v", err)
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
				for _, mode := range o.modes {
					rates := []int{o.latencyRate}
					if mode == bench.Strict && o.strictRate > 0 && o.strictRate != o.latencyRate {
						rates = append(rates, o.strictRate)
					}
					for _, rate := range rates {
						d := filepath.Join(dir, fmt.Sprintf("latency-%s-%d", mode, rate))
						r, err := bench.Latency(ctx, bins, d, mode, rate, o.latencyFindings, time.Second)
						if err != nil {
							return fmt.Errorf("latency %s %d/s: %v", mode, rate, err)
						}
						res.Latency = append(res.Latency, r)
						goal := ""
						if rate == o.latencyRate {
							goal = "p99 ≤ 2 s"
						}
						rows = append(rows, [3]string{fmt.Sprintf("new-finding latency, %s, %d/s offered (%.0f/s achieved), delay 1s", mode, r.Offered, r.Achieved),
							fmt.Sprintf("p50 %.2f s, p95 %.2f s, p99 %.2f s, max %.2f s", r.P50, r.P95, r.P99, r.Max), goal})
					}
				}
			case "throughput":
				for _, mode := range o.modes {
					for _, n := range o.workers {
						d := filepath.Join(dir, fmt.Sprintf("throughput-%s-%d", mode, n))
						r, err := bench.Throughput(ctx, bins, d, mode, n, o.findings, time.Second, true)
						if err != nil {
							return fmt.Errorf("throughput %s %d: %v", mode, n, err)
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
			}
			return nil
		}()
		if err != nil {
			log.Printf("%s failed: %v", s, err)
			failed = append(failed, fmt.Sprintf("%s: %v", s, err))
		}
	}
	res.Errors = failed
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
	for _, f := range failed {
		fmt.Println("FAILED", f)
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Println("results written to", o.out)
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d scenarios failed", len(failed), len(o.scenarios))
	}
	return nil
}
