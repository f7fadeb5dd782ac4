package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateS3Destination(t *testing.T) {
	const keyArn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	const base = "detectors[0].destinations[0]."
	cases := []struct {
		name string
		dest Destination
		path string // "" when valid
		msg  string
	}{
		{
			// The design brief's example.
			name: "valid",
			dest: Destination{DestinationType: "S3", Encryption: "sse-kms", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::my-findings-bucket/guardduty", KmsKeyArn: keyArn}},
		},
		{
			// MinIO's built-in key has a bare name; the endpoint override allows it.
			name: "bare key id with endpoint",
			dest: Destination{DestinationType: "S3", Endpoint: "http://127.0.0.1:9000", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1", KmsKeyArn: "gdexport-key"}},
		},
		{
			// Envelope without a KMS key uses the local key file.
			name: "envelope without key",
			dest: Destination{DestinationType: "S3", Encryption: "envelope", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1"}},
		},
		{
			name: "cross-account role",
			dest: Destination{DestinationType: "S3", RoleArn: "arn:aws:iam::444455556666:role/gdexport-writer", ExternalID: "gdexport-7",
				DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1", KmsKeyArn: keyArn}},
		},
		{
			name: "bad bucket name",
			dest: Destination{DestinationType: "S3", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::Bad_Bucket", KmsKeyArn: keyArn}},
			path: base + "destinationProperties.destinationArn", msg: "invalid S3 bucket name \"Bad_Bucket\"",
		},
		{
			name: "prefix escapes",
			dest: Destination{DestinationType: "S3", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1/../x", KmsKeyArn: keyArn}},
			path: base + "destinationProperties.destinationArn", msg: "must not contain ..",
		},
		{
			// Two prefixes would silently pick one.
			name: "prefix in two places",
			dest: Destination{DestinationType: "S3", Prefix: "a", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1/b", KmsKeyArn: keyArn}},
			path: base + "prefix", msg: "differs from the prefix",
		},
		{
			name: "missing key",
			dest: Destination{DestinationType: "S3", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1"}},
			path: base + "destinationProperties.kmsKeyArn", msg: "needs a KMS key ARN",
		},
		{
			// Against AWS a bare key id cannot be written into a bucket policy.
			name: "bare key id without endpoint",
			dest: Destination{DestinationType: "S3", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1", KmsKeyArn: "1234abcd-12ab-34cd-56ef-1234567890ab"}},
			path: base + "destinationProperties.kmsKeyArn", msg: "only with an endpoint override",
		},
		{
			name: "key of another partition",
			dest: Destination{DestinationType: "S3", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws-cn:s3:::bucket-1", KmsKeyArn: keyArn}},
			path: base + "destinationProperties.kmsKeyArn", msg: "partition aws",
		},
		{
			name: "bad endpoint",
			dest: Destination{DestinationType: "S3", Endpoint: "127.0.0.1:9000", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1", KmsKeyArn: keyArn}},
			path: base + "endpoint", msg: "not an endpoint URL",
		},
		{
			name: "bad role",
			dest: Destination{DestinationType: "S3", RoleArn: "gdexport-writer", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1", KmsKeyArn: keyArn}},
			path: base + "roleArn", msg: "not an IAM role ARN",
		},
		{
			name: "external id without role",
			dest: Destination{DestinationType: "S3", ExternalID: "x1", DestinationProperties: DestinationProperties{DestinationArn: "arn:aws:s3:::bucket-1", KmsKeyArn: keyArn}},
			path: base + "externalId", msg: "only used with roleArn",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{Detectors: []Detector{{Account: "111122223333", Region: "us-east-1", Destinations: []Destination{tc.dest}}}}
			err := c.Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want Problems", err)
			}
			for _, p := range ps {
				if p.Path == tc.path && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("problems %v, want %s: …%s…", ps, tc.path, tc.msg)
		})
	}
}

func TestValidateEventBridge(t *testing.T) {
	cases := []struct {
		name string
		eb   EventBridge
		path string // "" when valid
	}{
		{name: "name", eb: EventBridge{EventBusName: "gdexport-findings", Source: "gdexport.guardduty"}},
		{name: "arn", eb: EventBridge{EventBusName: "arn:aws:events:us-east-1:111122223333:event-bus/gdexport"}},
		// EventBridge refuses aws.* sources from anyone but AWS.
		{name: "aws source", eb: EventBridge{EventBusName: "b", Source: "aws.guardduty"}, path: "eventBus.eventbridge.source"},
		{name: "bad name", eb: EventBridge{EventBusName: "my bus"}, path: "eventBus.eventbridge.eventBusName"},
		{name: "queue arn", eb: EventBridge{EventBusName: "arn:aws:sqs:us-east-1:111122223333:q"}, path: "eventBus.eventbridge.eventBusName"},
		{name: "bad endpoint", eb: EventBridge{EventBusName: "b", Endpoint: "localhost:4010"}, path: "eventBus.eventbridge.endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := (&Config{EventBus: EventBus{EventBridge: tc.eb}}).Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Path != tc.path {
				t.Fatalf("err = %v, want one problem at %s", err, tc.path)
			}
		})
	}
}

// The export-health settings: durations that make sense, a webhook URL.
func TestValidateHealthSettings(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		path string // "" when valid
		msg  string
	}{
		// Every field given.
		{"valid", "failureThreshold: 10m\ndisableAfter: 48h\nretryInitial: 1s\nretryMax: 1m\nnotifications: {webhook: https://hooks.example.com/gdexport}\n", "", ""},
		{"negative threshold", "failureThreshold: -1m\n", "failureThreshold", "must not be negative"},
		{"initial above max", "retryInitial: 10m\nretryMax: 1m\n", "retryInitial", "longer than retryMax"},
		{"webhook not a URL", "notifications: {webhook: hooks.example.com}\n", "notifications.webhook", "is not a URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			c.ApplyDefaults()
			err = c.Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 || ps[0].Path != tc.path || !strings.Contains(ps[0].Message, tc.msg) {
				t.Fatalf("problems %v, want %s: …%s…", err, tc.path, tc.msg)
			}
		})
	}
	c := &Config{}
	c.ApplyDefaults()
	if c.FailureThreshold.D().String() != "5m0s" || c.DisableAfter.D().String() != "24h0m0s" || c.RetryInitial.D().String() != "5s" || c.RetryMax.D().String() != "5m0s" {
		t.Fatalf("defaults %s %s %s %s", c.FailureThreshold.D(), c.DisableAfter.D(), c.RetryInitial.D(), c.RetryMax.D())
	}
}
