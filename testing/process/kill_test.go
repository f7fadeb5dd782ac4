package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/generator"
	"github.com/gdexport/gdexport/testing/natstest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gdexport-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeConfig(t *testing.T, dir, url string, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`dataDir: %s
nats: {url: %q}
http: {listen: "127.0.0.1:0"}
newFindingDelay: 500ms
maxBatchFindings: 400
defaultDestination: {destinationType: LOCAL}
%s`, dir, url, extra)
	p := filepath.Join(dir, "gdexport.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKillWorkerMidFlight kills a worker process with SIGKILL while findings
// are in flight, starts it again, and asserts every accepted finding version
// is exported exactly once and no line appears in two different objects.
func TestKillWorkerMidFlight(t *testing.T) {
	interrupted(t, "kill -9", func(w *Worker) {
		w.Kill()
	})
}

// TestStopWorkerMidFlight stops a worker with SIGTERM while findings are in
// flight: it must exit 0 within its grace period having acked nothing it
// did not deliver, and a restarted worker exports the rest, each once.
func TestStopWorkerMidFlight(t *testing.T) {
	interrupted(t, "SIGTERM", func(w *Worker) {
		if !w.Stop(30 * time.Second) {
			t.Errorf("worker did not exit 0 within 30s of SIGTERM:\n%s", w.Output())
		}
		if !strings.Contains(w.Output(), "final export summary") {
			t.Errorf("stopped worker logged no final summary")
		}
	})
}

// interrupted publishes generated findings at a bounded rate, interrupts the
// worker with stop once some are exported, starts a new worker, and checks
// that every accepted finding version is exported exactly once.
func interrupted(t *testing.T, what string, stop func(w *Worker)) {
	_, url := natstest.Start(t)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, url, "")
	w1 := StartWorker(t, binary, "worker-1", "--config", cfgPath)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	e2e.Eventually(t, 30*time.Second, "FINDINGS stream created by the worker", func() bool {
		_, err := js.Stream(context.Background(), "FINDINGS")
		return err == nil
	})

	const total = 6000
	want := map[string]bool{}
	var raws [][]byte
	err = generator.Generate(generator.Config{Seed: 7, Versions: total, MaxVersionsPerID: 1}, func(raw []byte) error {
		f, err := decode.Decode(raw)
		if err != nil {
			return err
		}
		if !f.Archived {
			want[string(f.Raw)] = true
		}
		raws = append(raws, raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Publish at a bounded rate so that the interruption lands mid-flight.
	published := make(chan error, 1)
	go func() {
		for i, raw := range raws {
			f, _ := decode.Decode(raw)
			if _, err := js.PublishMsgAsync(&nats.Msg{Subject: pipeline.IngestSubject(f.Region, f.AccountID), Data: raw,
				Header: nats.Header{jetstream.MsgIDHeader: {f.VersionKey()}}}); err != nil {
				published <- err
				return
			}
			if i%200 == 199 {
				<-js.PublishAsyncComplete()
				time.Sleep(150 * time.Millisecond) // about 6 s in all: the interruption lands mid-flight
			}
		}
		<-js.PublishAsyncComplete()
		published <- nil
	}()

	objects := e2e.NewObjectReader(filepath.Join(dir, "export"), filepath.Join(dir, "keys", "local-master.key"))
	count := func() int {
		n := 0
		for _, o := range objects.Read(t) {
			n += len(o.Lines)
		}
		return n
	}
	e2e.Eventually(t, 60*time.Second, "some findings exported before the interruption", func() bool { return count() > 300 })
	stop(w1)
	before := count()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if before >= len(want) {
		t.Fatalf("everything (%d) was exported before the interruption: the test proves nothing", before)
	}
	start := time.Now()
	w2 := StartWorker(t, binary, "worker-1-restarted", "--config", cfgPath)
	t.Cleanup(func() {
		if t.Failed() {
			e2e.LogConsumers(t, js, "FINDINGS", "BATCHES")
			w2.Dump()
		}
	})
	e2e.Eventually(t, 90*time.Second, "every accepted finding exported after the restart", func() bool { return count() >= len(want) })

	seen := map[string]string{}
	for _, o := range objects.Read(t) {
		for _, l := range o.Lines {
			if prev, dup := seen[l]; dup {
				t.Errorf("line in two objects %s and %s: %.100s", prev, o.Path, l)
			}
			seen[l] = o.Path
			if !want[l] {
				t.Errorf("unexpected line in %s: %.100s", o.Path, l)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("exported %d distinct lines, want %d", len(seen), len(want))
	}
	t.Logf("%s mid-flight: in %d, accepted %d, exported before %d, exported %d, lost %d, %.1fs after restart",
		what, total, len(want), before, len(seen), len(want)-len(seen), time.Since(start).Seconds())
	for _, w := range []*Worker{w1, w2} {
		if strings.Contains(w.Output(), "panic") {
			t.Errorf("%s panicked:\n%s", w.Name, w.Output())
		}
	}
}
