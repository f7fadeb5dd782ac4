package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Level is the default klauspost/compress gzip level (compression.level in
// the configuration). On batches of 1,000 GuardDuty findings, measured here
// (TestGzipSize, BenchmarkGzipLevels):
//
//   - level 6: about 1.6 times the standard library's level-6 speed, output
//     6.5% larger than gzip(1) -6 and 15% larger than the standard library;
//   - level 8: output 2% smaller than gzip(1) -6 at about the standard
//     library's speed;
//   - level 9: the smallest, at half the standard library's speed.
//
// The default favours throughput; level 8 is for stores billed by the byte.
const Level = 6

// MinLevel and MaxLevel bound the levels a Writer takes.
const (
	MinLevel = 1
	MaxLevel = 9
)

var (
	// ErrBadLine means a line passed to Gzip is empty or contains a newline,
	// so it cannot be one JSON Lines record.
	ErrBadLine = errors.New("compress: line is not a single JSON Lines record")
	// ErrCorrupt means Gunzip's input is not a complete, valid gzip stream.
	ErrCorrupt = errors.New("compress: invalid gzip stream")
)

// appendWriter is an io.Writer that appends to a byte slice; it lets Gzip
// write straight into the caller's dst.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// stageSize is how many bytes of lines Gzip gathers before one Write: one
// Write per 3 KB line costs about 7% of the throughput.
const stageSize = 64 << 10

// encoder is a gzip writer, its sink and a staging buffer, pooled together:
// a klauspost writer holds several hundred KB of tables worth reusing.
type encoder struct {
	level int
	out   appendWriter
	zw    *gzip.Writer
	stage []byte
}

// encoders pools encoders per level (index level-1).
var encoders [MaxLevel]sync.Pool

func init() {
	for i := range encoders {
		level := i + 1
		encoders[i].New = func() any {
			e := &encoder{level: level}
			zw, err := gzip.NewWriterLevel(&e.out, level)
			if err != nil {
				panic(fmt.Sprintf("compress: level %d: %v", level, err)) // levels 1-9 are valid
			}
			e.zw = zw
			e.stage = make([]byte, 0, stageSize)
			return e
		}
	}
}

var newline = []byte{'\n'}

// Gzip appends to dst the gzip of lines as JSON Lines (each line followed by
// "\n") and returns the extended slice. Each line must be one compact JSON
// value: non-empty and without "\n", else Gzip fails with ErrBadLine and
// returns dst unchanged. The same lines always give identical bytes. Gzip is
// safe for concurrent use; it reuses pooled writers.
func Gzip(dst []byte, lines [][]byte) ([]byte, error) {
	for i, l := range lines {
		if err := checkLine(i, l); err != nil {
			return dst, err
		}
	}
	w := NewWriter(dst)
	for _, l := range lines {
		w.add(l)
	}
	return w.Close()
}

func checkLine(i int, l []byte) error {
	if len(l) == 0 {
		return fmt.Errorf("line %d is empty: %w", i, ErrBadLine)
	}
	if j := bytes.IndexByte(l, '\n'); j >= 0 {
		return fmt.Errorf("line %d has a newline at byte %d: %w", i, j, ErrBadLine)
	}
	return nil
}

// Writer compresses JSON Lines one line at a time, so that a batch is
// compressed as it is read and its lines need not all be held at once. The
// bytes equal Gzip's for the same lines. A Writer is not safe for
// concurrent use; Close (or Abort) returns its pooled encoder.
type Writer struct {
	e     *encoder
	stage []byte
	lines int
}

// NewWriter returns a Writer appending the gzip stream to dst, at Level.
func NewWriter(dst []byte) *Writer { return NewWriterLevel(dst, Level) }

// NewWriterLevel is NewWriter at level (MinLevel to MaxLevel; out of range
// means Level).
func NewWriterLevel(dst []byte, level int) *Writer {
	if level < MinLevel || level > MaxLevel {
		level = Level
	}
	e := encoders[level-1].Get().(*encoder)
	e.out.b = dst
	e.zw.Reset(&e.out) // clears Header too: no name, no mtime, OS 255
	return &Writer{e: e, stage: e.stage[:0]}
}

// Line adds one JSON Lines record; it fails with ErrBadLine, adding
// nothing, when l is empty or holds a newline.
func (w *Writer) Line(l []byte) error {
	if err := checkLine(w.lines, l); err != nil {
		return err
	}
	w.add(l)
	return nil
}

// Lines is how many lines were added.
func (w *Writer) Lines() int { return w.lines }

// add writes a checked line. Writes to appendWriter cannot fail, so neither
// can the gzip writes.
func (w *Writer) add(l []byte) {
	w.lines++
	e := w.e
	if len(w.stage)+len(l)+1 > cap(w.stage) {
		_, _ = e.zw.Write(w.stage)
		w.stage = w.stage[:0]
		if len(l)+1 > cap(w.stage) {
			_, _ = e.zw.Write(l)
			_, _ = e.zw.Write(newline)
			return
		}
	}
	w.stage = append(w.stage, l...)
	w.stage = append(w.stage, '\n')
}

// Close finishes the stream and returns dst extended with it.
func (w *Writer) Close() ([]byte, error) {
	e := w.e
	defer w.release()
	_, _ = e.zw.Write(w.stage)
	if err := e.zw.Close(); err != nil {
		return nil, fmt.Errorf("compress: close gzip writer: %w", err)
	}
	return e.out.b, nil
}

// Abort gives the Writer's resources back without finishing the stream.
func (w *Writer) Abort() { w.release() }

func (w *Writer) release() {
	if w.e == nil {
		return
	}
	w.e.stage = w.stage[:0]
	w.e.out.b = nil // never keep the caller's buffer alive in the pool
	encoders[w.e.level-1].Put(w.e)
	w.e = nil
}

// Gunzip reads a whole gzip stream (concatenated members included) from r
// and returns the decompressed bytes. A stream that is not gzip, is cut
// short or fails its checksum gives an error wrapping ErrCorrupt; an error
// from r itself is returned wrapped as it is.
func Gunzip(r io.Reader) ([]byte, error) {
	cr := &countingReader{r: r}
	zr, err := gzip.NewReader(cr)
	if err != nil {
		return nil, classify(cr, err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, classify(cr, err)
	}
	return out, nil
}

// countingReader remembers an error from the underlying reader so Gunzip can
// tell a failing source apart from a corrupt stream.
type countingReader struct {
	r   io.Reader
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

func classify(cr *countingReader, err error) error {
	if cr.err != nil && errors.Is(err, cr.err) {
		return fmt.Errorf("compress: read gzip stream: %w", err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// SplitLines splits JSON Lines into its records, without their "\n". A
// trailing line without "\n" is kept; empty lines are skipped. The records
// share jsonl's memory.
func SplitLines(jsonl []byte) [][]byte {
	lines := make([][]byte, 0, bytes.Count(jsonl, newline)+1)
	for len(jsonl) > 0 {
		i := bytes.IndexByte(jsonl, '\n')
		if i < 0 {
			lines = append(lines, jsonl)
			break
		}
		if i > 0 {
			lines = append(lines, jsonl[:i])
		}
		jsonl = jsonl[i+1:]
	}
	return lines
}
