//go:build integration

package containers

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func jsConnect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// One server: JetStream answers on the published loopback port.
func TestNATS(t *testing.T) {
	n := StartNATS(t)
	js := jsConnect(t, n.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream on %s: %v", n.URL, err)
	}
	// Every published port is bound to loopback only.
	info, err := n.Container.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.NetworkSettings.Ports) == 0 {
		t.Fatal("no published ports")
	}
	for port, bindings := range info.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostIP.String() != "127.0.0.1" {
				t.Errorf("port %s published on %s, want 127.0.0.1", port, b.HostIP)
			}
		}
	}
}

// Three nodes started with deployments/nats/nats-cluster.conf route to
// each other on their own network and keep an R3 stream.
func TestNATSCluster(t *testing.T) {
	nodes := StartNATSCluster(t, nil)
	js := jsConnect(t, URLs(nodes))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var err error
	for ctx.Err() == nil { // the meta leader may still be being elected
		if _, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	if _, err := js.Publish(ctx, "r3.x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "R3")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 || info.State.Msgs != 1 {
		t.Fatalf("stream info %+v, %v: want a leader, 2 replicas and 1 message", info, err)
	}
}
