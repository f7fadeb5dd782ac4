package wmjs

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
)

var _ message.Publisher = (*Publisher)(nil)

// Publisher publishes Watermill messages to JetStream: topic = subject. It is
// safe for concurrent use. A stream must hold the subject, or every publish
// fails with "no responders".
type Publisher struct {
	js     jetstream.JetStream
	cfg    PublisherConfig
	logger watermill.LoggerAdapter

	// mu is held for reading by every Publish in progress, so Close waits
	// for them.
	mu     sync.RWMutex
	closed bool
}

// NewPublisher returns a Publisher over js. The caller keeps ownership of
// js's connection.
func NewPublisher(js jetstream.JetStream, cfg PublisherConfig) (*Publisher, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil JetStream", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Publisher{js: js, cfg: cfg, logger: cfg.Logger}, nil
}

// Publish publishes msgs to subject topic, all at once, and blocks until the
// stream has acknowledged every one of them or PublishTimeout passes. It
// returns nil only when all were stored; otherwise the joined errors name the
// UUID of each message that failed. A failed message may still have been
// stored (a lost ack): publishing it again is safe within the stream's
// duplicate window because its Nats-Msg-Id is unchanged.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if len(msgs) == 0 {
		return nil
	}

	deadline := time.Now().Add(p.cfg.PublishTimeout)
	futures := make([]jetstream.PubAckFuture, len(msgs))
	var errs []error
	for i, msg := range msgs {
		nm := toNats(topic, msg, p.cfg.MsgIDMetadataKey)
		// WithStallWait: when the connection's async window is full, wait
		// for room instead of failing after the default 200ms.
		f, err := p.js.PublishMsgAsync(nm, jetstream.WithStallWait(max(time.Until(deadline), time.Millisecond)))
		if err != nil {
			errs = append(errs, fmt.Errorf("publish %s to %s: %w", msg.UUID, topic, err))
			continue
		}
		futures[i] = f
	}

	timer := time.NewTimer(max(time.Until(deadline), 0))
	defer timer.Stop()
	timedOut := false
	for i, f := range futures {
		if f == nil {
			continue
		}
		if timedOut {
			// Once the deadline passed, take only what is already settled.
			select {
			case ack := <-f.Ok():
				p.logDuplicate(topic, msgs[i].UUID, ack)
				continue
			case err := <-f.Err():
				errs = append(errs, fmt.Errorf("publish %s to %s: %w", msgs[i].UUID, topic, err))
				continue
			default:
				errs = append(errs, fmt.Errorf("publish %s to %s: no ack within %s", msgs[i].UUID, topic, p.cfg.PublishTimeout))
				continue
			}
		}
		select {
		case ack := <-f.Ok():
			p.logDuplicate(topic, msgs[i].UUID, ack)
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("publish %s to %s: %w", msgs[i].UUID, topic, err))
		case <-timer.C:
			timedOut = true
			errs = append(errs, fmt.Errorf("publish %s to %s: no ack within %s", msgs[i].UUID, topic, p.cfg.PublishTimeout))
		}
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		p.logger.Error("Publish failed", err, watermill.LogFields{"topic": topic, "failed": len(errs), "messages": len(msgs)})
		return err
	}
	p.logger.Trace("Published", watermill.LogFields{"topic": topic, "messages": len(msgs)})
	return nil
}

// logDuplicate notes a publish the stream dropped as a duplicate: the normal
// outcome of a retry, but also what happens to a message published to two
// subjects of one stream with the same Nats-Msg-Id (for example a Copy, which
// keeps the UUID) within the duplicate window.
func (p *Publisher) logDuplicate(topic, uuid string, ack *jetstream.PubAck) {
	if ack != nil && ack.Duplicate {
		p.logger.Debug("Stream already holds this Nats-Msg-Id; not stored again", watermill.LogFields{
			"topic": topic, "message_uuid": uuid, "stream": ack.Stream, "stream_seq": ack.Sequence,
		})
	}
}

// Close makes later Publish calls fail with ErrClosed after waiting for the
// ones in progress. It does not close the NATS connection.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}
