package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/stages/compress"
)

// LimitsResult is what this machine does without gdexport, measured in the
// same run with the same findings: JetStream publishing, one consume →
// publish → ack hop, and gzip.
type LimitsResult struct {
	Durability     string  `json:"durability"`
	Findings       int     `json:"findings"`
	PublishPerSec  float64 `json:"publishPerSecond"`
	HopPerSec      float64 `json:"hopPerSecond"`
	GzipMBps       float64 `json:"gzipLevel6MBps"`
	StdlibGzipMBps float64 `json:"stdlibGzipLevel6MBps"`
	GzipRatio      float64 `json:"gzipLevel6Ratio"`
	StdlibRatio    float64 `json:"stdlibGzipLevel6Ratio"`
	// The compression goal, on one batch of the same 1,000 findings:
	// output bytes of gdexport's gzip at level 6 (the default) and 8, of
	// the standard library's level 6 and of gzip(1) -6 (0 when there is no
	// gzip command), and level 8's speed.
	GzipFindings    int     `json:"gzipFindings"`
	GzipBytes       int     `json:"gzipLevel6Bytes"`
	Gzip8Bytes      int     `json:"gzipLevel8Bytes"`
	Gzip8MBps       float64 `json:"gzipLevel8MBps"`
	StdlibGzipBytes int     `json:"stdlibGzipLevel6Bytes"`
	GzipCmdBytes    int     `json:"gzipCommand6Bytes"`
}

// Limits measures, on a fresh nats-server of the durability mode: async
// publishing of n findings to a stream (the rate a producer gets), then one
// hop — fetch in batches of 500, publish each onward to a second stream,
// ack — the least a pipeline stage costs; and gzip throughput on the same
// findings, klauspost level 6 and the standard library's.
func Limits(ctx context.Context, bins Binaries, dir, durability string, n int) (LimitsResult, error) {
	res := LimitsResult{Durability: durability, Findings: n}
	ns, err := StartNATS(bins, filepath.Join(dir, "nats"), durability)
	if err != nil {
		return res, err
	}
	defer ns.Stop()
	nc, err := nats.Connect(ns.URL)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return res, err
	}
	for _, name := range []string{"IN", "OUT"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage}); err != nil {
			return res, err
		}
	}
	var findings [][]byte
	if err := Generated(4, n, 0)(func(raw []byte) error { findings = append(findings, raw); return nil }); err != nil {
		return res, err
	}
	start := time.Now()
	for i, f := range findings {
		if _, err := js.PublishAsync("IN.f."+strconv.Itoa(i%64), f, jetstream.WithStallWait(time.Minute)); err != nil {
			return res, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.PublishPerSec = float64(n) / time.Since(start).Seconds()

	cons, err := js.CreateConsumer(ctx, "IN", jetstream.ConsumerConfig{Durable: "hop", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10_000})
	if err != nil {
		return res, err
	}
	start = time.Now()
	done := 0
	for done < n {
		// Never more than remain: Fetch waits out its max wait for a
		// batch it cannot fill, and that wait is not the hop's cost.
		batch, err := cons.Fetch(min(500, n-done), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return res, err
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			if _, err := js.PublishAsync("OUT"+m.Subject()[2:], m.Data(), jetstream.WithStallWait(time.Minute)); err != nil {
				return res, err
			}
			msgs = append(msgs, m)
		}
		if len(msgs) == 0 {
			return res, fmt.Errorf("hop: %d of %d messages", done, n)
		}
		// Ack once the onward copies are stored, as a stage must.
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return res, ctx.Err()
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				return res, err
			}
		}
		done += len(msgs)
	}
	if err := nc.Flush(); err != nil {
		return res, err
	}
	res.HopPerSec = float64(n) / time.Since(start).Seconds()

	// gzip on batches of 1,000 of the same findings.
	lines := findings[:min(1000, len(findings))]
	res.GzipFindings = len(lines)
	var raw []byte
	for _, f := range lines {
		raw = append(append(raw, f...), '\n')
	}
	gz := func(level int) (mbps float64, size int, err error) {
		const rounds = 20
		start := time.Now()
		var out []byte
		for i := 0; i < rounds; i++ {
			w := compress.NewWriterLevel(out[:0], level)
			for _, l := range lines {
				if err := w.Line(l); err != nil {
					return 0, 0, err
				}
			}
			if out, err = w.Close(); err != nil {
				return 0, 0, err
			}
		}
		return float64(rounds*len(raw)) / time.Since(start).Seconds() / 1e6, len(out), nil
	}
	if res.GzipMBps, res.GzipBytes, err = gz(6); err != nil {
		return res, err
	}
	if res.Gzip8MBps, res.Gzip8Bytes, err = gz(8); err != nil {
		return res, err
	}
	res.GzipRatio = float64(len(raw)) / float64(res.GzipBytes)
	const rounds = 20
	start = time.Now()
	var buf bytes.Buffer
	for i := 0; i < rounds; i++ {
		buf.Reset()
		zw, _ := gzip.NewWriterLevel(&buf, 6)
		_, _ = zw.Write(raw)
		_ = zw.Close()
	}
	res.StdlibGzipMBps = float64(rounds*len(raw)) / time.Since(start).Seconds() / 1e6
	res.StdlibGzipBytes = buf.Len()
	res.StdlibRatio = float64(len(raw)) / float64(buf.Len())
	if bin, err := exec.LookPath("gzip"); err == nil {
		cmd := exec.CommandContext(ctx, bin, "-6", "-n", "-c")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil {
			return res, fmt.Errorf("gzip -6: %w", err)
		}
		res.GzipCmdBytes = len(out)
	}
	return res, nil
}
