package wmjs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/wmjs"
)

func TestPublishHeaders(t *testing.T) {
	e := newEnv(t, "PUB", "pub.>")
	pub, err := wmjs.NewPublisher(e.js, wmjs.PublisherConfig{MsgIDMetadataKey: "finding_key"})
	if err != nil {
		t.Fatal(err)
	}
	withKey := message.NewMessage("u-1", []byte("a"))
	withKey.Metadata.Set("finding_key", "f1:2026-01-01T00:00:00.000Z")
	withKey.Metadata.Set(wmjs.MetaStreamSeq, "41") // from an earlier delivery
	plain := message.NewMessage("u-2", []byte("b"))
	plain.Metadata.Set("Gdexport-Reason", "bad json")
	if err := pub.Publish("pub.a", withKey, plain); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		seq     uint64
		headers map[string]string
	}{
		// the configured metadata key is the dedupe id
		{name: "msg id from metadata", seq: 1, headers: map[string]string{
			jetstream.MsgIDHeader: "f1:2026-01-01T00:00:00.000Z", "finding_key": "f1:2026-01-01T00:00:00.000Z",
			wmjs.HeaderUUID: "u-1", wmjs.MetaStreamSeq: "",
		}},
		// without it the UUID is
		{name: "msg id from UUID", seq: 2, headers: map[string]string{
			jetstream.MsgIDHeader: "u-2", wmjs.HeaderUUID: "u-2", "Gdexport-Reason": "bad json",
		}},
	}
	for _, tc := range tests {
		got, err := mustStream(t, e.js, "PUB").GetMsg(context.Background(), tc.seq)
		if err != nil {
			t.Fatalf("%s: get %d: %v", tc.name, tc.seq, err)
		}
		for k, want := range tc.headers {
			if v := got.Header.Get(k); v != want {
				t.Errorf("%s: header %s = %q, want %q", tc.name, k, v, want)
			}
		}
	}

	// Publishing the same messages again (a retry) stores nothing new.
	if err := pub.Publish("pub.a", withKey, plain); err != nil {
		t.Fatal(err)
	}
	info, err := mustStream(t, e.js, "PUB").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages after a retry, want 2", info.State.Msgs)
	}
}

func TestPublishErrorNamesMessages(t *testing.T) {
	e := newEnv(t, "PUBERR", "puberr.>")
	pub, err := wmjs.NewPublisher(e.js, wmjs.PublisherConfig{PublishTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// No stream holds "nowhere.x": every message fails, each by name.
	err = pub.Publish("nowhere.x", message.NewMessage("lost-1", nil), message.NewMessage("lost-2", nil))
	if err == nil {
		t.Fatal("publish to a subject without a stream succeeded")
	}
	for _, uuid := range []string{"lost-1", "lost-2"} {
		if !strings.Contains(err.Error(), uuid) {
			t.Errorf("error %q does not name %s", err, uuid)
		}
	}
}

func mustStream(t *testing.T, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
