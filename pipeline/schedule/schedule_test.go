package schedule

import (
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowAlignment(t *testing.T) {
	cases := []struct {
		name       string
		length     time.Duration
		t          string
		start, end string
	}{
		// The seed's example: with six hours, an update after 12:00 goes out at 18:00.
		{"six hours after noon", 6 * time.Hour, "2026-12-03T12:00:01Z", "2026-12-03T12:00:00Z", "2026-12-03T18:00:00Z"},
		{"six hours just before midnight", 6 * time.Hour, "2026-12-03T23:59:59Z", "2026-12-03T18:00:00Z", "2026-12-04T00:00:00Z"},
		// A boundary instant opens the next window; it does not close the last.
		{"six hours on the boundary", 6 * time.Hour, "2026-12-03T06:00:00Z", "2026-12-03T06:00:00Z", "2026-12-03T12:00:00Z"},
		{"one hour", time.Hour, "2026-12-03T07:59:59.999Z", "2026-12-03T07:00:00Z", "2026-12-03T08:00:00Z"},
		{"fifteen minutes", 15 * time.Minute, "2026-12-03T07:44:10Z", "2026-12-03T07:30:00Z", "2026-12-03T07:45:00Z"},
		// Aligned to UTC, whatever zone the time is written in.
		{"zone offset", 6 * time.Hour, "2026-12-03T13:30:00+05:30", "2026-12-03T06:00:00Z", "2026-12-03T12:00:00Z"},
		// windowOverride lengths align to epoch (UTC) multiples too.
		{"test override", 5 * time.Second, "2026-12-03T07:44:13Z", "2026-12-03T07:44:10Z", "2026-12-03T07:44:15Z"},
		{"before 1970", time.Hour, "1969-12-31T23:30:00Z", "1969-12-31T23:00:00Z", "1970-01-01T00:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, end := Windows{Length: c.length}.WindowAt(at(c.t))
			if !st.Equal(at(c.start)) || !end.Equal(at(c.end)) {
				t.Errorf("WindowAt(%s) = [%s, %s), want [%s, %s)", c.t, st, end, c.start, c.end)
			}
		})
	}
}

func TestFrequencyChange(t *testing.T) {
	cases := []struct {
		name     string
		from, to time.Duration
		now      string
		// probes: instant → expected window start
		probes map[string]string
	}{
		// Shorter: the open six-hour window runs to 18:00, then 15-minute windows.
		{"six hours to fifteen minutes", 6 * time.Hour, 15 * time.Minute, "2026-12-03T13:00:00Z", map[string]string{
			"2026-12-03T13:00:00Z": "2026-12-03T12:00:00Z",
			"2026-12-03T17:59:59Z": "2026-12-03T12:00:00Z",
			"2026-12-03T18:00:00Z": "2026-12-03T18:00:00Z",
			"2026-12-03T18:20:00Z": "2026-12-03T18:15:00Z",
		}},
		// Longer: fifteen-minute windows go on until the first six-hour boundary after the open one.
		{"fifteen minutes to six hours", 15 * time.Minute, 6 * time.Hour, "2026-12-03T13:05:00Z", map[string]string{
			"2026-12-03T13:05:00Z": "2026-12-03T13:00:00Z",
			"2026-12-03T13:20:00Z": "2026-12-03T13:15:00Z",
			"2026-12-03T17:50:00Z": "2026-12-03T17:45:00Z",
			"2026-12-03T18:00:00Z": "2026-12-03T18:00:00Z",
			"2026-12-03T23:59:00Z": "2026-12-03T18:00:00Z",
		}},
		{"one hour to six hours on a boundary", time.Hour, 6 * time.Hour, "2026-12-03T17:00:00Z", map[string]string{
			"2026-12-03T17:30:00Z": "2026-12-03T17:00:00Z",
			"2026-12-03T18:30:00Z": "2026-12-03T18:00:00Z",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Windows{Length: c.from}.Change(at(c.now), c.to)
			for probe, want := range c.probes {
				if st, _ := s.WindowAt(at(probe)); !st.Equal(at(want)) {
					t.Errorf("after the change, WindowAt(%s) starts %s, want %s", probe, st, want)
				}
			}
			// Windows tile time: each window's end is the next one's start.
			cur := at(c.now)
			for i := 0; i < 40; i++ {
				st, end := s.WindowAt(cur)
				if !end.After(st) || cur.Before(st) || !cur.Before(end) {
					t.Fatalf("window [%s, %s) does not hold %s", st, end, cur)
				}
				if nst, _ := s.WindowAt(end); !nst.Equal(end) {
					t.Fatalf("window after [%s, %s) starts at %s: windows overlap or leave a gap", st, end, nst)
				}
				cur = end
			}
		})
	}
	// Changing back before the change took effect keeps the current length.
	s := Windows{Length: 6 * time.Hour}.Change(at("2026-12-03T13:00:00Z"), 15*time.Minute)
	s = s.Change(at("2026-12-03T14:00:00Z"), 6*time.Hour)
	if s.Previous != 0 || s.Length != 6*time.Hour {
		t.Errorf("reverting a pending change: %+v, want plain six hours", s)
	}
	if got := (Windows{Length: time.Hour, Previous: 6 * time.Hour, From: at("2026-12-03T18:00:00Z")}).Settled(at("2026-12-03T19:00:00Z")); got.Previous != 0 {
		t.Errorf("Settled kept a change that already applied: %+v", got)
	}
}

func TestFrequencyLength(t *testing.T) {
	for freq, want := range map[string]time.Duration{"FIFTEEN_MINUTES": 15 * time.Minute, "ONE_HOUR": time.Hour, "SIX_HOURS": 6 * time.Hour} {
		if got, err := FrequencyLength(freq); err != nil || got != want {
			t.Errorf("FrequencyLength(%s) = %v, %v", freq, got, err)
		}
	}
	if _, err := FrequencyLength("HOURLY"); err == nil {
		t.Error("HOURLY accepted")
	}
}
