package fanin

import (
	"context"

	"github.com/gdexport/gdexport/pipeline"
)

// Router answers which destinations receive findings of (account, region)
// and, when none does, why (pipeline.DropNoDestination,
// pipeline.DropDisassociated). It must not block; the returned slice is
// read-only.
type Router interface {
	RouteFinding(account, region string) (dests []*pipeline.Destination, drop string)
}

// Stage sets the envelope's destinations, or drops it with the router's
// reason when none exists. It is safe for concurrent use.
type Stage struct {
	Router Router
}

var _ pipeline.Stage = (*Stage)(nil)

// Process routes one finding.
func (s *Stage) Process(_ context.Context, e *pipeline.Envelope) error {
	f := e.Finding
	ds, drop := s.Router.RouteFinding(f.AccountID, f.Region)
	if len(ds) == 0 {
		switch drop {
		case pipeline.DropDisassociated:
			e.Dropf(drop, "account "+f.AccountID+" is a disassociated member in "+f.Region+" without a destination of its own")
		default:
			e.Dropf(pipeline.DropNoDestination, "no destination for account "+f.AccountID+" in "+f.Region)
		}
		return nil
	}
	e.Destinations = ds
	return nil
}
