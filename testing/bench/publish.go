package bench

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/testing/generator"
)

// Source emits findings one by one to emit, and stops at emit's first
// error.
type Source func(emit func(raw []byte) error) error

// Generated is a Source of n realistic finding versions (one per id, none
// archived) from seed; with shift > 0 every updatedAt is moved that far
// later, making the same ids' next versions.
func Generated(seed int64, n int, shift time.Duration) Source {
	return func(emit func([]byte) error) error {
		return generator.Generate(generator.Config{Seed: seed, Versions: n, MaxVersionsPerID: 1, ArchivedShare: -1}, func(raw []byte) error {
			if shift > 0 {
				var err error
				if raw, err = shiftUpdatedAt(raw, shift); err != nil {
					return err
				}
			}
			return emit(raw)
		})
	}
}

// Slice is a Source of findings held in memory.
func Slice(findings [][]byte) Source {
	return func(emit func([]byte) error) error {
		for _, f := range findings {
			if err := emit(f); err != nil {
				return err
			}
		}
		return nil
	}
}

func shiftUpdatedAt(raw []byte, d time.Duration) ([]byte, error) {
	key := []byte(`"updatedAt":"`)
	i := bytes.Index(raw, key)
	if i < 0 {
		return nil, fmt.Errorf("generated finding without updatedAt")
	}
	start := i + len(key)
	end := start + bytes.IndexByte(raw[start:], '"')
	t, err := time.Parse(time.RFC3339Nano, string(raw[start:end]))
	if err != nil {
		return nil, err
	}
	nt := t.Add(d).UTC().Format(pipeline.TimeLayout)
	out := make([]byte, 0, len(raw)+8)
	out = append(out, raw[:start]...)
	out = append(out, nt...)
	return append(out, raw[end:]...), nil
}

// Publisher publishes findings to their ingest subjects as `gdexport
// publish` does (Nats-Msg-Id <id>:<updatedAt>), asynchronously.
type Publisher struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// NewPublisher connects to url.
func NewPublisher(url string) (*Publisher, error) {
	nc, err := nats.Connect(url, nats.Name("gdexport-bench"))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Publisher{nc: nc, js: js}, nil
}

// Close closes the connection.
func (p *Publisher) Close() { p.nc.Close() }

// JS is the publisher's JetStream context.
func (p *Publisher) JS() jetstream.JetStream { return p.js }

// Conn is the publisher's connection.
func (p *Publisher) Conn() *nats.Conn { return p.nc }

// Publish sends every finding of src and waits for the acks; rate, when
// positive, paces the sends to that many per second. It returns how many it
// sent and the time spent.
func (p *Publisher) Publish(ctx context.Context, src Source, rate int) (int, time.Duration, error) {
	start := time.Now()
	i := 0
	err := src(func(raw []byte) error {
		f, err := decode.Decode(raw)
		if err != nil {
			return err
		}
		m := &nats.Msg{Subject: pipeline.IngestSubject(f.Region, f.AccountID), Data: raw, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, f.VersionKey())
		if _, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			return err
		}
		i++
		if rate > 0 {
			if due := start.Add(time.Duration(i) * time.Second / time.Duration(rate)); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return i, 0, err
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return i, 0, ctx.Err()
	}
	return i, time.Since(start), nil
}
