package compress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"
)

var (
	reIPv4      = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b`)
	reCount     = regexp.MustCompile(`"count":\d+`)
	reTimestamp = regexp.MustCompile(`"(updatedAt|createdAt|eventFirstSeen|eventLastSeen)":"[^"]*"`)
	reInstance  = regexp.MustCompile(`\bi-[0-9a-f]{8,17}\b`)
)

// sampleFindings returns the compact JSON of the finding files in testdata
// (copies of ../../shared/samples/finding_*.json), sorted by file name.
func sampleFindings(tb testing.TB) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "finding_*.json"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no sample findings in testdata: %v", err)
	}
	sort.Strings(paths)
	out := make([][]byte, 0, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// findingLines makes n realistic finding lines from the samples, each with
// its own id, account, IPs, instance id, count and timestamps, so the corpus
// compresses like a real batch rather than like one repeated line. The
// result depends only on n.
func findingLines(tb testing.TB, n int) [][]byte {
	tb.Helper()
	samples := sampleFindings(tb)
	rng := rand.New(rand.NewPCG(2024, uint64(n)))
	accounts := []string{"111122223333", "444455556666", "777788889999", "123456789012", "210987654321"}
	base := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	lines := make([][]byte, n)
	for i := range lines {
		src := samples[i%len(samples)]
		var f struct {
			ID        string `json:"id"`
			AccountID string `json:"accountId"`
		}
		if err := json.Unmarshal(src, &f); err != nil {
			tb.Fatal(err)
		}
		line := bytes.ReplaceAll(src, []byte(f.ID), fmt.Appendf(nil, "%016x%016x", rng.Uint64(), rng.Uint64()))
		line = bytes.ReplaceAll(line, []byte(f.AccountID), []byte(accounts[rng.IntN(len(accounts))]))
		line = reIPv4.ReplaceAllFunc(line, func([]byte) []byte {
			return fmt.Appendf(nil, "%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
		})
		line = reInstance.ReplaceAllFunc(line, func([]byte) []byte {
			return fmt.Appendf(nil, "i-%017x", rng.Uint64()>>4)
		})
		line = reCount.ReplaceAllFunc(line, func([]byte) []byte {
			return fmt.Appendf(nil, `"count":%d`, 1+rng.IntN(500))
		})
		line = reTimestamp.ReplaceAllFunc(line, func(m []byte) []byte {
			field := m[1 : bytes.IndexByte(m[1:], '"')+1]
			t := base.Add(time.Duration(rng.Int64N(int64(72 * time.Hour)))).Truncate(time.Millisecond)
			return fmt.Appendf(nil, `"%s":"%s"`, field, t.Format("2006-01-02T15:04:05.000Z"))
		})
		lines[i] = line
	}
	return lines
}

func joinLines(lines [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestFindingLinesAreVaried(t *testing.T) {
	// The size and speed checks are only meaningful on a corpus that does not
	// collapse to one repeated line.
	lines := findingLines(t, 1000)
	seen := map[string]bool{}
	for _, l := range lines {
		if !json.Valid(l) {
			t.Fatalf("generated line is not JSON: %.200s", l)
		}
		seen[string(l)] = true
	}
	if len(seen) != len(lines) {
		t.Fatalf("%d distinct lines of %d", len(seen), len(lines))
	}
	total := len(joinLines(lines))
	if total < 2<<20 {
		t.Fatalf("corpus is %d bytes, want a few MB", total)
	}
	t.Logf("corpus: %d lines, %d bytes, %d bytes/line", len(lines), total, total/len(lines))
}
