package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/testing/generator"
)

const defaultNATSURL = "nats://127.0.0.1:4222"

func (g *globals) clientURL() string {
	if g.natsURL != "" {
		return g.natsURL
	}
	return defaultNATSURL
}

// connectJetStream connects a client, waiting up to wait for the server and
// its FINDINGS stream to exist (so a script can publish right after starting
// a worker).
func connectJetStream(ctx context.Context, url string, wait time.Duration) (*nats.Conn, jetstream.JetStream, error) {
	deadline := time.Now().Add(wait)
	for {
		nc, err := nats.Connect(url, nats.Name("gdexport-cli"))
		if err == nil {
			js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
			if err != nil {
				nc.Close()
				return nil, nil, err
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = js.Stream(sctx, natsx.StreamFindings)
			cancel()
			if err == nil {
				return nc, js, nil
			}
			nc.Close()
			if !errors.Is(err, jetstream.ErrStreamNotFound) && time.Now().After(deadline) {
				return nil, nil, fmt.Errorf("stream %s at %s: %w", natsx.StreamFindings, url, err)
			}
			if time.Now().After(deadline) {
				return nil, nil, fmt.Errorf("stream %s does not exist at %s: start `gdexport run` first (or pass --wait)", natsx.StreamFindings, url)
			}
		} else if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("connect to NATS at %s: %w (is `gdexport run` running? --nats-url or NATS_URL select another server)", url, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// publishWindow is how many findings may await the server's ack at once:
// beyond it publish waits, so a large input never stalls the client.
const publishWindow = 1024

// publisher publishes findings asynchronously, at most publishWindow
// awaiting their acks, and counts what the server stored.
type publisher struct {
	js         jetstream.JetStream
	maxPayload int64
	futures    chan jetstream.PubAckFuture
	done       chan struct{}

	published, duplicates, failed atomic.Int64
	firstErr                      atomic.Value
}

func newPublisher(nc *nats.Conn, js jetstream.JetStream) *publisher {
	p := &publisher{js: js, maxPayload: nc.MaxPayload(), futures: make(chan jetstream.PubAckFuture, publishWindow), done: make(chan struct{})}
	go p.collect()
	return p
}

// collect resolves the acks in publish order.
func (p *publisher) collect() {
	defer close(p.done)
	for fut := range p.futures {
		select {
		case ack := <-fut.Ok():
			if ack.Duplicate {
				p.duplicates.Add(1)
			} else {
				p.published.Add(1)
			}
		case err := <-fut.Err():
			p.failed.Add(1)
			p.firstErr.CompareAndSwap(nil, err)
		}
	}
}

// errTooLarge refuses a finding larger than the server accepts.
var errTooLarge = errors.New("too large")

// publish sends one finding; it blocks while publishWindow findings await
// their acks. A finding larger than the server's max_payload is refused
// with errTooLarge (nothing is sent).
func (p *publisher) publish(ctx context.Context, subject, msgID string, data []byte) error {
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if size := int64(len(data) + len(subject) + len(msgID) + 64); size > p.maxPayload {
		return fmt.Errorf("%w: %d bytes, more than the server's max_payload of %d bytes", errTooLarge, len(data), p.maxPayload)
	}
	fut, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))
	if err != nil {
		return fmt.Errorf("publish to %s: %w", subject, err)
	}
	select {
	case p.futures <- fut:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits until every published finding is acked (or refused).
func (p *publisher) wait(ctx context.Context) error {
	close(p.futures)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func publishCmd(g *globals) *cobra.Command {
	var (
		generate int
		seed     int64
		wait     time.Duration
	)
	c := &cobra.Command{
		Use:   "publish [FILE|-]...",
		Short: "Publish findings from files or stdin ('-'), or generated ones, to findings.<region>.<accountId>",
		Long: `Publish GuardDuty findings to findings.<region>.<accountId> with Nats-Msg-Id <id>:<updatedAt>.

Accepted forms: a finding, a JSON array, JSON Lines, aws guardduty get-findings output
({"Findings":[…]} PascalCase or {"findings":[…]} camelCase), EventBridge events.
Refused (reported with file, position and reason; exit status 1): what cannot be routed —
not JSON, no accountId or region, a filter document, an event of another detail-type.
The pipeline judges everything else and dead-letters what it cannot export.

--generate N publishes N realistic generated finding versions instead (--seed S).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if generate == 0 && len(args) == 0 {
				return &exitError{code: 2, err: errors.New("nothing to publish: give FILE arguments, '-' for stdin, or --generate N")}
			}
			if generate < 0 {
				return &exitError{code: 2, err: fmt.Errorf("--generate %d: expected a positive number of findings", generate)}
			}
			ctx := cmd.Context()
			nc, js, err := connectJetStream(ctx, g.clientURL(), wait)
			if err != nil {
				return err
			}
			defer nc.Close()
			p := newPublisher(nc, js)
			prog := newProgress(g.stderr, func() int64 { return p.published.Load() + p.duplicates.Load() + p.failed.Load() })
			stopTicks := make(chan struct{})
			ticksDone := make(chan struct{})
			go func() {
				defer close(ticksDone)
				t := time.NewTicker(100 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stopTicks:
						return
					case <-t.C:
						prog.tick()
					}
				}
			}()
			defer func() {
				close(stopTicks)
				<-ticksDone
			}()
			var refused int64
			refuse := func(where string, err error) {
				refused++
				fmt.Fprintf(g.stderr, "%s: refused: %v\n", where, err)
			}
			if generate > 0 {
				var made atomic.Int64
				prog.input("generated", func() float64 { return float64(made.Load()) / float64(generate) })
				err := generator.Generate(generator.Config{Seed: seed, Versions: generate}, func(raw []byte) error {
					f, err := decode.Decode(raw)
					if err != nil {
						return fmt.Errorf("generator made an invalid finding: %w", err)
					}
					made.Add(1)
					return p.publish(ctx, pipeline.IngestSubject(f.Region, f.AccountID), f.VersionKey(), f.Raw)
				})
				if err != nil {
					return err
				}
			}
			for _, name := range args {
				var r io.Reader
				label := name
				if name == "-" {
					r, label = g.stdin, "stdin"
				} else {
					fh, err := os.Open(name)
					if err != nil {
						refuse(name, err)
						continue
					}
					if fi, err := fh.Stat(); err == nil && fi.IsDir() {
						fh.Close()
						refuse(name, errors.New("is a directory, not a file of findings"))
						continue
					}
					defer fh.Close()
					r = fh
				}
				var read atomic.Int64
				size := int64(-1)
				if f, ok := r.(*os.File); ok {
					if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
						size = fi.Size()
					}
				}
				prog.input(label, func() float64 {
					if size <= 0 {
						return -1
					}
					return min(1, float64(read.Load())/float64(size))
				})
				err := decode.Split(r, func(it decode.Item) error {
					read.Store(it.Offset)
					if it.Err != nil {
						refuse(label+": "+it.Pos, it.Err)
						return nil
					}
					msgID := ""
					if it.ID != "" && it.UpdatedAt != "" {
						msgID = it.ID + ":" + it.UpdatedAt
					}
					err := p.publish(ctx, pipeline.IngestSubject(it.Region, it.AccountID), msgID, it.Raw)
					if errors.Is(err, errTooLarge) {
						refuse(label+": "+it.Pos, err)
						return nil
					}
					return err
				})
				if err != nil {
					if ctx.Err() != nil {
						return err
					}
					// An unreadable input stops that input, not the others.
					refuse(label, err)
				}
			}
			if err := p.wait(ctx); err != nil {
				return err
			}
			prog.finish()
			fmt.Fprintf(g.stdout, "published %d findings to %s", p.published.Load(), g.clientURL())
			if n := p.duplicates.Load(); n > 0 {
				fmt.Fprintf(g.stdout, "; %d were already stored (same Nats-Msg-Id within the duplicate window)", n)
			}
			if refused > 0 {
				fmt.Fprintf(g.stdout, "; refused %d inputs", refused)
			}
			fmt.Fprintln(g.stdout)
			if n := p.failed.Load(); n > 0 {
				return &exitError{code: 1, err: fmt.Errorf("the server refused %d findings: %v", n, p.firstErr.Load())}
			}
			if refused > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d inputs refused (listed above); the rest were published", refused)}
			}
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&generate, "generate", 0, "publish N generated realistic findings")
	f.Int64Var(&seed, "seed", 1, "seed of --generate (the same seed makes the same findings)")
	f.DurationVar(&wait, "wait", 0, "wait up to this long for the server and its FINDINGS stream")
	return c
}
