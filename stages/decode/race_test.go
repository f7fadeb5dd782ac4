//go:build race

package decode

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts that rely on the parser pool do not hold.
const raceEnabled = true
