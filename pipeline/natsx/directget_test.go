package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

func setup(t *testing.T) (*nats.Conn, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc := natstest.Connect(t)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, s
}

// GetSeqs returns exactly the asked-for messages, across more requests than
// fit in one window, and leaves out only what the stream no longer holds.
func TestGetSeqs(t *testing.T) {
	nc, js, s := setup(t)
	ctx := context.Background()
	payload := make([]byte, 8<<10) // 8 KB: 1,000 of them would flood a naive reader
	for i := 1; i <= 1000; i++ {
		copy(payload, strconv.Itoa(i))
		if _, err := js.PublishAsync(fmt.Sprintf("t.%d", i%7), payload); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	if err := s.DeleteMsg(ctx, 500); err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for seq := uint64(1); seq <= 1000; seq += 2 { // every odd sequence: 500 of them, 499 present
		want = append(want, seq)
	}
	want = append(want, 3, 3, 500, 5000) // a duplicate, a deleted one, one never written
	got, err := natsx.GetSeqs(ctx, nc, "T", want)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 500 {
		t.Errorf("got %d messages, want 500 (odd sequences 1..999)", len(got))
	}
	for seq, m := range got {
		if seq%2 != 1 || m.Seq != seq || m.Subject != fmt.Sprintf("t.%d", seq%7) || len(m.Data) != len(payload) {
			t.Errorf("seq %d: got seq %d subject %s len %d", seq, m.Seq, m.Subject, len(m.Data))
		}
		if prefix := strconv.FormatUint(seq, 10); string(m.Data[:len(prefix)]) != prefix {
			t.Errorf("seq %d holds the payload of another message", seq)
		}
	}
	for _, absent := range []uint64{500, 5000} {
		if _, ok := got[absent]; ok {
			t.Errorf("seq %d reported present", absent)
		}
	}
}

// A cancelled read is an error, never a partial result that would read as
// missing findings.
func TestGetSeqsCancelled(t *testing.T) {
	nc, js, _ := setup(t)
	if _, err := js.Publish(context.Background(), "t.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := natsx.GetSeqs(ctx, nc, "T", []uint64{1}); err == nil {
		t.Fatalf("cancelled read returned %d messages and no error", len(got))
	}
}

// LastForSubjects answers more subjects than the server's multi-last limit.
func TestLastForSubjects(t *testing.T) {
	nc, js, _ := setup(t)
	ctx := context.Background()
	var subjects []string
	for i := 0; i < 2500; i++ {
		subj := fmt.Sprintf("t.k%d", i)
		subjects = append(subjects, subj)
		if i%5 == 0 {
			continue // never written
		}
		for v := 0; v < 2; v++ {
			if _, err := js.PublishAsync(subj, []byte(fmt.Sprintf("%d-%d", i, v))); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-js.PublishAsyncComplete()
	got, err := natsx.LastForSubjects(ctx, nc, "T", subjects)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2000 {
		t.Errorf("got %d subjects, want 2000", len(got))
	}
	for i, subj := range subjects {
		m, ok := got[subj]
		if i%5 == 0 {
			if ok {
				t.Errorf("%s was never written but is reported", subj)
			}
			continue
		}
		if !ok || string(m.Data) != fmt.Sprintf("%d-1", i) {
			t.Errorf("%s: got %q, want the last value %d-1", subj, m.Data, i)
		}
	}
}

// A direct get whose request or reply is lost (a partition) fails after
// ReplyTimeout even when the caller's context has no deadline: a sealer
// waiting for it would otherwise hold its messages forever.
func TestDirectGetLostReply(t *testing.T) {
	nc := natstest.Connect(t)
	// A responder that swallows every request, as a partition would.
	sub, err := nc.Subscribe("$JS.API.DIRECT.GET.LOST", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	defer func(d time.Duration) { natsx.ReplyTimeout = d }(natsx.ReplyTimeout)
	natsx.ReplyTimeout = 200 * time.Millisecond
	cases := []struct {
		name string
		get  func() error
	}{
		{"multi-last", func() error {
			_, err := natsx.LastForSubjects(context.Background(), nc, "LOST", []string{"a", "b"})
			return err
		}},
		{"by sequence", func() error {
			_, err := natsx.GetSeqs(context.Background(), nc, "LOST", []uint64{1, 2, 3})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := c.get()
			if !errors.Is(err, natsx.ErrNoReply) {
				t.Fatalf("err = %v, want ErrNoReply", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("gave up after %s, want about %s", d, natsx.ReplyTimeout)
			}
		})
	}
}

// A direct get answered "not found" by a replica that lags behind is
// checked with the stream's leader through the stream message API, never
// by another direct get that the same replica could answer: a sealed
// finding is never taken for expired.
func TestGetSeqsLaggingReplica(t *testing.T) {
	// A server without JetStream, so that only the fakes below answer the
	// JetStream API subjects.
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// LAG stands for a stream whose direct gets a lagging replica answers
	// (not found) while its leader holds message 7.
	direct, err := nc.Subscribe("$JS.API.DIRECT.GET.LAG", func(m *nats.Msg) {
		_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"Status": {"404"}, "Description": {"Message Not Found"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Unsubscribe()
	leader, err := nc.Subscribe("$JS.API.STREAM.MSG.GET.LAG", func(m *nats.Msg) {
		switch string(m.Data) {
		case `{"seq":7}`:
			_ = m.Respond([]byte(`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"t.7","seq":7,"data":"c2VhbGVk","time":"2026-03-14T12:00:00Z"}}`))
		default:
			_ = m.Respond([]byte(`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":404,"err_code":10037,"description":"no message found"}}`))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Unsubscribe()
	got, err := natsx.GetSeqs(context.Background(), nc, "LAG", []uint64{7, 8})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := got[7]; !ok || string(m.Data) != "sealed" || m.Subject != "t.7" {
		t.Fatalf("message 7: %+v, %v; want the leader's copy", m, ok)
	}
	if _, ok := got[8]; ok || len(got) != 1 {
		t.Fatalf("got %d messages; want only 7 (8 is gone on the leader too)", len(got))
	}
}
