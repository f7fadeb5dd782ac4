package eventbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/export"
)

// wireEntry is a PutEvents request entry as the wire carries it.
type wireEntry struct {
	Source       string
	DetailType   string
	Detail       string
	Time         float64 // epoch seconds
	EventBusName string
	Resources    []string
}

// endpoint speaks PutEvents' wire protocol (AWS JSON 1.1, X-Amz-Target:
// AWSEvents.PutEvents) to the real SDK client. fail decides, per call
// number and entry, whether the entry fails with InternalFailure.
type endpoint struct {
	t      *testing.T
	mu     sync.Mutex
	calls  [][]wireEntry
	fail   func(call int, e wireEntry) bool
	status int    // answer every call with this status (and code) when set
	code   string // error code of status
}

func (ep *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-Amz-Target"); got != "AWSEvents.PutEvents" {
		ep.t.Errorf("X-Amz-Target %q", got)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		ep.t.Errorf("Content-Type %q", ct)
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		ep.t.Errorf("request not signed with SigV4")
	}
	body, _ := io.ReadAll(r.Body)
	var in struct{ Entries []wireEntry }
	if err := json.Unmarshal(body, &in); err != nil {
		ep.t.Errorf("request body: %v", err)
	}
	ep.mu.Lock()
	call := len(ep.calls)
	ep.calls = append(ep.calls, in.Entries)
	ep.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if ep.status != 0 {
		w.WriteHeader(ep.status)
		fmt.Fprintf(w, `{"__type":%q,"message":"test says no"}`, ep.code)
		return
	}
	type result struct {
		EventId      string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	for i, e := range in.Entries {
		if ep.fail != nil && ep.fail(call, e) {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: "InternalFailure", ErrorMessage: "try again"})
			continue
		}
		out.Entries = append(out.Entries, result{EventId: fmt.Sprintf("ev-%d-%d", call, i)})
	}
	_ = json.NewEncoder(w).Encode(out)
}

func newSink(t *testing.T, ep *endpoint, opts ...Option) *Sink {
	t.Helper()
	srv := httptest.NewServer(ep)
	t.Cleanup(srv.Close)
	s, err := New("gdexport-findings", append([]Option{
		WithEndpoint(srv.URL), WithRegion("us-east-1"),
		WithCredentials(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")),
		WithRetry(4, time.Millisecond, 5*time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func findings(n, size int) []*pipeline.Finding {
	out := make([]*pipeline.Finding, n)
	base := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for i := range out {
		id := fmt.Sprintf("f%02d", i)
		raw := fmt.Sprintf(`{"id":%q,"accountId":"444455556666","region":"us-east-1","pad":%q}`, id, strings.Repeat("x", size))
		out[i] = &pipeline.Finding{ID: id, Raw: []byte(raw), UpdatedAt: base.Add(time.Duration(i) * time.Second).UnixMilli()}
	}
	return out
}

var (
	dest  = &pipeline.Destination{ID: "d1", Account: "111122223333", Region: "us-east-1"}
	batch = &pipeline.Batch{ID: "b1", Account: "111122223333", Region: "us-east-1"}
)

func TestPutEventsInCallsOfTen(t *testing.T) {
	ep := &endpoint{t: t}
	s := newSink(t, ep, WithSource("acme.findings"))
	fs := findings(25, 10)
	if err := s.PutEvents(context.Background(), dest, batch, fs); err != nil {
		t.Fatal(err)
	}
	if len(ep.calls) != 3 || len(ep.calls[0]) != 10 || len(ep.calls[1]) != 10 || len(ep.calls[2]) != 5 {
		t.Fatalf("calls of %v entries, want 10, 10, 5", sizes(ep.calls))
	}
	i := 0
	for _, call := range ep.calls {
		for _, e := range call {
			f := fs[i]
			i++
			if e.Source != "acme.findings" || e.DetailType != "GuardDuty Finding" || e.EventBusName != "gdexport-findings" {
				t.Fatalf("entry %d: %+v", i, e)
			}
			if e.Detail != string(f.Raw) {
				t.Fatalf("entry %d detail %s, want the finding as exported", i, e.Detail)
			}
			if math.Abs(e.Time-float64(f.UpdatedAt)/1000) > 0.001 {
				t.Fatalf("entry %d time %f, want updatedAt %d ms", i, e.Time, f.UpdatedAt)
			}
		}
	}
	if s.Calls() != 3 {
		t.Fatalf("Calls() = %d", s.Calls())
	}
}

func TestOnlyFailedEntriesRetried(t *testing.T) {
	// Entries f03 and f07 fail on the first call only.
	ep := &endpoint{t: t, fail: func(call int, e wireEntry) bool {
		return call == 0 && (strings.Contains(e.Detail, `"f03"`) || strings.Contains(e.Detail, `"f07"`))
	}}
	s := newSink(t, ep)
	if err := s.PutEvents(context.Background(), dest, batch, findings(10, 10)); err != nil {
		t.Fatal(err)
	}
	if len(ep.calls) != 2 || len(ep.calls[1]) != 2 {
		t.Fatalf("calls of %v entries, want 10 then the 2 failed", sizes(ep.calls))
	}
	if !strings.Contains(ep.calls[1][0].Detail, `"f03"`) || !strings.Contains(ep.calls[1][1].Detail, `"f07"`) {
		t.Fatalf("retried %v, want f03 and f07", ep.calls[1])
	}
	if ep.calls[0][0].Source != DefaultSource {
		t.Fatalf("default source %q", ep.calls[0][0].Source)
	}
}

func TestEntriesThatKeepFailing(t *testing.T) {
	ep := &endpoint{t: t, fail: func(_ int, e wireEntry) bool { return strings.Contains(e.Detail, `"f01"`) }}
	s := newSink(t, ep)
	err := s.PutEvents(context.Background(), dest, batch, findings(3, 10))
	if !errors.Is(err, ErrFailedEntries) || pipeline.IsAccess(err) || !strings.Contains(err.Error(), "f01") {
		t.Fatalf("err = %v, want ErrFailedEntries naming f01 (transient)", err)
	}
	if len(ep.calls) != 4 { // the retry attempts
		t.Fatalf("%d calls, want 4", len(ep.calls))
	}
}

func TestSizeLimit(t *testing.T) {
	ep := &endpoint{t: t}
	s := newSink(t, ep)
	fs := findings(5, 100<<10) // ~100 KiB each: two fit in 256 KB
	big := findings(1, 300<<10)[0]
	big.ID = "too-big"
	all := append([]*pipeline.Finding{fs[0], fs[1], big}, fs[2:]...)
	err := s.PutEvents(context.Background(), dest, batch, all)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || len(tl.Findings) != 1 || tl.Findings[0].ID != "too-big" {
		t.Fatalf("err = %v, want a TooLargeError naming too-big", err)
	}
	if !strings.Contains(tl.Reason(0), "exceeds the PutEvents limit") {
		t.Fatalf("reason %q", tl.Reason(0))
	}
	if fmt.Sprint(sizes(ep.calls)) != "[2 2 1]" {
		t.Fatalf("calls of %v entries, want [2 2 1]", sizes(ep.calls))
	}
	for _, call := range ep.calls {
		total := 0
		for _, e := range call {
			total += 14 + len(e.Source) + len(e.DetailType) + len(e.Detail)
			if strings.Contains(e.Detail, "too-big") {
				t.Fatal("the oversized finding was sent")
			}
		}
		if total > MaxRequestSize {
			t.Fatalf("call of %d bytes", total)
		}
	}
}

func TestCallErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		code   string
		access bool
		calls  int
	}{
		// A bus that does not exist or a denied caller needs the configuration fixed.
		{"missing bus", http.StatusBadRequest, "ResourceNotFoundException", true, 1},
		{"denied", http.StatusBadRequest, "AccessDeniedException", true, 1},
		// Throttling and 5xx are retried with backoff, then reported as transient.
		{"throttled", http.StatusBadRequest, "ThrottlingException", false, 4},
		{"unavailable", http.StatusServiceUnavailable, "ServiceUnavailable", false, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ep := &endpoint{t: t, status: tc.status, code: tc.code}
			s := newSink(t, ep)
			err := s.PutEvents(context.Background(), dest, batch, findings(1, 10))
			if err == nil || pipeline.IsAccess(err) != tc.access {
				t.Fatalf("err = %v, access %v, want %v", err, pipeline.IsAccess(err), tc.access)
			}
			if tc.calls > 0 && len(ep.calls) != tc.calls {
				t.Fatalf("%d calls, want %d", len(ep.calls), tc.calls)
			}
		})
	}
}

func TestOptionsRefused(t *testing.T) {
	cases := []struct {
		name string
		bus  string
		opt  Option
		want error
	}{
		// EventBridge refuses custom sources in the aws. namespace.
		{"aws source", "b", WithSource("aws.guardduty"), ErrSource},
		{"empty source", "b", WithSource(""), ErrSource},
		{"bad retry", "b", WithRetry(0, time.Second, time.Second), ErrOption},
		{"bad region", "b", WithRegion("mars"), ErrOption},
		{"empty bus", "", WithRetry(1, time.Second, time.Second), ErrOption},
		{"bad bus arn", "arn:aws:sqs:us-east-1:111122223333:q", WithRetry(1, time.Second, time.Second), ErrOption},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.bus, tc.opt); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func sizes(calls [][]wireEntry) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = len(c)
	}
	return out
}

// The export path dead-letters what TooLargeError names.
var _ export.Undeliverable = (*TooLargeError)(nil)
