package localdir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gdexport/gdexport/pipeline"
)

func TestPutObjectLayoutAndRewrite(t *testing.T) {
	root := t.TempDir()
	d := &pipeline.Destination{ID: "d", Root: root}
	s := New()
	key := "AWSLogs/111122223333/GuardDuty/us-east-1/2026/12/03/x.jsonl.gz"
	for _, body := range []string{"first", "second"} {
		if err := s.PutObject(context.Background(), d, &pipeline.Object{Key: key, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, key))
		if err != nil || string(got) != body {
			t.Fatalf("object = %q, %v; want %q", got, err, body)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(filepath.Join(root, key)))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the object (no temp files)", len(entries))
	}
	info, _ := os.Stat(filepath.Join(root, key))
	if info.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", info.Mode().Perm())
	}
}

func TestPutObjectRefusesBadKeys(t *testing.T) {
	d := &pipeline.Destination{ID: "d", Root: t.TempDir()}
	cases := []struct{ name, key string }{
		{"parent escape", "AWSLogs/../../etc/passwd"},
		{"absolute", "/etc/passwd"},
		{"control character", "AWSLogs/a\nb"},
		{"empty element", "AWSLogs//x"},
		{"empty", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := New().PutObject(context.Background(), d, &pipeline.Object{Key: c.key, Body: []byte("x")})
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("err = %v, want ErrBadKey", err)
			}
		})
	}
}

// A root under a regular file cannot be fixed by retrying: an access error.
func TestUnwritableRootIsAccessError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &pipeline.Destination{ID: "d", Root: filepath.Join(file, "root")}
	err := New().PutObject(context.Background(), d, &pipeline.Object{Key: "a/b.gz", Body: []byte("x")})
	if !pipeline.IsAccess(err) {
		t.Fatalf("err = %v, want an access error", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	root := t.TempDir()
	d := &pipeline.Destination{ID: "d", Root: root}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := filepath.ToSlash(filepath.Join("AWSLogs", "d", string(rune('a'+i))+".gz"))
			if err := New().PutObject(context.Background(), d, &pipeline.Object{Key: key, Body: []byte{byte(i)}}); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	entries, _ := os.ReadDir(filepath.Join(root, "AWSLogs", "d"))
	if len(entries) != 16 {
		t.Errorf("%d objects, want 16", len(entries))
	}
}

// Verify writes and removes a probe outside AWSLogs/; a root that cannot
// be a directory is an access error.
func TestVerify(t *testing.T) {
	root := filepath.Join(t.TempDir(), "export")
	s := New()
	d := &pipeline.Destination{ID: "d", Root: root, Prefix: "team-a"}
	if err := s.Verify(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	var left []string
	_ = filepath.Walk(root, func(p string, info os.FileInfo, _ error) error {
		if info != nil && !info.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("probe left behind: %v", left)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(context.Background(), &pipeline.Destination{ID: "d", Root: file}); !pipeline.IsAccess(err) {
		t.Fatalf("root is a file: err = %v, want an access error", err)
	}
}
