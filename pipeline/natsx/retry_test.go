package natsx

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestRetry(t *testing.T) {
	errPermanent := errors.New("stream configuration invalid")
	cases := []struct {
		name  string
		fails []error // the errors of the first calls, then success
		calls int
		err   error
	}{
		// A lost answer (the attempt's deadline, nats' own timeout, nobody
		// listening yet) is asked again.
		{"answers lost", []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders}, 4, nil},
		// Anything else is the answer: returned at once.
		{"refused", []error{errPermanent}, 1, errPermanent},
		{"first time", nil, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			v, err := retry(context.Background(), func(ctx context.Context) (int, error) {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("attempt without a deadline")
				}
				calls++
				if calls <= len(c.fails) {
					return 0, c.fails[calls-1]
				}
				return 7, nil
			})
			if calls != c.calls || !errors.Is(err, c.err) || (err == nil && v != 7) {
				t.Fatalf("%d calls, %v, %v; want %d calls and %v", calls, v, err, c.calls, c.err)
			}
		})
	}
	// The caller's deadline ends the retries.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := retry(ctx, func(context.Context) (int, error) { return 0, nats.ErrTimeout })
	if !errors.Is(err, nats.ErrTimeout) || ctx.Err() == nil {
		t.Fatalf("retry until the deadline: %v (ctx %v)", err, ctx.Err())
	}
}
