package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/awsarn"
	"github.com/gdexport/gdexport/stages/filter"
)

// Validate checks every field and returns Problems (nil when valid). It
// never connects anywhere.
func (c *Config) Validate() error {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if c.NATS.URL != "" && !strings.Contains(c.NATS.URL, "://") {
		add("nats.url", "%q is not a URL: expected nats://host:port", c.NATS.URL)
	}
	if c.NATS.Listen != "" {
		if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
			add("nats.listen", "%q is not host:port", c.NATS.Listen)
		}
	}
	if c.NATS.Replicas < 0 || c.NATS.Replicas > 5 {
		add("nats.replicas", "%d is out of range: expected 1 to 5", c.NATS.Replicas)
	}
	switch c.NATS.Durability {
	case "", "strict", "fast":
	default:
		add("nats.durability", "%q: expected strict or fast", c.NATS.Durability)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			add("http.listen", "%q is not host:port", c.HTTP.Listen)
		}
	}
	if c.NewFindingDelay < 0 || c.NewFindingDelay.D() > 5*time.Minute {
		add("newFindingDelay", "%s is out of range: expected 0s to 5m (GuardDuty exports new findings within 5 minutes)", c.NewFindingDelay.D())
	}
	if c.WindowOverride < 0 {
		add("windowOverride", "%s must not be negative", c.WindowOverride.D())
	}
	if c.AckWaitOverride != 0 && c.AckWaitOverride.D() < time.Second {
		add("ackWaitOverride", "%s is too short: expected at least 1s (test-only; leave it unset in production)", c.AckWaitOverride.D())
	}
	if c.MaxBatchFindings < 0 {
		add("maxBatchFindings", "%d must not be negative", c.MaxBatchFindings)
	}
	if c.Compression.Level < 0 || c.Compression.Level > 9 {
		add("compression.level", "%d is out of range: expected 1 (fastest) to 9 (smallest)", c.Compression.Level)
	}
	if c.MaxBatchBytes < 0 {
		add("maxBatchBytes", "%d must not be negative", c.MaxBatchBytes)
	}
	for _, d := range []struct {
		field string
		v     Duration
	}{{"failureThreshold", c.FailureThreshold}, {"disableAfter", c.DisableAfter}, {"retryInitial", c.RetryInitial}, {"retryMax", c.RetryMax}} {
		if d.v < 0 {
			add(d.field, "%s must not be negative", d.v.D())
		}
	}
	if c.RetryInitial > 0 && c.RetryMax > 0 && c.RetryInitial > c.RetryMax {
		add("retryInitial", "%s is longer than retryMax %s", c.RetryInitial.D(), c.RetryMax.D())
	}
	if hook := c.Notifications.Webhook; hook != "" {
		if u, err := url.Parse(hook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("notifications.webhook", "%q is not a URL: expected http(s)://host[:port]/path", hook)
		}
	}
	if src := c.EventBus.EventBridge.Source; strings.HasPrefix(src, "aws.") {
		add("eventBus.eventbridge.source", "%q: EventBridge refuses custom sources that begin with \"aws.\"", src)
	}
	if name := c.EventBus.EventBridge.EventBusName; name != "" && !validEventBus(name) {
		add("eventBus.eventbridge.eventBusName", "%q is neither an event bus name (letters, digits, . - _ /) nor an event bus ARN arn:aws:events:<region>:<account>:event-bus/<name>", name)
	}
	if ep := c.EventBus.EventBridge.Endpoint; ep != "" {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("eventBus.eventbridge.endpoint", "%q is not an endpoint URL: expected http(s)://host[:port]", ep)
		}
	}
	if d := c.DefaultDestination; d != nil {
		validateDestination("defaultDestination", d, "", add)
	}
	seen := map[string]int{}
	memberOf := map[string]int{} // "<region>/<member>" → detector index
	for i, dt := range c.Detectors {
		for j, m := range dt.Members {
			k := dt.Region + "/" + m
			if prev, dup := memberOf[k]; dup && prev != i {
				add(fmt.Sprintf("detectors[%d].members[%d]", i, j), "%q is already a member of detectors[%d] (account %s) in %s: a member has at most one administrator per Region",
					m, prev, c.Detectors[prev].Account, dt.Region)
				continue
			}
			memberOf[k] = i
		}
	}
	for i, dt := range c.Detectors {
		p := fmt.Sprintf("detectors[%d]", i)
		if !pipeline.ValidAccount(dt.Account) {
			add(p+".account", "%q is not an AWS account id: expected 12 digits", dt.Account)
		}
		if !pipeline.ValidRegion(dt.Region) {
			add(p+".region", "%q is not an AWS Region name such as us-east-1", dt.Region)
		}
		k := dt.Account + "/" + dt.Region
		if j, dup := seen[k]; dup {
			add(p, "account %s in %s is already declared by detectors[%d]: one detector per (account, Region)", dt.Account, dt.Region, j)
		}
		seen[k] = i
		if _, ok := FrequencyDuration[dt.FindingPublishingFrequency]; !ok && dt.FindingPublishingFrequency != "" {
			add(p+".findingPublishingFrequency", "%q: expected FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS", dt.FindingPublishingFrequency)
		}
		members := map[string]int{}
		for j, m := range dt.Members {
			mp := fmt.Sprintf("%s.members[%d]", p, j)
			if !pipeline.ValidAccount(m) {
				add(mp, "%q is not an AWS account id: expected 12 digits", m)
			} else if m == dt.Account {
				add(mp, "%q is the administrator itself", m)
			} else if prev, dup := members[m]; dup {
				add(mp, "%q is listed twice (also members[%d])", m, prev)
			}
			members[m] = j
		}
		if len(dt.Members) > 0 {
			if adm, ok := memberOf[dt.Region+"/"+dt.Account]; ok && adm != i {
				add(p+".members", "account %s is itself a member of detectors[%d] (account %s) in %s: a member cannot have members", dt.Account, adm, c.Detectors[adm].Account, dt.Region)
			}
		}
		for j := range dt.Destinations {
			validateDestination(fmt.Sprintf("%s.destinations[%d]", p, j), &dt.Destinations[j], dt.Region, add)
		}
		validateFilters(p, dt.Filters, add)
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// ValidateDestination checks one destination as Validate does, reporting
// problems under path (such as "--destination-properties" for a command's
// flags); nil when it is valid.
func ValidateDestination(path string, d *Destination) error {
	var ps Problems
	validateDestination(path, d, "", func(p, format string, args ...any) {
		ps = append(ps, Problem{Path: p, Message: fmt.Sprintf(format, args...)})
	})
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func validateDestination(p string, d *Destination, region string, add func(path, format string, args ...any)) {
	switch d.DestinationType {
	case "LOCAL":
		if d.Root == "" {
			add(p+".root", "a LOCAL destination needs a root directory")
		}
	case "S3":
		validateS3(p, d, add)
	case "":
		add(p+".destinationType", "missing: expected S3 or LOCAL")
	default:
		add(p+".destinationType", "%q: expected S3 or LOCAL", d.DestinationType)
	}
	switch d.Encryption {
	case "", pipeline.EncryptionEnvelope:
	case pipeline.EncryptionSSEKMS:
		if d.DestinationType == "LOCAL" {
			add(p+".encryption", "sse-kms needs an S3 store; a LOCAL destination uses envelope")
		}
	default:
		add(p+".encryption", "%q: expected sse-kms or envelope", d.Encryption)
	}
	if err := CheckPrefix(d.Prefix); err != nil {
		add(p+".prefix", "%v", err)
	}
	switch d.KeyAccount {
	case "", pipeline.KeyAccountAdministrator, pipeline.KeyAccountOwner:
	default:
		add(p+".keyAccount", "%q: expected administrator (the destination owner's account in the key) or owner (each finding's own account)", d.KeyAccount)
	}
}

// validateFilters checks a detector's saved filters with the filter stage's
// rules, reporting each problem at its YAML path, such as
// detectors[0].filters[1].findingCriteria.criterion.foo.
func validateFilters(p string, fs []Filter, add func(path, format string, args ...any)) {
	if len(fs) > filter.MaxFiltersPerAccount {
		add(p+".filters", "%d filters: at most %d per (account, Region)", len(fs), filter.MaxFiltersPerAccount)
	}
	names := map[string]int{}
	for j := range fs {
		fp := fmt.Sprintf("%s.filters[%d]", p, j)
		if _, err := filter.NewFilter(fs[j].Spec()); err != nil {
			var ps filter.Problems
			if errors.As(err, &ps) {
				for _, pr := range ps.Prefix(fp) {
					add(pr.Path, "%s", pr.Message)
				}
			} else {
				add(fp, "%v", err)
			}
		}
		if fs[j].Name == "" {
			continue
		}
		if prev, dup := names[fs[j].Name]; dup {
			add(fp+".name", "%q is already the name of filters[%d]: names are unique per detector", fs[j].Name, prev)
		}
		names[fs[j].Name] = j
	}
}

// CheckPrefix refuses object-key prefixes that could escape their folder or
// confuse readers: "..", a leading "/", control characters.
func CheckPrefix(prefix string) error { return awsarn.CheckPrefix(prefix) }

// validateS3 checks an S3 destination's ARNs, endpoints and role without
// connecting anywhere; Region and reachability are checked by the
// destination's verification.
func validateS3(p string, d *Destination, add func(path, format string, args ...any)) {
	override := d.Endpoint != "" || d.KmsEndpoint != ""
	arnPath := p + ".destinationProperties.destinationArn"
	keyPath := p + ".destinationProperties.kmsKeyArn"
	var bucket awsarn.S3Destination
	bucketOK := false
	if arn := d.DestinationProperties.DestinationArn; arn == "" {
		add(arnPath, "an S3 destination needs a bucket ARN such as arn:aws:s3:::my-bucket/prefix")
	} else if b, err := awsarn.ParseS3Destination(arn); err != nil {
		add(arnPath, "%v", err)
	} else {
		bucket, bucketOK = b, true
		if pre := strings.Trim(d.Prefix, "/"); pre != "" && b.Prefix != "" && pre != b.Prefix {
			add(p+".prefix", "%q differs from the prefix %q of destinationArn: give the prefix in one place (GuardDuty's way is the ARN)", d.Prefix, b.Prefix)
		}
	}
	switch ref := d.DestinationProperties.KmsKeyArn; {
	case ref == "" && d.Encryption == pipeline.EncryptionEnvelope:
		// Envelope without a KMS key wraps data keys with the local key file.
	case ref == "":
		add(keyPath, "an S3 destination needs a KMS key ARN (GuardDuty encrypts every export with SSE-KMS)")
	default:
		k, err := awsarn.ParseKMSKey(ref, override)
		if err != nil {
			add(keyPath, "%v", err)
		} else if bucketOK && k.IsARN() && k.Partition != bucket.Partition {
			add(keyPath, "%q is in partition %s, the bucket %s in %s: a key must be in its bucket's partition and Region", ref, k.Partition, bucket.Bucket, bucket.Partition)
		}
	}
	for _, e := range []struct{ field, url string }{{"endpoint", d.Endpoint}, {"kmsEndpoint", d.KmsEndpoint}} {
		if e.url == "" {
			continue
		}
		if u, err := url.Parse(e.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(p+"."+e.field, "%q is not an endpoint URL: expected http(s)://host[:port]", e.url)
		}
	}
	if d.RoleArn != "" && !validRoleARN(d.RoleArn) {
		add(p+".roleArn", "%q is not an IAM role ARN: expected arn:aws:iam::<account>:role/<name>", d.RoleArn)
	}
	if d.ExternalID != "" {
		if d.RoleArn == "" {
			add(p+".externalId", "an external id is only used with roleArn")
		} else if !validExternalID(d.ExternalID) {
			add(p+".externalId", "must have 2 to 1224 characters of letters, digits and +=,.@:/-")
		}
	}
}

// validRoleARN reports whether s is arn:<partition>:iam::<account>:role/<path/name>.
func validRoleARN(s string) bool {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !awsarn.ValidPartition(parts[1]) || parts[2] != "iam" || parts[3] != "" || !pipeline.ValidAccount(parts[4]) {
		return false
	}
	name, ok := strings.CutPrefix(parts[5], "role/")
	return ok && name != "" && !strings.HasSuffix(name, "/")
}

// validExternalID checks STS's rules for an external id.
func validExternalID(s string) bool {
	if len(s) < 2 || len(s) > 1224 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+=,.@:/-_", c) >= 0) {
			return false
		}
	}
	return true
}

// validEventBus reports whether s is an EventBridge bus name (1 to 256 of
// letters, digits and . - _ /) or an event-bus ARN.
func validEventBus(s string) bool {
	if strings.HasPrefix(s, "arn:") {
		parts := strings.SplitN(s, ":", 6)
		name, ok := "", false
		if len(parts) == 6 {
			name, ok = strings.CutPrefix(parts[5], "event-bus/")
		}
		return ok && awsarn.ValidPartition(parts[1]) && parts[2] == "events" && pipeline.ValidRegion(parts[3]) &&
			pipeline.ValidAccount(parts[4]) && validEventBus(name)
	}
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/", c) >= 0) {
			return false
		}
	}
	return true
}
