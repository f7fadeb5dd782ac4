// Package schedule is the arithmetic of update windows: which window of a
// destination's findingPublishingFrequency an arrival time falls in, aligned
// to UTC boundaries, and how a change of frequency takes effect at the first
// boundary of the new frequency after the open window closes (DESIGN.md B6).
package schedule
