package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline/assemble"
	"github.com/gdexport/gdexport/pipeline/config"
)

// loadConfig reads --config (an empty configuration when not given), applies
// the command line over it, then the defaults.
func loadConfig(g *globals, path string) (*config.Config, error) {
	cfg := &config.Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		var ps config.Problems
		if cfg, ps = config.Decode(b); len(ps) > 0 {
			return nil, fmt.Errorf("%s: %w", path, ps)
		}
	}
	if g.dataDir != "" {
		cfg.DataDir = g.dataDir
	}
	if g.natsURL != "" {
		cfg.NATS.URL = g.natsURL
	}
	return cfg, nil
}

func runCmd(g *globals) *cobra.Command {
	var (
		configPath, natsListen, httpListen, durability string
	)
	c := &cobra.Command{
		Use:   "run",
		Short: "Run a worker (starts an embedded NATS JetStream server unless --nats-url or NATS_URL is set)",
		Long: `Run a gdexport worker until SIGINT or SIGTERM.

Without --nats-url (or NATS_URL, or nats.url in the config file) it starts an embedded
NATS server with JetStream on --nats-listen (127.0.0.1:4222), its store under
<data-dir>/nats. It creates or updates its streams, KV buckets and durable consumers,
applies the config file's detectors, destinations, members and filters, and exports findings published
on findings.<region>.<accountId>. Any number of workers can share one NATS.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g, configPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if natsListen != "" {
				cfg.NATS.Listen = natsListen
			}
			if httpListen != "" {
				cfg.HTTP.Listen = httpListen
			}
			if durability != "" {
				cfg.NATS.Durability = durability
			}
			cfg.ApplyDefaults()
			if err := cfg.Validate(); err != nil {
				return &exitError{code: 2, err: err}
			}
			w := assemble.New(assemble.Options{Config: cfg, Log: g.logger()})
			return w.Run(cmd.Context())
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "", "configuration file (YAML), applied at start like kubectl apply")
	f.StringVar(&natsListen, "nats-listen", "", "embedded NATS listen address (default 127.0.0.1:4222)")
	f.StringVar(&httpListen, "http-listen", "", "metrics, health and status listener (default 127.0.0.1:8480)")
	f.StringVar(&durability, "durability", "", "JetStream durability of the embedded server: strict (fsync every write, default) or fast")
	return c
}
