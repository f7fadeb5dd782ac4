package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gdexport/gdexport/stages/filter"
)

// Frequencies GuardDuty accepts for findingPublishingFrequency.
const (
	FifteenMinutes = "FIFTEEN_MINUTES"
	OneHour        = "ONE_HOUR"
	SixHours       = "SIX_HOURS"
)

// FrequencyDuration maps a findingPublishingFrequency to its window length.
var FrequencyDuration = map[string]time.Duration{
	FifteenMinutes: 15 * time.Minute,
	OneHour:        time.Hour,
	SixHours:       6 * time.Hour,
}

// Duration is a time.Duration written as "5s", "90m" or "2160h" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: expected a number with a unit such as 5s, 15m or 24h", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Config is the whole configuration file.
type Config struct {
	// DataDir is the data directory (default ./data).
	DataDir string `yaml:"dataDir,omitempty"`
	NATS    NATS   `yaml:"nats"`
	HTTP    HTTP   `yaml:"http"`
	// NewFindingDelay is how long a new finding may wait before its batch is
	// sealed (default 5s).
	NewFindingDelay Duration `yaml:"newFindingDelay,omitempty"`
	// WindowOverride replaces every publishing-frequency window with this
	// length. Test-only: it lets process and container tests run real
	// windows in seconds. Never set it in production.
	WindowOverride Duration `yaml:"windowOverride,omitempty"`
	// AckWaitOverride replaces the ack waits of the ingest and export
	// consumers (30s) and sets the lease of a window flush (60s) to twice
	// it: how long the work of a worker that died or lost its connection
	// waits before another worker takes it. Test-only: it lets container
	// tests partition a worker for longer than its ack wait in seconds.
	// Never set it in production (a short ack wait redelivers work that a
	// slow but live worker still holds).
	AckWaitOverride Duration `yaml:"ackWaitOverride,omitempty"`
	// Retention is how long findings stay in JetStream (default 2160h, 90 days).
	Retention Duration `yaml:"retention,omitempty"`
	// MaxBatchFindings and MaxBatchBytes bound one object (defaults 10000
	// findings, 64 MiB of uncompressed JSON Lines).
	MaxBatchFindings int `yaml:"maxBatchFindings,omitempty"`
	MaxBatchBytes    int `yaml:"maxBatchBytes,omitempty"`
	// DefaultDestination serves every account without a destination of its
	// own or an administrator (none when absent).
	DefaultDestination *Destination `yaml:"defaultDestination,omitempty"`
	// Compression sets the gzip level of objects.
	Compression Compression `yaml:"compression,omitempty"`
	// MemoryLimit is the Go runtime's soft memory limit for a worker
	// (default 192MiB; 0: none); the GOMEMLIMIT environment variable, when
	// set, takes precedence. A worker's working set is bounded (findings
	// held in open batches, sealed batches kept for export, what ingest
	// fetches ahead), so the limit makes the garbage collector keep the heap
	// near it rather than at twice the live data.
	MemoryLimit *ByteSize  `yaml:"memoryLimit,omitempty"`
	EventBus    EventBus   `yaml:"eventBus"`
	Detectors   []Detector `yaml:"detectors,omitempty"`

	// FailureThreshold is how long transient export errors may persist
	// before a destination becomes UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY
	// (default 5m); access errors make it so at once.
	FailureThreshold Duration `yaml:"failureThreshold,omitempty"`
	// DisableAfter is how long a destination may stay unable to publish
	// before it is STOPPED (default 24h).
	DisableAfter Duration `yaml:"disableAfter,omitempty"`
	// RetryInitial and RetryMax bound the backoff between retries of a
	// failing destination's writes and verifications (defaults 5s, 5m).
	RetryInitial Duration `yaml:"retryInitial,omitempty"`
	RetryMax     Duration `yaml:"retryMax,omitempty"`
	// Notifications configures where status changes are sent besides
	// gdexport.notifications.<destinationId>.
	Notifications Notifications `yaml:"notifications,omitempty"`
}

// Notifications configures status notifications.
type Notifications struct {
	// Webhook, when set, receives every notification as an HTTP POST of
	// its JSON.
	Webhook string `yaml:"webhook,omitempty"`
}

// ByteSize is a size written as 192MiB, 64KiB, 1GiB or a plain number of
// bytes in YAML.
type ByteSize int64

// UnmarshalText parses a size with an optional KiB, MiB or GiB unit.
func (b *ByteSize) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: expected a number of bytes, or with a unit such as 192MiB or 1GiB", string(t))
	}
	*b = ByteSize(n * mult)
	return nil
}

// MarshalText writes the size in MiB when it is a whole number of them.
func (b ByteSize) MarshalText() ([]byte, error) {
	if b > 0 && b%(1<<20) == 0 {
		return []byte(strconv.FormatInt(int64(b)>>20, 10) + "MiB"), nil
	}
	return []byte(strconv.FormatInt(int64(b), 10)), nil
}

// Compression is the gzip level of objects: 1 (fastest) to 9 (smallest),
// default 6; 8 is no larger than gzip -6 (see stages/compress).
type Compression struct {
	Level int `yaml:"level,omitempty"`
}

// NATS configures the connection and, when URL is empty, the embedded server.
type NATS struct {
	URL      string `yaml:"url,omitempty"`
	Listen   string `yaml:"listen,omitempty"`
	StoreDir string `yaml:"storeDir,omitempty"`
	// Replicas of every stream and bucket: 1 on one node, 3 on a cluster.
	Replicas int `yaml:"replicas,omitempty"`
	// Durability is "strict" (default: sync_interval always) or "fast".
	Durability string `yaml:"durability,omitempty"`
}

// HTTP configures the metrics, health and status listener.
type HTTP struct {
	Listen string `yaml:"listen,omitempty"`
	// Pprof serves Go's profiler at /debug/pprof/ on the listener: for
	// diagnosing a worker, never on an address others can reach.
	Pprof bool `yaml:"pprof,omitempty"`
}

// EventBus configures where events go.
type EventBus struct {
	NATS        NATSBus     `yaml:"nats"`
	EventBridge EventBridge `yaml:"eventbridge"`
}

// NATSBus is the NATS event bus (subject guardduty.events.<region>.<account>).
type NATSBus struct {
	Enabled *bool `yaml:"enabled,omitempty"`
}

// On reports whether the NATS bus is enabled (default true).
func (n NATSBus) On() bool { return n.Enabled == nil || *n.Enabled }

// EventBridge is Amazon EventBridge (used when EventBusName is set).
type EventBridge struct {
	EventBusName string `yaml:"eventBusName,omitempty"`
	Source       string `yaml:"source,omitempty"`
	Endpoint     string `yaml:"endpoint,omitempty"`
}

// Detector is the export settings of one (account, Region).
type Detector struct {
	Account                    string `yaml:"account"`
	Region                     string `yaml:"region"`
	FindingPublishingFrequency string `yaml:"findingPublishingFrequency,omitempty"`
	// Members are member accounts whose findings in this Region are also
	// exported to this detector's destinations (created ENABLED; a member
	// has at most one administrator per Region).
	Members      []string      `yaml:"members,omitempty"`
	Destinations []Destination `yaml:"destinations,omitempty"`
	// Filters are saved filters: ARCHIVE filters are suppression rules.
	Filters []Filter `yaml:"filters,omitempty"`
}

// Filter is a saved filter, as GuardDuty's CreateFilter takes it.
type Filter struct {
	// Name is 3 to 64 letters, digits, '.', '_' or '-', unique per detector.
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Action is NOOP (default: a saved view) or ARCHIVE (a suppression rule).
	Action string `yaml:"action,omitempty"`
	// Rank is the order of application, 1 to 100 (default: the filter's
	// position in the list, 1 for the first).
	Rank int `yaml:"rank,omitempty"`
	// FindingCriteria is {criterion: {<attribute>: {<operator>: <value>}}}
	// (DESIGN.md §5), PascalCase or camelCase.
	FindingCriteria any `yaml:"findingCriteria"`
}

// Spec returns the filter for the filter stage to check and compile.
func (f *Filter) Spec() filter.Spec {
	return filter.Spec{Name: f.Name, Description: f.Description, Action: f.Action, Rank: f.Rank, FindingCriteria: f.FindingCriteria}
}

// Destination is one publishing destination.
type Destination struct {
	DestinationType       string                `yaml:"destinationType"`
	DestinationProperties DestinationProperties `yaml:"destinationProperties,omitempty"`
	// Root is the directory of a LOCAL destination.
	Root       string `yaml:"root,omitempty"`
	Prefix     string `yaml:"prefix,omitempty"`
	Encryption string `yaml:"encryption,omitempty"`
	KeyFile    string `yaml:"keyFile,omitempty"`
	// Endpoint overrides the S3 endpoint (an S3-compatible store such as
	// MinIO); requests then use path-style addressing.
	Endpoint string `yaml:"endpoint,omitempty"`
	// KmsEndpoint overrides the KMS endpoint (an emulator such as
	// local-kms) for envelope encryption and verification.
	KmsEndpoint string `yaml:"kmsEndpoint,omitempty"`
	// RoleArn, when set, is assumed (STS AssumeRole, with ExternalID when
	// set) on top of the standard credential chain to write this
	// destination: a bucket in another account.
	RoleArn    string `yaml:"roleArn,omitempty"`
	ExternalID string `yaml:"externalId,omitempty"`
	// KeyAccount names the account in the objects' AWSLogs/<accountId>/
	// folder: administrator (default, the destination owner) or owner (each
	// finding's own account; objects never mix accounts then).
	KeyAccount string `yaml:"keyAccount,omitempty"`
}

// DestinationProperties are GuardDuty's destinationProperties.
type DestinationProperties struct {
	DestinationArn string `yaml:"destinationArn,omitempty"`
	KmsKeyArn      string `yaml:"kmsKeyArn,omitempty"`
}

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("invalid configuration")

// Load reads and parses a configuration file and applies defaults. It does
// not validate; call Validate.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(b)
}

// Parse parses YAML configuration (see Decode); unknown fields and values
// of the wrong type are errors, all of them reported, so that a typo never
// silently falls back to a default.
func Parse(b []byte) (*Config, error) {
	c, ps := Decode(b)
	if len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}

// ApplyDefaults fills every unset field with the defaults table's value.
// dataDir overrides the file's dataDir when not empty.
func (c *Config) ApplyDefaults() {
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.NATS.Listen == "" {
		c.NATS.Listen = "127.0.0.1:4222"
	}
	if c.NATS.StoreDir == "" {
		c.NATS.StoreDir = filepath.Join(c.DataDir, "nats")
	}
	if c.NATS.Replicas == 0 {
		c.NATS.Replicas = 1
	}
	if c.NATS.Durability == "" {
		c.NATS.Durability = "strict"
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8480"
	}
	if c.NewFindingDelay == 0 {
		c.NewFindingDelay = Duration(5 * time.Second)
	}
	if c.Retention == 0 {
		c.Retention = Duration(90 * 24 * time.Hour)
	}
	if c.MaxBatchFindings == 0 {
		c.MaxBatchFindings = 10_000
	}
	if c.MemoryLimit == nil {
		m := ByteSize(192 << 20)
		c.MemoryLimit = &m
	}
	if c.Compression.Level == 0 {
		c.Compression.Level = 6
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 64 << 20
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = Duration(5 * time.Minute)
	}
	if c.DisableAfter == 0 {
		c.DisableAfter = Duration(24 * time.Hour)
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = Duration(5 * time.Second)
	}
	if c.RetryMax == 0 {
		c.RetryMax = Duration(5 * time.Minute)
	}
	if c.EventBus.EventBridge.Source == "" {
		c.EventBus.EventBridge.Source = "gdexport.guardduty"
	}
	if d := c.DefaultDestination; d != nil {
		if d.DestinationType == "" {
			d.DestinationType = "LOCAL"
		}
		if d.Root == "" {
			d.Root = filepath.Join(c.DataDir, "export")
		}
		if d.Encryption == "" {
			d.Encryption = "envelope"
		}
		if d.KeyFile == "" {
			d.KeyFile = filepath.Join(c.DataDir, "keys", "local-master.key")
		}
	}
	for i := range c.Detectors {
		dt := &c.Detectors[i]
		// An omitted findingPublishingFrequency stays empty: applying the
		// file then leaves the stored one alone (GuardDuty's SIX_HOURS for
		// a detector stored for the first time).
		for j := range dt.Filters {
			if dt.Filters[j].Rank == 0 {
				dt.Filters[j].Rank = j + 1
			}
		}
		for j := range dt.Destinations {
			dt.Destinations[j].ApplyDefaults(c.DataDir)
		}
	}
}

// ApplyDefaults fills a detector's destination's unset fields: encryption
// envelope for LOCAL and sse-kms for S3, and for envelope the local master
// key file under dataDir.
func (d *Destination) ApplyDefaults(dataDir string) {
	if d.Encryption == "" {
		if d.DestinationType == "LOCAL" {
			d.Encryption = "envelope"
		} else {
			d.Encryption = "sse-kms"
		}
	}
	if d.KeyFile == "" && d.Encryption == "envelope" {
		d.KeyFile = filepath.Join(dataDir, "keys", "local-master.key")
	}
}

// Problem is one validation failure with its YAML path.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// Problems is every validation failure of a configuration.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%s: %d problem(s):\n  %s", ErrInvalid, len(ps), strings.Join(lines, "\n  "))
}

// Unwrap lets errors.Is(err, ErrInvalid) hold.
func (ps Problems) Unwrap() error { return ErrInvalid }
