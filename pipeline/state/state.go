package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/schedule"
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

type snapshot struct {
	byID     map[string]*pipeline.Destination
	byOwner  map[string][]*pipeline.Destination // "<account>/<region>"
	def      *pipeline.Destination              // template; nil when none
	detector map[string]*Detector
}

// Store is the shared configuration. Route and Destination are safe for
// concurrent use and never block.
type Store struct {
	dests, dets jetstream.KeyValue
	log         *slog.Logger
	snap        atomic.Pointer[snapshot]
	defaults    sync.Map // id → *pipeline.Destination, instances of the default
	ready       chan struct{}
	readyOnce   sync.Once
}

// New returns a Store over the destinations and detectors buckets.
func New(dests, dets jetstream.KeyValue, log *slog.Logger) *Store {
	s := &Store{dests: dests, dets: dets, log: log, ready: make(chan struct{})}
	s.snap.Store(&snapshot{byID: map[string]*pipeline.Destination{}, byOwner: map[string][]*pipeline.Destination{}, detector: map[string]*Detector{}})
	return s
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

		KmsEndpoint: d.KmsEndpoint,
		RoleArn:     d.RoleArn,
		ExternalID:  d.ExternalID,
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

// Apply writes the configuration's detectors and destinations to KV like
// `kubectl apply`: declared objects are created or updated, others are left
// alone. The default destination is replaced by the file's (removed when the
// file declares none).
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
// when a watch cannot be started.
func (s *Store) Run(ctx context.Context) error {
	dw, err := s.dests.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.dests.Bucket(), err)
	}
	defer dw.Stop()
	tw, err := s.dets.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.dets.Bucket(), err)
	}
	defer tw.Stop()
	dests := map[string][]byte{}
	dets := map[string][]byte{}
	dInit, tInit := false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-dw.Updates():
			if !ok {
				return fmt.Errorf("watch %s ended", s.dests.Bucket())
			}
			if e == nil {
				dInit = true
			} else if e.Operation() == jetstream.KeyValuePut {
				dests[e.Key()] = e.Value()
			} else {
				delete(dests, e.Key())
			}
		case e, ok := <-tw.Updates():
			if !ok {
				return fmt.Errorf("watch %s ended", s.dets.Bucket())
			}
			if e == nil {
				tInit = true
			} else if e.Operation() == jetstream.KeyValuePut {
				dets[e.Key()] = e.Value()
			} else {
				delete(dets, e.Key())
			}
		}
		if dInit && tInit {
			s.rebuild(dests, dets)
			s.readyOnce.Do(func() { close(s.ready) })
		}
	}
}

func (s *Store) rebuild(dests, dets map[string][]byte) {
	n := &snapshot{byID: map[string]*pipeline.Destination{}, byOwner: map[string][]*pipeline.Destination{}, detector: map[string]*Detector{}}
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
	for k, v := range dets {
		var d Detector
		if err := json.Unmarshal(v, &d); err != nil {
			s.log.Warn("ignoring unreadable detector", slog.String("key", k), slog.Any("error", err))
			continue
		}
		n.detector[ownerKey(d.Account, d.Region)] = &d
	}
	s.snap.Store(n)
	s.defaults.Clear()
}

// Ready is closed once the first snapshot is loaded.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// Route returns every destination a finding of (account, region) goes to:
// the account's own destinations for that Region, or else the default
// destination acting for the account (nil when there is none).
func (s *Store) Route(account, region string) []*pipeline.Destination {
	sn := s.snap.Load()
	if ds := sn.byOwner[ownerKey(account, region)]; len(ds) > 0 {
		return ds
	}
	if sn.def == nil {
		return nil
	}
	return []*pipeline.Destination{s.defaultFor(sn, account, region)}
}

func (s *Store) defaultFor(sn *snapshot, account, region string) *pipeline.Destination {
	id := pipeline.DestinationID("default", account, region, sn.def.Root, sn.def.Prefix)
	if d, ok := s.defaults.Load(id); ok {
		return d.(*pipeline.Destination)
	}
	d := *sn.def
	d.ID, d.Account, d.Region, d.Default = id, account, region, true
	s.defaults.Store(id, &d)
	return &d
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
		if d := s.defaultFor(sn, account, region); d.ID == id {
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
