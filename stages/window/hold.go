package window

import (
	"sync/atomic"
	"time"
)

// Acker is the part of a JetStream message the lanes resolve.
type Acker interface {
	Ack() error
	NakWithDelay(delay time.Duration) error
}

// Hold is one source message held until every batch that contains it is
// sealed. It is acked when the last of them seals and nak'ed (redelivered)
// if any of them fails. Safe for concurrent use.
type Hold struct {
	msg         Acker
	redelivered bool
	pending     atomic.Int32
	failed      atomic.Bool
	onDone      func(acked bool)
}

// NewHold holds msg for n batches. redelivered says the message was
// delivered before (a previous holder may have crashed mid-seal). onDone, if
// set, is called once when the hold is resolved.
func NewHold(msg Acker, n int, redelivered bool, onDone func(acked bool)) *Hold {
	h := &Hold{msg: msg, redelivered: redelivered, onDone: onDone}
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
		h.onDone(acked)
	}
}
