package filter

import (
	"context"

	"github.com/valyala/fastjson"

	"github.com/gdexport/gdexport/pipeline"
)

// Rules serves the saved filters that judge the findings of (account,
// region): for a member account, its administrator's for that Region and
// then its own. Filters must not block; it returns nil when there are none.
// Implementations are safe for concurrent use.
type Rules interface {
	Filters(account, region string) *Set
}

// Stage drops archived findings (service.archived == true, DESIGN.md B1),
// then those an ARCHIVE filter of Rules matches (B2), naming the filter in
// DropDetail. It reads the finding decode parsed (Envelope.Parsed) and
// parses Finding.Raw itself only when no parsed form is there. It is safe for
// concurrent use.
type Stage struct {
	// Rules is optional; nil applies no suppression rules.
	Rules Rules
}

var _ pipeline.Stage = (*Stage)(nil)

// parsers parse findings that reach the stage without a parsed form.
var parsers fastjson.ParserPool

// Process marks the envelope dropped as archived or suppressed. It never
// blocks and never fails.
func (s *Stage) Process(_ context.Context, e *pipeline.Envelope) error {
	f := e.Finding
	if f.Archived {
		e.Dropf(pipeline.DropArchived, "service.archived is true")
		return nil
	}
	if s.Rules == nil {
		return nil
	}
	set := s.Rules.Filters(f.AccountID, f.Region)
	if !set.Archives() {
		return nil
	}
	v, _ := e.Parsed().(*fastjson.Value)
	if v == nil {
		p := parsers.Get()
		defer parsers.Put(p)
		var err error
		if v, err = p.ParseBytes(f.Raw); err != nil {
			// Unreachable for a decoded finding; judge it by what decode read.
			return nil
		}
	}
	if flt := set.Archive(v); flt != nil {
		e.Dropf(pipeline.DropSuppressed, flt.Name)
	}
	return nil
}
