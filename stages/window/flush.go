package window

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
)

// Resolver finds a destination by id; account and region identify an
// instance of the default destination. It must not block.
type Resolver interface {
	Destination(id, account, region string) (*pipeline.Destination, bool)
}

// Claim is the lease on one window's flush, in the flushes bucket under
// ClaimKey. Its holder renews it while it works; a claim whose lease ran
// out belongs to a worker that died or lost its connection, and another
// worker takes it over with compare-and-set.
type Claim struct {
	Worker string `json:"worker"`
	Until  int64  `json:"until"`
}

// FlusherOptions configure a Flusher.
type FlusherOptions struct {
	// Worker names this worker in claims (for operators reading them).
	Worker string
	// Grace is how long after a window's end its flush waits for updates
	// still in flight (the Sealer's grace).
	Grace time.Duration
	// Lease is how long a claim holds without renewal (default 60s); it
	// is renewed every third of it.
	Lease time.Duration
	// MaxFindings and MaxBytes bound one object of a flush.
	MaxFindings, MaxBytes int
	// Concurrency bounds the flushes this worker runs at once (default 2).
	Concurrency int
	// Tick is how often due windows are looked for (default 1s).
	Tick time.Duration
	// OnFlushed, if set, is told about each finished flush.
	OnFlushed func(FlushReport)
}

// FlushReport describes one finished flush of a window.
type FlushReport struct {
	Marker   Marker
	Findings int
	Bytes    int
	Batches  []*pipeline.Batch
	Objects  []string
	Took     time.Duration
}

// Flusher flushes update windows when they close: exactly one worker claims
// each window (a KV create, or the take-over of an expired lease), seals
// its pending updates into batches, and only then removes them. Any number
// of workers run one; Run blocks until ctx ends.
type Flusher struct {
	o        FlusherOptions
	js       jetstream.JetStream
	flushes  jetstream.KeyValue
	windows  jetstream.Stream
	sealer   *Sealer
	resolver Resolver
	log      *slog.Logger

	mu      sync.Mutex
	markers map[string]Marker   // by marker key
	running map[string]struct{} // marker keys flushing here
}

// NewFlusher returns a Flusher over the flushes bucket and the windows
// bucket's stream, sealing through sealer.
func NewFlusher(js jetstream.JetStream, flushes jetstream.KeyValue, windows jetstream.Stream, sealer *Sealer, resolver Resolver, log *slog.Logger, o FlusherOptions) *Flusher {
	if o.Grace <= 0 {
		o.Grace = sealer.grace
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.MaxFindings <= 0 {
		o.MaxFindings = 10_000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	return &Flusher{o: o, js: js, flushes: flushes, windows: windows, sealer: sealer, resolver: resolver, log: log,
		markers: map[string]Marker{}, running: map[string]struct{}{}}
}

// Pending returns the windows that hold pending updates, as this worker
// last saw them.
func (f *Flusher) Pending() []Marker {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Marker, 0, len(f.markers))
	for _, m := range f.markers {
		out = append(out, m)
	}
	return out
}

// Run watches the window markers and flushes each window when it is due,
// until ctx ends. Flushes in progress are cancelled then; their claims run
// out and another worker finishes them.
func (f *Flusher) Run(ctx context.Context) error {
	w, err := f.flushes.Watch(ctx, "window.>")
	if err != nil {
		return fmt.Errorf("watch %s: %w", f.flushes.Bucket(), err)
	}
	defer w.Stop()
	tick := time.NewTicker(f.o.Tick)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, f.o.Concurrency)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s ended", f.flushes.Bucket())
			}
			if e == nil {
				continue
			}
			f.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut {
				var m Marker
				if err := json.Unmarshal(e.Value(), &m); err == nil {
					f.markers[e.Key()] = m
				} else {
					f.log.Warn("ignoring unreadable window marker", slog.String("key", e.Key()), slog.Any("error", err))
				}
			} else {
				delete(f.markers, e.Key())
			}
			f.mu.Unlock()
		case <-tick.C:
			for _, m := range f.due() {
				select {
				case slots <- struct{}{}:
				default:
					continue // busy: a later tick takes it
				}
				key := MarkerKey(m.Destination, m.Start)
				f.mu.Lock()
				f.running[key] = struct{}{}
				f.mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() {
						f.mu.Lock()
						delete(f.running, key)
						f.mu.Unlock()
						<-slots
					}()
					if err := f.claimAndFlush(ctx, m); err != nil && ctx.Err() == nil {
						f.log.Warn("window flush failed; it will be tried again", slog.String("destination", m.Destination),
							slog.Time("window", time.UnixMilli(m.Start).UTC()), slog.Any("error", err))
					}
				}()
			}
		}
	}
}

// due returns the windows whose end plus grace has passed and that this
// worker is not flushing already, oldest first.
func (f *Flusher) due() []Marker {
	now := f.sealer.clock()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Marker
	for key, m := range f.markers {
		if _, busy := f.running[key]; busy {
			continue
		}
		if !now.Before(time.UnixMilli(m.End).Add(f.o.Grace)) {
			out = append(out, m)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Start < out[j-1].Start; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// errClaimed means another worker holds a live claim on the window.
var errClaimed = errors.New("window claimed by another worker")

// claim takes the window's flush: creates its claim, or takes over one
// whose lease ran out. It returns the claim's revision.
func (f *Flusher) claim(ctx context.Context, m Marker) (uint64, error) {
	key := ClaimKey(m.Destination, m.Start)
	now := f.sealer.clock()
	body, _ := json.Marshal(Claim{Worker: f.o.Worker, Until: now.Add(f.o.Lease).UnixMilli()})
	rev, err := f.flushes.Create(ctx, key, body)
	if err == nil {
		return rev, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("claim %s: %w", key, err)
	}
	cur, err := f.flushes.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read claim %s: %w", key, err)
	}
	var c Claim
	if json.Unmarshal(cur.Value(), &c) == nil && now.UnixMilli() < c.Until {
		return 0, errClaimed
	}
	rev, err = f.flushes.Update(ctx, key, body, cur.Revision())
	if err != nil {
		if isWrongLastSeq(err) {
			return 0, errClaimed // another worker took it over first
		}
		return 0, fmt.Errorf("take over claim %s: %w", key, err)
	}
	f.log.Info("took over a window flush whose claim ran out", slog.String("destination", m.Destination),
		slog.Time("window", time.UnixMilli(m.Start).UTC()), slog.String("previous", c.Worker))
	return rev, nil
}

// claimAndFlush claims the window, flushes it while renewing the claim,
// and releases the claim. It does nothing when another worker holds it.
func (f *Flusher) claimAndFlush(ctx context.Context, m Marker) error {
	rev, err := f.claim(ctx, m)
	if errors.Is(err, errClaimed) {
		return nil
	}
	if err != nil {
		return err
	}
	key := ClaimKey(m.Destination, m.Start)
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(f.o.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
				body, _ := json.Marshal(Claim{Worker: f.o.Worker, Until: f.sealer.clock().Add(f.o.Lease).UnixMilli()})
				r, err := f.flushes.Update(fctx, key, body, rev)
				if err != nil {
					cancel(fmt.Errorf("renew claim %s: %w", key, err))
					return
				}
				rev = r
			}
		}
	}()
	err = f.Flush(fctx, m)
	cancel(nil)
	<-renewed
	if err != nil {
		if cause := context.Cause(fctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		return err
	}
	// Released only after the work is done; a crash before this leaves the
	// claim to run out.
	if err := f.flushes.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		f.log.Warn("release window claim", slog.String("key", key), slog.Any("error", err))
	}
	return nil
}

// Flush seals every pending update of window m into batches, removes them,
// and forgets the window; it loops while updates keep arriving in it. The
// caller holds the window's claim. A flush interrupted at any point can be
// run again: updates already sealed are recognised through the exported
// records and skipped, and batches claimed but never sealed are abandoned
// and their updates sealed anew.
func (f *Flusher) Flush(ctx context.Context, m Marker) error {
	start := time.Now()
	rep := FlushReport{Marker: m}
	markerKey := MarkerKey(m.Destination, m.Start)
	for {
		cur, err := f.flushes.Get(ctx, markerKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			break // finished by another worker
		}
		if err != nil {
			return fmt.Errorf("read marker %s: %w", markerKey, err)
		}
		info, err := f.windows.Info(ctx)
		if err != nil {
			return fmt.Errorf("windows stream: %w", err)
		}
		upTo := info.State.LastSeq
		dest, ok := f.resolver.Destination(m.Destination, m.Account, m.Region)
		if !ok {
			f.log.Warn("dropping the pending updates of a destination that no longer exists",
				slog.String("destination", m.Destination), slog.Time("window", time.UnixMilli(m.Start).UTC()))
		} else if err := f.sealWindow(ctx, dest, m, upTo, &rep); err != nil {
			return err
		}
		filter := WindowFilter(m.Destination, m.Start)
		if err := f.windows.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(upTo+1)); err != nil {
			return fmt.Errorf("remove pending updates of window %s: %w", filter, err)
		}
		err = f.flushes.Delete(ctx, markerKey, jetstream.LastRevision(cur.Revision()))
		if err == nil {
			break
		}
		if !isWrongLastSeq(err) {
			return fmt.Errorf("forget window %s: %w", markerKey, err)
		}
		// Updates were staged meanwhile: look again.
	}
	rep.Took = time.Since(start)
	if len(rep.Batches) > 0 || rep.Findings > 0 {
		f.log.Info("window flushed", slog.String("destination", m.Destination), slog.String("account", m.Account),
			slog.String("region", m.Region), slog.Time("window", time.UnixMilli(m.Start).UTC()),
			slog.Int("findings", rep.Findings), slog.Int("bytes", rep.Bytes), slog.Int("objects", len(rep.Batches)),
			slog.String("names", strings.Join(rep.Objects, ",")), slog.Duration("took", rep.Took))
	}
	if f.o.OnFlushed != nil {
		f.o.OnFlushed(rep)
	}
	return nil
}

// sealWindow reads the window's pending updates up to stream sequence upTo
// (the latest record per finding) and seals them in batches bounded by
// MaxFindings and MaxBytes.
func (f *Flusher) sealWindow(ctx context.Context, dest *pipeline.Destination, m Marker, upTo uint64, rep *FlushReport) error {
	// An ephemeral consumer of this window's latest records, removed when
	// the read ends (and by the server if this worker dies first).
	cons, err := f.windows.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     WindowFilter(m.Destination, m.Start),
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute,
		MemoryStorage:     true,
	})
	if err != nil {
		return fmt.Errorf("read window: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = f.windows.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("read window: %w", err)
	}
	remaining := info.NumPending
	// One open chunk per key account: a destination whose keys carry the
	// finding owner's account never mixes accounts in an object; others
	// have a single chunk under "".
	type openChunk struct {
		entries []*entry
		bytes   int
	}
	chunks := map[string]*openChunk{}
	var order []string
	seal := func(keyAccount string) error {
		c := chunks[keyAccount]
		if c == nil || len(c.entries) == 0 {
			return nil
		}
		req := &sealRequest{dest: dest, lane: pipeline.LaneUpdate, entries: c.entries, window: m.Start,
			part: len(rep.Batches) + 1, keyAccount: keyAccount}
		b, err := f.sealer.sealFlush(ctx, req)
		if err != nil {
			return err
		}
		if b != nil {
			rep.Batches = append(rep.Batches, b)
			rep.Objects = append(rep.Objects, b.ObjectName())
			rep.Findings += len(b.Refs)
			rep.Bytes += c.bytes
		}
		c.entries, c.bytes = nil, 0
		return nil
	}
	for remaining > 0 {
		batch, err := cons.Fetch(int(min(remaining, 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read window: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("read window: %w", err)
			}
			remaining = md.NumPending
			if md.Sequence.Stream > upTo || msg.Headers().Get("KV-Operation") != "" {
				continue // staged after this round began, or removed
			}
			var p Pending
			if err := json.Unmarshal(msg.Data(), &p); err != nil {
				f.log.Warn("skipping an unreadable pending update", slog.String("subject", msg.Subject()), slog.Any("error", err))
				continue
			}
			keyAccount := ""
			if dest.KeysByOwner() {
				keyAccount = p.Account
			}
			c := chunks[keyAccount]
			if c == nil {
				c = &openChunk{}
				chunks[keyAccount] = c
				order = append(order, keyAccount)
			}
			if len(c.entries) > 0 && (len(c.entries)+1 > f.o.MaxFindings || c.bytes+p.Bytes > f.o.MaxBytes) {
				if err := seal(keyAccount); err != nil {
					return err
				}
			}
			c.entries = append(c.entries, &entry{
				f: &pipeline.Finding{ID: p.ID, Seq: p.Seq, UpdatedAt: p.UpdatedAt, Count: p.Count,
					AccountID: p.Account, ReceivedAt: p.ReceivedAt},
				recovering: true,
			})
			c.bytes += p.Bytes
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("read window: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("read window %s: %d updates announced but none delivered", WindowFilter(m.Destination, m.Start), remaining)
		}
	}
	for _, k := range order {
		if err := seal(k); err != nil {
			return err
		}
	}
	return nil
}
