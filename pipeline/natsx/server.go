package natsx

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Durability modes (DESIGN.md §2). Strict flushes every JetStream write to
// disk before acknowledging it; fast uses nats-server's default periodic
// flush (every two minutes) and can lose acknowledged writes on a power loss.
const (
	DurabilityStrict = "strict"
	DurabilityFast   = "fast"
)

// ErrBadListen is returned when a listen address cannot be parsed.
var ErrBadListen = errors.New("bad listen address")

// EmbeddedOptions configure the in-process NATS server of `gdexport run`.
type EmbeddedOptions struct {
	// Listen is host:port (default 127.0.0.1:4222).
	Listen string
	// StoreDir is the JetStream store directory.
	StoreDir string
	// Durability is DurabilityStrict (default) or DurabilityFast.
	Durability string
}

// StartEmbedded starts a NATS server with JetStream in this process and waits
// until it accepts connections. The caller shuts it down.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:4222"
	}
	host, portText, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadListen, o.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w %q: port must be 0-65535", ErrBadListen, o.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// Fail at once, and say why, when something else holds the port
		// (nats-server itself would only time out).
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats server: %s is in use (%v): stop what listens there, or give another --nats-listen, or --nats-url to use that server", o.Listen, err)
		}
		ln.Close()
	}
	opts := &server.Options{
		ServerName: "gdexport-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		SyncAlways: o.Durability != DurabilityFast,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server on %s: %w", o.Listen, err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats server on %s: not ready after 15s (is the port in use?)", o.Listen)
	}
	return s, nil
}
