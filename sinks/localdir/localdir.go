package localdir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gdexport/gdexport/pipeline"
)

// ErrBadKey is returned for an object key that could escape the root or
// confuse readers: "..", a leading "/", control characters.
var ErrBadKey = errors.New("bad object key")

// Sink writes objects to local directories. Safe for concurrent use.
type Sink struct{}

var _ pipeline.ObjectSink = (*Sink)(nil)

// New returns a Sink.
func New() *Sink { return &Sink{} }

// Connect does nothing: roots are per destination and checked on write.
func (*Sink) Connect(context.Context) error { return nil }

// Close does nothing.
func (*Sink) Close(context.Context) error { return nil }

// CheckKey refuses keys with "..", a leading "/", or control characters.
func CheckKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w %q: must be relative", ErrBadKey, key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == ".." || part == "." || part == "" {
			return fmt.Errorf("%w %q: empty, . or .. path element", ErrBadKey, key)
		}
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w %q: control character", ErrBadKey, key)
		}
	}
	return nil
}

// PutObject writes obj under dest.Root: to a temporary file in the target
// directory (named .<name>.*.tmp), fsynced, renamed over the target, and the
// directory fsynced. Failures that only fixing the destination can cure (the
// root cannot be created or written) wrap pipeline.ErrAccess; others (a full
// disk, I/O errors) are transient.
func (*Sink) PutObject(ctx context.Context, dest *pipeline.Destination, obj *pipeline.Object) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := CheckKey(obj.Key); err != nil {
		return err
	}
	if dest.Root == "" {
		return fmt.Errorf("destination %s has no root directory: %w", dest.ID, pipeline.ErrAccess)
	}
	target := filepath.Join(dest.Root, filepath.FromSlash(obj.Key))
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return classify(fmt.Errorf("create %s: %w", dir, err))
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return classify(fmt.Errorf("create temporary file in %s: %w", dir, err))
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(obj.Body); err != nil {
		return classify(fmt.Errorf("write %s: %w", tmp.Name(), err))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return classify(fmt.Errorf("chmod %s: %w", tmp.Name(), err))
	}
	if err := tmp.Sync(); err != nil {
		return classify(fmt.Errorf("fsync %s: %w", tmp.Name(), err))
	}
	if err := tmp.Close(); err != nil {
		return classify(fmt.Errorf("close %s: %w", tmp.Name(), err))
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return classify(fmt.Errorf("rename to %s: %w", target, err))
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// classify marks errors that need the destination fixed as access errors.
func classify(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%w: %w", pipeline.ErrAccess, err)
	default:
		return err
	}
}

// ProbeFolder is the folder under a destination's prefix where Verify
// writes (and removes) its write probe; it is outside AWSLogs/, so readers
// of the export layout never see a probe.
const ProbeFolder = "gdexport-write-probe"

// Verify checks that objects can be written under dest's root: it writes a
// probe under [<prefix>/]gdexport-write-probe/ the way PutObject writes
// objects, then removes it. Errors are classified like PutObject's (an
// unwritable root wraps pipeline.ErrAccess).
func (s *Sink) Verify(ctx context.Context, dest *pipeline.Destination) error {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	key := ProbeFolder + "/" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:]) + ".txt"
	if dest.Prefix != "" {
		key = dest.Prefix + "/" + key
	}
	body := []byte("gdexport write probe: checks that export objects can be written here; safe to delete\n")
	if err := s.PutObject(ctx, dest, &pipeline.Object{Key: key, Body: body, ContentType: "text/plain"}); err != nil {
		return fmt.Errorf("destination %s: write probe: %w", dest.ID, err)
	}
	p := filepath.Join(dest.Root, filepath.FromSlash(key))
	if err := os.Remove(p); err != nil {
		return classify(fmt.Errorf("destination %s: remove write probe %s: %w", dest.ID, p, err))
	}
	_ = os.Remove(filepath.Dir(p)) // only when empty: other workers may probe too
	return nil
}
