package status

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
)

// Sources are where a report comes from: the worker passes its live
// snapshots, `gdexport status` reads the KV buckets.
type Sources struct {
	JS jetstream.JetStream
	// Statuses lists every destination's status record.
	Statuses func(ctx context.Context) ([]state.Status, error)
	// Destination resolves a status record's destination (false: gone).
	Destination func(ctx context.Context, st state.Status) (*pipeline.Destination, bool)
	// Frequency is the findingPublishingFrequency of (account, region).
	Frequency func(ctx context.Context, account, region string) string
	// Grace is how long after its end a window is flushed.
	Grace time.Duration
	// Now dates the report (default time.Now).
	Now func() time.Time
}

// Filter limits a report to one (account, Region); empty fields match all.
type Filter struct{ Account, Region string }

func (f Filter) match(account, region string) bool {
	return (f.Account == "" || f.Account == account) && (f.Region == "" || f.Region == region)
}

// Build assembles the report. Parts that cannot be read (a consumer that
// does not exist yet) are left out rather than failing the whole report;
// an error means the statuses themselves could not be read.
func Build(ctx context.Context, src Sources, f Filter) (*Report, error) {
	now := time.Now
	if src.Now != nil {
		now = src.Now
	}
	r := &Report{Generated: now().UTC()}
	sts, err := src.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	markers := windowMarkers(ctx, src.JS)
	batches, _ := src.JS.Stream(ctx, natsx.StreamBatches)
	for _, st := range sts {
		if st.Deleted || !f.match(st.Account, st.Region) {
			continue
		}
		d, ok := src.Destination(ctx, st)
		if !ok {
			continue
		}
		target := d.Arn
		if d.Type == pipeline.DestinationLocal {
			target = d.Root
			if d.Prefix != "" {
				target += " (" + d.Prefix + ")"
			}
		}
		row := Destination{
			ID: d.ID, Account: d.Account, Region: d.Region, Type: string(d.Type), Target: target, Encryption: d.Encryption,
			Status: st.Status, PublishingFailureStartTimestamp: st.PublishingFailureStartTimestamp, LastError: st.LastError,
			Frequency: src.Frequency(ctx, d.Account, d.Region), Default: d.Default,
		}
		if st.Status == pipeline.StatusPublishing {
			row.LastError = "" // an old error is not news
		}
		if st.LastExport > 0 {
			row.LastExport = time.UnixMilli(st.LastExport).UTC()
		}
		if batches != nil {
			row.BacklogBatches, row.OldestPending = parked(ctx, batches, d.ID, now())
		}
		for _, end := range markers[d.ID] {
			row.PendingWindows++
			if t := time.UnixMilli(end).Add(src.Grace).UTC(); row.NextFlush.IsZero() || t.Before(row.NextFlush) {
				row.NextFlush = t
			}
		}
		r.Destinations = append(r.Destinations, row)
	}
	r.Consumers = consumers(ctx, src.JS, now())
	if s, err := src.JS.Stream(ctx, "KV_"+natsx.BucketWindows); err == nil {
		if info, err := s.Info(ctx); err == nil {
			r.PendingUpdates = int(info.State.NumSubjects)
		}
	}
	if s, err := src.JS.Stream(ctx, natsx.StreamDeadLetter); err == nil {
		if info, err := s.Info(ctx); err == nil {
			r.DeadLetters = info.State.Msgs
		}
	}
	r.Sort()
	return r, nil
}

// parked is a destination's parked backlog: batches waiting for it to
// publish again, and the age of the oldest.
func parked(ctx context.Context, batches jetstream.Stream, destID string, now time.Time) (int, time.Duration) {
	cons, err := batches.Consumer(ctx, natsx.ParkedConsumer(destID))
	if err != nil {
		return 0, 0
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, 0
	}
	n := int(info.NumPending) + info.NumAckPending
	if n == 0 {
		return 0, 0
	}
	m, err := batches.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(natsx.ParkedFilter(destID)))
	if err != nil {
		return n, 0
	}
	if b, err := parseSealedAt(m.Data); err == nil && b > 0 {
		return n, now.Sub(time.UnixMilli(b))
	}
	return n, now.Sub(m.Time)
}

func parseSealedAt(data []byte) (int64, error) {
	var b struct {
		SealedAt int64 `json:"sealedAt"`
	}
	err := json.Unmarshal(data, &b)
	return b.SealedAt, err
}

// windowMarkers returns the ends of the pending windows of each
// destination (epoch ms), from the flushes bucket.
func windowMarkers(ctx context.Context, js jetstream.JetStream) map[string][]int64 {
	out := map[string][]int64{}
	kv, err := js.KeyValue(ctx, natsx.BucketFlushes)
	if err != nil {
		return out
	}
	keys, err := kv.ListKeysFiltered(ctx, "window.>")
	if err != nil {
		return out
	}
	for k := range keys.Keys() {
		parts := strings.Split(k, ".") // window.<dest>.<start>
		if len(parts) != 3 {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var m struct {
			End int64 `json:"end"`
		}
		if json.Unmarshal(e.Value(), &m) != nil || m.End == 0 {
			if start, err := strconv.ParseInt(parts[2], 10, 64); err == nil {
				m.End = start
			}
		}
		out[parts[1]] = append(out[parts[1]], m.End)
	}
	return out
}

// consumers reads the backlog of the shared consumers.
func consumers(ctx context.Context, js jetstream.JetStream, now time.Time) []Consumer {
	var out []Consumer
	for _, c := range []struct{ stream, name string }{
		{natsx.StreamFindings, natsx.ConsumerIngest},
		{natsx.StreamBatches, natsx.ConsumerObjects},
		{natsx.StreamBatches, natsx.ConsumerEvents},
		{natsx.StreamBatches, natsx.ConsumerEventBridge},
	} {
		s, err := js.Stream(ctx, c.stream)
		if err != nil {
			continue
		}
		cons, err := s.Consumer(ctx, c.name)
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		row := Consumer{Name: c.name, Pending: info.NumPending, AckPending: info.NumAckPending}
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			if m, err := s.GetMsg(ctx, info.AckFloor.Stream+1); err == nil {
				row.OldestPending = now.Sub(m.Time)
			}
		}
		out = append(out, row)
	}
	return out
}
