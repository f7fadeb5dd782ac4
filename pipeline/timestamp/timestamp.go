package timestamp

import (
	"math"
	"strconv"
)

// msThreshold separates epoch seconds from epoch milliseconds: any number at
// or above 10^11 is milliseconds (DESIGN.md §4). 10^11 seconds is the year
// 5138; 10^11 milliseconds is March 1973.
const msThreshold = 100_000_000_000

// maxMillis is 9999-12-31T23:59:59.999Z, the last instant ISO-8601's four-digit
// years can name; larger epoch values are refused so they cannot overflow.
const maxMillis = 253402300799999

// Parse reads text in any timestamp form DESIGN.md §4 accepts and returns it
// in epoch milliseconds:
//
//   - ISO-8601, date and time with seconds, 0–9 fractional digits and a zone
//     ("Z" or ±hh:mm): "2020-03-11T10:19:48.313Z", "2018-08-26T14:17:23Z",
//     "2018-08-26T16:17:23.5+02:00";
//   - epoch seconds, possibly with a fraction: "1513612691.551";
//   - epoch milliseconds: any number ≥ 10^11, e.g. "1492735675000".
//
// Digits beyond milliseconds are cut. ok is false for anything else (negative
// numbers, dates without a time or a zone, out-of-range fields). It does not
// allocate.
func Parse[T ~string | ~[]byte](s T) (ms int64, ok bool) {
	if len(s) > 4 && s[4] == '-' {
		return ParseISO(s)
	}
	return parseEpoch(s)
}

// FromFloat reads an epoch number held as a float64 (a JSON number read
// through float64): seconds below 10^11, milliseconds from there on. ok is
// false for negative, NaN, infinite and out-of-range values.
func FromFloat(f float64) (ms int64, ok bool) { return epochFloat(f) }

// parseEpoch reads a non-negative JSON number as epoch seconds or, at 10^11
// and above, epoch milliseconds.
func parseEpoch[T ~string | ~[]byte](s T) (int64, bool) {
	n := len(s)
	i := 0
	var whole int64
	for i < n && '0' <= s[i] && s[i] <= '9' {
		if i >= 18 {
			return 0, false
		}
		whole = whole*10 + int64(s[i]-'0')
		i++
	}
	if i == 0 || (s[0] == '0' && i > 1) {
		return 0, false
	}
	var frac int64 // milliseconds of the fraction, truncated
	if i < n && s[i] == '.' {
		i++
		start := i
		for i < n && '0' <= s[i] && s[i] <= '9' {
			if i-start < 3 {
				frac = frac*10 + int64(s[i]-'0')
			}
			i++
		}
		if i == start {
			return 0, false
		}
		for d := i - start; d < 3; d++ {
			frac *= 10
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		return parseEpochFloat(string(s))
	}
	if i != n {
		return 0, false
	}
	if whole >= msThreshold {
		return epochInt(whole)
	}
	return whole*1000 + frac, true
}

// epochInt reads a whole epoch number: seconds below 10^11, else
// milliseconds.
func epochInt(n int64) (int64, bool) {
	if n < msThreshold {
		return n * 1000, true
	}
	if n > maxMillis {
		return 0, false
	}
	return n, true
}

// parseEpochFloat reads an epoch number written with an exponent, through
// float64.
func parseEpochFloat(s string) (int64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return epochFloat(f)
}

// epochFloat reads an epoch number held as a float64.
func epochFloat(f float64) (int64, bool) {
	if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	if f == math.Trunc(f) && f <= maxMillis {
		return epochInt(int64(f))
	}
	if f >= msThreshold {
		if f > maxMillis {
			return 0, false
		}
		return int64(f), true
	}
	// Digits beyond milliseconds are cut, as parseEpoch cuts written text,
	// except where f is within float64's error (far below a microsecond at
	// today's epoch) of a whole millisecond: 1.513612691551e9 reads as
	// 1513612691.5509999 through fastjson.
	x := f * 1000
	if r := math.Round(x); math.Abs(x-r) < 1e-3 {
		return int64(r), true
	}
	return int64(math.Floor(x)), true
}

// ParseISO reads YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|±hh:mm). A lowercase t or z
// is accepted, as RFC 3339 allows.
func ParseISO[T ~string | ~[]byte](s T) (int64, bool) {
	n := len(s)
	if n < 20 {
		return 0, false
	}
	year, ok1 := digits(s, 0, 4)
	month, ok2 := digits(s, 5, 2)
	day, ok3 := digits(s, 8, 2)
	hour, ok4 := digits(s, 11, 2)
	minute, ok5 := digits(s, 14, 2)
	sec, ok6 := digits(s, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	i := 19
	var frac int64
	if s[i] == '.' {
		i++
		start := i
		for i < n && '0' <= s[i] && s[i] <= '9' {
			if i-start < 3 {
				frac = frac*10 + int64(s[i]-'0')
			}
			i++
		}
		if d := i - start; d == 0 || d > 9 {
			return 0, false
		}
		for d := i - start; d < 3; d++ {
			frac *= 10
		}
	}
	if i >= n {
		return 0, false
	}
	var offset int64 // minutes east of UTC
	switch s[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if n-i != 6 || s[i+3] != ':' {
			return 0, false
		}
		oh, ok1 := digits(s, i+1, 2)
		om, ok2 := digits(s, i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*60 + om)
		if s[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, false
	}
	if i != n {
		return 0, false
	}
	days := daysFromCivil(year, month, day)
	secs := days*86400 + int64(hour*3600+minute*60+sec) - offset*60
	return secs*1000 + frac, true
}

// ParseDate reads an ISO-8601 date alone, YYYY-MM-DD, as its midnight UTC
// (for bounds people write, such as a filter's "Gte": "2024-01-31").
func ParseDate[T ~string | ~[]byte](s T) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	year, ok1 := digits(s, 0, 4)
	month, ok2 := digits(s, 5, 2)
	day, ok3 := digits(s, 8, 2)
	if !(ok1 && ok2 && ok3) || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return 0, false
	}
	return daysFromCivil(year, month, day) * 86400 * 1000, true
}

// digits reads n decimal digits of s at i.
func digits[T ~string | ~[]byte](s T, i, n int) (int, bool) {
	v := 0
	for j := i; j < i+n; j++ {
		c := s[j]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm); years are 0–9999 here, so no negative eras.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
