package decode

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline"
)

// parsers holds the parsers Decode and Split read normalised findings with.
var parsers fastjson.ParserPool

// maxIDLen bounds a finding id. GuardDuty's are 32 hex digits.
const maxIDLen = 128

// Decode normalises one ingest message (see Normalize) and reads the fields
// the pipeline routes and judges on into a Finding whose Raw is the
// normalised line. Seq is left 0.
//
// A finding is valid when it is a JSON object with
//
//   - id: a string of 1–128 letters, digits, '-' or '_' (it names KV keys,
//     Nats-Msg-Id and subject tokens downstream);
//   - type: a non-empty string;
//   - accountId: a string of exactly 12 digits;
//   - region: a string that IsRegion accepts;
//   - updatedAt: an ISO-8601 string (DESIGN.md §4), and createdAt likewise
//     when present;
//   - service, when present, an object whose archived is a boolean and whose
//     count is a whole number ≥ 0, each when present;
//   - severity, when present, a number;
//   - none of these members twice (readers disagree on which copy wins).
//
// null counts as absent for the optional members. Every other member, nested
// timestamps included, is carried without being judged. For invalid input
// Decode returns an error wrapping ErrInvalid whose message is the dead-letter
// reason, such as `missing id`, `accountId "12345678901" is not 12 digits`,
// `region "moon-1" is not an AWS Region name`, `updatedAt "yesterday" is not
// a timestamp` or `not a finding: top-level value is an array`.
//
// Decode is safe for concurrent use. It allocates the Finding, its Raw and one
// string backing ID, Type, AccountID and Region.
func Decode(data []byte) (*pipeline.Finding, error) {
	p := parsers.Get()
	defer parsers.Put(p)
	f, _, err := decodeWith(p, data)
	return f, err
}

// DecodeParsed is Decode that also returns the finding parsed by p, for
// stages that read members Decode does not keep; v is valid until p parses
// again.
func DecodeParsed(p *fastjson.Parser, data []byte) (*pipeline.Finding, *fastjson.Value, error) {
	return decodeWith(p, data)
}

func decodeWith(p *fastjson.Parser, data []byte) (*pipeline.Finding, *fastjson.Value, error) {
	if !utf8.Valid(data) {
		// JSON text is UTF-8 (RFC 8259): strict readers of the export
		// would reject the line.
		return nil, nil, invalidf("not valid UTF-8 at byte %d", invalidUTF8At(data))
	}
	raw, err := normalize(make([]byte, 0, len(data)), data, false)
	if err != nil {
		return nil, nil, err
	}
	v, err := p.ParseBytes(raw)
	if err != nil {
		// Unreachable: raw was validated by Normalize.
		return nil, nil, invalidf("not JSON: %v", err)
	}
	f := &pipeline.Finding{Raw: raw}
	if err := readFinding(v, f); err != nil {
		return nil, nil, err
	}
	return f, v, nil
}

// invalidUTF8At is the offset of the first byte that is not valid UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// Members Decode reads, as bits to notice duplicates.
const (
	memberID = 1 << iota
	memberType
	memberAccount
	memberRegion
	memberUpdated
	memberCreated
	memberService
	memberSeverity
	memberArchived
	memberCount
)

// readFinding fills f from the normalised finding v (an object).
func readFinding(v *fastjson.Value, f *pipeline.Finding) error {
	o, err := v.Object()
	if err != nil {
		return invalidf("not a finding: top-level value is %s", v.Type())
	}
	var id, typ, account, region, updated, created, service, severity *fastjson.Value
	var seen uint
	var dup string
	o.Visit(func(k []byte, kv *fastjson.Value) {
		var bit uint
		var slot **fastjson.Value
		switch string(k) {
		case "id":
			bit, slot = memberID, &id
		case "type":
			bit, slot = memberType, &typ
		case "accountId":
			bit, slot = memberAccount, &account
		case "region":
			bit, slot = memberRegion, &region
		case "updatedAt":
			bit, slot = memberUpdated, &updated
		case "createdAt":
			bit, slot = memberCreated, &created
		case "service":
			bit, slot = memberService, &service
		case "severity":
			bit, slot = memberSeverity, &severity
		default:
			return
		}
		if seen&bit != 0 {
			if dup == "" {
				dup = string(k)
			}
			return
		}
		seen |= bit
		*slot = kv
	})
	if dup != "" {
		return invalidf("duplicate key %q", dup)
	}

	idb, err := requiredString("id", id)
	if err != nil {
		return err
	}
	if !isFindingID(idb) {
		return invalidf("id %s is not a finding id (1–%d letters, digits, '-' or '_')", quote(idb), maxIDLen)
	}
	typb, err := requiredString("type", typ)
	if err != nil {
		return err
	}
	accb, err := requiredString("accountId", account)
	if err != nil {
		return err
	}
	if !isAccountID(accb) {
		return invalidf("accountId %s is not 12 digits", quote(accb))
	}
	regb, err := requiredString("region", region)
	if err != nil {
		return err
	}
	if !IsRegion(string(regb)) {
		return invalidf("region %s is not an AWS Region name", quote(regb))
	}
	if updated == nil {
		return invalidf("missing updatedAt")
	}
	if f.UpdatedAt, err = isoTimestamp("updatedAt", updated); err != nil {
		return err
	}
	if !isNull(created) {
		if f.CreatedAt, err = isoTimestamp("createdAt", created); err != nil {
			return err
		}
	}
	if err := readService(service, f); err != nil {
		return err
	}
	if !isNull(severity) {
		if severity.Type() != fastjson.TypeNumber {
			return invalidf("severity %s is not a number", render(severity))
		}
		f.Severity, _ = severity.Float64()
	}

	// One allocation for the four strings.
	var sb strings.Builder
	sb.Grow(len(idb) + len(typb) + len(accb) + len(regb))
	sb.Write(idb)
	sb.Write(typb)
	sb.Write(accb)
	sb.Write(regb)
	s := sb.String()
	a, b, c := len(idb), len(idb)+len(typb), len(idb)+len(typb)+len(accb)
	f.ID, f.Type, f.AccountID, f.Region = s[:a], s[a:b], s[b:c], s[c:]
	return nil
}

// readService reads service.archived and service.count.
func readService(service *fastjson.Value, f *pipeline.Finding) error {
	if isNull(service) {
		return nil
	}
	so, err := service.Object()
	if err != nil {
		return invalidf("service %s is not an object", render(service))
	}
	var archived, count *fastjson.Value
	var seen uint
	var dup string
	so.Visit(func(k []byte, kv *fastjson.Value) {
		var bit uint
		var slot **fastjson.Value
		switch string(k) {
		case "archived":
			bit, slot = memberArchived, &archived
		case "count":
			bit, slot = memberCount, &count
		default:
			return
		}
		if seen&bit != 0 {
			if dup == "" {
				dup = "service." + string(k)
			}
			return
		}
		seen |= bit
		*slot = kv
	})
	if dup != "" {
		return invalidf("duplicate key %q", dup)
	}
	if !isNull(archived) {
		switch archived.Type() {
		case fastjson.TypeTrue:
			f.Archived = true
		case fastjson.TypeFalse:
		default:
			return invalidf("service.archived %s is not a boolean", render(archived))
		}
	}
	if !isNull(count) {
		n, err := count.Int64()
		if count.Type() != fastjson.TypeNumber || err != nil || n < 0 {
			return invalidf("service.count %s is not a whole number", render(count))
		}
		f.Count = n
	}
	return nil
}

// isoTimestamp reads a member that must be an ISO-8601 string.
func isoTimestamp(name string, v *fastjson.Value) (int64, error) {
	if v.Type() == fastjson.TypeString {
		b, _ := v.StringBytes()
		if ms, ok := parseISO(b); ok {
			return ms, nil
		}
	}
	if _, ok := ParseTimestamp(v); ok {
		return 0, invalidf("%s %s is not an ISO-8601 timestamp", name, render(v))
	}
	return 0, invalidf("%s %s is not a timestamp", name, render(v))
}

// requiredString returns the text of a member that must be a non-empty
// string.
func requiredString(name string, v *fastjson.Value) ([]byte, error) {
	if v == nil {
		return nil, invalidf("missing %s", name)
	}
	if v.Type() != fastjson.TypeString {
		return nil, invalidf("%s %s is not a string", name, render(v))
	}
	b, _ := v.StringBytes()
	if len(b) == 0 {
		return nil, invalidf("%s is empty", name)
	}
	return b, nil
}

func isNull(v *fastjson.Value) bool { return v == nil || v.Type() == fastjson.TypeNull }

func isAccountID(b []byte) bool {
	if len(b) != 12 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isFindingID(b []byte) bool {
	if len(b) == 0 || len(b) > maxIDLen {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// quote renders a string value for a reason.
func quote(b []byte) string { return strconv.Quote(excerpt(string(b))) }

// render shows any value for a reason: strings quoted, others as JSON text,
// both shortened.
func render(v *fastjson.Value) string {
	if v.Type() == fastjson.TypeString {
		b, _ := v.StringBytes()
		return quote(b)
	}
	return excerpt(string(v.MarshalTo(nil)))
}

// Stage is the decode stage: it sets Envelope.Finding from Envelope.Data, or
// drops the message as pipeline.DropInvalid with Decode's reason as
// DropDetail. Bad input is never an error: Process always returns nil. The
// zero value is ready to use and safe for concurrent use.
type Stage struct{}

var _ pipeline.Stage = Stage{}

// Process decodes e.Data. It does not block. The finding parsed once here
// is kept on the envelope (Envelope.Parsed, a *fastjson.Value) for the
// filter stage; Envelope.Release gives the parser back.
func (Stage) Process(_ context.Context, e *pipeline.Envelope) error {
	p := parsers.Get()
	f, v, err := decodeWith(p, e.Data)
	if err != nil {
		parsers.Put(p)
		e.Dropf(pipeline.DropInvalid, err.Error())
		return nil
	}
	f.Seq = e.Seq
	e.Finding = f
	e.SetParsed(v, func() { parsers.Put(p) })
	return nil
}
