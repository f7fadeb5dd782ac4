package export

import (
	"strings"
	"testing"
	"time"

	"github.com/gdexport/gdexport/pipeline"
)

func findings(n, size int) []*pipeline.Finding {
	out := make([]*pipeline.Finding, n)
	for i := range out {
		out[i] = &pipeline.Finding{ID: "f", Raw: []byte(strings.Repeat("x", size))}
	}
	return out
}

func TestCacheForgetsABatchOnceEverySinkWroteIt(t *testing.T) {
	c := NewCache(1<<20, 2)
	c.Put("b1", findings(3, 10))
	if fs, ok := c.get("b1"); !ok || len(fs) != 3 {
		t.Fatal("a batch just put is not cached")
	}
	c.done("b1")
	if _, ok := c.get("b1"); !ok {
		t.Fatal("forgotten after the first of two sinks")
	}
	c.done("b1")
	if _, ok := c.get("b1"); ok || c.Bytes() != 0 {
		t.Fatalf("still cached after both sinks (%d bytes)", c.Bytes())
	}
}

func TestCacheIsBoundedOldestFirst(t *testing.T) {
	c := NewCache(3*(1000+256), 1)
	c.maxWait = 50 * time.Millisecond
	for _, id := range []string{"a", "b", "c", "d"} {
		c.Put(id, findings(1, 1000))
	}
	if _, ok := c.get("a"); ok {
		t.Error("the oldest batch was kept past the bound")
	}
	for _, id := range []string{"b", "c", "d"} {
		if _, ok := c.get(id); !ok {
			t.Errorf("batch %s dropped while within the bound", id)
		}
	}
	if c.Bytes() > 3*(1000+256) {
		t.Errorf("holds %d bytes", c.Bytes())
	}
	// A batch larger than the whole cache is not kept at all.
	c.Put("huge", findings(10, 1000))
	if _, ok := c.get("huge"); ok {
		t.Error("a batch larger than the cache was kept")
	}
	if c.Waits.Load() == 0 {
		t.Error("a Put with the cache full of batches just kept did not wait for room")
	}
	var nilCache *Cache
	nilCache.Put("x", findings(1, 1)) // a nil cache is a no-op
	if _, ok := nilCache.get("x"); ok {
		t.Error("nil cache returned a batch")
	}
}

// A batch kept maxWait is one another worker is exporting (or this one is
// far behind): a Put needing room forgets it without waiting, so that a
// worker whose batches go to another one never stalls its sealers.
func TestCacheForgetsBatchesKeptLongWithoutWaiting(t *testing.T) {
	c := NewCache(3*(1000+256), 1)
	c.maxWait = 50 * time.Millisecond
	for _, id := range []string{"a", "b", "c"} {
		c.Put(id, findings(1, 1000))
	}
	time.Sleep(2 * c.maxWait)
	c.Put("d", findings(1, 1000))
	c.Put("e", findings(1, 1000))
	if w := c.Waits.Load(); w != 0 {
		t.Errorf("%d Puts waited for room held by batches kept past maxWait", w)
	}
	for _, id := range []string{"a", "b"} {
		if _, ok := c.get(id); ok {
			t.Errorf("batch %s, kept past maxWait, is still cached with the cache full", id)
		}
	}
	for _, id := range []string{"c", "d", "e"} {
		if _, ok := c.get(id); !ok {
			t.Errorf("batch %s dropped though it fits", id)
		}
	}
	// Batches written meanwhile make room as before.
	c.done("c")
	if c.Bytes() != 2*(1000+256) {
		t.Errorf("holds %d bytes, want %d", c.Bytes(), 2*(1000+256))
	}
}
