package encrypt

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gdexport/gdexport/pipeline"
)

func TestEnsureLocalCreatesKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "local-master.key")
	l, err := EnsureLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != MasterKeySize {
		t.Fatalf("key file mode %04o size %d, want 0600 and %d", fi.Mode().Perm(), fi.Size(), MasterKeySize)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode %04o, want 0700", di.Mode().Perm())
	}
	if pi, err := os.Stat(filepath.Dir(dir)); err != nil || pi.Mode().Perm() != 0o755 {
		t.Fatalf("data directory: %v, mode %v, want 0755 (only the key directory is private)", err, pi.Mode())
	}
	key, _ := os.ReadFile(path)
	sum := sha256.Sum256(key)
	if want := "local:" + hex.EncodeToString(sum[:])[:16]; l.KeyID() != want {
		t.Fatalf("KeyID = %s, want %s", l.KeyID(), want)
	}
	again, err := EnsureLocal(path)
	if err != nil || again.KeyID() != l.KeyID() {
		t.Fatalf("second EnsureLocal: %v, key %s, want the same key %s", err, again.KeyID(), l.KeyID())
	}
	assertNoTempFiles(t, dir)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestEnsureLocalConcurrentFirstRun(t *testing.T) {
	// Workers starting together on a fresh data directory must end with one
	// key, or objects sealed by one could not be opened with the file.
	for round := range 20 {
		dir := filepath.Join(t.TempDir(), "keys")
		path := filepath.Join(dir, "local-master.key")
		const workers = 8
		ids := make([]string, workers)
		errs := make([]error, workers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				<-start
				l, err := EnsureLocal(path)
				errs[i] = err
				if err == nil {
					ids[i] = l.KeyID()
				}
			})
		}
		close(start)
		wg.Wait()
		for i := range workers {
			if errs[i] != nil {
				t.Fatalf("round %d worker %d: %v", round, i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("round %d: worker %d has key %s, worker 0 has %s", round, i, ids[i], ids[0])
			}
		}
		assertNoTempFiles(t, dir)
	}
}

const helperEnv = "GDEXPORT_TEST_ENSURE_LOCAL"

// TestHelperEnsureLocal is not a test: TestEnsureLocalTwoProcesses runs the
// test binary with it as a worker process that waits for a line on stdin,
// calls EnsureLocal and prints the key id.
func TestHelperEnsureLocal(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Println("stdin:", err)
		os.Exit(2)
	}
	l, err := EnsureLocal(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("key", l.KeyID())
	os.Exit(0)
}

func TestEnsureLocalTwoProcesses(t *testing.T) {
	// The same race as above between OS processes, as two gdexport workers.
	path := filepath.Join(t.TempDir(), "keys", "local-master.key")
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   strings.Builder
	}
	procs := make([]*proc, 2)
	for i := range procs {
		p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperEnsureLocal$", "-test.count=1")}
		p.cmd.Env = append(os.Environ(), helperEnv+"="+path)
		p.cmd.Stdout = &p.out
		p.cmd.Stderr = &p.out
		var err error
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	// Both processes are running and blocked on stdin: release them together.
	for _, p := range procs {
		_, _ = io.WriteString(p.stdin, "go\n")
		p.stdin.Close()
	}
	var keys []string
	for i, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v: %s", i, err, p.out.String())
		}
		_, key, ok := strings.Cut(strings.TrimSpace(p.out.String()), "key ")
		if !ok {
			t.Fatalf("process %d printed %q", i, p.out.String())
		}
		keys = append(keys, strings.Fields(key)[0])
	}
	l, err := LoadLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	if keys[0] != l.KeyID() || keys[1] != l.KeyID() {
		t.Fatalf("processes used keys %v, the file holds %s", keys, l.KeyID())
	}
}

func TestLoadLocalRefusesBadKeyFiles(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, path string)
		mention string
		notFile bool // the error also wraps fs.ErrNotExist
	}{
		{
			// decrypt must not invent a key for a mistyped path.
			name:    "missing",
			setup:   func(*testing.T, string) {},
			notFile: true,
		},
		{
			// A truncated copy of the key would wrap nothing it can unwrap.
			name:    "too short",
			setup:   func(t *testing.T, p string) { writeKey(t, p, make([]byte, 31), 0o600) },
			mention: "31 bytes",
		},
		{
			name:    "too long",
			setup:   func(t *testing.T, p string) { writeKey(t, p, make([]byte, 33), 0o600) },
			mention: "33 bytes",
		},
		{
			name:    "empty",
			setup:   func(t *testing.T, p string) { writeKey(t, p, nil, 0o600) },
			mention: "0 bytes",
		},
		{
			// Readable by everyone: the key would be no secret.
			name:    "world readable",
			setup:   func(t *testing.T, p string) { writeKey(t, p, make([]byte, 32), 0o644) },
			mention: "0644",
		},
		{
			name:    "group readable",
			setup:   func(t *testing.T, p string) { writeKey(t, p, make([]byte, 32), 0o640) },
			mention: "chmod 600",
		},
		{
			// Writable by the group: someone could swap the key.
			name:    "group writable",
			setup:   func(t *testing.T, p string) { writeKey(t, p, make([]byte, 32), 0o620) },
			mention: "0620",
		},
		{
			name: "directory",
			setup: func(t *testing.T, p string) {
				if err := os.MkdirAll(p, 0o700); err != nil {
					t.Fatal(err)
				}
			},
			mention: "not a regular file",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "local-master.key")
			tc.setup(t, path)
			_, err := LoadLocal(path)
			if !errors.Is(err, ErrKeyFile) || !pipeline.IsAccess(err) {
				t.Fatalf("err = %v, want ErrKeyFile and pipeline.ErrAccess", err)
			}
			if tc.notFile != errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("errors.Is(%v, fs.ErrNotExist) = %v", err, !tc.notFile)
			}
			if !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %q and the path", err, tc.mention)
			}
			if tc.notFile {
				return
			}
			// EnsureLocal must refuse it too, never replace a key in use.
			before, _ := os.Lstat(path)
			if _, err := EnsureLocal(path); !errors.Is(err, ErrKeyFile) {
				t.Fatalf("EnsureLocal: err = %v, want ErrKeyFile", err)
			}
			if after, _ := os.Lstat(path); !os.SameFile(before, after) || after.Mode() != before.Mode() {
				t.Fatal("EnsureLocal replaced or changed a refused key file")
			}
		})
	}
}

func writeKey(t *testing.T, path string, key []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, key, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is filtered by umask
		t.Fatal(err)
	}
}

func TestEnsureLocalUnderRegularFile(t *testing.T) {
	// A data directory that is a file: the user must fix the keyFile path.
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureLocal(filepath.Join(file, "keys", "local-master.key"))
	if !errors.Is(err, ErrKeyFile) || !pipeline.IsAccess(err) {
		t.Fatalf("err = %v, want ErrKeyFile and pipeline.ErrAccess", err)
	}
}
