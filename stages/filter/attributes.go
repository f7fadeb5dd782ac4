package filter

import (
	_ "embed"
	"sort"
	"strings"
)

// attributesText is every attribute name GuardDuty's CreateFilter accepts in
// FindingCriteria, one per line: a copy of
// ../shared/reference/guardduty-filter-attributes.txt (the GuardDuty API
// model 2017-11-28 as shipped in botocore 1.43.11), committed so that the
// binary builds on a fresh clone.
//
//go:embed attributes.txt
var attributesText string

// attributes maps each accepted attribute to its path segments; lower maps
// the lowercased names back, to suggest the right spelling.
var attributes, lowerAttributes = loadAttributes(attributesText)

func loadAttributes(text string) (map[string][]string, map[string]string) {
	attrs := map[string][]string{}
	lower := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		name := strings.TrimSpace(line)
		if name == "" {
			continue
		}
		attrs[name] = strings.Split(name, ".")
		lower[strings.ToLower(name)] = name
	}
	return attrs, lower
}

// Attributes returns every accepted attribute name, sorted.
func Attributes() []string {
	out := make([]string, 0, len(attributes))
	for a := range attributes {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// IsAttribute reports whether name is an attribute GuardDuty accepts.
func IsAttribute(name string) bool {
	_, ok := attributes[name]
	return ok
}

// isTimestampAttribute reports whether an attribute holds a timestamp, whose
// values compare as epoch milliseconds whatever form a finding holds them
// in (DESIGN.md §4): updatedAt, createdAt, service.eventFirstSeen,
// resource.instanceDetails.launchTime, *.startedAt and the like. The names
// end in "At", "Time" or "Seen"; "containerRuntime" and "lat" do not, for the
// case of the letters is part of the rule.
func isTimestampAttribute(segments []string) bool {
	last := segments[len(segments)-1]
	return strings.HasSuffix(last, "At") || strings.HasSuffix(last, "Time") || strings.HasSuffix(last, "Seen")
}
