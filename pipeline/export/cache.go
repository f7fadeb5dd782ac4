package export

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdexport/gdexport/pipeline"
)

// Cache keeps the findings of batches this worker sealed, decoded, until
// every export consumer has written them, so that the common case (the
// batch's consumers deliver it to the worker that sealed it) reads nothing
// back from FINDINGS and decodes nothing again. It is bounded in bytes: the
// oldest batches are forgotten first, and a batch not in the cache is read
// from FINDINGS as before. A batch is kept at most maxWait while room is
// needed: its consumers deliver it to this worker within that time unless
// another worker took it (and read it back), and that worker's writes never
// reach this cache. Safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	room    *sync.Cond // signalled when bytes drop
	maxWait time.Duration
	max     int
	bytes   int
	sinks   int
	batches map[string]*cachedBatch
	order   []string // by age, oldest first; may hold ids already gone

	// Hits and Misses count the batches exported from the cache and those
	// read back from FINDINGS; Waits the Puts that waited for room.
	Hits, Misses, Waits atomic.Int64
}

type cachedBatch struct {
	findings []*pipeline.Finding
	bytes    int
	// remaining is how many export consumers have yet to write the batch.
	remaining int
	kept      time.Time
}

// NewCache returns a cache of at most maxBytes of findings for batches that
// sinks export consumers each write once.
func NewCache(maxBytes, sinks int) *Cache {
	c := &Cache{max: maxBytes, sinks: sinks, maxWait: maxWait, batches: map[string]*cachedBatch{}}
	c.room = sync.NewCond(&c.mu)
	return c
}

// maxWait is how long a batch is kept when room is needed, and so at most
// how long Put waits for room: another worker may be exporting the batch,
// and this one would never hear that it is done.
const maxWait = 2 * time.Second

// Keep is Put, for the sealer (window.Keeper); it waits at most until ctx
// ends.
func (c *Cache) Keep(_ context.Context, batchID string, findings []*pipeline.Finding) {
	c.Put(batchID, findings)
}

// Forget drops a batch (its seal failed).
func (c *Cache) Forget(batchID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.drop(batchID)
	c.mu.Unlock()
}

// Put keeps the findings of a sealed batch, in the batch's order (they are
// not copied; the caller must not change them).
func (c *Cache) Put(batchID string, findings []*pipeline.Finding) {
	if c == nil || c.sinks == 0 {
		return
	}
	n := 0
	for _, f := range findings {
		n += len(f.Raw) + 256
	}
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	for c.bytes+n > c.max {
		// Batches kept maxWait are forgotten first, oldest first, as
		// far as room is needed: their consumers had the time to
		// deliver them here.
		stale := time.Now().Add(-c.maxWait)
		for c.bytes+n > c.max {
			if o := c.oldest(); o == nil || !o.kept.Before(stale) {
				break
			}
			c.dropOldest()
		}
		if c.bytes+n <= c.max {
			break
		}
		if time.Since(start) >= c.maxWait {
			for c.bytes+n > c.max && c.dropOldest() {
			}
			break
		}
		// Wait a little for the export to catch up (sealing faster than
		// the batches are written would only push batches out, to be read
		// back and decoded again): until room is made, the oldest batch
		// has been kept maxWait, or this Put has waited maxWait.
		until := start.Add(c.maxWait)
		if o := c.oldest(); o != nil && o.kept.Add(c.maxWait).Before(until) {
			until = o.kept.Add(c.maxWait)
		}
		c.Waits.Add(1)
		timer := time.AfterFunc(time.Until(until), c.room.Broadcast)
		c.room.Wait()
		timer.Stop()
	}
	c.batches[batchID] = &cachedBatch{findings: findings, bytes: n, remaining: c.sinks, kept: time.Now()}
	c.bytes += n
	c.order = append(c.order, batchID)
}

// get returns a batch's findings if they are cached.
func (c *Cache) get(batchID string) ([]*pipeline.Finding, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.batches[batchID]
	if !ok {
		c.Misses.Add(1)
		return nil, false
	}
	c.Hits.Add(1)
	return b.findings, true
}

// done records that one export consumer wrote the batch; after the last
// the batch is forgotten.
func (c *Cache) done(batchID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.batches[batchID]
	if !ok {
		return
	}
	if b.remaining--; b.remaining <= 0 {
		c.drop(batchID)
	}
}

// oldest returns the batch kept longest, or nil.
func (c *Cache) oldest() *cachedBatch {
	for len(c.order) > 0 {
		if b, ok := c.batches[c.order[0]]; ok {
			return b
		}
		c.order = c.order[1:]
	}
	return nil
}

// dropOldest forgets the batch kept longest; false when there is none.
func (c *Cache) dropOldest() bool {
	if c.oldest() == nil {
		return false
	}
	id := c.order[0]
	c.order = c.order[1:]
	c.drop(id)
	return true
}

func (c *Cache) drop(batchID string) {
	if b, ok := c.batches[batchID]; ok {
		c.bytes -= b.bytes
		delete(c.batches, batchID)
		c.room.Broadcast()
	}
	if len(c.order) > 0 && len(c.order) > 2*len(c.batches)+64 {
		kept := c.order[:0]
		for _, id := range c.order {
			if _, ok := c.batches[id]; ok {
				kept = append(kept, id)
			}
		}
		c.order = kept
	}
}

// Bytes is how much the cache holds.
func (c *Cache) Bytes() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
