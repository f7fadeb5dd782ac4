package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseAndDefaults(t *testing.T) {
	c, err := Parse([]byte(`
newFindingDelay: 2s
defaultDestination: {destinationType: LOCAL}
detectors:
  - account: "111122223333"
    region: us-east-1
    destinations:
      - destinationType: S3
        destinationProperties:
          destinationArn: arn:aws:s3:::my-findings-bucket/guardduty
          kmsKeyArn: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
`))
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data dir", c.DataDir, "./data"},
		{"listen", c.NATS.Listen, "127.0.0.1:4222"},
		{"store", c.NATS.StoreDir, "data/nats"},
		{"http", c.HTTP.Listen, "127.0.0.1:8480"},
		{"delay as written", c.NewFindingDelay.D(), 2 * time.Second},
		{"retention", c.Retention.D(), 90 * 24 * time.Hour},
		{"default root", c.DefaultDestination.Root, "data/export"},
		{"default key", c.DefaultDestination.KeyFile, "data/keys/local-master.key"},
		// Omitted, the frequency stays empty: apply keeps the stored one.
		{"frequency", c.Detectors[0].FindingPublishingFrequency, ""},
		{"S3 encryption", c.Detectors[0].Destinations[0].Encryption, "sse-kms"},
		{"eventbridge source", c.EventBus.EventBridge.Source, "gdexport.guardduty"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// An unknown field is a typo that must not fall back to a default.
func TestParseRefusesUnknownFields(t *testing.T) {
	_, err := Parse([]byte("newFindingDelai: 5s\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "newFindingDelai") {
		t.Fatalf("err = %v, want it to name the unknown field", err)
	}
}

func TestValidateNamesEveryProblemWithItsPath(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"short account", `detectors: [{account: "12345", region: us-east-1}]`,
			[]string{`detectors[0].account: "12345" is not an AWS account id`}},
		{"bad region and frequency", `detectors: [{account: "111122223333", region: mars-1, findingPublishingFrequency: HOURLY}]`,
			[]string{`detectors[0].region: "mars-1"`, `detectors[0].findingPublishingFrequency: "HOURLY"`}},
		{"duplicate detector", `detectors: [{account: "111122223333", region: us-east-1}, {account: "111122223333", region: us-east-1}]`,
			[]string{"detectors[1]: account 111122223333 in us-east-1 is already declared by detectors[0]"}},
		{"S3 without ARN or key", `detectors: [{account: "111122223333", region: us-east-1, destinations: [{destinationType: S3}]}]`,
			[]string{"detectors[0].destinations[0].destinationProperties.destinationArn:", "detectors[0].destinations[0].destinationProperties.kmsKeyArn:"}},
		{"escaping prefix", `defaultDestination: {destinationType: LOCAL, root: /tmp/x, prefix: "a/../b"}`,
			[]string{`defaultDestination.prefix: invalid object key prefix "a/../b": must not contain ..`}},
		{"absolute prefix", `defaultDestination: {destinationType: LOCAL, root: /tmp/x, prefix: "/abs"}`,
			[]string{`defaultDestination.prefix: invalid object key prefix "/abs": must not start with /`}},
		{"unknown type", `defaultDestination: {destinationType: FTP}`,
			[]string{`defaultDestination.destinationType: "FTP": expected S3 or LOCAL`}},
		{"delay too long", `newFindingDelay: 10m`, []string{"newFindingDelay: 10m0s is out of range"}},
		{"aws source", `eventBus: {eventbridge: {source: aws.guardduty}}`, []string{`eventBus.eventbridge.source: "aws.guardduty"`}},
		{"durability", `nats: {durability: paranoid}`, []string{`nats.durability: "paranoid": expected strict or fast`}},
		// A sub-second ack wait would redeliver work that live workers hold.
		{"ack wait override", `ackWaitOverride: 100ms`, []string{"ackWaitOverride: 100ms is too short"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != len(c.want) {
				t.Fatalf("problems = %v, want %d", err, len(c.want))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
