package filter

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/valyala/fastjson"
)

// Action is what a saved filter does with the findings it matches.
type Action string

// Filter actions, as GuardDuty names them.
const (
	// ActionNoop saves the filter as a view: it archives nothing.
	ActionNoop Action = "NOOP"
	// ActionArchive makes the filter a suppression rule: matching findings
	// are archived and exported to no sink.
	ActionArchive Action = "ARCHIVE"
)

// Limits GuardDuty sets on saved filters.
const (
	MinRank              = 1
	MaxRank              = 100
	MaxFiltersPerAccount = 100 // per (account, Region)
	MaxDescriptionLen    = 512
)

// Filter is a saved filter of one (account, Region): a named FindingCriteria
// with an action and a rank. It is immutable once made by NewFilter and safe
// for concurrent use.
type Filter struct {
	Name        string
	Description string
	Action      Action
	// Rank orders the filters of an (account, Region): lower ranks apply
	// first. 0 means not yet assigned.
	Rank     int
	Criteria *Criteria
	Tags     map[string]string
}

// Spec is a filter as written by a user, before it is checked. Its
// FindingCriteria is a decoded document (JSON or YAML).
type Spec struct {
	Name            string
	Description     string
	Action          string
	Rank            int
	FindingCriteria any
	Tags            map[string]string
}

// ValidName reports whether name is a filter name GuardDuty accepts: 3 to 64
// letters, digits, '.', '_' or '-'.
func ValidName(name string) bool {
	if len(name) < 3 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NewFilter checks a spec and compiles its criteria. An empty Action is
// NOOP, as in GuardDuty; Rank 0 is left for the store to assign. Problems
// have paths relative to the filter ("name", "rank",
// "findingCriteria.criterion.type.eq").
func NewFilter(s Spec) (*Filter, error) {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if s.Name == "" {
		add("name", "missing: a filter needs a name of 3 to 64 letters, digits, '.', '_' or '-'")
	} else if !ValidName(s.Name) {
		add("name", "%q is not a filter name: expected 3 to 64 letters, digits, '.', '_' or '-'", s.Name)
	}
	if len(s.Description) > MaxDescriptionLen {
		add("description", "%d characters: at most %d", len(s.Description), MaxDescriptionLen)
	}
	action := Action(s.Action)
	switch action {
	case "":
		action = ActionNoop
	case ActionNoop, ActionArchive:
	default:
		add("action", "%q: expected NOOP or ARCHIVE", s.Action)
	}
	if s.Rank != 0 && (s.Rank < MinRank || s.Rank > MaxRank) {
		add("rank", "%d is out of range: expected %d to %d", s.Rank, MinRank, MaxRank)
	}
	var crit *Criteria
	if s.FindingCriteria == nil {
		add("findingCriteria", "missing: a filter needs a FindingCriteria such as {\"Criterion\": {\"type\": {\"Eq\": [\"Recon:EC2/Portscan\"]}}}")
	} else {
		var err error
		if crit, err = CompileCriteria(s.FindingCriteria); err != nil {
			ps = append(ps, problemsOf(err).Prefix("findingCriteria")...)
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return &Filter{Name: s.Name, Description: s.Description, Action: action, Rank: s.Rank, Criteria: crit, Tags: s.Tags}, nil
}

func problemsOf(err error) Problems {
	if ps, ok := err.(Problems); ok {
		return ps
	}
	return Problems{{Message: err.Error()}}
}

// WithRank returns a copy of f with another rank.
func (f *Filter) WithRank(rank int) *Filter {
	c := *f
	c.Rank = rank
	return &c
}

// Spec returns f as a spec (to change some of it and check it again).
func (f *Filter) Spec() Spec {
	return Spec{Name: f.Name, Description: f.Description, Action: string(f.Action), Rank: f.Rank,
		FindingCriteria: f.Criteria.Document(false), Tags: f.Tags}
}

// Document is f as GuardDuty prints it: `aws guardduty get-filter` output in
// PascalCase (pascal true), or the wire's camelCase.
func (f *Filter) Document(pascal bool) map[string]any {
	k := func(camel string) string {
		if pascal {
			return string(camel[0]-'a'+'A') + camel[1:]
		}
		return camel
	}
	doc := map[string]any{
		k("name"):            f.Name,
		k("action"):          string(f.Action),
		k("findingCriteria"): f.Criteria.Document(pascal),
	}
	if f.Rank != 0 {
		doc[k("rank")] = f.Rank
	}
	if f.Description != "" {
		doc[k("description")] = f.Description
	}
	if len(f.Tags) > 0 {
		doc[k("tags")] = f.Tags
	}
	return doc
}

// MarshalJSON writes the wire (camelCase) form, which ParseFilter reads back.
func (f *Filter) MarshalJSON() ([]byte, error) { return json.Marshal(f.Document(false)) }

// ParseSpec reads a filter document in any of the shapes GuardDuty users
// hold: what `aws guardduty get-filter` prints, a CreateFilter request body
// (PascalCase from the AWS CLI, camelCase from the REST API; DetectorId and
// ClientToken are ignored), or a bare FindingCriteria ({"Criterion": …}),
// which yields a spec with only FindingCriteria set.
func ParseSpec(data []byte) (Spec, error) {
	doc, err := decodeJSON(data)
	if err != nil {
		return Spec{}, Problems{{Message: err.Error()}}
	}
	return SpecOf(doc)
}

// SpecOf is ParseSpec for a decoded document.
func SpecOf(doc any) (Spec, error) {
	top, ok := doc.(map[string]any)
	if !ok {
		return Spec{}, Problems{{Message: fmt.Sprintf("%s is not a filter: expected an object such as get-filter prints or a CreateFilter request body", describe(doc))}}
	}
	if _, ok := top["Criterion"]; ok {
		return Spec{FindingCriteria: doc}, nil
	}
	if _, ok := top["criterion"]; ok {
		return Spec{FindingCriteria: doc}, nil
	}
	var s Spec
	var ps Problems
	seen := map[string]string{}
	for _, key := range sortedKeys(top) {
		v := top[key]
		canon := key
		if key != "" && key[0] >= 'A' && key[0] <= 'Z' {
			canon = string(key[0]-'A'+'a') + key[1:]
		}
		if prev, dup := seen[canon]; dup {
			ps = append(ps, Problem{Path: key, Message: fmt.Sprintf("given twice (as %s and %s)", prev, key)})
			continue
		}
		seen[canon] = key
		str := func() string {
			x, ok := v.(string)
			if !ok {
				ps = append(ps, Problem{Path: key, Message: fmt.Sprintf("%s is not a string", describe(v))})
			}
			return x
		}
		switch canon {
		case "name":
			s.Name = str()
		case "description":
			s.Description = str()
		case "action":
			s.Action = str()
		case "rank":
			f, ok := number(v)
			if !ok || f != float64(int(f)) {
				ps = append(ps, Problem{Path: key, Message: fmt.Sprintf("%s is not a whole number: expected %d to %d", describe(v), MinRank, MaxRank)})
				continue
			}
			s.Rank = int(f)
			if s.Rank == 0 {
				ps = append(ps, Problem{Path: key, Message: fmt.Sprintf("0 is out of range: expected %d to %d", MinRank, MaxRank)})
			}
		case "findingCriteria":
			s.FindingCriteria = v
		case "tags":
			m, ok := v.(map[string]any)
			if !ok {
				ps = append(ps, Problem{Path: key, Message: fmt.Sprintf("%s is not an object of strings", describe(v))})
				continue
			}
			s.Tags = map[string]string{}
			for tk, tv := range m {
				ts, ok := tv.(string)
				if !ok {
					ps = append(ps, Problem{Path: key + "." + tk, Message: fmt.Sprintf("%s is not a string", describe(tv))})
					continue
				}
				s.Tags[tk] = ts
			}
		case "detectorId", "clientToken", "filterName":
			if canon == "filterName" {
				s.Name = str()
			}
		default:
			ps = append(ps, Problem{Path: key, Message: fmt.Sprintf("unknown member %q: expected Name, Description, Action, Rank, FindingCriteria, Tags", key)})
		}
	}
	if len(ps) > 0 {
		return Spec{}, ps
	}
	return s, nil
}

// ParseFilter reads and checks a filter document (see ParseSpec). A bare
// FindingCriteria is refused: it has no name.
func ParseFilter(data []byte) (*Filter, error) {
	s, err := ParseSpec(data)
	if err != nil {
		return nil, err
	}
	return NewFilter(s)
}

// Set is the saved filters that judge the findings of one (account,
// Region), in the order they apply. It is immutable and safe for concurrent
// use; the nil *Set has no filters.
type Set struct {
	all     []*Filter
	archive []*Filter
}

// NewSet orders filters by rank, then name.
func NewSet(filters []*Filter) *Set {
	all := append([]*Filter(nil), filters...)
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Rank != all[j].Rank {
			return all[i].Rank < all[j].Rank
		}
		return all[i].Name < all[j].Name
	})
	return newSet(all)
}

func newSet(all []*Filter) *Set {
	s := &Set{all: all}
	for _, f := range all {
		if f.Action == ActionArchive {
			s.archive = append(s.archive, f)
		}
	}
	return s
}

// Concat applies the filters of each set in turn, each in its own order
// (an administrator's suppression rules, then the member's own).
func Concat(sets ...*Set) *Set {
	var all []*Filter
	for _, s := range sets {
		if s != nil {
			all = append(all, s.all...)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return newSet(all)
}

// Filters returns the filters in the order they apply. The slice is
// read-only.
func (s *Set) Filters() []*Filter {
	if s == nil {
		return nil
	}
	return s.all
}

// Archives reports whether any filter of the set archives.
func (s *Set) Archives() bool { return s != nil && len(s.archive) > 0 }

// Archive returns the first ARCHIVE filter that matches the parsed finding
// v, or nil. It does not allocate.
func (s *Set) Archive(v *fastjson.Value) *Filter {
	if s == nil {
		return nil
	}
	for _, f := range s.archive {
		if f.Criteria.Match(v) {
			return f
		}
	}
	return nil
}

// Judge returns the filter that archives v (nil when none does) and the
// first filter of any action that matches it (nil when none does), for
// trying filters on findings.
func (s *Set) Judge(v *fastjson.Value) (archive, first *Filter) {
	if s == nil {
		return nil, nil
	}
	for _, f := range s.all {
		if !f.Criteria.Match(v) {
			continue
		}
		if first == nil {
			first = f
		}
		if f.Action == ActionArchive {
			return f, first
		}
	}
	return nil, first
}
