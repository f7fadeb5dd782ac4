package pipeline

import "time"

// TimeLayout is the normalised form of a finding's updatedAt: RFC 3339, UTC,
// milliseconds. It is used in Nats-Msg-Id and in every key that names a
// finding version.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Finding is one decoded finding version. Raw holds the finding exactly as it
// is exported: the received JSON with insignificant whitespace removed and,
// for AWS CLI input, PascalCase member names converted to camelCase. Every
// other field is read from Raw once by the decode stage.
type Finding struct {
	// Raw is the exported line (without the trailing newline).
	Raw []byte
	// ID, Type, AccountID and Region are the finding's own fields.
	ID        string
	Type      string
	AccountID string
	Region    string
	// UpdatedAt is updatedAt in epoch milliseconds.
	UpdatedAt int64
	// CreatedAt is createdAt in epoch milliseconds (0 when absent).
	CreatedAt int64
	// Archived is service.archived.
	Archived bool
	// Count is service.count (0 when absent).
	Count int64
	// Severity is the numeric severity (0 when absent).
	Severity float64
	// Seq is the FINDINGS stream sequence the finding was read from (0 when it
	// did not come from the stream).
	Seq uint64
	// ReceivedAt is when the FINDINGS stream stored the message (epoch ms,
	// 0 when unknown): the arrival time that assigns updates to windows,
	// the same on every redelivery.
	ReceivedAt int64
}

// UpdatedAtText returns updatedAt in TimeLayout.
func (f *Finding) UpdatedAtText() string { return FormatMillis(f.UpdatedAt) }

// VersionKey identifies a finding version: "<id>:<updatedAt in TimeLayout>".
// It is the Nats-Msg-Id of the ingest message.
func (f *Finding) VersionKey() string { return f.ID + ":" + f.UpdatedAtText() }

// Newer reports whether f is a later version than (updatedAt, count): the
// greater updatedAt wins, then the greater service.count (DESIGN.md B6).
func (f *Finding) Newer(updatedAt, count int64) bool {
	if f.UpdatedAt != updatedAt {
		return f.UpdatedAt > updatedAt
	}
	return f.Count > count
}

// FormatMillis formats epoch milliseconds in TimeLayout.
func FormatMillis(ms int64) string { return time.UnixMilli(ms).UTC().Format(TimeLayout) }

// IngestSubject is the subject a finding of (region, account) is published to.
func IngestSubject(region, account string) string { return "findings." + region + "." + account }
