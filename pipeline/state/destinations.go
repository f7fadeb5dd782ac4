package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
)

// Errors of the destination operations.
var (
	// ErrDestinationExists is returned when creating a destination that
	// exists (the same type, ARN or root and prefix for the same account
	// and Region have the same id).
	ErrDestinationExists = errors.New("destination already exists")
	// ErrDestinationNotFound is returned for an id the (account, Region)
	// does not have.
	ErrDestinationNotFound = errors.New("destination not found")
)

// DestinationKey is the destinations bucket key of a destination of
// (account, region): <account>.<region>.<id>.
func DestinationKey(account, region, id string) string { return account + "." + region + "." + id }

// DefaultInstance is the default destination def acting for (account,
// region): its own id, derived from both, and def's other properties.
func DefaultInstance(def *pipeline.Destination, account, region string) *pipeline.Destination {
	d := *def
	// Like a declared destination's, the id names where objects go (the
	// root, or the bucket), so that pointing the default destination
	// elsewhere starts a new destination that exports every id afresh.
	target := def.Root
	if def.Type == pipeline.DestinationS3 {
		target = def.Arn
	}
	d.ID = pipeline.DestinationID("default", account, region, target, def.Prefix)
	d.Account, d.Region, d.Default = account, region, true
	return &d
}

// Destinations are the control operations behind `gdexport destination`,
// in the shapes of GuardDuty's publishing destination API. Every change
// is made to the status first (PENDING_VERIFICATION, with the hash of the
// record to verify), then to the destination record, so that no worker
// writes a destination before it is verified.
type Destinations struct {
	kv       jetstream.KeyValue
	statuses *Statuses
}

// NewDestinations returns the operations over the destinations bucket
// (natsx.BucketDestinations) and the statuses.
func NewDestinations(kv jetstream.KeyValue, statuses *Statuses) *Destinations {
	return &Destinations{kv: kv, statuses: statuses}
}

// Statuses returns the statuses the operations change.
func (ds *Destinations) Statuses() *Statuses { return ds.statuses }

// Create stores a new destination PENDING_VERIFICATION; a worker verifies
// it (DESIGN.md B12) and makes it PUBLISHING.
func (ds *Destinations) Create(ctx context.Context, d *pipeline.Destination) (Status, error) {
	key := DestinationKey(d.Account, d.Region, d.ID)
	if _, err := ds.kv.Get(ctx, key); err == nil {
		return Status{}, fmt.Errorf("destination %s of account %s in %s: %w", d.ID, d.Account, d.Region, ErrDestinationExists)
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return Status{}, fmt.Errorf("read destination %s: %w", d.ID, err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return Status{}, err
	}
	st, err := ds.statuses.Create(ctx, d, PropertiesHash(d))
	if errors.Is(err, ErrStatusExists) {
		// A status without its destination (an earlier create that did not
		// finish): begin again.
		st, err = ds.statuses.Restart(ctx, d, "created", PropertiesHash(d))
	}
	if err != nil {
		return st, err
	}
	if _, err := ds.kv.Create(ctx, key, b); err != nil {
		if isWrongRevision(err) {
			return st, fmt.Errorf("destination %s: %w", d.ID, ErrDestinationExists)
		}
		return st, fmt.Errorf("write destination %s: %w", d.ID, err)
	}
	return st, nil
}

// Get returns a destination of (account, region) by id.
func (ds *Destinations) Get(ctx context.Context, account, region, id string) (*pipeline.Destination, error) {
	d, _, err := ds.get(ctx, account, region, id)
	return d, err
}

func (ds *Destinations) get(ctx context.Context, account, region, id string) (*pipeline.Destination, uint64, error) {
	e, err := ds.kv.Get(ctx, DestinationKey(account, region, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("destination %s of account %s in %s: %w", id, account, region, ErrDestinationNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read destination %s: %w", id, err)
	}
	var d pipeline.Destination
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return nil, 0, fmt.Errorf("read destination %s: %w", id, err)
	}
	return &d, e.Revision(), nil
}

// List returns the destinations of (account, region), by id.
func (ds *Destinations) List(ctx context.Context, account, region string) ([]*pipeline.Destination, error) {
	es, err := readAll(ctx, ds.kv, account+"."+region+".*")
	if err != nil {
		return nil, err
	}
	out := make([]*pipeline.Destination, 0, len(es))
	for _, e := range es {
		var d pipeline.Destination
		if err := json.Unmarshal(e.Value(), &d); err != nil {
			return nil, fmt.Errorf("read destination %s: %w", e.Key(), err)
		}
		out = append(out, &d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Default returns the default destination's template (found false when
// the configuration declares none).
func (ds *Destinations) Default(ctx context.Context) (*pipeline.Destination, bool, error) {
	e, err := ds.kv.Get(ctx, keyDefault)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the default destination: %w", err)
	}
	var d pipeline.Destination
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return nil, false, fmt.Errorf("read the default destination: %w", err)
	}
	return &d, true, nil
}

// Update replaces a destination with d (same account, Region and id) and
// restarts it: PENDING_VERIFICATION until a worker has verified the new
// properties, then PUBLISHING, which exports the backlog. An update that
// changes nothing restarts it too (GuardDuty's way to resume a STOPPED
// destination).
func (ds *Destinations) Update(ctx context.Context, d *pipeline.Destination) (Status, error) {
	_, rev, err := ds.get(ctx, d.Account, d.Region, d.ID)
	if err != nil {
		return Status{}, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return Status{}, err
	}
	st, err := ds.statuses.Restart(ctx, d, "updated", PropertiesHash(d))
	if err != nil {
		return st, err
	}
	if _, err := ds.kv.Update(ctx, DestinationKey(d.Account, d.Region, d.ID), b, rev); err != nil {
		if isWrongRevision(err) {
			return st, fmt.Errorf("destination %s changed concurrently; try again: %w", d.ID, err)
		}
		return st, fmt.Errorf("write destination %s: %w", d.ID, err)
	}
	return st, nil
}

// Restart makes the destination PENDING_VERIFICATION again: a worker
// verifies it and, once PUBLISHING, exports its backlog. This is how a
// STOPPED destination resumes.
func (ds *Destinations) Restart(ctx context.Context, d *pipeline.Destination) (Status, error) {
	return ds.statuses.Restart(ctx, d, "restarted", PropertiesHash(d))
}

// Delete removes a destination; its status becomes a tombstone, so that
// workers drop the batches still sealed for it.
func (ds *Destinations) Delete(ctx context.Context, account, region, id string) error {
	d, _, err := ds.get(ctx, account, region, id)
	if err != nil {
		return err
	}
	if err := ds.statuses.MarkDeleted(ctx, d); err != nil {
		return err
	}
	if err := ds.kv.Delete(ctx, DestinationKey(account, region, id)); err != nil {
		return fmt.Errorf("delete destination %s: %w", id, err)
	}
	return nil
}

// applyDestination writes a configured destination like `kubectl apply`:
// a new one (or one without a status) starts PENDING_VERIFICATION, a
// changed one is restarted; an unchanged one is left alone.
func (s *Store) applyDestination(ctx context.Context, d *pipeline.Destination) error {
	key := DestinationKey(d.Account, d.Region, d.ID)
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	cur, err := s.dests.Get(ctx, key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read %s/%s: %w", s.dests.Bucket(), key, err)
	}
	same := err == nil && bytes.Equal(cur.Value(), b)
	if s.statuses != nil {
		st, _, found, err := s.statuses.Get(ctx, d.ID)
		if err != nil {
			return err
		}
		switch {
		case !found || st.Deleted:
			if _, err := s.statuses.Create(ctx, d, PropertiesHash(d)); err != nil && !errors.Is(err, ErrStatusExists) {
				return err
			}
		case !same:
			if _, err := s.statuses.Restart(ctx, d, "updated", PropertiesHash(d)); err != nil {
				return err
			}
		}
	}
	if same {
		return nil
	}
	if _, err := s.dests.Put(ctx, key, b); err != nil {
		return fmt.Errorf("write %s/%s: %w", s.dests.Bucket(), key, err)
	}
	return nil
}
