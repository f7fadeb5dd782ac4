package timestamp

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	iso := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("bad expectation %q: %v", s, err)
		}
		return tm.UnixMilli()
	}
	tests := []struct {
		name   string
		in     string
		want   int64
		wantOK bool
	}{
		// The form of updatedAt.
		{name: "ISO milliseconds", in: "2020-03-11T10:19:48.313Z", want: iso("2020-03-11T10:19:48.313Z"), wantOK: true},
		// An offset is applied.
		{name: "ISO offset", in: "2018-08-26T16:17:23.5+02:00", want: iso("2018-08-26T14:17:23.5Z"), wantOK: true},
		// Epoch seconds with a fraction (s3BucketDetails.createdAt).
		{name: "epoch seconds", in: "1513612691.551", want: 1513612691551, wantOK: true},
		// 10^11 and above is milliseconds.
		{name: "epoch milliseconds", in: "1492735675000", want: 1492735675000, wantOK: true},
		// A date alone is not a timestamp.
		{name: "date only", in: "2020-03-11", wantOK: false},
		// Words are not a timestamp.
		{name: "words", in: "yesterday", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.in)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("Parse(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
			gotB, okB := Parse([]byte(tt.in))
			if gotB != got || okB != ok {
				t.Fatalf("Parse([]byte(%q)) = %d, %v; the string form gave %d, %v", tt.in, gotB, okB, got, ok)
			}
		})
	}
}

func TestFromFloat(t *testing.T) {
	tests := []struct {
		name   string
		in     float64
		want   int64
		wantOK bool
	}{
		// Seconds become milliseconds.
		{name: "seconds", in: 1513612691, want: 1513612691000, wantOK: true},
		// float64's error on a fraction lands on the nearest millisecond.
		{name: "fraction", in: 1513612691.551, want: 1513612691551, wantOK: true},
		// Milliseconds stay.
		{name: "milliseconds", in: 1492735675000, want: 1492735675000, wantOK: true},
		// Negative epochs are refused.
		{name: "negative", in: -1, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FromFloat(tt.in)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("FromFloat(%v) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	for in, want := range map[string]int64{"2022-11-22": 1669075200000, "1970-01-01": 0, "2024-02-29": 1709164800000} {
		if got, ok := ParseDate(in); !ok || got != want {
			t.Errorf("ParseDate(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"2023-02-29", "2022-13-01", "2022-11-2", "2022/11/22", "2022-11-22T00:00:00Z"} {
		if _, ok := ParseDate(bad); ok {
			t.Errorf("ParseDate(%q) accepted", bad)
		}
	}
}
