package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/gdexport/gdexport/pipeline/timestamp"
)

// ErrInvalid is wrapped by every refusal of a filter or its criteria: an
// unknown attribute or operator, a malformed value, too many values, a bad
// name, action or rank.
var ErrInvalid = errors.New("invalid filter")

// MaxValues is the most values an Equals or NotEquals list may hold, as
// GuardDuty allows.
const MaxValues = 50

// Problem is one reason a filter or its criteria is refused, with the path
// of the offending member as the user wrote it, such as
// "criterion.service.archived.eq[0]".
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems is every reason a document is refused. It wraps ErrInvalid.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return ErrInvalid.Error() + ": " + strings.Join(lines, "; ")
}

// Unwrap lets errors.Is(err, ErrInvalid) hold.
func (ps Problems) Unwrap() error { return ErrInvalid }

// Prefix returns the problems with prefix+"." before every path (for a
// document nested in a larger one, such as a configuration file).
func (ps Problems) Prefix(prefix string) Problems {
	out := make(Problems, len(ps))
	for i, p := range ps {
		out[i] = p
		switch {
		case prefix == "":
		case p.Path == "":
			out[i].Path = prefix
		default:
			out[i].Path = prefix + "." + p.Path
		}
	}
	return out
}

// opKind is what an operator does.
type opKind uint8

const (
	opEquals opKind = iota
	opNotEquals
	opGreaterThan
	opGreaterThanOrEqual
	opLessThan
	opLessThanOrEqual
)

// operator is one FindingCriteria operator in its two spellings: PascalCase
// (the AWS CLI's) and camelCase (the wire's).
type operator struct {
	pascal, camel string
	kind          opKind
}

// operators is every operator GuardDuty accepts, deprecated names first.
var operators = []*operator{
	{"Eq", "eq", opEquals},
	{"Neq", "neq", opNotEquals},
	{"Gt", "gt", opGreaterThan},
	{"Gte", "gte", opGreaterThanOrEqual},
	{"Lt", "lt", opLessThan},
	{"Lte", "lte", opLessThanOrEqual},
	{"Equals", "equals", opEquals},
	{"NotEquals", "notEquals", opNotEquals},
	{"GreaterThan", "greaterThan", opGreaterThan},
	{"GreaterThanOrEqual", "greaterThanOrEqual", opGreaterThanOrEqual},
	{"LessThan", "lessThan", opLessThan},
	{"LessThanOrEqual", "lessThanOrEqual", opLessThanOrEqual},
}

var operatorByName = func() map[string]*operator {
	m := map[string]*operator{}
	for _, op := range operators {
		m[op.pascal] = op
		m[op.camel] = op
	}
	return m
}()

func (op *operator) isList() bool { return op.kind == opEquals || op.kind == opNotEquals }

func operatorNames() string {
	names := make([]string, 0, len(operators))
	for _, op := range operators[6:] {
		names = append(names, op.pascal)
	}
	return strings.Join(names, ", ") + " (or deprecated Eq, Neq, Gt, Gte, Lt, Lte; camelCase spellings too)"
}

// value is one value of an Equals or NotEquals list, with the number and
// timestamp it reads as, computed once at compile time.
type value struct {
	text   string
	num    float64
	isNum  bool
	ms     int64
	isTime bool
}

// condition is one (attribute, operator, value) of a criterion.
type condition struct {
	attr      string
	path      []string
	op        *operator
	timestamp bool
	values    []value // Equals, NotEquals
	bound     float64 // range operators; epoch ms for timestamp attributes
}

// Criteria is a compiled FindingCriteria: the conditions of every attribute,
// ANDed. It is immutable and safe for concurrent use.
type Criteria struct {
	conds []condition
}

// Len is the number of (attribute, operator) conditions.
func (c *Criteria) Len() int { return len(c.conds) }

// ParseCriteria compiles a FindingCriteria JSON document,
// {"Criterion": {"<attribute>": {"<operator>": <value>}}} in PascalCase or
// camelCase. See CompileCriteria.
func ParseCriteria(data []byte) (*Criteria, error) {
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, Problems{{Message: err.Error()}}
	}
	return CompileCriteria(doc)
}

// decodeJSON decodes one JSON value keeping numbers' text.
func decodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if d.More() {
		return nil, errors.New("not JSON: more than one value")
	}
	return v, nil
}

// CompileCriteria compiles a FindingCriteria decoded from JSON (numbers as
// json.Number or float64) or YAML (integers as int, int64 or uint64).
//
// Every attribute must be one GuardDuty accepts (Attributes); every operator
// one of Equals, NotEquals, GreaterThan, GreaterThanOrEqual, LessThan,
// LessThanOrEqual or the deprecated Eq, Neq, Gt, Gte, Lt, Lte, in PascalCase
// or camelCase; Equals and NotEquals take a list of 1–50 strings; the range
// operators take a number, or for timestamp attributes also an ISO-8601
// string (a number below 10^11 given for a timestamp attribute is epoch
// seconds, as DESIGN.md §4 reads findings). Anything else is refused with
// Problems naming every offending member. An empty Criterion matches every
// finding.
func CompileCriteria(doc any) (*Criteria, error) {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, Problems{{Message: fmt.Sprintf("%s is not a FindingCriteria: expected an object such as {\"Criterion\": {...}}", describe(doc))}}
	}
	var criterionKey string
	var criterion any
	for _, k := range sortedKeys(top) {
		switch k {
		case "Criterion", "criterion":
			if criterionKey != "" {
				add(k, "given twice (as %s and %s)", criterionKey, k)
				continue
			}
			criterionKey, criterion = k, top[k]
		default:
			add(k, "unknown member %q: a FindingCriteria holds only Criterion", k)
		}
	}
	if criterionKey == "" {
		if len(ps) == 0 {
			add("", "missing Criterion: expected {\"Criterion\": {\"<attribute>\": {\"<operator>\": <value>}}}")
		}
		return nil, ps
	}
	attrs, ok := criterion.(map[string]any)
	if !ok {
		add(criterionKey, "%s is not an object of attributes such as {\"type\": {\"Eq\": [\"Recon:EC2/Portscan\"]}}", describe(criterion))
		return nil, ps
	}
	c := &Criteria{}
	for _, attr := range sortedKeys(attrs) {
		p := criterionKey + "." + attr
		segs, known := attributes[attr]
		if !known {
			if s, ok := lowerAttributes[strings.ToLower(attr)]; ok {
				add(p, "unknown attribute %q: did you mean %q?", attr, s)
			} else {
				add(p, "unknown attribute %q: not one of the %d attributes GuardDuty filters on (stages/filter/attributes.txt)", attr, len(attributes))
			}
			continue
		}
		ops, ok := attrs[attr].(map[string]any)
		if !ok {
			add(p, "%s is not an object of operators such as {\"Eq\": [\"value\"]}", describe(attrs[attr]))
			continue
		}
		if len(ops) == 0 {
			add(p, "no operator: expected one of %s", operatorNames())
			continue
		}
		ts := isTimestampAttribute(segs)
		for _, name := range sortedKeys(ops) {
			op, known := operatorByName[name]
			if !known {
				add(p+"."+name, "unknown operator %q: expected one of %s", name, operatorNames())
				continue
			}
			cond := condition{attr: attr, path: segs, op: op, timestamp: ts}
			if compileValue(&cond, p+"."+name, ops[name], add) {
				c.conds = append(c.conds, cond)
			}
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	// Cheap conditions first: shallow paths fail fast.
	sort.SliceStable(c.conds, func(i, j int) bool { return len(c.conds[i].path) < len(c.conds[j].path) })
	return c, nil
}

// compileValue reads an operator's value into cond; it reports problems and
// returns false when the value is refused.
func compileValue(cond *condition, p string, v any, add func(path, format string, args ...any)) bool {
	if cond.op.isList() {
		if strs, ok := v.([]string); ok {
			list := make([]any, len(strs))
			for i, s := range strs {
				list[i] = s
			}
			v = list
		}
		list, ok := v.([]any)
		if !ok {
			add(p, "%s is not a list: %s takes a list of strings such as [\"value\"]", describe(v), cond.op.pascal)
			return false
		}
		if len(list) == 0 {
			add(p, "empty list: %s takes 1 to %d strings", cond.op.pascal, MaxValues)
			return false
		}
		if len(list) > MaxValues {
			add(p, "%d values: %s takes at most %d", len(list), cond.op.pascal, MaxValues)
			return false
		}
		ok = true
		for i, e := range list {
			s, isStr := e.(string)
			if !isStr {
				hint := ""
				if t, scalar := scalarText(e); scalar {
					hint = fmt.Sprintf(" such as %q (numbers and booleans compare by their JSON text)", t)
				}
				add(fmt.Sprintf("%s[%d]", p, i), "%s is not a string: %s takes strings%s", describe(e), cond.op.pascal, hint)
				ok = false
				continue
			}
			val := value{text: s}
			if isJSONNumber(s) {
				if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) {
					val.num, val.isNum = f, true
				}
			}
			if cond.timestamp {
				val.ms, val.isTime = timestamp.Parse(s)
			}
			cond.values = append(cond.values, val)
		}
		return ok
	}
	switch x := v.(type) {
	case string:
		if !cond.timestamp {
			add(p, "%s is not a number: %s takes a number", describe(v), cond.op.pascal)
			return false
		}
		ms, ok := timestamp.Parse(x)
		if !ok {
			ms, ok = timestamp.ParseDate(x) // a date alone: its midnight, UTC
		}
		if !ok {
			add(p, "%s is not a timestamp: %s on %s takes epoch milliseconds or an ISO-8601 string such as \"2024-01-31T00:00:00Z\" or \"2024-01-31\"", describe(v), cond.op.pascal, cond.attr)
			return false
		}
		cond.bound = float64(ms)
		return true
	default:
		f, ok := number(v)
		if !ok {
			add(p, "%s is not a number: %s takes a number", describe(v), cond.op.pascal)
			return false
		}
		if cond.timestamp {
			ms, ok := timestamp.FromFloat(f)
			if !ok {
				add(p, "%s is not a timestamp: %s on %s takes epoch milliseconds (or seconds below 10^11)", describe(v), cond.op.pascal, cond.attr)
				return false
			}
			f = float64(ms)
		}
		cond.bound = f
		return true
	}
}

// number reads a JSON or YAML number.
func number(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), 64); err != nil {
			return 0, false
		}
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case uint64:
		f = float64(x)
	case int32:
		f = float64(x)
	case uint32:
		f = float64(x)
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// scalarText is the JSON text of a number or boolean.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return string(x), true
	}
	if f, ok := number(v); ok {
		return formatNumber(f), true
	}
	return "", false
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// isJSONNumber reports whether s is written as a JSON number.
func isJSONNumber(s string) bool {
	i, n := 0, len(s)
	if i < n && s[i] == '-' {
		i++
	}
	start := i
	for i < n && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start || (s[start] == '0' && i-start > 1) {
		return false
	}
	if i < n && s[i] == '.' {
		i++
		f := i
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == f {
			return false
		}
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < n && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e := i
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == e {
			return false
		}
	}
	return i == n
}

// describe renders a decoded value for a message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 80 {
			x = x[:77] + "..."
		}
		return strconv.Quote(x)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case bool:
		return strconv.FormatBool(x)
	}
	if t, ok := scalarText(v); ok {
		return t
	}
	return fmt.Sprintf("%v", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Document returns the criteria as a FindingCriteria document, with member
// and operator names in PascalCase (the AWS CLI's, pascal true) or camelCase
// (the wire's). Deprecated operators keep their names; values are lists of
// strings, or numbers (epoch milliseconds for timestamp attributes) for the
// range operators.
func (c *Criteria) Document(pascal bool) map[string]any {
	attrs := map[string]any{}
	for i := range c.conds {
		cond := &c.conds[i]
		ops, _ := attrs[cond.attr].(map[string]any)
		if ops == nil {
			ops = map[string]any{}
			attrs[cond.attr] = ops
		}
		name := cond.op.camel
		if pascal {
			name = cond.op.pascal
		}
		if cond.op.isList() {
			vals := make([]any, len(cond.values))
			for j, v := range cond.values {
				vals[j] = v.text
			}
			ops[name] = vals
		} else {
			ops[name] = json.Number(formatNumber(cond.bound))
		}
	}
	key := "criterion"
	if pascal {
		key = "Criterion"
	}
	return map[string]any{key: attrs}
}
