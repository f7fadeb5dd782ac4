package generator

import (
	"strconv"
	"time"
)

// jw appends compact JSON in the order members are written: findings are
// written by hand so that member order is GuardDuty's, not a struct's or a
// map's.
type jw struct {
	b     []byte
	comma bool // a value was written at this level: the next needs a comma
}

func (w *jw) sep() {
	if w.comma {
		w.b = append(w.b, ',')
	}
}

// key starts a member; "" starts an array element.
func (w *jw) key(k string) {
	w.sep()
	if k != "" {
		w.b = appendString(w.b, k)
		w.b = append(w.b, ':')
	}
	w.comma = false
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = appendString(w.b, v)
	w.comma = true
}

func (w *jw) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
	w.comma = true
}

// float writes v with prec decimals (-1: the shortest exact form).
func (w *jw) float(k string, v float64, prec int) {
	w.key(k)
	w.b = strconv.AppendFloat(w.b, v, 'f', prec, 64)
	w.comma = true
}

func (w *jw) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
	w.comma = true
}

func (w *jw) null(k string) {
	w.key(k)
	w.b = append(w.b, "null"...)
	w.comma = true
}

// iso writes epoch ms as GuardDuty's ISO-8601 form with milliseconds.
func (w *jw) iso(k string, ms int64) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = time.UnixMilli(ms).UTC().AppendFormat(w.b, "2006-01-02T15:04:05.000Z")
	w.b = append(w.b, '"')
	w.comma = true
}

// isoSeconds writes epoch ms as ISO-8601 without fraction, as eventFirstSeen
// sometimes is.
func (w *jw) isoSeconds(k string, ms int64) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = time.UnixMilli(ms).UTC().AppendFormat(w.b, "2006-01-02T15:04:05Z")
	w.b = append(w.b, '"')
	w.comma = true
}

// epochSeconds writes epoch ms as seconds with a millisecond fraction
// (1513612691.551), as s3BucketDetails.createdAt is.
func (w *jw) epochSeconds(k string, ms int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, ms/1000, 10)
	w.b = append(w.b, '.')
	frac := ms % 1000
	w.b = append(w.b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	w.comma = true
}

func (w *jw) obj(k string, body func()) {
	w.key(k)
	w.b = append(w.b, '{')
	w.comma = false
	body()
	w.b = append(w.b, '}')
	w.comma = true
}

func (w *jw) arr(k string, body func()) {
	w.key(k)
	w.b = append(w.b, '[')
	w.comma = false
	body()
	w.b = append(w.b, ']')
	w.comma = true
}

func (w *jw) strs(k string, vs ...string) {
	w.arr(k, func() {
		for _, v := range vs {
			w.str("", v)
		}
	})
}

// appendString quotes s as JSON. Generated text is ASCII; quotes,
// backslashes and control characters are escaped anyway.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
