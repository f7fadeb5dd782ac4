package export

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

type undeliverable struct{ fs []*pipeline.Finding }

func (u *undeliverable) Error() string { return "too large" }
func (u *undeliverable) Undeliverable() ([]*pipeline.Finding, []string) {
	return u.fs, []string{"eventbridge: event of 300000 bytes exceeds the PutEvents limit of 262144 bytes"}
}

// An event that can never be delivered goes to the dead letter with its
// reason, once per destination and finding version; other errors do not.
func TestDeadLetterUndeliverable(t *testing.T) {
	ctx := context.Background()
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.Ensure(ctx, js, natsx.TopologyConfig{Replicas: 1, Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	x := &Exporter{NC: nc, Log: slog.New(slog.DiscardHandler)}
	dest := &pipeline.Destination{ID: "d1"}
	f := &pipeline.Finding{ID: "big", Raw: []byte(`{"id":"big"}`), UpdatedAt: 1, Seq: 7}
	if _, ok := x.deadLetterUndeliverable(ctx, dest, errors.New("throttled")); ok {
		t.Fatal("an ordinary error was dead-lettered")
	}
	if _, ok := x.deadLetterUndeliverable(ctx, dest, errors.Join(errors.New("throttled"), &undeliverable{fs: []*pipeline.Finding{f}})); ok {
		t.Fatal("dead-lettered while other events still failed")
	}
	for range 2 { // a retried batch stores its dead letter once
		if n, ok := x.deadLetterUndeliverable(ctx, dest, &undeliverable{fs: []*pipeline.Finding{f}}); !ok || n != 1 {
			t.Fatalf("dead-lettered %d, %v", n, ok)
		}
	}
	st, err := js.Stream(ctx, natsx.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("%d dead letters, want 1", info.State.Msgs)
	}
	m, err := st.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{"id":"big"}` || m.Header.Get(natsx.HeaderReason) == "" || m.Header.Get(natsx.HeaderSeq) != "7" {
		t.Fatalf("dead letter %s %v", m.Data, m.Header)
	}
}
