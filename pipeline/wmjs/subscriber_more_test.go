package wmjs_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/wmjs"
)

// levelCounter counts log calls per level.
type levelCounter struct {
	info, errs *atomic.Int64
}

func newLevelCounter() levelCounter {
	return levelCounter{info: new(atomic.Int64), errs: new(atomic.Int64)}
}

func (l levelCounter) Error(string, error, watermill.LogFields)         { l.errs.Add(1) }
func (l levelCounter) Info(string, watermill.LogFields)                 { l.info.Add(1) }
func (l levelCounter) Debug(string, watermill.LogFields)                {}
func (l levelCounter) Trace(string, watermill.LogFields)                {}
func (l levelCounter) With(watermill.LogFields) watermill.LoggerAdapter { return l }

func TestConcurrencyBoundsOutstanding(t *testing.T) {
	e := newEnv(t, "CONC", "conc.>")
	logs := newLevelCounter()
	sub := e.subscriber(t, wmjs.SubscriberConfig{Concurrency: 3, Logger: logs})
	msgs, err := sub.Subscribe(context.Background(), "conc.>")
	if err != nil {
		t.Fatal(err)
	}
	var batch []*message.Message
	for i := range 10 {
		batch = append(batch, message.NewMessage("c-"+strconv.Itoa(i), nil))
	}
	e.publish(t, "conc.work", batch...)

	var held []*message.Message
	for range 3 {
		held = append(held, receive(t, msgs, 5*time.Second))
	}
	expectNone(t, msgs, 200*time.Millisecond) // a fourth would exceed Concurrency
	held[0].Ack()
	held = append(held[1:], receive(t, msgs, 5*time.Second))
	for _, m := range held {
		m.Ack()
	}
	for range 6 {
		receive(t, msgs, 5*time.Second).Ack()
	}
	if n := logs.info.Load(); n != 0 {
		t.Errorf("%d Info logs for 10 messages, want none", n)
	}
	if n := logs.errs.Load(); n != 0 {
		t.Errorf("%d Error logs", n)
	}
}

func TestCloseWaitsForInFlight(t *testing.T) {
	e := newEnv(t, "GRACE", "grace.>")
	sub := e.subscriber(t, wmjs.SubscriberConfig{CloseTimeout: 5 * time.Second})
	msgs, err := sub.Subscribe(context.Background(), "grace.>")
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, "grace.work", message.NewMessage("g-1", nil), message.NewMessage("g-2", nil))
	inFlight := receive(t, msgs, 5*time.Second)

	closed := make(chan struct{})
	go func() {
		_ = sub.Close()
		close(closed)
	}()
	// A handler that finishes within the grace period is not interrupted:
	// its context stays live and its ack counts.
	select {
	case <-closed:
		t.Fatal("Close returned while a message was in flight")
	case <-inFlight.Context().Done():
		t.Fatal("in-flight message context cancelled by Close")
	case <-time.After(200 * time.Millisecond):
	}
	inFlight.Ack()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the last ack")
	}
	// g-1 acked; g-2 (fetched, never handed out) released, not acked.
	info := e.consumerInfo(t, "test_grace__")
	if info.AckFloor.Stream != 1 {
		t.Fatalf("ack floor %d, want 1", info.AckFloor.Stream)
	}
	other := e.subscriber(t, wmjs.SubscriberConfig{})
	msgs2, err := other.Subscribe(context.Background(), "grace.>")
	if err != nil {
		t.Fatal(err)
	}
	m := receive(t, msgs2, 2*time.Second)
	if m.UUID != "g-2" {
		t.Fatalf("next worker got %s, want g-2", m.UUID)
	}
	m.Ack()
}

func TestConsumerConfig(t *testing.T) {
	e := newEnv(t, "CFG", "cfg.>")
	sub := e.subscriber(t, wmjs.SubscriberConfig{AckWait: 10 * time.Second, MaxAckPending: 500})
	if err := sub.SubscribeInitialize("cfg.>"); err != nil {
		t.Fatal(err)
	}
	got := e.consumerInfo(t, "test_cfg__").Config
	if got.Durable != "test_cfg__" || got.AckPolicy != jetstream.AckExplicitPolicy ||
		got.FilterSubject != "cfg.>" || got.AckWait != 10*time.Second ||
		got.MaxAckPending != 500 || got.MaxDeliver != -1 || got.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Fatalf("consumer config %+v", got)
	}
	// Another worker with other settings updates the same durable in place.
	sub2 := e.subscriber(t, wmjs.SubscriberConfig{AckWait: 20 * time.Second, MaxAckPending: 500})
	if err := sub2.SubscribeInitialize("cfg.>"); err != nil {
		t.Fatal(err)
	}
	if got := e.consumerInfo(t, "test_cfg__").Config.AckWait; got != 20*time.Second {
		t.Fatalf("AckWait after update %s, want 20s", got)
	}
}

// TestRouter runs a Watermill Router hop (subscribe, handle, publish onward)
// and closes it the way a worker does on SIGTERM.
func TestRouter(t *testing.T) {
	e := newEnv(t, "RT", "rt.>")
	_, js := connect(t, e.url)
	sub, err := wmjs.NewSubscriber(js, wmjs.SubscriberConfig{Durable: wmjs.GroupDurable("router"), Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := wmjs.NewPublisher(js, wmjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddHandler("forward", "rt.in.>", sub, "rt.out.all", pub, func(msg *message.Message) ([]*message.Message, error) {
		out := message.NewMessage("out-"+msg.UUID, msg.Payload)
		out.Metadata.Set("from_subject", msg.Metadata.Get(wmjs.MetaSubject))
		return []*message.Message{out}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = router.Run(ctx) }()
	<-router.Running()

	var batch []*message.Message
	for i := range 50 {
		batch = append(batch, message.NewMessage("in-"+strconv.Itoa(i), []byte(strconv.Itoa(i))))
	}
	e.publish(t, "rt.in.us-east-1", batch...)

	outSub := e.subscriber(t, wmjs.SubscriberConfig{Durable: wmjs.GroupDurable("check")})
	outs, err := outSub.Subscribe(ctx, "rt.out.all")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 50 {
		m := receive(t, outs, 5*time.Second)
		if m.Metadata.Get("from_subject") != "rt.in.us-east-1" {
			t.Fatalf("%s: from_subject %q", m.UUID, m.Metadata.Get("from_subject"))
		}
		got[m.UUID] = true
		m.Ack()
	}
	if err := router.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "every input acked", func() bool {
		return e.consumerInfo(t, "router_rt_in__").AckFloor.Stream >= 50
	})
}

// TestConsumerRecreatedAfterDelete: an operator deleting the durable does not
// end the subscription; it recreates the consumer and carries on.
func TestConsumerRecreatedAfterDelete(t *testing.T) {
	e := newEnv(t, "DEL", "del.>")
	logs := newLevelCounter()
	sub := e.subscriber(t, wmjs.SubscriberConfig{Logger: logs})
	msgs, err := sub.Subscribe(context.Background(), "del.>")
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, "del.x", message.NewMessage("before", nil))
	receive(t, msgs, 5*time.Second).Ack()

	if err := e.js.DeleteConsumer(context.Background(), "DEL", "test_del__"); err != nil {
		t.Fatal(err)
	}
	e.publish(t, "del.x", message.NewMessage("after", nil))
	// The recreated durable starts from the stream's first message: its
	// acks were deleted with it.
	got := map[string]bool{}
	for len(got) < 2 {
		m := receive(t, msgs, 10*time.Second)
		got[m.UUID] = true
		m.Ack()
	}
	if !got["after"] {
		t.Fatalf("got %v", got)
	}
	if logs.errs.Load() == 0 {
		t.Error("the failed pull was not logged")
	}
}
