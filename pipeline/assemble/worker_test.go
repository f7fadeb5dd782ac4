package assemble_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/assemble"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/sinks/natsbus"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/generator"
	"github.com/gdexport/gdexport/testing/natstest"
)

const samplesDir = "../../testing/testdata/samples"

type harness struct {
	t       *testing.T
	nc      *nats.Conn
	js      jetstream.JetStream
	dataDir string
	root    string
	worker  *assemble.Worker
	stop    context.CancelFunc
	done    chan error
}

func startHarness(t *testing.T) *harness { return startHarnessWith(t, nil) }

// startHarnessWith starts a worker whose configuration configure may change
// (before defaults are applied) on an embedded NATS server.
func startHarnessWith(t *testing.T, configure func(*config.Config)) *harness {
	t.Helper()
	_, url := natstest.Start(t)
	dir := t.TempDir()
	cfg := &config.Config{
		DataDir:            dir,
		NATS:               config.NATS{URL: url},
		HTTP:               config.HTTP{Listen: "127.0.0.1:0"},
		NewFindingDelay:    config.Duration(300 * time.Millisecond),
		DefaultDestination: &config.Destination{DestinationType: "LOCAL"},
		// The worker shares the test binary: no soft memory limit for it.
		MemoryLimit: new(config.ByteSize),
	}
	if configure != nil {
		configure(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	w := assemble.New(assemble.Options{Config: cfg, Log: log, SummaryEvery: -1})
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, dataDir: dir, worker: w, stop: cancel, done: make(chan error, 1)}
	if cfg.DefaultDestination != nil {
		h.root = cfg.DefaultDestination.Root
	}
	go func() { h.done <- w.Run(ctx) }()
	select {
	case <-w.Ready():
	case err := <-h.done:
		t.Fatalf("worker ended before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker not ready after 20s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop within 30s")
		}
	})
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.nc = nc
	h.js, _ = jetstream.New(nc)
	return h
}

func (h *harness) publish(subject, msgID string, data []byte, hdr nats.Header) {
	h.t.Helper()
	m := &nats.Msg{Subject: subject, Data: data, Header: hdr}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
		h.t.Fatalf("publish to %s: %v", subject, err)
	}
}

func (h *harness) lines() []string {
	var all []string
	for _, o := range e2e.ReadObjects(h.t, h.root, filepath.Join(h.dataDir, "keys", "local-master.key")) {
		all = append(all, o.Lines...)
	}
	sort.Strings(all)
	return all
}

// sampleFindings splits every sample finding file as publish would.
func sampleFindings(t *testing.T) []decode.Item {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(samplesDir, "*.json"))
	var items []decode.Item
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "filter_") {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		err = decode.Split(fh, func(it decode.Item) error {
			if it.Err != nil {
				t.Fatalf("%s %s: %v", f, it.Pos, it.Err)
			}
			items = append(items, it)
			return nil
		})
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(items) < 10 {
		t.Fatalf("only %d sample findings", len(items))
	}
	return items
}

// TestEndToEnd publishes the shared samples, generated findings (archived
// ones among them) and raw malformed messages straight to the ingest
// subject, and asserts the exact exported lines, dead letters and events.
func TestEndToEnd(t *testing.T) {
	h := startHarness(t)
	want := map[string]bool{}
	archived := 0

	for _, it := range sampleFindings(t) {
		f, err := decode.Decode(it.Raw)
		if err != nil {
			t.Fatalf("sample %s invalid: %v", it.Pos, err)
		}
		if f.Archived {
			archived++
		} else {
			want[string(f.Raw)] = true
		}
		h.publish(pipeline.IngestSubject(it.Region, it.AccountID), f.VersionKey(), it.Raw, nil)
	}
	err := generator.Generate(generator.Config{Seed: 42, Versions: 300, MaxVersionsPerID: 1, ArchivedShare: 0.1}, func(raw []byte) error {
		f, err := decode.Decode(raw)
		if err != nil {
			return err
		}
		if f.Archived {
			archived++
		} else {
			want[string(f.Raw)] = true
		}
		h.publish(pipeline.IngestSubject(f.Region, f.AccountID), f.VersionKey(), raw, nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if archived == 0 {
		t.Fatal("no archived finding among the inputs: the test would not prove they are dropped")
	}

	// A valid finding with a repeated header and an unknown one: exported.
	var tmpl map[string]any
	raw, _ := os.ReadFile(filepath.Join(samplesDir, "finding_elastic_rds_anomalous_login.json"))
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	tmpl["id"] = "repeatedheader0000000000000000001"
	tmpl["someFieldNobodyKnows"] = map[string]any{"nested": []any{1, "two", nil}}
	odd, _ := json.Marshal(tmpl)
	oddFinding, err := decode.Decode(odd)
	if err != nil {
		t.Fatal(err)
	}
	want[string(oddFinding.Raw)] = true
	h.publish(pipeline.IngestSubject(oddFinding.Region, oddFinding.AccountID), "", odd,
		nats.Header{"X-Repeated": {"a", "b"}, "X-Unknown": {"c"}})

	// Raw malformed messages, straight to the ingest subject.
	valid := string(oddFinding.Raw)
	bad := []struct {
		data   string
		reason string
	}{
		{`this is not json`, "not JSON"},
		{strings.Replace(valid, `"id":"repeatedheader0000000000000000001"`, `"idx":"x"`, 1), "missing id"},
		{strings.Replace(valid, `"accountId":"`+oddFinding.AccountID+`"`, `"accountId":"123456789"`, 1), `accountId "123456789"`},
		{strings.Replace(valid, `"region":"`+oddFinding.Region+`"`, `"region":"moon-1"`, 1), `region "moon-1"`},
		{strings.Replace(valid, `"updatedAt":"`, `"updatedAt":"yesterday`, 1), `updatedAt "yesterday`},
	}
	for i, b := range bad {
		if b.data == valid {
			t.Fatalf("malformed case %d did not change the finding", i)
		}
		h.publish("findings.us-east-1.111122223333", "", []byte(b.data), nil)
	}

	e2e.Eventually(t, 30*time.Second, "every accepted finding exported", func() bool { return len(h.lines()) >= len(want) })
	got := h.lines()
	gotSet := map[string]int{}
	for _, l := range got {
		gotSet[l]++
	}
	for l, n := range gotSet {
		if n != 1 {
			t.Errorf("line exported %d times: %.120s", n, l)
		}
		if !want[l] {
			t.Errorf("unexpected line exported: %.200s", l)
		}
	}
	for l := range want {
		if gotSet[l] == 0 {
			t.Errorf("line not exported: %.200s", l)
		}
	}

	var dead []e2e.StreamMsg
	e2e.Eventually(t, 10*time.Second, "dead letters", func() bool {
		dead = e2e.ReadStream(t, h.js, natsx.StreamDeadLetter, natsx.SubjectDeadLetter)
		return len(dead) >= len(bad)
	})
	if len(dead) != len(bad) {
		t.Fatalf("dead letters = %d, want %d", len(dead), len(bad))
	}
	for i, b := range bad {
		reason := dead[i].Header[natsx.HeaderReason]
		if len(reason) != 1 || !strings.Contains(reason[0], b.reason) {
			t.Errorf("dead letter %d reason = %q, want it to mention %q", i, reason, b.reason)
		}
		if string(dead[i].Data) != b.data {
			t.Errorf("dead letter %d body altered", i)
		}
	}

	var events []e2e.StreamMsg
	e2e.Eventually(t, 10*time.Second, "one event per exported line", func() bool {
		events = e2e.ReadStream(t, h.js, natsx.StreamEvents, natsx.SubjectEvents)
		return len(events) >= len(got)
	})
	if len(events) != len(got) {
		t.Fatalf("events = %d, want %d (one per exported line)", len(events), len(got))
	}
	ids := map[string]bool{}
	for _, ev := range events {
		var env struct {
			Version    string          `json:"version"`
			ID         string          `json:"id"`
			DetailType string          `json:"detail-type"`
			Source     string          `json:"source"`
			Account    string          `json:"account"`
			Region     string          `json:"region"`
			Detail     json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal(ev.Data, &env); err != nil {
			t.Fatalf("event is not JSON: %v", err)
		}
		f, err := decode.Decode(env.Detail)
		if err != nil {
			t.Fatalf("event detail: %v", err)
		}
		if !want[string(env.Detail)] || env.DetailType != "GuardDuty Finding" || env.Source != "aws.guardduty" || env.Version != "0" {
			t.Errorf("event envelope wrong: %.200s", ev.Data)
		}
		if ev.Subject != natsbus.Subject(f.Region, f.AccountID) || env.Account != f.AccountID || env.Region != f.Region {
			t.Errorf("event on %s account %s region %s, want the finding's own (default destination)", ev.Subject, env.Account, env.Region)
		}
		if ids[env.ID] {
			t.Errorf("event id %s repeated", env.ID)
		}
		ids[env.ID] = true
	}
	st := h.worker.Stats()
	if d := st.DroppedByReason(); d[pipeline.DropArchived] != int64(archived) || d[pipeline.DropInvalid] != int64(len(bad)) {
		t.Errorf("dropped = %v, want archived %d invalid %d", d, archived, len(bad))
	}
}

// get fetches a path of the worker's HTTP listener.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.worker.HTTPAddr() + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The listener serves the probes and metrics that count what the worker
// did.
func TestHealthAndMetrics(t *testing.T) {
	h := startHarness(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := h.get(p); code != 200 {
			t.Errorf("%s = %d %q, want 200", p, code, body)
		}
	}
	items := sampleFindings(t)
	archived := 0
	for _, it := range items {
		f, _ := decode.Decode(it.Raw)
		if f.Archived {
			archived++
		}
		h.publish(pipeline.IngestSubject(it.Region, it.AccountID), f.VersionKey(), it.Raw, nil)
	}
	h.publish("findings.us-east-1.111122223333", "", []byte("not json"), nil)
	e2e.Eventually(t, 30*time.Second, "samples exported", func() bool { return len(h.lines()) == len(items)-archived })
	var body string
	e2e.Eventually(t, 10*time.Second, "metrics counting the export", func() bool {
		_, body = h.get("/metrics")
		return strings.Contains(body, fmt.Sprintf("gdexport_findings_received_total %d", len(items)+1)) &&
			strings.Contains(body, `gdexport_findings_exported_total{destination=`)
	})
	for _, want := range []string{
		fmt.Sprintf(`gdexport_findings_dropped_total{filter="",reason="archived"} %d`, archived),
		`gdexport_findings_dropped_total{filter="",reason="invalid"} 1`,
		`gdexport_export_latency_seconds_bucket{lane="new",le="+Inf"}`,
		`gdexport_objects_written_total{destination=`,
		`gdexport_events_published_total{destination=`,
		`go_memstats_heap_inuse_bytes`,
		// A LOCAL destination calls neither S3 nor KMS.
		`gdexport_s3_requests_total{purpose="export"} 0`,
		`gdexport_kms_calls_total{purpose="export"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	exported := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "gdexport_findings_exported_total{") {
			var n int
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%d", &n)
			exported += n
		}
	}
	if exported != len(items)-archived {
		t.Errorf("exported total in metrics = %d, want %d", exported, len(items)-archived)
	}
}
