package bench

import "testing"

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/gdexport/gdexport/stages/compress
cpu: AMD EPYC
BenchmarkGzip-2   	     100	  11234567 ns/op	  95.12 MB/s	  123456 B/op	      12 allocs/op
BenchmarkGzipLevels/level-1-2         	      50	   2345678 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/gdexport/gdexport/stages/compress	3.1s
pkg: github.com/gdexport/gdexport/stages/filter
BenchmarkArchive100Rules-2   	 1000000	      1043 ns/op	       0 B/op	       0 allocs/op
`
	got, err := parseGoBench(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d results, want 3: %+v", len(got), got)
	}
	g := got[0]
	if g.Package != "github.com/gdexport/gdexport/stages/compress" || g.Name != "BenchmarkGzip-2" || g.Iterations != 100 ||
		g.NsPerOp != 11234567 || g.MBPerSec != 95.12 || g.BytesPerOp != 123456 || g.AllocsPerOp != 12 {
		t.Errorf("first result %+v", g)
	}
	if got[2].Package != "github.com/gdexport/gdexport/stages/filter" || got[2].NsPerOp != 1043 {
		t.Errorf("third result %+v", got[2])
	}
	if _, err := parseGoBench("PASS\n"); err == nil {
		t.Error("output without results parsed without error")
	}
}
