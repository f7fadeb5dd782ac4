package status

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func sample() *Report {
	now := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	return &Report{
		Generated: now,
		Destinations: []Destination{
			{ID: "aaaa", Account: "111122223333", Region: "us-east-1", Type: "S3", Target: "arn:aws:s3:::ok-bucket", Status: "PUBLISHING",
				Frequency: "SIX_HOURS", LastExport: now.Add(-time.Minute), PendingWindows: 1, NextFlush: now.Add(5 * time.Hour)},
			{ID: "bbbb", Account: "444455556666", Region: "eu-west-1", Type: "S3", Target: "arn:aws:s3:::gone-bucket", Status: "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY",
				PublishingFailureStartTimestamp: now.Add(-10 * time.Minute).UnixMilli(), LastError: "NoSuchBucket: The specified bucket does not exist",
				Frequency: "FIFTEEN_MINUTES", BacklogBatches: 3, OldestPending: 9 * time.Minute},
		},
		Consumers:      []Consumer{{Name: "objects", Pending: 3, AckPending: 1, OldestPending: 9 * time.Minute}},
		PendingUpdates: 42,
	}
}

func TestTableAndJSON(t *testing.T) {
	r := sample()
	r.Sort()
	if r.Destinations[0].ID != "bbbb" {
		t.Errorf("a failing destination is not listed first")
	}
	if r.Healthy() {
		t.Error("a report with a failing destination is healthy")
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", "2026-12-03 12:50:00Z (10m0s ago)", "NoSuchBucket", "PUBLISHING", "18:00:00Z (1 window)", "updates waiting in windows: 42"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Destinations []map[string]any `json:"destinations"`
	}
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Destinations[0]["oldestPendingSeconds"].(float64) != 540 || back.Destinations[0]["publishingFailureStartTimestamp"] == nil {
		t.Errorf("JSON %s", b.String())
	}
}

func TestPage(t *testing.T) {
	srv := httptest.NewServer(Handler(func(*http.Request) (*Report, error) { return sample(), nil }))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	html := b.String()
	for _, want := range []string{`http-equiv="refresh"`, `id="alert-bbbb"`, "Export access error", "NoSuchBucket", `class="ok" id="dest-aaaa"`, "export needs attention"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "http://") && !strings.Contains(html, "href=\"/metrics\"") {
		t.Error("the page loads something from outside")
	}
}
