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

// entry is one finding version in an open batch, with every message that
// carried it.
type entry struct {
	f     *pipeline.Finding
	holds []*Hold
	// rev is the exported record's revision the seal writes against.
	rev uint64
}

// Sealer persists batches (see the package documentation for the protocol).
type Sealer struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	counter Counter
	clock   func() time.Time
}

// NewSealer returns a Sealer. counter may be nil; clock nil means time.Now.
func NewSealer(nc *nats.Conn, js jetstream.JetStream, counter Counter, clock func() time.Time) *Sealer {
	if counter == nil {
		counter = nopCounter{}
	}
	if clock == nil {
		clock = time.Now
	}
	return &Sealer{nc: nc, js: js, counter: counter, clock: clock}
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

	// keyAccount names the key folder instead of the destination owner
	// (Batch.KeyAccount); "" for the owner.
	keyAccount string
}

// Seal persists the batch and resolves its holds: acked on success,
// redelivered on failure. It returns the sealed batch, or nil when every
// finding turned out to be stale or a duplicate.
func (s *Sealer) Seal(ctx context.Context, req *sealRequest) (*pipeline.Batch, error) {
	b, err := s.seal(ctx, req)
	for _, h := range req.holds {
		h.Done(err == nil)
	}
	return b, err
}

func (s *Sealer) seal(ctx context.Context, req *sealRequest) (*pipeline.Batch, error) {
	id := newBatchID()
	kept, err := s.claim(ctx, req.dest, id, string(req.lane), req.entries)
	if err != nil {
		return nil, err
	}
	if len(kept) == 0 {
		return nil, nil
	}
	b := &pipeline.Batch{
		ID: id, Destination: req.dest.ID, Account: req.dest.Account, Region: req.dest.Region, KeyAccount: req.keyAccount,
		Lane: req.lane, SealedAt: s.clock().UnixMilli(), Refs: make([]pipeline.Ref, len(kept)),
	}
	for i, e := range kept {
		b.Refs[i] = pipeline.Ref{Seq: e.f.Seq, ID: e.f.ID, UpdatedAt: e.f.UpdatedAt}
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: BatchSubject(req.dest.ID, id), Data: body},
		jetstream.WithExpectLastSequencePerSubject(0))
	if err != nil {
		if isWrongLastSeq(err) {
			return nil, fmt.Errorf("seal %s: %w", id, ErrAbandoned)
		}
		return nil, fmt.Errorf("seal %s for destination %s: %w", id, req.dest.ID, err)
	}
	s.counter.Sealed(b)
	return b, nil
}

// claim decides, for every entry, whether this batch exports it, and writes
// the exported records of those it keeps. It retries compare-and-set
// conflicts by reading again.
func (s *Sealer) claim(ctx context.Context, dest *pipeline.Destination, batchID, lane string, entries []*entry) ([]*entry, error) {
	todo := entries
	var kept []*entry
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == 5 {
			return nil, fmt.Errorf("claim findings for destination %s: compare-and-set kept conflicting after %d attempts", dest.ID, attempt)
		}
		decided, err := s.decide(ctx, dest, todo)
		if err != nil {
			return nil, err
		}
		val := func(e *entry) []byte {
			v, _ := json.Marshal(Exported{UpdatedAt: e.f.UpdatedAt, Count: e.f.Count, Batch: batchID, Lane: lane})
			return v
		}
		futures := make([]jetstream.PubAckFuture, len(decided))
		for i, e := range decided {
			m := &nats.Msg{Subject: exportedSubject(FindingKey(dest.ID, e.f.ID)), Data: val(e)}
			futures[i], err = s.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(e.rev))
			if err != nil {
				return nil, fmt.Errorf("claim finding %s: %w", e.f.ID, err)
			}
		}
		todo = todo[:0:0]
		for i, fut := range futures {
			select {
			case <-fut.Ok():
				kept = append(kept, decided[i])
			case err := <-fut.Err():
				if !isWrongLastSeq(err) {
					return nil, fmt.Errorf("claim finding %s: %w", decided[i].f.ID, err)
				}
				todo = append(todo, decided[i])
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return kept, nil
}

// decide reads the exported records of entries and returns those still to be
// exported, with the revision to write against.
func (s *Sealer) decide(ctx context.Context, dest *pipeline.Destination, entries []*entry) ([]*entry, error) {
	subjects := make([]string, len(entries))
	for i, e := range entries {
		subjects[i] = exportedSubject(FindingKey(dest.ID, e.f.ID))
	}
	cur, err := natsx.LastForSubjects(ctx, s.nc, "KV_"+natsx.BucketExported, subjects)
	if err != nil {
		return nil, fmt.Errorf("read exported records of destination %s: %w", dest.ID, err)
	}
	out := entries[:0:0]
	for i, e := range entries {
		m, ok := cur[subjects[i]]
		if !ok || m.Header.Get("KV-Operation") != "" {
			e.rev = m.Seq // 0 when absent; a deleted key's tombstone otherwise
			out = append(out, e)
			continue
		}
		var prev Exported
		if err := json.Unmarshal(m.Data, &prev); err != nil {
			// An unreadable record cannot be compared; overwrite it.
			e.rev = m.Seq
			out = append(out, e)
			continue
		}
		if e.f.Newer(prev.UpdatedAt, prev.Count) {
			e.rev = m.Seq
			out = append(out, e)
			continue
		}
		if prev.UpdatedAt != e.f.UpdatedAt || prev.Count != e.f.Count {
			s.counter.Dropped(pipeline.DropStale, 1)
			continue
		}
		// The same version is already claimed by batch prev.Batch. Only a
		// redelivered message may find that claim orphaned by a crash.
		redelivered := false
		for _, h := range e.holds {
			redelivered = redelivered || h.Redelivered()
		}
		if !redelivered {
			s.counter.Dropped(pipeline.DropDuplicate, 1)
			continue
		}
		sealed, err := s.sealedOrAbandon(ctx, dest.ID, prev.Batch)
		if err != nil {
			return nil, err
		}
		if sealed {
			s.counter.Dropped(pipeline.DropDuplicate, 1)
			continue
		}
		e.rev = m.Seq
		out = append(out, e)
	}
	return out, nil
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
