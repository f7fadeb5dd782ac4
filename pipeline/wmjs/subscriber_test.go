package wmjs_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/wmjs"
	"github.com/gdexport/gdexport/testing/natstest"
)

// env is one embedded server with a stream on "<prefix>.>" for a test.
type env struct {
	url    string
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
}

func newEnv(t *testing.T, stream, subject string) env {
	t.Helper()
	_, url := natstest.Start(t)
	nc, js := connect(t, url)
	createStream(t, js, stream, subject)
	return env{url: url, nc: nc, js: js, stream: stream}
}

func (e env) subscriber(t *testing.T, cfg wmjs.SubscriberConfig) *wmjs.Subscriber {
	t.Helper()
	_, js := connect(t, e.url)
	if cfg.Durable == nil {
		cfg.Durable = wmjs.GroupDurable("test")
	}
	sub, err := wmjs.NewSubscriber(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func (e env) publish(t *testing.T, topic string, msgs ...*message.Message) {
	t.Helper()
	pub, err := wmjs.NewPublisher(e.js, wmjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
}

func (e env) consumerInfo(t *testing.T, name string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.js.Consumer(ctx, e.stream, name)
	if err != nil {
		t.Fatalf("consumer %s: %v", name, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer %s info: %v", name, err)
	}
	return info
}

func receive(t *testing.T, msgs <-chan *message.Message, within time.Duration) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("messages channel closed")
		}
		return m
	case <-time.After(within):
		t.Fatalf("no message within %s", within)
		return nil
	}
}

func expectNone(t *testing.T, msgs <-chan *message.Message, during time.Duration) {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if ok {
			t.Fatalf("unexpected message %s (delivery %s)", m.UUID, m.Metadata.Get(wmjs.MetaNumDelivered))
		}
	case <-time.After(during):
	}
}

func TestHeadersBecomeMetadata(t *testing.T) {
	e := newEnv(t, "FINDINGS", "findings.>")
	ctx := context.Background()

	// A producer outside Watermill repeats a header and adds unknown ones:
	// watermill-nats crashed every worker on this (DESIGN §8).
	raw := nats.NewMsg("findings.us-east-1.111122223333")
	raw.Data = []byte(`{"id":"f1"}`)
	raw.Header.Add("Gdexport-Reason", "first")
	raw.Header.Add("Gdexport-Reason", "second")
	raw.Header.Add("X-Unknown", "u")
	raw.Header.Set(jetstream.MsgIDHeader, "f1:2026-01-01T00:00:00.000Z")
	if _, err := e.js.PublishMsg(ctx, raw); err != nil {
		t.Fatal(err)
	}
	// No headers at all: the UUID falls back to stream and sequence.
	if _, err := e.js.Publish(ctx, "findings.eu-west-1.444455556666", []byte(`{"id":"f2"}`)); err != nil {
		t.Fatal(err)
	}
	// A repeated Watermill UUID header: the first wins.
	dupUUID := nats.NewMsg("findings.eu-west-1.444455556666")
	dupUUID.Data = []byte(`{"id":"f3"}`)
	dupUUID.Header.Add(wmjs.HeaderUUID, "uuid-a")
	dupUUID.Header.Add(wmjs.HeaderUUID, "uuid-b")
	if _, err := e.js.PublishMsg(ctx, dupUUID); err != nil {
		t.Fatal(err)
	}

	sub := e.subscriber(t, wmjs.SubscriberConfig{})
	msgs, err := sub.Subscribe(ctx, "findings.>")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		uuid     string
		payload  string
		subject  string
		metadata map[string]string
	}{
		{
			// the repeated header keeps its first value, as nats-server reads it
			name: "repeated header", uuid: "f1:2026-01-01T00:00:00.000Z", payload: `{"id":"f1"}`,
			subject: "findings.us-east-1.111122223333",
			metadata: map[string]string{
				"Gdexport-Reason": "first", "X-Unknown": "u",
				jetstream.MsgIDHeader: "f1:2026-01-01T00:00:00.000Z",
				wmjs.MetaStream:       "FINDINGS", wmjs.MetaStreamSeq: "1", wmjs.MetaNumDelivered: "1",
			},
		},
		{
			// a plain NATS publish still gets a stable UUID
			name: "no headers", uuid: "FINDINGS:2", payload: `{"id":"f2"}`,
			subject:  "findings.eu-west-1.444455556666",
			metadata: map[string]string{wmjs.MetaStreamSeq: "2"},
		},
		{
			// the UUID header is not copied into metadata
			name: "repeated UUID header", uuid: "uuid-a", payload: `{"id":"f3"}`,
			subject:  "findings.eu-west-1.444455556666",
			metadata: map[string]string{wmjs.HeaderUUID: "", wmjs.MetaStreamSeq: "3"},
		},
	}
	for _, tc := range tests {
		m := receive(t, msgs, 5*time.Second)
		if m.UUID != tc.uuid || string(m.Payload) != tc.payload {
			t.Errorf("%s: got UUID %q payload %s, want %q %s", tc.name, m.UUID, m.Payload, tc.uuid, tc.payload)
		}
		if got := m.Metadata.Get(wmjs.MetaSubject); got != tc.subject {
			t.Errorf("%s: %s = %q, want %q", tc.name, wmjs.MetaSubject, got, tc.subject)
		}
		for k, want := range tc.metadata {
			if got := m.Metadata.Get(k); got != want {
				t.Errorf("%s: metadata %s = %q, want %q", tc.name, k, got, want)
			}
		}
		m.Ack()
	}
}

func TestInProgressKeepsSlowHandler(t *testing.T) {
	tests := []struct {
		name            string
		inProgressEvery time.Duration
		wantRedelivery  bool
	}{
		// the fix: a 2.5s handler on a 1s AckWait is kept alive
		{name: "in progress", inProgressEvery: 0, wantRedelivery: false},
		// the control: without InProgress the same handler is abandoned,
		// which proves the first case tests something
		{name: "disabled", inProgressEvery: -1, wantRedelivery: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "SLOW", "slow.>")
			sub := e.subscriber(t, wmjs.SubscriberConfig{
				AckWait:         time.Second,
				InProgressEvery: tc.inProgressEvery,
				Concurrency:     2,
			})
			msgs, err := sub.Subscribe(context.Background(), "slow.>")
			if err != nil {
				t.Fatal(err)
			}
			e.publish(t, "slow.work", message.NewMessage("slow-1", []byte("x")))

			m := receive(t, msgs, 5*time.Second)
			handlerDone := time.After(2500 * time.Millisecond) // the slow handler
			var redelivered *message.Message
			select {
			case redelivered = <-msgs:
			case <-handlerDone:
			}
			m.Ack()

			if !tc.wantRedelivery {
				if redelivered != nil {
					t.Fatalf("redelivered (delivery %s) while its handler was running", redelivered.Metadata.Get(wmjs.MetaNumDelivered))
				}
				eventually(t, 5*time.Second, "ack reaches the server", func() bool {
					return e.consumerInfo(t, "test_slow__").NumAckPending == 0
				})
				info := e.consumerInfo(t, "test_slow__")
				if info.NumRedelivered != 0 || info.AckFloor.Stream != 1 {
					t.Fatalf("redelivered %d, ack floor %d; want 0 and 1", info.NumRedelivered, info.AckFloor.Stream)
				}
				expectNone(t, msgs, 1500*time.Millisecond) // longer than AckWait
				return
			}
			if redelivered == nil {
				t.Fatal("without InProgress the message was not redelivered: the control case proves nothing")
			}
			if got := redelivered.Metadata.Get(wmjs.MetaNumDelivered); got != "2" {
				t.Fatalf("redelivery %s = %s, want 2", wmjs.MetaNumDelivered, got)
			}
			redelivered.Ack()
		})
	}
}

func TestNackRedeliversWithDelay(t *testing.T) {
	e := newEnv(t, "NACK", "nack.>")
	const delay = 700 * time.Millisecond
	var attempts []uint64
	var mu sync.Mutex
	sub := e.subscriber(t, wmjs.SubscriberConfig{
		NackDelay: func(attempt uint64) time.Duration {
			mu.Lock()
			attempts = append(attempts, attempt)
			mu.Unlock()
			return delay
		},
	})
	msgs, err := sub.Subscribe(context.Background(), "nack.>")
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, "nack.one", message.NewMessage("n-1", []byte("x")), message.NewMessage("n-2", []byte("y")))

	first := receive(t, msgs, 5*time.Second)
	nackedAt := time.Now()
	first.Nack()
	// The other message is not held back by the delayed one.
	if other := receive(t, msgs, 5*time.Second); other.UUID != "n-2" {
		t.Fatalf("after the nack got %s, want n-2 first", other.UUID)
	} else {
		other.Ack()
	}
	again := receive(t, msgs, 5*time.Second)
	waited := time.Since(nackedAt)
	again.Ack()

	if again.UUID != first.UUID || again.Metadata.Get(wmjs.MetaNumDelivered) != "2" {
		t.Fatalf("redelivered %s delivery %s, want %s delivery 2", again.UUID, again.Metadata.Get(wmjs.MetaNumDelivered), first.UUID)
	}
	if waited < delay-100*time.Millisecond {
		t.Fatalf("redelivered after %s, want about %s", waited, delay)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 1 || attempts[0] != 1 {
		t.Fatalf("NackDelay called with %v, want [1]", attempts)
	}
}

func TestBackoffNackDelay(t *testing.T) {
	delay := wmjs.BackoffNackDelay(time.Second, 10*time.Second)
	tests := []struct {
		name    string
		attempt uint64
		want    time.Duration
	}{
		{name: "first delivery waits the initial delay", attempt: 1, want: time.Second},
		{name: "zero is treated as the first", attempt: 0, want: time.Second},
		{name: "doubles", attempt: 3, want: 4 * time.Second},
		{name: "capped", attempt: 5, want: 10 * time.Second},
		{name: "huge attempt stays capped without overflow", attempt: 1 << 62, want: 10 * time.Second},
	}
	for _, tc := range tests {
		if got := delay(tc.attempt); got != tc.want {
			t.Errorf("%s: delay(%d) = %s, want %s", tc.name, tc.attempt, got, tc.want)
		}
	}
}

func TestSharedDurableSplitsWork(t *testing.T) {
	e := newEnv(t, "SHARED", "shared.>")
	const total = 300
	// Two workers, each with its own connection, on one durable.
	cfg := wmjs.SubscriberConfig{FetchBatch: 10, Concurrency: 4}
	subA, subB := e.subscriber(t, cfg), e.subscriber(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgsA, err := subA.Subscribe(ctx, "shared.>")
	if err != nil {
		t.Fatal(err)
	}
	msgsB, err := subB.Subscribe(ctx, "shared.>")
	if err != nil {
		t.Fatal(err)
	}

	var batch []*message.Message
	for i := range total {
		batch = append(batch, message.NewMessage(fmt.Sprintf("s-%03d", i), []byte("x")))
	}
	e.publish(t, "shared.work", batch...)

	var mu sync.Mutex
	seen := map[string]string{} // UUID → worker
	var dups []string
	count := map[string]int{}
	var wg sync.WaitGroup
	work := func(name string, msgs <-chan *message.Message) {
		defer wg.Done()
		for m := range msgs {
			mu.Lock()
			if prev, ok := seen[m.UUID]; ok {
				dups = append(dups, m.UUID+" ("+prev+", "+name+")")
			}
			seen[m.UUID] = name
			count[name]++
			mu.Unlock()
			m.Ack()
		}
	}
	wg.Add(2)
	go work("A", msgsA)
	go work("B", msgsB)
	eventually(t, 10*time.Second, "all messages consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == total
	})
	eventually(t, 5*time.Second, "acks reach the server", func() bool {
		info := e.consumerInfo(t, "test_shared__")
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	cancel()
	wg.Wait()

	if len(dups) > 0 {
		t.Fatalf("delivered twice: %v", dups)
	}
	if count["A"] == 0 || count["B"] == 0 {
		t.Fatalf("work not split: A %d, B %d", count["A"], count["B"])
	}
	if info := e.consumerInfo(t, "test_shared__"); info.NumRedelivered != 0 {
		t.Fatalf("%d redelivered", info.NumRedelivered)
	}
	t.Logf("A %d, B %d", count["A"], count["B"])
}

func TestCloseReleasesWorkAndKeepsConn(t *testing.T) {
	e := newEnv(t, "CLOSE", "close.>")
	nc, js := connect(t, e.url)
	sub, err := wmjs.NewSubscriber(js, wmjs.SubscriberConfig{
		Durable:      wmjs.GroupDurable("test"),
		CloseTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := wmjs.NewPublisher(js, wmjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var batch []*message.Message
	for i := range 5 {
		batch = append(batch, message.NewMessage("c-"+strconv.Itoa(i), []byte("x")))
	}
	if err := pub.Publish("close.work", batch...); err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(context.Background(), "close.>")
	if err != nil {
		t.Fatal(err)
	}
	held := receive(t, msgs, 5*time.Second) // in a handler, never finished

	closed := make(chan struct{})
	go func() {
		_ = sub.Close()
		close(closed)
	}()
	select {
	case <-held.Context().Done():
		t.Fatal("message context cancelled before CloseTimeout")
	case <-time.After(100 * time.Millisecond):
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after CloseTimeout")
	}
	select {
	case <-held.Context().Done():
	default:
		t.Fatal("message context still live after Close")
	}
	if _, ok := <-msgs; ok {
		t.Fatal("messages channel open after Close")
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}

	if nc.IsClosed() || nc.IsDraining() {
		t.Fatal("Close closed or drained the caller's connection")
	}
	// Nothing was acked (a nak keeps a message "ack pending" on the server
	// until it is delivered again, so that count says nothing here).
	if info := e.consumerInfo(t, "test_close__"); info.AckFloor.Stream != 0 {
		t.Fatalf("after Close: ack floor %d, want 0", info.AckFloor.Stream)
	}
	// The connection still works, and another worker gets all five at once.
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("connection unusable after Close: %v", err)
	}
	other := e.subscriber(t, wmjs.SubscriberConfig{})
	msgs2, err := other.Subscribe(context.Background(), "close.>")
	if err != nil {
		t.Fatal(err)
	}
	// Released means naked: redelivered now, not after the 30s AckWait.
	got := map[string]bool{}
	for range 5 {
		m := receive(t, msgs2, 2*time.Second)
		got[m.UUID] = true
		if n := m.Metadata.Get(wmjs.MetaNumDelivered); n != "2" {
			t.Errorf("%s: delivery %s, want 2", m.UUID, n)
		}
		m.Ack()
	}
	if len(got) != 5 {
		t.Fatalf("got %v, want the five messages", got)
	}
	if err := pub.Publish("close.work", message.NewMessage("late", nil)); !errors.Is(err, wmjs.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := sub.Subscribe(context.Background(), "close.>"); !errors.Is(err, wmjs.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
}

func TestSubscribeContextEndsSubscription(t *testing.T) {
	e := newEnv(t, "CTX", "ctx.>")
	sub := e.subscriber(t, wmjs.SubscriberConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, "ctx.>")
	if err != nil {
		t.Fatal(err)
	}
	e.publish(t, "ctx.one", message.NewMessage("x-1", nil))
	m := receive(t, msgs, 5*time.Second)
	cancel()
	select {
	case <-m.Context().Done(): // derives from the Subscribe context
	case <-time.After(time.Second):
		t.Fatal("message context not cancelled with the Subscribe context")
	}
	m.Ack()
	select {
	case _, ok := <-msgs:
		if ok {
			t.Fatal("message after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after the Subscribe context was cancelled")
	}
	eventually(t, 5*time.Second, "ack of the finished message reaches the server", func() bool {
		return e.consumerInfo(t, "test_ctx__").AckFloor.Stream == 1
	})
}

func TestConfigValidate(t *testing.T) {
	durable := wmjs.GroupDurable("g")
	tests := []struct {
		name    string
		cfg     wmjs.SubscriberConfig
		wantErr bool
	}{
		{name: "durable only is enough", cfg: wmjs.SubscriberConfig{Durable: durable}},
		// no ephemeral consumers: work must be shared
		{name: "durable required", cfg: wmjs.SubscriberConfig{}, wantErr: true},
		// InProgress after AckWait would come too late to help
		{name: "in progress not shorter than ack wait", cfg: wmjs.SubscriberConfig{Durable: durable, AckWait: time.Second, InProgressEvery: time.Second}, wantErr: true},
		{name: "in progress vs default ack wait", cfg: wmjs.SubscriberConfig{Durable: durable, InProgressEvery: time.Minute}, wantErr: true},
		{name: "in progress disabled", cfg: wmjs.SubscriberConfig{Durable: durable, InProgressEvery: -1}},
		{name: "negative concurrency", cfg: wmjs.SubscriberConfig{Durable: durable, Concurrency: -1}, wantErr: true},
		{name: "negative batch", cfg: wmjs.SubscriberConfig{Durable: durable, FetchBatch: -1}, wantErr: true},
		{name: "max deliver below -1", cfg: wmjs.SubscriberConfig{Durable: durable, MaxDeliver: -2}, wantErr: true},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: Validate() = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, wmjs.ErrInvalidConfig) {
			t.Errorf("%s: %v does not wrap ErrInvalidConfig", tc.name, err)
		}
	}
}

func TestSubscribeErrors(t *testing.T) {
	e := newEnv(t, "ERRS", "errs.>")
	createStream(t, e.js, "ERRS2", "other.a")
	createStream(t, e.js, "ERRS3", "other.b")
	tests := []struct {
		name    string
		topic   string
		durable func(string) string
		wantErr error
	}{
		{name: "no stream holds the topic", topic: "nowhere.>", wantErr: wmjs.ErrStreamNotFound},
		// a filter spanning two streams cannot be one consumer
		{name: "two streams overlap the topic", topic: "other.*", wantErr: wmjs.ErrStreamNotFound},
		{name: "durable with a dot", topic: "errs.>", durable: func(string) string { return "a.b" }, wantErr: wmjs.ErrInvalidConfig},
	}
	for _, tc := range tests {
		cfg := wmjs.SubscriberConfig{Durable: tc.durable}
		sub := e.subscriber(t, cfg)
		_, err := sub.Subscribe(context.Background(), tc.topic)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: Subscribe(%s) = %v, want %v", tc.name, tc.topic, err, tc.wantErr)
		}
	}
}

func TestGroupDurable(t *testing.T) {
	tests := []struct {
		name, group, topic, want string
	}{
		{name: "wildcards and dots replaced", group: "export", topic: "gdexport.batches.>", want: "export_gdexport_batches__"},
		{name: "single token kept", group: "g", topic: "topic-1", want: "g_topic-1"},
	}
	for _, tc := range tests {
		if got := wmjs.GroupDurable(tc.group)(tc.topic); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
