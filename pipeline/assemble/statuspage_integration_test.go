//go:build integration

package assemble_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/testing/e2e"
)

// chromium finds Debian's chromium; `make test` installs it with apt-get
// when it is missing, so under the integration tag its absence fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: `make test` installs Debian's chromium package (apt-get install chromium)")
	return ""
}

// headless runs chromium without a display on url with extra flags.
func headless(t *testing.T, bin, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir()}, flags...)
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", flags, err)
	}
	return string(out)
}

// The status page, as a browser renders it, shows a healthy and a failing
// destination the way GuardDuty's Settings page does: the failing one
// first, with its status, the failure start and the error.
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	h := startHarnessWith(t, localDestinations(dir, nil))
	rootA, rootB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	idA, idB := destID(acctA, rootA), destID(acctB, rootB)
	h.waitStatus(idA, pipeline.StatusPublishing)
	h.waitStatus(idB, pipeline.StatusPublishing)
	h.publishFindings(acctB, "healthy", 2)
	e2e.Eventually(t, 20*time.Second, "B's findings", func() bool { return len(h.exportedIDs(rootB)) == 2 })
	// Break A: a file where its root directory was.
	if err := os.RemoveAll(rootA); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rootA, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.publishFindings(acctA, "held", 2)
	h.waitStatus(idA, pipeline.StatusUnableToPublish)

	url := "http://" + h.worker.HTTPAddr() + "/"
	dom := headless(t, bin, url, "--dump-dom")
	for _, want := range []string{
		"export needs attention",
		`id="alert-` + idA + `"`, "Export access error", "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY", "not a directory",
		`id="dest-` + idB + `"`, ">PUBLISHING<", acctA, acctB,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if a, b := strings.Index(dom, `id="dest-`+idA+`"`), strings.Index(dom, `id="dest-`+idB+`"`); a < 0 || b < 0 || a > b {
		t.Error("the failing destination is not listed before the healthy one")
	}
	shots := filepath.Join("..", "..", "testing", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, _ := filepath.Abs(filepath.Join(shots, "status-page.png"))
	os.Remove(shot)
	headless(t, bin, url, "--screenshot="+shot, "--window-size=1400,800", "--hide-scrollbars")
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
