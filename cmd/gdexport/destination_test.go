package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gdexport/gdexport/pipeline/assemble"
	"github.com/gdexport/gdexport/pipeline/config"
)

const (
	testBucketARN = "arn:aws:s3:::my-findings-bucket/guardduty"
	testKeyARN    = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	testKeyARN2   = "arn:aws:kms:us-east-1:111122223333:key/0000abcd-12ab-34cd-56ef-1234567890ab"
)

// describe runs destination describe and decodes its output.
func describe(t *testing.T, url, id string) map[string]any {
	t.Helper()
	r := gdx(t, "", "destination", "describe", "--nats-url", url, "--account", "111122223333", "--region", "us-east-1", "--destination-id", id)
	if r.code != 0 {
		t.Fatalf("describe %s: exit %d: %s", id, r.code, r.stderr)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("describe output %s: %v", r.stdout, err)
	}
	return v
}

// TestDestinationCommands runs every destination command against an
// embedded NATS without a worker: verification is deferred to the
// workers, so nothing needs AWS.
func TestDestinationCommands(t *testing.T) {
	url := server(t, true)
	det := []string{"--nats-url", url, "--account", "111122223333", "--region", "us-east-1"}
	cmd := func(args ...string) []string { return append(args, det...) }

	// The AWS CLI's shorthand.
	r := gdx(t, "", cmd("destination", "create", "--destination-type", "S3",
		"--destination-properties", "DestinationArn="+testBucketARN+",KmsKeyArn="+testKeyARN)...)
	if r.code != 0 {
		t.Fatalf("create: exit %d: %s", r.code, r.stderr)
	}
	var created map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || len(created["destinationId"]) != 32 {
		t.Fatalf("create output %q: %v", r.stdout, err)
	}
	id := created["destinationId"]
	v := describe(t, url, id)
	props, _ := v["destinationProperties"].(map[string]any)
	if v["status"] != "PENDING_VERIFICATION" || v["destinationType"] != "S3" || v["publishingFailureStartTimestamp"] != float64(0) ||
		props["destinationArn"] != testBucketARN || props["kmsKeyArn"] != testKeyARN || v["prefix"] != "guardduty" || v["encryption"] != "sse-kms" {
		t.Fatalf("describe after create: %v", v)
	}

	steps := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // fragment of stdout
		wantErr  string // fragment of stderr
	}{
		// The same bucket and prefix again is the same destination.
		{"create twice", cmd("destination", "create", "--destination-arn", testBucketARN, "--kms-key-arn", testKeyARN), 1, "", "already exists"},
		// The same as JSON, camelCase, for another prefix.
		{"create JSON", cmd("destination", "create", "--destination-properties",
			`{"destinationArn":"arn:aws:s3:::my-findings-bucket/team-b","kmsKeyArn":"`+testKeyARN+`"}`, "--endpoint", "http://127.0.0.1:9000"), 0, `"destinationId"`, ""},
		{"create LOCAL", cmd("destination", "create", "--destination-type", "LOCAL", "--root", t.TempDir()), 0, `"destinationId"`, ""},
		// Bad input names the value and what was expected (exit 2).
		{"bad type", cmd("destination", "create", "--destination-type", "FTP", "--destination-arn", testBucketARN), 2, "", `--destination-type "FTP": expected S3 or LOCAL`},
		{"bad ARN", cmd("destination", "create", "--destination-arn", "arn:aws:s3:::Bad_Bucket", "--kms-key-arn", testKeyARN), 2, "", "--destination-arn (DestinationArn)"},
		{"bad key", cmd("destination", "create", "--destination-arn", testBucketARN, "--kms-key-arn", "arn:aws:kms:us-east-1:1:key/x"), 2, "", "--kms-key-arn (KmsKeyArn)"},
		{"no key", cmd("destination", "create", "--destination-arn", "arn:aws:s3:::other-bucket"), 2, "", "needs a KMS key ARN"},
		{"no ARN", cmd("destination", "create", "--kms-key-arn", testKeyARN), 2, "", "an S3 destination needs --destination-properties DestinationArn="},
		{"unknown property", cmd("destination", "create", "--destination-properties", "DestinationArn="+testBucketARN+",Colour=blue"), 2, "", `unknown property "Colour"`},
		{"shorthand without =", cmd("destination", "create", "--destination-properties", "arn:aws:s3:::b"), 2, "", "expected DestinationArn=ARN,KmsKeyArn=ARN"},
		{"both forms", cmd("destination", "create", "--destination-properties", "DestinationArn="+testBucketARN, "--destination-arn", testBucketARN), 2, "", "exclude each other"},
		{"create bucket for LOCAL", cmd("destination", "create", "--destination-type", "LOCAL", "--root", "/tmp/x", "--create-bucket"), 2, "", "--create-bucket needs an S3 destination"},
		{"bad encryption", cmd("destination", "create", "--destination-arn", "arn:aws:s3:::b-bucket", "--kms-key-arn", testKeyARN, "--encryption", "rot13"), 2, "", `--encryption: "rot13": expected sse-kms or envelope`},
		{"bad id", cmd("destination", "describe", "--destination-id", "xyz"), 2, "", `--destination-id "xyz" is not a destination id: expected 32 hexadecimal digits`},
		{"no id", cmd("destination", "restart"), 2, "", "--destination-id is required"},
		{"unknown id", cmd("destination", "describe", "--destination-id", strings.Repeat("0", 32)), 1, "", "destination not found"},
		{"bad account", []string{"destination", "list", "--nats-url", url, "--account", "1", "--region", "us-east-1"}, 2, "", `--account "1" is not an AWS account id`},
		// list is ListPublishingDestinations.
		{"list", cmd("destination", "list"), 0, `"destinationId": "` + id + `",
            "destinationType": "S3",
            "status": "PENDING_VERIFICATION"`, ""},
		// policy prints both documents for a named role.
		{"policy", cmd("destination", "policy", "--destination-id", id, "--principal", "arn:aws:iam::111122223333:role/gdexport"), 0, `"DenyIncorrectEncryptionHeader"`, ""},
		{"policy bad principal", cmd("destination", "policy", "--destination-id", id, "--principal", "gdexport"), 2, "", "--principal"},
		// update changes what is given and verifies again.
		{"update", cmd("destination", "update", "--destination-id", id, "--kms-key-arn", testKeyARN2), 0, "", ""},
		{"update bad", cmd("destination", "update", "--destination-id", id, "--key-account", "everyone"), 2, "", `--key-account: "everyone"`},
		{"restart", cmd("destination", "restart", "--destination-id", id), 0, "", ""},
		// status lists it, and fails while it is not PUBLISHING (no worker verifies here).
		{"status", []string{"status", "--nats-url", url}, 1, "PENDING_VERIFICATION", "not PUBLISHING"},
	}
	for _, s := range steps {
		r := gdx(t, "", s.args...)
		if r.code != s.wantCode || !strings.Contains(r.stdout, s.wantOut) || !strings.Contains(r.stderr, s.wantErr) {
			t.Errorf("%s: exit %d (want %d)\nstdout %s\nstderr %s\nwant stdout with %q, stderr with %q", s.name, r.code, s.wantCode, r.stdout, r.stderr, s.wantOut, s.wantErr)
		}
	}
	v = describe(t, url, id)
	props, _ = v["destinationProperties"].(map[string]any)
	health, _ := v["health"].(map[string]any)
	if props["kmsKeyArn"] != testKeyARN2 || v["status"] != "PENDING_VERIFICATION" || health["reason"] != "restarted" || v["destinationId"] != id {
		t.Fatalf("describe after update and restart: %v", v)
	}
	r = gdx(t, "", cmd("destination", "policy", "--destination-id", id, "--principal", "arn:aws:iam::111122223333:role/gdexport")...)
	var pol struct {
		BucketPolicy struct {
			Statement []map[string]any `json:"Statement"`
		} `json:"bucketPolicy"`
		KeyPolicyStatement map[string]any `json:"keyPolicyStatement"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &pol); err != nil || len(pol.BucketPolicy.Statement) < 5 || pol.KeyPolicyStatement["Resource"] != testKeyARN2 {
		t.Fatalf("policy output %s: %v", r.stdout, err)
	}
	if r := gdx(t, "", cmd("destination", "delete", "--destination-id", id)...); r.code != 0 {
		t.Fatalf("delete: exit %d: %s", r.code, r.stderr)
	}
	if r := gdx(t, "", cmd("destination", "describe", "--destination-id", id)...); r.code != 1 || !strings.Contains(r.stderr, "destination not found") {
		t.Fatalf("describe after delete: exit %d: %s", r.code, r.stderr)
	}
	if r := gdx(t, "", cmd("destination", "delete", "--destination-id", id)...); r.code != 1 {
		t.Fatalf("delete twice: exit %d: %s", r.code, r.stderr)
	}
}

// TestDestinationVerifiedByWorker creates a LOCAL destination while a
// worker runs: create --wait returns once the worker has verified it.
func TestDestinationVerifiedByWorker(t *testing.T) {
	url := server(t, false)
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, NATS: config.NATS{URL: url}, HTTP: config.HTTP{Listen: "127.0.0.1:0"},
		RetryInitial: config.Duration(200 * time.Millisecond)}
	cfg.ApplyDefaults()
	runWorker(t, assemble.Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), SummaryEvery: -1})
	det := []string{"--nats-url", url, "--data-dir", dir, "--account", "111122223333", "--region", "us-east-1"}
	root := filepath.Join(dir, "export-a")
	r := gdx(t, "", append([]string{"destination", "create", "--destination-type", "LOCAL", "--root", root, "--wait", "20s"}, det...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "PUBLISHING"`) || !strings.Contains(r.stdout, `"verifiedAt"`) {
		t.Fatalf("create --wait: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A root that cannot be a directory fails verification: UNABLE, exit 1.
	bad := filepath.Join(dir, "export-a", "gdexport-file")
	if err := writeFileAt(bad); err != nil {
		t.Fatal(err)
	}
	r = gdx(t, "", append([]string{"destination", "create", "--destination-type", "LOCAL", "--root", filepath.Join(bad, "sub"), "--wait", "20s"}, det...)...)
	if r.code != 1 || !strings.Contains(r.stdout, `"status": "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"`) || !strings.Contains(r.stderr, "not a directory") {
		t.Fatalf("create --wait of a broken root: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func writeFileAt(p string) error { return os.WriteFile(p, []byte("a file, not a directory"), 0o644) }

// runWorker starts an in-process worker, waits until it is ready (30 s at
// most) and stops it when the test ends.
func runWorker(t *testing.T, opts assemble.Options) *assemble.Worker {
	t.Helper()
	w := assemble.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("worker: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker not ready")
	}
	return w
}
