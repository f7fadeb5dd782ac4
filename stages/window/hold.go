package window

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Acker is the part of a JetStream message the lanes resolve.
type Acker interface {
	Ack() error
	NakWithDelay(delay time.Duration) error
	// InProgress resets the message's ack wait.
	InProgress() error
}

// Hold is one source message held until every batch that contains it is
// sealed. It is acked when the last of them seals and nak'ed (redelivered)
// if any of them fails. Safe for concurrent use.
type Hold struct {
	msg         Acker
	redelivered bool
	since       time.Time
	pending     atomic.Int32
	failed      atomic.Bool
	onDone      func(h *Hold, acked bool)
}

// NewHold holds msg for n batches. redelivered says the message was
// delivered before (a previous holder may have crashed mid-seal). onDone, if
// set, is called once when the hold is resolved.
func NewHold(msg Acker, n int, redelivered bool, onDone func(acked bool)) *Hold {
	h := &Hold{msg: msg, redelivered: redelivered, since: time.Now()}
	if onDone != nil {
		h.onDone = func(_ *Hold, acked bool) { onDone(acked) }
	}
	h.pending.Store(int32(n))
	return h
}

// Redelivered reports whether the message was delivered before.
func (h *Hold) Redelivered() bool { return h != nil && h.redelivered }

// Done resolves one of the batches holding the message.
func (h *Hold) Done(ok bool) {
	if !ok {
		h.failed.Store(true)
	}
	if h.pending.Add(-1) != 0 {
		return
	}
	acked := !h.failed.Load()
	if acked {
		_ = h.msg.Ack()
	} else {
		_ = h.msg.NakWithDelay(time.Second)
	}
	if h.onDone != nil {
		h.onDone(h, acked)
	}
}

// Holds registers every unresolved Hold of a worker so that messages held
// longer than usual (a slow seal, a batch waiting for a free sealer) are
// kept alive with InProgress instead of being redelivered to another
// worker while this one still works on them. The ingest consumer's ack wait
// can then stay short, which is how long the messages of a crashed worker
// wait before another worker takes them. Safe for concurrent use.
type Holds struct {
	mu   sync.Mutex
	held map[*Hold]struct{}
}

// NewHolds returns an empty registry.
func NewHolds() *Holds { return &Holds{held: map[*Hold]struct{}{}} }

// Hold is NewHold for a message registered here until it is resolved.
func (hs *Holds) Hold(msg Acker, n int, redelivered bool) *Hold {
	h := &Hold{msg: msg, redelivered: redelivered, since: time.Now(), onDone: hs.remove}
	h.pending.Store(int32(n))
	hs.mu.Lock()
	hs.held[h] = struct{}{}
	hs.mu.Unlock()
	return h
}

func (hs *Holds) remove(h *Hold, _ bool) {
	hs.mu.Lock()
	delete(hs.held, h)
	hs.mu.Unlock()
}

// Len is the number of unresolved holds.
func (hs *Holds) Len() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.held)
}

// KeepAlive sends InProgress, every period, for each message held longer
// than period, until ctx ends. period should be a third of the ack wait.
func (hs *Holds) KeepAlive(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			var old []*Hold
			hs.mu.Lock()
			for h := range hs.held {
				if now.Sub(h.since) >= period {
					old = append(old, h)
				}
			}
			hs.mu.Unlock()
			for _, h := range old {
				_ = h.msg.InProgress()
			}
		}
	}
}
