package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// GoBenchResult is one `go test -bench` result of a hot path.
type GoBenchResult struct {
	Package     string  `json:"package"`
	Name        string  `json:"name"`
	Iterations  int64   `json:"iterations"`
	NsPerOp     float64 `json:"nsPerOp"`
	MBPerSec    float64 `json:"mbPerSecond,omitempty"`
	BytesPerOp  float64 `json:"bytesPerOp"`
	AllocsPerOp float64 `json:"allocsPerOp"`
}

// HotPathPackages are the packages whose Go benchmarks cover the hot paths:
// decode and validate, filter evaluation with 100 rules, gzip, encryption,
// and the JetStream adapter.
var HotPathPackages = []string{"./stages/...", "./pipeline/wmjs/"}

// GoBench runs the Go benchmarks of pkgs (from the repository root) and
// parses their results.
func GoBench(ctx context.Context, pkgs []string) ([]GoBenchResult, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchmem"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return parseGoBench(out.String())
}

// parseGoBench reads the benchmark lines of `go test -bench -benchmem`
// output, each under the latest "pkg:" line.
func parseGoBench(out string) ([]GoBenchResult, error) {
	var res []GoBenchResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		r := GoBenchResult{Package: pkg, Name: fs[0]}
		var err error
		if r.Iterations, err = strconv.ParseInt(fs[1], 10, 64); err != nil {
			return nil, fmt.Errorf("benchmark line %q: iterations %q: %v", line, fs[1], err)
		}
		// Then value-unit pairs: ns/op, MB/s, B/op, allocs/op.
		for i := 2; i+1 < len(fs); i += 2 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: value %q: %v", line, fs[i], err)
			}
			switch fs[i+1] {
			case "ns/op":
				r.NsPerOp = v
			case "MB/s":
				r.MBPerSec = v
			case "B/op":
				r.BytesPerOp = v
			case "allocs/op":
				r.AllocsPerOp = v
			}
		}
		res = append(res, r)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("no benchmark results in the output:\n%s", out)
	}
	return res, nil
}
