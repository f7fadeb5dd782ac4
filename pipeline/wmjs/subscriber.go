package wmjs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// apiTimeout bounds a JetStream API call (stream lookup, consumer create)
// made without a deadline from the caller.
const apiTimeout = 10 * time.Second

// Subscriber consumes JetStream through durable pull consumers and hands the
// messages to Watermill. It is safe for concurrent use; each Subscribe call
// is an independent subscription with its own buffer and Concurrency.
type Subscriber struct {
	js     jetstream.JetStream
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	subs    sync.WaitGroup
}

// NewSubscriber returns a Subscriber over js. The caller keeps ownership of
// js's connection.
func NewSubscriber(js jetstream.JetStream, cfg SubscriberConfig) (*Subscriber, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Subscriber{js: js, cfg: cfg, logger: cfg.Logger, closing: make(chan struct{})}, nil
}

// SubscribeInitialize creates or updates the topic's durable consumer
// without consuming, so messages published from now on wait for it even if
// the stream's retention is interest-based. The stream must exist.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	_, err := s.ensureConsumer(ctx, topic)
	return err
}

// Subscribe creates or updates the durable consumer for topic (a subject
// filter) and returns the channel its messages arrive on. The channel is
// closed when ctx is cancelled or the Subscriber closed, after every message
// delivered on it was acked, nacked, or nacked by the CloseTimeout. Each
// message must be acked or nacked; its context is cancelled once it is, and
// derives from ctx.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.subs.Add(1)
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, apiTimeout)
	cons, err := s.ensureConsumer(cctx, topic)
	cancel()
	if err != nil {
		s.subs.Done()
		return nil, err
	}
	sub := newSubscription(ctx, s, topic, cons)
	go func() {
		defer s.subs.Done()
		sub.run()
	}()
	return sub.out, nil
}

// Close ends every subscription: fetching stops at once, messages fetched
// but not handed to Watermill are nacked, messages in Watermill get
// CloseTimeout to be acked or nacked before they are nacked. It blocks until
// then and is idempotent. It does not close the NATS connection and does not
// delete the durable consumers.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	s.subs.Wait()
	return nil
}

// ensureConsumer creates the topic's durable consumer or updates it to this
// Subscriber's configuration.
func (s *Subscriber) ensureConsumer(ctx context.Context, topic string) (jetstream.Consumer, error) {
	if topic == "" {
		return nil, fmt.Errorf("%w: empty topic", ErrInvalidConfig)
	}
	durable := s.cfg.Durable(topic)
	if durable == "" || strings.ContainsAny(durable, ".*> \t\r\n/\\") {
		return nil, fmt.Errorf("%w: durable name %q for topic %s is empty or holds '.', '*', '>', whitespace or a path separator", ErrInvalidConfig, durable, topic)
	}
	stream, err := s.streamFor(ctx, topic)
	if err != nil {
		return nil, err
	}
	cc := jetstream.ConsumerConfig{
		Durable:       durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		MaxDeliver:    s.cfg.MaxDeliver,
		FilterSubject: topic,
	}
	if s.cfg.ConfigureConsumer != nil {
		s.cfg.ConfigureConsumer(topic, &cc)
		cc.Durable, cc.Name = durable, ""
		cc.AckPolicy = jetstream.AckExplicitPolicy
		cc.FilterSubject, cc.FilterSubjects = topic, nil
	}
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, cc)
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s on stream %s for %s: %w", durable, stream, topic, err)
	}
	return cons, nil
}

func (s *Subscriber) streamFor(ctx context.Context, topic string) (string, error) {
	if s.cfg.Stream != nil {
		if name := s.cfg.Stream(topic); name != "" {
			return name, nil
		}
		return "", fmt.Errorf("%w: Stream resolver gave no name for %s", ErrStreamNotFound, topic)
	}
	lister := s.js.StreamNames(ctx, jetstream.WithStreamListSubject(topic))
	var names []string
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return "", fmt.Errorf("look up stream for %s: %w", topic, err)
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", fmt.Errorf("%w: no stream holds %s", ErrStreamNotFound, topic)
	default:
		sort.Strings(names)
		return "", fmt.Errorf("%w: streams %s all overlap %s; set SubscriberConfig.Stream", ErrStreamNotFound, strings.Join(names, ", "), topic)
	}
}
