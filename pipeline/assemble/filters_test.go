package assemble_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/stages/filter"
	"github.com/gdexport/gdexport/testing/e2e"
)

const (
	adminAcct  = "111122223333"
	member1    = "444455556666" // member in both Regions, with a destination of its own in us-east-1
	member2    = "555566667777" // member in both Regions
	member3    = "777788889999" // member in us-east-1, disassociated while the worker runs
	strayAcct  = "999900001111" // no destination, no administrator, no default destination
	east, west = "us-east-1", "eu-west-1"
)

// findingMaker builds realistic findings from the DNS sample.
type findingMaker struct {
	t    *testing.T
	tmpl map[string]any
	seq  int
}

func newFindingMaker(t *testing.T) *findingMaker {
	raw, err := os.ReadFile(filepath.Join(samplesDir, "finding_elastic_ec2_trojan_blackholetraffic_dns.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	return &findingMaker{t: t, tmpl: tmpl}
}

// spec is what varies between the test's findings.
type spec struct {
	id, account, region, typ, domain string
	severity                         float64
	archived                         bool
	updatedAt                        string // default 2026-01-10T10:00:00.000Z
}

func (m *findingMaker) make(s spec) (raw []byte, line string) {
	m.t.Helper()
	b, _ := json.Marshal(m.tmpl)
	var f map[string]any
	_ = json.Unmarshal(b, &f)
	f["id"], f["accountId"], f["region"] = s.id, s.account, s.region
	f["arn"] = "arn:aws:guardduty:" + s.region + ":" + s.account + ":detector/d1/finding/" + s.id
	if s.typ == "" {
		s.typ = "Trojan:EC2/BlackholeTraffic!DNS"
	}
	f["type"] = s.typ
	if s.severity == 0 {
		s.severity = 5
	}
	f["severity"] = s.severity
	if s.updatedAt == "" {
		s.updatedAt = "2026-01-10T10:00:00.000Z"
	}
	f["updatedAt"] = s.updatedAt
	svc := f["service"].(map[string]any)
	svc["archived"] = s.archived
	if s.domain == "" {
		s.domain = "GeneratedFindingDomainName"
	}
	svc["action"].(map[string]any)["dnsRequestAction"].(map[string]any)["domain"] = s.domain
	raw, _ = json.Marshal(f)
	d, err := decode.Decode(raw)
	if err != nil {
		m.t.Fatalf("test finding %s invalid: %v", s.id, err)
	}
	return raw, string(d.Raw)
}

var objectKey = regexp.MustCompile(`^(org/)?AWSLogs/\d{12}/GuardDuty/[a-z]{2}-[a-z]+-\d/\d{4}/\d{2}/\d{2}/\d{8}T\d{6}Z-new-[0-9a-f]{16}\.jsonl\.gz\.enc$`)

// keyFolder is an object's key up to its Region: [prefix/]AWSLogs/<account>/GuardDuty/<region>.
func keyFolder(rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		if p == "GuardDuty" && i+1 < len(parts) {
			return path.Join(parts[:i+2]...)
		}
	}
	return rel
}

// TestMembersFiltersRegionalDestinations is the end-to-end test of issue 3:
// an administrator with two members in two Regions, a third member
// disassociated while the worker runs, three ARCHIVE filters from the
// configuration and one created while the worker runs, two Regions writing
// into one bucket (the eu-west-1 destination keys objects by the finding
// owner's account), and a mix of findings. It asserts the exact lines under
// every key folder, that no object mixes accounts where keys carry the
// owner's, the events' accounts, and the drop counts by reason and by
// filter.
func TestMembersFiltersRegionalDestinations(t *testing.T) {
	bucket := t.TempDir()    // one "bucket" for both Regions of the administrator
	ownBucket := t.TempDir() // member1's own destination
	criteria := func(doc string) any {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	dnsRule, err := os.ReadFile(filepath.Join(samplesDir, "filter_criteria_awsdocs_suppress_dns_domain.json"))
	if err != nil {
		t.Fatal(err)
	}
	h := startHarnessWith(t, func(c *config.Config) {
		c.DefaultDestination = nil
		c.Detectors = []config.Detector{
			{Account: adminAcct, Region: east, Members: []string{member1, member2, member3},
				Destinations: []config.Destination{{DestinationType: "LOCAL", Root: bucket, Prefix: "org"}},
				Filters: []config.Filter{
					{Name: "suppress-portscan", Action: "ARCHIVE", Rank: 1, FindingCriteria: criteria(`{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]}}}`)},
					{Name: "suppress-test-domain", Action: "ARCHIVE", Rank: 2, FindingCriteria: criteria(string(dnsRule))},
					{Name: "high-severity-view", Action: "NOOP", Rank: 3, FindingCriteria: criteria(`{"Criterion":{"severity":{"Gte":7}}}`)},
				}},
			{Account: adminAcct, Region: west, Members: []string{member1, member2},
				Destinations: []config.Destination{{DestinationType: "LOCAL", Root: bucket, Prefix: "org", KeyAccount: "owner"}},
				Filters: []config.Filter{
					{Name: "suppress-low-severity", Action: "ARCHIVE", FindingCriteria: criteria(`{"criterion":{"severity":{"lt":2}}}`)},
				}},
			{Account: member1, Region: east, Destinations: []config.Destination{{DestinationType: "LOCAL", Root: ownBucket}}},
		}
	})
	ctx := context.Background()

	// member3 leaves its administrator while the worker runs.
	members := state.NewMembers(kv(t, h, natsx.BucketMembers))
	if refused, err := members.Disassociate(ctx, adminAcct, east, []string{member3}); err != nil || len(refused) > 0 {
		t.Fatalf("disassociate %s: %v %v", member3, refused, err)
	}
	e2e.Eventually(t, 10*time.Second, "the worker sees the disassociation", func() bool {
		_, drop := h.worker.State().RouteFinding(member3, east)
		return drop == pipeline.DropDisassociated
	})

	mk := newFindingMaker(t)
	// want maps a key folder ("<root>:<prefix/>AWSLogs/<account>/GuardDuty/<region>") to its lines.
	want := map[string][]string{}
	published := 0
	publish := func(s spec, folders ...string) {
		raw, line := mk.make(s)
		h.publish(pipeline.IngestSubject(s.region, s.account), "", raw, nil)
		published++
		for _, f := range folders {
			want[f] = append(want[f], line)
		}
	}
	adminEast := "bucket:org/AWSLogs/" + adminAcct + "/GuardDuty/" + east
	folderWest := func(acct string) string { return "bucket:org/AWSLogs/" + acct + "/GuardDuty/" + west }
	ownEast := "own:AWSLogs/" + member1 + "/GuardDuty/" + east

	// us-east-1: the administrator's own findings, one suppressed by type.
	publish(spec{id: "admineast1", account: adminAcct, region: east}, adminEast)
	publish(spec{id: "admineast2", account: adminAcct, region: east, typ: "Recon:EC2/Portscan"})
	// An archived finding is never exported.
	publish(spec{id: "admineast3", account: adminAcct, region: east, archived: true})
	// A high-severity finding matches only the NOOP filter: exported.
	publish(spec{id: "admineast4", account: adminAcct, region: east, severity: 8}, adminEast)
	// member1 fans in to the administrator and exports to its own destination too.
	publish(spec{id: "member1east1", account: member1, region: east}, adminEast, ownEast)
	// The administrator's DNS rule (AWS's documentation example) suppresses a member's finding.
	publish(spec{id: "member1east2", account: member1, region: east, domain: "test.example.com"})
	publish(spec{id: "member2east1", account: member2, region: east}, adminEast)
	// The disassociated member and the stray account are not exported.
	publish(spec{id: "member3east1", account: member3, region: east})
	publish(spec{id: "strayeast1", account: strayAcct, region: east})
	// eu-west-1: the same bucket under its own Region folder, keyed by the finding owner.
	publish(spec{id: "adminwest1", account: adminAcct, region: west}, folderWest(adminAcct))
	publish(spec{id: "member1west1", account: member1, region: west}, folderWest(member1))
	publish(spec{id: "member2west1", account: member2, region: west}, folderWest(member2))
	publish(spec{id: "member2west2", account: member2, region: west, updatedAt: "2026-01-10T10:00:01.000Z"}, folderWest(member2))
	publish(spec{id: "member2west3", account: member2, region: west, severity: 1})
	// member3 is no member in eu-west-1 and there is no default destination.
	publish(spec{id: "member3west1", account: member3, region: west})
	// Unarchive: an archived version, then a suppressed one, then one that
	// no longer matches and is not archived, which is exported.
	publish(spec{id: "unarchived1", account: member2, region: east, archived: true, updatedAt: "2026-01-10T10:00:00.000Z"})
	publish(spec{id: "unarchived1", account: member2, region: east, domain: "test.example.com", updatedAt: "2026-01-10T11:00:00.000Z"})
	publish(spec{id: "unarchived1", account: member2, region: east, domain: "benign.example.com", updatedAt: "2026-01-10T12:00:00.000Z"}, adminEast)

	countWanted := func() int {
		n := 0
		for _, ls := range want {
			n += len(ls)
		}
		return n
	}
	e2e.Eventually(t, 30*time.Second, "the first findings judged and exported", func() bool {
		return h.worker.Stats().Received.Load() == int64(published) && h.worker.Stats().Exported.Load() == int64(countWanted())
	})

	// A filter created while the worker runs, as `gdexport filter create` does.
	live, err := filter.NewFilter(filter.Spec{Name: "suppress-live", Action: "ARCHIVE",
		FindingCriteria: criteria(`{"Criterion":{"type":{"Equals":["Discovery:S3/MaliciousIPCaller"]}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.NewFilters(kv(t, h, natsx.BucketFilters)).Create(ctx, adminAcct, east, live); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, 10*time.Second, "the worker sees the new filter", func() bool {
		for _, f := range h.worker.State().Filters(member2, east).Filters() {
			if f.Name == "suppress-live" {
				return true
			}
		}
		return false
	})
	publish(spec{id: "livefilter1", account: adminAcct, region: east, typ: "Discovery:S3/MaliciousIPCaller"})
	publish(spec{id: "livefilter2", account: member2, region: east, typ: "Discovery:S3/MaliciousIPCaller"})
	publish(spec{id: "livefilter3", account: member2, region: east, typ: "Discovery:S3/TorIPCaller"}, adminEast)

	e2e.Eventually(t, 30*time.Second, "every finding judged and exported", func() bool {
		return h.worker.Stats().Received.Load() == int64(published) && h.worker.Stats().Exported.Load() == int64(countWanted())
	})

	keyFile := filepath.Join(h.dataDir, "keys", "local-master.key")
	got := map[string][]string{}
	for _, root := range []struct{ label, dir string }{{"bucket", bucket}, {"own", ownBucket}} {
		for _, o := range e2e.ReadObjects(t, root.dir, keyFile) {
			if !objectKey.MatchString(o.Path) {
				t.Errorf("object key %s is not [prefix/]AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/<seal time>-new-<16 hex>.jsonl.gz.enc", o.Path)
			}
			folder := root.label + ":" + keyFolder(o.Path)
			got[folder] = append(got[folder], o.Lines...)
			// Where keys carry the finding owner's account, an object holds only that account's findings.
			if strings.HasSuffix(folder, "/"+west) {
				for _, l := range o.Lines {
					f, err := decode.Decode([]byte(l))
					if err != nil || !strings.Contains(folder, "/AWSLogs/"+f.AccountID+"/") {
						t.Errorf("object %s holds a finding of account %s", o.Path, f.AccountID)
					}
				}
			}
		}
	}
	var folders []string
	for f := range want {
		folders = append(folders, f)
	}
	for f := range got {
		if _, ok := want[f]; !ok {
			folders = append(folders, f)
		}
	}
	sort.Strings(folders)
	for _, f := range folders {
		w, g := append([]string(nil), want[f]...), append([]string(nil), got[f]...)
		sort.Strings(w)
		sort.Strings(g)
		t.Logf("%s: %d lines %v", f, len(g), ids(g))
		if strings.Join(w, "\n") != strings.Join(g, "\n") {
			t.Errorf("%s: got %d lines %v, want %d %v", f, len(g), ids(g), len(w), ids(w))
		}
	}

	// Events: one per exported line, on the administrator's subject, with the
	// administrator's account in the envelope (B11), also for owner-keyed objects.
	var events []e2e.StreamMsg
	e2e.Eventually(t, 10*time.Second, "one event per exported line", func() bool {
		events = e2e.ReadStream(t, h.js, natsx.StreamEvents, natsx.SubjectEvents)
		return len(events) >= countWanted()
	})
	if len(events) != countWanted() {
		t.Errorf("events = %d, want %d", len(events), countWanted())
	}
	for _, ev := range events {
		var env struct {
			Account string          `json:"account"`
			Detail  json.RawMessage `json:"detail"`
		}
		_ = json.Unmarshal(ev.Data, &env)
		f, err := decode.Decode(env.Detail)
		if err != nil {
			t.Fatal(err)
		}
		wantAcct := adminAcct
		if f.AccountID == member1 && strings.Contains(ev.Subject, "."+member1) {
			wantAcct = member1 // member1's own destination
		}
		if env.Account != wantAcct || !strings.HasSuffix(ev.Subject, "."+wantAcct) {
			t.Errorf("event of %s (%s) on %s with account %s, want %s", f.ID, f.AccountID, ev.Subject, env.Account, wantAcct)
		}
	}

	st := h.worker.Stats()
	wantDrops := map[string]int64{
		pipeline.DropArchived:      2, // admineast3, unarchived1 v1
		pipeline.DropSuppressed:    6, // admineast2, member1east2, member2west3, unarchived1 v2, livefilter1, livefilter2
		pipeline.DropDisassociated: 1, // member3east1
		pipeline.DropNoDestination: 2, // strayeast1, member3west1
	}
	if got := st.DroppedByReason(); fmt.Sprint(got) != fmt.Sprint(wantDrops) {
		t.Errorf("dropped by reason = %v, want %v", got, wantDrops)
	}
	wantByFilter := map[string]int64{"suppress-portscan": 1, "suppress-test-domain": 2, "suppress-low-severity": 1, "suppress-live": 2}
	if got := st.SuppressedByFilter(); fmt.Sprint(got) != fmt.Sprint(wantByFilter) {
		t.Errorf("suppressed by filter = %v, want %v", got, wantByFilter)
	}
	if t.Failed() {
		e2e.LogConsumers(t, h.js, natsx.StreamFindings, natsx.StreamBatches)
	}
}

func kv(t *testing.T, h *harness, bucket string) jetstream.KeyValue {
	t.Helper()
	b, err := h.js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ids(lines []string) []string {
	var out []string
	for _, l := range lines {
		f, err := decode.Decode([]byte(l))
		if err != nil {
			out = append(out, "?")
			continue
		}
		out = append(out, f.ID+"@"+f.UpdatedAtText())
	}
	return out
}
