package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/stages/compress"
	"github.com/gdexport/gdexport/stages/encrypt"
)

// Object is one exported object read back.
type Object struct {
	Path  string
	Lines []string
}

// ReadObjects decrypts and decompresses every object under root (envelope
// objects with the local key file keyFile). Temp files are never listed.
func ReadObjects(t testing.TB, root, keyFile string) []Object {
	t.Helper()
	return NewObjectReader(root, keyFile).Read(t)
}

// ObjectReader reads the objects under a root again and again, decrypting
// only those that are new or changed since the last read (tests poll it).
type ObjectReader struct {
	root, keyFile string
	key           *encrypt.Local
	cache         map[string]cachedObject
}

type cachedObject struct {
	size  int64
	mtime time.Time
	obj   Object
}

// NewObjectReader returns a reader of the objects under root.
func NewObjectReader(root, keyFile string) *ObjectReader {
	return &ObjectReader{root: root, keyFile: keyFile, cache: map[string]cachedObject{}}
}

// Read returns every object under the root, in path order.
func (r *ObjectReader) Read(t testing.TB) []Object {
	t.Helper()
	var out []Object
	root, keyFile := r.root, r.keyFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if c, ok := r.cache[p]; ok && c.size == fi.Size() && c.mtime.Equal(fi.ModTime()) {
			out = append(out, c.obj)
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".enc") {
			if r.key == nil {
				if r.key, err = encrypt.LoadLocal(keyFile); err != nil {
					return err
				}
			}
			if data, err = encrypt.Open(context.Background(), encrypt.Providers(r.key), data); err != nil {
				return err
			}
		}
		plain, err := compress.Gunzip(bytes.NewReader(data))
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		o := Object{Path: filepath.ToSlash(rel)}
		for _, l := range strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n") {
			if l != "" {
				o.Lines = append(o.Lines, l)
			}
		}
		r.cache[p] = cachedObject{size: fi.Size(), mtime: fi.ModTime(), obj: o}
		out = append(out, o)
		return nil
	})
	if err != nil {
		t.Fatalf("read objects under %s: %v", root, err)
	}
	return out
}

// StreamMsg is one message read back from a stream.
type StreamMsg struct {
	Subject string
	Header  map[string][]string
	Data    []byte
}

// ReadStream reads every message of stream on subject filter, waiting at most
// 30 seconds (a clustered stream that has just changed leader may answer
// its first fetches with nothing).
func ReadStream(t testing.TB, js jetstream.JetStream, stream, filter string) []StreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	total := 0
	for _, n := range info.State.Subjects {
		total += int(n)
	}
	var out []StreamMsg
	if total == 0 {
		return out
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	for len(out) < total {
		batch, err := c.Fetch(total-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("read %s: %d of %d messages: %v", stream, len(out), total, err)
			}
			time.Sleep(200 * time.Millisecond) // the ordered consumer is re-created
			continue
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, StreamMsg{Subject: m.Subject(), Header: m.Headers(), Data: bytes.Clone(m.Data())})
		}
		if n == 0 && ctx.Err() != nil {
			t.Fatalf("read %s: %d of %d messages", stream, len(out), total)
		}
	}
	return out
}

// Eventually polls cond until it holds or timeout passes, every 10 ms at
// first and less often the longer it waits (at most every 250 ms), so that
// an expensive cond does not starve what it waits for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// Poll is Eventually without failing the test: it polls cond the same way
// and reports whether it held before timeout passed.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(pause*3/2, 250*time.Millisecond)
	}
	return true
}

// LogConsumers logs the state of every consumer of the given streams: what
// is pending, waiting for an ack, and redelivered. Tests call it when they
// fail, so a stall can be told apart from a loss.
func LogConsumers(t testing.TB, js jetstream.JetStream, streams ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Logf("stream %s: %v", name, err)
			continue
		}
		si, err := s.Info(ctx)
		if err == nil {
			t.Logf("stream %s: msgs %d first %d last %d", name, si.State.Msgs, si.State.FirstSeq, si.State.LastSeq)
		}
		for ci := range s.ListConsumers(ctx).Info() {
			t.Logf("  consumer %s: pending %d ack-pending %d redelivered %d delivered %d ack-floor %d waiting %d",
				ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumWaiting)
		}
	}
}
