package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline"
)

// usagef is a usage error: exit status 2, with a message naming the value
// and what was expected.
func usagef(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// failf is any other failure: exit status 1.
func failf(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}

// detectorFlags are the --account and --region every control command takes
// (the pair GuardDuty calls a detector).
type detectorFlags struct {
	account, region string
}

func (d *detectorFlags) add(c *cobra.Command, accountHelp string) {
	c.Flags().StringVar(&d.account, "account", "", accountHelp)
	c.Flags().StringVar(&d.region, "region", "", "AWS Region of the detector, such as us-east-1")
}

// check validates both flags; required says they must be given.
func (d *detectorFlags) check(required bool) error {
	if !required && d.account == "" && d.region == "" {
		return nil
	}
	if d.account == "" {
		return usagef("--account is required: the 12-digit AWS account id of the detector")
	}
	if !pipeline.ValidAccount(d.account) {
		return usagef("--account %q is not an AWS account id: expected 12 digits", d.account)
	}
	if d.region == "" {
		return usagef("--region is required: the AWS Region of the detector, such as us-east-1")
	}
	if !pipeline.ValidRegion(d.region) {
		return usagef("--region %q is not an AWS Region name such as us-east-1", d.region)
	}
	return nil
}

// openBuckets connects to NATS and opens KV buckets that `gdexport run`
// creates. The returned close function closes the connection.
func openBuckets(ctx context.Context, g *globals, names ...string) ([]jetstream.KeyValue, func(), error) {
	nc, js, err := connectJS(g)
	if err != nil {
		return nil, nil, err
	}
	out, err := openKVs(ctx, g, js, names...)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return out, nc.Close, nil
}

// connectJS connects to the NATS of --nats-url.
func connectJS(g *globals) (*nats.Conn, jetstream.JetStream, error) {
	url := g.clientURL()
	nc, err := nats.Connect(url, nats.Name("gdexport-cli"), nats.Timeout(3*time.Second))
	if err != nil {
		return nil, nil, failf("connect to NATS at %s: %v (is `gdexport run` running? --nats-url or NATS_URL select another server)", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, failf("JetStream at %s: %v", url, err)
	}
	return nc, js, nil
}

// openKVs opens KV buckets that `gdexport run` creates.
func openKVs(ctx context.Context, g *globals, js jetstream.JetStream, names ...string) ([]jetstream.KeyValue, error) {
	url := g.clientURL()
	out := make([]jetstream.KeyValue, len(names))
	for i, name := range names {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err := js.KeyValue(cctx, name)
		cancel()
		if err != nil {
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				return nil, failf("KV bucket %s does not exist at %s: start `gdexport run` against this server once (it creates its streams and buckets)", name, url)
			}
			if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
				return nil, failf("no JetStream at %s (%v): is this the server `gdexport run` uses?", url, err)
			}
			return nil, failf("open KV bucket %s at %s: %v", name, url, err)
		}
		out[i] = kv
	}
	return out, nil
}

// printJSON writes v as the AWS CLI does: indented by four spaces.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// readArg reads a value given as inline JSON, file://PATH (the AWS CLI's
// form), a plain PATH, or '-' for stdin.
func readArg(g *globals, flag, v string) ([]byte, error) {
	switch {
	case v == "-":
		b, err := io.ReadAll(g.stdin)
		if err != nil {
			return nil, failf("%s -: read stdin: %v", flag, err)
		}
		return b, nil
	case strings.HasPrefix(strings.TrimSpace(v), "{") || strings.HasPrefix(strings.TrimSpace(v), "["):
		return []byte(v), nil
	}
	p := strings.TrimPrefix(v, "file://")
	b, err := os.ReadFile(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, usagef("%s %q: no such file (expected JSON, file://PATH or PATH)", flag, v)
		}
		return nil, failf("%s %q: %v", flag, v, err)
	}
	return b, nil
}

// noArgs refuses positional arguments as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q: this command takes only flags", args[0])
	}
	return nil
}

// parentCmd makes a command that groups subcommands: alone it prints its
// help; with an unknown subcommand it is a usage error naming it.
func parentCmd(c *cobra.Command) *cobra.Command {
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q: expected one of %s", args[0], cmd.CommandPath(), subcommandNames(cmd))
		}
		return nil
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return c
}

func subcommandNames(c *cobra.Command) string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return strings.Join(names, ", ")
}
