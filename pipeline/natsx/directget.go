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

// msgGetResponse is the answer of the stream message API
// ($JS.API.STREAM.MSG.GET.<stream>), which only the stream's leader gives.
type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrorCode   int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// confirmMissing asks the stream's leader, through the stream message API,
// for sequences a direct get did not find; those it finds are added to
// out. Not through nats.go's Stream.GetMsg: on a stream with AllowDirect
// that is a direct get too, which the same lagging replica may answer.
func confirmMissing(ctx context.Context, nc *nats.Conn, stream string, seqs []uint64, out map[uint64]StoredMsg) error {
	for _, seq := range seqs {
		rctx, cancel := context.WithTimeout(ctx, ReplyTimeout)
		body := append(strconv.AppendUint([]byte(`{"seq":`), seq, 10), '}')
		reply, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.MSG.GET."+stream, body)
		cancel()
		if err != nil {
			return fmt.Errorf("get message %d of %s from its leader: %w", seq, stream, err)
		}
		var resp msgGetResponse
		if err := json.Unmarshal(reply.Data, &resp); err != nil {
			return fmt.Errorf("get message %d of %s from its leader: %w", seq, stream, err)
		}
		if resp.Error != nil {
			if resp.Error.ErrorCode == int(jetstream.JSErrCodeMessageNotFound) {
				continue
			}
			return fmt.Errorf("%w on %s: message %d: %s (%d)", ErrDirectGet, stream, seq, resp.Error.Description, resp.Error.ErrorCode)
		}
		if resp.Message == nil {
			return fmt.Errorf("get message %d of %s from its leader: empty answer", seq, stream)
		}
		var hdr nats.Header
		if len(resp.Message.Header) > 0 {
			if hdr, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
				return fmt.Errorf("get message %d of %s from its leader: headers: %w", seq, stream, err)
			}
		}
		out[seq] = StoredMsg{Subject: resp.Message.Subject, Seq: resp.Message.Sequence, Time: resp.Message.Time, Header: hdr, Data: resp.Message.Data}
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
