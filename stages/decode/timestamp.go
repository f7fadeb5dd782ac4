package decode

import (
	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline/timestamp"
)

// ParseTimestamp reads a timestamp value in any form DESIGN.md §4 accepts and
// returns it in epoch milliseconds:
//
//   - an ISO-8601 string, date and time with seconds, 0–9 fractional digits
//     and a zone ("Z" or ±hh:mm): "2020-03-11T10:19:48.313Z",
//     "2018-08-26T14:17:23Z", "2018-08-26T16:17:23.5+02:00";
//   - epoch seconds, possibly with a fraction: 1513612691.551;
//   - epoch milliseconds: any number ≥ 10^11, e.g. 1492735675000;
//   - either kind of epoch number written as a string: "1513612691.551".
//
// Digits beyond milliseconds are cut (JSON numbers are read through float64,
// so a cut lands on the nearest millisecond when the number is within
// float64's error of it). ok is false for anything else
// (other types, negative numbers, dates without a time or a zone, out-of-range
// fields). It does not allocate. The text rules live in pipeline/timestamp,
// which the filter stage shares.
func ParseTimestamp(v *fastjson.Value) (ms int64, ok bool) {
	if v == nil {
		return 0, false
	}
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return timestamp.Parse(b)
	case fastjson.TypeNumber:
		// fastjson keeps a number's text private and copying it out with
		// MarshalTo allocates, so the number is read as a float64.
		f, err := v.Float64()
		if err != nil {
			return 0, false
		}
		return timestamp.FromFloat(f)
	default:
		return 0, false
	}
}

// ParseTimestampString is ParseTimestamp for text: an ISO-8601 timestamp or an
// epoch number (seconds, or milliseconds when ≥ 10^11) written as text, such
// as a JSON number's literal.
func ParseTimestampString(s string) (ms int64, ok bool) {
	return timestamp.Parse(s)
}

// parseISO reads an ISO-8601 timestamp (see timestamp.ParseISO).
func parseISO[T ~string | ~[]byte](s T) (int64, bool) { return timestamp.ParseISO(s) }
