package assemble

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
)

// ingest consumes the shared ingest consumer until ctx ends: each message is
// judged by the finding stages once, dead-lettered, dropped (acked) or added
// to the new lane of each of its destinations (acked when sealed).
func (w *Worker) ingest(ctx context.Context) error {
	// Bounded in bytes: what is fetched ahead waits in memory.
	it, err := w.topo.Ingest.Messages(jetstream.PullMaxBytes(ingestPrefetchBytes))
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		// Stop fetching; what is already buffered is still returned by
		// Next and given back below.
		it.Drain()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			w.log.Warn("ingest fetch", slog.Any("error", err))
			continue
		}
		if ctx.Err() != nil {
			// Shutting down: give prefetched messages back at once rather
			// than letting them wait out the ack wait.
			_ = msg.Nak()
			continue
		}
		w.handle(ctx, msg)
	}
}

func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	w.stats.Receive()
	md, err := msg.Metadata()
	if err != nil {
		w.log.Warn("ingest message without JetStream metadata", slog.Any("error", err))
		_ = msg.Term()
		return
	}
	e := &pipeline.Envelope{Subject: msg.Subject(), Data: msg.Data(), Seq: md.Sequence.Stream}
	err = w.stages.Process(ctx, e)
	e.Release() // the finding stages are done with decode's parsed form
	if err != nil {
		w.log.Warn("finding stages failed; message will be redelivered", slog.Uint64("seq", e.Seq), slog.Any("error", err))
		_ = msg.NakWithDelay(time.Second)
		return
	}
	switch e.Drop {
	case "":
	case pipeline.DropInvalid:
		w.deadLetter(ctx, msg, e)
		return
	default:
		w.stats.Dropped(e.Drop, 1)
		if e.Drop == pipeline.DropSuppressed {
			w.stats.SuppressedBy(e.DropDetail)
		}
		_ = msg.Ack()
		return
	}
	e.Finding.Seq = e.Seq
	e.Finding.ReceivedAt = md.Timestamp.UnixMilli()
	h := w.holds.Hold(msg, len(e.Destinations), md.NumDelivered > 1)
	for i, d := range e.Destinations {
		msgBytes := 0
		if i == 0 { // the message is held once, whatever its fan-out
			msgBytes = len(e.Data)
		}
		w.newLane.Add(e.Finding, d, h, msgBytes)
	}
}

// deadLetter stores the message with its reason on the dead-letter stream,
// then acks it. When the dead letter cannot be stored the message is
// redelivered instead: nothing accepted is lost.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, e *pipeline.Envelope) {
	dl := &nats.Msg{Subject: natsx.SubjectDeadLetter, Data: e.Data, Header: nats.Header{}}
	dl.Header.Set(natsx.HeaderReason, e.DropDetail)
	dl.Header.Set(natsx.HeaderSubject, e.Subject)
	dl.Header.Set(natsx.HeaderSeq, strconv.FormatUint(e.Seq, 10))
	// Dedupe a redelivered message's dead letter within the duplicate window.
	dl.Header.Set(jetstream.MsgIDHeader, "dl:"+strconv.FormatUint(e.Seq, 10))
	if _, err := w.js.PublishMsg(ctx, dl); err != nil {
		w.log.Warn("dead letter not stored; message will be redelivered", slog.Uint64("seq", e.Seq), slog.Any("error", err))
		_ = msg.NakWithDelay(time.Second)
		return
	}
	w.stats.Dropped(pipeline.DropInvalid, 1)
	w.log.Debug("dead-lettered", slog.Uint64("seq", e.Seq), slog.String("reason", e.DropDetail))
	_ = msg.Ack()
}
