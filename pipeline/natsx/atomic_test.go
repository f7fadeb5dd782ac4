package natsx_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

func atomicStream(t *testing.T) (*nats.Conn, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc := natstest.Connect(t)
	js, _ := jetstream.New(nc)
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "A", Subjects: []string{"a.>"}, AllowAtomicPublish: true, AllowDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, s
}

func msgs(prefix string, n int) []*nats.Msg {
	out := make([]*nats.Msg, n)
	for i := range out {
		out[i] = &nats.Msg{Subject: fmt.Sprintf("a.%s.%d", prefix, i), Data: []byte("v")}
	}
	return out
}

// Both ways store the same; a conflict on one message is reported for that
// message alone, and nothing of the others is lost.
func TestWriterCAS(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			nc, js, s := atomicStream(t)
			ctx := context.Background()
			w := natsx.Writer{NC: nc, JS: js, Atomic: atomic}
			// 1,500 messages: more than one atomic batch.
			ok, err := w.WriteCAS(ctx, msgs("k", 1500), make([]uint64, 1500))
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range ok {
				if !o {
					t.Fatalf("message %d not stored", i)
				}
			}
			// Writing again expecting "no message yet" conflicts for the
			// first two subjects only; the third is new.
			again := append(msgs("k", 2), &nats.Msg{Subject: "a.k.new", Data: []byte("v")})
			ok, err = w.WriteCAS(ctx, again, []uint64{0, 0, 0})
			if err != nil {
				t.Fatal(err)
			}
			if ok[0] || ok[1] || !ok[2] {
				t.Errorf("stored = %v, want [false false true]", ok)
			}
			info, _ := s.Info(ctx)
			if info.State.Msgs != 1501 {
				t.Errorf("stream holds %d messages, want 1501", info.State.Msgs)
			}
		})
	}
}

// A retried write stores nothing twice: message ids dedupe, atomically or
// not.
func TestWriterRetryWithMessageIDs(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic=%v", atomic), func(t *testing.T) {
			nc, js, s := atomicStream(t)
			ctx := context.Background()
			w := natsx.Writer{NC: nc, JS: js, Atomic: atomic}
			batch := func(n int) []*nats.Msg {
				ms := msgs("e", n)
				for i, m := range ms {
					m.Subject = "a.events"
					m.Header = nats.Header{jetstream.MsgIDHeader: {fmt.Sprintf("id-%d", i)}}
				}
				return ms
			}
			if err := w.Write(ctx, batch(3)); err != nil {
				t.Fatal(err)
			}
			// The retry holds the three stored and two more.
			if err := w.Write(ctx, batch(5)); err != nil {
				t.Fatal(err)
			}
			info, _ := s.Info(ctx)
			if info.State.Msgs != 5 {
				t.Errorf("stream holds %d messages, want 5", info.State.Msgs)
			}
		})
	}
}
