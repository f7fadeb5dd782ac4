package eventbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"

	"github.com/gdexport/gdexport/pipeline"
)

// EventBridge's and GuardDuty's fixed values.
const (
	// DefaultSource is the Source of gdexport's events.
	DefaultSource = "gdexport.guardduty"
	// DetailType is GuardDuty's detail-type.
	DetailType = "GuardDuty Finding"
	// MaxEntries is the most entries one PutEvents call takes.
	MaxEntries = 10
	// MaxRequestSize is the most entry bytes one PutEvents call takes
	// (256 KB), and so the largest one event can be.
	MaxRequestSize = 256 * 1024
	// FallbackRegion is used when no Region is known otherwise.
	FallbackRegion = "us-east-1"
)

var (
	// ErrTooLarge means an event exceeds MaxRequestSize on its own: it was
	// not sent. The caller dead-letters its finding (TooLargeError names it).
	ErrTooLarge = errors.New("event exceeds EventBridge's 256 KB PutEvents limit")
	// ErrSource means a Source EventBridge would refuse.
	ErrSource = errors.New("invalid EventBridge source")
	// ErrOption is wrapped by every other invalid option.
	ErrOption = errors.New("invalid eventbridge sink option")
	// ErrFailedEntries means entries still failed after every attempt.
	ErrFailedEntries = errors.New("PutEvents entries failed")
)

// TooLargeError lists the findings whose events exceed MaxRequestSize. It
// wraps ErrTooLarge; Reason is the text for the dead letter's
// Gdexport-Reason header.
type TooLargeError struct {
	Findings []*pipeline.Finding
	// Sizes are the event sizes (EventBridge's measure), in Findings' order.
	Sizes []int
}

func (e *TooLargeError) Error() string {
	ids := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		ids[i] = fmt.Sprintf("%s (%d bytes)", f.ID, e.Sizes[i])
	}
	return fmt.Sprintf("%s: %d finding(s) not sent: %s", ErrTooLarge, len(e.Findings), strings.Join(ids, ", "))
}

// Unwrap returns ErrTooLarge.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Undeliverable returns the findings and their dead-letter reasons: the
// export path stores them on the dead-letter stream when PutEvents returns
// this error alone (everything else was delivered).
func (e *TooLargeError) Undeliverable() ([]*pipeline.Finding, []string) {
	reasons := make([]string, len(e.Findings))
	for i := range e.Findings {
		reasons[i] = e.Reason(i)
	}
	return e.Findings, reasons
}

// Reason is the dead-letter reason of the i-th finding.
func (e *TooLargeError) Reason(i int) string {
	return fmt.Sprintf("eventbridge: event of %d bytes exceeds the PutEvents limit of %d bytes", e.Sizes[i], MaxRequestSize)
}

// API is the part of the EventBridge client the sink calls.
type API interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Option configures a Sink.
type Option func(*Sink) error

// CheckSource checks a custom Source: 1 to 256 characters, not beginning
// with "aws." (reserved for AWS services).
func CheckSource(source string) error {
	switch {
	case source == "" || len(source) > 256:
		return fmt.Errorf("%w %q: must have 1 to 256 characters", ErrSource, source)
	case strings.HasPrefix(source, "aws."):
		return fmt.Errorf("%w %q: EventBridge refuses custom sources that begin with \"aws.\"", ErrSource, source)
	}
	return nil
}

// WithSource sets the events' Source (default DefaultSource).
func WithSource(source string) Option {
	return func(s *Sink) error {
		if err := CheckSource(source); err != nil {
			return err
		}
		s.source = source
		return nil
	}
}

// WithEndpoint sends PutEvents to endpoint instead of EventBridge's.
func WithEndpoint(endpoint string) Option {
	return func(s *Sink) error {
		if endpoint == "" {
			return fmt.Errorf("%w: empty endpoint", ErrOption)
		}
		s.endpoint = endpoint
		return nil
	}
}

// WithRegion sets the Region used when neither the bus ARN nor the batch
// names one (default: the standard chain's, else FallbackRegion).
func WithRegion(region string) Option {
	return func(s *Sink) error {
		if !pipeline.ValidRegion(region) {
			return fmt.Errorf("%w: %q is not an AWS Region name", ErrOption, region)
		}
		s.region = region
		return nil
	}
}

// WithCredentials replaces the standard credential chain.
func WithCredentials(c aws.CredentialsProvider) Option {
	return func(s *Sink) error {
		if c == nil {
			return fmt.Errorf("%w: nil credentials provider", ErrOption)
		}
		s.creds = c
		return nil
	}
}

// WithHTTPClient sets the HTTP client of the EventBridge clients.
func WithHTTPClient(c *http.Client) Option {
	return func(s *Sink) error {
		if c == nil {
			return fmt.Errorf("%w: nil HTTP client", ErrOption)
		}
		s.httpClient = c
		return nil
	}
}

// WithAPI makes every call through api instead of clients the sink builds.
func WithAPI(api API) Option {
	return func(s *Sink) error {
		if api == nil {
			return fmt.Errorf("%w: nil API", ErrOption)
		}
		s.api = api
		return nil
	}
}

// WithRetry sets how often a call or its failed entries are tried
// (attempts ≥ 1, default 6) and the backoff between tries: base doubled
// each time, capped at max, with jitter (defaults 200ms and 10s).
func WithRetry(attempts int, base, max time.Duration) Option {
	return func(s *Sink) error {
		if attempts < 1 || base <= 0 || max < base {
			return fmt.Errorf("%w: retry %d attempts, backoff %s to %s", ErrOption, attempts, base, max)
		}
		s.attempts, s.base, s.max = attempts, base, max
		return nil
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Sink) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrOption)
		}
		s.log = l
		return nil
	}
}

// Sink sends events to one EventBridge bus. Safe for concurrent use.
type Sink struct {
	bus        string
	busRegion  string
	source     string
	endpoint   string
	region     string
	creds      aws.CredentialsProvider
	httpClient *http.Client
	api        API
	attempts   int
	base, max  time.Duration
	log        *slog.Logger

	calls atomic.Int64

	mu      sync.Mutex
	cfg     *aws.Config
	clients map[string]*eventbridge.Client
}

var _ pipeline.EventSink = (*Sink)(nil)

// New returns a sink for the event bus eventBusName (a name or an
// event-bus ARN, whose Region then addresses every call; otherwise each
// batch goes to the bus of that name in the batch's Region, as GuardDuty
// sends to its own Region's bus).
func New(eventBusName string, opts ...Option) (*Sink, error) {
	if eventBusName == "" {
		return nil, fmt.Errorf("%w: empty event bus name", ErrOption)
	}
	s := &Sink{bus: eventBusName, source: DefaultSource, attempts: 6, base: 200 * time.Millisecond, max: 10 * time.Second,
		log: slog.Default(), clients: map[string]*eventbridge.Client{}}
	if strings.HasPrefix(eventBusName, "arn:") {
		parts := strings.SplitN(eventBusName, ":", 6)
		if len(parts) != 6 || parts[2] != "events" || !pipeline.ValidRegion(parts[3]) || !strings.HasPrefix(parts[5], "event-bus/") {
			return nil, fmt.Errorf("%w: %q is not an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)", ErrOption, eventBusName)
		}
		s.busRegion = parts[3]
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Connect loads the standard AWS configuration; it sends nothing.
func (s *Sink) Connect(ctx context.Context) error {
	if s.api != nil {
		return nil
	}
	_, err := s.config(ctx)
	return err
}

// Close does nothing.
func (s *Sink) Close(context.Context) error { return nil }

// Calls returns how many PutEvents calls were made.
func (s *Sink) Calls() int64 { return s.calls.Load() }

func (s *Sink) config(ctx context.Context) (aws.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg != nil {
		return *s.cfg, nil
	}
	var lo []func(*awsconfig.LoadOptions) error
	if s.region != "" {
		lo = append(lo, awsconfig.WithRegion(s.region))
	}
	if s.creds != nil {
		lo = append(lo, awsconfig.WithCredentialsProvider(s.creds))
	}
	if s.httpClient != nil {
		lo = append(lo, awsconfig.WithHTTPClient(s.httpClient))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = FallbackRegion
	}
	s.cfg = &cfg
	return cfg, nil
}

func (s *Sink) client(ctx context.Context, region string) (API, error) {
	if s.api != nil {
		return s.api, nil
	}
	cfg, err := s.config(ctx)
	if err != nil {
		return nil, err
	}
	if s.busRegion != "" {
		region = s.busRegion
	}
	if region == "" {
		region = cfg.Region
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[region]; ok {
		return c, nil
	}
	cfg.Region = region
	c := eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
		// The sink's own backoff is the one retry policy: it retries
		// failed entries alone, which the SDK's retryer cannot.
		o.RetryMaxAttempts = 1
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
	})
	s.clients[region] = c
	return c, nil
}

// EntrySize is an entry's size as EventBridge counts it against the
// PutEvents limit: 14 bytes for Time, plus the UTF-8 bytes of Source,
// DetailType, Detail and each resource.
func EntrySize(e *types.PutEventsRequestEntry) int {
	n := 0
	if e.Time != nil {
		n += 14
	}
	n += len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// pending is one entry still to be sent.
type pending struct {
	finding *pipeline.Finding
	entry   types.PutEventsRequestEntry
	size    int
}

// PutEvents sends one event per finding on the bus, in calls of at most
// MaxEntries entries and MaxRequestSize bytes, in the findings' order.
// Failed entries alone are sent again after a capped backoff, up to the
// retry attempts; a failed call (throttling, 5xx, a timeout) is retried the
// same way. It returns:
//   - nil when every event was accepted;
//   - a *TooLargeError (errors.Is ErrTooLarge) when every event was accepted
//     except those too large to send at all, which it names;
//   - an error wrapping pipeline.ErrAccess when EventBridge refuses the
//     bus or the caller (missing bus, access denied, bad credentials);
//   - another error, wrapping ErrFailedEntries when entries kept failing,
//     otherwise transient; joined with a *TooLargeError when there is one.
func (s *Sink) PutEvents(ctx context.Context, dest *pipeline.Destination, b *pipeline.Batch, findings []*pipeline.Finding) error {
	region := b.Region
	if region == "" {
		region = dest.Region
	}
	api, err := s.client(ctx, region)
	if err != nil {
		return err
	}
	var tooLarge *TooLargeError
	var call []pending
	callSize := 0
	for _, f := range findings {
		p := pending{finding: f, entry: types.PutEventsRequestEntry{
			Source:       aws.String(s.source),
			DetailType:   aws.String(DetailType),
			Detail:       aws.String(string(f.Raw)),
			Time:         aws.Time(time.UnixMilli(f.UpdatedAt).UTC()),
			EventBusName: aws.String(s.bus),
		}}
		p.size = EntrySize(&p.entry)
		if p.size > MaxRequestSize {
			if tooLarge == nil {
				tooLarge = &TooLargeError{}
			}
			tooLarge.Findings = append(tooLarge.Findings, f)
			tooLarge.Sizes = append(tooLarge.Sizes, p.size)
			s.log.Warn("finding too large for an EventBridge event; not sent", slog.String("finding", f.ID),
				slog.Int("bytes", p.size), slog.String("destination", dest.ID))
			continue
		}
		if len(call) == MaxEntries || callSize+p.size > MaxRequestSize {
			if err := s.send(ctx, api, call); err != nil {
				return joinTooLarge(err, tooLarge)
			}
			call, callSize = call[:0], 0
		}
		call = append(call, p)
		callSize += p.size
	}
	if len(call) > 0 {
		if err := s.send(ctx, api, call); err != nil {
			return joinTooLarge(err, tooLarge)
		}
	}
	if tooLarge != nil {
		return tooLarge
	}
	return nil
}

func joinTooLarge(err error, tl *TooLargeError) error {
	if tl == nil {
		return err
	}
	return errors.Join(err, tl)
}

// send sends one call's entries, retrying failed entries alone.
func (s *Sink) send(ctx context.Context, api API, entries []pending) error {
	todo := append([]pending(nil), entries...)
	var lastErr error
	for attempt := 0; attempt < s.attempts; attempt++ {
		if attempt > 0 {
			if err := s.sleep(ctx, attempt); err != nil {
				return fmt.Errorf("%w (last: %w)", err, lastErr)
			}
		}
		in := &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, len(todo))}
		for i := range todo {
			in.Entries[i] = todo[i].entry
		}
		s.calls.Add(1)
		out, err := api.PutEvents(ctx, in)
		if err != nil {
			if access := classify(err); pipeline.IsAccess(access) {
				return fmt.Errorf("eventbridge PutEvents on %s: %w", s.bus, access)
			}
			lastErr = fmt.Errorf("eventbridge PutEvents on %s: %w", s.bus, err)
			if ctx.Err() != nil {
				return lastErr
			}
			continue
		}
		if out.FailedEntryCount == 0 {
			return nil
		}
		var failed []pending
		var codes []string
		for i, r := range out.Entries {
			if i < len(todo) && r.ErrorCode != nil {
				failed = append(failed, todo[i])
				codes = append(codes, fmt.Sprintf("%s: %s %s", todo[i].finding.ID, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage)))
			}
		}
		if len(failed) == 0 { // a count without entries: resend all
			failed = todo
		}
		lastErr = fmt.Errorf("eventbridge PutEvents on %s: %d of %d entries failed (%s): %w", s.bus, len(failed), len(todo), strings.Join(codes, "; "), ErrFailedEntries)
		s.log.Debug("retrying failed EventBridge entries", slog.Int("failed", len(failed)), slog.Int("attempt", attempt+1))
		todo = failed
	}
	return lastErr
}

// sleep waits the backoff before attempt (1-based retries), with up to 50%
// jitter, or until ctx ends.
func (s *Sink) sleep(ctx context.Context, attempt int) error {
	d := s.base << min(attempt-1, 30)
	if d > s.max || d <= 0 {
		d = s.max
	}
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// accessCodes are EventBridge's answers that only fixing the configuration
// (bus, permissions, credentials) can cure.
var accessCodes = map[string]bool{
	"AccessDeniedException":           true,
	"ResourceNotFoundException":       true, // no such bus
	"NotAuthorizedForSourceException": true,
	"UnrecognizedClientException":     true,
	"InvalidSignatureException":       true,
	"InvalidClientTokenId":            true,
	"ValidationException":             true,
}

// classify wraps an access error with pipeline.ErrAccess.
func classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && accessCodes[apiErr.ErrorCode()] {
		return fmt.Errorf("%w: %w", pipeline.ErrAccess, err)
	}
	return err
}
