package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline/config"
)

func validateCmd(g *globals) *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "validate --config FILE",
		Short: "Check a configuration file without connecting anywhere; exit 0 only when it is valid",
		Long: `Check every field of a configuration file: YAML syntax, unknown fields, value types,
accounts, Regions, frequencies, ARNs (buckets by S3's naming rules, KMS keys and aliases),
prefixes, filters (their FindingCriteria checked against GuardDuty's attribute list),
members and paths. Every problem is printed with its YAML path, such as
detectors[0].destinations[0].destinationProperties.destinationArn. Nothing is contacted:
buckets, keys and servers are checked when the worker verifies a destination.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 1 && configPath != "") {
				return usagef("validate takes one configuration file (--config FILE or FILE)")
			}
			if len(args) == 1 {
				configPath = args[0]
			}
			if configPath == "" {
				return usagef("validate needs a configuration file: --config FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(configPath)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("read %s: %w", configPath, err)}
			}
			cfg, ps := config.Check(b)
			if len(ps) > 0 {
				for _, p := range ps {
					fmt.Fprintln(g.stdout, p.String())
				}
				return &exitError{code: 1, err: fmt.Errorf("%s: %d problem(s)", configPath, len(ps))}
			}
			dests, filters, members := 0, 0, 0
			for _, d := range cfg.Detectors {
				dests += len(d.Destinations)
				filters += len(d.Filters)
				members += len(d.Members)
			}
			def := "none"
			if d := cfg.DefaultDestination; d != nil {
				def = d.DestinationType + " " + d.Root
			}
			fmt.Fprintf(g.stdout, "%s: valid: %d detectors, %d destinations, %d filters, %d members; default destination %s\n",
				configPath, len(cfg.Detectors), dests, filters, members, def)
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "configuration file (YAML)")
	return c
}
