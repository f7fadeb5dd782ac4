package decode

import (
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

func TestParseTimestamp(t *testing.T) {
	ms := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("bad expectation %q: %v", s, err)
		}
		return tm.UnixMilli()
	}
	tests := []struct {
		name   string
		json   string // the JSON value
		want   int64
		wantOK bool
	}{
		// The samples' updatedAt form.
		{name: "ISO milliseconds Z", json: `"2020-03-11T10:19:48.313Z"`, want: ms("2020-03-11T10:19:48.313Z"), wantOK: true},
		// No fraction (panther's launchTime, the CLI's eventFirstSeen).
		{name: "ISO seconds Z", json: `"2018-08-26T14:17:23Z"`, want: ms("2018-08-26T14:17:23Z"), wantOK: true},
		// One fractional digit is tenths.
		{name: "ISO one digit", json: `"2018-08-26T14:17:23.5Z"`, want: ms("2018-08-26T14:17:23.5Z"), wantOK: true},
		// Nine digits are truncated to milliseconds, not rounded.
		{name: "ISO nanoseconds truncated", json: `"2018-08-26T14:17:23.999999999Z"`, want: ms("2018-08-26T14:17:23.999Z"), wantOK: true},
		// Offsets move the instant to UTC.
		{name: "ISO positive offset", json: `"2018-08-26T16:17:23.100+02:00"`, want: ms("2018-08-26T14:17:23.100Z"), wantOK: true},
		{name: "ISO negative offset", json: `"2018-08-26T09:47:23-04:30"`, want: ms("2018-08-26T14:17:23Z"), wantOK: true},
		// RFC 3339 allows lowercase separators.
		{name: "ISO lowercase", json: `"2018-08-26t14:17:23z"`, want: ms("2018-08-26T14:17:23Z"), wantOK: true},
		// Leap day of a leap year.
		{name: "ISO leap day", json: `"2024-02-29T00:00:00Z"`, want: ms("2024-02-29T00:00:00Z"), wantOK: true},
		// Epoch seconds with a fraction (s3BucketDetails.createdAt).
		{name: "epoch seconds fraction", json: `1513612691.551`, want: 1513612691551, wantOK: true},
		// Whole epoch seconds (additionalInfo.apiCalls.firstSeen).
		{name: "epoch seconds", json: `1513721039`, want: 1513721039000, wantOK: true},
		// Epoch milliseconds (canary's launchTime).
		{name: "epoch milliseconds", json: `1492735675000`, want: 1492735675000, wantOK: true},
		// The threshold itself is milliseconds.
		{name: "threshold is milliseconds", json: `100000000000`, want: 100000000000, wantOK: true},
		// Just under the threshold is seconds.
		{name: "under threshold is seconds", json: `99999999999`, want: 99999999999000, wantOK: true},
		// Numeric strings are read like numbers.
		{name: "numeric string seconds", json: `"1513612691.551"`, want: 1513612691551, wantOK: true},
		{name: "numeric string milliseconds", json: `"1492735675000"`, want: 1492735675000, wantOK: true},
		// Exponent notation goes through float64.
		{name: "exponent seconds", json: `1.513612691551e9`, want: 1513612691551, wantOK: true},
		// Zero is the epoch.
		{name: "zero", json: `0`, want: 0, wantOK: true},
		// Refusals.
		{name: "word", json: `"yesterday"`},
		{name: "empty string", json: `""`},
		{name: "date only", json: `"2020-03-11"`},
		{name: "no zone", json: `"2020-03-11T10:19:48.313"`},
		{name: "no seconds", json: `"2020-03-11T10:19Z"`},
		{name: "space separator", json: `"2020-03-11 10:19:48Z"`},
		{name: "month 13", json: `"2020-13-11T10:19:48Z"`},
		{name: "February 30", json: `"2021-02-29T10:19:48Z"`},
		{name: "hour 24", json: `"2020-03-11T24:00:00Z"`},
		{name: "ten fractional digits", json: `"2020-03-11T10:19:48.1234567890Z"`},
		{name: "empty fraction", json: `"2020-03-11T10:19:48.Z"`},
		{name: "basic offset", json: `"2020-03-11T10:19:48+0200"`},
		{name: "trailing text", json: `"2020-03-11T10:19:48Zx"`},
		{name: "negative epoch", json: `-1`},
		{name: "leading zero", json: `"01513612691"`},
		{name: "beyond year 9999", json: `99999999999999999`},
		{name: "boolean", json: `true`},
		{name: "null", json: `null`},
		{name: "object", json: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := fastjson.MustParse(tt.json)
			got, ok := ParseTimestamp(v)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("ParseTimestamp(%s) = %d, %v; want %d, %v", tt.json, got, ok, tt.want, tt.wantOK)
			}
			if v.Type() == fastjson.TypeString {
				got, ok = ParseTimestampString(string(v.GetStringBytes()))
			} else {
				got, ok = ParseTimestampString(tt.json)
			}
			if v.Type() == fastjson.TypeString || v.Type() == fastjson.TypeNumber {
				if ok != tt.wantOK || got != tt.want {
					t.Errorf("ParseTimestampString(%s) = %d, %v; want %d, %v", tt.json, got, ok, tt.want, tt.wantOK)
				}
			}
		})
	}
}

func TestParseTimestampNil(t *testing.T) {
	// An absent member (Get returns nil) is not a timestamp.
	if _, ok := ParseTimestamp(nil); ok {
		t.Error("ParseTimestamp(nil) ok")
	}
}

func TestParseTimestampAgreesWithTimePackage(t *testing.T) {
	// Every millisecond-precision instant of a spread of years round-trips
	// through pipeline's layout.
	for _, year := range []int{1, 1969, 1970, 1999, 2000, 2016, 2024, 2100, 9999} {
		tm := time.Date(year, time.December, 31, 23, 59, 59, 999_000_000, time.UTC)
		s := tm.Format("2006-01-02T15:04:05.000Z")
		got, ok := ParseTimestampString(s)
		if !ok || got != tm.UnixMilli() {
			t.Errorf("ParseTimestampString(%q) = %d, %v; want %d", s, got, ok, tm.UnixMilli())
		}
	}
}

func TestParseTimestampAllocations(t *testing.T) {
	v := fastjson.MustParse(`["2020-03-11T10:19:48.313Z",1513612691.551]`)
	allocs := testing.AllocsPerRun(100, func() {
		for _, e := range v.GetArray() {
			if _, ok := ParseTimestamp(e); !ok {
				t.Fatal("not parsed")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("ParseTimestamp allocates %.0f times", allocs)
	}
}
