package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// globals are the flags every command shares.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	dataDir        string
	natsURL        string
	logFormat      string
	logLevel       string
}

func (g *globals) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// newRoot builds the command tree over g.
func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "gdexport",
		Short: "Export GuardDuty findings from NATS JetStream to S3 and an event bus",
		Long: `gdexport takes GuardDuty findings from NATS subjects findings.<region>.<accountId> and
exports them as GuardDuty's "Exporting findings" feature does: archived and suppressed
findings dropped, gzip JSON Lines encrypted per destination under
AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/, one event per finding on the bus.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			switch g.logFormat {
			case "text", "json":
			default:
				return &exitError{code: 2, err: fmt.Errorf("--log-format %q: expected text or json", g.logFormat)}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--log-level %q: expected debug, info, warn or error", g.logLevel)}
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", envOr("GDEXPORT_DATA_DIR", ""), "data directory (env GDEXPORT_DATA_DIR; default ./data)")
	pf.StringVar(&g.natsURL, "nats-url", os.Getenv("NATS_URL"), "NATS server URL (env NATS_URL; clients default to nats://127.0.0.1:4222)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	root.AddCommand(runCmd(g), publishCmd(g), decryptCmd(g), destinationCmd(g), detectorCmd(g), filterCmd(g), membersCmd(g), statusCmd(g), healthcheckCmd(g), validateCmd(g))
	return root
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "gdexport:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "gdexport:", err)
	if strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "flag") {
		return 2
	}
	return 1
}
