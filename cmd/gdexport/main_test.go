package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

// gdexport runs the CLI in process and returns its exit code and output.
func gdexport(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		// A typo in a command must not pass for success.
		{"unknown command", []string{"expotr"}, "unknown command"},
		// publish with nothing to publish is a usage error, not a no-op.
		{"publish without input", []string{"publish"}, "nothing to publish"},
		{"negative generate", []string{"publish", "--generate", "-3"}, "--generate -3"},
		{"unknown flag", []string{"run", "--no-such-flag"}, "unknown flag"},
		// A misspelt log level must not silently fall back to info.
		{"bad log level", []string{"--log-level", "verbose", "publish", "x"}, `--log-level "verbose"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := gdexport(t, "", c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (usage error); stderr %q", code, errOut)
			}
			if !strings.Contains(errOut, c.want) {
				t.Errorf("stderr %q does not mention %q", errOut, c.want)
			}
		})
	}
}

// publish refuses what it cannot route, naming file, position and reason,
// publishes the rest, and exits 1.
func TestPublishReportsRefusedInputs(t *testing.T) {
	_, url := natstest.Start(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := natsx.Ensure(ctx, js, natsx.TopologyConfig{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := gdexport(t, "", "--nats-url", url, "publish", "testdata/mixed.jsonl")
	if code != 1 {
		t.Errorf("exit %d, want 1 (some inputs refused)", code)
	}
	if !strings.Contains(out, "published 2 findings") {
		t.Errorf("stdout %q: want 2 published", out)
	}
	for _, want := range []string{"testdata/mixed.jsonl: line 2: refused:", "testdata/mixed.jsonl: line 3: refused:", "accountId"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not contain %q", errOut, want)
		}
	}
	s, _ := js.Stream(ctx, natsx.StreamFindings)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Errorf("FINDINGS holds %d messages, want 2", info.State.Msgs)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "findings.us-east-1.111122223333" || m.Header.Get(jetstream.MsgIDHeader) != "mixed0000000000000000000000000001:2026-11-30T10:00:00.000Z" {
		t.Errorf("first message on %s with Nats-Msg-Id %q", m.Subject, m.Header.Get(jetstream.MsgIDHeader))
	}

	// Publishing the same file again stores nothing new: Nats-Msg-Id dedupes.
	if code, out, _ := gdexport(t, "", "--nats-url", url, "publish", "testdata/mixed.jsonl"); code != 1 || !strings.Contains(out, "published 0 findings") || !strings.Contains(out, "2 were already stored") {
		t.Errorf("republish: exit %d, %q; want 1 and both counted as already stored", code, out)
	}
	info, _ = s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Errorf("after republishing FINDINGS holds %d messages, want still 2", info.State.Msgs)
	}
}

// One bad input never stops the others: a directory, a finding larger
// than the server's max_payload and a missing file are refused, the rest
// published.
func TestPublishGoesOnAfterBadInputs(t *testing.T) {
	url := startTopology(t)
	dir := t.TempDir()
	big := `{"accountId":"111122223333","region":"us-east-1","id":"big","type":"T","updatedAt":"2026-11-30T10:00:00Z","pad":"` + strings.Repeat("x", 2<<20) + `"}` + "\n"
	good := `{"accountId":"111122223333","region":"us-east-1","id":"good1","type":"T","updatedAt":"2026-11-30T10:00:00Z"}` + "\n"
	bigFile := filepath.Join(dir, "big.jsonl")
	if err := os.WriteFile(bigFile, []byte(good+big+strings.Replace(good, "good1", "good2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := gdexport(t, "", "--nats-url", url, "publish", dir, bigFile, filepath.Join(dir, "missing.json"), "testdata/mixed.jsonl")
	if code != 1 || !strings.Contains(out, "published 4 findings") {
		t.Errorf("exit %d, stdout %q; want 1 and the 4 good findings published", code, out)
	}
	for _, want := range []string{dir + ": refused: is a directory", bigFile + ": line 2: refused: too large", "missing.json: refused:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}

// publish with no server says how to start one.
func TestPublishWithoutServer(t *testing.T) {
	code, _, errOut := gdexport(t, "", "--nats-url", "nats://127.0.0.1:1", "publish", "testdata/mixed.jsonl")
	if code == 0 || !strings.Contains(errOut, "gdexport run") {
		t.Errorf("exit %d, stderr %q: want a failure that says to start gdexport run", code, errOut)
	}
}

// startTopology starts a server with gdexport's streams and buckets, as
// `gdexport run` leaves them.
func startTopology(t *testing.T) string {
	t.Helper()
	_, url := natstest.Start(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := natsx.Ensure(ctx, js, natsx.TopologyConfig{}); err != nil {
		t.Fatal(err)
	}
	return url
}

func TestDetectorGetAndUpdate(t *testing.T) {
	url := startTopology(t)
	code, out, errOut := gdexport(t, "", "--nats-url", url, "detector", "get", "--account", "111122223333", "--region", "us-east-1")
	if code != 0 || !strings.Contains(out, `"findingPublishingFrequency": "SIX_HOURS"`) || !strings.Contains(out, `"stored": false`) {
		t.Fatalf("get of an unknown detector: exit %d, %s %s; want GuardDuty's default SIX_HOURS", code, out, errOut)
	}
	// The first setting applies at once.
	code, out, _ = gdexport(t, "", "--nats-url", url, "detector", "update", "--account", "111122223333", "--region", "us-east-1", "--finding-publishing-frequency", "ONE_HOUR")
	if code != 0 || !strings.Contains(out, `"ONE_HOUR"`) || strings.Contains(out, "pendingChange") {
		t.Fatalf("first update: exit %d, %s", code, out)
	}
	// A change waits for the open window to close.
	code, out, _ = gdexport(t, "", "--nats-url", url, "detector", "update", "--account", "111122223333", "--region", "us-east-1", "--finding-publishing-frequency", "SIX_HOURS")
	if code != 0 || !strings.Contains(out, `"previousFrequency": "ONE_HOUR"`) || !strings.Contains(out, `"effectiveFrom"`) {
		t.Fatalf("change: exit %d, %s; want a pending change from ONE_HOUR", code, out)
	}
	bad := []struct {
		name string
		args []string
		want string
	}{
		{"bad frequency", []string{"--account", "111122223333", "--region", "us-east-1", "--finding-publishing-frequency", "HOURLY"}, `"HOURLY"`},
		{"missing account", []string{"--region", "us-east-1", "--finding-publishing-frequency", "ONE_HOUR"}, "--account is required"},
		{"short account", []string{"--account", "1234", "--region", "us-east-1", "--finding-publishing-frequency", "ONE_HOUR"}, `--account "1234"`},
		{"bad region", []string{"--account", "111122223333", "--region", "useast1", "--finding-publishing-frequency", "ONE_HOUR"}, `--region "useast1"`},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			code, _, errOut := gdexport(t, "", append([]string{"--nats-url", url, "detector", "update"}, b.args...)...)
			if code != 2 || !strings.Contains(errOut, b.want) {
				t.Errorf("exit %d, stderr %q; want 2 naming %s", code, errOut, b.want)
			}
		})
	}
}

func TestHealthcheckExitCodes(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			http.Error(w, "not ready: not connected to NATS", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer healthy.Close()
	addr := strings.TrimPrefix(healthy.URL, "http://")
	if code, out, errOut := gdexport(t, "", "healthcheck", "--http-listen", addr); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("healthy /healthz: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := gdexport(t, "", "healthcheck", "--http-listen", addr, "--ready"); code != 1 || !strings.Contains(errOut, "not connected") {
		t.Errorf("unready /readyz: exit %d, stderr %q; want 1 with the reason", code, errOut)
	}
	// Nothing listening: unhealthy, not a crash.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	if code, _, _ := gdexport(t, "", "healthcheck", "--http-listen", closed); code != 1 {
		t.Errorf("no listener: exit %d, want 1", code)
	}
	if code, _, errOut := gdexport(t, "", "healthcheck", "--http-listen", "nonsense"); code != 2 || !strings.Contains(errOut, `"nonsense"`) {
		t.Errorf("bad address: exit %d, stderr %q, want 2", code, errOut)
	}
}

func TestValidate(t *testing.T) {
	if code, out, errOut := gdexport(t, "", "validate", "--config", "../../deployments/local/gdexport.yaml"); code != 0 || !strings.Contains(out, "valid:") {
		t.Errorf("shipped config: exit %d, %q %q", code, out, errOut)
	}
	code, out, errOut := gdexport(t, "", "validate", "../../pipeline/config/testdata/broken/bad-values.yaml")
	if code != 1 || !strings.Contains(out, `detectors[0].region: "us-est-1"`) || !strings.Contains(errOut, "6 problem(s)") {
		t.Errorf("broken config: exit %d, stdout %q, stderr %q; want 1 with every problem", code, out, errOut)
	}
	if code, _, _ := gdexport(t, "", "validate"); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
	if code, _, errOut := gdexport(t, "", "validate", "--config", "no/such/file.yaml"); code != 2 || !strings.Contains(errOut, "no/such/file.yaml") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}
