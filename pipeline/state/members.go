package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/config"
)

// Relationship statuses of a member account.
const (
	// StatusEnabled: the member's findings in the Region are also exported
	// to its administrator's destinations.
	StatusEnabled = "ENABLED"
	// StatusDisassociated: they are not; the member exports only to
	// destinations of its own, and is not served by the default
	// destination either.
	StatusDisassociated = "DISASSOCIATED"
)

// Errors of the member operations.
var (
	// ErrOtherAdministrator is returned when an account already has another
	// enabled administrator in the Region: a member has at most one.
	ErrOtherAdministrator = errors.New("already a member of another administrator")
	// ErrNotMember is returned when disassociating an account that is not a
	// member of the administrator in the Region.
	ErrNotMember = errors.New("not a member of this administrator")
	// ErrNesting is returned when a member would be an administrator, or an
	// administrator a member, in the same Region.
	ErrNesting = errors.New("members cannot have members")
)

// Member is a member account's relationship with its administrator in one
// Region, kept in the members bucket under <region>.<member>, so that a
// member has one administrator per Region by construction.
type Member struct {
	Account       string `json:"accountId"`
	Administrator string `json:"administratorId"`
	Region        string `json:"region"`
	Status        string `json:"relationshipStatus"`
	// UpdatedAt is when the relationship last changed (RFC 3339, UTC).
	UpdatedAt string `json:"updatedAt"`
}

// MemberKey is the members bucket key of a member account in a Region.
func MemberKey(region, member string) string { return region + "." + member }

func (s *Store) readMember(e jetstream.KeyValueEntry) *Member {
	var m Member
	err := json.Unmarshal(e.Value(), &m)
	if err == nil && (e.Key() != MemberKey(m.Region, m.Account) || !pipeline.ValidAccount(m.Administrator)) {
		err = errors.New("key or administrator does not match the record")
	}
	if err == nil && m.Status != StatusEnabled && m.Status != StatusDisassociated {
		err = fmt.Errorf("status %q", m.Status)
	}
	if err != nil {
		s.log.Warn("ignoring unreadable member record", slog.String("key", e.Key()), slog.Any("error", err))
		return nil
	}
	return &m
}

// applyMembers makes a detector's configured members ENABLED members of it.
func (s *Store) applyMembers(ctx context.Context, dt config.Detector) error {
	if s.members == nil || len(dt.Members) == 0 {
		return nil
	}
	ms := NewMembers(s.members)
	ms.clock = s.clock
	for _, account := range dt.Members {
		prev, err := ms.set(ctx, dt.Account, dt.Region, account, StatusEnabled, true)
		if err != nil {
			return err
		}
		if prev != nil && prev.Administrator != dt.Account && prev.Status == StatusEnabled {
			s.log.Warn("configuration moves a member to another administrator",
				slog.String("member", account), slog.String("region", dt.Region),
				slog.String("from", prev.Administrator), slog.String("to", dt.Account))
		}
	}
	return nil
}

// Members edits member relationships in the members bucket, as `gdexport
// members` does. Safe for concurrent use.
type Members struct {
	kv    jetstream.KeyValue
	clock func() time.Time
}

// NewMembers returns the member operations over the members bucket.
func NewMembers(kv jetstream.KeyValue) *Members { return &Members{kv: kv, clock: time.Now} }

// Create makes each account an ENABLED member of administrator in region.
// An account that is already a member of administrator (disassociated or
// not) is enabled again. It refuses, per account, the administrator itself,
// an account with another enabled administrator in the Region
// (ErrOtherAdministrator), and nesting (ErrNesting); the others are still
// created. The returned map holds the refused accounts and why.
func (ms *Members) Create(ctx context.Context, administrator, region string, accounts []string) (map[string]error, error) {
	all, err := ms.all(ctx, region)
	if err != nil {
		return nil, err
	}
	refused := map[string]error{}
	if m, ok := all[administrator]; ok && m.Status == StatusEnabled {
		err := fmt.Errorf("administrator %s is itself a member of %s in %s: %w", administrator, m.Administrator, region, ErrNesting)
		for _, a := range accounts {
			refused[a] = err
		}
		return refused, nil
	}
	for _, a := range accounts {
		switch {
		case a == administrator:
			refused[a] = fmt.Errorf("account %s is the administrator itself", a)
			continue
		case hasMembers(all, a):
			refused[a] = fmt.Errorf("account %s is an administrator with members in %s: %w", a, region, ErrNesting)
			continue
		}
		if _, err := ms.set(ctx, administrator, region, a, StatusEnabled, false); err != nil {
			if errors.Is(err, ErrOtherAdministrator) {
				refused[a] = err
				continue
			}
			return refused, err
		}
	}
	return refused, nil
}

// Disassociate marks each account DISASSOCIATED from administrator in
// region. Refused accounts (not its members: ErrNotMember) are returned
// with the reason; the others are still disassociated.
func (ms *Members) Disassociate(ctx context.Context, administrator, region string, accounts []string) (map[string]error, error) {
	refused := map[string]error{}
	for _, a := range accounts {
		if _, err := ms.set(ctx, administrator, region, a, StatusDisassociated, false); err != nil {
			if errors.Is(err, ErrNotMember) || errors.Is(err, ErrOtherAdministrator) {
				refused[a] = err
				continue
			}
			return refused, err
		}
	}
	return refused, nil
}

// List returns the members of administrator in region, sorted by account.
func (ms *Members) List(ctx context.Context, administrator, region string) ([]Member, error) {
	all, err := ms.all(ctx, region)
	if err != nil {
		return nil, err
	}
	var out []Member
	for _, m := range all {
		if m.Administrator == administrator {
			out = append(out, *m)
		}
	}
	sortMembers(out)
	return out, nil
}

func (ms *Members) all(ctx context.Context, region string) (map[string]*Member, error) {
	entries, err := readAll(ctx, ms.kv, region+".*")
	if err != nil {
		return nil, err
	}
	out := map[string]*Member{}
	for _, e := range entries {
		var m Member
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			return nil, fmt.Errorf("stored member %s is unreadable: %w", e.Key(), err)
		}
		out[m.Account] = &m
	}
	return out, nil
}

func hasMembers(all map[string]*Member, administrator string) bool {
	for _, m := range all {
		if m.Administrator == administrator && m.Status == StatusEnabled {
			return true
		}
	}
	return false
}

// set writes (administrator, region, account, status) with compare-and-set
// and returns the record it replaced (nil when there was none). Unless
// force, it refuses to take an account that another administrator has
// enabled, and to disassociate an account that is not a member of
// administrator. It writes nothing when the record is already so.
func (ms *Members) set(ctx context.Context, administrator, region, account, status string, force bool) (*Member, error) {
	key := MemberKey(region, account)
	for attempt := 0; attempt < 5; attempt++ {
		var prev *Member
		var rev uint64
		e, err := ms.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return nil, fmt.Errorf("read member %s: %w", key, err)
		default:
			rev = e.Revision()
			prev = &Member{}
			if err := json.Unmarshal(e.Value(), prev); err != nil {
				prev = nil // unreadable: overwrite it
			}
		}
		if !force {
			if prev != nil && prev.Administrator != administrator && prev.Status == StatusEnabled {
				return nil, fmt.Errorf("account %s in %s is a member of administrator %s: %w (disassociate it there first)",
					account, region, prev.Administrator, ErrOtherAdministrator)
			}
			if status == StatusDisassociated && (prev == nil || prev.Administrator != administrator) {
				return nil, fmt.Errorf("account %s in %s: %w %s", account, region, ErrNotMember, administrator)
			}
		}
		if prev != nil && prev.Administrator == administrator && prev.Status == status {
			return prev, nil
		}
		m := Member{Account: account, Administrator: administrator, Region: region, Status: status,
			UpdatedAt: ms.clock().UTC().Format(time.RFC3339)}
		b, _ := json.Marshal(m)
		if rev == 0 {
			_, err = ms.kv.Create(ctx, key, b)
		} else {
			_, err = ms.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return prev, nil
		}
		if !isWrongRevision(err) {
			return nil, fmt.Errorf("write member %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("member %s: %w", key, ErrConflict)
}

func sortMembers(ms []Member) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].Account < ms[j].Account })
}
