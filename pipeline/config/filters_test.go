package config

import (
	"strings"
	"testing"
)

// designExample is DESIGN.md §3's configuration example, which must stay
// valid.
const designExample = `
nats:        {url: "", listen: "127.0.0.1:4222", storeDir: "", replicas: 1}
http:        {listen: "127.0.0.1:8480"}
newFindingDelay: 5s
defaultDestination: {destinationType: LOCAL, root: ./data/export, encryption: envelope, keyFile: ./data/keys/local-master.key}
eventBus:
  nats: {enabled: true}
  eventbridge: {eventBusName: "", source: gdexport.guardduty, endpoint: ""}
detectors:
  - account: "111122223333"
    region: us-east-1
    findingPublishingFrequency: SIX_HOURS
    members: ["444455556666"]
    destinations:
      - destinationType: S3
        destinationProperties:
          destinationArn: arn:aws:s3:::my-findings-bucket/guardduty
          kmsKeyArn: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
        encryption: sse-kms
        endpoint: ""
    filters:
      - {name: suppress-test-domain, action: ARCHIVE, rank: 1, findingCriteria: {criterion: {}}}
`

func TestDesignExampleIsValid(t *testing.T) {
	c, err := Parse([]byte(designExample))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateFiltersMembersKeyAccount(t *testing.T) {
	head := "detectors:\n  - account: \"111122223333\"\n    region: us-east-1\n"
	tests := []struct {
		name string
		yaml string
		// want is every "path: message" fragment Validate must report; nil
		// means valid.
		want []string
	}{
		// Filters in camelCase and PascalCase criteria, with ranges and lists.
		{"valid filters", head + `    filters:
      - name: suppress-dns
        action: ARCHIVE
        findingCriteria:
          criterion:
            service.action.dnsRequestAction.domain: {eq: ["test.example.com"]}
            service.archived: {eq: ["false"]}
      - name: high-severity-view
        findingCriteria: {Criterion: {severity: {GreaterThanOrEqual: 7}, updatedAt: {Gte: "2024-01-01T00:00:00Z"}}}
`, nil},
		// An unknown attribute is reported at its YAML path.
		{"unknown attribute", head + `    filters:
      - {name: first-rule, findingCriteria: {criterion: {type: {eq: ["x"]}}}}
      - {name: second-rule, findingCriteria: {criterion: {foo: {eq: ["x"]}}}}
`, []string{`detectors[0].filters[1].findingCriteria.criterion.foo: unknown attribute "foo"`}},
		// Unknown operators, wrong value types and too many values likewise.
		{"operator and values", head + `    filters:
      - {name: rule-one, findingCriteria: {criterion: {type: {like: ["x"]}, severity: {eq: [8]}}}}
`, []string{`detectors[0].filters[0].findingCriteria.criterion.type.like: unknown operator "like"`,
			`detectors[0].filters[0].findingCriteria.criterion.severity.eq[0]: 8 is not a string`}},
		// Name, action and rank rules.
		{"name action rank", head + `    filters:
      - {name: ab, action: DROP, rank: 101, findingCriteria: {criterion: {}}}
`, []string{`detectors[0].filters[0].name: "ab" is not a filter name`, `detectors[0].filters[0].action: "DROP"`, `detectors[0].filters[0].rank: 101 is out of range`}},
		// Names are unique per detector.
		{"duplicate names", head + `    filters:
      - {name: same-name, findingCriteria: {criterion: {}}}
      - {name: same-name, findingCriteria: {criterion: {}}}
`, []string{`detectors[0].filters[1].name: "same-name" is already the name of filters[0]`}},
		// A filter needs criteria.
		{"missing criteria", head + `    filters:
      - {name: no-criteria}
`, []string{`detectors[0].filters[0].findingCriteria: missing`}},
		// A member has at most one administrator per Region.
		{"two administrators", head + `    members: ["444455556666"]
  - account: "999988887777"
    region: us-east-1
    members: ["444455556666"]
`, []string{`detectors[1].members[0]: "444455556666" is already a member of detectors[0] (account 111122223333) in us-east-1`}},
		// ... but one per Region: the same member under two Regions is fine.
		{"two Regions", head + `    members: ["444455556666"]
  - account: "999988887777"
    region: eu-west-1
    members: ["444455556666"]
`, nil},
		// A member cannot have members.
		{"nested members", head + `    members: ["444455556666"]
  - account: "444455556666"
    region: us-east-1
    members: ["555566667777"]
`, []string{`detectors[1].members: account 444455556666 is itself a member of detectors[0]`}},
		// A member listed twice.
		{"member twice", head + `    members: ["444455556666", "444455556666"]
`, []string{`detectors[0].members[1]: "444455556666" is listed twice`}},
		// keyAccount is administrator or owner.
		{"keyAccount", head + `    destinations:
      - {destinationType: LOCAL, root: /tmp/x, keyAccount: member}
`, []string{`detectors[0].destinations[0].keyAccount: "member"`}},
		// keyAccount owner is accepted.
		{"keyAccount owner", head + `    destinations:
      - {destinationType: LOCAL, root: /tmp/x, keyAccount: owner}
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			c.ApplyDefaults()
			err = c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted; want problems")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("problems\n%v\ndo not contain %q", err, w)
				}
			}
		})
	}
}

// TestFilterRankDefaultsToPosition documents the default rank.
func TestFilterRankDefaultsToPosition(t *testing.T) {
	c, err := Parse([]byte("detectors:\n  - account: \"111122223333\"\n    region: us-east-1\n    filters:\n      - {name: aaa, findingCriteria: {criterion: {}}}\n      - {name: bbb, rank: 7, findingCriteria: {criterion: {}}}\n      - {name: ccc, findingCriteria: {criterion: {}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	var got []int
	for _, f := range c.Detectors[0].Filters {
		got = append(got, f.Rank)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 7 || got[2] != 3 {
		t.Errorf("ranks = %v, want [1 7 3]", got)
	}
}
