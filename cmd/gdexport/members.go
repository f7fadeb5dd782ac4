package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
)

func membersCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "members",
		Short: "Member accounts of an administrator in a Region: create|disassociate|list",
		Long: `Member accounts of an administrator (--account) in one Region (--region). An ENABLED
member's findings in that Region are also exported to the administrator's destinations for
the Region (and to the member's own destination, if it has one), and the administrator's
suppression rules judge them. A DISASSOCIATED member exports only to a destination of its
own, and is not served by the default destination. A member has at most one administrator
per Region; members cannot have members. Every worker applies a change within seconds.`,
	}
	parentCmd(c)
	c.AddCommand(membersCreateCmd(g), membersDisassociateCmd(g), membersListCmd(g))
	return c
}

// memberList is --members (alias --account-ids): comma-separated account ids.
type memberList struct{ raw []string }

func (m *memberList) add(c *cobra.Command) {
	c.Flags().StringSliceVar(&m.raw, "members", nil, "member account ids, comma-separated (12 digits each)")
	c.Flags().StringSliceVar(&m.raw, "account-ids", nil, "same as --members (the AWS CLI's name)")
}

func (m *memberList) accounts(administrator string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range m.raw {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !pipeline.ValidAccount(a) {
			return nil, usagef("--members: %q is not an AWS account id: expected 12 digits", a)
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--members is required: member account ids, comma-separated")
	}
	return out, nil
}

func memberStore(ctx context.Context, g *globals) (*state.Members, func(), error) {
	kvs, closeFn, err := openBuckets(ctx, g, natsx.BucketMembers)
	if err != nil {
		return nil, nil, err
	}
	return state.NewMembers(kvs[0]), closeFn, nil
}

// unprocessed prints the AWS CLI's {"UnprocessedAccounts": […]} and fails
// when any account was refused.
func unprocessed(g *globals, refused map[string]error) error {
	type entry struct {
		AccountID string `json:"AccountId"`
		Result    string `json:"Result"`
	}
	list := []entry{}
	for a, err := range refused {
		list = append(list, entry{AccountID: a, Result: err.Error()})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].AccountID < list[j].AccountID })
	if err := printJSON(g.stdout, map[string]any{"UnprocessedAccounts": list}); err != nil {
		return err
	}
	if len(list) > 0 {
		lines := make([]string, len(list))
		for i, e := range list {
			lines[i] = "  " + e.AccountID + ": " + e.Result
		}
		return failf("%d account(s) refused:\n%s", len(list), strings.Join(lines, "\n"))
	}
	return nil
}

func membersCreateCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var m memberList
	c := &cobra.Command{
		Use:   "create --account ADMINISTRATOR --region R --members 444455556666,…",
		Short: "Make accounts ENABLED members of the administrator in the Region",
		Long: `Make accounts ENABLED members of the administrator (--account) in the Region. An account
already a member of this administrator is enabled again. An account that another
administrator has enabled in the Region is refused (disassociate it there first), and so is
nesting. Prints {"UnprocessedAccounts": […]} like the AWS CLI; exit status 1 when any
account was refused (the others are created).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			accounts, err := m.accounts(d.account)
			if err != nil {
				return err
			}
			ms, closeFn, err := memberStore(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeFn()
			refused, err := ms.Create(cmd.Context(), d.account, d.region, accounts)
			if err != nil {
				return err
			}
			return unprocessed(g, refused)
		},
	}
	d.add(c, "AWS account id of the administrator (12 digits)")
	m.add(c)
	return c
}

func membersDisassociateCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var m memberList
	c := &cobra.Command{
		Use:   "disassociate --account ADMINISTRATOR --region R --members 444455556666,…",
		Short: "Mark members DISASSOCIATED: their findings stop flowing to the administrator",
		Long: `Mark members of the administrator (--account) in the Region DISASSOCIATED. Their
findings no longer go to the administrator's destinations nor through its suppression
rules; a member without a destination of its own is then not exported at all (counted as
dropped "disassociated"). Accounts that are not members of this administrator are refused.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			accounts, err := m.accounts(d.account)
			if err != nil {
				return err
			}
			ms, closeFn, err := memberStore(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeFn()
			refused, err := ms.Disassociate(cmd.Context(), d.account, d.region, accounts)
			if err != nil {
				return err
			}
			return unprocessed(g, refused)
		},
	}
	d.add(c, "AWS account id of the administrator (12 digits)")
	m.add(c)
	return c
}

func membersListCmd(g *globals) *cobra.Command {
	var d detectorFlags
	c := &cobra.Command{
		Use:   "list --account ADMINISTRATOR --region R",
		Short: "List the administrator's members in the Region with their status",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			ms, closeFn, err := memberStore(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer closeFn()
			list, err := ms.List(cmd.Context(), d.account, d.region)
			if err != nil {
				return err
			}
			type entry struct {
				AccountID          string `json:"AccountId"`
				AdministratorID    string `json:"AdministratorId"`
				Region             string `json:"Region"`
				RelationshipStatus string `json:"RelationshipStatus"`
				UpdatedAt          string `json:"UpdatedAt"`
			}
			out := []entry{}
			for _, m := range list {
				out = append(out, entry{m.Account, m.Administrator, m.Region, m.Status, m.UpdatedAt})
			}
			if err := printJSON(g.stdout, map[string]any{"Members": out}); err != nil {
				return fmt.Errorf("print members: %w", err)
			}
			return nil
		},
	}
	d.add(c, "AWS account id of the administrator (12 digits)")
	return c
}
