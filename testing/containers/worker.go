package containers

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// WorkerConfigPath is where StartWorker puts the worker's configuration,
// the path the image's default command reads.
const WorkerConfigPath = "/etc/gdexport/gdexport.yaml"

// Worker is one `gdexport run` in a container of gdexport's image.
type Worker struct {
	Container testcontainers.Container
	// Name is the worker's alias on the network and its host name, so its
	// window-flush claims name it ("<Name>/1": gdexport is process 1).
	Name string
	// HTTP is http://127.0.0.1:<port> of its metrics and health listener
	// (the configuration must set http.listen to 0.0.0.0:8480).
	HTTP    string
	network *testcontainers.DockerNetwork
}

// StartWorker starts a worker named name on nw with config as its
// configuration file and env as its environment, and waits until it is
// ready (/readyz: connected, streams and buckets in place). Its log goes to
// the test log when the test fails; the container is removed when the test
// ends.
func StartWorker(tb testing.TB, nw *testcontainers.DockerNetwork, name, config string, env map[string]string) *Worker {
	tb.Helper()
	Require(tb)
	ctx := context.Background()
	img, err := GdexportImage(ctx, tb)
	if err != nil {
		tb.Fatalf("gdexport image: %v", err)
	}
	ports := []string{"8480/tcp"}
	req := testcontainers.GenericContainerRequest{Started: true, ContainerRequest: testcontainers.ContainerRequest{
		Image:        img,
		ExposedPorts: ports,
		Env:          env,
		Files:        []testcontainers.ContainerFile{{Reader: strings.NewReader(config), ContainerFilePath: WorkerConfigPath, FileMode: 0o644}},
		ConfigModifier: func(c *container.Config) {
			c.Hostname = name
		},
		HostConfigModifier: loopbackPorts(ports, nil),
		WaitingFor:         wait.ForHTTP("/readyz").WithPort("8480/tcp").WithStartupTimeout(startTimeout),
	}}
	if err := tcnetwork.WithNetwork([]string{name}, nw).Customize(&req); err != nil {
		tb.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c, err := testcontainers.GenericContainer(sctx, req)
	testcontainers.CleanupContainer(tb, c)
	// Registered after the removal, so it runs before it. A worker still
	// running is asked for its goroutines' stacks first (SIGQUIT), so that
	// a stuck worker shows where it is stuck.
	tb.Cleanup(func() {
		if tb.Failed() && c != nil {
			dump(tb, c)
			tb.Logf("--- worker %s log ---\n%s", name, Logs(tb, c))
		}
	})
	if err != nil {
		tb.Fatalf("start worker %s: %v", name, err)
	}
	return &Worker{Container: c, Name: name, HTTP: endpoint(tb, c, "8480/tcp", "http"), network: nw}
}

// Logs returns what c printed so far.
func Logs(tb testing.TB, c testcontainers.Container) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(logs: %v)", err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// dump makes a running Go program in c print every goroutine's stack and
// exit (SIGQUIT), waiting up to 10s for it to end.
func dump(tb testing.TB, c testcontainers.Container) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st, err := c.State(ctx); err != nil || !st.Running {
		return
	}
	if _, err := dockerClient(tb).ContainerKill(ctx, c.GetContainerID(), client.ContainerKillOptions{Signal: "QUIT"}); err != nil {
		return
	}
	for ctx.Err() == nil {
		if st, err := c.State(ctx); err != nil || !st.Running {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Log returns what the worker printed so far.
func (w *Worker) Log(tb testing.TB) string { return Logs(tb, w.Container) }

func dockerClient(tb testing.TB) *testcontainers.DockerClient {
	tb.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		tb.Fatalf("docker client: %v", err)
	}
	tb.Cleanup(func() { cli.Close() })
	return cli
}

// Kill sends SIGKILL to c's main process: nothing in it can finish its
// work. The container stays (stopped) until the test ends.
func Kill(tb testing.TB, c testcontainers.Container) {
	tb.Helper()
	if _, err := dockerClient(tb).ContainerKill(context.Background(), c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		tb.Fatalf("kill container: %v", err)
	}
}

// Kill sends SIGKILL to the worker.
func (w *Worker) Kill(tb testing.TB) {
	tb.Helper()
	Kill(tb, w.Container)
}

// Disconnect cuts the worker off its network (a partition): every
// connection it has to NATS and S3 stops answering, and it resolves no
// name there until Reconnect.
func (w *Worker) Disconnect(tb testing.TB) {
	tb.Helper()
	if _, err := dockerClient(tb).NetworkDisconnect(context.Background(), w.network.ID,
		client.NetworkDisconnectOptions{Container: w.Container.GetContainerID(), Force: true}); err != nil {
		tb.Fatalf("disconnect worker %s: %v", w.Name, err)
	}
}

// Reconnect joins the worker to its network again, under its alias.
// Docker publishes its HTTP port anew, on another host port: HTTP is
// updated.
func (w *Worker) Reconnect(tb testing.TB) {
	tb.Helper()
	if _, err := dockerClient(tb).NetworkConnect(context.Background(), w.network.ID, client.NetworkConnectOptions{
		Container: w.Container.GetContainerID(), EndpointConfig: &mobynet.EndpointSettings{Aliases: []string{w.Name}},
	}); err != nil {
		tb.Fatalf("reconnect worker %s: %v", w.Name, err)
	}
	w.HTTP = endpoint(tb, w.Container, "8480/tcp", "http")
}

// Stop sends SIGTERM and waits up to timeout for the worker to exit
// (SIGKILL after it).
func (w *Worker) Stop(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	if err := w.Container.Stop(context.Background(), &timeout); err != nil {
		tb.Fatalf("stop worker %s: %v", w.Name, err)
	}
}

// Ready reports whether the worker's /readyz answers 200: connected to
// NATS, its streams and buckets reachable.
func (w *Worker) Ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.HTTP+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Metric returns the sum of the samples of a Prometheus counter or gauge
// of the worker's /metrics whose labels contain every one of labels
// (`lane="new"`), or an error when the worker does not answer.
func (w *Worker) Metric(name string, labels ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.HTTP+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s/metrics: %s", w.HTTP, resp.Status)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // another metric whose name starts with this one
		}
		matched := true
		for _, l := range labels {
			matched = matched && strings.Contains(rest, l)
		}
		if !matched {
			continue
		}
		v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", name, line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}
