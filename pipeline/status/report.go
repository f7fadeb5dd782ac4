package status

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Destination is one destination's health.
type Destination struct {
	ID      string `json:"destinationId"`
	Account string `json:"account"`
	Region  string `json:"region"`
	Type    string `json:"destinationType"`
	// Target is the bucket ARN or the local root.
	Target     string `json:"target"`
	Encryption string `json:"encryption"`
	// Status is PENDING_VERIFICATION, PUBLISHING,
	// UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY or STOPPED.
	Status string `json:"status"`
	// PublishingFailureStartTimestamp is epoch ms (0 when publishing).
	PublishingFailureStartTimestamp int64  `json:"publishingFailureStartTimestamp,omitempty"`
	LastError                       string `json:"lastError,omitempty"`
	Frequency                       string `json:"findingPublishingFrequency"`
	// LastExport is when an object was last written (zero: never).
	LastExport time.Time `json:"lastExport,omitzero"`
	// Backlog is how many sealed batches wait to be written, and the age
	// of the oldest.
	BacklogBatches int           `json:"backlogBatches"`
	OldestPending  time.Duration `json:"oldestPendingSeconds"`
	// PendingWindows are the update windows holding updates, and NextFlush
	// the earliest of their flushes (zero: none).
	PendingWindows int       `json:"pendingWindows"`
	NextFlush      time.Time `json:"nextFlush,omitzero"`
	// Default marks an instance of the default destination.
	Default bool `json:"default,omitempty"`
}

// MarshalJSON writes durations as seconds.
func (d Destination) MarshalJSON() ([]byte, error) {
	type plain Destination
	return json.Marshal(struct {
		plain
		OldestPending float64 `json:"oldestPendingSeconds"`
	}{plain(d), d.OldestPending.Seconds()})
}

// Healthy reports whether the destination publishes.
func (d Destination) Healthy() bool { return d.Status == "PUBLISHING" }

// Consumer is the backlog of one shared durable consumer.
type Consumer struct {
	Name          string        `json:"name"`
	Pending       uint64        `json:"pending"`
	AckPending    int           `json:"ackPending"`
	OldestPending time.Duration `json:"-"`
}

// MarshalJSON writes the age as seconds.
func (c Consumer) MarshalJSON() ([]byte, error) {
	type plain Consumer
	return json.Marshal(struct {
		plain
		OldestPending float64 `json:"oldestPendingSeconds"`
	}{plain(c), c.OldestPending.Seconds()})
}

// Report is the health of the whole export at one moment.
type Report struct {
	Generated      time.Time     `json:"generated"`
	Destinations   []Destination `json:"destinations"`
	Consumers      []Consumer    `json:"consumers"`
	PendingUpdates int           `json:"pendingUpdates"`
	DeadLetters    uint64        `json:"deadLetters"`
}

// Healthy reports whether every destination publishes.
func (r *Report) Healthy() bool {
	for _, d := range r.Destinations {
		if !d.Healthy() {
			return false
		}
	}
	return true
}

// Sort orders destinations unhealthy first, then by account, Region and id.
func (r *Report) Sort() {
	sort.SliceStable(r.Destinations, func(i, j int) bool {
		a, b := r.Destinations[i], r.Destinations[j]
		if a.Healthy() != b.Healthy() {
			return !a.Healthy()
		}
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		return a.ID < b.ID
	})
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteTable writes one line per destination and a line per consumer, for
// a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tREGION\tDESTINATION\tTARGET\tSTATUS\tFAILING SINCE\tFREQUENCY\tLAST EXPORT\tBACKLOG\tOLDEST\tNEXT FLUSH")
	now := r.Generated
	for _, d := range r.Destinations {
		since := "-"
		if d.PublishingFailureStartTimestamp > 0 {
			since = ago(now, time.UnixMilli(d.PublishingFailureStartTimestamp))
		}
		last := "never"
		if !d.LastExport.IsZero() {
			last = ago(now, d.LastExport)
		}
		next := "-"
		if !d.NextFlush.IsZero() {
			next = d.NextFlush.UTC().Format("15:04:05Z") + " (" + pluralWindows(d.PendingWindows) + ")"
		}
		oldest := "-"
		if d.BacklogBatches > 0 {
			oldest = d.OldestPending.Round(time.Second).String()
		}
		id := d.ID
		if d.Default {
			id += " (default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Account, d.Region, id, d.Target, d.Status, since,
			d.Frequency, last, d.BacklogBatches, oldest, next)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range r.Destinations {
		if d.LastError != "" {
			fmt.Fprintf(w, "%s %s/%s: %s\n", d.ID, d.Account, d.Region, d.LastError)
		}
	}
	var parts []string
	for _, c := range r.Consumers {
		s := fmt.Sprintf("%s %d pending, %d unacknowledged", c.Name, c.Pending, c.AckPending)
		if c.OldestPending > 0 {
			s += fmt.Sprintf(" (oldest %s)", c.OldestPending.Round(time.Second))
		}
		parts = append(parts, s)
	}
	fmt.Fprintf(w, "consumers: %s; updates waiting in windows: %d; dead letters: %d\n", strings.Join(parts, "; "), r.PendingUpdates, r.DeadLetters)
	if len(r.Destinations) == 0 {
		fmt.Fprintln(w, "no destinations yet: findings of accounts without one wait for the default destination or a destination create")
	}
	return nil
}

func pluralWindows(n int) string {
	if n == 1 {
		return "1 window"
	}
	return fmt.Sprintf("%d windows", n)
}

func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return t.UTC().Format("2006-01-02 15:04:05Z") + " (" + d.String() + " ago)"
}
