package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/pipeline/status"
)

func statusCmd(g *globals) *cobra.Command {
	var (
		d      detectorFlags
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "status [--account A --region R] [--json]",
		Short: "Is my export healthy? Every destination's status, failure start, backlog, last export and next flush; exit 1 when one is not PUBLISHING",
		Long: `Print one line per destination: account, Region, destination and its target, status as
GuardDuty names it (PENDING_VERIFICATION, PUBLISHING,
UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY, STOPPED), when the failure began, the
findingPublishingFrequency, the last export, the backlog (sealed batches waiting for the
destination, and the age of the oldest) and when the next update window closes (it is
flushed newFindingDelay + 5 s later); then the last error of
each failing destination and the backlog of the shared consumers. Instances of the default
destination are listed from their first export. --json prints the same as JSON.

The exit status is 0 when every destination is PUBLISHING, 1 when one is not (or none
could be read), so scripts can use it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(false); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			ctl, closeFn, err := openDestinations(ctx, g)
			if err != nil {
				return err
			}
			defer closeFn()
			nc, js, err := connectJS(g)
			if err != nil {
				return err
			}
			defer nc.Close()
			dets, err := openKVs(ctx, g, js, natsx.BucketDestinations, natsx.BucketDetectors)
			if err != nil {
				return err
			}
			detectors := state.New(dets[0], dets[1], slog.New(slog.NewTextHandler(io.Discard, nil)))
			rep, err := status.Build(ctx, status.Sources{
				JS:       js,
				Statuses: func(ctx context.Context) ([]state.Status, error) { return readStatuses(ctx, ctl.statusKV) },
				Destination: func(ctx context.Context, st state.Status) (*pipeline.Destination, bool) {
					dest, _, err := ctl.find(ctx, st.Account, st.Region, st.DestinationID)
					return dest, err == nil
				},
				Frequency: func(ctx context.Context, account, region string) string {
					det, _, err := detectors.GetDetector(ctx, account, region)
					if err != nil {
						return "?"
					}
					return det.FindingPublishingFrequency
				},
				// The worker flushes a few seconds after the window's end
				// (newFindingDelay + 5 s); the CLI shows the end itself.
				Grace: 0,
			}, status.Filter{Account: d.account, Region: d.region})
			if err != nil {
				return failf("read statuses: %v", err)
			}
			if asJSON {
				err = rep.WriteJSON(g.stdout)
			} else {
				err = rep.WriteTable(g.stdout)
			}
			if err != nil {
				return err
			}
			if !rep.Healthy() {
				n := 0
				for _, dst := range rep.Destinations {
					if !dst.Healthy() {
						n++
					}
				}
				return failf("%d of %d destinations are not PUBLISHING", n, len(rep.Destinations))
			}
			return nil
		},
	}
	d.add(c, "only destinations of this AWS account")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// readStatuses reads every status record of the bucket.
func readStatuses(ctx context.Context, kv jetstream.KeyValue) ([]state.Status, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var out []state.Status
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var st state.Status
		if json.Unmarshal(e.Value(), &st) == nil {
			out = append(out, st)
		}
	}
	return out, nil
}
