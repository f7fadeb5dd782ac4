package wmjs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchWait is how long a pull request waits on the server when the
// consumer had nothing to give; Close cancels it earlier.
const fetchWait = 5 * time.Second

// flushTimeout bounds the flush that makes the acks and naks of a finished
// subscription reach the server before Close returns.
const flushTimeout = 5 * time.Second

// subscription is one Subscribe call. Three goroutines cooperate:
//
//   - fetchLoop pulls up to the free room of queue and puts every message in
//     it, so nothing is requested that cannot be held;
//   - dispatchLoop hands queued messages to Watermill, at most Concurrency
//     at a time, each watched by an await goroutine that acks or naks it;
//   - keepAlive sends InProgress for every held message (queued or in
//     Watermill) so AckWait never expires on work that is still going on.
//
// Stopping (ctx cancelled, Subscriber closed, or a fatal error) closes stop:
// fetchLoop ends its pull request and closes queue; dispatchLoop stops
// handing out, naks what it still holds once queue is closed (so the naked
// messages cannot come back to this subscription's own pull), waits for the
// awaits, then closes out.
type subscription struct {
	s      *Subscriber
	cfg    *SubscriberConfig
	logger watermill.LoggerAdapter
	topic  string

	consMu sync.Mutex
	cons   jetstream.Consumer

	ctx      context.Context // Subscribe's context, parent of message contexts
	stop     chan struct{}   // closed once by halt
	haltOnce sync.Once
	graceEnd chan struct{} // closed CloseTimeout after stop
	finished chan struct{} // closed when out is closed

	out   chan *message.Message
	queue chan jetstream.Msg
	room  chan struct{} // signals fetchLoop that dispatchLoop took from queue
	slots chan struct{} // one token per message in Watermill

	heldMu sync.Mutex
	held   map[jetstream.Msg]struct{} // received and not yet acked or naked

	awaits sync.WaitGroup
}

func newSubscription(ctx context.Context, s *Subscriber, topic string, cons jetstream.Consumer) *subscription {
	return &subscription{
		s:        s,
		cfg:      &s.cfg,
		logger:   s.logger.With(watermill.LogFields{"topic": topic, "consumer": cons.CachedInfo().Name}),
		topic:    topic,
		cons:     cons,
		ctx:      ctx,
		stop:     make(chan struct{}),
		graceEnd: make(chan struct{}),
		finished: make(chan struct{}),
		out:      make(chan *message.Message),
		queue:    make(chan jetstream.Msg, s.cfg.FetchBatch),
		room:     make(chan struct{}, 1),
		slots:    make(chan struct{}, s.cfg.Concurrency),
		held:     make(map[jetstream.Msg]struct{}),
	}
}

func (sub *subscription) run() {
	sub.logger.Debug("Subscription started", nil)
	go sub.watchStop()
	if sub.cfg.InProgressEvery > 0 {
		go sub.keepAlive()
	}
	go sub.fetchLoop()
	sub.dispatchLoop()
	close(sub.finished)
	sub.logger.Debug("Subscription ended", nil)
}

func (sub *subscription) halt() {
	sub.haltOnce.Do(func() { close(sub.stop) })
}

func (sub *subscription) stopping() bool {
	select {
	case <-sub.stop:
		return true
	default:
		return false
	}
}

func (sub *subscription) watchStop() {
	select {
	case <-sub.ctx.Done():
		sub.halt()
	case <-sub.s.closing:
		sub.halt()
	case <-sub.stop:
	case <-sub.finished:
		return
	}
	t := time.NewTimer(sub.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-t.C:
	case <-sub.finished:
	}
	close(sub.graceEnd)
}

func (sub *subscription) track(m jetstream.Msg) {
	sub.heldMu.Lock()
	sub.held[m] = struct{}{}
	sub.heldMu.Unlock()
}

// untrack reports whether m was still held; only the caller that untracks a
// message may ack or nak it.
func (sub *subscription) untrack(m jetstream.Msg) bool {
	sub.heldMu.Lock()
	defer sub.heldMu.Unlock()
	if _, ok := sub.held[m]; !ok {
		return false
	}
	delete(sub.held, m)
	return true
}

func (sub *subscription) keepAlive() {
	t := time.NewTicker(sub.cfg.InProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-sub.finished:
			return
		}
		// Held under the lock so that an ack, which untracks first, is
		// never followed by a stale InProgress for the same message.
		sub.heldMu.Lock()
		n := 0
		for m := range sub.held {
			if err := m.InProgress(); err == nil {
				n++
			}
		}
		sub.heldMu.Unlock()
		if n > 0 {
			sub.logger.Trace("Sent InProgress", watermill.LogFields{"messages": n})
		}
	}
}

func (sub *subscription) consumer() jetstream.Consumer {
	sub.consMu.Lock()
	defer sub.consMu.Unlock()
	return sub.cons
}

// fetchLoop pulls messages into queue until stop. It alone sends on queue
// and it closes it. A pull asks for at most the queue's free room, so sends
// never block. After a full batch it asks again without waiting (no pull
// request stays parked on the server while there is a backlog, so stopping
// never abandons messages in flight); after a short one it parks a request
// for up to fetchWait, cancelled by stop.
func (sub *subscription) fetchLoop() {
	defer close(sub.queue)
	threshold := max(1, cap(sub.queue)/2)
	noWait := true
	failures := 0
	for {
		for cap(sub.queue)-len(sub.queue) < threshold {
			select {
			case <-sub.room:
			case <-sub.stop:
				return
			}
		}
		if sub.stopping() {
			return
		}
		n := cap(sub.queue) - len(sub.queue)
		cons := sub.consumer()
		var batch jetstream.MessageBatch
		var err error
		cancel := func() {}
		if noWait {
			batch, err = cons.FetchNoWait(n)
		} else {
			var fctx context.Context
			fctx, cancel = context.WithTimeout(context.Background(), fetchWait)
			batch, err = cons.Fetch(n, jetstream.FetchContext(fctx))
		}
		got := 0
		if err == nil {
			got = sub.drain(batch, noWait, cancel)
			err = batch.Error()
		}
		cancel()
		noWait = got == n

		switch {
		case err == nil, errors.Is(err, context.Canceled) && sub.stopping(),
			errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			failures = 0
			continue
		case errors.Is(err, nats.ErrConnectionClosed) || sub.s.js.Conn().IsClosed():
			sub.logger.Error("Subscription ends: NATS connection closed", err, nil)
			sub.halt()
			return
		}
		if got > 0 {
			// Messages came: the error ended a productive pull (leadership
			// change, max bytes…); pull again at once.
			sub.logger.Debug("Pull ended with an error", watermill.LogFields{"error": err.Error()})
			continue
		}
		failures++
		if failures == 1 || failures%20 == 0 {
			sub.logger.Error("Pull failed; retrying", err, watermill.LogFields{"failures": failures})
		}
		if !sub.sleep(min(50*time.Millisecond<<min(failures, 7), 5*time.Second)) {
			return
		}
		// The consumer may have been deleted or the stream recreated.
		ctx, cancelEnsure := context.WithTimeout(context.Background(), apiTimeout)
		cons, eerr := sub.s.ensureConsumer(ctx, sub.topic)
		cancelEnsure()
		if eerr != nil {
			sub.logger.Debug("Recreating consumer failed", watermill.LogFields{"error": eerr.Error()})
			continue
		}
		sub.consMu.Lock()
		sub.cons = cons
		sub.consMu.Unlock()
	}
}

// drain moves a batch's messages into queue as they arrive and returns how
// many came. On stop, a parked request is cancelled; a no-wait request is
// let finish, as the server answers it at once.
func (sub *subscription) drain(batch jetstream.MessageBatch, noWait bool, cancel func()) int {
	got := 0
	msgs := batch.Messages()
	stop := sub.stop
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return got
			}
			sub.track(m)
			sub.queue <- m
			got++
		case <-stop:
			if !noWait {
				cancel()
			}
			stop = nil
		}
	}
}

func (sub *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-sub.stop:
		return false
	}
}

// dispatchLoop hands queued messages to Watermill until queue is closed.
func (sub *subscription) dispatchLoop() {
	var parked []jetstream.Msg
	for m := range sub.queue {
		select {
		case sub.room <- struct{}{}:
		default:
		}
		if sub.stopping() {
			parked = append(parked, m)
			continue
		}
		select {
		case sub.slots <- struct{}{}:
		case <-sub.stop:
			parked = append(parked, m)
			continue
		}
		wm := fromJetStream(m)
		ctx, cancel := context.WithCancel(sub.ctx)
		wm.SetContext(ctx)
		select {
		case sub.out <- wm:
			sub.logger.Trace("Message handed to Watermill", watermill.LogFields{
				"message_uuid": wm.UUID, "stream_seq": wm.Metadata.Get(MetaStreamSeq),
				"num_delivered": wm.Metadata.Get(MetaNumDelivered),
			})
			sub.awaits.Add(1)
			go sub.await(m, wm, cancel)
		case <-sub.stop:
			cancel()
			<-sub.slots
			parked = append(parked, m)
		}
	}
	// queue is closed: no pull request of ours is left, so what is naked
	// now goes to other subscribers (or a later one), not back to us.
	for _, m := range parked {
		sub.nak(m, 0, "")
	}
	if len(parked) > 0 {
		sub.logger.Debug("Released undelivered messages", watermill.LogFields{"messages": len(parked)})
	}
	sub.awaits.Wait()
	// Make the last acks and naks reach the server before Close returns.
	if nc := sub.s.js.Conn(); nc != nil && !nc.IsClosed() {
		if err := nc.FlushTimeout(flushTimeout); err != nil {
			sub.logger.Debug("Flush after subscription failed", watermill.LogFields{"error": err.Error()})
		}
	}
	close(sub.out)
}

// await settles one message handed to Watermill.
func (sub *subscription) await(m jetstream.Msg, wm *message.Message, cancel context.CancelFunc) {
	defer sub.awaits.Done()
	defer func() { <-sub.slots }()
	defer cancel()
	select {
	case <-wm.Acked():
		sub.ack(m, wm.UUID)
	case <-wm.Nacked():
		attempt := uint64(1)
		if meta, err := m.Metadata(); err == nil {
			attempt = meta.NumDelivered
		}
		sub.nak(m, sub.cfg.NackDelay(attempt), wm.UUID)
	case <-sub.graceEnd:
		sub.logger.Debug("Message neither acked nor nacked within CloseTimeout; naking", watermill.LogFields{"message_uuid": wm.UUID})
		sub.nak(m, 0, wm.UUID)
	}
}

func (sub *subscription) ack(m jetstream.Msg, uuid string) {
	if !sub.untrack(m) {
		return
	}
	var err error
	if sub.cfg.AckSync {
		ctx, cancel := context.WithTimeout(context.Background(), sub.cfg.AckWait)
		err = m.DoubleAck(ctx)
		cancel()
	} else {
		err = m.Ack()
	}
	if err != nil {
		sub.settleFailed("Ack failed; the message will be redelivered", err, uuid)
		return
	}
	sub.logger.Trace("Message acked", watermill.LogFields{"message_uuid": uuid})
}

func (sub *subscription) nak(m jetstream.Msg, delay time.Duration, uuid string) {
	if !sub.untrack(m) {
		return
	}
	var err error
	if delay > 0 {
		err = m.NakWithDelay(delay)
	} else {
		err = m.Nak()
	}
	if err != nil {
		sub.settleFailed("Nak failed; the message will be redelivered after AckWait", err, uuid)
		return
	}
	sub.logger.Trace("Message naked", watermill.LogFields{"message_uuid": uuid, "delay": delay.String()})
}

// settleFailed logs a failed ack or nak: at Error, except once the
// connection is closed, which its owner did and which fails every message
// still held (the subscription logs that once).
func (sub *subscription) settleFailed(msg string, err error, uuid string) {
	fields := watermill.LogFields{"message_uuid": uuid}
	if errors.Is(err, nats.ErrConnectionClosed) {
		fields["error"] = err.Error()
		sub.logger.Debug(msg, fields)
		return
	}
	sub.logger.Error(msg, err, fields)
}
