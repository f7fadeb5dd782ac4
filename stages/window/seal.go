package window

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/schedule"
)

// Exported is the record of the latest version of a finding id that a
// destination has sealed, kept in the exported KV bucket.
type Exported struct {
	UpdatedAt int64  `json:"u"`
	Count     int64  `json:"c"`
	Batch     string `json:"b"`
	Lane      string `json:"l,omitempty"`
}

// Counter receives the lanes' counts (metrics). Implementations are safe for
// concurrent use.
type Counter interface {
	Dropped(reason string, n int)
	Sealed(b *pipeline.Batch)
}

type nopCounter struct{}

func (nopCounter) Dropped(string, int)    {}
func (nopCounter) Sealed(*pipeline.Batch) {}

// Schedules gives the update-window schedule of a destination (from its
// owner's findingPublishingFrequency). Implementations must not block.
type Schedules interface {
	Windows(dest *pipeline.Destination) schedule.Windows
}

type sixHours struct{}

func (sixHours) Windows(*pipeline.Destination) schedule.Windows {
	return schedule.Windows{Length: 6 * time.Hour}
}

// entry is one finding version in an open batch, with every message that
// carried it.
type entry struct {
	f     *pipeline.Finding
	holds []*Hold
	// rev is the revision of the record (exported or pending) the seal
	// writes against.
	rev uint64
	// recovering marks an entry that may have been claimed by a batch that
	// was never sealed (a redelivered message, a flush taken over).
	recovering bool
}

func (e *entry) mayBeOrphaned() bool {
	if e.recovering {
		return true
	}
	for _, h := range e.holds {
		if h.Redelivered() {
			return true
		}
	}
	return false
}

// SealerOptions configure a Sealer. Every field is optional.
type SealerOptions struct {
	Counter   Counter
	Clock     func() time.Time
	Schedules Schedules
	// Grace is how long after its end a window still takes the updates
	// that arrived in it (default 10s); later ones go to the window open
	// when they are staged.
	Grace time.Duration
	// Keep, when set, is handed the findings of each new-lane batch just
	// before its record is published (the export cache).
	Keep Keeper
	// Atomic writes the records of a batch in atomic batches (strict
	// durability: one disk sync per batch rather than per finding); the
	// streams must allow atomic publishing (natsx.TopologyConfig.Atomic).
	Atomic bool
}

// Keeper keeps the findings of a batch about to be sealed, for its export;
// Forget drops them when the seal failed. Keep may wait a little for room
// (pushing back on the lane) until ctx ends.
type Keeper interface {
	Keep(ctx context.Context, batchID string, findings []*pipeline.Finding)
	Forget(batchID string)
}

// Sealer persists batches and stages updates (see the package
// documentation for the protocol). Safe for concurrent use.
type Sealer struct {
	nc        *nats.Conn
	js        jetstream.JetStream
	counter   Counter
	clock     func() time.Time
	schedules Schedules
	grace     time.Duration
	writer    natsx.Writer
	keep      Keeper
}

// NewSealer returns a Sealer.
func NewSealer(nc *nats.Conn, js jetstream.JetStream, o SealerOptions) *Sealer {
	s := &Sealer{nc: nc, js: js, counter: o.Counter, clock: o.Clock, schedules: o.Schedules, grace: o.Grace,
		writer: natsx.Writer{NC: nc, JS: js, Atomic: o.Atomic}, keep: o.Keep}
	if s.counter == nil {
		s.counter = nopCounter{}
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.schedules == nil {
		s.schedules = sixHours{}
	}
	if s.grace <= 0 {
		s.grace = 10 * time.Second
	}
	return s
}

// FindingKey is the exported bucket's key of a finding id for a destination.
// Ids made of key-safe characters are used as they are; others are hashed.
func FindingKey(destID, findingID string) string {
	ok := len(findingID) > 0 && len(findingID) <= 128
	for i := 0; ok && i < len(findingID); i++ {
		c := findingID[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if !ok {
		sum := sha256.Sum256([]byte(findingID))
		findingID = "h" + hex.EncodeToString(sum[:16])
	}
	return destID + "." + findingID
}

func exportedSubject(key string) string { return "$KV." + natsx.BucketExported + "." + key }

// BatchSubject is the subject of a sealed batch's record.
func BatchSubject(destID, batchID string) string { return "gdexport.batches." + destID + "." + batchID }

func newBatchID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}

// ErrAbandoned is returned when a batch could not be sealed because recovery
// abandoned its id first; its messages are redelivered.
var ErrAbandoned = errors.New("batch abandoned before its seal")

// sealRequest is an open batch handed to Seal.
type sealRequest struct {
	dest    *pipeline.Destination
	lane    pipeline.Lane
	entries []*entry
	// holds is every message the batch must resolve, including those whose
	// version was merged into a later one.
	holds []*Hold
	// window and part identify a window flush's batch (LaneUpdate).
	window int64
	part   int
	// keyAccount names the key folder instead of the destination owner
	// (Batch.KeyAccount); "" for the owner.
	keyAccount string
}

// Seal persists an open batch of the new-findings lane and resolves its
// holds: acked once everything is durable, redelivered on failure. Each
// finding is sealed into the batch when the destination has never exported
// its id; staged into its update window when a previous version was
// exported; dropped (and counted) when it is older than, or the same as,
// what was exported. It returns the sealed batch, or nil when no finding
// was new.
func (s *Sealer) Seal(ctx context.Context, req *sealRequest) (*pipeline.Batch, error) {
	b, err := s.sealNew(ctx, req)
	for _, h := range req.holds {
		h.Done(err == nil)
	}
	return b, err
}

func (s *Sealer) sealNew(ctx context.Context, req *sealRequest) (*pipeline.Batch, error) {
	id := newBatchID()
	kept, updates, err := s.claim(ctx, req.dest, id, req.lane, req.entries)
	if err != nil {
		return nil, err
	}
	// Updates are staged before the batch is sealed: both must be durable
	// before any message is acked, and a failure of either redelivers all.
	if len(updates) > 0 {
		if err := s.stage(ctx, req.dest, updates); err != nil {
			return nil, err
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	return s.publishBatch(ctx, req, id, kept)
}

// sealFlush seals one batch of a window flush: entries whose version is
// newer than what the destination exported are claimed and sealed.
func (s *Sealer) sealFlush(ctx context.Context, req *sealRequest) (*pipeline.Batch, error) {
	id := newBatchID()
	kept, _, err := s.claim(ctx, req.dest, id, req.lane, req.entries)
	if err != nil || len(kept) == 0 {
		return nil, err
	}
	return s.publishBatch(ctx, req, id, kept)
}

func (s *Sealer) publishBatch(ctx context.Context, req *sealRequest, id string, kept []*entry) (*pipeline.Batch, error) {
	b := &pipeline.Batch{
		ID: id, Destination: req.dest.ID, Account: req.dest.Account, Region: req.dest.Region, KeyAccount: req.keyAccount,
		Lane: req.lane, SealedAt: s.clock().UnixMilli(), Window: req.window, Part: req.part,
		Refs: make([]pipeline.Ref, len(kept)),
	}
	for i, e := range kept {
		b.Refs[i] = pipeline.Ref{Seq: e.f.Seq, ID: e.f.ID, UpdatedAt: e.f.UpdatedAt}
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	// The findings are handed over before the record is published: the
	// export consumers may deliver the batch back to this worker at once.
	if s.keep != nil && req.lane == pipeline.LaneNew {
		fs := make([]*pipeline.Finding, len(kept))
		for i, e := range kept {
			fs[i] = e.f
		}
		s.keep.Keep(ctx, id, fs)
	}
	_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: BatchSubject(req.dest.ID, id), Data: body},
		jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		if s.keep != nil {
			s.keep.Forget(id)
		}
		if isWrongLastSeq(err) {
			return nil, fmt.Errorf("seal %s: %w", id, ErrAbandoned)
		}
		return nil, fmt.Errorf("seal %s for destination %s: %w", id, req.dest.ID, err)
	}
	s.counter.Sealed(b)
	return b, nil
}

// maxAttempts bounds the rounds of reading and compare-and-set writing when
// other workers keep writing the same records.
const maxAttempts = 5

// claim decides, for every entry, whether batch batchID exports it, and
// writes the exported records of those it keeps (compare-and-set on the
// revision read, retried after a conflict by reading again). In the new
// lane, entries whose id the destination already exported in an earlier
// version are returned as updates instead.
func (s *Sealer) claim(ctx context.Context, dest *pipeline.Destination, batchID string, lane pipeline.Lane, entries []*entry) (kept, updates []*entry, err error) {
	todo := entries
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == maxAttempts {
			return nil, nil, fmt.Errorf("claim findings for destination %s: compare-and-set kept conflicting after %d attempts", dest.ID, attempt)
		}
		toClaim, toUpdate, err := s.decide(ctx, dest, lane, todo)
		if err != nil {
			return nil, nil, err
		}
		updates = append(updates, toUpdate...)
		val := func(e *entry) []byte {
			v, _ := json.Marshal(Exported{UpdatedAt: e.f.UpdatedAt, Count: e.f.Count, Batch: batchID, Lane: string(lane)})
			return v
		}
		msgs := make([]*nats.Msg, len(toClaim))
		revs := make([]uint64, len(toClaim))
		for i, e := range toClaim {
			msgs[i] = &nats.Msg{Subject: exportedSubject(FindingKey(dest.ID, e.f.ID)), Data: val(e)}
			revs[i] = e.rev
		}
		stored, err := s.writer.WriteCAS(ctx, msgs, revs)
		if err != nil {
			return nil, nil, fmt.Errorf("claim findings for destination %s: %w", dest.ID, err)
		}
		todo = todo[:0:0]
		for i, ok := range stored {
			if ok {
				kept = append(kept, toClaim[i])
			} else {
				todo = append(todo, toClaim[i])
			}
		}
	}
	return kept, updates, nil
}

// decide reads the exported records of entries and sorts them: those to
// claim for this batch (with the revision to write against), those that
// are updates of an exported id (new lane only), and the rest, dropped as
// stale or duplicate.
func (s *Sealer) decide(ctx context.Context, dest *pipeline.Destination, lane pipeline.Lane, entries []*entry) (toClaim, toUpdate []*entry, err error) {
	subjects := make([]string, len(entries))
	for i, e := range entries {
		subjects[i] = exportedSubject(FindingKey(dest.ID, e.f.ID))
	}
	cur, err := natsx.LastForSubjects(ctx, s.nc, "KV_"+natsx.BucketExported, subjects)
	if err != nil {
		return nil, nil, fmt.Errorf("read exported records of destination %s: %w", dest.ID, err)
	}
	for i, e := range entries {
		m, ok := cur[subjects[i]]
		if !ok || m.Header.Get("KV-Operation") != "" {
			e.rev = m.Seq // 0 when absent; a deleted key's tombstone otherwise
			toClaim = append(toClaim, e)
			continue
		}
		var prev Exported
		if err := json.Unmarshal(m.Data, &prev); err != nil {
			// An unreadable record cannot be compared; overwrite it.
			e.rev = m.Seq
			toClaim = append(toClaim, e)
			continue
		}
		if e.f.Newer(prev.UpdatedAt, prev.Count) {
			if lane == pipeline.LaneNew {
				toUpdate = append(toUpdate, e)
				continue
			}
			e.rev = m.Seq
			toClaim = append(toClaim, e)
			continue
		}
		if prev.UpdatedAt != e.f.UpdatedAt || prev.Count != e.f.Count {
			s.counter.Dropped(pipeline.DropStale, 1)
			continue
		}
		// The same version is already claimed by batch prev.Batch. Only an
		// entry that may have been claimed before a crash can find that
		// claim orphaned.
		if !e.mayBeOrphaned() {
			s.counter.Dropped(pipeline.DropDuplicate, 1)
			continue
		}
		sealed, err := s.sealedOrAbandon(ctx, dest.ID, prev.Batch)
		if err != nil {
			return nil, nil, err
		}
		if sealed {
			s.counter.Dropped(pipeline.DropDuplicate, 1)
			continue
		}
		e.rev = m.Seq
		toClaim = append(toClaim, e)
	}
	return toClaim, toUpdate, nil
}

// sealedOrAbandon reports whether batch id of dest was sealed; if it was not,
// it records the batch as abandoned so that a late seal of it fails.
func (s *Sealer) sealedOrAbandon(ctx context.Context, destID, batchID string) (bool, error) {
	subject := BatchSubject(destID, batchID)
	body, _ := json.Marshal(pipeline.Batch{ID: batchID, Destination: destID, Abandoned: true})
	_, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: body}, jetstream.WithExpectLastSequencePerSubject(0))
	if err == nil {
		return false, nil
	}
	if !isWrongLastSeq(err) {
		return false, fmt.Errorf("abandon batch %s: %w", batchID, err)
	}
	// A record exists: sealed, or abandoned by someone else.
	m, err := s.js.Stream(ctx, natsx.StreamBatches)
	if err != nil {
		return false, err
	}
	raw, err := m.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return false, fmt.Errorf("read batch %s: %w", batchID, err)
	}
	var b pipeline.Batch
	if err := json.Unmarshal(raw.Data, &b); err != nil {
		return false, fmt.Errorf("read batch %s: %w", batchID, err)
	}
	return !b.Abandoned, nil
}
