package natsx_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

// Ensure creates everything, changes nothing when called again alike (a
// second worker), and updates what a new configuration changes.
func TestEnsureCreatesThenUpdates(t *testing.T) {
	nc := natstest.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := natsx.TopologyConfig{Retention: 24 * time.Hour, IngestAckWait: 30 * time.Second}
	for range 2 {
		if _, err := natsx.Ensure(ctx, js, cfg); err != nil {
			t.Fatalf("ensure: %v", err)
		}
	}
	cfg.Retention, cfg.IngestAckWait = 48*time.Hour, 45*time.Second
	topo, err := natsx.Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatalf("ensure a changed configuration: %v", err)
	}
	info, err := topo.Findings.Info(ctx)
	if err != nil || info.Config.MaxAge != 48*time.Hour || info.Config.Replicas != 1 {
		t.Fatalf("FINDINGS %+v, %v: want retention 48h, R1", info.Config, err)
	}
	st, err := topo.Exported.Status(ctx)
	if err != nil || st.TTL() != 48*time.Hour {
		t.Fatalf("bucket %s TTL %v, %v: want 48h", natsx.BucketExported, st.TTL(), err)
	}
	ci, err := topo.Ingest.Info(ctx)
	if err != nil || ci.Config.AckWait != 45*time.Second {
		t.Fatalf("ingest consumer ack wait %v, %v: want 45s", ci.Config.AckWait, err)
	}
}
