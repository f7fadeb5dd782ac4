package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
)

func detectorCmd(g *globals) *cobra.Command {
	c := parentCmd(&cobra.Command{
		Use:   "detector",
		Short: "Show or change the export settings of an (account, Region): the finding publishing frequency",
		Long: `A detector is GuardDuty's name for the settings of one account in one Region. Its
findingPublishingFrequency (FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS, the default) sets how
often updated findings are aggregated and exported, in windows aligned to UTC boundaries.`,
	})
	c.AddCommand(detectorGetCmd(g), detectorUpdateCmd(g))
	return c
}

// detectorView is what `detector get` prints, in the shape of
// `aws guardduty get-detector` plus the pending change.
type detectorView struct {
	AccountID                  string `json:"accountId"`
	Region                     string `json:"region"`
	FindingPublishingFrequency string `json:"findingPublishingFrequency"`
	Stored                     bool   `json:"stored"`
	Pending                    *struct {
		Previous      string `json:"previousFrequency"`
		EffectiveFrom string `json:"effectiveFrom"`
	} `json:"pendingChange,omitempty"`
}

func viewDetector(d state.Detector, stored bool, now time.Time) detectorView {
	v := detectorView{AccountID: d.Account, Region: d.Region, FindingPublishingFrequency: d.FindingPublishingFrequency, Stored: stored}
	if d.PreviousFrequency != "" && d.EffectiveFrom > now.UnixMilli() {
		v.Pending = &struct {
			Previous      string `json:"previousFrequency"`
			EffectiveFrom string `json:"effectiveFrom"`
		}{d.PreviousFrequency, time.UnixMilli(d.EffectiveFrom).UTC().Format(time.RFC3339)}
	}
	return v
}

// openDetectors opens the shared state the detector commands read and
// write.
func openDetectors(ctx context.Context, g *globals) (*state.Store, func(), error) {
	kvs, closeConn, err := openBuckets(ctx, g, natsx.BucketDestinations, natsx.BucketDetectors)
	if err != nil {
		return nil, nil, err
	}
	return state.New(kvs[0], kvs[1], slog.New(slog.NewTextHandler(io.Discard, nil))), closeConn, nil
}

func detectorGetCmd(g *globals) *cobra.Command {
	var d detectorFlags
	c := &cobra.Command{
		Use:   "get --account A --region R",
		Short: "Print the detector's findingPublishingFrequency (and a change not yet in effect)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			store, closeConn, err := openDetectors(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeConn()
			det, stored, err := store.GetDetector(cmd.Context(), d.account, d.region)
			if err != nil {
				return err
			}
			return printJSON(g.stdout, viewDetector(det, stored, time.Now()))
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	return c
}

func detectorUpdateCmd(g *globals) *cobra.Command {
	var (
		d    detectorFlags
		freq string
	)
	c := &cobra.Command{
		Use:   "update --account A --region R --finding-publishing-frequency FIFTEEN_MINUTES|ONE_HOUR|SIX_HOURS",
		Short: "Change how often updated findings are exported",
		Long: `Change the detector's findingPublishingFrequency. The update window open now keeps its
length; the new frequency applies from its first UTC boundary after that window closes
(from six hours to fifteen minutes at 13:00: the 12:00–18:00 window closes at 18:00, then
fifteen-minute windows). Every worker picks the change up within seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			if _, ok := config.FrequencyDuration[freq]; !ok {
				return usagef("--finding-publishing-frequency %q: expected FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS", freq)
			}
			store, closeConn, err := openDetectors(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeConn()
			now := time.Now()
			if err := store.SetFrequency(cmd.Context(), d.account, d.region, freq, now); err != nil {
				return err
			}
			det, stored, err := store.GetDetector(cmd.Context(), d.account, d.region)
			if err != nil {
				return err
			}
			return printJSON(g.stdout, viewDetector(det, stored, now))
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	c.Flags().StringVar(&freq, "finding-publishing-frequency", "", "FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS")
	return c
}
