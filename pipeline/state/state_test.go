package state_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/stages/filter"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/natstest"
)

const (
	admin    = "111122223333"
	member1  = "444455556666"
	member2  = "555566667777"
	former   = "777788889999" // a disassociated member
	loner    = "999900001111" // no destination, no administrator
	admin2   = "222233334444" // an administrator without destinations
	member3  = "333344445555" // a member of admin2
	east     = "us-east-1"
	west     = "eu-west-1"
	testWait = 10 * time.Second
)

type env struct {
	t       *testing.T
	topo    *natsx.Topology
	store   *state.Store
	filters *state.Filters
	members *state.Members
}

// start runs a Store over a fresh embedded JetStream, applies cfg and waits
// for its first snapshot.
func start(t *testing.T, cfg *config.Config) *env {
	t.Helper()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo, err := natsx.Ensure(ctx, js, natsx.TopologyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := state.New(topo.Destinations, topo.Detectors, slog.New(slog.NewTextHandler(io.Discard, nil)),
		state.WithFilters(topo.Filters), state.WithMembers(topo.Members))
	if err := st.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-st.Ready():
	case <-time.After(testWait):
		t.Fatal("store not ready")
	}
	return &env{t: t, topo: topo, store: st, filters: state.NewFilters(topo.Filters), members: state.NewMembers(topo.Members)}
}

func local(root string) config.Destination {
	return config.Destination{DestinationType: "LOCAL", Root: root}
}

// routeText renders a route as "<account>/<region>[/owner] ..." or "drop:<reason>".
func routeText(st *state.Store, account, region string) string {
	ds, drop := st.RouteFinding(account, region)
	if len(ds) == 0 {
		return "drop:" + drop
	}
	var parts []string
	for _, d := range ds {
		p := d.Account + "/" + d.Region
		if d.Default {
			p = "default:" + p
		}
		if d.KeysByOwner() {
			p += "/owner"
		}
		parts = append(parts, p)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func TestRouteFinding(t *testing.T) {
	cfg := func(withDefault bool) *config.Config {
		c := &config.Config{DataDir: t.TempDir(), Detectors: []config.Detector{
			{Account: admin, Region: east, Members: []string{member1, member2, former}, Destinations: []config.Destination{local("/srv/export")}},
			{Account: admin, Region: west, Members: []string{member1}, Destinations: []config.Destination{
				{DestinationType: "LOCAL", Root: "/srv/export", KeyAccount: "owner"}}},
			{Account: member1, Region: east, Destinations: []config.Destination{local("/srv/member1")}},
			{Account: former, Region: west, Destinations: []config.Destination{local("/srv/former")}},
			{Account: admin2, Region: east, Members: []string{member3}},
		}}
		if withDefault {
			c.DefaultDestination = &config.Destination{DestinationType: "LOCAL"}
		}
		return c
	}
	for _, withDefault := range []bool{true, false} {
		t.Run(fmt.Sprintf("default=%v", withDefault), func(t *testing.T) {
			e := start(t, cfg(withDefault))
			ctx := context.Background()
			// former leaves admin in both Regions it is known in.
			if refused, err := e.members.Disassociate(ctx, admin, east, []string{former}); err != nil || len(refused) > 0 {
				t.Fatalf("disassociate: %v %v", refused, err)
			}
			e2e.Eventually(t, testWait, "disassociation seen", func() bool {
				return !strings.Contains(routeText(e.store, former, east), admin)
			})
			def := func(s string) string {
				if withDefault {
					return s
				}
				return "drop:" + pipeline.DropNoDestination
			}
			tests := []struct {
				name, account, region, want string
			}{
				// An administrator exports to its own destination.
				{"administrator", admin, east, admin + "/" + east},
				// B4: the same administrator in another Region has that Region's destination.
				{"administrator other Region", admin, west, admin + "/" + west + "/owner"},
				// B3: an enabled member goes to its administrator's destination ...
				{"member", member2, east, admin + "/" + east},
				// ... and also to its own when it has one.
				{"member with own destination", member1, east, admin + "/" + east + " " + member1 + "/" + east},
				// Membership is per Region: member1 in eu-west-1 goes to the eu-west-1 destination.
				{"member other Region", member1, west, admin + "/" + west + "/owner"},
				// member2 is no member in eu-west-1: the default destination acts for it.
				{"not a member there", member2, west, def("default:" + member2 + "/" + west)},
				// A disassociated member without a destination of its own is not exported,
				// not even to the default destination.
				{"disassociated", former, east, "drop:" + pipeline.DropDisassociated},
				// A disassociated member with a destination of its own exports there.
				{"disassociated with own", former, west, former + "/" + west},
				// A member of an administrator without destinations: the default acts for the administrator.
				{"member of default administrator", member3, east, def("default:" + admin2 + "/" + east)},
				// An account with neither destination nor administrator: the default acts for it.
				{"loner", loner, east, def("default:" + loner + "/" + east)},
			}
			for _, tt := range tests {
				if got := routeText(e.store, tt.account, tt.region); got != tt.want {
					t.Errorf("%s: route(%s, %s) = %q, want %q", tt.name, tt.account, tt.region, got, tt.want)
				}
			}
			// A batch sealed for a default instance resolves to the same destination.
			if withDefault {
				ds, _ := e.store.RouteFinding(member3, east)
				d, ok := e.store.Destination(ds[0].ID, admin2, east)
				if !ok || d != ds[0] {
					t.Errorf("Destination(%s, %s, %s) = %v, %v; want the routed default instance", ds[0].ID, admin2, east, d, ok)
				}
			}
		})
	}
}

func TestRouteFindingAllocatesNothing(t *testing.T) {
	e := start(t, &config.Config{DataDir: t.TempDir(), DefaultDestination: &config.Destination{DestinationType: "LOCAL"},
		Detectors: []config.Detector{{Account: admin, Region: east, Members: []string{member1}, Destinations: []config.Destination{local("/srv/x")}}}})
	e.store.RouteFinding(loner, east) // creates the default instance
	n := testing.AllocsPerRun(100, func() {
		e.store.RouteFinding(member1, east)
		e.store.RouteFinding(loner, east)
		e.store.Filters(member1, east)
	})
	if n != 0 {
		t.Errorf("routing allocates %v times per finding, want 0", n)
	}
}

func mustFilter(t *testing.T, name, action string, rank int, criteria string) *filter.Filter {
	t.Helper()
	s, err := filter.ParseSpec([]byte(criteria))
	if err != nil {
		t.Fatal(err)
	}
	s.Name, s.Action, s.Rank = name, action, rank
	f, err := filter.NewFilter(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func names(set *filter.Set) string {
	var out []string
	for _, f := range set.Filters() {
		out = append(out, f.Name)
	}
	return strings.Join(out, ",")
}

func TestFiltersFollowMembershipAndChanges(t *testing.T) {
	e := start(t, &config.Config{DataDir: t.TempDir(), Detectors: []config.Detector{
		{Account: admin, Region: east, Members: []string{member1, former}, Filters: []config.Filter{
			{Name: "admin-rule", Action: "ARCHIVE", FindingCriteria: map[string]any{"criterion": map[string]any{"type": map[string]any{"eq": []any{"x"}}}}},
		}},
	}})
	ctx := context.Background()
	if _, err := e.filters.Create(ctx, member1, east, mustFilter(t, "own-rule", "ARCHIVE", 1, `{"Criterion":{}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.filters.Create(ctx, former, east, mustFilter(t, "former-rule", "NOOP", 0, `{"Criterion":{}}`)); err != nil {
		t.Fatal(err)
	}
	if refused, err := e.members.Disassociate(ctx, admin, east, []string{former}); err != nil || len(refused) > 0 {
		t.Fatalf("disassociate: %v %v", refused, err)
	}
	tests := []struct {
		name, account, want string
	}{
		// The administrator's own filters.
		{"administrator", admin, "admin-rule"},
		// An enabled member: its administrator's first, then its own.
		{"member", member1, "admin-rule,own-rule"},
		// A disassociated member keeps only its own.
		{"disassociated", former, "former-rule"},
		// Anyone else has none.
		{"other", loner, ""},
	}
	for _, tt := range tests {
		e2e.Eventually(t, testWait, tt.name+" filters", func() bool { return names(e.store.Filters(tt.account, east)) == tt.want })
	}
	// A change made while the store runs is seen without a restart.
	if _, err := e.filters.Update(ctx, admin, east, "admin-rule", func(s *filter.Spec) { s.Action = "NOOP" }); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, testWait, "updated action", func() bool {
		fs := e.store.Filters(member1, east).Filters()
		return len(fs) == 2 && fs[0].Name == "admin-rule" && fs[0].Action == filter.ActionNoop
	})
	if err := e.filters.Delete(ctx, admin, east, "admin-rule"); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, testWait, "deletion", func() bool { return names(e.store.Filters(member1, east)) == "own-rule" })
}

func TestFilterOperations(t *testing.T) {
	e := start(t, &config.Config{DataDir: t.TempDir()})
	ctx := context.Background()
	crit := `{"Criterion":{"severity":{"Gte":4}}}`
	// Ranks default to the next after the highest.
	f1, err := e.filters.Create(ctx, admin, east, mustFilter(t, "first", "ARCHIVE", 0, crit))
	if err != nil || f1.Rank != 1 {
		t.Fatalf("create first: rank %v, %v", f1, err)
	}
	if _, err := e.filters.Create(ctx, admin, east, mustFilter(t, "explicit", "NOOP", 10, crit)); err != nil {
		t.Fatal(err)
	}
	f3, err := e.filters.Create(ctx, admin, east, mustFilter(t, "third", "ARCHIVE", 0, crit))
	if err != nil || f3.Rank != 11 {
		t.Fatalf("create third: %+v, %v; want rank 11", f3, err)
	}
	// A name is unique per (account, Region) ...
	if _, err := e.filters.Create(ctx, admin, east, mustFilter(t, "first", "ARCHIVE", 0, crit)); !errors.Is(err, state.ErrFilterExists) {
		t.Errorf("second create of a name: %v, want ErrFilterExists", err)
	}
	// ... but not across Regions.
	if _, err := e.filters.Create(ctx, admin, west, mustFilter(t, "first", "ARCHIVE", 0, crit)); err != nil {
		t.Errorf("same name in another Region: %v", err)
	}
	list, err := e.filters.List(ctx, admin, east)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range list {
		got = append(got, fmt.Sprintf("%s:%d", f.Name, f.Rank))
	}
	if strings.Join(got, " ") != "first:1 explicit:10 third:11" {
		t.Errorf("list = %v, want rank order", got)
	}
	u, err := e.filters.Update(ctx, admin, east, "third", func(s *filter.Spec) { s.Rank = 2; s.Description = "moved up" })
	if err != nil || u.Rank != 2 || u.Description != "moved up" || u.Action != filter.ActionArchive {
		t.Fatalf("update: %+v, %v", u, err)
	}
	if _, err := e.filters.Update(ctx, admin, east, "third", func(s *filter.Spec) { s.Action = "EXPLODE" }); !errors.Is(err, filter.ErrInvalid) {
		t.Errorf("update with a bad action: %v, want ErrInvalid", err)
	}
	if _, err := e.filters.Get(ctx, admin, east, "missing"); !errors.Is(err, state.ErrFilterNotFound) {
		t.Errorf("get missing: %v", err)
	}
	if err := e.filters.Delete(ctx, admin, east, "missing"); !errors.Is(err, state.ErrFilterNotFound) {
		t.Errorf("delete missing: %v", err)
	}
	if err := e.filters.Delete(ctx, admin, east, "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.filters.Get(ctx, admin, east, "first"); !errors.Is(err, state.ErrFilterNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	// Names that are not valid KV key tokens as they are still work.
	for _, name := range []string{"...", "a..b", ".hidden", "trailing."} {
		if _, err := e.filters.Create(ctx, admin2, east, mustFilter(t, name, "ARCHIVE", 0, crit)); err != nil {
			t.Errorf("create %q: %v", name, err)
		}
		if f, err := e.filters.Get(ctx, admin2, east, name); err != nil || f.Name != name {
			t.Errorf("get %q: %v, %v", name, f, err)
		}
	}
	e2e.Eventually(t, testWait, "the store reads dotted names", func() bool {
		return names(e.store.Filters(admin2, east)) == "...,a..b,.hidden,trailing."
	})
	// A deleted name can be created again.
	if _, err := e.filters.Create(ctx, admin, east, mustFilter(t, "first", "ARCHIVE", 0, crit)); err != nil {
		t.Errorf("re-create deleted: %v", err)
	}
	// At most 100 filters per (account, Region).
	for i := 0; i < 100; i++ {
		_, err := e.filters.Create(ctx, member1, east, mustFilter(t, fmt.Sprintf("f-%03d", i), "NOOP", 0, crit))
		if err != nil {
			t.Fatalf("filter %d: %v", i, err)
		}
	}
	if _, err := e.filters.Create(ctx, member1, east, mustFilter(t, "f-100", "NOOP", 0, crit)); !errors.Is(err, state.ErrTooManyFilters) {
		t.Errorf("101st filter: %v, want ErrTooManyFilters", err)
	}
}

func TestMemberOperations(t *testing.T) {
	e := start(t, &config.Config{DataDir: t.TempDir()})
	ctx := context.Background()
	refused, err := e.members.Create(ctx, admin, east, []string{member1, member2, admin})
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[admin] == nil {
		t.Errorf("refused = %v, want only the administrator itself", refused)
	}
	// A second administrator in the same Region is refused, with the first named.
	refused, err = e.members.Create(ctx, admin2, east, []string{member1, member3})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(refused[member1], state.ErrOtherAdministrator) || !strings.Contains(refused[member1].Error(), admin) || refused[member3] != nil {
		t.Errorf("refused = %v, want member1 refused naming %s", refused, admin)
	}
	// In another Region the same account may have another administrator.
	if refused, err := e.members.Create(ctx, admin2, west, []string{member1}); err != nil || len(refused) > 0 {
		t.Errorf("other Region: %v %v", refused, err)
	}
	// Nesting is refused both ways.
	if refused, _ := e.members.Create(ctx, member1, east, []string{loner}); !errors.Is(refused[loner], state.ErrNesting) {
		t.Errorf("member as administrator: %v", refused)
	}
	if refused, _ := e.members.Create(ctx, admin, east, []string{admin2}); !errors.Is(refused[admin2], state.ErrNesting) {
		t.Errorf("administrator as member: %v", refused)
	}
	// Disassociating a non-member is refused.
	if refused, _ := e.members.Disassociate(ctx, admin, east, []string{loner}); !errors.Is(refused[loner], state.ErrNotMember) {
		t.Errorf("disassociate non-member: %v", refused)
	}
	if refused, err := e.members.Disassociate(ctx, admin, east, []string{member2}); err != nil || len(refused) > 0 {
		t.Fatalf("disassociate: %v %v", refused, err)
	}
	list, err := e.members.List(ctx, admin, east)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list {
		got = append(got, m.Account+":"+m.Status)
	}
	if want := member1 + ":ENABLED " + member2 + ":DISASSOCIATED"; strings.Join(got, " ") != want {
		t.Errorf("list = %v, want %s", got, want)
	}
	// Once disassociated, another administrator may take the account.
	if refused, err := e.members.Create(ctx, admin2, east, []string{member2}); err != nil || len(refused) > 0 {
		t.Errorf("take over a disassociated member: %v %v", refused, err)
	}
	e2e.Eventually(t, testWait, "the store sees the members", func() bool {
		return len(e.store.Members(admin, east)) == 1 && len(e.store.Members(admin2, east)) == 2
	})
}

// TestApplyIsIdempotent applies a configuration twice: the second apply
// writes nothing, and objects created outside the file are left alone.
func TestApplyIsIdempotent(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir(), Detectors: []config.Detector{
		{Account: admin, Region: east, Members: []string{member1}, Filters: []config.Filter{
			{Name: "from-file", Action: "ARCHIVE", FindingCriteria: map[string]any{"criterion": map[string]any{"severity": map[string]any{"lt": uint64(2)}}}},
		}},
	}}
	e := start(t, cfg)
	ctx := context.Background()
	if _, err := e.filters.Create(ctx, admin, east, mustFilter(t, "from-cli", "NOOP", 0, `{"Criterion":{}}`)); err != nil {
		t.Fatal(err)
	}
	revs := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, kv := range []jetstream.KeyValue{e.topo.Filters, e.topo.Members, e.topo.Detectors} {
			ks, _ := kv.ListKeys(ctx)
			for k := range ks.Keys() {
				en, err := kv.Get(ctx, k)
				if err == nil {
					out[kv.Bucket()+"/"+k] = en.Revision()
				}
			}
		}
		return out
	}
	before := revs()
	st := state.New(e.topo.Destinations, e.topo.Detectors, slog.New(slog.NewTextHandler(io.Discard, nil)),
		state.WithFilters(e.topo.Filters), state.WithMembers(e.topo.Members))
	if err := st.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	after := revs()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("second apply rewrote records:\nbefore %v\nafter  %v", before, after)
	}
	if _, ok := after[natsx.BucketFilters+"/"+state.FilterKey(admin, east, "from-cli")]; !ok {
		t.Error("a filter created outside the file was removed")
	}
	f, err := e.filters.Get(ctx, admin, east, "from-file")
	if err != nil || f.Rank != 1 || f.Action != filter.ActionArchive {
		t.Errorf("applied filter = %+v, %v", f, err)
	}
}

// A detector the file declares without a frequency keeps the one set since
// (detector update); declared, the file's applies.
func TestApplyFrequency(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir(), Detectors: []config.Detector{{Account: admin, Region: east}}}
	e := start(t, cfg)
	ctx := context.Background()
	get := func() state.Detector {
		t.Helper()
		d, found, err := e.store.GetDetector(ctx, admin, east)
		if err != nil || !found {
			t.Fatalf("detector: %v found %v", err, found)
		}
		return d
	}
	if d := get(); d.FindingPublishingFrequency != config.SixHours {
		t.Fatalf("first apply stored %q, want GuardDuty's SIX_HOURS", d.FindingPublishingFrequency)
	}
	if err := e.store.SetFrequency(ctx, admin, east, config.OneHour, time.Now()); err != nil {
		t.Fatal(err)
	}
	set := get()
	if err := e.store.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if d := get(); d != set {
		t.Errorf("a start reset the frequency set with detector update: %+v, want %+v", d, set)
	}
	cfg.Detectors[0].FindingPublishingFrequency = config.FifteenMinutes
	if err := e.store.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if d := get(); d.FindingPublishingFrequency != config.FifteenMinutes {
		t.Errorf("the file's declared frequency was not applied: %+v", d)
	}
}

// The default destination's id names its bucket, as a LOCAL one's names its
// root: pointing it at another bucket is a new destination, which exports
// every finding id afresh instead of taking the old bucket's as exported.
func TestDefaultS3DestinationIDNamesTheBucket(t *testing.T) {
	id := func(bucket string) string {
		e := start(t, &config.Config{DataDir: t.TempDir(), DefaultDestination: &config.Destination{DestinationType: "S3",
			Endpoint:              "http://127.0.0.1:9000",
			DestinationProperties: config.DestinationProperties{DestinationArn: "arn:aws:s3:::" + bucket, KmsKeyArn: "gdexport-key"}}})
		ds, drop := e.store.RouteFinding(loner, east)
		if drop != "" || len(ds) != 1 {
			t.Fatalf("route to the default destination: %v, %q", ds, drop)
		}
		return ds[0].ID
	}
	a, b := id("findings-a"), id("findings-b")
	if a == b {
		t.Fatalf("default destinations on buckets findings-a and findings-b share the id %s", a)
	}
	if a2 := id("findings-a"); a2 != a {
		t.Fatalf("the default destination on findings-a has ids %s and %s", a, a2)
	}
}
