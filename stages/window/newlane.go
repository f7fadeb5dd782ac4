package window

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gdexport/gdexport/pipeline"
)

// NewLaneConfig bounds the batches of the new-findings lane.
type NewLaneConfig struct {
	// Delay is newFindingDelay: the longest a new finding waits for its
	// batch to be sealed.
	Delay time.Duration
	// MaxFindings and MaxBytes seal a batch early when it reaches them.
	MaxFindings int
	MaxBytes    int
	// Sealers is how many batches may be sealing at once (default 16:
	// a seal is a few round trips to JetStream, and many destinations seal
	// small batches at once).
	Sealers int
	// MaxHeldBytes bounds the findings held in memory, across every open
	// batch and every batch being sealed (default 48 MiB): past it the
	// largest open batch is sealed early, and Add waits for room. The
	// worker's memory stays bounded however many findings are in flight.
	MaxHeldBytes int
}

// laneKey identifies an open batch: per destination and, for a destination
// whose keys carry the finding owner's account, per owner account, so that
// a batch never mixes destinations nor, then, accounts.
type laneKey struct {
	dest       string
	keyAccount string
}

type openBatch struct {
	dest   *pipeline.Destination
	opened time.Time
	byID   map[string]*entry
	order  []*entry
	holds  []*Hold
	bytes  int
	// held is what the batch's messages and findings take in memory.
	held    int
	sealing bool

	// keyAccount is the finding owner's account when dest keys by owner.
	keyAccount string
}

// NewLane is the new-findings lane. Add is safe for concurrent use.
type NewLane struct {
	cfg    NewLaneConfig
	sealer *Sealer
	log    *slog.Logger
	clock  func() time.Time

	mu    sync.Mutex
	room  *sync.Cond // signalled when held drops
	open  map[laneKey]*openBatch
	held  int // bytes of every unresolved batch
	queue chan *openBatch
	wg    sync.WaitGroup
	// OnSealed, if set, is called after each successful seal with the
	// batch and its findings in the batch's order.
	OnSealed func(b *pipeline.Batch, findings []*pipeline.Finding)
}

// NewNewLane returns a lane; Run must be called for batches to be sealed.
func NewNewLane(cfg NewLaneConfig, sealer *Sealer, log *slog.Logger) *NewLane {
	if cfg.Sealers <= 0 {
		cfg.Sealers = 16
	}
	if cfg.MaxHeldBytes <= 0 {
		cfg.MaxHeldBytes = 48 << 20
	}
	l := &NewLane{cfg: cfg, sealer: sealer, log: log, clock: sealer.clock,
		open: map[laneKey]*openBatch{}, queue: make(chan *openBatch, cfg.Sealers)}
	l.room = sync.NewCond(&l.mu)
	return l
}

// Held returns how many bytes of findings the lane holds in memory.
func (l *NewLane) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Add puts a finding version bound for dest into the destination's open
// batch. A later version of an id already in the batch replaces it (the
// merged message is resolved with the batch). Add blocks while the sealers
// are saturated, which is how the lane pushes back on ingest.
func (l *NewLane) Add(f *pipeline.Finding, dest *pipeline.Destination, h *Hold, msgBytes int) {
	key := laneKey{dest: dest.ID}
	if dest.KeysByOwner() {
		key.keyAccount = f.AccountID
	}
	l.mu.Lock()
	// Wait while the lane is over its memory bound and something is being
	// sealed that will free room; with nothing in flight, go on (the
	// batch is then sealed at once below).
	for l.held >= l.cfg.MaxHeldBytes && l.held > l.openBytes() {
		l.room.Wait()
	}
	ob := l.open[key]
	if ob == nil {
		ob = &openBatch{dest: dest, keyAccount: key.keyAccount, opened: l.clock(), byID: map[string]*entry{}}
		l.open[key] = ob
	}
	ob.holds = append(ob.holds, h)
	if e, ok := ob.byID[f.ID]; ok {
		// Every version but the one the batch keeps is counted, so that
		// what was received adds up to what was exported and dropped.
		switch {
		case f.Newer(e.f.UpdatedAt, e.f.Count):
			ob.bytes += len(f.Raw) - len(e.f.Raw)
			e.f = f
			e.holds = []*Hold{h}
			l.sealer.counter.Dropped(pipeline.DropSuperseded, 1)
		case f.UpdatedAt == e.f.UpdatedAt && f.Count == e.f.Count:
			e.holds = append(e.holds, h) // the same version published twice
			l.sealer.counter.Dropped(pipeline.DropDuplicate, 1)
		default:
			l.sealer.counter.Dropped(pipeline.DropStale, 1) // older than the one held
		}
	} else {
		e := &entry{f: f, holds: []*Hold{h}}
		ob.byID[f.ID] = e
		ob.order = append(ob.order, e)
		ob.bytes += len(f.Raw) + 1
	}
	cost := len(f.Raw) + msgBytes
	ob.held += cost
	l.held += cost
	var full *openBatch
	switch {
	case len(ob.order) >= l.cfg.MaxFindings || ob.bytes >= l.cfg.MaxBytes:
		full = ob
	case l.held >= l.cfg.MaxHeldBytes:
		full = l.largestOpen()
	}
	if full != nil {
		delete(l.open, laneKey{dest: full.dest.ID, keyAccount: full.keyAccount})
	}
	l.mu.Unlock()
	if full != nil {
		l.queue <- full
	}
}

// openBytes is what the open (not yet queued) batches hold. l.mu is held.
func (l *NewLane) openBytes() int {
	n := 0
	for _, ob := range l.open {
		n += ob.held
	}
	return n
}

// largestOpen is the open batch holding the most memory. l.mu is held.
func (l *NewLane) largestOpen() *openBatch {
	var best *openBatch
	for _, ob := range l.open {
		if best == nil || ob.held > best.held {
			best = ob
		}
	}
	return best
}

// resolved returns a queued batch's memory once it is sealed or released.
func (l *NewLane) resolved(ob *openBatch) {
	l.mu.Lock()
	l.held -= ob.held
	l.mu.Unlock()
	l.room.Broadcast()
}

// Run seals batches as they come due until ctx ends, then seals every open
// batch within the grace of drainCtx (a shutdown finishes in-flight work).
func (l *NewLane) Run(ctx, drainCtx context.Context) {
	for i := 0; i < l.cfg.Sealers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ob := range l.queue {
				l.seal(drainCtx, ob)
			}
		}()
	}
	tick := time.NewTicker(max(l.cfg.Delay/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			l.flushAll(drainCtx)
			close(l.queue)
			l.wg.Wait()
			return
		case <-tick.C:
			l.flushDue(drainCtx)
		}
	}
}

func (l *NewLane) flushDue(ctx context.Context) {
	now := l.clock()
	var due []*openBatch
	l.mu.Lock()
	for id, ob := range l.open {
		if now.Sub(ob.opened) >= l.cfg.Delay {
			due = append(due, ob)
			delete(l.open, id)
		}
	}
	l.mu.Unlock()
	for _, ob := range due {
		select {
		case l.queue <- ob:
		case <-ctx.Done():
			l.release(ob)
		}
	}
}

func (l *NewLane) flushAll(ctx context.Context) {
	l.mu.Lock()
	all := make([]*openBatch, 0, len(l.open))
	for id, ob := range l.open {
		all = append(all, ob)
		delete(l.open, id)
	}
	l.mu.Unlock()
	for _, ob := range all {
		select {
		case l.queue <- ob:
		case <-ctx.Done():
			l.release(ob)
		}
	}
}

// release gives an unsealed batch's messages back to JetStream.
func (l *NewLane) release(ob *openBatch) {
	defer l.resolved(ob)
	for _, h := range ob.holds {
		h.Done(false)
	}
}

func (l *NewLane) seal(ctx context.Context, ob *openBatch) {
	defer l.resolved(ob)
	b, err := l.sealer.Seal(ctx, &sealRequest{dest: ob.dest, keyAccount: ob.keyAccount, lane: pipeline.LaneNew, entries: ob.order, holds: ob.holds})
	if err != nil {
		l.log.Warn("seal failed; its findings will be redelivered",
			slog.String("destination", ob.dest.ID), slog.Int("findings", len(ob.order)), slog.Any("error", err))
		return
	}
	if b != nil && l.OnSealed != nil {
		bySeq := make(map[uint64]*pipeline.Finding, len(ob.order))
		for _, e := range ob.order {
			bySeq[e.f.Seq] = e.f
		}
		fs := make([]*pipeline.Finding, 0, len(b.Refs))
		for _, r := range b.Refs {
			if f, ok := bySeq[r.Seq]; ok {
				fs = append(fs, f)
			}
		}
		if len(fs) == len(b.Refs) {
			l.OnSealed(b, fs)
		}
	}
}
