package compress

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func TestGzipRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte(`{"k":"0123456789abcdef"}`), 8000) // one line larger than the staging buffer
	cases := []struct {
		name  string
		dst   []byte
		lines [][]byte
	}{
		// An empty batch still makes a valid (empty) gzip stream.
		{name: "no lines", lines: nil},
		{name: "one line", lines: [][]byte{[]byte(`{"id":"a"}`)}},
		// Gzip appends: a caller's prefix must survive untouched.
		{name: "appends to dst", dst: []byte("prefix"), lines: [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)}},
		// Non-ASCII and escaped newlines are ordinary bytes to Gzip.
		{name: "unicode and escapes", lines: [][]byte{[]byte(`{"d":"héllo \\n wörld ✓"}`)}},
		// A line larger than the staging buffer takes the direct path.
		{name: "line larger than stage", lines: [][]byte{[]byte(`{"a":1}`), big, []byte(`{"b":2}`)}},
		{name: "realistic batch", lines: findingLines(t, 300)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := append([]byte(nil), tc.dst...)
			out, err := Gzip(tc.dst, tc.lines)
			if err != nil {
				t.Fatalf("Gzip: %v", err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("dst prefix %q not kept", prefix)
			}
			got, err := Gunzip(bytes.NewReader(out[len(prefix):]))
			if err != nil {
				t.Fatalf("Gunzip: %v", err)
			}
			if want := joinLines(tc.lines); !bytes.Equal(got, want) {
				t.Fatalf("round trip differs: got %d bytes, want %d", len(got), len(want))
			}
			// The standard library must read it too: consumers are not ours.
			zr, err := stdgzip.NewReader(bytes.NewReader(out[len(prefix):]))
			if err != nil {
				t.Fatalf("compress/gzip: %v", err)
			}
			std, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(std, got) {
				t.Fatalf("compress/gzip read %d bytes, err %v", len(std), err)
			}
			if split := SplitLines(got); len(split) != len(tc.lines) {
				t.Fatalf("SplitLines: %d lines, want %d", len(split), len(tc.lines))
			}
		})
	}
}

func TestGzipRejectsBadLines(t *testing.T) {
	cases := []struct {
		name  string
		lines [][]byte
	}{
		// An empty record would make a blank line, which JSON Lines readers reject.
		{name: "empty line", lines: [][]byte{[]byte(`{}`), {}}},
		// A raw newline would split one finding into two broken records.
		{name: "embedded newline", lines: [][]byte{[]byte("{\"a\":\n1}")}},
		// A trailing newline would double the separator.
		{name: "trailing newline", lines: [][]byte{[]byte("{}\n")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := Gzip(dst, tc.lines)
			if !errors.Is(err, ErrBadLine) {
				t.Fatalf("err = %v, want ErrBadLine", err)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed to %q", out)
			}
		})
	}
}

func TestGzipIsDeterministic(t *testing.T) {
	lines := findingLines(t, 200)
	ref, err := Gzip(nil, lines)
	if err != nil {
		t.Fatal(err)
	}
	// Header: no FNAME/FCOMMENT/FEXTRA flags, MTIME 0, OS unknown (255).
	if ref[3] != 0 || !bytes.Equal(ref[4:8], []byte{0, 0, 0, 0}) || ref[9] != 255 {
		t.Fatalf("gzip header % x carries a name, time or OS", ref[:10])
	}
	// Pooled writers are shared: other batches compressed in between, and
	// concurrently, must not change the bytes.
	other := findingLines(t, 37)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for range 5 {
				if _, err := Gzip(nil, other[:i+1]); err != nil {
					errs <- err
					return
				}
				got, err := Gzip(nil, lines)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, ref) {
					errs <- fmt.Errorf("worker %d: output differs from the first run", i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestGunzipErrors(t *testing.T) {
	good, err := Gzip(nil, [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)})
	if err != nil {
		t.Fatal(err)
	}
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-8] ^= 0xff // CRC-32 of the trailer
	readErr := errors.New("disk on fire")
	cases := []struct {
		name        string
		r           io.Reader
		wantCorrupt bool
		wantErr     error
	}{
		// Plain JSON is not gzip.
		{name: "not gzip", r: strings.NewReader(`{"id":"a"}`), wantCorrupt: true},
		// Empty input is a stream cut before its header.
		{name: "empty", r: bytes.NewReader(nil), wantCorrupt: true},
		// A partial upload must not pass for a short object.
		{name: "truncated", r: bytes.NewReader(good[:len(good)-5]), wantCorrupt: true},
		// A flipped bit that inflate accepts is caught by the CRC.
		{name: "checksum", r: bytes.NewReader(badCRC), wantCorrupt: true},
		// A failing source is an I/O error, not corruption.
		{name: "reader error", r: io.MultiReader(bytes.NewReader(good[:12]), iotest.ErrReader(readErr)), wantErr: readErr},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Gunzip(tc.r)
			if err == nil {
				t.Fatal("Gunzip succeeded")
			}
			if got := errors.Is(err, ErrCorrupt); got != tc.wantCorrupt {
				t.Fatalf("errors.Is(%v, ErrCorrupt) = %v, want %v", err, got, tc.wantCorrupt)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.wantErr)
			}
		})
	}
}

func TestSplitLines(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: []string{}},
		{name: "terminated", in: "a\nb\n", want: []string{"a", "b"}},
		// A file edited by hand may lack the final newline.
		{name: "unterminated last line", in: "a\nb", want: []string{"a", "b"}},
		// Blank lines carry no finding.
		{name: "blank lines skipped", in: "\na\n\nb\n\n", want: []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitLines([]byte(tc.in))
			gs := make([]string, len(got))
			for i, l := range got {
				gs[i] = string(l)
			}
			if fmt.Sprint(gs) != fmt.Sprint(tc.want) || len(gs) != len(tc.want) {
				t.Fatalf("SplitLines(%q) = %q, want %q", tc.in, gs, tc.want)
			}
		})
	}
}

// stdlibGzip6 compresses raw with the standard library at level 6.
func stdlibGzip6(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, err := stdgzip.NewWriterLevel(&buf, 6)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := zw.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// gzipCommand6 compresses raw with gzip(1) -6 -n, or skips when there is no
// gzip command.
func gzipCommand6(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	bin, err := exec.LookPath("gzip")
	if err != nil {
		tb.Skip("no gzip command in PATH")
	}
	cmd := exec.Command(bin, "-6", "-n", "-c")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("gzip -6: %v", err)
	}
	return out
}

// TestGzipSize holds Gzip's output size against level 6 of the standard
// library and of gzip(1) on the same bytes. Sizes are deterministic, so the
// budgets are exact regression limits for Level; the figures are logged.
// Level 6 of klauspost trades size for speed (see Level): on 1,000 findings
// it is about 15% larger than the standard library's level 6, which is
// itself about 7% smaller than gzip(1) -6.
func TestGzipSize(t *testing.T) {
	cases := []struct {
		name      string
		findings  int
		reference func(testing.TB, []byte) []byte
		budget    float64 // largest allowed size / reference size
	}{
		// A typical new-finding batch: a few findings flushed after newFindingDelay.
		{name: "10 findings vs compress/gzip 6", findings: 10, reference: stdlibGzip6, budget: 1.05},
		{name: "100 findings vs compress/gzip 6", findings: 100, reference: stdlibGzip6, budget: 1.10},
		// A full update window: where the level's ratio shows.
		{name: "1000 findings vs compress/gzip 6", findings: 1000, reference: stdlibGzip6, budget: 1.16},
		{name: "1000 findings vs gzip(1) -6", findings: 1000, reference: gzipCommand6, budget: 1.07},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := findingLines(t, tc.findings)
			raw := joinLines(lines)
			ref := tc.reference(t, raw)
			out, err := Gzip(nil, lines)
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(len(out)) / float64(len(ref))
			t.Logf("raw %d B, Gzip (level %d) %d B, reference %d B: %.3f of reference", len(raw), Level, len(out), len(ref), ratio)
			if ratio > tc.budget {
				t.Fatalf("Gzip output is %.3f of the reference, budget %.2f", ratio, tc.budget)
			}
		})
	}
}

// The benchmarks compress the same ~2.7 MB batch of 1,000 findings; MB/s is
// of uncompressed input, raw/gz is the compression ratio.

// Level 8 is the one for size: no larger than gzip(1) -6 on the same bytes.
func TestGzipLevel8Size(t *testing.T) {
	lines := findingLines(t, 1000)
	raw := joinLines(lines)
	ref := gzipCommand6(t, raw)
	w := NewWriterLevel(nil, 8)
	for _, l := range lines {
		if err := w.Line(l); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Gunzip(bytes.NewReader(out))
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("level 8 does not round-trip: %v", err)
	}
	t.Logf("level 8: %d B, gzip(1) -6: %d B", len(out), len(ref))
	if len(out) > len(ref) {
		t.Errorf("level 8 output %d B is larger than gzip -6's %d B", len(out), len(ref))
	}
}

// BenchmarkGzipLevels compresses the same batch at each level (MB/s of
// input, gz-bytes of output), for the choice of compression.level.
func BenchmarkGzipLevels(b *testing.B) {
	lines := findingLines(b, 1000)
	raw := len(joinLines(lines))
	for _, level := range []int{1, 5, 6, 8, 9} {
		b.Run(fmt.Sprintf("level-%d", level), func(b *testing.B) {
			b.SetBytes(int64(raw))
			var out []byte
			for i := 0; i < b.N; i++ {
				w := NewWriterLevel(out[:0], level)
				for _, l := range lines {
					_ = w.Line(l)
				}
				out, _ = w.Close()
			}
			b.ReportMetric(float64(len(out)), "gz-bytes")
		})
	}
}

func BenchmarkGzip(b *testing.B) {
	lines := findingLines(b, 1000)
	raw := len(joinLines(lines))
	b.SetBytes(int64(raw))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		var err error
		if out, err = Gzip(out[:0], lines); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(raw)/float64(len(out)), "raw/gz")
	b.ReportMetric(float64(len(out)), "gz-bytes")
}

func BenchmarkStdlibGzip(b *testing.B) {
	lines := findingLines(b, 1000)
	raw := joinLines(lines)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var buf bytes.Buffer
	zw, err := stdgzip.NewWriterLevel(&buf, 6)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		buf.Reset()
		zw.Reset(&buf) // reuse, as Gzip reuses pooled writers
		if _, err := zw.Write(raw); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw))/float64(buf.Len()), "raw/gz")
	b.ReportMetric(float64(buf.Len()), "gz-bytes")
}
