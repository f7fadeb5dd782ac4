package fanin

import (
	"context"
	"testing"

	"github.com/gdexport/gdexport/pipeline"
)

type routerFunc func(account, region string) ([]*pipeline.Destination, string)

func (f routerFunc) RouteFinding(account, region string) ([]*pipeline.Destination, string) {
	return f(account, region)
}

func TestStage(t *testing.T) {
	adminDest := &pipeline.Destination{ID: "admin", Account: "111122223333", Region: "us-east-1"}
	ownDest := &pipeline.Destination{ID: "own", Account: "444455556666", Region: "us-east-1"}
	router := routerFunc(func(account, region string) ([]*pipeline.Destination, string) {
		switch account {
		case "444455556666":
			return []*pipeline.Destination{adminDest, ownDest}, ""
		case "777788889999":
			return nil, pipeline.DropDisassociated
		default:
			return nil, pipeline.DropNoDestination
		}
	})
	tests := []struct {
		name      string
		account   string
		wantDests int
		wantDrop  string
	}{
		// A member with a destination of its own goes to both.
		{"fan-in to two", "444455556666", 2, ""},
		// A disassociated member without a destination is counted apart.
		{"disassociated", "777788889999", 0, pipeline.DropDisassociated},
		// No destination at all.
		{"no destination", "999900001111", 0, pipeline.DropNoDestination},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &pipeline.Envelope{Finding: &pipeline.Finding{AccountID: tt.account, Region: "us-east-1"}}
			if err := (&Stage{Router: router}).Process(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			if len(e.Destinations) != tt.wantDests || e.Drop != tt.wantDrop {
				t.Errorf("destinations %d drop %q, want %d %q", len(e.Destinations), e.Drop, tt.wantDests, tt.wantDrop)
			}
			if tt.wantDrop != "" && e.DropDetail == "" {
				t.Error("a drop without a detail")
			}
		})
	}
}
