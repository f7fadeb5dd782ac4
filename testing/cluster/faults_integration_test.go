//go:build integration

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/testing/containers"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/generator"
)

// Every stream and KV bucket of gdexport, by stream name.
var allStreams = []string{
	natsx.StreamFindings, natsx.StreamDeadLetter, natsx.StreamEvents, natsx.StreamBatches,
	"KV_" + natsx.BucketDestinations, "KV_" + natsx.BucketDetectors, "KV_" + natsx.BucketExported,
	"KV_" + natsx.BucketWindows, "KV_" + natsx.BucketFlushes, "KV_" + natsx.BucketFilters, "KV_" + natsx.BucketMembers,
	"KV_" + natsx.BucketStatus,
}

// checkReplicas fails the test unless every stream and bucket is R3 (from
// the workers' nats.replicas: 3) with a leader and two replicas, none of
// them on the node named lost; it returns the leaders by stream.
func (e *env) checkReplicas(lost string) map[string]string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leaders := map[string]string{}
	for _, name := range allStreams {
		s, err := e.js.Stream(ctx, name)
		if err != nil {
			e.t.Errorf("stream %s: %v", name, err)
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			e.t.Errorf("stream %s: %v", name, err)
			continue
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			e.t.Errorf("stream %s: replicas %d, cluster %+v: want R3 with a leader and 2 replicas", name, info.Config.Replicas, info.Cluster)
			continue
		}
		if info.Cluster.Leader == lost {
			e.t.Errorf("stream %s is still led by the lost node %s", name, lost)
		}
		leaders[name] = info.Cluster.Leader
	}
	return leaders
}

// TestNATSNodeLost stops (SIGKILL) the node that leads the FINDINGS stream
// while findings are published: the stream and every other R3 resource
// elect a leader among the two nodes left, publishing goes on (a publish
// that fails during the election is retried), the workers reconnect, and
// every finding is exported once.
func TestNATSNodeLost(t *testing.T) {
	start := time.Now()
	e := setup(t, options{})
	e.startWorkers(2)
	e.checkReplicas("")
	p := newPlan(t, generator.Config{Seed: 41, Versions: 4000, MaxVersionsPerID: 1})
	published := e.publish(p.msgs, 200, 300*time.Millisecond)
	e2e.Eventually(t, time.Minute, "some findings exported before a node is lost", func() bool { return e.exported() > 400 })
	leader, err := e.streamLeader(natsx.StreamFindings)
	if err != nil {
		t.Fatal(err)
	}
	var lost *containers.NATS
	for _, n := range e.nodes {
		if n.Name == leader {
			lost = n
		}
	}
	if lost == nil {
		t.Fatalf("FINDINGS is led by %q, no node of this cluster", leader)
	}
	containers.Kill(t, lost.Container)
	lostAt := time.Now()
	exportedAt := e.exported()
	// Export goes on while the node is down, well before publishing ends.
	e2e.Eventually(t, time.Minute, "export going on with a node down", func() bool { return e.exported() >= exportedAt+400 })
	if err := <-published; err != nil {
		t.Fatalf("publishing with a node down: %v", err)
	}
	if exportedAt >= p.expected() {
		t.Fatalf("everything (%d) was exported before the node was lost: the test proves nothing", exportedAt)
	}
	e.waitSettled(p, exportTimeout)
	leaders := e.checkReplicasAfterLoss(lost.Name)
	r := e.check(p)
	r.note = fmt.Sprintf("killed %s (FINDINGS leader) with %d exported; FINDINGS now led by %s; %.1fs to settle",
		lost.Name, exportedAt, leaders[natsx.StreamFindings], time.Since(lostAt).Seconds())
	report(t, t.Name(), start, r)
	e.checkWorkers()
}

// checkReplicasAfterLoss fails the test unless every stream and bucket has
// a leader other than the lost node, and returns the leaders.
func (e *env) checkReplicasAfterLoss(lost string) map[string]string {
	e.t.Helper()
	leaders := map[string]string{}
	e2e.Eventually(e.t, time.Minute, "every stream and bucket led by a live node", func() bool {
		for _, name := range allStreams {
			l, err := e.streamLeader(name)
			if err != nil || l == lost {
				return false
			}
			leaders[name] = l
		}
		return true
	})
	return leaders
}

// TestWorkerPartitioned cuts a worker that holds open batches off the
// network (NATS and MinIO both) for three times its ack wait while findings
// stream in, then reconnects it. The other worker takes its unacked
// messages over; what the cut-off worker sealed stays sealed, what it had
// not is sealed anew; its late writes, if any, fail or find the batch
// taken. No line in two different objects; duplicates only as identical
// rewrites of one object or repeated event ids, counted. Once back, the
// worker works again.
func TestWorkerPartitioned(t *testing.T) {
	start := time.Now()
	e := setup(t, options{})
	e.startWorkers(2)
	p := newPlan(t, generator.Config{Seed: 51, Versions: 4500, MaxVersionsPerID: 1})
	// Two thirds before and during the partition, the rest once it is over.
	split := len(p.msgs) * 2 / 3
	published := e.publish(p.msgs[:split], 200, 300*time.Millisecond)
	e2e.Eventually(t, time.Minute, "some findings exported before the partition", func() bool { return e.exported() > 400 })
	victim := e.receivingWorker(e.workers)
	redelivered := e.watchRedelivered()
	victim.Disconnect(t)
	cut := time.Now()
	const partition = 3 * ackWait
	e2e.Eventually(t, partition, "the cut-off worker's messages taken over", func() bool { return redelivered() > 0 })
	time.Sleep(time.Until(cut.Add(partition))) // the fault's length, not a wait for a result
	victim.Reconnect(t)
	cutFor := time.Since(cut)
	// Its connection may come back on its own (TCP outlives a short cut)
	// or be made anew; either way the worker is ready again.
	e2e.Eventually(t, time.Minute, "the cut-off worker ready again", victim.Ready)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// The reconnected worker takes a share of what comes next.
	receivedBack, err := victim.Metric("gdexport_findings_received_total")
	if err != nil {
		t.Fatalf("%s metrics after the partition: %v", victim.Name, err)
	}
	published = e.publish(p.msgs[split:], 150, 300*time.Millisecond)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitSettled(p, exportTimeout)
	receivedAfter, err := victim.Metric("gdexport_findings_received_total")
	if err != nil {
		t.Fatal(err)
	}
	if receivedAfter <= receivedBack {
		t.Errorf("%s received nothing after it reconnected", victim.Name)
	}
	r := e.check(p)
	r.note = fmt.Sprintf("cut %s off for %.1fs (ack wait %s); %d messages taken over; %d received after",
		victim.Name, cutFor.Seconds(), ackWait, redelivered(), int(receivedAfter-receivedBack))
	report(t, t.Name(), start, r)
	e.checkWorkers()
}

// s3Outage is how long MinIO is down in TestS3Outage: well past the
// workers' failureThreshold, so that the destinations that try to write
// meanwhile turn UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY.
const s3Outage = 20 * time.Second

// failureThreshold is the workers' (test-short) failureThreshold.
const failureThreshold = 5 * time.Second

// TestS3Outage stops MinIO for s3Outage in the middle of export while
// findings keep arriving: ingest goes on (batches are sealed while the
// bucket is unreachable), the export consumers retry with backoff, and
// once MinIO is back every finding is exported exactly once, nothing lost.
func TestS3Outage(t *testing.T) {
	start := time.Now()
	e := setup(t, options{keepData: true})
	e.startWorkers(2)
	p := newPlan(t, generator.Config{Seed: 61, Versions: 4000, MaxVersionsPerID: 1})
	published := e.publish(p.msgs, 150, 400*time.Millisecond)
	e2e.Eventually(t, time.Minute, "some findings exported before the outage", func() bool { return e.exported() > 400 })
	exportedAt := e.exported()
	sealedAt := e.sealedBatches()
	e.minio.Stop(t)
	down := time.Now()
	// Sealing goes on without the bucket, and the object writes fail.
	e2e.Eventually(t, s3Outage, "batches sealed while MinIO is down", func() bool { return e.sealedBatches() >= sealedAt+5 })
	e2e.Eventually(t, s3Outage, "object writes failing while MinIO is down", func() bool { return e.sinkErrors("objects") > 0 })
	// Transient errors past failureThreshold: the destinations that write
	// meanwhile turn UNABLE, with the failure's start.
	var failing []string
	e2e.Eventually(t, s3Outage, "a destination UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", func() bool {
		failing = failing[:0]
		for id, st := range e.statuses() {
			if st.Status == pipeline.StatusUnableToPublish && st.PublishingFailureStartTimestamp > 0 {
				failing = append(failing, id)
			}
		}
		return len(failing) > 0
	})
	time.Sleep(time.Until(down.Add(s3Outage))) // the fault's length, not a wait for a result
	sealedDuring := e.sealedBatches() - sealedAt
	e.minio.Start(t)
	downFor := time.Since(down)
	// Back: every destination publishes again.
	e2e.Eventually(t, 2*time.Minute, "every destination PUBLISHING again", func() bool {
		for _, st := range e.statuses() {
			if st.Status != pipeline.StatusPublishing {
				return false
			}
		}
		return true
	})
	// One notification per change: to UNABLE, and back to PUBLISHING.
	for _, id := range failing {
		var to []string
		for _, n := range e.notifications(id) {
			to = append(to, n.PreviousStatus+"→"+n.Status)
		}
		unable, back := 0, 0
		for _, c := range to {
			switch c {
			case pipeline.StatusPublishing + "→" + pipeline.StatusUnableToPublish:
				unable++
			case pipeline.StatusUnableToPublish + "→" + pipeline.StatusPublishing:
				back++
			}
		}
		if unable != 1 || back != 1 {
			t.Errorf("destination %s notified %v, want one change to UNABLE and one back", id, to)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitSettled(p, exportTimeout)
	r := e.check(p)
	r.note = fmt.Sprintf("MinIO down %.1fs with %d exported; %d batches sealed meanwhile; %d destination(s) UNABLE and back, one notification each way",
		downFor.Seconds(), exportedAt, sealedDuring, len(failing))
	report(t, t.Name(), start, r)
	e.checkWorkers()
}

// sealedBatches counts the batch records on the BATCHES stream.
func (e *env) sealedBatches() uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, natsx.StreamBatches)
	if err != nil {
		e.t.Fatalf("stream %s: %v", natsx.StreamBatches, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatalf("stream %s: %v", natsx.StreamBatches, err)
	}
	return info.State.Msgs
}

// sinkErrors sums the failed writes of sink ("objects", "nats") over the
// live workers.
func (e *env) sinkErrors(sink string) int {
	n := 0
	for _, w := range e.workers {
		if v, err := w.Metric("gdexport_sink_errors_total", `sink="`+sink+`"`); err == nil {
			n += int(v)
		}
	}
	return n
}

// statuses reads every destination's status from the status bucket, the
// record all workers share.
func (e *env) statuses() map[string]state.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, natsx.BucketStatus)
	if err != nil {
		return nil
	}
	out := map[string]state.Status{}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil
	}
	for k := range keys.Keys() {
		en, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var st state.Status
		if json.Unmarshal(en.Value(), &st) == nil && !st.Deleted {
			out[st.DestinationID] = st
		}
	}
	return out
}

// notifications reads the status notifications of a destination.
func (e *env) notifications(destID string) []state.Notification {
	e.t.Helper()
	var out []state.Notification
	for _, m := range e2e.ReadStream(e.t, e.js, natsx.StreamEvents, "gdexport.notifications."+destID) {
		var n state.Notification
		if err := json.Unmarshal(m.Data, &n); err != nil {
			e.t.Fatalf("notification: %v", err)
		}
		out = append(out, n)
	}
	return out
}
