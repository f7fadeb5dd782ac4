package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
)

// detectorFlags are --account and --region, the pair GuardDuty calls a
// detector, taken by every control command.
type detectorFlags struct {
	account, region string
}

func (d *detectorFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&d.account, "account", "", "AWS account id (12 digits)")
	c.Flags().StringVar(&d.region, "region", "", "AWS Region, such as us-east-1")
}

// check reports a missing or malformed --account or --region as a usage
// error.
func (d *detectorFlags) check() error {
	switch {
	case d.account == "":
		return usagef("--account is required: the 12-digit AWS account id")
	case !pipeline.ValidAccount(d.account):
		return usagef("--account %q: expected a 12-digit AWS account id", d.account)
	case d.region == "":
		return usagef("--region is required: an AWS Region such as us-east-1")
	case !pipeline.ValidRegion(d.region):
		return usagef("--region %q: expected an AWS Region name such as us-east-1", d.region)
	}
	return nil
}

// usagef is a usage error: exit status 2.
func usagef(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// control is a connection to a running gdexport's JetStream for the
// control commands.
type control struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	store *state.Store
}

func (c *control) Close() { c.nc.Close() }

// connectControl connects to the server of --nats-url and opens the shared
// state that `gdexport run` created.
func connectControl(ctx context.Context, g *globals) (*control, error) {
	url := g.clientURL()
	nc, err := nats.Connect(url, nats.Name("gdexport-cli"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (is `gdexport run` running? --nats-url or NATS_URL select another server)", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	buckets := map[string]jetstream.KeyValue{}
	for _, name := range []string{natsx.BucketDestinations, natsx.BucketDetectors} {
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			nc.Close()
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return nil, fmt.Errorf("bucket %s does not exist at %s: start `gdexport run` against this server first", name, url)
			}
			return nil, fmt.Errorf("bucket %s at %s: %w", name, url, err)
		}
		buckets[name] = kv
	}
	st := state.New(buckets[natsx.BucketDestinations], buckets[natsx.BucketDetectors], slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &control{nc: nc, js: js, store: st}, nil
}
