package process

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/gdexport into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "gdexport")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/gdexport/gdexport/cmd/gdexport")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// safeBuffer collects a process's output for the test log.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Worker is one `gdexport run` process.
type Worker struct {
	Name string
	cmd  *exec.Cmd
	out  *safeBuffer
	done chan struct{}
}

// StartWorker starts `gdexport run` with args. The process is killed when
// the test ends if it is still running; its output goes to the test log
// when the test fails.
func StartWorker(t testing.TB, bin, name string, args ...string) *Worker {
	t.Helper()
	w := &Worker{Name: name, out: &safeBuffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(bin, append([]string{"run"}, args...)...)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		w.Kill()
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, w.out.String())
		}
	})
	return w
}

// Kill sends SIGKILL and waits for the process to end.
func (w *Worker) Kill() {
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-w.done
}

// Stop sends SIGTERM and waits up to timeout for a graceful exit; it reports
// whether the process exited in time with status 0.
func (w *Worker) Stop(timeout time.Duration) bool {
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		return w.cmd.ProcessState.Success()
	case <-time.After(timeout):
		w.Kill()
		return false
	}
}

// Output is what the process printed so far.
func (w *Worker) Output() string { return w.out.String() }

// Exited reports whether the process has ended.
func (w *Worker) Exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Dump sends SIGQUIT, which makes a Go program print every goroutine's stack
// and exit, and waits up to 10s: for the log of a test that found a worker
// stuck.
func (w *Worker) Dump() {
	if w.cmd.Process == nil || w.Exited() {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
	}
}
