package window

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gdexport/gdexport/pipeline"
)

// TestNewLaneKeysByOwner checks B7's setting: a destination whose keys carry
// the finding owner's account gets one batch per owner account, each naming
// that account in its key, while a destination keyed by its administrator
// batches every account together under its own.
func TestNewLaneKeysByOwner(t *testing.T) {
	_, _, s, _ := setup(t)
	lane := NewNewLane(NewLaneConfig{Delay: 100 * time.Millisecond, MaxFindings: 100, MaxBytes: 1 << 20}, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var mu sync.Mutex
	var sealed []*pipeline.Batch
	lane.OnSealed = func(b *pipeline.Batch, _ []*pipeline.Finding) { mu.Lock(); sealed = append(sealed, b); mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lane.Run(ctx, context.Background()); close(done) }()

	byOwner := &pipeline.Destination{ID: "d-owner", Account: "111122223333", Region: "eu-west-1", KeyAccount: pipeline.KeyAccountOwner}
	byAdmin := &pipeline.Destination{ID: "d-admin", Account: "111122223333", Region: "eu-west-1"}
	var msgs []*fakeMsg
	for i, acct := range []string{"444455556666", "555566667777", "444455556666"} {
		for _, d := range []*pipeline.Destination{byOwner, byAdmin} {
			f := finding(string(rune('a'+i)), 1000, 1, uint64(i+1))
			f.AccountID = acct
			m := newFakeMsg()
			msgs = append(msgs, m)
			lane.Add(f, d, NewHold(m, 1, false, nil), 0)
		}
	}
	for _, m := range msgs {
		select {
		case <-m.ackCh:
		case <-time.After(10 * time.Second):
			t.Fatal("message not resolved within 10s")
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, b := range sealed {
		got = append(got, b.Destination+" "+b.ObjectKey("")[:len("AWSLogs/111122223333")]+" "+string(rune('0'+len(b.Refs))))
	}
	sort.Strings(got)
	want := []string{
		"d-admin AWSLogs/111122223333 3",
		"d-owner AWSLogs/444455556666 2",
		"d-owner AWSLogs/555566667777 1",
	}
	if len(got) != len(want) {
		t.Fatalf("sealed %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sealed %q, want %q", got, want)
		}
	}
	for _, b := range sealed {
		if b.Account != "111122223333" {
			t.Errorf("batch %s Account = %s: the destination owner must stay (events, resolution)", b.ID, b.Account)
		}
	}
}
