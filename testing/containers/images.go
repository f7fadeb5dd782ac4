package containers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/testcontainers/testcontainers-go"
)

// Tool is a server built from the tools module into an image FROM scratch.
type Tool struct {
	// Name names the binary and the image (gdexport-test/<Name>).
	Name string
	// Package is the main package's import path, pinned in testing/tools.
	Package string
	// Entrypoint is the image's entrypoint after the binary, if any.
	Entrypoint []string
	// Expose lists the ports the image declares.
	Expose []string
}

// The tools of the integration tests.
var (
	MinIOTool    = Tool{Name: "minio", Package: "github.com/minio/minio", Expose: []string{"9000/tcp"}}
	LocalKMSTool = Tool{Name: "local-kms", Package: "github.com/nsmithuk/local-kms", Expose: []string{"8080/tcp"}}
	NATSTool     = Tool{Name: "nats-server", Package: "github.com/nats-io/nats-server/v2", Expose: []string{"4222/tcp", "6222/tcp", "8222/tcp"}}
)

// dockerfile is the image of a tool: the static binary and the host's CA
// bundle (for a tool that calls out over TLS; nothing here does, but a
// FROM scratch image has none otherwise).
func (t Tool) dockerfile() string {
	var b strings.Builder
	b.WriteString("FROM scratch\n")
	b.WriteString("COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n")
	fmt.Fprintf(&b, "COPY %s /%s\n", t.Name, t.Name)
	for _, p := range t.Expose {
		fmt.Fprintf(&b, "EXPOSE %s\n", p)
	}
	ep := append([]string{"/" + t.Name}, t.Entrypoint...)
	fmt.Fprintf(&b, "ENTRYPOINT [%s]\n", quoteList(ep))
	return b.String()
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// ToolsDir returns the testing/tools module directory of the repository the
// test runs in, found by walking up from the working directory.
func ToolsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "testing", "tools")
		if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testing/tools/go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Tag returns the image reference of t: gdexport-test/<name>:<16 hex of
// SHA-256 over the tools module's go.mod and go.sum, the Dockerfile, the
// package path, GOOS/GOARCH and the Go toolchain version>.
func (t Tool) Tag(toolsDir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(toolsDir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "dockerfile\n%s\npackage %s\n%s/%s %s\n", t.dockerfile(), t.Package, runtime.GOOS, runtime.GOARCH, goVersion())
	return "gdexport-test/" + t.Name + ":" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// goVersion is the version of the go command that builds the tools (the
// one on PATH), falling back to the test binary's.
func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}

// Logger receives the progress of image builds; testing.TB is one.
type Logger interface {
	Logf(format string, args ...any)
}

// recipe is how one image is made: its tag (a hash of its inputs) and how
// its build context is staged.
type recipe struct {
	// name names the image in logs and its build lock.
	name string
	tag  string
	// what says what the build compiles, for the log.
	what string
	// stage writes the build context, Dockerfile included, into dir.
	stage func(ctx context.Context, dir string, log Logger) error
}

// Image returns t's image reference, building the image first when no image
// of that tag exists. Building compiles t.Package from testing/tools with
// CGO_ENABLED=0 and builds the image FROM scratch; build output goes to
// log. Safe across parallel test processes (a file lock per image).
func Image(ctx context.Context, log Logger, t Tool) (string, error) {
	toolsDir, err := ToolsDir()
	if err != nil {
		return "", err
	}
	tag, err := t.Tag(toolsDir)
	if err != nil {
		return "", fmt.Errorf("image tag of %s: %w", t.Name, err)
	}
	return ensure(ctx, log, recipe{name: t.Name, tag: tag, what: t.Package, stage: func(ctx context.Context, dir string, log Logger) error {
		if err := goBuild(ctx, log, toolsDir, filepath.Join(dir, t.Name), t.Package); err != nil {
			return err
		}
		if err := stageCACerts(dir); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(t.dockerfile()), 0o644)
	}})
}

// ensure returns r's tag, building the image first when the tag is missing.
func ensure(ctx context.Context, log Logger, r recipe) (string, error) {
	unlock, err := lockFile(filepath.Join(os.TempDir(), "gdexport-test-image-"+r.name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	present, err := imageExists(ctx, r.tag)
	if err != nil {
		return "", err
	}
	if present {
		return r.tag, nil
	}
	start := time.Now()
	log.Logf("building image %s (compiling %s; later runs reuse the image while its inputs are unchanged)", r.tag, r.what)
	if err := buildImage(ctx, log, r); err != nil {
		return "", fmt.Errorf("build image %s: %w", r.tag, err)
	}
	log.Logf("built image %s in %s", r.tag, time.Since(start).Round(time.Second))
	return r.tag, nil
}

func imageExists(ctx context.Context, tag string) (bool, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false, fmt.Errorf("docker client (is the Docker engine running?): %w", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, tag); err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("inspect image %s (is the Docker engine running?): %w", tag, err)
	}
	return true, nil
}

// goBuild compiles pkg statically (CGO_ENABLED=0, for Linux, stripped) in
// dir into out, with exactly the versions go.sum pins (-mod=readonly).
func goBuild(ctx context.Context, log Logger, dir, out, pkg string) error {
	var buildLog bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = buildEnv()
	cmd.Stdout, cmd.Stderr = &buildLog, &buildLog
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, buildLog.String())
	}
	log.Logf("compiled %s in %s", pkg, time.Since(start).Round(time.Second))
	return nil
}

// stageCACerts copies the host's CA bundle into dir; an empty bundle keeps
// the Dockerfile the same on hosts without one.
func stageCACerts(dir string) error {
	to := filepath.Join(dir, "ca-certificates.crt")
	if err := copyFile("/etc/ssl/certs/ca-certificates.crt", to); err != nil {
		return os.WriteFile(to, nil, 0o644)
	}
	return nil
}

func buildImage(ctx context.Context, log Logger, r recipe) error {
	dir, err := os.MkdirTemp("", "gdexport-image-"+r.name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := r.stage(ctx, dir, log); err != nil {
		return err
	}
	repo, version, _ := strings.Cut(r.tag, ":")
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("docker provider (is the Docker engine running?): %w", err)
	}
	defer p.Close()
	var buildLog bytes.Buffer
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: dir, Dockerfile: "Dockerfile", Repo: repo, Tag: version, KeepImage: true, BuildLogWriter: &buildLog,
	}}
	if _, err := p.BuildImage(ctx, req); err != nil {
		return fmt.Errorf("%w\n%s", err, buildLog.String())
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lockFile takes an exclusive flock on path, waiting for other holders
// (another test binary building the same image).
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("image build lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
