package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Binaries are the programs a run starts.
type Binaries struct {
	Gdexport, NATSServer string
}

// Build compiles gdexport and nats-server (the version in go.mod) into dir.
func Build(dir string) (Binaries, error) {
	b := Binaries{Gdexport: filepath.Join(dir, "gdexport"), NATSServer: filepath.Join(dir, "nats-server")}
	for bin, pkg := range map[string]string{b.Gdexport: "github.com/gdexport/gdexport/cmd/gdexport", b.NATSServer: "github.com/nats-io/nats-server/v2"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return b, nil
}

// Proc is a started program.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

func start(name, bin string, args []string, logTo string) (*Proc, error) {
	p := &Proc{Name: name, out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	logf, err := os.Create(logTo)
	if err != nil {
		return nil, err
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and waits up to 30 s, then kills.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// PeakRSS is the process's peak resident set (VmHWM), in bytes.
func (p *Proc) PeakRSS() int64 { return statusField(p.Pid(), "VmHWM:") }

// RSS is the process's resident set now, in bytes.
func (p *Proc) RSS() int64 { return statusField(p.Pid(), "VmRSS:") }

func statusField(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), field) {
			fs := strings.Fields(sc.Text())
			kb, _ := strconv.ParseInt(fs[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// FreePort returns a free loopback port.
func FreePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Durability modes (DESIGN.md §2): strict syncs every write, fast keeps
// nats-server's default two-minute sync.
const (
	Strict = "strict"
	Fast   = "fast"
)

// NATS is a nats-server process.
type NATS struct {
	*Proc
	URL string
	// ProfAddr serves the server's Go profiler (prof_port), on loopback.
	ProfAddr string
}

// StartNATS starts nats-server with JetStream on a free loopback port and a
// store under dir.
func StartNATS(bins Binaries, dir, durability string) (*NATS, error) {
	port, prof := FreePort(), FreePort()
	sync := ""
	if durability == Strict {
		sync = "\n  sync_interval: always"
	}
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\nmax_payload: 1MB\nprof_port: %d\njetstream {\n  store_dir: %q%s\n}\n", port, prof, filepath.Join(dir, "jetstream"), sync)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start("nats-server", bins.NATSServer, []string{"-c", cf}, filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	n := &NATS{Proc: p, URL: fmt.Sprintf("nats://127.0.0.1:%d", port), ProfAddr: fmt.Sprintf("127.0.0.1:%d", prof)}
	if err := waitPort(port, 15*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	return n, nil
}

func waitPort(port int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("port %d not open after %s", port, d)
}

// Worker is a `gdexport run` process.
type Worker struct {
	*Proc
	HTTP string
}

// StartWorker starts `gdexport run` with the configuration yaml (its
// http.listen is set here) and waits until it is ready.
func StartWorker(bins Binaries, dir, name, yaml string) (*Worker, error) {
	port := FreePort()
	cfg := fmt.Sprintf("http: {listen: \"127.0.0.1:%d\", pprof: true}\n%s", port, yaml)
	cf := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	p, err := start(name, bins.Gdexport, []string{"run", "--config", cf, "--log-level", "warn"}, filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	w := &Worker{Proc: p, HTTP: fmt.Sprintf("127.0.0.1:%d", port)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + w.HTTP + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return w, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before it was ready (log %s)", name, filepath.Join(dir, name+".log"))
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s not ready after 60s", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Metrics scrapes the worker's /metrics.
func (w *Worker) Metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.HTTP+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Sum adds up every sample of a counter or gauge family (0 when absent).
func Sum(fams map[string]*dto.MetricFamily, name string) float64 {
	return sumIf(fams, name, func(*dto.Metric) bool { return true })
}

// sumWhere adds up the samples of a family whose label has value.
func sumWhere(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	return sumIf(fams, name, func(m *dto.Metric) bool {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return true
			}
		}
		return false
	})
}

func sumIf(fams map[string]*dto.MetricFamily, name string, keep func(*dto.Metric) bool) float64 {
	total := 0.0
	for _, m := range fams[name].GetMetric() {
		if keep(m) {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return total
}
