package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
)

// StoredMsg is one message read from a stream with a direct get.
type StoredMsg struct {
	Subject string
	Seq     uint64
	Header  nats.Header
	Data    []byte
}

// ErrDirectGet is returned when a direct get answers with an error status.
var ErrDirectGet = errors.New("direct get")

// maxMultiLast is the server's limit of subjects answered by one multi-last
// direct get.
const maxMultiLast = 1024

type directGetRequest struct {
	Seq       uint64   `json:"seq,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
}

// directBatch sends one batched direct get and collects the answers until the
// server's end-of-batch marker. A "no results" answer is an empty result.
func directBatch(ctx context.Context, nc *nats.Conn, stream string, req directGetRequest, fn func(StoredMsg)) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	inbox := nc.NewRespInbox()
	ch := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return fmt.Errorf("direct get on %s: %w", stream, err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishMsg(&nats.Msg{Subject: "$JS.API.DIRECT.GET." + stream, Reply: inbox, Data: body}); err != nil {
		return fmt.Errorf("direct get on %s: %w", stream, err)
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("direct get on %s: %w", stream, ctx.Err())
		case m := <-ch:
			status := m.Header.Get("Status")
			switch status {
			case "":
			case "204":
				return nil
			case "404":
				return nil
			default:
				return fmt.Errorf("%w on %s: status %s %s", ErrDirectGet, stream, status, m.Header.Get("Description"))
			}
			seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil {
				return fmt.Errorf("%w on %s: bad Nats-Sequence %q", ErrDirectGet, stream, m.Header.Get("Nats-Sequence"))
			}
			fn(StoredMsg{Subject: m.Header.Get("Nats-Subject"), Seq: seq, Header: m.Header, Data: m.Data})
		}
	}
}

// GetSeqs reads the messages with the given sequences from a stream with
// AllowDirect, in as few requests as the sequences' spread allows. Sequences
// that no longer exist (expired, deleted) are absent from the result.
func GetSeqs(ctx context.Context, nc *nats.Conn, stream string, seqs []uint64) (map[uint64]StoredMsg, error) {
	want := slices.Clone(seqs)
	slices.Sort(want)
	want = slices.Compact(want)
	out := make(map[uint64]StoredMsg, len(want))
	const maxSpan = 4096 // read at most this many sequences past a wanted one
	for i := 0; i < len(want); {
		start := want[i]
		j := i
		for j+1 < len(want) && want[j+1]-start < maxSpan {
			j++
		}
		needed := make(map[uint64]struct{}, j-i+1)
		for _, s := range want[i : j+1] {
			needed[s] = struct{}{}
		}
		// The server ends a batch early past its byte limit; ask again from
		// where it stopped until the span is covered.
		for from := start; from <= want[j]; {
			last := uint64(0)
			err := directBatch(ctx, nc, stream, directGetRequest{Seq: from, Batch: int(want[j]-from) + 1}, func(m StoredMsg) {
				last = m.Seq
				if _, ok := needed[m.Seq]; ok {
					out[m.Seq] = m
				}
			})
			if err != nil {
				return nil, err
			}
			if last == 0 {
				break // nothing at or after from
			}
			from = last + 1
		}
		i = j + 1
	}
	return out, nil
}

// LastForSubjects reads the last message of each subject (for a KV bucket:
// the current value of each key) in batches of the server's limit. Subjects
// without a message are absent from the result.
func LastForSubjects(ctx context.Context, nc *nats.Conn, stream string, subjects []string) (map[string]StoredMsg, error) {
	out := make(map[string]StoredMsg, len(subjects))
	for i := 0; i < len(subjects); i += maxMultiLast {
		chunk := subjects[i:min(i+maxMultiLast, len(subjects))]
		err := directBatch(ctx, nc, stream, directGetRequest{MultiLast: chunk, Batch: len(chunk)}, func(m StoredMsg) {
			out[m.Subject] = m
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
