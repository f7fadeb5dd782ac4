package window

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
)

// Pending is an update waiting in its window: the latest version of a
// finding id seen for a destination in that window, kept in the windows KV
// bucket under <destination>.<window start ms>.<finding key>.
type Pending struct {
	ID string `json:"i"`
	// Account is the finding owner's account (the key folder of a
	// destination that keys by owner).
	Account    string `json:"a,omitempty"`
	Seq        uint64 `json:"s"`
	UpdatedAt  int64  `json:"u"`
	Count      int64  `json:"c"`
	Bytes      int    `json:"b"`
	ReceivedAt int64  `json:"r,omitempty"`
}

// Marker announces an update window that holds pending updates, in the
// flushes KV bucket under window.<destination>.<start ms>. Whoever stages
// an update rewrites it afterwards, so a flush that saw an older revision
// knows to look again before it forgets the window.
type Marker struct {
	Destination string `json:"destination"`
	Account     string `json:"account"`
	Region      string `json:"region"`
	Start       int64  `json:"start"`
	End         int64  `json:"end"`
}

// MarkerKey is the flushes bucket key of a window's marker.
func MarkerKey(destID string, start int64) string {
	return "window." + destID + "." + strconv.FormatInt(start, 10)
}

// ClaimKey is the flushes bucket key of the claim on a window's flush.
func ClaimKey(destID string, start int64) string {
	return "claim." + destID + "." + strconv.FormatInt(start, 10)
}

// WindowFilter is the subject filter of every pending update of a window in
// the windows bucket's stream.
func WindowFilter(destID string, start int64) string {
	return "$KV." + natsx.BucketWindows + "." + destID + "." + strconv.FormatInt(start, 10) + ".>"
}

func pendingSubject(destID string, start int64, findingID string) string {
	k := FindingKey(destID, findingID) // <dest>.<id part>
	return "$KV." + natsx.BucketWindows + "." + destID + "." + strconv.FormatInt(start, 10) + k[len(destID):]
}

// windowOf returns the window an update of dest that arrived at arrived
// belongs to: the one holding its arrival time, unless that window closed
// more than the grace ago, then the one open now.
func (s *Sealer) windowOf(dest *pipeline.Destination, arrived, now time.Time) (start, end time.Time) {
	sched := s.schedules.Windows(dest)
	start, end = sched.WindowAt(arrived)
	if !now.Before(end.Add(s.grace)) {
		start, end = sched.WindowAt(now)
	}
	return start, end
}

// stage writes updates into their windows: each id's pending record is
// replaced only by a later version (compare-and-set on the revision read);
// an older version is dropped as stale, the same one as duplicate. Then the
// marker of every window written is rewritten.
func (s *Sealer) stage(ctx context.Context, dest *pipeline.Destination, updates []*entry) error {
	now := s.clock()
	type staged struct {
		e       *entry
		subject string
	}
	windows := map[int64]int64{} // start → end
	todo := make([]staged, len(updates))
	for i, e := range updates {
		arrived := now
		if e.f.ReceivedAt > 0 {
			arrived = time.UnixMilli(e.f.ReceivedAt)
		}
		start, end := s.windowOf(dest, arrived, now)
		windows[start.UnixMilli()] = end.UnixMilli()
		todo[i] = staged{e: e, subject: pendingSubject(dest.ID, start.UnixMilli(), e.f.ID)}
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == maxAttempts {
			return fmt.Errorf("stage updates for destination %s: compare-and-set kept conflicting after %d attempts", dest.ID, attempt)
		}
		subjects := make([]string, len(todo))
		for i, st := range todo {
			subjects[i] = st.subject
		}
		cur, err := natsx.LastForSubjects(ctx, s.nc, "KV_"+natsx.BucketWindows, subjects)
		if err != nil {
			return fmt.Errorf("read pending updates of destination %s: %w", dest.ID, err)
		}
		var writes []staged
		var msgs []*nats.Msg
		var revs []uint64
		for _, st := range todo {
			m, ok := cur[st.subject]
			var rev uint64
			if ok {
				rev = m.Seq
				var prev Pending
				if m.Header.Get("KV-Operation") == "" && json.Unmarshal(m.Data, &prev) == nil {
					if !st.e.f.Newer(prev.UpdatedAt, prev.Count) {
						if prev.UpdatedAt == st.e.f.UpdatedAt && prev.Count == st.e.f.Count {
							s.counter.Dropped(pipeline.DropDuplicate, 1)
						} else {
							s.counter.Dropped(pipeline.DropStale, 1)
						}
						continue
					}
				}
			}
			f := st.e.f
			body, _ := json.Marshal(Pending{ID: f.ID, Account: f.AccountID, Seq: f.Seq, UpdatedAt: f.UpdatedAt, Count: f.Count, Bytes: len(f.Raw) + 1, ReceivedAt: f.ReceivedAt})
			writes = append(writes, st)
			msgs = append(msgs, &nats.Msg{Subject: st.subject, Data: body})
			revs = append(revs, rev)
		}
		stored, err := s.writer.WriteCAS(ctx, msgs, revs)
		if err != nil {
			return fmt.Errorf("stage updates of destination %s: %w", dest.ID, err)
		}
		todo = todo[:0:0]
		for i, ok := range stored {
			if !ok {
				todo = append(todo, writes[i])
			}
		}
	}
	// Markers last: a flush that read a marker before this rewrite sees a
	// new revision when it tries to forget the window, and looks again.
	for start, end := range windows {
		body, _ := json.Marshal(Marker{Destination: dest.ID, Account: dest.Account, Region: dest.Region, Start: start, End: end})
		if _, err := s.js.Publish(ctx, "$KV."+natsx.BucketFlushes+"."+MarkerKey(dest.ID, start), body); err != nil {
			return fmt.Errorf("mark window %d of destination %s: %w", start, dest.ID, err)
		}
	}
	return nil
}
