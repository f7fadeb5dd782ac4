package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/stages/filter"
)

func filterCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "filter",
		Short: "Saved filters and suppression rules (GuardDuty FindingCriteria): create|get|list|update|delete|test",
		Long: `Saved filters of a detector (--account and --region), as GuardDuty's CreateFilter, GetFilter,
ListFilters, UpdateFilter and DeleteFilter. A filter with --action ARCHIVE is a suppression
rule: findings it matches are archived and exported to no sink. Filters apply in --rank
order (1 to 100), at most 100 per account and Region. An administrator's filters also judge
its enabled members' findings in that Region. Every worker applies a change within seconds.

'filter test' tries criteria on findings offline, before they are saved.`,
	}
	parentCmd(c)
	c.AddCommand(filterCreateCmd(g), filterGetCmd(g), filterListCmd(g), filterUpdateCmd(g), filterDeleteCmd(g), filterTestCmd(g))
	return c
}

// filterEdits are the AWS CLI's flags of create-filter and update-filter.
type filterEdits struct {
	name, description, action, criteria, fromJSON string
	rank                                          int
}

func (e *filterEdits) add(c *cobra.Command, create bool) {
	f := c.Flags()
	if create {
		f.StringVar(&e.name, "name", "", "filter name: 3 to 64 letters, digits, '.', '_' or '-'")
		f.StringVar(&e.fromJSON, "from-json", "", "FILE (or file://FILE, or - for stdin) holding the output of aws guardduty get-filter or a CreateFilter request body; flags given too override it")
	} else {
		f.StringVar(&e.name, "filter-name", "", "name of the filter")
		f.StringVar(&e.name, "name", "", "same as --filter-name")
	}
	f.StringVar(&e.description, "description", "", "description (at most 512 characters)")
	f.StringVar(&e.action, "action", "", "NOOP (a saved view; the default) or ARCHIVE (a suppression rule)")
	f.IntVar(&e.rank, "rank", 0, "order of application, 1 to 100 (default on create: after the last)")
	f.StringVar(&e.criteria, "finding-criteria", "", `FindingCriteria as JSON or file://FILE, e.g. '{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]}}}'`)
	// The AWS CLI's detector and idempotency flags, accepted so that its
	// commands can be pasted; --account and --region select the detector.
	f.String("detector-id", "", "ignored: --account and --region select the detector")
	f.String("client-token", "", "ignored")
	_ = f.MarkHidden("detector-id")
	_ = f.MarkHidden("client-token")
}

// patch reads the flags the user gave into an edit of a filter spec.
func (e *filterEdits) patch(g *globals, c *cobra.Command) (func(*filter.Spec), error) {
	f := c.Flags()
	var criteria any
	if f.Changed("rank") && (e.rank < filter.MinRank || e.rank > filter.MaxRank) {
		return nil, usagef("--rank %d is out of range: expected %d to %d", e.rank, filter.MinRank, filter.MaxRank)
	}
	if f.Changed("finding-criteria") {
		b, err := readArg(g, "--finding-criteria", e.criteria)
		if err != nil {
			return nil, err
		}
		s, err := filter.ParseSpec(b)
		if err != nil {
			return nil, filterProblems("--finding-criteria", err)
		}
		if s.FindingCriteria == nil {
			return nil, usagef("--finding-criteria: expected a FindingCriteria such as {\"Criterion\": {\"type\": {\"Eq\": [\"Recon:EC2/Portscan\"]}}}")
		}
		criteria = s.FindingCriteria
	}
	return func(spec *filter.Spec) {
		if f.Changed("description") {
			spec.Description = e.description
		}
		if f.Changed("action") {
			spec.Action = e.action
		}
		if f.Changed("rank") {
			spec.Rank = e.rank
		}
		if criteria != nil {
			spec.FindingCriteria = criteria
		}
	}, nil
}

// filterProblems renders the engine's refusal as a usage error with one
// problem per line.
func filterProblems(prefix string, err error) error {
	var ps filter.Problems
	if errors.As(err, &ps) {
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = "  " + p.String()
		}
		return usagef("%s: %d problem(s):\n%s", prefix, len(ps), strings.Join(lines, "\n"))
	}
	return usagef("%s: %v", prefix, err)
}

func filterStore(cmd *cobra.Command, g *globals) (*state.Filters, func(), error) {
	kvs, closeFn, err := openBuckets(cmd.Context(), g, natsx.BucketFilters)
	if err != nil {
		return nil, nil, err
	}
	return state.NewFilters(kvs[0]), closeFn, nil
}

// effectiveFilters reads the filters that judge findings of (account,
// region) as the pipeline applies them: an enabled member's
// administrator's filters for that Region first, then its own.
func effectiveFilters(cmd *cobra.Command, g *globals, account, region string) (*filter.Set, error) {
	ctx := cmd.Context()
	kvs, closeFn, err := openBuckets(ctx, g, natsx.BucketFilters, natsx.BucketMembers)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	fs := state.NewFilters(kvs[0])
	own, err := fs.List(ctx, account, region)
	if err != nil {
		return nil, err
	}
	var sets []*filter.Set
	if e, err := kvs[1].Get(ctx, state.MemberKey(region, account)); err == nil {
		var m state.Member
		if json.Unmarshal(e.Value(), &m) == nil && m.Status == state.StatusEnabled {
			admin, err := fs.List(ctx, m.Administrator, region)
			if err != nil {
				return nil, err
			}
			sets = append(sets, filter.NewSet(admin))
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, err
	}
	return filter.Concat(append(sets, filter.NewSet(own))...), nil
}

// filterErr maps the store's errors to exit statuses.
func filterErr(err error) error {
	switch {
	case errors.Is(err, filter.ErrInvalid):
		return filterProblems("invalid filter", err)
	case errors.Is(err, state.ErrFilterExists), errors.Is(err, state.ErrFilterNotFound), errors.Is(err, state.ErrTooManyFilters):
		return failf("%v", err)
	}
	return err
}

func filterCreateCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var e filterEdits
	c := &cobra.Command{
		Use:   "create --account A --region R (--name N --finding-criteria JSON | --from-json FILE) [--action ARCHIVE] [--rank N]",
		Short: "Create a saved filter (ARCHIVE: a suppression rule)",
		Long: `Create a saved filter of the detector (--account, --region), with the AWS CLI's flags
(--name --description --action --rank --finding-criteria JSON|file://FILE) or --from-json FILE
holding what 'aws guardduty get-filter' prints or a CreateFilter request body (PascalCase or
camelCase). Criteria are checked now: an unknown attribute or operator, a malformed value or
more than 50 values is refused with the member named (exit status 2). Prints {"Name": …}.`,
		Example: `  gdexport filter create --account 111122223333 --region us-east-1 --name suppress-scans \
    --action ARCHIVE --rank 1 --finding-criteria '{"Criterion":{"type":{"Eq":["Recon:EC2/Portscan"]}}}'
  gdexport filter create --account 111122223333 --region us-east-1 --from-json get-filter-output.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			var spec filter.Spec
			if e.fromJSON != "" {
				b, err := readArg(g, "--from-json", e.fromJSON)
				if err != nil {
					return err
				}
				if spec, err = filter.ParseSpec(b); err != nil {
					return filterProblems("--from-json "+e.fromJSON, err)
				}
			}
			if cmd.Flags().Changed("name") {
				spec.Name = e.name
			}
			edit, err := e.patch(g, cmd)
			if err != nil {
				return err
			}
			edit(&spec)
			if spec.Name == "" {
				return usagef("--name is required (or a Name in --from-json)")
			}
			if spec.FindingCriteria == nil {
				return usagef("--finding-criteria is required (or FindingCriteria in --from-json)")
			}
			f, err := filter.NewFilter(spec)
			if err != nil {
				return filterProblems("invalid filter", err)
			}
			for _, w := range warnings(f) {
				fmt.Fprintln(g.stderr, "gdexport: warning:", w)
			}
			fs, closeFn, err := filterStore(cmd, g)
			if err != nil {
				return err
			}
			defer closeFn()
			if _, err := fs.Create(cmd.Context(), d.account, d.region, f); err != nil {
				return filterErr(err)
			}
			return printJSON(g.stdout, map[string]string{"Name": f.Name})
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	e.add(c, true)
	return c
}

// warnings names what a valid filter does that its author may not expect.
func warnings(f *filter.Filter) []string {
	if f.Action == filter.ActionArchive && f.Criteria.Len() == 0 {
		return []string{fmt.Sprintf("filter %q has an empty Criterion: it archives every finding of the account and Region", f.Name)}
	}
	return nil
}

func filterGetCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var e filterEdits
	c := &cobra.Command{
		Use:   "get --account A --region R --filter-name N",
		Short: "Print a saved filter as 'aws guardduty get-filter' does",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			if e.name == "" {
				return usagef("--filter-name is required")
			}
			fs, closeFn, err := filterStore(cmd, g)
			if err != nil {
				return err
			}
			defer closeFn()
			f, err := fs.Get(cmd.Context(), d.account, d.region, e.name)
			if err != nil {
				return filterErr(err)
			}
			return printJSON(g.stdout, f.Document(true))
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	c.Flags().StringVar(&e.name, "filter-name", "", "name of the filter")
	c.Flags().StringVar(&e.name, "name", "", "same as --filter-name")
	return c
}

func filterListCmd(g *globals) *cobra.Command {
	var d detectorFlags
	c := &cobra.Command{
		Use:   "list --account A --region R",
		Short: "List the saved filters' names in rank order, as 'aws guardduty list-filters' does",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			fs, closeFn, err := filterStore(cmd, g)
			if err != nil {
				return err
			}
			defer closeFn()
			list, err := fs.List(cmd.Context(), d.account, d.region)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(list))
			for _, f := range list {
				names = append(names, f.Name)
			}
			return printJSON(g.stdout, map[string][]string{"FilterNames": names})
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	return c
}

func filterUpdateCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var e filterEdits
	c := &cobra.Command{
		Use:   "update --account A --region R --filter-name N [--description D] [--action A] [--rank N] [--finding-criteria JSON]",
		Short: "Change a saved filter; the flags not given keep their values",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			if e.name == "" {
				return usagef("--filter-name is required")
			}
			edit, err := e.patch(g, cmd)
			if err != nil {
				return err
			}
			fs, closeFn, err := filterStore(cmd, g)
			if err != nil {
				return err
			}
			defer closeFn()
			f, err := fs.Update(cmd.Context(), d.account, d.region, e.name, edit)
			if err != nil {
				return filterErr(err)
			}
			for _, w := range warnings(f) {
				fmt.Fprintln(g.stderr, "gdexport: warning:", w)
			}
			return printJSON(g.stdout, map[string]string{"Name": f.Name})
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	e.add(c, false)
	return c
}

func filterDeleteCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var name string
	c := &cobra.Command{
		Use:   "delete --account A --region R --filter-name N",
		Short: "Delete a saved filter",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			if name == "" {
				return usagef("--filter-name is required")
			}
			fs, closeFn, err := filterStore(cmd, g)
			if err != nil {
				return err
			}
			defer closeFn()
			return filterErr(fs.Delete(cmd.Context(), d.account, d.region, name))
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	c.Flags().StringVar(&name, "filter-name", "", "name of the filter")
	c.Flags().StringVar(&name, "name", "", "same as --filter-name")
	return c
}

func filterTestCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var criteria string
	c := &cobra.Command{
		Use:   "test (--criteria FILE|JSON | --account A --region R) FINDINGS...",
		Short: "Try a suppression rule on findings: one line per finding, '<id> archive' or '<id> keep'",
		Long: `Judge findings by a rule before saving it. FINDINGS are files or '-' (stdin) in any form
'gdexport publish' reads: a finding, a JSON array, JSON Lines, get-findings output,
EventBridge events.

With --criteria FILE|JSON (a FindingCriteria, a CreateFilter body or get-filter output; file://
works too) no server and no account are needed: the criteria are tried as an ARCHIVE
filter, and each finding prints '<id> archive' or '<id> keep'.

With --account A --region R instead, the detector's saved filters are read from the server
(--nats-url) and tried in rank order; the line also names the filter that matched:
'<id> archive <filter>' for the first matching ARCHIVE filter, '<id> keep <filter>' when only
a NOOP filter matched, '<id> keep' otherwise.

Exit status 0 when every input could be judged (whatever the verdicts), 1 when some input
could not be (listed on stderr), 2 for a usage error such as invalid criteria.`,
		Example: `  gdexport filter test --criteria file://suppress-dns.json past-findings.jsonl
  gdexport filter test --criteria '{"Criterion":{"severity":{"Lt":4}}}' - < findings.json
  gdexport filter test --account 111122223333 --region us-east-1 findings.json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("no findings given: name FILES, or '-' for stdin")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			saved := d.account != "" || d.region != ""
			if saved && criteria != "" {
				return usagef("--criteria and --account/--region exclude each other: try given criteria, or the detector's saved filters")
			}
			if !saved && criteria == "" {
				return usagef("--criteria FILE|JSON is required (or --account and --region to try the saved filters)")
			}
			var set *filter.Set
			if saved {
				if err := d.check(true); err != nil {
					return err
				}
				var err error
				if set, err = effectiveFilters(cmd, g, d.account, d.region); err != nil {
					return err
				}
			} else {
				b, err := readArg(g, "--criteria", criteria)
				if err != nil {
					return err
				}
				spec, err := filter.ParseSpec(b)
				if err != nil {
					return filterProblems("--criteria", err)
				}
				crit, err := filter.CompileCriteria(spec.FindingCriteria)
				if err != nil {
					return filterProblems("--criteria", err)
				}
				set = filter.NewSet([]*filter.Filter{{Name: "criteria", Action: filter.ActionArchive, Rank: 1, Criteria: crit}})
			}
			return judgeFindings(g, args, set, saved)
		},
	}
	d.add(c, "AWS account id of the detector whose saved filters to try (needs a server)")
	c.Flags().StringVar(&criteria, "criteria", "", "FindingCriteria to try: JSON, file://FILE or FILE")
	return c
}

// judgeFindings prints one verdict per finding of the named inputs.
func judgeFindings(g *globals, inputs []string, set *filter.Set, named bool) error {
	var p fastjson.Parser
	unjudged := 0
	for _, name := range inputs {
		var r io.Reader
		label := name
		if name == "-" {
			r, label = g.stdin, "stdin"
		} else {
			fh, err := os.Open(name)
			if err != nil {
				fmt.Fprintf(g.stderr, "%s: cannot judge: %v\n", name, err)
				unjudged++
				continue
			}
			r = fh
			defer fh.Close()
		}
		err := decode.Split(r, func(it decode.Item) error {
			if it.Err != nil {
				unjudged++
				fmt.Fprintf(g.stderr, "%s: %s: cannot judge: %v\n", label, it.Pos, it.Err)
				return nil
			}
			f, v, err := decode.DecodeParsed(&p, it.Raw)
			if err != nil {
				unjudged++
				fmt.Fprintf(g.stderr, "%s: %s: cannot judge: %v\n", label, it.Pos, err)
				return nil
			}
			archive, first := set.Judge(v)
			switch {
			case f.Archived && named:
				// Archived already: exported to no sink whatever the filters.
				fmt.Fprintf(g.stdout, "%s archive service.archived\n", f.ID)
			case f.Archived:
				fmt.Fprintf(g.stdout, "%s archive\n", f.ID)
			case archive != nil && named:
				fmt.Fprintf(g.stdout, "%s archive %s\n", f.ID, archive.Name)
			case archive != nil:
				fmt.Fprintf(g.stdout, "%s archive\n", f.ID)
			case first != nil && named:
				fmt.Fprintf(g.stdout, "%s keep %s\n", f.ID, first.Name)
			default:
				fmt.Fprintf(g.stdout, "%s keep\n", f.ID)
			}
			return nil
		})
		if err != nil {
			unjudged++
			fmt.Fprintf(g.stderr, "%s: cannot judge the rest: %v\n", label, err)
		}
	}
	if unjudged > 0 {
		return failf("%d input(s) could not be judged (listed above); the others were judged", unjudged)
	}
	return nil
}
