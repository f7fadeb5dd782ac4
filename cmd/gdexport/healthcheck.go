package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func healthcheckCmd(g *globals) *cobra.Command {
	var (
		configPath, listen string
		ready              bool
		timeout            time.Duration
	)
	c := &cobra.Command{
		Use:   "healthcheck",
		Short: "Probe a worker's /healthz (or /readyz with --ready); exit 0 when healthy, 1 when not",
		Long: `Probe the HTTP listener of a running worker, for images built FROM scratch that have no
shell or curl (Docker HEALTHCHECK, Kubernetes exec probes). The address is --http-listen,
else http.listen of --config, else 127.0.0.1:8480. /healthz answers while the process is
alive; /readyz (--ready) only while it is connected to NATS with its streams and buckets.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr := listen
			if addr == "" && configPath != "" {
				cfg, err := loadConfig(g, configPath)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				addr = cfg.HTTP.Listen
			}
			if addr == "" {
				addr = "127.0.0.1:8480"
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return usagef("--http-listen %q: expected host:port", addr)
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1" // a wildcard listener answers on loopback
			}
			path := "/healthz"
			if ready {
				path = "/readyz"
			}
			url := "http://" + net.JoinHostPort(host, port) + path
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: %w", url, err)}
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return &exitError{code: 1, err: fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))}
			}
			fmt.Fprintf(g.stdout, "%s: %s\n", url, strings.TrimSpace(string(body)))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&configPath, "config", "", "configuration file whose http.listen to probe")
	f.StringVar(&listen, "http-listen", "", "address of the worker's HTTP listener (default 127.0.0.1:8480)")
	f.BoolVar(&ready, "ready", false, "probe /readyz instead of /healthz")
	f.DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return c
}
