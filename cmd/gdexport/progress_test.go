package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Off a terminal, progress is plain periodic lines, and only for inputs
// past progressAfter findings.
func TestProgressPlainLines(t *testing.T) {
	var out bytes.Buffer
	n := int64(100)
	p := newProgress(&out, func() int64 { return n })
	p.every = time.Millisecond
	p.input("big.jsonl", func() float64 { return 0.5 })
	p.tick()
	if out.Len() != 0 {
		t.Fatalf("a small input reported progress: %q", out.String())
	}
	n = 5000
	time.Sleep(2 * time.Millisecond)
	p.tick()
	if got := out.String(); !strings.Contains(got, "publish: 5000 findings acknowledged") || !strings.Contains(got, "big.jsonl 50% read") || strings.Contains(got, "\r") {
		t.Errorf("progress line %q", got)
	}
	p.finish()
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("finish wrote to a non-terminal: %q", out.String())
	}
}
