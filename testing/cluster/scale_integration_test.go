//go:build integration

package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/generator"
)

// TestScaleOut runs 1, 2 and then 3 worker containers on one cluster, each
// round exporting its own findings into its own bucket: the workers split
// the work (each exports a share, by its own metrics) and the union of the
// objects is exactly the input, each line once.
func TestScaleOut(t *testing.T) {
	e := setup(t, options{})
	for n := 1; n <= 3; n++ {
		start := time.Now()
		if n > 1 {
			e.useBucket(fmt.Sprintf("scale-%d", n))
		}
		// Events of the previous round are checked already.
		if s, err := e.js.Stream(context.Background(), natsx.StreamEvents); err == nil {
			if err := s.Purge(context.Background()); err != nil {
				t.Fatalf("purge events: %v", err)
			}
		}
		e.workers = e.workers[:0]
		e.startWorkers(n)
		p := newPlan(t, generator.Config{Seed: int64(100 + n), Versions: 3000, MaxVersionsPerID: 1})
		published := e.publish(p.msgs, 250, 250*time.Millisecond)
		if err := <-published; err != nil {
			t.Fatal(err)
		}
		e.waitSettled(p, exportTimeout)
		r := e.check(p)
		shares := make([]string, n)
		sum := 0
		for i, w := range e.workers {
			v, err := w.Metric("gdexport_findings_exported_total")
			if err != nil {
				t.Fatalf("%s metrics: %v", w.Name, err)
			}
			shares[i] = fmt.Sprintf("%d", int(v))
			sum += int(v)
			if v == 0 {
				t.Errorf("%d workers: %s exported nothing: the work was not split", n, w.Name)
			}
		}
		// Without faults nothing is written twice.
		if sum != r.exported+countRewritten(e) {
			t.Errorf("%d workers: their metrics count %d exported lines, the bucket holds %d", n, sum, r.exported)
		}
		r.note = "shares " + strings.Join(shares, "/")
		name := fmt.Sprintf("%s/%d-workers", t.Name(), n)
		if n == 1 {
			name = t.Name() + "/1-worker"
		}
		report(t, name, start, r)
		e.checkWorkers()
		for _, w := range e.workers {
			w.Stop(t, 15*time.Second)
		}
	}
}

// countRewritten counts the lines of the object versions beyond the
// first (what a rewrite wrote again).
func countRewritten(e *env) int {
	objs, err := e.objects.read()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, vs := range objs {
		for _, v := range vs[1:] {
			n += len(v)
		}
	}
	return n
}
