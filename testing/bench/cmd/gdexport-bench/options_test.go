package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, args ...string) (options, error) {
	t.Helper()
	fs := flag.NewFlagSet("gdexport-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseOptions(fs, args)
}

func TestOptionsRefuseBadValuesNamingThem(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenarios", "bogus"}, `unknown scenario "bogus": want one of gobench, limits`},
		{[]string{"-scenarios", "limits,"}, `-scenarios "limits,": an empty item`},
		{[]string{"-scenarios", "limits,limits"}, `"limits" appears twice`},
		{[]string{"-modes", "bogus"}, `unknown durability mode "bogus": want fast or strict`},
		{[]string{"-modes", "fast,fast"}, `"fast" appears twice`},
		{[]string{"-workers", "abc"}, `worker count "abc": want a whole number from 1 to 16`},
		{[]string{"-workers", "0"}, `worker count "0"`},
		{[]string{"-workers", "-1"}, `worker count "-1"`},
		{[]string{"-workers", "1x"}, `worker count "1x"`},
		{[]string{"-workers", "1,1"}, `"1" appears twice`},
		{[]string{"-findings", "0"}, `-findings 0: want a positive number`},
		{[]string{"-findings", "-5"}, `-findings -5`},
		{[]string{"-pending", "0"}, `-pending 0`},
		{[]string{"-latency-rate", "0"}, `-latency-rate 0`},
		{[]string{"-latency-findings", "0"}, `-latency-findings 0`},
		{[]string{"-s3-findings", "0"}, `-s3-findings 0`},
		{[]string{"-latency-rate-strict", "-1"}, `-latency-rate-strict -1`},
		{[]string{"-window", "0s"}, `-window 0s: want at least 10s`},
		{[]string{"-out", dir}, `a folder; want a file path`},
		{[]string{"-out", filepath.Join(dir, "missing", "r.json")}, `folder ` + filepath.Join(dir, "missing")},
		{[]string{"gobench"}, `unexpected argument "gobench"`},
	} {
		args := tc.args
		if !strings.Contains(strings.Join(args, " "), "-out") {
			args = append([]string{"-out", out}, args...)
		}
		_, err := parse(t, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Error("-out into a missing folder created it")
	}
}

func TestOptionsDefaults(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.json")
	o, err := parse(t, "-out", out, "-workers", "1, 2")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.scenarios, ",") != "gobench,limits,throughput,latency,s3,pending" || len(o.workers) != 2 || o.workers[1] != 2 ||
		strings.Join(o.modes, ",") != "fast,strict" || o.findings != 100_000 || o.pending != 1_000_000 {
		t.Errorf("defaults %+v", o)
	}
}

// A narrowed run never writes the full run's file.
func TestDefaultOutOfAPartialRun(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	if got := defaultOut(Scenarios, now); got != filepath.Join("testing", "bench", "results", "2026-12-04.json") {
		t.Errorf("full run writes %s", got)
	}
	if got := defaultOut([]string{"throughput", "s3"}, now); got != filepath.Join("testing", "bench", "results", "partial-2026-12-04-throughput+s3.json") {
		t.Errorf("partial run writes %s", got)
	}
}
