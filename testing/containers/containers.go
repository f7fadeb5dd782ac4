package containers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// startTimeout bounds starting one container (its image exists by then).
const startTimeout = 2 * time.Minute

// Require sets the environment the containers need when the caller has not
// (the Makefile exports the first two): no Ryuk reaper, and 127.0.0.1 as the
// Docker host, so that tests never contact the default gateway's address.
// It also fences the AWS SDK in for the test (and the processes it
// starts): an AWS client left without an endpoint override goes to a closed
// loopback port instead of AWS, the instance metadata service is never
// asked for credentials, and no shared AWS files are read.
func Require(tb testing.TB) {
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
func start(tb testing.TB, tool Tool, req testcontainers.ContainerRequest, opts ...testcontainers.CustomizeRequestOption) testcontainers.Container {
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
	testcontainers.CleanupContainer(tb, c)
	if err != nil {
		tb.Fatalf("start %s: %v", tool.Name, err)
	}
	return c
}

// endpoint returns http://127.0.0.1:<mapped port> of a container port.
func endpoint(tb testing.TB, c testcontainers.Container, port, scheme string) string {
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
// credentials and one built-in KMS key named "gdexport-key".
func StartMinIO(tb testing.TB) *MinIO {
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
	})
	m.URL = endpoint(tb, m.Container, "9000/tcp", "http")
	return m
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
func StartLocalKMS(tb testing.TB) *LocalKMS {
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
	return startNATS(tb, "nats-0", nil)
}

func startNATS(tb testing.TB, name string, extra []string, opts ...testcontainers.CustomizeRequestOption) *NATS {
	tb.Helper()
	cmd := append([]string{"-js", "-n", name, "-p", "4222", "-m", "8222", "-sd", "/data"}, extra...)
	c := start(tb, NATSTool, testcontainers.ContainerRequest{
		Cmd:        cmd,
		Tmpfs:      map[string]string{"/data": "rw"},
		WaitingFor: wait.ForHTTP("/healthz?js-enabled-only=true").WithPort("8222/tcp").WithStartupTimeout(startTimeout),
	}, opts...)
	return &NATS{Container: c, Name: name, URL: endpoint(tb, c, "4222/tcp", "nats")}
}

// StartNATSCluster starts an n-node JetStream cluster (cluster name
// gdexport) on a Docker network created for it: the nodes route to each
// other by their aliases nats-0…nats-<n-1> on that network, and each
// publishes its client port on 127.0.0.1. URLs returns the client URLs.
func StartNATSCluster(tb testing.TB, n int) []*NATS {
	tb.Helper()
	Require(tb)
	nw, err := tcnetwork.New(context.Background())
	testcontainers.CleanupNetwork(tb, nw)
	if err != nil {
		tb.Fatalf("create network: %v", err)
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats://nats-%d:6222", i)
	}
	nodes := make([]*NATS, n)
	for i := range n {
		name := fmt.Sprintf("nats-%d", i)
		nodes[i] = startNATSNoWait(tb, name, []string{"--cluster_name", "gdexport", "--cluster", "nats://0.0.0.0:6222", "--routes", strings.Join(routes, ",")},
			tcnetwork.WithNetwork([]string{name}, nw))
	}
	// JetStream is ready once the cluster has a meta leader.
	for _, node := range nodes {
		if err := wait.ForHTTP("/healthz").WithPort("8222/tcp").WithStartupTimeout(startTimeout).WaitUntilReady(context.Background(), node.Container); err != nil {
			tb.Fatalf("cluster node %s: %v", node.Name, err)
		}
	}
	return nodes
}

// startNATSNoWait starts a cluster node without waiting for JetStream,
// which needs its peers.
func startNATSNoWait(tb testing.TB, name string, extra []string, opts ...testcontainers.CustomizeRequestOption) *NATS {
	tb.Helper()
	cmd := append([]string{"-js", "-n", name, "-p", "4222", "-m", "8222", "-sd", "/data"}, extra...)
	c := start(tb, NATSTool, testcontainers.ContainerRequest{
		Cmd:        cmd,
		Tmpfs:      map[string]string{"/data": "rw"},
		WaitingFor: wait.ForLog("Listening for client connections").WithStartupTimeout(startTimeout),
	}, opts...)
	return &NATS{Container: c, Name: name, URL: endpoint(tb, c, "4222/tcp", "nats")}
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
