package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxAtomicBatch is the most messages nats-server accepts in one atomic
// batch (its default limit).
const MaxAtomicBatch = 1000

// Atomic batch outcomes that callers act on.
var (
	// ErrBatchConflict means a message's expected last sequence (per
	// subject or for the stream) did not hold: nothing of the batch was
	// stored.
	ErrBatchConflict = errors.New("atomic batch: expected last sequence did not hold")
	// ErrBatchDuplicate means a message's Nats-Msg-Id was stored before,
	// within the duplicate window: nothing of the batch was stored.
	ErrBatchDuplicate = errors.New("atomic batch: a message id was stored before")
)

// PublishAtomic stores msgs, all on subjects of one stream that allows
// atomic publishing, as one atomic batch: all of them or none. With
// nats-server's sync_interval always the batch costs one disk sync instead
// of one per message, which is what makes strict durability affordable.
// len(msgs) must not exceed MaxAtomicBatch. Each message must be on its own
// subject when it carries an expected last subject sequence.
func PublishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) > MaxAtomicBatch {
		return fmt.Errorf("atomic batch of %d messages: at most %d", len(msgs), MaxAtomicBatch)
	}
	id := nats.NewInbox()[len(nats.InboxPrefix):] // unique, subject-safe
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return fmt.Errorf("atomic batch to %s: %w", m.Subject, err)
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set("Nats-Batch-Commit", "1")
	rctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	resp, err := nc.RequestMsgWithContext(rctx, last)
	if err != nil {
		return fmt.Errorf("atomic batch commit on %s: %w", last.Subject, err)
	}
	var ack struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Count int `json:"count"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("atomic batch commit on %s: unreadable answer %q", last.Subject, resp.Data)
	}
	if ack.Error != nil {
		switch jetstream.ErrorCode(ack.Error.ErrCode) {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %s", ErrBatchConflict, ack.Error.Description)
		case 10201: // JSAtomicPublishContainsDuplicateMessageErr
			return fmt.Errorf("%w: %s", ErrBatchDuplicate, ack.Error.Description)
		}
		return fmt.Errorf("atomic batch commit on %s: %s (error %d)", last.Subject, ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.Count != len(msgs) {
		return fmt.Errorf("atomic batch commit on %s: stored %d of %d", last.Subject, ack.Count, len(msgs))
	}
	return nil
}

// Writer stores messages on a stream either one by one, all in flight at
// once (fast durability: nats-server syncs to disk on its own schedule), or
// in atomic batches of up to MaxAtomicBatch (strict durability: one disk
// sync per batch). The zero Atomic is the one-by-one way. Safe for
// concurrent use.
type Writer struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Atomic bool
}

// isConflict reports a wrong expected last sequence.
func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// WriteCAS stores msgs, each only if its subject's last sequence is revs[i]
// (0: the subject has no message). stored[i] is false where that did not
// hold; any other failure is an error, after which some messages may have
// been stored and others not (the caller retries).
func (w Writer) WriteCAS(ctx context.Context, msgs []*nats.Msg, revs []uint64) (stored []bool, err error) {
	stored = make([]bool, len(msgs))
	for start := 0; start < len(msgs); start += MaxAtomicBatch {
		end := min(start+MaxAtomicBatch, len(msgs))
		if w.Atomic {
			chunk := msgs[start:end]
			for i, m := range chunk {
				if m.Header == nil {
					m.Header = nats.Header{}
				}
				m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(revs[start+i], 10))
			}
			err := PublishAtomic(ctx, w.NC, chunk)
			if err == nil {
				for i := start; i < end; i++ {
					stored[i] = true
				}
				continue
			}
			if !errors.Is(err, ErrBatchConflict) {
				return stored, err
			}
			// Someone else wrote one of these subjects: find out which, one
			// by one (the batch headers must go first).
			for _, m := range chunk {
				for _, h := range []string{"Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"} {
					m.Header.Del(h)
				}
			}
		}
		if err := w.casOneByOne(ctx, msgs[start:end], revs[start:end], stored[start:end]); err != nil {
			return stored, err
		}
	}
	return stored, nil
}

func (w Writer) casOneByOne(ctx context.Context, msgs []*nats.Msg, revs []uint64, stored []bool) error {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		if m.Header != nil {
			m.Header.Del(jetstream.ExpectedLastSubjSeqHeader)
		}
		f, err := w.JS.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(revs[i]), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return fmt.Errorf("publish to %s: %w", m.Subject, err)
		}
		futures[i] = f
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
			stored[i] = true
		case err := <-f.Err():
			if !isConflict(err) {
				return fmt.Errorf("publish to %s: %w", msgs[i].Subject, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Write stores msgs; a message whose Nats-Msg-Id was stored before counts
// as stored. An error means some may not have been stored (the caller
// retries: with message ids, a retry stores nothing twice).
func (w Writer) Write(ctx context.Context, msgs []*nats.Msg) error {
	for start := 0; start < len(msgs); start += MaxAtomicBatch {
		chunk := msgs[start:min(start+MaxAtomicBatch, len(msgs))]
		if w.Atomic {
			err := PublishAtomic(ctx, w.NC, chunk)
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrBatchDuplicate) {
				return err
			}
			for _, m := range chunk { // a retry: store what is missing, one by one
				for _, h := range []string{"Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"} {
					m.Header.Del(h)
				}
			}
		}
		futures := make([]jetstream.PubAckFuture, len(chunk))
		for i, m := range chunk {
			f, err := w.JS.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))
			if err != nil {
				return fmt.Errorf("publish to %s: %w", m.Subject, err)
			}
			futures[i] = f
		}
		var errs []error
		for i, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				errs = append(errs, fmt.Errorf("publish to %s: %w", chunk[i].Subject, err))
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%d of %d messages not stored: %w", len(errs), len(chunk), errs[0])
		}
	}
	return nil
}
