package pipeline

import (
	"fmt"
	"path"
	"time"
)

// Lane is how a batch was formed: new findings (exported within
// newFindingDelay) or updated findings (aggregated per window).
type Lane string

// The two lanes; their values appear in object names.
const (
	LaneNew    Lane = "new"
	LaneUpdate Lane = "upd"
)

// Ref points at one finding version held in the FINDINGS stream. Batches
// carry refs, never payloads (NATS' 1 MB message limit).
type Ref struct {
	Seq       uint64 `json:"s"`
	ID        string `json:"i"`
	UpdatedAt int64  `json:"u"`
}

// Batch is a sealed batch: its composition is persisted before any sink
// writes it, so every retry and every worker rebuilds the same object under
// the same name.
type Batch struct {
	// ID is 16 hex digits, unique per batch; it is part of the object name.
	ID          string `json:"id"`
	Destination string `json:"destination"`
	// Account and Region name the key folders and the event subject: the
	// destination owner's by default.
	Account string `json:"account"`
	Region  string `json:"region"`
	Lane    Lane   `json:"lane"`
	// SealedAt is when the composition was persisted (epoch ms, UTC).
	SealedAt int64 `json:"sealedAt"`
	// Window is the start of the update window (epoch ms), 0 for the new lane.
	Window int64 `json:"window,omitempty"`
	// Part numbers the objects of one window flush when it is split by size
	// (0 when it is not split).
	Part int   `json:"part,omitempty"`
	Refs []Ref `json:"refs"`
	// Abandoned marks a batch id that was claimed by recovery before it was
	// sealed: nothing is exported under it.
	Abandoned bool `json:"abandoned,omitempty"`

	// KeyAccount, when set, names the key folder instead of Account: the
	// finding owner's account, for a destination whose keyAccount is owner.
	// Every finding of such a batch belongs to that account.
	KeyAccount string `json:"keyAccount,omitempty"`
}

// SealTime returns SealedAt as a UTC time.
func (b *Batch) SealTime() time.Time { return time.UnixMilli(b.SealedAt).UTC() }

// ObjectName is the object's file name per the defaults table:
// <yyyyMMddTHHmmssZ>-<lane>-<id>[-<part>].jsonl.gz.
func (b *Batch) ObjectName() string {
	name := b.SealTime().Format("20060102T150405Z") + "-" + string(b.Lane) + "-" + b.ID
	if b.Part > 0 {
		name += fmt.Sprintf("-%d", b.Part)
	}
	return name + ".jsonl.gz"
}

// ObjectKey is the full key under the destination:
// [prefix/]AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/<name>, where
// account is KeyAccount when set, else Account.
func (b *Batch) ObjectKey(prefix string) string {
	t := b.SealTime()
	account := b.Account
	if b.KeyAccount != "" {
		account = b.KeyAccount
	}
	k := path.Join("AWSLogs", account, "GuardDuty", b.Region, t.Format("2006"), t.Format("01"), t.Format("02"), b.ObjectName())
	if prefix != "" {
		k = path.Join(prefix, k)
	}
	return k
}
