package assemble_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/testing/e2e"
)

const (
	acctA = "111122223333"
	acctB = "444455556666"
)

// makeFinding is a sample finding with its id and account replaced.
func makeFinding(t *testing.T, account, id string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(samplesDir, "finding_elastic_rds_anomalous_login.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	f["id"], f["accountId"], f["region"] = id, account, "us-east-1"
	out, _ := json.Marshal(f)
	return out
}

func (h *harness) publishFindings(account, prefix string, n int) []string {
	h.t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%04d", prefix, i)
		h.publish(pipeline.IngestSubject("us-east-1", account), id, makeFinding(h.t, account, id), nil)
		ids = append(ids, id)
	}
	return ids
}

// exportedIDs counts the finding ids in the objects under root.
func (h *harness) exportedIDs(root string) map[string]int {
	h.t.Helper()
	out := map[string]int{}
	for _, o := range e2e.ReadObjects(h.t, root, filepath.Join(h.dataDir, "keys", "local-master.key")) {
		if !strings.Contains(o.Path, "AWSLogs/") {
			h.t.Errorf("object outside AWSLogs: %s", o.Path)
		}
		for _, l := range o.Lines {
			var f struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal([]byte(l), &f)
			out[f.ID]++
		}
	}
	return out
}

func (h *harness) status(id string) state.Status {
	h.t.Helper()
	kv, err := h.js.KeyValue(context.Background(), natsx.BucketStatus)
	if err != nil {
		h.t.Fatal(err)
	}
	st, _, _, err := state.NewStatuses(kv, nil).Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) waitStatus(id, want string) state.Status {
	h.t.Helper()
	var st state.Status
	e2e.Eventually(h.t, 20*time.Second, "destination "+id+" "+want, func() bool {
		st = h.status(id)
		return st.Status == want
	})
	return st
}

// notifications returns the status changes notified for a destination,
// as "FROM>TO".
func (h *harness) notifications(id string) []string {
	h.t.Helper()
	var out []string
	for _, m := range e2e.ReadStream(h.t, h.js, natsx.StreamEvents, natsx.NotificationSubject(id)) {
		var n state.Notification
		if err := json.Unmarshal(m.Data, &n); err != nil {
			h.t.Fatalf("notification is not JSON: %v", err)
		}
		if n.DestinationID != id || n.Version != "1" {
			h.t.Errorf("notification %s", m.Data)
		}
		out = append(out, n.PreviousStatus+">"+n.Status)
	}
	return out
}

// exactlyOnce checks that every id was exported once.
func exactlyOnce(t *testing.T, got map[string]int, ids []string) {
	t.Helper()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("finding %s exported %d times, want once", id, got[id])
		}
	}
}

func localDestinations(dir string, configure func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.RetryInitial = config.Duration(200 * time.Millisecond)
		c.RetryMax = config.Duration(time.Second)
		c.Detectors = []config.Detector{
			{Account: acctA, Region: "us-east-1", Destinations: []config.Destination{{DestinationType: "LOCAL", Root: filepath.Join(dir, "a")}}},
			{Account: acctB, Region: "us-east-1", Destinations: []config.Destination{{DestinationType: "LOCAL", Root: filepath.Join(dir, "b")}}},
		}
		if configure != nil {
			configure(c)
		}
	}
}

func destID(account, root string) string {
	return state.DestinationFromConfig(account, "us-east-1", &config.Destination{DestinationType: "LOCAL", Root: root}).ID
}

// A destination whose root becomes unwritable (an access error) turns
// UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY with one notification; the
// other destination keeps exporting meanwhile; once the root is fixed the
// destination recovers by itself (one notification) and every finding held
// meanwhile is exported exactly once.
func TestBrokenDestinationHoldsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	var hookMu sync.Mutex
	var posted []state.Notification
	fails := 1 // the webhook fails once: the post is retried
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		defer hookMu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var n state.Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		posted = append(posted, n)
	}))
	defer hook.Close()
	h := startHarnessWith(t, localDestinations(dir, func(c *config.Config) { c.Notifications.Webhook = hook.URL + "/gdexport" }))
	rootA, rootB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	idA, idB := destID(acctA, rootA), destID(acctB, rootB)
	h.waitStatus(idA, pipeline.StatusPublishing)
	h.waitStatus(idB, pipeline.StatusPublishing)

	before := h.publishFindings(acctA, "before", 2)
	e2e.Eventually(t, 20*time.Second, "A's first findings", func() bool { return len(h.exportedIDs(rootA)) == 2 })
	exactlyOnce(t, h.exportedIDs(rootA), before)

	// Break A: a file where its root directory was.
	if err := os.RemoveAll(rootA); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootA, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	held := h.publishFindings(acctA, "held", 3)
	healthy := h.publishFindings(acctB, "healthy", 3)
	st := h.waitStatus(idA, pipeline.StatusUnableToPublish)
	if st.PublishingFailureStartTimestamp == 0 || st.LastErrorKind != state.ErrorKindAccess || !strings.Contains(st.LastError, "not a directory") {
		t.Errorf("UNABLE status %+v", st)
	}
	// B is not held back.
	e2e.Eventually(t, 20*time.Second, "B's findings while A is broken", func() bool { return len(h.exportedIDs(rootB)) == 3 })
	exactlyOnce(t, h.exportedIDs(rootB), healthy)
	held = append(held, h.publishFindings(acctA, "later", 2)...)
	// Several retry periods pass: A stays UNABLE, notified once.
	time.Sleep(1500 * time.Millisecond)
	if st := h.status(idA); st.Status != pipeline.StatusUnableToPublish {
		t.Fatalf("status while broken: %+v", st)
	}
	want := []string{"PENDING_VERIFICATION>PUBLISHING", "PUBLISHING>UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"}
	if got := h.notifications(idA); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("notifications while broken %q, want %q", got, want)
	}
	_, body := h.get("/metrics")
	if !strings.Contains(body, `gdexport_destination_status{account="`+acctA+`",destination="`+idA+`",region="us-east-1",status="UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"} 1`) {
		t.Errorf("metrics lack A's UNABLE status")
	}

	// Fixed: a probe succeeds, A publishes again and exports the backlog.
	if err := os.Remove(rootA); err != nil {
		t.Fatal(err)
	}
	h.waitStatus(idA, pipeline.StatusPublishing)
	e2e.Eventually(t, 20*time.Second, "A's held findings", func() bool { return len(h.exportedIDs(rootA)) == len(held) })
	time.Sleep(500 * time.Millisecond) // nothing more may come
	got := h.exportedIDs(rootA)
	exactlyOnce(t, got, held)
	if len(got) != len(held) {
		t.Errorf("exported %v, want exactly %v", got, held)
	}
	want = append(want, "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY>PUBLISHING")
	if got := h.notifications(idA); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("notifications %q, want %q", got, want)
	}
	if got := h.notifications(idB); len(got) != 1 {
		t.Errorf("B's notifications %q, want only its verification", got)
	}
	// The webhook got A's UNABLE and recovery notifications (the
	// verifications may have come before its consumer existed), the first
	// after a retry.
	e2e.Eventually(t, 20*time.Second, "the webhook's notifications", func() bool {
		hookMu.Lock()
		defer hookMu.Unlock()
		n := 0
		for _, p := range posted {
			if p.DestinationID == idA && (p.Status == pipeline.StatusUnableToPublish || p.PreviousStatus == pipeline.StatusUnableToPublish) {
				n++
			}
		}
		return n == 2
	})
}

// A destination unresolved for disableAfter is STOPPED: it stays stopped
// after the fault is fixed, until it is restarted, which verifies it and
// exports the backlog once.
func TestStoppedDestinationRestart(t *testing.T) {
	dir := t.TempDir()
	h := startHarnessWith(t, localDestinations(dir, func(c *config.Config) { c.DisableAfter = config.Duration(time.Second) }))
	rootA := filepath.Join(dir, "a")
	idA := destID(acctA, rootA)
	h.waitStatus(idA, pipeline.StatusPublishing)
	if err := os.WriteFile(filepath.Join(dir, "blocker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(rootA); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "blocker"), rootA); err != nil {
		t.Fatal(err)
	}
	held := h.publishFindings(acctA, "held", 4)
	h.waitStatus(idA, pipeline.StatusUnableToPublish)
	st := h.waitStatus(idA, pipeline.StatusStopped)
	if st.PublishingFailureStartTimestamp == 0 {
		t.Errorf("STOPPED lost its failure start: %+v", st)
	}
	if err := os.Remove(rootA); err != nil {
		t.Fatal(err)
	}
	held = append(held, h.publishFindings(acctA, "stopped", 2)...)
	time.Sleep(1500 * time.Millisecond)
	if st := h.status(idA); st.Status != pipeline.StatusStopped {
		t.Fatalf("a fixed STOPPED destination resumed by itself: %+v", st)
	}
	if got := h.exportedIDs(rootA); len(got) != 0 {
		t.Fatalf("a STOPPED destination exported %v", got)
	}
	kvs := make([]jetstream.KeyValue, 2)
	for i, name := range []string{natsx.BucketDestinations, natsx.BucketStatus} {
		var err error
		if kvs[i], err = h.js.KeyValue(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	ds := state.NewDestinations(kvs[0], state.NewStatuses(kvs[1], nil, state.WithNotifier(state.NATSNotifier{JS: h.js})))
	dest, err := ds.Get(context.Background(), acctA, "us-east-1", idA)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := ds.Restart(context.Background(), dest); err != nil || st.Status != pipeline.StatusPendingVerification {
		t.Fatalf("restart: %+v, %v", st, err)
	}
	h.waitStatus(idA, pipeline.StatusPublishing)
	e2e.Eventually(t, 20*time.Second, "the backlog exported", func() bool { return len(h.exportedIDs(rootA)) == len(held) })
	time.Sleep(500 * time.Millisecond)
	got := h.exportedIDs(rootA)
	exactlyOnce(t, got, held)
	if len(got) != len(held) {
		t.Errorf("exported %v, want exactly %v", got, held)
	}
	gotNotes := h.notifications(idA)
	want := []string{"PENDING_VERIFICATION>PUBLISHING", "PUBLISHING>UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY",
		"UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY>STOPPED", "STOPPED>PENDING_VERIFICATION", "PENDING_VERIFICATION>PUBLISHING"}
	if fmt.Sprint(gotNotes) != fmt.Sprint(want) {
		t.Fatalf("notifications %q, want %q", gotNotes, want)
	}
}
