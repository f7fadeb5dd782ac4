package process

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/export"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/generator"
	"github.com/gdexport/gdexport/testing/natstest"
)

// versionKey names a finding version: id and (updatedAt, count).
type versionKey struct {
	id        string
	updatedAt int64
	count     int64
}

func (v versionKey) newer(o versionKey) bool {
	if v.updatedAt != o.updatedAt {
		return v.updatedAt > o.updatedAt
	}
	return v.count > o.count
}

// TestWindowsWithWorkersKilled runs three worker processes on one NATS
// server with 3-second update windows, publishes findings with up to 20
// versions each in random order, and kills two workers with -9 (and
// restarts them) mid-run. Every id's latest active version must be exported
// exactly once, no line may appear twice, every id's exported versions must
// rise in the order they were sealed, an update window must hold each id at
// most once, every object must hold exactly its sealed batch, and events
// must match the exported lines.
func TestWindowsWithWorkersKilled(t *testing.T) {
	_, url := natstest.Start(t)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, url, "windowOverride: 3s\n")
	workers := []*Worker{
		StartWorker(t, binary, "worker-1", "--config", cfgPath),
		StartWorker(t, binary, "worker-2", "--config", cfgPath),
		StartWorker(t, binary, "worker-3", "--config", cfgPath),
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	e2e.Eventually(t, 30*time.Second, "FINDINGS stream created by the workers", func() bool {
		_, err := js.Stream(context.Background(), natsx.StreamFindings)
		return err == nil
	})

	// The plan: every version, and per id its latest.
	latest := map[string]versionKey{}
	latestActive := map[string]bool{}
	var raws [][]byte
	ids := map[string]bool{}
	err = generator.Generate(generator.Config{Seed: 11, Versions: 40_000, MaxVersionsPerID: 20, Shuffle: true}, func(raw []byte) error {
		f, err := decode.Decode(raw)
		if err != nil {
			return err
		}
		ids[f.ID] = true
		v := versionKey{f.ID, f.UpdatedAt, f.Count}
		if cur, ok := latest[f.ID]; !ok || v.newer(cur) {
			latest[f.ID] = v
			latestActive[f.ID] = !f.Archived
		}
		raws = append(raws, raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 10_000 {
		t.Fatalf("only %d finding ids generated, want at least 10,000", len(ids))
	}

	// Publish over about 20 seconds, so that several windows close while
	// findings arrive; kill two workers on the way.
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		for i, raw := range raws {
			f, _ := decode.Decode(raw)
			if _, err := js.PublishMsgAsync(&nats.Msg{Subject: pipeline.IngestSubject(f.Region, f.AccountID), Data: raw,
				Header: nats.Header{jetstream.MsgIDHeader: {f.VersionKey()}}}); err != nil {
				done <- err
				return
			}
			if i%500 == 499 {
				<-js.PublishAsyncComplete()
				time.Sleep(250 * time.Millisecond)
			}
		}
		<-js.PublishAsyncComplete()
		done <- nil
	}()
	time.Sleep(6 * time.Second)
	workers[1].Kill()
	workers[1] = StartWorker(t, binary, "worker-2-restarted", "--config", cfgPath)
	time.Sleep(6 * time.Second)
	workers[2].Kill()
	time.Sleep(2 * time.Second)
	workers[2] = StartWorker(t, binary, "worker-3-restarted", "--config", cfgPath)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	objects := e2e.NewObjectReader(filepath.Join(dir, "export"), filepath.Join(dir, "keys", "local-master.key"))
	// Objects are immutable once written (a rewrite has the same lines),
	// so each is decoded once however often the test polls.
	decoded := map[string][]versionKey{}
	exported := func() map[versionKey]int {
		out := map[versionKey]int{}
		for _, o := range objects.Read(t) {
			vs, ok := decoded[o.Path]
			if !ok {
				for _, l := range o.Lines {
					f, err := decode.Decode([]byte(l))
					if err != nil {
						t.Fatalf("exported line does not decode: %v", err)
					}
					vs = append(vs, versionKey{f.ID, f.UpdatedAt, f.Count})
				}
				decoded[o.Path] = vs
			}
			for _, v := range vs {
				out[v]++
			}
		}
		return out
	}
	allLatest := func() bool {
		got := exported()
		for id, v := range latest {
			if latestActive[id] && got[v] == 0 {
				return false
			}
		}
		return true
	}
	t.Cleanup(func() {
		if t.Failed() {
			e2e.LogConsumers(t, js, natsx.StreamFindings, natsx.StreamBatches)
		}
	})
	e2e.Eventually(t, 3*time.Minute, "every id's latest active version exported", allLatest)
	// The last windows may still be flushing: wait until none is pending.
	flushes, err := js.KeyValue(context.Background(), natsx.BucketFlushes)
	if err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, time.Minute, "no update window pending", func() bool {
		keys, err := flushes.ListKeys(context.Background())
		if err != nil {
			return false
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		return n == 0
	})
	elapsed := time.Since(start)

	// Sealed batches by id, to check each object against its composition.
	batches := map[string]*pipeline.Batch{}
	e2e.Eventually(t, 30*time.Second, "every object written", func() bool {
		batches = map[string]*pipeline.Batch{}
		for _, m := range e2e.ReadStream(t, js, natsx.StreamBatches, natsx.SubjectBatches) {
			b, err := export.ParseBatch(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !b.Abandoned && len(b.Refs) > 0 {
				batches[b.ID] = b
			}
		}
		return len(objects.Read(t)) >= len(batches)
	})

	lineSeen := map[string]string{}
	perID := map[string][]struct {
		v      versionKey
		sealed int64
	}{}
	perWindow := map[string]int{}
	lines := 0
	for _, o := range objects.Read(t) {
		name := filepath.Base(o.Path)
		parts := strings.Split(strings.TrimSuffix(name, ".jsonl.gz.enc"), "-")
		b := batches[parts[2]]
		if b == nil {
			t.Errorf("object %s has no sealed batch", o.Path)
			continue
		}
		if len(o.Lines) != len(b.Refs) {
			t.Errorf("object %s holds %d lines, its batch %d", o.Path, len(o.Lines), len(b.Refs))
		}
		for i, l := range o.Lines {
			lines++
			if prev, dup := lineSeen[l]; dup {
				t.Errorf("line in %s and %s: %.80s", prev, o.Path, l)
			}
			lineSeen[l] = o.Path
			f, _ := decode.Decode([]byte(l))
			if f.Archived {
				t.Errorf("archived version exported in %s: %s", o.Path, f.ID)
			}
			if i < len(b.Refs) && (b.Refs[i].ID != f.ID || b.Refs[i].UpdatedAt != f.UpdatedAt) {
				t.Errorf("object %s line %d is %s@%d, its batch says %s@%d", o.Path, i, f.ID, f.UpdatedAt, b.Refs[i].ID, b.Refs[i].UpdatedAt)
			}
			v := versionKey{f.ID, f.UpdatedAt, f.Count}
			perID[f.ID] = append(perID[f.ID], struct {
				v      versionKey
				sealed int64
			}{v, b.SealedAt})
			if b.Lane == pipeline.LaneUpdate {
				k := fmt.Sprintf("%s/%d/%s", b.Destination, b.Window, f.ID)
				perWindow[k]++
				if perWindow[k] > 1 {
					t.Errorf("id %s exported twice in window %d of destination %s", f.ID, b.Window, b.Destination)
				}
			}
		}
	}
	got := exported()
	for id, v := range latest {
		if latestActive[id] && got[v] != 1 {
			t.Errorf("latest version of %s exported %d times", id, got[v])
		}
	}
	updates := 0
	for id, vs := range perID {
		sort.Slice(vs, func(i, j int) bool { return vs[i].sealed < vs[j].sealed })
		for i := 1; i < len(vs); i++ {
			updates++
			if !vs[i].v.newer(vs[i-1].v) && vs[i].sealed != vs[i-1].sealed {
				t.Errorf("id %s: version %d/%d exported after the newer %d/%d", id, vs[i].v.updatedAt, vs[i].v.count, vs[i-1].v.updatedAt, vs[i-1].v.count)
			}
		}
	}
	if updates == 0 {
		t.Error("no update was exported: the update lane was not exercised")
	}

	// Events: one per exported line; repeats only with the same event id.
	events := e2e.ReadStream(t, js, natsx.StreamEvents, natsx.SubjectEvents)
	eventIDs := map[string]int{}
	for _, ev := range events {
		var env struct {
			ID     string          `json:"id"`
			Detail json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal(ev.Data, &env); err != nil {
			t.Fatal(err)
		}
		if _, ok := lineSeen[string(env.Detail)]; !ok {
			t.Errorf("event %s carries a finding that was not exported", env.ID)
		}
		eventIDs[env.ID]++
	}
	dupEvents := len(events) - len(eventIDs)
	if len(eventIDs) != lines {
		t.Errorf("%d distinct events for %d exported lines", len(eventIDs), lines)
	}
	accepted := 0
	for id := range latest {
		if latestActive[id] {
			accepted++
		}
	}
	t.Logf("windows with 2 workers killed: versions in %d, ids %d, latest active %d, lines exported %d (of which later versions %d), objects %d, duplicate lines 0, repeated events %d, lost %d, %.1fs",
		len(raws), len(ids), accepted, lines, updates, len(objects.Read(t)), dupEvents, accepted-countLatest(got, latest, latestActive), elapsed.Seconds())
	for _, w := range workers {
		if strings.Contains(w.Output(), "panic") {
			t.Errorf("%s panicked:\n%s", w.Name, w.Output())
		}
	}
}

func countLatest(got map[versionKey]int, latest map[string]versionKey, active map[string]bool) int {
	n := 0
	for id, v := range latest {
		if active[id] && got[v] > 0 {
			n++
		}
	}
	return n
}
