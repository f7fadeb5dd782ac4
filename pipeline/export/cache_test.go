package export

import (
	"strings"
	"testing"

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
	var nilCache *Cache
	nilCache.Put("x", findings(1, 1)) // a nil cache is a no-op
	if _, ok := nilCache.get("x"); ok {
		t.Error("nil cache returned a batch")
	}
}
