package wmjs_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/wmjs"
	"github.com/gdexport/gdexport/testing/natstest"
)

// TestPubSub runs Watermill's own conformance suite against an embedded
// JetStream server. Each topic gets a stream of its own, created when the
// suite calls SubscribeInitialize (it always does before publishing): one
// stream for all topics would not do, because the suite publishes copies of
// one message (same UUID, so same Nats-Msg-Id) to several topics, and
// JetStream dedupes per stream, not per subject. The Subscriber finds each
// stream through the default resolver (stream names by subject), so that
// path runs on every Subscribe.
//
// Features, and why:
//   - ConsumerGroups: a group is a durable name (GroupDurable(group)); two
//     groups each get every message, one group splits them.
//   - ExactlyOnceDelivery false: at least once (Nack, Close, AckWait all
//     redeliver; Nats-Msg-Id dedupe only covers publishing).
//   - GuaranteedOrder with GuaranteedOrderWithSingleSubscriber: one
//     subscription with Concurrency 1 delivers in stream order, and a
//     Publish call stores its messages in call order (one connection,
//     pipelined). Not across subscribers sharing a durable, not with
//     Concurrency > 1, and a Nack sends its message behind later ones.
//   - Persistent: messages live in the stream, not in the subscriber.
//   - NewSubscriberReceivesOldMessages false: the default constructor's
//     subscribers share one durable per topic (the project's rule), so a
//     new subscriber continues where the group is, it does not replay.
//   - RequireSingleInstance false: separate instances (each with its own
//     connection here) cooperate through the server.
//   - No RestartServiceCommand: the server is in-process, TestReconnect is
//     skipped.
func TestPubSub(t *testing.T) {
	_, url := natstest.Start(t)

	newPubSub := func(t *testing.T, durable func(string) string) (message.Publisher, message.Subscriber) {
		_, js := connect(t, url)
		logger := watermill.NewStdLogger(false, false)
		pub, err := wmjs.NewPublisher(js, wmjs.PublisherConfig{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := wmjs.NewSubscriber(js, wmjs.SubscriberConfig{
			Durable: durable,
			// The suite nacks the same messages many times in a row and
			// waits at most 15s for each: keep the backoff short.
			NackDelay: wmjs.BackoffNackDelay(10*time.Millisecond, 200*time.Millisecond),
			// TestMessageCtx waits 15s for the context of a message
			// never acked to end after Close.
			CloseTimeout: 2 * time.Second,
			Logger:       logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		return pub, streamPerTopic{Subscriber: sub, js: js}
	}

	tests.TestPubSub(t,
		tests.Features{
			ConsumerGroups:                      true,
			ExactlyOnceDelivery:                 false,
			GuaranteedOrder:                     true,
			GuaranteedOrderWithSingleSubscriber: true,
			Persistent:                          true,
			RequireSingleInstance:               false,
			NewSubscriberReceivesOldMessages:    false,
		},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			return newPubSub(t, wmjs.GroupDurable("default"))
		},
		func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			return newPubSub(t, wmjs.GroupDurable(group))
		},
	)
}

// streamPerTopic creates the topic's stream before the durable consumer:
// test plumbing only; in gdexport streams are declared at startup.
type streamPerTopic struct {
	*wmjs.Subscriber
	js jetstream.JetStream
}

func (s streamPerTopic) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     "T_" + wmjs.ConsumerName(topic),
		Subjects: []string{topic},
		Storage:  jetstream.FileStorage,
	}); err != nil {
		return err
	}
	return s.Subscriber.SubscribeInitialize(topic)
}
