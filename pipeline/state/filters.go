package state

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/stages/filter"
)

// Errors of the filter operations.
var (
	// ErrFilterExists is returned when creating a filter whose name the
	// (account, Region) already uses.
	ErrFilterExists = errors.New("filter already exists")
	// ErrFilterNotFound is returned for a filter name the (account, Region)
	// does not have.
	ErrFilterNotFound = errors.New("filter not found")
	// ErrTooManyFilters is returned when an (account, Region) already has
	// filter.MaxFiltersPerAccount filters.
	ErrTooManyFilters = errors.New("too many filters")
	// ErrConflict is returned when a record changed between its read and
	// its write too many times in a row.
	ErrConflict = errors.New("changed concurrently")
)

// FilterKey is the filters bucket key of a filter: <account>.<region>.<name>
// (names may hold dots; accounts and Regions do not). A name that would make
// an invalid key (a leading or trailing dot, two dots in a row) is written
// as "=" and its hex digits: filter names never hold "=".
func FilterKey(account, region, name string) string {
	return account + "." + region + "." + nameToken(name)
}

func nameToken(name string) string {
	if name == "" || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return "=" + hex.EncodeToString([]byte(name))
	}
	return name
}

// parseFilterKey splits a filters bucket key.
func parseFilterKey(key string) (account, region, name string, ok bool) {
	account, rest, ok1 := strings.Cut(key, ".")
	region, token, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return "", "", "", false
	}
	if strings.HasPrefix(token, "=") {
		b, err := hex.DecodeString(token[1:])
		if err != nil {
			return "", "", "", false
		}
		token = string(b)
	}
	return account, region, token, true
}

// filterEntry is a compiled filter record.
type filterEntry struct {
	account, region string
	filter          *filter.Filter
}

// readFilter compiles a filter record; an unreadable one is logged and
// ignored (nil), so that one bad record never stops a worker.
func (s *Store) readFilter(e jetstream.KeyValueEntry) *filterEntry {
	account, region, name, ok := parseFilterKey(e.Key())
	f, err := filter.ParseFilter(e.Value())
	if err == nil && (!ok || f.Name != name) {
		err = fmt.Errorf("key does not name the filter %q as <account>.<region>.<name>", f.Name)
	}
	if err != nil {
		s.log.Warn("ignoring unreadable filter", slog.String("key", e.Key()), slog.Uint64("revision", e.Revision()), slog.Any("error", err))
		return nil
	}
	return &filterEntry{account: account, region: region, filter: f}
}

// applyFilters writes a detector's configured filters.
func (s *Store) applyFilters(ctx context.Context, dt config.Detector) error {
	if s.filters == nil {
		return nil
	}
	for i := range dt.Filters {
		f, err := filter.NewFilter(dt.Filters[i].Spec())
		if err != nil {
			return fmt.Errorf("filter %q of %s in %s: %w", dt.Filters[i].Name, dt.Account, dt.Region, err)
		}
		if f.Rank == 0 {
			f = f.WithRank(i + 1)
		}
		if f.Action == filter.ActionArchive && f.Criteria.Len() == 0 {
			s.log.Warn("an ARCHIVE filter with an empty criterion archives every finding of its account and Region (and of its members)",
				slog.String("filter", f.Name), slog.String("account", dt.Account), slog.String("region", dt.Region))
		}
		if err := putJSON(ctx, s.filters, FilterKey(dt.Account, dt.Region, f.Name), f); err != nil {
			return err
		}
	}
	return nil
}

// Filters edits the saved filters of (account, Region) in the filters
// bucket, as `gdexport filter` does. Every worker watching the bucket applies
// a change within moments. Safe for concurrent use.
type Filters struct {
	kv jetstream.KeyValue
}

// NewFilters returns the filter operations over the filters bucket.
func NewFilters(kv jetstream.KeyValue) *Filters { return &Filters{kv: kv} }

// List returns the filters of (account, region) in the order they apply.
func (fs *Filters) List(ctx context.Context, account, region string) ([]*filter.Filter, error) {
	entries, err := readAll(ctx, fs.kv, account+"."+region+".>")
	if err != nil {
		return nil, err
	}
	var out []*filter.Filter
	for _, e := range entries {
		f, err := filter.ParseFilter(e.Value())
		if err != nil {
			return nil, fmt.Errorf("stored filter %s is unreadable: %w", e.Key(), err)
		}
		out = append(out, f)
	}
	return filter.NewSet(out).Filters(), nil
}

// Get returns one filter.
func (fs *Filters) Get(ctx context.Context, account, region, name string) (*filter.Filter, error) {
	f, _, err := fs.get(ctx, account, region, name)
	return f, err
}

func (fs *Filters) get(ctx context.Context, account, region, name string) (*filter.Filter, uint64, error) {
	e, err := fs.kv.Get(ctx, FilterKey(account, region, name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("filter %q of account %s in %s: %w", name, account, region, ErrFilterNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read filter %q: %w", name, err)
	}
	f, err := filter.ParseFilter(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("stored filter %s is unreadable: %w", e.Key(), err)
	}
	return f, e.Revision(), nil
}

// Create saves a new filter. A filter without a rank gets the next one
// after the highest rank in use (at most filter.MaxRank). It refuses a name
// already used (ErrFilterExists) and a 101st filter (ErrTooManyFilters);
// two concurrent creates may both pass the count.
func (fs *Filters) Create(ctx context.Context, account, region string, f *filter.Filter) (*filter.Filter, error) {
	existing, err := fs.List(ctx, account, region)
	if err != nil {
		return nil, err
	}
	if len(existing) >= filter.MaxFiltersPerAccount {
		return nil, fmt.Errorf("account %s in %s has %d filters: %w (at most %d per account and Region)",
			account, region, len(existing), ErrTooManyFilters, filter.MaxFiltersPerAccount)
	}
	if f.Rank == 0 {
		rank := 0
		for _, e := range existing {
			rank = max(rank, e.Rank)
		}
		f = f.WithRank(min(rank+1, filter.MaxRank))
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	if _, err := fs.kv.Create(ctx, FilterKey(account, region, f.Name), b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("filter %q of account %s in %s: %w", f.Name, account, region, ErrFilterExists)
		}
		return nil, fmt.Errorf("save filter %q: %w", f.Name, err)
	}
	return f, nil
}

// Update changes a filter with change, which edits its spec (the name
// cannot change), then checks and saves it with compare-and-set, retrying
// when another writer got there first.
func (fs *Filters) Update(ctx context.Context, account, region, name string, change func(*filter.Spec)) (*filter.Filter, error) {
	for attempt := 0; attempt < 5; attempt++ {
		cur, rev, err := fs.get(ctx, account, region, name)
		if err != nil {
			return nil, err
		}
		spec := cur.Spec()
		change(&spec)
		spec.Name = name
		f, err := filter.NewFilter(spec)
		if err != nil {
			return nil, err
		}
		if f.Rank == 0 {
			f = f.WithRank(cur.Rank)
		}
		b, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		_, err = fs.kv.Update(ctx, FilterKey(account, region, name), b, rev)
		if err == nil {
			return f, nil
		}
		if !isWrongRevision(err) {
			return nil, fmt.Errorf("save filter %q: %w", name, err)
		}
	}
	return nil, fmt.Errorf("filter %q: %w", name, ErrConflict)
}

// Delete removes a filter.
func (fs *Filters) Delete(ctx context.Context, account, region, name string) error {
	if _, _, err := fs.get(ctx, account, region, name); err != nil {
		return err
	}
	if err := fs.kv.Delete(ctx, FilterKey(account, region, name)); err != nil {
		return fmt.Errorf("delete filter %q: %w", name, err)
	}
	return nil
}

// readAll returns the current entries of a bucket whose keys match filter.
func readAll(ctx context.Context, kv jetstream.KeyValue, filter string) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kv.Bucket(), err)
	}
	defer w.Stop()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("read %s: watch ended", kv.Bucket())
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}
