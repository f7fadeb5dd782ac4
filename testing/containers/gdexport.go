package containers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// GdexportRepo is the image repository of gdexport in tests; tags are
// hashes of the image's inputs (GdexportTag).
const GdexportRepo = "gdexport-test/gdexport"

// RepoRoot returns the root of the gdexport module the test runs in (the
// directory of go.mod above testing/tools).
func RepoRoot() (string, error) {
	tools, err := ToolsDir()
	if err != nil {
		return "", err
	}
	return filepath.Dir(filepath.Dir(tools)), nil
}

// buildEnv is the environment of every static build (CGO_ENABLED=0, for
// Linux, exactly the versions go.sum pins) and of the file listing that
// hashes gdexport's inputs (build constraints pick the files).
func buildEnv() []string {
	return append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=readonly"))
}

// imageFiles are the files of deployments/ the image is built from.
var imageFiles = []string{"deployments/Dockerfile", "deployments/image/passwd", "deployments/image/group"}

// GdexportTag returns gdexport's image reference in tests:
// gdexport-test/gdexport:<16 hex of SHA-256 over the Go and embedded files
// of every package of this module that cmd/gdexport is built from, go.mod,
// go.sum, deployments/Dockerfile, the passwd and group files, GOARCH and
// the Go toolchain version>. Tests and documentation changes leave it
// unchanged; any change to what the binary is made of gives a new tag.
func GdexportTag(root string) (string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}}|{{.}}{{end}}{{range .EmbedFiles}}|{{.}}{{end}}{{end}}{{end}}`, "./cmd/gdexport")
	cmd.Dir = root
	cmd.Env = buildEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list the inputs of cmd/gdexport: %w\n%s", err, stderr.String())
	}
	files := append([]string{"go.mod", "go.sum"}, imageFiles...)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) < 2 {
			continue
		}
		rel, err := filepath.Rel(root, parts[0])
		if err != nil {
			return "", err
		}
		for _, f := range parts[1:] {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "linux/%s %s\n", runtime.GOARCH, goVersion())
	return GdexportRepo + ":" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// GdexportImage returns gdexport's image reference, building the image
// first when no image of its tag exists: a static binary of ./cmd/gdexport
// (CGO_ENABLED=0) in an image FROM scratch made by deployments/Dockerfile,
// the same file `make image` uses. Safe across parallel test processes.
func GdexportImage(ctx context.Context, log Logger) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	tag, err := GdexportTag(root)
	if err != nil {
		return "", err
	}
	return ensure(ctx, log, recipe{name: "gdexport", tag: tag, what: "./cmd/gdexport", stage: func(ctx context.Context, dir string, log Logger) error {
		return StageGdexport(ctx, log, root, dir)
	}})
}

// StageGdexport writes the build context of gdexport's image into dir:
// the static binary, the CA bundle, passwd and group, an empty data
// directory and deployments/Dockerfile.
func StageGdexport(ctx context.Context, log Logger, root, dir string) error {
	if err := goBuild(ctx, log, root, filepath.Join(dir, "gdexport"), "./cmd/gdexport"); err != nil {
		return err
	}
	if err := stageCACerts(dir); err != nil {
		return err
	}
	for _, f := range imageFiles {
		if err := copyFile(filepath.Join(root, f), filepath.Join(dir, filepath.Base(f))); err != nil {
			return err
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
