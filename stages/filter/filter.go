package filter

import (
	"context"

	"github.com/gdexport/gdexport/pipeline"
)

// Rules decides whether a saved filter archives a finding. Archive returns
// the name of the first matching ARCHIVE filter in rank order, or "" when
// none matches. Implementations are safe for concurrent use.
type Rules interface {
	Archive(f *pipeline.Finding) (filterName string)
}

// Stage drops archived findings, then those the Rules archive.
type Stage struct {
	// Rules is optional; nil applies no suppression rules.
	Rules Rules
}

var _ pipeline.Stage = (*Stage)(nil)

// Process marks the envelope dropped as archived or suppressed.
func (s *Stage) Process(_ context.Context, e *pipeline.Envelope) error {
	f := e.Finding
	if f.Archived {
		e.Dropf(pipeline.DropArchived, "service.archived is true")
		return nil
	}
	if s.Rules != nil {
		if name := s.Rules.Archive(f); name != "" {
			e.Dropf(pipeline.DropSuppressed, name)
		}
	}
	return nil
}
