package filter

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline/timestamp"
)

// Match reports whether the parsed finding v meets every condition of c. An
// Equals condition holds when any value the attribute path reaches equals any
// listed value; NotEquals when none does (so a missing attribute meets it);
// a range condition when any reached value compares true. Paths descend
// through lists: resource.instanceDetails.tags.key reaches every tag's key.
//
// Match does not allocate and does not retain v. v is read but fastjson
// unescapes strings lazily, so one v must not be matched from two
// goroutines at once.
func (c *Criteria) Match(v *fastjson.Value) bool {
	for i := range c.conds {
		if !c.conds[i].holds(v) {
			return false
		}
	}
	return true
}

func (cond *condition) holds(root *fastjson.Value) bool {
	hit := cond.reach(root, cond.path)
	if cond.op.kind == opNotEquals {
		return !hit
	}
	return hit
}

// reach walks path from v and reports whether any scalar it reaches passes
// test. Lists are descended at every step, lists of lists included; an
// object where the path ends, a scalar before it ends and null reach nothing.
func (cond *condition) reach(v *fastjson.Value, path []string) bool {
	for {
		switch v.Type() {
		case fastjson.TypeArray:
			elems, _ := v.Array()
			for _, e := range elems {
				if cond.reach(e, path) {
					return true
				}
			}
			return false
		case fastjson.TypeObject:
			if len(path) == 0 {
				return false
			}
			o, _ := v.Object()
			if v = o.Get(path[0]); v == nil {
				return false
			}
			path = path[1:]
		case fastjson.TypeNull:
			return false
		default:
			if len(path) > 0 {
				return false
			}
			return cond.test(v)
		}
	}
}

// test applies the operator to one scalar. For Equals and NotEquals it
// reports whether the scalar equals any value; NotEquals negates in holds.
func (cond *condition) test(v *fastjson.Value) bool {
	switch cond.op.kind {
	case opEquals, opNotEquals:
		return cond.equalsAny(v)
	}
	x, ok := cond.numberOf(v)
	if !ok {
		return false
	}
	switch cond.op.kind {
	case opGreaterThan:
		return x > cond.bound
	case opGreaterThanOrEqual:
		return x >= cond.bound
	case opLessThan:
		return x < cond.bound
	default:
		return x <= cond.bound
	}
}

// equalsAny compares a scalar with the listed values: strings by their
// text; numbers and booleans by their JSON text, which for a number means
// its value ("8" equals 8 and 8.0); timestamps, where the attribute is one,
// also as epoch milliseconds, so "2020-03-11T10:19:48.313Z" equals
// 1583921988313.
func (cond *condition) equalsAny(v *fastjson.Value) bool {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		for i := range cond.values {
			if string(b) == cond.values[i].text {
				return true
			}
		}
		if cond.timestamp {
			if ms, ok := timestamp.Parse(b); ok {
				for i := range cond.values {
					if cond.values[i].isTime && cond.values[i].ms == ms {
						return true
					}
				}
			}
		}
		return false
	case fastjson.TypeNumber:
		f, err := v.Float64()
		if err != nil {
			return false
		}
		for i := range cond.values {
			if cond.values[i].isNum && cond.values[i].num == f {
				return true
			}
		}
		if cond.timestamp {
			if ms, ok := timestamp.FromFloat(f); ok {
				for i := range cond.values {
					if cond.values[i].isTime && cond.values[i].ms == ms {
						return true
					}
				}
			}
		}
		return false
	case fastjson.TypeTrue:
		return cond.equalsText("true")
	case fastjson.TypeFalse:
		return cond.equalsText("false")
	}
	return false
}

func (cond *condition) equalsText(s string) bool {
	for i := range cond.values {
		if cond.values[i].text == s {
			return true
		}
	}
	return false
}

// numberOf reads a scalar as a number for the range operators: a JSON
// number, or a string holding one; for timestamp attributes, epoch
// milliseconds of an ISO-8601 string or of an epoch number (seconds below
// 10^11, DESIGN.md §4).
func (cond *condition) numberOf(v *fastjson.Value) (float64, bool) {
	switch v.Type() {
	case fastjson.TypeNumber:
		f, err := v.Float64()
		if err != nil || math.IsNaN(f) {
			return 0, false
		}
		if cond.timestamp {
			ms, ok := timestamp.FromFloat(f)
			return float64(ms), ok
		}
		return f, true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if cond.timestamp {
			ms, ok := timestamp.Parse(b)
			return float64(ms), ok
		}
		if len(b) == 0 || len(b) > 64 {
			return 0, false
		}
		// The bytes belong to the parsed finding and are not changed while
		// the string is read: reading them in place spares an allocation
		// per attribute. Only number text reaches ParseFloat, whose errors
		// allocate.
		s := unsafe.String(&b[0], len(b))
		if !isJSONNumber(s) {
			return 0, false
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	}
	return 0, false
}
