package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/schedule"
	"github.com/gdexport/gdexport/stages/filter"
)

// keyDefault is the destinations bucket key of the default destination's
// template.
const keyDefault = "default"

// Detector is the export settings of one (account, Region).
type Detector struct {
	Account                    string `json:"account"`
	Region                     string `json:"region"`
	FindingPublishingFrequency string `json:"findingPublishingFrequency"`
	// PreviousFrequency and EffectiveFrom (epoch ms) describe a change of
	// frequency that has not taken effect yet: until EffectiveFrom windows
	// keep the previous length (DESIGN.md B6).
	PreviousFrequency string `json:"previousFrequency,omitempty"`
	EffectiveFrom     int64  `json:"effectiveFrom,omitempty"`
}

// Windows returns the detector's window schedule; override, when positive,
// replaces every length (the test-only windowOverride).
func (d Detector) Windows(override time.Duration) schedule.Windows {
	if override > 0 {
		return schedule.Windows{Length: override}
	}
	w := schedule.Windows{Length: config.FrequencyDuration[d.FindingPublishingFrequency]}
	if prev, ok := config.FrequencyDuration[d.PreviousFrequency]; ok && d.EffectiveFrom > 0 {
		w.Previous, w.From = prev, time.UnixMilli(d.EffectiveFrom).UTC()
	}
	return w
}

// WithFrequency returns the detector after changing, at now, to freq: the
// open window keeps its length and freq applies from the first boundary of
// freq after it closes.
func (d Detector) WithFrequency(freq string, now time.Time) Detector {
	cur := d.Windows(0).Settled(now)
	next := cur.Change(now, config.FrequencyDuration[freq])
	out := Detector{Account: d.Account, Region: d.Region, FindingPublishingFrequency: freq}
	if next.Previous > 0 {
		out.EffectiveFrom = next.From.UnixMilli()
		for name, l := range config.FrequencyDuration {
			if l == next.Previous {
				out.PreviousFrequency = name
			}
		}
	}
	return out
}

// owner is an (account, Region) pair as a map key that needs no allocation.
type owner struct{ account, region string }

// route is where the findings of one (account, Region) go, or why they go
// nowhere.
type route struct {
	dests []*pipeline.Destination
	drop  string
}

type snapshot struct {
	byID     map[string]*pipeline.Destination
	byOwner  map[string][]*pipeline.Destination // "<account>/<region>"
	def      *pipeline.Destination              // template; nil when none
	detector map[string]*Detector
	// members is every member record by (member, Region).
	members map[owner]*Member
	// routes holds the accounts whose routing is not just "the default
	// destination acting for them": those with destinations of their own
	// and those with a member record.
	routes map[owner]route
	// filters is the effective filter set of every (account, Region) that
	// has one: an enabled member's administrator's filters, then its own.
	filters map[owner]*filter.Set
	// own is each (account, Region)'s own filters, rank-ordered.
	own map[owner]*filter.Set
	// defaults caches the instances of the default destination.
	defaults sync.Map // owner → []*pipeline.Destination of one instance
}

func newSnapshot() *snapshot {
	return &snapshot{byID: map[string]*pipeline.Destination{}, byOwner: map[string][]*pipeline.Destination{},
		detector: map[string]*Detector{}, members: map[owner]*Member{}, routes: map[owner]route{},
		filters: map[owner]*filter.Set{}, own: map[owner]*filter.Set{}}
}

// Store is the shared configuration. Route, RouteFinding, Filters and
// Destination are safe for concurrent use and never block.
type Store struct {
	dests, dets      jetstream.KeyValue
	filters, members jetstream.KeyValue // nil when not given
	log              *slog.Logger
	clock            func() time.Time
	snap             atomic.Pointer[snapshot]
	ready            chan struct{}
	readyOnce        sync.Once
}

// Option configures a Store.
type Option func(*Store) error

// ErrNilBucket is returned by an option given a nil bucket.
var ErrNilBucket = errors.New("nil KV bucket")

// WithFilters serves saved filters from the filters bucket
// (natsx.BucketFilters) and lets Apply write the configured ones.
func WithFilters(kv jetstream.KeyValue) Option {
	return func(s *Store) error {
		if kv == nil {
			return fmt.Errorf("filters: %w", ErrNilBucket)
		}
		s.filters = kv
		return nil
	}
}

// WithMembers routes member accounts through the members bucket
// (natsx.BucketMembers) and lets Apply write the configured ones.
func WithMembers(kv jetstream.KeyValue) Option {
	return func(s *Store) error {
		if kv == nil {
			return fmt.Errorf("members: %w", ErrNilBucket)
		}
		s.members = kv
		return nil
	}
}

// New returns a Store over the destinations and detectors buckets. It
// panics on an invalid option (a programming error); NewStore returns it.
func New(dests, dets jetstream.KeyValue, log *slog.Logger, opts ...Option) *Store {
	s, err := NewStore(dests, dets, log, opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// NewStore is New returning an option's error.
func NewStore(dests, dets jetstream.KeyValue, log *slog.Logger, opts ...Option) (*Store, error) {
	s := &Store{dests: dests, dets: dets, log: log, clock: time.Now, ready: make(chan struct{})}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.snap.Store(newSnapshot())
	return s, nil
}

func ownerKey(account, region string) string { return account + "/" + region }

// DestinationFromConfig converts a configured destination of (account,
// Region) into its stored form with a stable id.
func DestinationFromConfig(account, region string, d *config.Destination) *pipeline.Destination {
	out := &pipeline.Destination{
		Account:    account,
		Region:     region,
		Type:       pipeline.DestinationType(d.DestinationType),
		Arn:        d.DestinationProperties.DestinationArn,
		KmsKeyArn:  d.DestinationProperties.KmsKeyArn,
		Root:       d.Root,
		Prefix:     strings.Trim(d.Prefix, "/"),
		Encryption: d.Encryption,
		KeyFile:    d.KeyFile,
		Endpoint:   d.Endpoint,
		KeyAccount: d.KeyAccount,

		KmsEndpoint: d.KmsEndpoint,
		RoleArn:     d.RoleArn,
		ExternalID:  d.ExternalID,
	}
	if out.KeyAccount == pipeline.KeyAccountAdministrator {
		out.KeyAccount = ""
	}
	if out.Type == pipeline.DestinationS3 && out.Prefix == "" {
		// GuardDuty's way: the prefix is the destination ARN's path.
		if b, err := awsarn.ParseS3Destination(out.Arn); err == nil {
			out.Prefix = b.Prefix
		}
	}
	if out.Root != "" {
		if abs, err := filepath.Abs(out.Root); err == nil {
			out.Root = abs
		}
	}
	if out.KeyFile != "" {
		if abs, err := filepath.Abs(out.KeyFile); err == nil {
			out.KeyFile = abs
		}
	}
	target := out.Arn
	if out.Type == pipeline.DestinationLocal {
		target = out.Root
	}
	out.ID = pipeline.DestinationID(account, region, string(out.Type), target, out.Prefix)
	return out
}

// Apply writes the configuration's detectors, destinations, filters and
// members to KV like `kubectl apply`: declared objects are created or
// updated, others are left alone. The default destination is replaced by the
// file's (removed when the file declares none). A declared member is
// ENABLED under its declared administrator, even one disassociated or moved
// since by a control command (the file is the declared state); filters and
// members are written only when the Store has their buckets.
func (s *Store) Apply(ctx context.Context, c *config.Config) error {
	if c.DefaultDestination != nil {
		d := DestinationFromConfig("", "", c.DefaultDestination)
		d.Default = true
		if err := putJSON(ctx, s.dests, keyDefault, d); err != nil {
			return err
		}
	} else if err := s.dests.Delete(ctx, keyDefault); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("remove default destination: %w", err)
	}
	for _, dt := range c.Detectors {
		if err := s.SetFrequency(ctx, dt.Account, dt.Region, dt.FindingPublishingFrequency, time.Now()); err != nil {
			return err
		}
		for i := range dt.Destinations {
			d := DestinationFromConfig(dt.Account, dt.Region, &dt.Destinations[i])
			if err := putJSON(ctx, s.dests, d.Account+"."+d.Region+"."+d.ID, d); err != nil {
				return err
			}
		}
		if err := s.applyFilters(ctx, dt); err != nil {
			return err
		}
		if err := s.applyMembers(ctx, dt); err != nil {
			return err
		}
	}
	return nil
}

// DetectorKey is the detectors bucket key of (account, region).
func DetectorKey(account, region string) string { return account + "." + region }

// GetDetector reads the stored settings of (account, region); found is
// false when none are stored (GuardDuty's default, SIX_HOURS, applies).
func (s *Store) GetDetector(ctx context.Context, account, region string) (d Detector, found bool, err error) {
	e, err := s.dets.Get(ctx, DetectorKey(account, region))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Detector{Account: account, Region: region, FindingPublishingFrequency: config.SixHours}, false, nil
	}
	if err != nil {
		return d, false, fmt.Errorf("read detector %s/%s: %w", account, region, err)
	}
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return d, false, fmt.Errorf("read detector %s/%s: %w", account, region, err)
	}
	return d, true, nil
}

// SetFrequency changes the findingPublishingFrequency of (account, region)
// at now (see Detector.WithFrequency); setting the frequency it already
// has changes nothing.
func (s *Store) SetFrequency(ctx context.Context, account, region, freq string, now time.Time) error {
	if _, ok := config.FrequencyDuration[freq]; !ok {
		return fmt.Errorf("findingPublishingFrequency %q: expected FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS", freq)
	}
	cur, found, err := s.GetDetector(ctx, account, region)
	if err != nil {
		return err
	}
	if found && cur.FindingPublishingFrequency == freq {
		return nil
	}
	next := cur.WithFrequency(freq, now)
	if !found {
		// A detector seen for the first time starts on its frequency.
		next = Detector{Account: account, Region: region, FindingPublishingFrequency: freq}
	}
	return putJSON(ctx, s.dets, DetectorKey(account, region), &next)
}

// putJSON writes v unless the stored value is already the same.
func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if cur, err := kv.Get(ctx, key); err == nil && bytes.Equal(cur.Value(), b) {
		return nil
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("write %s/%s: %w", kv.Bucket(), key, err)
	}
	return nil
}

// Run keeps the snapshot current until ctx ends. It returns an error only
// when a watch cannot be started or ends.
func (s *Store) Run(ctx context.Context) error {
	type watch struct {
		kv      jetstream.KeyValue
		w       jetstream.KeyWatcher
		updates <-chan jetstream.KeyValueEntry
		loaded  bool
	}
	var ws [4]watch
	for i, kv := range []jetstream.KeyValue{s.dests, s.dets, s.filters, s.members} {
		if kv == nil {
			ws[i].loaded = true // nil updates: never selected
			continue
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			return fmt.Errorf("watch %s: %w", kv.Bucket(), err)
		}
		defer w.Stop()
		ws[i] = watch{kv: kv, w: w, updates: w.Updates()}
	}
	raw := [2]map[string][]byte{{}, {}} // destinations, detectors
	filters := map[string]*filterEntry{}
	members := map[string]*Member{}
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		var i int
		select {
		case <-ctx.Done():
			return nil
		case e, ok = <-ws[0].updates:
			i = 0
		case e, ok = <-ws[1].updates:
			i = 1
		case e, ok = <-ws[2].updates:
			i = 2
		case e, ok = <-ws[3].updates:
			i = 3
		}
		if !ok {
			return fmt.Errorf("watch %s ended", ws[i].kv.Bucket())
		}
		if e == nil {
			ws[i].loaded = true
		} else {
			put := e.Operation() == jetstream.KeyValuePut
			switch i {
			case 0, 1:
				if put {
					raw[i][e.Key()] = e.Value()
				} else {
					delete(raw[i], e.Key())
				}
			case 2:
				delete(filters, e.Key())
				if put {
					if fe := s.readFilter(e); fe != nil {
						filters[e.Key()] = fe
					}
				}
			case 3:
				delete(members, e.Key())
				if put {
					if m := s.readMember(e); m != nil {
						members[e.Key()] = m
					}
				}
			}
		}
		if ws[0].loaded && ws[1].loaded && ws[2].loaded && ws[3].loaded {
			s.rebuild(raw[0], raw[1], filters, members)
			s.readyOnce.Do(func() { close(s.ready) })
		}
	}
}

func (s *Store) rebuild(dests, dets map[string][]byte, filters map[string]*filterEntry, members map[string]*Member) {
	n := newSnapshot()
	for k, v := range dests {
		var d pipeline.Destination
		if err := json.Unmarshal(v, &d); err != nil {
			s.log.Warn("ignoring unreadable destination", slog.String("key", k), slog.Any("error", err))
			continue
		}
		if k == keyDefault {
			n.def = &d
			continue
		}
		n.byID[d.ID] = &d
		ok := ownerKey(d.Account, d.Region)
		n.byOwner[ok] = append(n.byOwner[ok], &d)
	}
	for _, ds := range n.byOwner {
		// Map order must not decide the order of a finding's destinations.
		sort.Slice(ds, func(i, j int) bool { return ds[i].ID < ds[j].ID })
	}
	for k, v := range dets {
		var d Detector
		if err := json.Unmarshal(v, &d); err != nil {
			s.log.Warn("ignoring unreadable detector", slog.String("key", k), slog.Any("error", err))
			continue
		}
		n.detector[ownerKey(d.Account, d.Region)] = &d
	}
	for _, m := range members {
		n.members[owner{m.Account, m.Region}] = m
	}
	n.buildRoutes()
	n.buildFilters(filters)
	s.snap.Store(n)
}

// buildRoutes precomputes the routing of every account with destinations
// of its own or a member record (DESIGN.md B3 and the default destination's
// rule); every other account is served by the default destination alone.
func (n *snapshot) buildRoutes() {
	for ok, ds := range n.byOwner {
		a, r, _ := strings.Cut(ok, "/")
		n.routes[owner{a, r}] = route{dests: ds}
	}
	for o, m := range n.members {
		own := n.byOwner[ownerKey(o.account, o.region)]
		switch m.Status {
		case StatusEnabled:
			dests := append([]*pipeline.Destination(nil), own...)
			dests = append(dests, n.effective(m.Administrator, o.region)...)
			if len(dests) == 0 {
				n.routes[o] = route{drop: pipeline.DropNoDestination}
			} else {
				n.routes[o] = route{dests: dests}
			}
		default: // disassociated: its own destinations only, never the default
			if len(own) == 0 {
				n.routes[o] = route{drop: pipeline.DropDisassociated}
			} else {
				n.routes[o] = route{dests: own}
			}
		}
	}
}

// effective is where an administrator's findings go: its own destinations,
// or else the default destination acting for it.
func (n *snapshot) effective(account, region string) []*pipeline.Destination {
	if ds := n.byOwner[ownerKey(account, region)]; len(ds) > 0 {
		return ds
	}
	if n.def == nil {
		return nil
	}
	return []*pipeline.Destination{n.defaultFor(account, region)}
}

// buildFilters orders each (account, Region)'s filters and composes the
// effective sets: an enabled member is judged by its administrator's
// filters for that Region, then by its own.
func (n *snapshot) buildFilters(entries map[string]*filterEntry) {
	grouped := map[owner][]*filter.Filter{}
	for _, e := range entries {
		o := owner{e.account, e.region}
		grouped[o] = append(grouped[o], e.filter)
	}
	for o, fs := range grouped {
		n.own[o] = filter.NewSet(fs)
		n.filters[o] = n.own[o]
	}
	for o, m := range n.members {
		if m.Status != StatusEnabled {
			continue
		}
		if set := filter.Concat(n.own[owner{m.Administrator, o.region}], n.own[o]); set != nil {
			n.filters[o] = set
		}
	}
}

// Ready is closed once the first snapshot is loaded.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Route returns every destination a finding of (account, region) goes to
// (nil when none does); see RouteFinding.
func (s *Store) Route(account, region string) []*pipeline.Destination {
	ds, _ := s.RouteFinding(account, region)
	return ds
}

// RouteFinding returns every destination a finding of (account, region)
// goes to (DESIGN.md B3, B4): the account's own destinations for that
// Region and, for an enabled member, its administrator's (the
// administrator's own, or else the default destination acting for the
// administrator). An account with neither a destination nor an
// administrator is served by the default destination acting for it; a
// disassociated member is not. When no destination receives the finding,
// drop is the reason: pipeline.DropDisassociated or
// pipeline.DropNoDestination. The slice is read-only. It does not block.
func (s *Store) RouteFinding(account, region string) (dests []*pipeline.Destination, drop string) {
	sn := s.snap.Load()
	if r, ok := sn.routes[owner{account, region}]; ok {
		return r.dests, r.drop
	}
	if sn.def == nil {
		return nil, pipeline.DropNoDestination
	}
	return sn.defaultRoute(account, region), ""
}

// Filters returns the saved filters that judge findings of (account,
// region): an enabled member's administrator's for that Region, then its
// own; nil when there are none. It implements the filter stage's Rules and
// does not block.
func (s *Store) Filters(account, region string) *filter.Set {
	return s.snap.Load().filters[owner{account, region}]
}

// Members returns the member records of administrator in region, sorted by
// member account, as the snapshot holds them.
func (s *Store) Members(administrator, region string) []Member {
	var out []Member
	for o, m := range s.snap.Load().members {
		if o.region == region && m.Administrator == administrator {
			out = append(out, *m)
		}
	}
	sortMembers(out)
	return out
}

// defaultFor returns the instance of the default destination acting for
// (account, region); n.def must not be nil.
func (n *snapshot) defaultFor(account, region string) *pipeline.Destination {
	return n.defaultRoute(account, region)[0]
}

// defaultRoute is defaultFor as a route of one destination, cached so that
// routing a finding allocates nothing.
func (n *snapshot) defaultRoute(account, region string) []*pipeline.Destination {
	o := owner{account, region}
	if r, ok := n.defaults.Load(o); ok {
		return r.([]*pipeline.Destination)
	}
	d := *n.def
	// Like a declared destination's, the id names where objects go (the
	// root, or the bucket), so that pointing the default destination
	// elsewhere starts a new destination that exports every id afresh.
	target := n.def.Root
	if n.def.Type == pipeline.DestinationS3 {
		target = n.def.Arn
	}
	d.ID = pipeline.DestinationID("default", account, region, target, n.def.Prefix)
	d.Account, d.Region, d.Default = account, region, true
	actual, _ := n.defaults.LoadOrStore(o, []*pipeline.Destination{&d})
	return actual.([]*pipeline.Destination)
}

// Destination finds a destination by id. account and region are the owner
// recorded in a sealed batch; they identify an instance of the default
// destination, whose id is derived from them.
func (s *Store) Destination(id, account, region string) (*pipeline.Destination, bool) {
	sn := s.snap.Load()
	if d, ok := sn.byID[id]; ok {
		return d, true
	}
	if sn.def != nil {
		if d := sn.defaultFor(account, region); d.ID == id {
			return d, true
		}
	}
	return nil, false
}

// Detector returns the settings of (account, region), or defaults when none
// are stored (SIX_HOURS, as GuardDuty).
func (s *Store) Detector(account, region string) Detector {
	if d, ok := s.snap.Load().detector[ownerKey(account, region)]; ok {
		return *d
	}
	return Detector{Account: account, Region: region, FindingPublishingFrequency: config.SixHours}
}
