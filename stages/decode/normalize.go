package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// ErrInvalid is wrapped by every error that judges the input itself (not JSON,
// not a finding, a field with a wrong value), as opposed to a failure to read
// it. The wrapping error's message is the dead-letter reason: it names the
// value and what was expected, on one line, e.g. `missing id` or
// `accountId "12345678901" is not 12 digits`.
var ErrInvalid = errors.New("invalid finding")

// invalidError carries a dead-letter reason; its message is the reason alone
// (no prefix), because that is what goes into the Gdexport-Reason header.
type invalidError struct{ reason string }

func (e *invalidError) Error() string { return e.reason }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{reason: fmt.Sprintf(format, args...)}
}

// maxDepth bounds nesting. fastjson's validator recurses once per level
// without a limit of its own, so deeper input is refused before it is
// validated: a hostile message must not grow a worker's stack. It equals the
// limit of fastjson's parser, which Decode uses afterwards.
const maxDepth = fastjson.MaxDepth

// maxReason bounds the part of a validator message quoted in a reason:
// fastjson chains one clause per nesting level.
const maxReason = 200

// docInfo is what one pre-validation pass learns about a document.
type docInfo struct {
	first   byte // first non-whitespace byte; 0 for empty input
	ws      bool // whitespace outside strings (the document is not compact)
	tooDeep bool
	// Top-level members of an object document. Offsets are 1 + the index of
	// the member's value, so that 0 means absent.
	pascal         bool // a top-level AccountId, Id or SchemaVersion
	account        bool // a top-level accountId or AccountId
	filter         bool // a top-level Criterion, FindingCriteria or findingCriteria
	detailType     int
	detail         int
	findings       int
	findingsPascal bool   // the get-findings key is "Findings", not "findings"
	dup            string // a duplicated envelope member
}

// isSpace reports JSON's insignificant whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// compactStop marks the bytes where compact stops copying a run: whitespace
// and the quote that starts a string.
var compactStop = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, '"': true}

// prescan walks b once, string-aware, before b is validated: it bounds the
// nesting depth, notes whether b holds whitespace outside strings and records
// the top-level members Normalize classifies on. Its results are trusted only
// once b has been validated.
func prescan(b []byte) docInfo {
	var d docInfo
	n := len(b)
	i := 0
	for i < n && isSpace(b[i]) {
		i++
	}
	if i == n {
		return d
	}
	d.first = b[i]
	d.ws = i > 0
	depth := 0
	for ; i < n; i++ {
		switch c := b[i]; c {
		case ' ', '\t', '\n', '\r':
			d.ws = true
		case '"':
			start := i
			e := stringEnd(b, i)
			if e == n {
				// The rest of b is one string (or not JSON): no member
				// follows it.
				return d
			}
			i = e - 1
			if depth == 1 && d.first == '{' {
				j := skipSpace(b, i+1)
				if j < n && b[j] == ':' {
					d.member(b[start+1:i], skipSpace(b, j+1))
				}
			}
		case '{', '[':
			depth++
			if depth > maxDepth {
				d.tooDeep = true
				return d
			}
		case '}', ']':
			depth--
		}
	}
	return d
}

// member records a top-level member whose value starts at val.
func (d *docInfo) member(key []byte, val int) {
	switch string(key) {
	case "detail-type":
		if d.detailType != 0 {
			d.dup = "detail-type"
		}
		d.detailType = val + 1
	case "detail":
		if d.detail != 0 {
			d.dup = "detail"
		}
		d.detail = val + 1
	case "accountId":
		d.account = true
	case "AccountId":
		d.account, d.pascal = true, true
	case "Id", "SchemaVersion":
		d.pascal = true
	case "Findings", "findings":
		if d.findings == 0 {
			d.findings = val + 1
			d.findingsPascal = key[0] == 'F'
		}
	case "Criterion", "FindingCriteria", "findingCriteria":
		d.filter = true
	}
}

// trimSpace removes JSON whitespace around b.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just after the string that starts with the
// quote at b[i], or len(b) when it is not terminated. A quote ends the string
// when an even number of backslashes precedes it.
func stringEnd(b []byte, i int) int {
	j := i + 1
	// Most strings of a finding are short member names and enum values, for
	// which a plain loop beats bytes.IndexByte's call overhead.
	for end := min(j+24, len(b)); j < end; j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	if j >= len(b) {
		return len(b)
	}
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		q := j + k
		bs := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just after the value that starts at b[i]. b
// must be valid JSON.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && !isDelim(b[j]) {
			j++
		}
		return j
	}
}

// isDelim reports the bytes that end a number or a literal.
func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', ']', '}', '[', '{', '"':
		return true
	}
	return false
}

// kind names a JSON value by its first byte, for reasons.
func kind(first byte) string {
	switch first {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// inspect pre-scans and validates data.
func inspect(data []byte) (docInfo, error) {
	d := prescan(data)
	if d.first == 0 {
		return d, invalidf("not JSON: empty input")
	}
	if d.tooDeep {
		return d, invalidf("not JSON: nested deeper than %d levels", maxDepth)
	}
	if err := fastjson.ValidateBytes(data); err != nil {
		msg := oneLine(err.Error())
		if len(msg) > maxReason {
			cut := len(msg) - maxReason
			for cut < len(msg) && !utf8.RuneStart(msg[cut]) {
				cut++
			}
			msg = "…" + msg[cut:]
		}
		return d, invalidf("not JSON: %s", msg)
	}
	if d.dup != "" {
		return d, invalidf("not a finding: duplicate key %q", d.dup)
	}
	return d, nil
}

// Normalize appends to dst the exported line of one finding document: data
// with insignificant whitespace removed and everything else kept byte for
// byte (key order, unknown fields, number text, string escapes). Member names
// of AWS CLI PascalCase findings (a top-level "AccountId", "Id" or
// "SchemaVersion") get their first letter lowercased, exactly as
// `k[:1].lower() + k[1:]` does; values are never touched. An EventBridge
// event with "detail-type": "GuardDuty Finding" is unwrapped to its detail.
//
// Invalid input returns dst unchanged and an error wrapping ErrInvalid: not
// JSON (or nested deeper than 300 levels), a top-level value that is not an
// object, an EventBridge event of another detail-type, a get-findings response
// ({"Findings":[…]} holds several findings: Split separates them) and a filter
// document. Normalize does not judge the finding's fields; Decode does.
// Normalize is safe for concurrent use and allocates only when dst grows.
func Normalize(dst, data []byte) ([]byte, error) {
	return normalize(dst, data, false)
}

func normalize(dst, data []byte, inEnvelope bool) ([]byte, error) {
	// A trailing newline alone must not cost a compaction pass.
	data = trimSpace(data)
	d, err := inspect(data)
	if err != nil {
		return dst, err
	}
	if d.first != '{' {
		return dst, invalidf("not a finding: top-level value is %s", kind(d.first))
	}
	if d.detailType != 0 {
		if inEnvelope {
			return dst, invalidf("not a finding: an EventBridge event inside an EventBridge event")
		}
		detail, err := envelopeDetail(data, d)
		if err != nil {
			return dst, err
		}
		return normalize(dst, detail, true)
	}
	if !d.account {
		if d.findings != 0 && data[d.findings-1] == '[' {
			key := "findings"
			if d.findingsPascal {
				key = "Findings"
			}
			return dst, invalidf(`not a finding: a get-findings response ({"%s":[…]}) holding findings`, key)
		}
		if d.filter {
			return dst, invalidf("a filter document, not a finding")
		}
	}
	if !d.pascal && !d.ws {
		return append(dst, data...), nil
	}
	if d.pascal {
		return compactCamel(dst, data), nil
	}
	return compact(dst, data, false), nil
}

// envelopeDetail returns the detail of an EventBridge event whose detail-type
// is "GuardDuty Finding". data is valid JSON.
func envelopeDetail(data []byte, d docInfo) ([]byte, error) {
	dt := data[d.detailType-1:]
	if dt[0] != '"' {
		return nil, invalidf("not a finding: an EventBridge event whose detail-type is %s, not a string", kind(dt[0]))
	}
	raw := dt[:stringEnd(dt, 0)]
	if string(raw) != `"GuardDuty Finding"` {
		// Escapes in a detail-type are legal JSON; compare the decoded text.
		var name string
		if err := json.Unmarshal(raw, &name); err != nil || name != "GuardDuty Finding" {
			return nil, invalidf("not a finding: an EventBridge event of detail-type %q, not \"GuardDuty Finding\"", excerpt(name))
		}
	}
	if d.detail == 0 {
		return nil, invalidf(`not a finding: an EventBridge "GuardDuty Finding" event without detail`)
	}
	det := data[d.detail-1:]
	if det[0] != '{' {
		return nil, invalidf("not a finding: an EventBridge event whose detail is %s, not an object", kind(det[0]))
	}
	return det[:skipValue(det, 0)], nil
}

// compact appends b without insignificant whitespace, lowercasing the first
// letter of every member name when camel is set. b must be valid JSON.
func compact(dst, b []byte, camel bool) []byte {
	n := len(b)
	i := 0
	for i < n {
		j := i
		for j < n && !compactStop[b[j]] {
			j++
		}
		dst = append(dst, b[i:j]...)
		if j >= n {
			break
		}
		if b[j] != '"' {
			i = j + 1
			continue
		}
		e := stringEnd(b, j)
		if camel && isMemberName(b, e) {
			dst = appendLowerFirst(dst, b[j:e])
		} else {
			dst = append(dst, b[j:e]...)
		}
		i = e
	}
	return dst
}

// mapMembers are the members of a finding whose values are maps in
// GuardDuty's API model, with how many levels of map keys they hold: their
// keys are user data (a resource type such as "AWS::S3::Bucket", a profile
// name), which the AWS CLI prints as they are, so they are never converted.
// Values below the map levels are structures again.
var mapMembers = map[string]int{
	"AffectedResources": 1, // AwsApiCallAction: map<string, string>
	"Behavior":          2, // AnomalyUnusual: map<string, map<string, AnomalyObject>>
	"Profiles":          2, // Anomaly: map<string, map<string, []AnomalyObject>>
}

// compactCamel is compact with camel set, for AWS CLI output: it lowercases
// the first letter of member names, except the keys of the map-valued
// members (mapMembers), which it copies. b must be valid JSON.
func compactCamel(dst, b []byte) []byte {
	// One entry per open container: for an object, how many levels of map
	// keys it holds (0: a structure, whose keys are member names).
	var stackBuf [32]int
	stack := stackBuf[:0]
	pending := 0 // map levels of the value that comes next
	n := len(b)
	for i := 0; i < n; {
		c := b[i]
		switch {
		case isSpace(c):
			i++
			continue
		case c == '{':
			stack = append(stack, pending)
			pending = 0
		case c == '[':
			stack = append(stack, 0) // elements of a list are structures
			pending = 0
		case c == '}' || c == ']':
			stack = stack[:len(stack)-1]
		case c == ',':
			pending = 0 // the value that had it was a scalar
		case c == '"':
			e := stringEnd(b, i)
			if isMemberName(b, e) {
				levels := 0
				if len(stack) > 0 {
					levels = stack[len(stack)-1]
				}
				if levels > 0 {
					dst = append(dst, b[i:e]...) // a map key: user data
					pending = levels - 1
				} else {
					dst = appendLowerFirst(dst, b[i:e])
					pending = mapMembers[string(b[i+1:e-1])]
				}
			} else {
				dst = append(dst, b[i:e]...)
			}
			i = e
			continue
		}
		dst = append(dst, c)
		i++
	}
	return dst
}

// isMemberName reports whether the string that ends just before b[e] is a
// member name: in valid JSON a string followed by ':' is one.
func isMemberName(b []byte, e int) bool {
	e = skipSpace(b, e)
	return e < len(b) && b[e] == ':'
}

// appendLowerFirst appends the quoted member name s with its first character
// lowercased as Python's str.lower does it. A first character written as a
// \u escape is decoded, lowercased and written back as an escape; every other
// byte is copied.
func appendLowerFirst(dst, s []byte) []byte {
	body := s[1 : len(s)-1]
	if len(body) == 0 {
		return append(dst, s...)
	}
	c := body[0]
	switch {
	case 'A' <= c && c <= 'Z':
		dst = append(dst, '"', c+('a'-'A'))
		dst = append(dst, body[1:]...)
		return append(dst, '"')
	case c < utf8.RuneSelf && c != '\\':
		return append(dst, s...)
	case c == '\\':
		r, size := escapedRune(body)
		if r < 0 {
			return append(dst, s...)
		}
		l1, l2 := lowerRune(r)
		if l1 == r && l2 < 0 {
			return append(dst, s...)
		}
		dst = append(dst, '"')
		dst = appendEscapedRune(dst, l1)
		if l2 >= 0 {
			dst = appendEscapedRune(dst, l2)
		}
		dst = append(dst, body[size:]...)
		return append(dst, '"')
	default:
		r, size := utf8.DecodeRune(body)
		if r == utf8.RuneError {
			return append(dst, s...)
		}
		l1, l2 := lowerRune(r)
		if l1 == r && l2 < 0 {
			return append(dst, s...)
		}
		dst = append(dst, '"')
		dst = utf8.AppendRune(dst, l1)
		if l2 >= 0 {
			dst = utf8.AppendRune(dst, l2)
		}
		dst = append(dst, body[size:]...)
		return append(dst, '"')
	}
}

// lowerRune lowercases r as Python's str.lower does: unicode.ToLower, except
// U+0130 (İ), whose full lowercase mapping is two runes. l2 is -1 when the
// result is one rune.
func lowerRune(r rune) (l1, l2 rune) {
	if r == 'İ' {
		return 'i', '\u0307'
	}
	return unicode.ToLower(r), -1
}

// escapedRune decodes the \uXXXX escape (or surrogate pair) at the start of
// body. It returns -1 for any other escape and for a lone surrogate, which
// decoders turn into U+FFFD, a character without case.
func escapedRune(body []byte) (r rune, size int) {
	if len(body) < 6 || body[1] != 'u' {
		return -1, 0
	}
	r = hex4(body[2:6])
	if r < 0 || !utf16.IsSurrogate(r) {
		return r, 6
	}
	if len(body) < 12 || body[6] != '\\' || body[7] != 'u' {
		return -1, 0
	}
	r2 := hex4(body[8:12])
	dr := utf16.DecodeRune(r, r2)
	if r2 < 0 || dr == utf8.RuneError {
		return -1, 0
	}
	return dr, 12
}

// hex4 decodes four hexadecimal digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

// appendEscapedRune appends r as a JSON \u escape (a surrogate pair beyond
// the Basic Multilingual Plane).
func appendEscapedRune(dst []byte, r rune) []byte {
	const hexDigits = "0123456789abcdef"
	if r > 0xFFFF {
		r1, r2 := utf16.EncodeRune(r)
		return appendEscapedRune(appendEscapedRune(dst, r1), r2)
	}
	return append(dst, '\\', 'u', hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}

// oneLine escapes control characters, which fastjson's messages may quote
// raw ("got \n"): a reason must fit in one header line.
func oneLine(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// excerpt shortens s for a reason.
func excerpt(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
