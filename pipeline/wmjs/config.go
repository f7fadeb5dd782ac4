package wmjs

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrInvalidConfig is returned by the constructors (and Validate) when a
// PublisherConfig or SubscriberConfig holds a value that cannot work.
var ErrInvalidConfig = errors.New("wmjs: invalid config")

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("wmjs: closed")

// ErrStreamNotFound is returned by Subscribe when no stream, or more than one,
// holds the topic's subjects and SubscriberConfig.Stream is not set.
var ErrStreamNotFound = errors.New("wmjs: no single stream for topic")

// Defaults applied to zero-valued config fields.
const (
	DefaultMsgIDMetadataKey = jetstream.MsgIDHeader // "Nats-Msg-Id"
	DefaultPublishTimeout   = 30 * time.Second
	DefaultAckWait          = 30 * time.Second
	DefaultFetchBatch       = 100
	DefaultConcurrency      = 1
	DefaultCloseTimeout     = 20 * time.Second
	DefaultNackDelayInitial = time.Second
	DefaultNackDelayMax     = time.Minute
)

// PublisherConfig configures a Publisher. The zero value is usable.
type PublisherConfig struct {
	// MsgIDMetadataKey names the metadata whose value becomes the
	// Nats-Msg-Id header (JetStream's dedupe key, effective within the
	// stream's duplicate window). Messages without it use their UUID.
	// Default "Nats-Msg-Id".
	MsgIDMetadataKey string

	// PublishTimeout bounds how long Publish waits for the acks of one call
	// (and for room in the async publish window). Default 30s.
	PublishTimeout time.Duration

	// Logger receives Trace (per message) and Error logs. Default: none.
	Logger watermill.LoggerAdapter
}

func (c *PublisherConfig) setDefaults() {
	if c.MsgIDMetadataKey == "" {
		c.MsgIDMetadataKey = DefaultMsgIDMetadataKey
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports the first unusable value, wrapping ErrInvalidConfig.
// Zero values are valid: they mean the default.
func (c PublisherConfig) Validate() error {
	if c.PublishTimeout < 0 {
		return fmt.Errorf("%w: PublishTimeout %s is negative", ErrInvalidConfig, c.PublishTimeout)
	}
	return nil
}

// SubscriberConfig configures a Subscriber. Durable is required; every other
// zero value means the default written on the field.
type SubscriberConfig struct {
	// Durable names the durable consumer for a topic. Every Subscriber, in
	// any process, that resolves a topic to the same name shares one
	// consumer and splits its messages. Required: there is no ephemeral
	// mode. Names may not contain '.', '*', '>' or whitespace; see
	// GroupDurable for a safe builder.
	Durable func(topic string) string

	// Stream names the stream holding the topic's subjects. Default: ask
	// the server for the one stream whose subjects overlap the topic
	// (stream names cannot contain '.', so they are never the topic).
	Stream func(topic string) string

	// AckWait is the consumer's ack wait. Default 30s.
	AckWait time.Duration

	// MaxAckPending bounds unacknowledged messages across all subscribers
	// of the consumer. Default 0: the server's default (1000).
	MaxAckPending int

	// MaxDeliver bounds deliveries per message. Default -1 (unlimited): no
	// finding is ever discarded by MaxDeliver; poison messages are the
	// handler's business (Watermill's poison queue middleware).
	MaxDeliver int

	// NackDelay gives the redelivery delay after a Nack, by the number of
	// deliveries so far (1 on the first). Default
	// BackoffNackDelay(1s, 1m). A zero delay naks for immediate redelivery.
	NackDelay func(attempt uint64) time.Duration

	// FetchBatch is the most messages fetched per pull request and held in
	// the local buffer. Default 100.
	FetchBatch int

	// Concurrency is how many messages may be in Watermill (delivered, not
	// yet acked or nacked) at once. Default 1, which keeps stream order
	// unless a message is nacked.
	Concurrency int

	// InProgressEvery is the period at which every message held (buffered
	// or in a handler) is sent InProgress, resetting its AckWait. Default
	// AckWait/3; negative disables it (AckWait then abandons slow work).
	InProgressEvery time.Duration

	// AckSync makes Ack wait for the server's confirmation (DoubleAck).
	// Default false: the ack is published and the next message proceeds.
	AckSync bool

	// CloseTimeout is how long Close (or a cancelled Subscribe context)
	// waits for messages already in Watermill to be acked or nacked before
	// it naks them and cancels their contexts. Default 20s.
	CloseTimeout time.Duration

	// ConfigureConsumer, when set, may adjust the consumer configuration
	// (replicas, deliver policy, metadata…) before it is created or
	// updated. Durable, FilterSubject and AckPolicy are enforced after it.
	ConfigureConsumer func(topic string, cfg *jetstream.ConsumerConfig)

	// Logger receives Trace (per message), Debug and Error logs. Default:
	// none.
	Logger watermill.LoggerAdapter
}

func (c *SubscriberConfig) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = -1
	}
	if c.NackDelay == nil {
		c.NackDelay = BackoffNackDelay(DefaultNackDelayInitial, DefaultNackDelayMax)
	}
	if c.FetchBatch == 0 {
		c.FetchBatch = DefaultFetchBatch
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.InProgressEvery == 0 {
		c.InProgressEvery = c.AckWait / 3
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports the first unusable value, wrapping ErrInvalidConfig.
// Zero values are valid (they mean the default) except Durable.
func (c SubscriberConfig) Validate() error {
	switch {
	case c.Durable == nil:
		return fmt.Errorf("%w: Durable is required (durable, shared consumers only)", ErrInvalidConfig)
	case c.AckWait < 0:
		return fmt.Errorf("%w: AckWait %s is negative", ErrInvalidConfig, c.AckWait)
	case c.MaxAckPending < -1:
		return fmt.Errorf("%w: MaxAckPending %d is below -1", ErrInvalidConfig, c.MaxAckPending)
	case c.MaxDeliver < -1:
		return fmt.Errorf("%w: MaxDeliver %d is below -1", ErrInvalidConfig, c.MaxDeliver)
	case c.FetchBatch < 0:
		return fmt.Errorf("%w: FetchBatch %d is negative", ErrInvalidConfig, c.FetchBatch)
	case c.Concurrency < 0:
		return fmt.Errorf("%w: Concurrency %d is negative", ErrInvalidConfig, c.Concurrency)
	case c.CloseTimeout < 0:
		return fmt.Errorf("%w: CloseTimeout %s is negative", ErrInvalidConfig, c.CloseTimeout)
	}
	ackWait := c.AckWait
	if ackWait == 0 {
		ackWait = DefaultAckWait
	}
	if c.InProgressEvery > 0 && c.InProgressEvery >= ackWait {
		return fmt.Errorf("%w: InProgressEvery %s must be shorter than AckWait %s", ErrInvalidConfig, c.InProgressEvery, ackWait)
	}
	return nil
}

// BackoffNackDelay returns a NackDelay that doubles from initial on the first
// delivery up to max.
func BackoffNackDelay(initial, max time.Duration) func(attempt uint64) time.Duration {
	return func(attempt uint64) time.Duration {
		if initial <= 0 {
			return 0
		}
		d := initial
		for i := uint64(1); i < attempt && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}

// GroupDurable returns a Durable resolver naming the consumer of a topic
// "<group>_<topic>" with the characters consumer names forbid ('.', '*',
// '>', whitespace, path separators) replaced by '_': so
// GroupDurable("export")("gdexport.batches.>") is "export_gdexport_batches__".
// One group is one set of subscribers sharing work; two groups each receive
// every message.
func GroupDurable(group string) func(topic string) string {
	return func(topic string) string {
		return ConsumerName(group + "_" + topic)
	}
}

// ConsumerName replaces the characters a JetStream consumer name may not hold
// with '_'.
func ConsumerName(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', '/', '\\', ' ', '\t', '\n', '\r':
			return '_'
		}
		return r
	}, s)
}
