package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gdexport/gdexport/testing/bench"
)

// Scenarios are every scenario, in the order of a full run; objects-only
// runs only when asked for.
var Scenarios = []string{"gobench", "limits", "throughput", "latency", "s3", "pending"}

var allScenarios = append(slices.Clone(Scenarios), "objects-only")

// options are a run's checked flags.
type options struct {
	scenarios, modes                         []string
	workers                                  []int
	findings, pending, s3Findings            int
	latencyFindings, latencyRate, strictRate int
	window                                   time.Duration
	out, work, profile                       string
	// args are the flags as given, for the results file.
	args []string
}

// parseOptions reads and checks the flags of args: every value is checked
// before anything runs, and a bad one is named with what is expected.
func parseOptions(fs *flag.FlagSet, args []string) (options, error) {
	var (
		o                          options
		scenarios, modes, workersN string
	)
	fs.StringVar(&scenarios, "scenarios", strings.Join(Scenarios, ","), "comma-separated scenarios to run, of: "+strings.Join(allScenarios, ", "))
	fs.IntVar(&o.pending, "pending", 1_000_000, "pending updated findings in the pending scenario")
	fs.IntVar(&o.findings, "findings", 100_000, "findings per run of limits, throughput and objects-only")
	fs.StringVar(&modes, "modes", "fast,strict", "durability modes (fast, strict) of limits, throughput and latency; the first one's for s3 and objects-only")
	fs.StringVar(&workersN, "workers", "1,2", "worker counts of the throughput runs")
	fs.IntVar(&o.s3Findings, "s3-findings", 20_000, "findings per S3 run")
	fs.IntVar(&o.latencyFindings, "latency-findings", 50_000, "findings of each latency run")
	fs.IntVar(&o.latencyRate, "latency-rate", 5000, "offered findings per second of the latency runs")
	fs.IntVar(&o.strictRate, "latency-rate-strict", 2000, "a second, lower offered rate for the strict latency run (5,000/s is above this machine's strict publish rate); 0 for none")
	fs.DurationVar(&o.window, "window", 5*time.Minute, "update window of the pending scenario (staging 1,000,000 updates takes about 100 s here)")
	fs.StringVar(&o.out, "out", "", "JSON results file (default testing/bench/results/<date>.json for a full run, testing/bench/results/partial-<date>-<scenarios>.json otherwise)")
	fs.StringVar(&o.work, "work", "", "working directory for stores and logs, kept (default a temporary one, removed)")
	fs.StringVar(&o.profile, "profile", "", "directory for CPU profiles of the first worker and nats-server of each throughput run (created if missing)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: every setting is a flag (-h lists them)", fs.Arg(0))
	}
	o.args = args
	var err error
	if o.scenarios, err = list("-scenarios", scenarios, func(s string) error {
		if !slices.Contains(allScenarios, s) {
			return fmt.Errorf("unknown scenario %q: want one of %s", s, strings.Join(allScenarios, ", "))
		}
		return nil
	}); err != nil {
		return o, err
	}
	if o.modes, err = list("-modes", modes, func(m string) error {
		if m != bench.Fast && m != bench.Strict {
			return fmt.Errorf("unknown durability mode %q: want fast or strict", m)
		}
		return nil
	}); err != nil {
		return o, err
	}
	ws, err := list("-workers", workersN, func(w string) error {
		if n, err := strconv.Atoi(w); err != nil || n < 1 || n > 16 {
			return fmt.Errorf("worker count %q: want a whole number from 1 to 16", w)
		}
		return nil
	})
	if err != nil {
		return o, err
	}
	for _, w := range ws {
		n, _ := strconv.Atoi(w)
		o.workers = append(o.workers, n)
	}
	for _, c := range []struct {
		flag string
		v    int
	}{{"-findings", o.findings}, {"-pending", o.pending}, {"-s3-findings", o.s3Findings}, {"-latency-findings", o.latencyFindings}, {"-latency-rate", o.latencyRate}} {
		if c.v < 1 {
			return o, fmt.Errorf("%s %d: want a positive number", c.flag, c.v)
		}
	}
	if o.strictRate < 0 {
		return o, fmt.Errorf("-latency-rate-strict %d: want a positive number, or 0 for none", o.strictRate)
	}
	if o.window < 10*time.Second {
		return o, fmt.Errorf("-window %s: want at least 10s (the updates must be staged within one window)", o.window)
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return o, fmt.Errorf("-profile %s: %w", o.profile, err)
		}
	}
	if o.work != "" {
		if err := os.MkdirAll(o.work, 0o755); err != nil {
			return o, fmt.Errorf("-work %s: %w", o.work, err)
		}
	}
	if o.out == "" {
		o.out = defaultOut(o.scenarios, time.Now())
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return o, fmt.Errorf("results folder: %w", err)
		}
	}
	if err := checkOut(o.out); err != nil {
		return o, err
	}
	return o, nil
}

// list splits a comma-separated flag value, checking each item and
// refusing empty and repeated ones.
func list(flagName, value string, check func(string) error) ([]string, error) {
	var out []string
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%s %q: an empty item; want a comma-separated list", flagName, value)
		}
		if err := check(item); err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		if slices.Contains(out, item) {
			return nil, fmt.Errorf("%s %q: %q appears twice", flagName, value, item)
		}
		out = append(out, item)
	}
	return out, nil
}

// defaultOut is the results file of a run: <date>.json for a full run (the
// one committed), partial-<date>-<scenarios>.json for any other, so that a
// narrowed run never replaces a full one.
func defaultOut(scenarios []string, now time.Time) string {
	date := now.UTC().Format("2006-01-02")
	name := date + ".json"
	if !slices.Equal(scenarios, Scenarios) {
		name = "partial-" + date + "-" + strings.Join(scenarios, "+") + ".json"
	}
	return filepath.Join("testing", "bench", "results", name)
}

// checkOut refuses a results path that cannot be written, before the run
// rather than after it: its folder must exist, and it must not be a folder.
func checkOut(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("-out %s: a folder; want a file path", path)
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("-out %s: folder %s: %w", path, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("-out %s: %s is not a folder", path, dir)
	}
	f, err := os.CreateTemp(dir, ".gdexport-bench-check-*")
	if err != nil {
		return fmt.Errorf("-out %s: cannot write in %s: %w", path, dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
