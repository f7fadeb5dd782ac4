package containers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TB is the part of testing.TB the container helpers use; testing.TB is
// one, and so is a benchmark harness that is not a test (testing/bench
// starts MinIO and local-kms through it).
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	Setenv(key, value string)
}

// startTimeout bounds starting one container (its image exists by then).
const startTimeout = 2 * time.Minute

// Require sets the environment the containers need when the caller has not
// (the Makefile exports the first two): no Ryuk reaper, and 127.0.0.1 as the
// Docker host, so that tests never contact the default gateway's address.
// It also fences the AWS SDK in for the test (and the processes it
// starts): an AWS client left without an endpoint override goes to a closed
// loopback port instead of AWS, the instance metadata service is never
// asked for credentials, and no shared AWS files are read.
func Require(tb TB) {
	tb.Helper()
	for k, v := range map[string]string{"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1"} {
		if os.Getenv(k) == "" {
			tb.Setenv(k, v)
		}
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            "http://127.0.0.1:9",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		tb.Setenv(k, v)
	}
	if h := os.Getenv("TESTCONTAINERS_HOST_OVERRIDE"); h != "127.0.0.1" && h != "localhost" {
		tb.Fatalf("TESTCONTAINERS_HOST_OVERRIDE=%s: tests may only reach containers on 127.0.0.1", h)
	}
}

// loopbackPorts binds every published port to 127.0.0.1 (testcontainers
// publishes on 0.0.0.0 otherwise).
func loopbackPorts(ports []string, more func(*container.HostConfig)) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = mobynet.PortMap{}
		}
		for _, p := range ports {
			hc.PortBindings[mobynet.MustParsePort(p)] = []mobynet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}
		}
		if more != nil {
			more(hc)
		}
	}
}

// start builds (if needed) and starts a container of tool, removed when
// the test ends. The test fails when Docker is not there.
func start(tb TB, tool Tool, req testcontainers.ContainerRequest, opts ...testcontainers.CustomizeRequestOption) testcontainers.Container {
	tb.Helper()
	Require(tb)
	ctx := context.Background()
	img, err := Image(ctx, tb, tool)
	if err != nil {
		tb.Fatalf("image %s: %v", tool.Name, err)
	}
	req.Image = img
	if req.ExposedPorts == nil {
		req.ExposedPorts = tool.Expose
	}
	req.HostConfigModifier = loopbackPorts(req.ExposedPorts, req.HostConfigModifier)
	gr := testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true}
	for _, o := range opts {
		if err := o.Customize(&gr); err != nil {
			tb.Fatalf("container %s: %v", tool.Name, err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c, err := testcontainers.GenericContainer(sctx, gr)
	tb.Cleanup(func() {
		if err := testcontainers.TerminateContainer(c); err != nil {
			tb.Logf("remove container %s: %v", tool.Name, err)
		}
	})
	if err != nil {
		tb.Fatalf("start %s: %v", tool.Name, err)
	}
	return c
}

// endpoint returns http://127.0.0.1:<mapped port> of a container port.
func endpoint(tb TB, c testcontainers.Container, port, scheme string) string {
	tb.Helper()
	p, err := c.MappedPort(context.Background(), port)
	if err != nil {
		tb.Fatalf("mapped port %s: %v", port, err)
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, p.Num())
}

// MinIO is a MinIO server (S3) with a built-in KMS key for SSE-KMS.
type MinIO struct {
	Container testcontainers.Container
	// URL is the S3 endpoint, http://127.0.0.1:<port>.
	URL string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// KMSKey is the name of the built-in KMS key (MINIO_KMS_SECRET_KEY);
	// SSE-KMS requests name it as their key id.
	KMSKey string
	// Region is the server's Region.
	Region string
}

// StartMinIO starts MinIO with its data directory and /tmp on tmpfs, root
// credentials and one built-in KMS key named "gdexport-key". opts customise
// the container, for example tcnetwork.WithNetwork to give it an alias on
// a test's network, or KeepData.
func StartMinIO(tb TB, opts ...testcontainers.CustomizeRequestOption) *MinIO {
	tb.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	m := &MinIO{AccessKey: "gdexport-test", SecretKey: "gdexport-test-secret", KMSKey: "gdexport-key", Region: "us-east-1"}
	m.Container = start(tb, MinIOTool, testcontainers.ContainerRequest{
		Cmd: []string{"server", "/data", "--address", ":9000", "--certs-dir", "/tmp/certs", "--quiet"},
		Env: map[string]string{
			"MINIO_ROOT_USER":            m.AccessKey,
			"MINIO_ROOT_PASSWORD":        m.SecretKey,
			"MINIO_KMS_SECRET_KEY":       m.KMSKey + ":" + base64.StdEncoding.EncodeToString(key),
			"MINIO_REGION":               m.Region,
			"MINIO_BROWSER":              "off",
			"MINIO_UPDATE":               "off",
			"MINIO_CI_CD":                "1",
			"MINIO_API_REQUESTS_MAX":     "64",
			"MINIO_PROMETHEUS_AUTH_TYPE": "public",
		},
		Tmpfs:      map[string]string{"/data": "rw", "/tmp": "rw"},
		WaitingFor: wait.ForHTTP("/minio/health/live").WithPort("9000/tcp").WithStartupTimeout(startTimeout),
	}, opts...)
	m.URL = endpoint(tb, m.Container, "9000/tcp", "http")
	return m
}

// KeepData keeps MinIO's objects in the container's own file system instead
// of a tmpfs, so that they survive Stop and Start (an outage).
var KeepData testcontainers.CustomizeRequestOption = func(req *testcontainers.GenericContainerRequest) error {
	delete(req.Tmpfs, "/data")
	return nil
}

// Stop stops MinIO (an outage): clients get connection errors until Start.
func (m *MinIO) Stop(tb TB) {
	tb.Helper()
	timeout := 5 * time.Second
	if err := m.Container.Stop(context.Background(), &timeout); err != nil {
		tb.Fatalf("stop MinIO: %v", err)
	}
}

// Start starts a stopped MinIO again and waits until it is live. Its
// published port changes; URL is updated.
func (m *MinIO) Start(tb TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := m.Container.Start(ctx); err != nil {
		tb.Fatalf("start MinIO: %v", err)
	}
	m.URL = endpoint(tb, m.Container, "9000/tcp", "http")
}

// LocalKMS is a local-kms server (the KMS API).
type LocalKMS struct {
	Container testcontainers.Container
	// URL is the KMS endpoint, http://127.0.0.1:<port>.
	URL string
	// Account and Region are what key ARNs name.
	Account, Region string
}

// StartLocalKMS starts local-kms (no seeded keys: tests create theirs with
// CreateKey) with its data on tmpfs.
func StartLocalKMS(tb TB) *LocalKMS {
	tb.Helper()
	k := &LocalKMS{Account: "111122223333", Region: "us-east-1"}
	k.Container = start(tb, LocalKMSTool, testcontainers.ContainerRequest{
		Env: map[string]string{
			"PORT":           "8080",
			"KMS_ACCOUNT_ID": k.Account,
			"KMS_REGION":     k.Region,
			"KMS_DATA_PATH":  "/data",
		},
		Tmpfs: map[string]string{"/data": "rw", "/tmp": "rw"},
		// Any HTTP answer means it listens (GET / is not a KMS call).
		WaitingFor: wait.ForHTTP("/").WithPort("8080/tcp").WithStatusCodeMatcher(func(int) bool { return true }).WithStartupTimeout(startTimeout),
	})
	k.URL = endpoint(tb, k.Container, "8080/tcp", "http")
	return k
}

// NATS is one nats-server with JetStream.
type NATS struct {
	Container testcontainers.Container
	// Name is the server name (and its alias on a cluster's network).
	Name string
	// URL is nats://127.0.0.1:<port>.
	URL string
}

// StartNATS starts one nats-server with JetStream, its store on tmpfs.
func StartNATS(tb testing.TB) *NATS {
	tb.Helper()
	const name = "nats-0"
	c := start(tb, NATSTool, testcontainers.ContainerRequest{
		Cmd:        []string{"-js", "-n", name, "-p", "4222", "-m", "8222", "-sd", "/data"},
		Tmpfs:      map[string]string{"/data": "rw"},
		WaitingFor: wait.ForHTTP("/healthz?js-enabled-only=true").WithPort("8222/tcp").WithStartupTimeout(startTimeout),
	})
	return &NATS{Container: c, Name: name, URL: endpoint(tb, c, "4222/tcp", "nats")}
}

// ClusterSize is the number of nodes of StartNATSCluster's cluster, the
// one deployments/nats/nats-cluster.conf describes.
const ClusterSize = 3

// NewNetwork creates a Docker network for the test, removed when it ends.
func NewNetwork(tb testing.TB) *testcontainers.DockerNetwork {
	tb.Helper()
	Require(tb)
	nw, err := tcnetwork.New(context.Background())
	testcontainers.CleanupNetwork(tb, nw)
	if err != nil {
		tb.Fatalf("create network: %v", err)
	}
	return nw
}

// StartNATSCluster starts the 3-node JetStream cluster of
// deployments/nats/nats-cluster.conf (cluster name gdexport) on nw, or on
// a network created for it when nw is nil: the nodes route to each other
// by their aliases nats-0, nats-1 and nats-2 on that network, each with
// its store on tmpfs, and each publishes its client port on 127.0.0.1.
// It returns once every node answers /healthz (the cluster has a meta
// leader); URLs gives the client URLs and ClusterURL the in-network ones.
func StartNATSCluster(tb testing.TB, nw *testcontainers.DockerNetwork) []*NATS {
	tb.Helper()
	Require(tb)
	if nw == nil {
		nw = NewNetwork(tb)
	}
	root, err := RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, "deployments", "nats", "nats-cluster.conf"))
	if err != nil {
		tb.Fatalf("NATS cluster configuration: %v", err)
	}
	nodes := make([]*NATS, ClusterSize)
	for i := range ClusterSize {
		name := fmt.Sprintf("nats-%d", i)
		c := start(tb, NATSTool, testcontainers.ContainerRequest{
			Cmd:   []string{"-c", "/etc/nats/nats-cluster.conf"},
			Env:   map[string]string{"NATS_SERVER_NAME": name},
			Files: []testcontainers.ContainerFile{{Reader: bytes.NewReader(conf), ContainerFilePath: "/etc/nats/nats-cluster.conf", FileMode: 0o644}},
			Tmpfs: map[string]string{"/data": "rw"},
			// JetStream needs its peers: wait for the listener only here.
			WaitingFor: wait.ForLog("Listening for client connections").WithStartupTimeout(startTimeout),
		}, tcnetwork.WithNetwork([]string{name}, nw))
		nodes[i] = &NATS{Container: c, Name: name, URL: endpoint(tb, c, "4222/tcp", "nats")}
		tb.Cleanup(func() { // before the removal, registered earlier
			if tb.Failed() {
				tb.Logf("--- %s log ---\n%s", name, Logs(tb, c))
			}
		})
	}
	// JetStream is ready once the cluster has a meta leader.
	for _, node := range nodes {
		if err := wait.ForHTTP("/healthz").WithPort("8222/tcp").WithStartupTimeout(startTimeout).WaitUntilReady(context.Background(), node.Container); err != nil {
			tb.Fatalf("cluster node %s: %v", node.Name, err)
		}
	}
	return nodes
}

// ClusterURL returns the nodes' client URLs on their Docker network
// (nats://nats-0:4222,…), comma-separated, for containers on it.
func ClusterURL(nodes []*NATS) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = "nats://" + n.Name + ":4222"
	}
	return strings.Join(urls, ",")
}

// URLs returns the client URLs of nodes, comma-separated as nats.Connect
// takes them.
func URLs(nodes []*NATS) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}
