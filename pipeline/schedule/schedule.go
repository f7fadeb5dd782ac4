package schedule

import (
	"errors"
	"fmt"
	"time"

	"github.com/gdexport/gdexport/pipeline/config"
)

// ErrFrequency is returned for a findingPublishingFrequency GuardDuty does
// not know.
var ErrFrequency = errors.New("unknown finding publishing frequency")

// FrequencyLength returns the window length of a findingPublishingFrequency
// (config.FifteenMinutes, config.OneHour or config.SixHours).
func FrequencyLength(freq string) (time.Duration, error) {
	if d, ok := config.FrequencyDuration[freq]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("%w %q: expected FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS", ErrFrequency, freq)
}

// Windows decides which update window an arrival time falls in, for one
// destination. Windows are aligned to UTC boundaries of their length (for
// six hours: 00:00, 06:00, 12:00, 18:00). A frequency change takes effect
// at From: before it windows are Previous long, from it on Length long. From
// is a boundary of both lengths (every GuardDuty frequency divides the
// next), so windows never overlap.
type Windows struct {
	Length   time.Duration
	Previous time.Duration
	From     time.Time
}

// WindowAt returns the window [start, end) holding t.
func (s Windows) WindowAt(t time.Time) (start, end time.Time) {
	length := s.Length
	if s.Previous > 0 && t.Before(s.From) {
		length = s.Previous
	}
	if length <= 0 {
		length = 6 * time.Hour
	}
	ms := t.UnixMilli()
	l := length.Milliseconds()
	st := ms - mod(ms, l)
	return time.UnixMilli(st).UTC(), time.UnixMilli(st + l).UTC()
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// Change returns the schedule after switching, at now, from the current
// schedule to windows of length next: the window open at now keeps its
// length, and the new length applies from the first boundary of next at or
// after that window's end.
func (s Windows) Change(now time.Time, next time.Duration) Windows {
	_, end := s.WindowAt(now)
	if next == s.lengthAt(now) {
		return Windows{Length: next}
	}
	l := next.Milliseconds()
	e := end.UnixMilli()
	from := e
	if r := mod(e, l); r != 0 {
		from = e + l - r
	}
	return Windows{Length: next, Previous: s.lengthAt(now), From: time.UnixMilli(from).UTC()}
}

func (s Windows) lengthAt(t time.Time) time.Duration {
	if s.Previous > 0 && t.Before(s.From) {
		return s.Previous
	}
	return s.Length
}

// Settled returns s without a change that took effect before now.
func (s Windows) Settled(now time.Time) Windows {
	if s.Previous > 0 && !now.Before(s.From) {
		return Windows{Length: s.Length}
	}
	return s
}
