// Package filter drops findings that must never be exported: archived ones
// (service.archived == true) and those a saved ARCHIVE filter matches
// (GuardDuty's suppression rules, DESIGN.md B1, B2).
//
// The FindingCriteria engine follows DESIGN.md §5. ParseCriteria and
// CompileCriteria check a document at create time (unknown attributes,
// checked against the embedded attributes.txt; unknown operators; wrong value
// types; more than 50 values) and compile it; Criteria.Match evaluates it on
// a finding parsed once with fastjson, without allocating: attribute paths
// descend through objects and lists, Equals matches when any reached value
// equals any listed one and NotEquals when none does (a missing attribute
// included), range operators compare numbers, and timestamp attributes
// compare as epoch milliseconds whatever form the finding holds them in.
//
// Filter is a saved filter (name, description, action, rank, criteria);
// ParseSpec reads get-filter output and CreateFilter request bodies in either
// casing. Set orders the filters of an (account, Region) by rank and finds
// the first ARCHIVE filter that matches. Stage applies them in the pipeline.
package filter
