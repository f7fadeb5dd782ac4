package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/export"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/sinks/s3"
)

func destinationCmd(g *globals) *cobra.Command {
	c := parentCmd(&cobra.Command{
		Use:   "destination",
		Short: "Publishing destinations as GuardDuty models them: create|describe|list|update|delete|restart|policy",
		Long: `Publishing destinations of a detector (--account and --region), as GuardDuty's
CreatePublishingDestination, DescribePublishingDestination, ListPublishingDestinations,
UpdatePublishingDestination and DeletePublishingDestination; 'restart' resumes a STOPPED
destination and 'policy' prints the bucket policy and key policy statement gdexport needs.

A destination is created PENDING_VERIFICATION; a worker verifies it with its own credentials
(the bucket exists and its Region is read, the key is usable, a probe object can be written)
and makes it PUBLISHING. On an export access error it becomes
UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY (with publishingFailureStartTimestamp) and its
findings wait in JetStream; after disableAfter (24h) unresolved it is STOPPED. 'update' and
'restart' verify it again and export what waited.`,
	})
	c.AddCommand(destCreateCmd(g), destDescribeCmd(g), destListCmd(g), destUpdateCmd(g), destDeleteCmd(g), destRestartCmd(g), destPolicyCmd(g))
	return c
}

// destCtl is what the destination commands work with.
type destCtl struct {
	ds       *state.Destinations
	statusKV jetstream.KeyValue
	batches  jetstream.Stream
}

// openDestinations connects to NATS and opens the destinations and
// statuses `gdexport run` keeps.
func openDestinations(ctx context.Context, g *globals) (*destCtl, func(), error) {
	nc, js, err := connectJS(g)
	if err != nil {
		return nil, nil, err
	}
	kvs, err := openKVs(ctx, g, js, natsx.BucketDestinations, natsx.BucketStatus)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	batches, err := js.Stream(bctx, natsx.StreamBatches)
	if err != nil {
		nc.Close()
		return nil, nil, failf("stream %s at %s: %v (start `gdexport run` against this server once)", natsx.StreamBatches, g.clientURL(), err)
	}
	statuses := state.NewStatuses(kvs[1], nil, state.WithNotifier(state.NATSNotifier{JS: js}))
	return &destCtl{ds: state.NewDestinations(kvs[0], statuses), statusKV: kvs[1], batches: batches}, nc.Close, nil
}

// destProps are the flags that describe a destination: GuardDuty's and the
// destination-level settings of the configuration file.
type destProps struct {
	destType, properties, arn, kmsKey, root, prefix, encryption     string
	keyFile, endpoint, kmsEndpoint, roleArn, externalID, keyAccount string
}

func (p *destProps) add(c *cobra.Command, create bool) {
	f := c.Flags()
	if create {
		f.StringVar(&p.destType, "destination-type", "S3", "S3 (GuardDuty's) or LOCAL (a directory with the same layout)")
	}
	f.StringVar(&p.properties, "destination-properties", "", `DestinationArn=ARN,KmsKeyArn=ARN (the AWS CLI's shorthand), the same as JSON {"DestinationArn":…,"KmsKeyArn":…}, or file://FILE`)
	f.StringVar(&p.arn, "destination-arn", "", "bucket ARN, with an optional prefix: arn:aws:s3:::my-bucket/guardduty")
	f.StringVar(&p.kmsKey, "kms-key-arn", "", "KMS key ARN (in the bucket's Region); with --endpoint also a key id of the store's KMS")
	f.StringVar(&p.root, "root", "", "directory of a LOCAL destination (a relative path is made absolute here; workers must see the same path)")
	f.StringVar(&p.prefix, "prefix", "", "key prefix (S3: the ARN's path by default; it may repeat it but not differ)")
	f.StringVar(&p.encryption, "encryption", "", "sse-kms (S3's default) or envelope (client-side; LOCAL's only mode)")
	f.StringVar(&p.keyFile, "key-file", "", "local master key file of an envelope destination without a KMS key (default <data-dir>/keys/local-master.key)")
	f.StringVar(&p.endpoint, "endpoint", "", "S3-compatible endpoint, such as http://127.0.0.1:9000 (path-style requests)")
	f.StringVar(&p.kmsEndpoint, "kms-endpoint", "", "KMS endpoint override (an emulator such as local-kms)")
	f.StringVar(&p.roleArn, "role-arn", "", "IAM role assumed to write a bucket in another account")
	f.StringVar(&p.externalID, "external-id", "", "external id for --role-arn")
	f.StringVar(&p.keyAccount, "key-account", "", "administrator (default: AWSLogs/<destination owner>/…) or owner (each finding's own account)")
	// The AWS CLI's detector and idempotency flags, accepted so that its
	// commands can be pasted; --account and --region select the detector.
	f.String("detector-id", "", "ignored: --account and --region select the detector")
	f.String("client-token", "", "ignored")
	f.String("tags", "", "ignored: gdexport keeps no tags")
	_ = f.MarkHidden("detector-id")
	_ = f.MarkHidden("client-token")
	_ = f.MarkHidden("tags")
}

// parseProperties reads --destination-properties in the AWS CLI's
// shorthand (DestinationArn=…,KmsKeyArn=…), as JSON, or from file://FILE;
// keys in PascalCase or camelCase.
func parseProperties(g *globals, v string) (arn, key string, err error) {
	s := strings.TrimSpace(v)
	if strings.HasPrefix(s, "file://") || s == "-" {
		b, err := readArg(g, "--destination-properties", s)
		if err != nil {
			return "", "", err
		}
		s = strings.TrimSpace(string(b))
	}
	fields := map[string]string{}
	if strings.HasPrefix(s, "{") {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return "", "", usagef("--destination-properties: not JSON (%v): expected {\"DestinationArn\": \"arn:aws:s3:::bucket\", \"KmsKeyArn\": \"arn:aws:kms:…\"}", err)
		}
		for k, val := range m {
			str, ok := val.(string)
			if !ok {
				return "", "", usagef("--destination-properties: %s must be a string, got %v", k, val)
			}
			fields[k] = str
		}
	} else {
		for _, part := range strings.Split(s, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k == "" {
				return "", "", usagef("--destination-properties %q: expected DestinationArn=ARN,KmsKeyArn=ARN (or JSON)", v)
			}
			fields[k] = strings.TrimSpace(val)
		}
	}
	for k, val := range fields {
		switch strings.ToLower(k) {
		case "destinationarn":
			arn = val
		case "kmskeyarn":
			key = val
		default:
			return "", "", usagef("--destination-properties: unknown property %q: expected DestinationArn and KmsKeyArn", k)
		}
	}
	return arn, key, nil
}

// flagOf names the flag behind a destination problem's path.
var flagOf = map[string]string{
	".destinationType":                      "--destination-type",
	".destinationProperties.destinationArn": "--destination-arn (DestinationArn)",
	".destinationProperties.kmsKeyArn":      "--kms-key-arn (KmsKeyArn)",
	".root":                                 "--root",
	".prefix":                               "--prefix",
	".encryption":                           "--encryption",
	".endpoint":                             "--endpoint",
	".kmsEndpoint":                          "--kms-endpoint",
	".roleArn":                              "--role-arn",
	".externalId":                           "--external-id",
	".keyAccount":                           "--key-account",
}

// destProblems renders a destination's validation problems as a usage
// error naming the flags.
func destProblems(err error) error {
	var ps config.Problems
	if !errors.As(err, &ps) {
		return usagef("%v", err)
	}
	lines := make([]string, len(ps))
	for i, p := range ps {
		name := flagOf[p.Path]
		if name == "" {
			name = strings.TrimPrefix(p.Path, ".")
		}
		lines[i] = "  " + name + ": " + p.Message
	}
	if len(lines) == 1 {
		return usagef("%s", strings.TrimSpace(lines[0]))
	}
	return usagef("invalid destination: %d problems:\n%s", len(lines), strings.Join(lines, "\n"))
}

// apply writes the flags the user gave over cd.
func (p *destProps) apply(g *globals, c *cobra.Command, cd *config.Destination) error {
	f := c.Flags()
	if f.Changed("destination-properties") {
		arn, key, err := parseProperties(g, p.properties)
		if err != nil {
			return err
		}
		if arn != "" {
			if cd.DestinationProperties.DestinationArn != arn {
				cd.Prefix = "" // the new ARN's path is the prefix
			}
			cd.DestinationProperties.DestinationArn = arn
		}
		if key != "" {
			cd.DestinationProperties.KmsKeyArn = key
		}
	}
	if f.Changed("destination-properties") && (f.Changed("destination-arn") || f.Changed("kms-key-arn")) {
		return usagef("--destination-properties and --destination-arn/--kms-key-arn exclude each other: give the properties one way")
	}
	if f.Changed("destination-arn") {
		if cd.DestinationProperties.DestinationArn != p.arn {
			cd.Prefix = ""
		}
		cd.DestinationProperties.DestinationArn = p.arn
	}
	set := func(name string, dst *string, v string) {
		if f.Changed(name) {
			*dst = v
		}
	}
	set("kms-key-arn", &cd.DestinationProperties.KmsKeyArn, p.kmsKey)
	set("destination-type", &cd.DestinationType, strings.ToUpper(p.destType))
	set("root", &cd.Root, p.root)
	set("prefix", &cd.Prefix, p.prefix)
	set("encryption", &cd.Encryption, p.encryption)
	set("key-file", &cd.KeyFile, p.keyFile)
	set("endpoint", &cd.Endpoint, p.endpoint)
	set("kms-endpoint", &cd.KmsEndpoint, p.kmsEndpoint)
	set("role-arn", &cd.RoleArn, p.roleArn)
	set("external-id", &cd.ExternalID, p.externalID)
	set("key-account", &cd.KeyAccount, p.keyAccount)
	return nil
}

// build checks a destination and converts it to the stored form.
func buildDestination(g *globals, account, region string, cd *config.Destination) (*pipeline.Destination, error) {
	dataDir := g.dataDir
	if dataDir == "" {
		dataDir = "./data"
	}
	cd.ApplyDefaults(dataDir)
	if cd.DestinationType == "S3" && cd.DestinationProperties.DestinationArn == "" {
		return nil, usagef("an S3 destination needs --destination-properties DestinationArn=arn:aws:s3:::BUCKET[/PREFIX],KmsKeyArn=KEY-ARN (or --destination-arn and --kms-key-arn)")
	}
	if err := config.ValidateDestination("", cd); err != nil {
		return nil, destProblems(err)
	}
	return state.DestinationFromConfig(account, region, cd), nil
}

// toConfig is a stored destination in the configuration's shape, for an
// update to change.
func toConfig(d *pipeline.Destination) config.Destination {
	return config.Destination{
		DestinationType:       string(d.Type),
		DestinationProperties: config.DestinationProperties{DestinationArn: d.Arn, KmsKeyArn: d.KmsKeyArn},
		Root:                  d.Root, Prefix: d.Prefix, Encryption: d.Encryption, KeyFile: d.KeyFile, Endpoint: d.Endpoint,
		KmsEndpoint: d.KmsEndpoint, RoleArn: d.RoleArn, ExternalID: d.ExternalID, KeyAccount: d.KeyAccount,
	}
}

// checkID validates --destination-id.
func checkID(id string) error {
	if id == "" {
		return usagef("--destination-id is required (see 'gdexport destination list')")
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return usagef("--destination-id %q is not a destination id: expected 32 hexadecimal digits, as 'gdexport destination list' prints", id)
	}
	return nil
}

// findDestination returns the destination id of (account, region): one of
// its own, or the default destination acting for it (def true).
func (c *destCtl) find(ctx context.Context, account, region, id string) (d *pipeline.Destination, def bool, err error) {
	d, err = c.ds.Get(ctx, account, region, id)
	if err == nil {
		return d, false, nil
	}
	if !errors.Is(err, state.ErrDestinationNotFound) {
		return nil, false, err
	}
	if tmpl, ok, derr := c.ds.Default(ctx); derr == nil && ok {
		if inst := state.DefaultInstance(tmpl, account, region); inst.ID == id {
			return inst, true, nil
		}
	}
	return nil, false, failf("%v", err)
}

// openOne checks the detector flags and the destination id, opens the
// destination controls and finds destination id of the detector (or the
// default destination's instance acting for it). The caller closes.
func openOne(ctx context.Context, g *globals, d detectorFlags, id string) (ctl *destCtl, dest *pipeline.Destination, def bool, closeFn func(), err error) {
	if err := d.check(true); err != nil {
		return nil, nil, false, nil, err
	}
	if err := checkID(id); err != nil {
		return nil, nil, false, nil, err
	}
	ctl, closeFn, err = openDestinations(ctx, g)
	if err != nil {
		return nil, nil, false, nil, err
	}
	if dest, def, err = ctl.find(ctx, d.account, d.region, id); err != nil {
		closeFn()
		return nil, nil, false, nil, err
	}
	return ctl, dest, def, closeFn, nil
}

// destView is what describe prints: DescribePublishingDestination's shape
// (camelCase) and gdexport's own fields.
type destView struct {
	DestinationID                   string        `json:"destinationId"`
	DestinationType                 string        `json:"destinationType"`
	Status                          string        `json:"status"`
	PublishingFailureStartTimestamp int64         `json:"publishingFailureStartTimestamp"`
	DestinationProperties           destPropsView `json:"destinationProperties"`
	Tags                            struct{}      `json:"tags"`

	Account     string `json:"account"`
	Region      string `json:"region"`
	Default     bool   `json:"default,omitempty"`
	Encryption  string `json:"encryption,omitempty"`
	Prefix      string `json:"prefix,omitempty"`
	Root        string `json:"root,omitempty"`
	KeyFile     string `json:"keyFile,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	KmsEndpoint string `json:"kmsEndpoint,omitempty"`
	RoleArn     string `json:"roleArn,omitempty"`
	ExternalID  string `json:"externalId,omitempty"`
	KeyAccount  string `json:"keyAccount,omitempty"`

	Health  healthView   `json:"health"`
	Backlog *backlogView `json:"backlog,omitempty"`
}

type destPropsView struct {
	DestinationArn string `json:"destinationArn,omitempty"`
	KmsKeyArn      string `json:"kmsKeyArn,omitempty"`
}

type healthView struct {
	Since         string `json:"since,omitempty"`
	Reason        string `json:"reason,omitempty"`
	LastError     string `json:"lastError,omitempty"`
	LastErrorKind string `json:"lastErrorKind,omitempty"`
	LastErrorAt   string `json:"lastErrorAt,omitempty"`
	FailingSince  string `json:"failingSince,omitempty"`
	LastExport    string `json:"lastExport,omitempty"`
	VerifiedAt    string `json:"verifiedAt,omitempty"`
}

// backlogView is what waits for the destination in JetStream.
type backlogView struct {
	// Batches is how many sealed batches (objects) wait.
	Batches uint64 `json:"batches"`
	// OldestSealedAt is when the oldest was sealed; OldestExpiresAt when
	// it leaves JetStream (retention) unless exported before.
	OldestSealedAt  string `json:"oldestSealedAt,omitempty"`
	OldestExpiresAt string `json:"oldestExpiresAt,omitempty"`
}

func rfc3339(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func (c *destCtl) view(ctx context.Context, d *pipeline.Destination, def bool) (*destView, error) {
	st, _, found, err := c.ds.Statuses().Get(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	if !found || st.Deleted {
		st = state.Status{Status: pipeline.StatusPublishing}
	}
	v := &destView{
		DestinationID: d.ID, DestinationType: string(d.Type), Status: st.Status,
		PublishingFailureStartTimestamp: st.PublishingFailureStartTimestamp,
		DestinationProperties:           destPropsView{DestinationArn: d.Arn, KmsKeyArn: d.KmsKeyArn},
		Account:                         d.Account, Region: d.Region, Default: def, Encryption: d.Encryption, Prefix: d.Prefix,
		Root: d.Root, Endpoint: d.Endpoint, KmsEndpoint: d.KmsEndpoint, RoleArn: d.RoleArn, ExternalID: d.ExternalID, KeyAccount: d.KeyAccount,
		Health: healthView{Since: rfc3339(st.Since), Reason: st.Reason, LastError: st.LastError, LastErrorKind: st.LastErrorKind,
			LastErrorAt: rfc3339(st.LastErrorAt), FailingSince: rfc3339(st.FailingSince), LastExport: rfc3339(st.LastExport), VerifiedAt: rfc3339(st.VerifiedAt)},
	}
	if d.Encryption == pipeline.EncryptionEnvelope && d.KmsKeyArn == "" {
		v.KeyFile = d.KeyFile
	}
	v.Backlog = c.backlog(ctx, d.ID)
	return v, nil
}

// backlog reads the destination's parked batches (nil when it never had
// any).
func (c *destCtl) backlog(ctx context.Context, id string) *backlogView {
	cons, err := c.batches.Consumer(ctx, natsx.ParkedConsumer(id))
	if err != nil {
		return nil
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil
	}
	b := &backlogView{Batches: info.NumPending + uint64(info.NumAckPending)}
	if b.Batches == 0 {
		return b
	}
	m, err := c.batches.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(natsx.ParkedFilter(id)))
	if err != nil {
		return b
	}
	if batch, err := export.ParseBatch(m.Data); err == nil {
		b.OldestSealedAt = rfc3339(batch.SealedAt)
	}
	if si, err := c.batches.Info(ctx); err == nil && si.Config.MaxAge > 0 {
		b.OldestExpiresAt = m.Time.Add(si.Config.MaxAge).UTC().Format(time.RFC3339)
	}
	return b
}

// wait polls the destination's status until it leaves
// PENDING_VERIFICATION or timeout passes, then prints its description; it
// fails unless the destination is PUBLISHING.
func (c *destCtl) wait(ctx context.Context, g *globals, d *pipeline.Destination, def bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, _, found, err := c.ds.Statuses().Get(ctx, d.ID)
		if err != nil {
			return err
		}
		if !found || st.Status != pipeline.StatusPendingVerification {
			break
		}
		if time.Now().After(deadline) {
			return failf("destination %s is still PENDING_VERIFICATION after %s: a running worker verifies it (is one running against %s?)", d.ID, timeout, g.clientURL())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	v, err := c.view(ctx, d, def)
	if err != nil {
		return err
	}
	if err := printJSON(g.stdout, v); err != nil {
		return err
	}
	if v.Status != pipeline.StatusPublishing {
		return failf("destination %s is %s: %s", d.ID, v.Status, v.Health.LastError)
	}
	return nil
}

// s3Client is the S3 sink the commands call AWS with (the standard
// chain's credentials).
func s3Client() (*s3.Sink, error) {
	s, err := s3.New(s3.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return nil, failf("%v", err)
	}
	return s, nil
}

// principalFor is --principal, or who the standard chain says we are.
func principalFor(ctx context.Context, d *pipeline.Destination, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	sink, err := s3Client()
	if err != nil {
		return "", err
	}
	p, err := sink.CallerPrincipal(ctx, d)
	if err != nil {
		return "", failf("who is gdexport? %v: give its role with --principal arn:aws:iam::ACCOUNT:role/NAME", err)
	}
	return p, nil
}

func destCreateCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var p destProps
	var createBucket bool
	var principal string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "create --account A --region R --destination-properties DestinationArn=ARN,KmsKeyArn=ARN [--create-bucket]",
		Short: "Create a publishing destination (PENDING_VERIFICATION until a worker verifies it)",
		Long: `Create a publishing destination of the detector (--account, --region), as GuardDuty's
CreatePublishingDestination. The properties are given the AWS CLI's way
(--destination-type S3 --destination-properties DestinationArn=…,KmsKeyArn=…, or the same as
JSON or file://FILE) or with --destination-arn and --kms-key-arn. The ARN's path is the key
prefix. The other flags are the configuration file's destination settings.

The destination is stored PENDING_VERIFICATION and prints {"destinationId": …}. A running
worker verifies it with the credentials that will write it (bucket and Region, key, a write
probe) and makes it PUBLISHING, or UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY with the reason
('gdexport destination describe'). --wait DURATION waits for that and prints the description
instead (exit status 1 unless PUBLISHING).

--create-bucket first creates the bucket here, with the standard AWS credentials: every public
access block, default encryption with the key, and a bucket policy for gdexport's role
(--principal, default: the caller) that demands SSE-KMS with this key and TLS. Settings the
store does not implement are warned about and skipped.`,
		Example: `  gdexport destination create --account 111122223333 --region us-east-1 --destination-type S3 \
    --destination-properties DestinationArn=arn:aws:s3:::my-findings/guardduty,KmsKeyArn=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
  gdexport destination create --account 111122223333 --region us-east-1 --create-bucket \
    --destination-arn arn:aws:s3:::my-findings --kms-key-arn arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
  gdexport destination create --account 111122223333 --region us-east-1 --destination-type LOCAL --root /srv/guardduty-export`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			if t := strings.ToUpper(p.destType); t != "S3" && t != "LOCAL" {
				return usagef("--destination-type %q: expected S3 or LOCAL", p.destType)
			}
			var cd config.Destination
			if err := p.apply(g, cmd, &cd); err != nil {
				return err
			}
			cd.DestinationType = strings.ToUpper(p.destType)
			if createBucket && cd.DestinationType != "S3" {
				return usagef("--create-bucket needs an S3 destination, not %s", cd.DestinationType)
			}
			dest, err := buildDestination(g, d.account, d.region, &cd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ctl, closeFn, err := openDestinations(ctx, g)
			if err != nil {
				return err
			}
			defer closeFn()
			if _, err := ctl.ds.Get(ctx, dest.Account, dest.Region, dest.ID); err == nil {
				return failf("destination %s already exists for %s in account %s, %s: change it with 'gdexport destination update'", dest.ID, dest.Arn+dest.Root, dest.Account, dest.Region)
			}
			if createBucket {
				who, err := principalFor(ctx, dest, principal)
				if err != nil {
					return err
				}
				sink, err := s3Client()
				if err != nil {
					return err
				}
				warnings, err := sink.CreateBucket(ctx, dest, who)
				for _, w := range warnings {
					fmt.Fprintln(g.stderr, "gdexport: warning:", w)
				}
				if err != nil {
					if errors.Is(err, s3.ErrPrincipal) {
						return usagef("--principal: %v", err)
					}
					return failf("create bucket: %v", err)
				}
			}
			if _, err := ctl.ds.Create(ctx, dest); err != nil {
				if errors.Is(err, state.ErrDestinationExists) {
					return failf("%v", err)
				}
				return err
			}
			if wait > 0 {
				return ctl.wait(ctx, g, dest, false, wait)
			}
			return printJSON(g.stdout, map[string]string{"destinationId": dest.ID})
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	p.add(c, true)
	c.Flags().BoolVar(&createBucket, "create-bucket", false, "create the bucket first (public access blocked, default encryption, bucket policy)")
	c.Flags().StringVar(&principal, "principal", "", "gdexport's IAM role for the bucket policy (default: the caller, per STS)")
	c.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for verification, then print the description")
	return c
}

func destDescribeCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var id string
	c := &cobra.Command{
		Use:   "describe --account A --region R --destination-id ID",
		Short: "Print a destination with its status, as DescribePublishingDestination (plus health and backlog)",
		Long: `Print a destination as GuardDuty's DescribePublishingDestination does (destinationId,
destinationType, status, publishingFailureStartTimestamp in epoch milliseconds,
destinationProperties), plus gdexport's settings, its health (since, reason, lastError,
lastExport, verifiedAt) and its backlog: the sealed batches waiting for it in JetStream and
when the oldest expires. The id of the default destination acting for the account works
too.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctl, dest, def, closeFn, err := openOne(cmd.Context(), g, d, id)
			if err != nil {
				return err
			}
			defer closeFn()
			v, err := ctl.view(cmd.Context(), dest, def)
			if err != nil {
				return err
			}
			return printJSON(g.stdout, v)
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	c.Flags().StringVar(&id, "destination-id", "", "id of the destination")
	return c
}

func destListCmd(g *globals) *cobra.Command {
	var d detectorFlags
	c := &cobra.Command{
		Use:   "list --account A --region R",
		Short: "List the detector's destinations, as ListPublishingDestinations",
		Long: `List the destinations of the detector as ListPublishingDestinations does:
{"destinations": [{"destinationId", "destinationType", "status"}]}. An account without
destinations of its own lists the default destination acting for it ("default": true), if
the configuration declares one (unless the account is an enabled member, whose findings go
to its administrator's destinations).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := d.check(true); err != nil {
				return err
			}
			ctx := cmd.Context()
			ctl, closeFn, err := openDestinations(ctx, g)
			if err != nil {
				return err
			}
			defer closeFn()
			list, err := ctl.ds.List(ctx, d.account, d.region)
			if err != nil {
				return err
			}
			type entry struct {
				DestinationID   string `json:"destinationId"`
				DestinationType string `json:"destinationType"`
				Status          string `json:"status"`
				Default         bool   `json:"default,omitempty"`
			}
			out := []entry{}
			add := func(dest *pipeline.Destination, def bool) error {
				st, _, found, err := ctl.ds.Statuses().Get(ctx, dest.ID)
				if err != nil {
					return err
				}
				status := pipeline.StatusPublishing
				if found && !st.Deleted {
					status = st.Status
				}
				out = append(out, entry{dest.ID, string(dest.Type), status, def})
				return nil
			}
			for _, dest := range list {
				if err := add(dest, false); err != nil {
					return err
				}
			}
			if len(list) == 0 {
				if tmpl, ok, err := ctl.ds.Default(ctx); err != nil {
					return err
				} else if ok {
					if err := add(state.DefaultInstance(tmpl, d.account, d.region), true); err != nil {
						return err
					}
				}
			}
			return printJSON(g.stdout, map[string]any{"destinations": out})
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	return c
}

func destUpdateCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var p destProps
	var id string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "update --account A --region R --destination-id ID [--destination-properties …] [flags]",
		Short: "Change a destination and verify it again (resumes a STOPPED one)",
		Long: `Change a destination, as UpdatePublishingDestination: the flags given replace the
stored values (--destination-properties as for create; a new DestinationArn brings its own
prefix). The destination becomes PENDING_VERIFICATION; once a worker has verified it, it is
PUBLISHING and exports everything that waited for it. An update without changes restarts it
the same way. Prints nothing, or with --wait DURATION the description once verified.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			ctl, cur, def, closeFn, err := openOne(ctx, g, d, id)
			if err != nil {
				return err
			}
			defer closeFn()
			if def {
				return usagef("destination %s is the default destination acting for %s in %s: change defaultDestination in the configuration file", id, d.account, d.region)
			}
			cd := toConfig(cur)
			if err := p.apply(g, cmd, &cd); err != nil {
				return err
			}
			dest, err := buildDestination(g, d.account, d.region, &cd)
			if err != nil {
				return err
			}
			dest.ID = cur.ID // GuardDuty's ids survive updates
			if _, err := ctl.ds.Update(ctx, dest); err != nil {
				if errors.Is(err, state.ErrDestinationNotFound) {
					return failf("%v", err)
				}
				return err
			}
			if wait > 0 {
				return ctl.wait(ctx, g, dest, false, wait)
			}
			return nil
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	p.add(c, false)
	c.Flags().StringVar(&id, "destination-id", "", "id of the destination")
	c.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for verification, then print the description")
	return c
}

func destDeleteCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var id string
	c := &cobra.Command{
		Use:   "delete --account A --region R --destination-id ID",
		Short: "Delete a destination (what still waits for it is dropped)",
		Long: `Delete a destination, as DeletePublishingDestination. Nothing more is exported to it:
batches sealed for it and still waiting (its backlog) are dropped. The bucket and its
objects are left alone. The config file's destinations come back at the next start of
'gdexport run' unless removed from the file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			ctl, _, def, closeFn, err := openOne(ctx, g, d, id)
			if err != nil {
				return err
			}
			defer closeFn()
			if def {
				return usagef("destination %s is the default destination acting for %s in %s: remove defaultDestination from the configuration file", id, d.account, d.region)
			}
			if err := ctl.ds.Delete(ctx, d.account, d.region, id); err != nil {
				if errors.Is(err, state.ErrDestinationNotFound) {
					return failf("%v", err)
				}
				return err
			}
			// Its backlog goes too, so that creating it again starts afresh.
			if err := ctl.batches.DeleteConsumer(ctx, natsx.ParkedConsumer(id)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				fmt.Fprintf(g.stderr, "gdexport: warning: the backlog consumer of %s was not removed: %v\n", id, err)
			}
			if err := ctl.batches.Purge(ctx, jetstream.WithPurgeSubject(natsx.ParkedFilter(id))); err != nil {
				fmt.Fprintf(g.stderr, "gdexport: warning: the backlog of %s was not removed: %v\n", id, err)
			}
			return nil
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	c.Flags().StringVar(&id, "destination-id", "", "id of the destination")
	return c
}

func destRestartCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var id string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "restart --account A --region R --destination-id ID [--wait DURATION]",
		Short: "Verify a destination again and resume it (STOPPED or UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY)",
		Long: `Make the destination PENDING_VERIFICATION again. A worker verifies it; once
PUBLISHING, everything that waited for it is exported, each finding once. This is how a
STOPPED destination resumes after its fault is fixed (an 'update' does the same). Prints
nothing, or with --wait DURATION the description once verified.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			ctl, dest, def, closeFn, err := openOne(ctx, g, d, id)
			if err != nil {
				return err
			}
			defer closeFn()
			if _, err := ctl.ds.Restart(ctx, dest); err != nil {
				return err
			}
			if wait > 0 {
				return ctl.wait(ctx, g, dest, def, wait)
			}
			return nil
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	c.Flags().StringVar(&id, "destination-id", "", "id of the destination")
	c.Flags().DurationVar(&wait, "wait", 0, "wait up to this long for verification, then print the description")
	return c
}

func destPolicyCmd(g *globals) *cobra.Command {
	var d detectorFlags
	var id, principal string
	c := &cobra.Command{
		Use:   "policy --account A --region R --destination-id ID [--principal ARN]",
		Short: "Print the bucket policy and the key policy statement an existing bucket and key need",
		Long: `Print, as {"bucketPolicy": …, "keyPolicyStatement": …}, the bucket policy that lets
gdexport's role export to the destination with the conditions of GuardDuty's sample policy
(SSE-KMS with this key, TLS only, GetBucketLocation, DeleteObject of its write probes only),
and the statement to add to the key's policy (kms:GenerateDataKey, kms:Decrypt). The role is
--principal, or the caller as STS reports it (an assumed-role session names its role).`,
		Example: `  gdexport destination policy --account 111122223333 --region us-east-1 \
    --destination-id 0123456789abcdef0123456789abcdef --principal arn:aws:iam::111122223333:role/gdexport`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, dest, _, closeFn, err := openOne(ctx, g, d, id)
			if err != nil {
				return err
			}
			defer closeFn()
			if dest.Type != pipeline.DestinationS3 {
				return usagef("destination %s is %s: policies exist for S3 destinations only", id, dest.Type)
			}
			who, err := principalFor(ctx, dest, principal)
			if err != nil {
				return err
			}
			bucket, err := s3.BucketPolicy(dest, who)
			if err != nil {
				if errors.Is(err, s3.ErrPrincipal) {
					return usagef("--principal: %v", err)
				}
				return failf("bucket policy: %v", err)
			}
			out := map[string]json.RawMessage{"bucketPolicy": json.RawMessage(bucket)}
			if dest.KmsKeyArn != "" {
				key, err := s3.KeyPolicyStatement(dest, who)
				if err != nil {
					return failf("key policy statement: %v", err)
				}
				out["keyPolicyStatement"] = json.RawMessage(key)
			}
			return printJSON(g.stdout, out)
		},
	}
	d.add(c, "AWS account id of the detector (12 digits)")
	c.Flags().StringVar(&id, "destination-id", "", "id of the destination")
	c.Flags().StringVar(&principal, "principal", "", "gdexport's IAM role (default: the caller, per STS)")
	return c
}

// statusCmd is `gdexport status`: every destination with its status,
// failure start, backlog and last export.
