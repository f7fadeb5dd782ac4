package assemble

import (
	"testing"
	"time"

	"github.com/gdexport/gdexport/pipeline/config"
)

func TestTakeover(t *testing.T) {
	cases := []struct {
		name                  string
		delay, override       time.Duration
		ingest, export, lease time.Duration
	}{
		// Production: 30s ack waits, the flusher's default lease (0).
		{"defaults", 5 * time.Second, 0, 30 * time.Second, 30 * time.Second, 0},
		// A long newFindingDelay stretches the ingest ack wait only.
		{"long delay", 20 * time.Second, 0, time.Minute, 30 * time.Second, 0},
		// The test-only override shortens all three; the lease is twice it.
		{"override", time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 10 * time.Second},
		// Even overridden, a held message outlives three delays.
		{"override below delay", 3 * time.Second, 5 * time.Second, 9 * time.Second, 5 * time.Second, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := workerConfig{&config.Config{NewFindingDelay: config.Duration(c.delay), AckWaitOverride: config.Duration(c.override)}}
			ingest, export, lease := cfg.takeover()
			if ingest != c.ingest || export != c.export || lease != c.lease {
				t.Fatalf("takeover() = %s, %s, %s; want %s, %s, %s", ingest, export, lease, c.ingest, c.export, c.lease)
			}
		})
	}
}
