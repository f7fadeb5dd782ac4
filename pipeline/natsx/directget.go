package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredMsg is one message read from a stream with a direct get.
type StoredMsg struct {
	Subject string
	Seq     uint64
	// Time is when the stream stored the message.
	Time   time.Time
	Header nats.Header
	Data   []byte
}

// ErrDirectGet is returned when a direct get answers with an error status.
var ErrDirectGet = errors.New("direct get")

// ErrNoReply is returned when a direct get waited ReplyTimeout for a reply
// and none came: the request or its reply was lost (a partition, a server
// that went away), which NATS never reports otherwise.
var ErrNoReply = errors.New("direct get: no reply")

// ReplyTimeout is how long a direct get waits for its next reply, whatever
// the caller's context allows: a lost reply must not hold a worker (and
// the messages it keeps alive) forever. A variable so tests can shorten it.
var ReplyTimeout = 10 * time.Second

// maxMultiLast is the server's limit of subjects answered by one multi-last
// direct get.
const maxMultiLast = 1024

// getWindow bounds the single-message direct gets in flight at once: enough
// to hide the round trip, few enough that the replies (up to getWindow
// findings) never flood the connection.
const getWindow = 128

type directGetRequest struct {
	Seq       uint64   `json:"seq,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
}

func directSubject(stream string) string { return "$JS.API.DIRECT.GET." + stream }

// parseStored reads a direct-get reply. found is false for a 404 (no such
// message); any other status is an error.
func parseStored(stream string, m *nats.Msg) (sm StoredMsg, found bool, err error) {
	switch status := m.Header.Get("Status"); status {
	case "":
	case "404":
		return sm, false, nil
	default:
		return sm, false, fmt.Errorf("%w on %s: status %s %s", ErrDirectGet, stream, status, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil {
		return sm, false, fmt.Errorf("%w on %s: bad Nats-Sequence %q", ErrDirectGet, stream, m.Header.Get("Nats-Sequence"))
	}
	t, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
	return StoredMsg{Subject: m.Header.Get("Nats-Subject"), Seq: seq, Time: t, Header: m.Header, Data: m.Data}, true, nil
}

// GetSeqs reads the messages with the given sequences from a stream with
// AllowDirect. Requests are pipelined, at most getWindow in flight, and each
// asks for exactly one message, so the replies never exceed what was asked
// for. A sequence is absent from the result only when the stream's leader
// confirms it no longer exists (expired or deleted): a direct get may be
// served by a replica that lags behind, so its "not found" is checked
// against the leader before it is believed. Any other failure is an error
// and nothing is reported missing.
func GetSeqs(ctx context.Context, nc *nats.Conn, stream string, seqs []uint64) (map[uint64]StoredMsg, error) {
	want := slices.Clone(seqs)
	slices.Sort(want)
	want = slices.Compact(want)
	out := make(map[uint64]StoredMsg, len(want))
	if len(want) == 0 {
		return out, nil
	}
	prefix := nc.NewInbox()
	ch := make(chan *nats.Msg, getWindow+1)
	sub, err := nc.ChanSubscribe(prefix+".*", ch)
	if err != nil {
		return nil, fmt.Errorf("direct get on %s: %w", stream, err)
	}
	defer sub.Unsubscribe()

	var notFound []uint64
	sent, inFlight := 0, 0
	idle := time.NewTimer(ReplyTimeout)
	defer idle.Stop()
	for sent < len(want) || inFlight > 0 {
		for inFlight < getWindow && sent < len(want) {
			body := strconv.AppendUint([]byte(`{"seq":`), want[sent], 10)
			body = append(body, '}')
			reply := prefix + "." + strconv.FormatUint(want[sent], 10)
			if err := nc.PublishMsg(&nats.Msg{Subject: directSubject(stream), Reply: reply, Data: body}); err != nil {
				return nil, fmt.Errorf("direct get on %s: %w", stream, err)
			}
			sent++
			inFlight++
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("direct get on %s: %d of %d replies: %w", stream, len(out)+len(notFound), len(want), ctx.Err())
		case <-idle.C:
			return nil, fmt.Errorf("%w on %s within %s: %d of %d replies", ErrNoReply, stream, ReplyTimeout, len(out)+len(notFound), len(want))
		case m := <-ch:
			idle.Reset(ReplyTimeout)
			inFlight--
			sm, found, err := parseStored(stream, m)
			if err != nil {
				return nil, err
			}
			if !found {
				seq, perr := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
				if perr != nil {
					return nil, fmt.Errorf("%w on %s: reply on unexpected subject %s", ErrDirectGet, stream, m.Subject)
				}
				notFound = append(notFound, seq)
				continue
			}
			out[sm.Seq] = sm
		}
	}
	if len(notFound) > 0 {
		if err := confirmMissing(ctx, nc, stream, notFound, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// confirmMissing asks the stream's leader (the non-direct message API) for
// sequences a direct get did not find; those it finds are added to out.
func confirmMissing(ctx context.Context, nc *nats.Conn, stream string, seqs []uint64, out map[uint64]StoredMsg) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	for _, seq := range seqs {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get message %d of %s: %w", seq, stream, err)
		}
		out[seq] = StoredMsg{Subject: raw.Subject, Seq: raw.Sequence, Time: raw.Time, Header: raw.Header, Data: raw.Data}
	}
	return nil
}

// LastForSubjects reads the last message of each subject (for a KV bucket:
// the current value of each key) in batches of the server's limit. Subjects
// without a message are absent from the result. A replica may answer and
// may lag behind its leader; callers that act on the result write with
// compare-and-set against the revisions read, which the leader enforces.
func LastForSubjects(ctx context.Context, nc *nats.Conn, stream string, subjects []string) (map[string]StoredMsg, error) {
	out := make(map[string]StoredMsg, len(subjects))
	for i := 0; i < len(subjects); i += maxMultiLast {
		chunk := subjects[i:min(i+maxMultiLast, len(subjects))]
		if err := multiLast(ctx, nc, stream, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// multiLast sends one multi-last direct get and collects the answers until
// the server's end-of-batch marker (status 204). The channel holds every
// possible reply (one per subject, plus the marker), so none is dropped.
func multiLast(ctx context.Context, nc *nats.Conn, stream string, subjects []string, out map[string]StoredMsg) error {
	body, err := json.Marshal(directGetRequest{MultiLast: subjects, Batch: len(subjects)})
	if err != nil {
		return err
	}
	inbox := nc.NewRespInbox()
	ch := make(chan *nats.Msg, len(subjects)+2)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("direct get on %s: %w", stream, err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishMsg(&nats.Msg{Subject: directSubject(stream), Reply: inbox, Data: body}); err != nil {
		return fmt.Errorf("direct get on %s: %w", stream, err)
	}
	idle := time.NewTimer(ReplyTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("direct get on %s: %w", stream, ctx.Err())
		case <-idle.C:
			return fmt.Errorf("%w on %s within %s: %d of %d subjects answered", ErrNoReply, stream, ReplyTimeout, len(out), len(subjects))
		case m := <-ch:
			idle.Reset(ReplyTimeout)
			switch m.Header.Get("Status") {
			case "204", "404": // end of batch; nothing (more) found
				return nil
			}
			sm, _, err := parseStored(stream, m)
			if err != nil {
				return err
			}
			out[sm.Subject] = sm
		}
	}
}
