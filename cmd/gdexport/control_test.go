package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/testing/natstest"
)

const samples = "../../testing/testdata/samples"

type result struct {
	code           int
	stdout, stderr string
}

func gdx(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// TestEveryCommandAnswersHelp walks the whole command tree.
func TestEveryCommandAnswersHelp(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRoot(&globals{}), nil)
	for _, want := range []string{"filter create", "filter test", "members disassociate", "detector update", "healthcheck"} {
		found := false
		for _, p := range paths {
			found = found || strings.Join(p, " ") == want
		}
		if !found {
			t.Errorf("command %q missing from the tree", want)
		}
	}
	// An unknown subcommand is a usage error naming it.
	if r := gdx(t, "", "filter", "bogus"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "bogus"`) {
		t.Errorf("gdexport filter bogus: exit %d, %s", r.code, r.stderr)
	}
	for _, p := range paths {
		r := gdx(t, "", append(p, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("gdexport %s --help: exit %d, stdout %.80q", strings.Join(p, " "), r.code, r.stdout)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFilterTestOffline runs `filter test` with no server at all.
func TestFilterTestOffline(t *testing.T) {
	dns := filepath.Join(samples, "finding_elastic_ec2_trojan_blackholetraffic_dns.json")
	raw, err := os.ReadFile(dns)
	if err != nil {
		t.Fatal(err)
	}
	suppressed := strings.Replace(string(raw), `"domain":"GeneratedFindingDomainName"`, `"domain":"test.example.com"`, 1)
	suppressed = strings.Replace(suppressed, `"id":"d6012345678912345678912349f831b8f"`, `"id":"suppressedone"`, 1)
	if suppressed == string(raw) {
		t.Fatal("sample changed: the test no longer makes a matching finding")
	}
	both := writeFile(t, "findings.jsonl", strings.TrimSpace(string(raw))+"\n"+strings.TrimSpace(suppressed)+"\n")
	rule := filepath.Join(samples, "filter_criteria_awsdocs_suppress_dns_domain.json")
	cli := filepath.Join(samples, "filter_createfilter_awscli_example_archive_portscan.json")
	pascal := filepath.Join(samples, "getfindings_awscli_pascalcase_iam_userpermissions.json")
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantOut  string // exact stdout
		wantErr  string // fragment of stderr
	}{
		// AWS's documented DNS rule keeps the sample and archives its test.example.com twin.
		{"documentation rule", "", []string{"filter", "test", "--criteria", rule, both}, 0,
			"d6012345678912345678912349f831b8f keep\nsuppressedone archive\n", ""},
		// file:// and inline JSON work as in the AWS CLI; stdin is '-'.
		{"inline criteria on stdin", strings.TrimSpace(suppressed), []string{"filter", "test", "--criteria", `{"criterion":{"severity":{"gte":5}}}`, "-"}, 0,
			"suppressedone archive\n", ""},
		// A CreateFilter body is accepted as the criteria; get-findings output in PascalCase as findings.
		{"CreateFilter body, PascalCase findings", "", []string{"filter", "test", "--criteria", "file://" + cli, pascal}, 0,
			"", ""},
		// Invalid criteria are a usage error naming the attribute.
		{"unknown attribute", "", []string{"filter", "test", "--criteria", `{"Criterion":{"sevrity":{"Gte":4}}}`, both}, 2,
			"", `Criterion.sevrity: unknown attribute "sevrity"`},
		// A finding that cannot be judged is named; the others are still judged; exit 1.
		{"unjudgeable input", "", []string{"filter", "test", "--criteria", rule, both, writeFile(t, "bad.json", `{"accountId":"111122223333","region":"us-east-1"}`)}, 1,
			"d6012345678912345678912349f831b8f keep\nsuppressedone archive\n", "cannot judge: missing id"},
		// Findings are required.
		{"no findings", "", []string{"filter", "test", "--criteria", rule}, 2, "", "no findings given"},
		// Criteria or a detector are required, not both.
		{"both", "", []string{"filter", "test", "--criteria", rule, "--account", "111122223333", "--region", "us-east-1", both}, 2, "", "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gdx(t, tt.stdin, tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantOut != "" && r.stdout != tt.wantOut {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantOut)
			}
			if !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantErr)
			}
		})
	}
	// Every finding of the PascalCase file got a verdict.
	r := gdx(t, "", "filter", "test", "--criteria", `{"Criterion":{}}`, pascal)
	if r.code != 0 || strings.Count(r.stdout, " archive\n") == 0 || strings.Contains(r.stdout, " keep") {
		t.Errorf("empty criteria on %s: exit %d, %q", pascal, r.code, r.stdout)
	}
}

// server starts an embedded server with gdexport's topology (as `gdexport
// run` would create it) and returns its URL.
func server(t *testing.T, topology bool) string {
	t.Helper()
	_, url := natstest.Start(t)
	if topology {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := natsx.Ensure(context.Background(), js, natsx.TopologyConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	return url
}

func TestFilterCommands(t *testing.T) {
	url := server(t, true)
	det := []string{"--nats-url", url, "--account", "111122223333", "--region", "us-east-1"}
	cmd := func(args ...string) []string { return append(args, det...) }
	cli := filepath.Join(samples, "filter_createfilter_awscli_example_archive_portscan.json")
	steps := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // fragment of stdout
		wantErr  string // fragment of stderr
	}{
		// The AWS CLI's own flags.
		{"create with flags", cmd("filter", "create", "--name", "suppress-test-domain", "--action", "ARCHIVE", "--rank", "1",
			"--finding-criteria", "file://"+filepath.Join(samples, "filter_criteria_awsdocs_suppress_dns_domain.json")), 0, `"Name": "suppress-test-domain"`, ""},
		// A CreateFilter request body, as in the CLI's documentation.
		{"create from json", cmd("filter", "create", "--from-json", cli), 0, `"Name": "myFilterSecondExample"`, ""},
		// Names are unique per detector.
		{"create twice", cmd("filter", "create", "--from-json", cli), 1, "", "already exists"},
		// Bad criteria are refused before anything is written, naming the member.
		{"create invalid", cmd("filter", "create", "--name", "bad-filter", "--finding-criteria", `{"Criterion":{"type":{"Eq":"x"}}}`), 2, "", `Criterion.type.Eq: "x" is not a list`},
		// Bad flag values name the value.
		{"bad rank", cmd("filter", "create", "--name", "bad-rank", "--rank", "0", "--finding-criteria", `{"Criterion":{}}`), 2, "", "--rank 0 is out of range"},
		{"bad account", []string{"filter", "list", "--nats-url", url, "--account", "12345", "--region", "us-east-1"}, 2, "", `--account "12345" is not an AWS account id`},
		// get prints what `aws guardduty get-filter` prints.
		{"get", cmd("filter", "get", "--filter-name", "myFilterSecondExample"), 0, `"Criterion": {`, ""},
		{"get missing", cmd("filter", "get", "--filter-name", "nope-filter"), 1, "", "filter not found"},
		{"list", cmd("filter", "list"), 0, `"FilterNames": [
        "suppress-test-domain",
        "myFilterSecondExample"
    ]`, ""},
		// update keeps what is not given.
		{"update", cmd("filter", "update", "--filter-name", "myFilterSecondExample", "--description", "port scans of the example AMI"), 0, `"Name": "myFilterSecondExample"`, ""},
		{"get updated", cmd("filter", "get", "--filter-name", "myFilterSecondExample"), 0, `"Description": "port scans of the example AMI"`, ""},
		// Saved filters are tried by name (with a server).
		{"test saved", cmd("filter", "test", filepath.Join(samples, "finding_elastic_ec2_trojan_blackholetraffic_dns.json")), 0, "d6012345678912345678912349f831b8f keep\n", ""},
		{"delete", cmd("filter", "delete", "--filter-name", "myFilterSecondExample"), 0, "", ""},
		{"delete again", cmd("filter", "delete", "--filter-name", "myFilterSecondExample"), 1, "", "filter not found"},
	}
	for _, s := range steps {
		r := gdx(t, "", s.args...)
		if r.code != s.wantCode || !strings.Contains(r.stdout, s.wantOut) || !strings.Contains(r.stderr, s.wantErr) {
			t.Errorf("%s: exit %d (want %d)\nstdout %s\nstderr %s\nwant stdout with %q, stderr with %q", s.name, r.code, s.wantCode, r.stdout, r.stderr, s.wantOut, s.wantErr)
		}
	}
	// The get-filter output reads back with --from-json (into another Region).
	r := gdx(t, "", cmd("filter", "get", "--filter-name", "suppress-test-domain")...)
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc["Action"] != "ARCHIVE" || doc["Rank"] != float64(1) {
		t.Fatalf("get output %s: %v", r.stdout, err)
	}
	back := writeFile(t, "get-filter.json", r.stdout)
	if r := gdx(t, "", "filter", "create", "--nats-url", url, "--account", "111122223333", "--region", "eu-west-1", "--from-json", back); r.code != 0 {
		t.Errorf("create from get-filter output: exit %d: %s", r.code, r.stderr)
	}
}

func TestMembersCommands(t *testing.T) {
	url := server(t, true)
	steps := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"create", []string{"members", "create", "--account", "111122223333", "--region", "us-east-1", "--members", "444455556666,555566667777"}, 0, `"UnprocessedAccounts": []`, ""},
		// A second administrator in the Region is refused with a clear error.
		{"second administrator", []string{"members", "create", "--account", "222233334444", "--region", "us-east-1", "--members", "444455556666"}, 1,
			`"AccountId": "444455556666"`, "is a member of administrator 111122223333"},
		{"bad member", []string{"members", "create", "--account", "111122223333", "--region", "us-east-1", "--members", "4444"}, 2, "", `--members: "4444" is not an AWS account id`},
		{"disassociate", []string{"members", "disassociate", "--account", "111122223333", "--region", "us-east-1", "--account-ids", "555566667777"}, 0, `"UnprocessedAccounts": []`, ""},
		{"disassociate a stranger", []string{"members", "disassociate", "--account", "111122223333", "--region", "us-east-1", "--members", "999900001111"}, 1, "", "not a member of this administrator"},
		{"list", []string{"members", "list", "--account", "111122223333", "--region", "us-east-1"}, 0, `"RelationshipStatus": "DISASSOCIATED"`, ""},
	}
	for _, s := range steps {
		r := gdx(t, "", append(s.args, "--nats-url", url)...)
		if r.code != s.wantCode || !strings.Contains(r.stdout, s.wantOut) || !strings.Contains(r.stderr, s.wantErr) {
			t.Errorf("%s: exit %d (want %d)\nstdout %s\nstderr %s\nwant stdout with %q, stderr with %q", s.name, r.code, s.wantCode, r.stdout, r.stderr, s.wantOut, s.wantErr)
		}
	}
}

// TestControlWithoutBuckets gives a clear error when `gdexport run` has not
// created the buckets yet, and when no server answers.
func TestControlWithoutBuckets(t *testing.T) {
	url := server(t, false)
	r := gdx(t, "", "filter", "list", "--nats-url", url, "--account", "111122223333", "--region", "us-east-1")
	if r.code != 1 || !strings.Contains(r.stderr, "KV bucket gdexport_filters does not exist") || !strings.Contains(r.stderr, "gdexport run") {
		t.Errorf("no buckets: exit %d, %s", r.code, r.stderr)
	}
	r = gdx(t, "", "members", "list", "--nats-url", "nats://127.0.0.1:1", "--account", "111122223333", "--region", "us-east-1")
	if r.code != 1 || !strings.Contains(r.stderr, "connect to NATS at nats://127.0.0.1:1") {
		t.Errorf("no server: exit %d, %s", r.code, r.stderr)
	}
}

// filter test with --account of an enabled member judges as the pipeline
// does: the administrator's filters first, then the member's own.
func TestFilterTestJudgesMembersByTheirAdministrator(t *testing.T) {
	url := server(t, true)
	admin, member, region := "111122223333", "444455556666", "us-east-1"
	if r := gdx(t, "", "filter", "create", "--nats-url", url, "--account", admin, "--region", region, "--name", "admin-suppresses-all",
		"--action", "ARCHIVE", "--finding-criteria", `{"Criterion":{"severity":{"Gte":0}}}`); r.code != 0 {
		t.Fatalf("filter create: %d %s", r.code, r.stderr)
	}
	finding := writeFile(t, "member.json", `{"accountId":"444455556666","region":"us-east-1","id":"memberfinding","type":"T","updatedAt":"2026-11-30T10:00:00Z","severity":5,"service":{"archived":false}}`)
	test := func() result {
		return gdx(t, "", "filter", "test", "--nats-url", url, "--account", member, "--region", region, finding)
	}
	if r := test(); r.code != 0 || !strings.Contains(r.stdout, "memberfinding keep") {
		t.Errorf("before membership: exit %d %q, want keep", r.code, r.stdout)
	}
	if r := gdx(t, "", "members", "create", "--nats-url", url, "--account", admin, "--region", region, "--members", member); r.code != 0 {
		t.Fatalf("members create: %d %s", r.code, r.stderr)
	}
	if r := test(); r.code != 0 || !strings.Contains(r.stdout, "memberfinding archive admin-suppresses-all") {
		t.Errorf("enabled member: exit %d %q, want the administrator's filter to archive it", r.code, r.stdout)
	}
}
