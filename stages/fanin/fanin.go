package fanin

import (
	"context"

	"github.com/gdexport/gdexport/pipeline"
)

// Router answers which destinations receive findings of (account, region).
// It must not block; the returned slice is read-only.
type Router interface {
	Route(account, region string) []*pipeline.Destination
}

// Stage sets the envelope's destinations, or drops it when none exists.
type Stage struct {
	Router Router
}

var _ pipeline.Stage = (*Stage)(nil)

// Process routes one finding.
func (s *Stage) Process(_ context.Context, e *pipeline.Envelope) error {
	ds := s.Router.Route(e.Finding.AccountID, e.Finding.Region)
	if len(ds) == 0 {
		e.Dropf(pipeline.DropNoDestination, "no destination for account "+e.Finding.AccountID+" in "+e.Finding.Region)
		return nil
	}
	e.Destinations = ds
	return nil
}
