//go:build integration

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/stages/compress"
	"github.com/gdexport/gdexport/stages/decode"
	"github.com/gdexport/gdexport/testing/containers"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/generator"
)

// Bounds of every test: findings are published at a bounded rate, so that
// faults land mid-flight, and every wait is a poll with a deadline.
const (
	// newFindingDelay of the workers: short, so many batches are sealed
	// while findings arrive.
	newFindingDelay = time.Second
	// ackWait is the workers' ackWaitOverride: how soon the work of a dead
	// or partitioned worker goes to another (the flush lease is twice it).
	ackWait = 5 * time.Second
	// exportTimeout bounds the wait for everything to be exported after
	// the last fault.
	exportTimeout = 90 * time.Second
)

// Accounts and Regions of the generated findings: each (account, Region)
// is its own instance of the default destination, so four destinations.
var (
	testAccounts = []string{"111122223333", "444455556666"}
	testRegions  = []string{"us-east-1", "eu-west-1"}
)

// options shape a test's cluster and workers.
type options struct {
	// keepData keeps MinIO's objects across a stop and start.
	keepData bool
	// windowOverride is the workers' update window (0: SIX_HOURS windows,
	// which never close during a test).
	windowOverride time.Duration
	// maxBatchFindings bounds an object (default 200).
	maxBatchFindings int
}

// env is one test's world: a Docker network with a 3-node NATS cluster, a
// MinIO with a versioned bucket, and the test's workers.
type env struct {
	t       *testing.T
	opts    options
	nw      *testcontainers.DockerNetwork
	nodes   []*containers.NATS
	minio   *containers.MinIO
	bucket  string
	nc      *nats.Conn
	js      jetstream.JetStream
	objects *bucketReader
	workers []*containers.Worker
}

func setup(t *testing.T, o options) *env {
	t.Helper()
	containers.Require(t) // before any AWS client: fences the SDK in on loopback
	if o.maxBatchFindings == 0 {
		o.maxBatchFindings = 200
	}
	e := &env{t: t, opts: o, bucket: "gdexport-findings"}
	e.nw = containers.NewNetwork(t)
	e.nodes = containers.StartNATSCluster(t, e.nw)
	minioOpts := []testcontainers.CustomizeRequestOption{tcnetwork.WithNetwork([]string{"minio"}, e.nw)}
	if o.keepData {
		minioOpts = append(minioOpts, containers.KeepData)
	}
	e.minio = containers.StartMinIO(t, minioOpts...)
	e.useBucket(e.bucket)
	var err error
	e.nc, err = nats.Connect(containers.URLs(e.nodes), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to the cluster: %v", err)
	}
	t.Cleanup(e.nc.Close)
	e.js, err = jetstream.New(e.nc, jetstream.WithPublishAsyncTimeout(10*time.Second), jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e2e.LogConsumers(t, e.js, natsx.StreamFindings, natsx.StreamBatches)
		}
	})
	return e
}

// useBucket creates a versioned bucket and makes it the one the workers
// started from now on export to: a rewrite of an object is a second
// version, so the test sees (and compares) every write, not only the last.
func (e *env) useBucket(bucket string) {
	e.t.Helper()
	e.bucket = bucket
	e.objects = &bucketReader{env: e, cache: map[string][]string{}}
	ctx := context.Background()
	s3c := e.objects.client()
	if _, err := s3c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		e.t.Fatalf("create bucket %s: %v", bucket, err)
	}
	if _, err := s3c.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		e.t.Fatalf("enable versioning on %s: %v", bucket, err)
	}
}

// config is the workers' configuration: the cluster by its aliases, R3,
// the HTTP listener reachable through the published port, and the default
// destination an SSE-KMS bucket on MinIO (its built-in key), so every
// account exports there under its own AWSLogs/<account>/ folder.
func (e *env) config() string {
	window := ""
	if e.opts.windowOverride > 0 {
		window = fmt.Sprintf("windowOverride: %s\n", e.opts.windowOverride)
	}
	return fmt.Sprintf(`nats:
  url: %q
  replicas: 3
http: {listen: "0.0.0.0:8480"}
newFindingDelay: %s
maxBatchFindings: %d
ackWaitOverride: %s
failureThreshold: %s
retryInitial: 1s
retryMax: 4s
%sdefaultDestination:
  destinationType: S3
  destinationProperties:
    destinationArn: "arn:aws:s3:::%s"
    kmsKeyArn: %q
  encryption: sse-kms
  endpoint: http://minio:9000
`, containers.ClusterURL(e.nodes), newFindingDelay, e.opts.maxBatchFindings, ackWait, failureThreshold, window, e.bucket, e.minio.KMSKey)
}

// startWorker starts one more worker, worker-<n>.
func (e *env) startWorker() *containers.Worker {
	e.t.Helper()
	name := fmt.Sprintf("worker-%d", len(e.workers)+1)
	w := containers.StartWorker(e.t, e.nw, name, e.config(), map[string]string{
		"AWS_ACCESS_KEY_ID":     e.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY": e.minio.SecretKey,
		"AWS_REGION":            e.minio.Region,
		// Nothing but MinIO: any client left without an endpoint goes to a
		// closed port, and no instance metadata is asked for credentials.
		"AWS_ENDPOINT_URL":          "http://127.0.0.1:9",
		"AWS_EC2_METADATA_DISABLED": "true",
	})
	e.workers = append(e.workers, w)
	return w
}

func (e *env) startWorkers(n int) {
	e.t.Helper()
	for range n {
		e.startWorker()
	}
}

// version names a finding version.
type version struct {
	id               string
	updatedAt, count int64
}

func (v version) newer(o version) bool {
	if v.updatedAt != o.updatedAt {
		return v.updatedAt > o.updatedAt
	}
	return v.count > o.count
}

// plan is what a test publishes and what it expects back.
type plan struct {
	msgs []pubMsg
	// latest is each id's latest version; active says whether it is
	// not archived (only those must be exported).
	latest map[string]version
	active map[string]bool
	// published is every active version's line (the finding with
	// insignificant whitespace removed, as exported).
	published map[string]version
}

type pubMsg struct {
	subject, msgID string
	data           []byte
}

// newPlan generates findings over the test's accounts and Regions.
func newPlan(t *testing.T, cfg generator.Config) *plan {
	t.Helper()
	cfg.Accounts, cfg.Regions = testAccounts, testRegions
	p := &plan{latest: map[string]version{}, active: map[string]bool{}, published: map[string]version{}}
	err := generator.Generate(cfg, func(raw []byte) error {
		f, err := decode.Decode(raw)
		if err != nil {
			return err
		}
		v := version{f.ID, f.UpdatedAt, f.Count}
		if cur, ok := p.latest[f.ID]; !ok || v.newer(cur) {
			p.latest[f.ID] = v
			p.active[f.ID] = !f.Archived
		}
		if !f.Archived {
			p.published[string(f.Raw)] = v
		}
		p.msgs = append(p.msgs, pubMsg{subject: pipeline.IngestSubject(f.Region, f.AccountID), msgID: f.VersionKey(), data: bytes.Clone(raw)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// expected is the number of ids whose latest version must be exported.
func (p *plan) expected() int {
	n := 0
	for _, a := range p.active {
		if a {
			n++
		}
	}
	return n
}

// publish publishes msgs in chunks with a pause after each, in the
// background. A publish that fails (a NATS node going away) is retried
// until it is stored: Nats-Msg-Id makes a retry of a stored version a
// duplicate the stream drops. The channel gets the outcome.
func (e *env) publish(msgs []pubMsg, chunk int, pause time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := 0; i < len(msgs); i += chunk {
			if err := publishAll(e.js, msgs[i:min(i+chunk, len(msgs))]); err != nil {
				done <- err
				return
			}
			time.Sleep(pause) // the publishing rate, not a wait for a result
		}
		done <- nil
	}()
	return done
}

func publishAll(js jetstream.JetStream, msgs []pubMsg) error {
	deadline := time.Now().Add(2 * time.Minute)
	todo := msgs
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d findings not stored after %d attempts", len(todo), attempt)
			}
			time.Sleep(500 * time.Millisecond)
		}
		var failed []pubMsg
		futures := make([]jetstream.PubAckFuture, len(todo))
		for i, m := range todo {
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{jetstream.MsgIDHeader: {m.msgID}}})
			if err != nil {
				failed = append(failed, m)
				continue
			}
			futures[i] = f
		}
		for i, f := range futures {
			if f == nil {
				continue
			}
			select {
			case <-f.Ok():
			case <-f.Err():
				failed = append(failed, todo[i])
			}
		}
		todo = failed
	}
	return nil
}

// bucketReader reads every version of every object of the bucket,
// gunzipped into lines, fetching each version once.
type bucketReader struct {
	env   *env
	mu    sync.Mutex
	cache map[string][]string // key + "\x00" + version id → lines
}

// client is an S3 client of MinIO's current published port (it changes
// when MinIO is restarted).
func (r *bucketReader) client() *awss3.Client {
	m := r.env.minio
	return awss3.New(awss3.Options{Region: m.Region, BaseEndpoint: aws.String(m.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")})
}

// read returns, per object key, the lines of each of its versions, oldest
// first.
func (r *bucketReader) read() (map[string][][]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := r.client()
	bucket := r.env.bucket
	out := map[string][][]string{}
	type ver struct {
		id       string
		modified time.Time
	}
	versions := map[string][]ver{}
	pages := awss3.NewListObjectVersionsPaginator(c, &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("AWSLogs/")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list object versions: %w", err)
		}
		for _, v := range page.Versions {
			versions[aws.ToString(v.Key)] = append(versions[aws.ToString(v.Key)], ver{aws.ToString(v.VersionId), aws.ToTime(v.LastModified)})
		}
	}
	for key, vs := range versions {
		sort.Slice(vs, func(i, j int) bool { return vs[i].modified.Before(vs[j].modified) })
		for _, v := range vs {
			ck := key + "\x00" + v.id
			lines, ok := r.cache[ck]
			if !ok {
				obj, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(v.id)})
				if err != nil {
					return nil, fmt.Errorf("get %s version %s: %w", key, v.id, err)
				}
				plain, err := compress.Gunzip(obj.Body)
				obj.Body.Close()
				if err != nil {
					return nil, fmt.Errorf("gunzip %s version %s: %w", key, v.id, err)
				}
				lines = strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n")
				r.cache[ck] = lines
			}
			out[key] = append(out[key], lines)
		}
	}
	return out, nil
}

// exported counts the distinct exported lines (each object's last version).
func (e *env) exported() int {
	e.t.Helper()
	objs, err := e.objects.read()
	if err != nil {
		e.t.Fatalf("read the bucket: %v", err)
	}
	n := 0
	for _, vs := range objs {
		n += len(vs[len(vs)-1])
	}
	return n
}

// allLatest reports whether the latest version of every active id is
// exported.
func (e *env) allLatest(p *plan) bool {
	e.t.Helper()
	objs, err := e.objects.read()
	if err != nil {
		e.t.Fatalf("read the bucket: %v", err)
	}
	got := map[version]bool{}
	for _, vs := range objs {
		for _, l := range vs[len(vs)-1] {
			if v, ok := p.published[l]; ok {
				got[v] = true
			}
		}
	}
	for id, v := range p.latest {
		if p.active[id] && !got[v] {
			return false
		}
	}
	return true
}

// waitSettled waits until every finding is exported (the latest version of
// every active id), every sealed batch has been written by every export
// consumer, and no update window is pending, so that late rewrites are
// seen before the check. When the time runs out it fails the test and
// returns, so that the check still counts and reports what was lost.
func (e *env) waitSettled(p *plan, timeout time.Duration) {
	e.t.Helper()
	if !e2e.Poll(timeout, func() bool { return e.allLatest(p) }) {
		e.t.Errorf("timed out after %s waiting for every accepted finding exported", timeout)
		return
	}
	ctx := context.Background()
	idle := e2e.Poll(time.Minute, func() bool {
		for _, c := range []struct{ stream, consumer string }{
			{natsx.StreamFindings, natsx.ConsumerIngest}, {natsx.StreamBatches, natsx.ConsumerObjects}, {natsx.StreamBatches, natsx.ConsumerEvents},
		} {
			cons, err := e.js.Consumer(ctx, c.stream, c.consumer)
			if err != nil {
				return false
			}
			info, err := cons.Info(ctx)
			if err != nil || info.NumPending+uint64(info.NumAckPending) > 0 {
				return false
			}
		}
		flushes, err := e.js.KeyValue(ctx, natsx.BucketFlushes)
		if err != nil {
			return false
		}
		keys, err := flushes.ListKeys(ctx)
		if err != nil {
			return false
		}
		for range keys.Keys() {
			return false
		}
		return true
	})
	if !idle {
		e.t.Errorf("timed out after 1m waiting for the ingest, objects and events consumers to be idle and no update window pending")
	}
}

// result is a test's line of the suite's table.
type result struct {
	in, exported, lost int
	// The duplicates: rewrites of an object (identical, else an error),
	// repeated event ids, and lines in two different objects (an error).
	rewrites, repeatedEvents, twice int
	note                            string
}

// check verifies the delivery semantics on what the bucket and the EVENTS
// stream hold and returns the counts: no line in two different objects;
// every version of an object the same lines (a rewrite is identical);
// nothing exported that was not published active; the latest version of
// every active id exported exactly once; one event per exported line,
// repeated only with the same id.
func (e *env) check(p *plan) result {
	t := e.t
	t.Helper()
	objs, err := e.objects.read()
	if err != nil {
		t.Fatalf("read the bucket: %v", err)
	}
	r := result{in: len(p.msgs)}
	where := map[string]string{}
	count := map[version]int{}
	for key, vs := range objs {
		last := vs[len(vs)-1]
		for i := 0; i < len(vs)-1; i++ {
			r.rewrites++
			if strings.Join(vs[i], "\n") != strings.Join(last, "\n") {
				t.Errorf("object %s was rewritten with different lines (%d and %d lines)", key, len(vs[i]), len(last))
			}
		}
		for _, l := range last {
			if prev, dup := where[l]; dup {
				if r.twice++; r.twice <= 5 {
					t.Errorf("line in two objects %s and %s: %.100s", prev, key, l)
				}
				continue
			}
			where[l] = key
			v, ok := p.published[l]
			if !ok {
				t.Errorf("object %s holds a line that was never published active: %.100s", key, l)
				continue
			}
			count[v]++
		}
	}
	if r.twice > 5 {
		t.Errorf("… %d lines in all are in two different objects", r.twice)
	}
	r.exported = len(where)
	for id, v := range p.latest {
		if !p.active[id] {
			continue
		}
		switch n := count[v]; {
		case n == 0:
			r.lost++
		case n > 1:
			t.Errorf("latest version of %s exported %d times", id, n)
		}
	}
	if r.lost > 0 {
		t.Errorf("%d of %d ids' latest active versions were not exported", r.lost, p.expected())
	}

	events := e2e.ReadStream(t, e.js, natsx.StreamEvents, natsx.SubjectEvents)
	ids := map[string]int{}
	for _, ev := range events {
		var env struct {
			ID     string          `json:"id"`
			Detail json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal(ev.Data, &env); err != nil {
			t.Fatalf("event: %v", err)
		}
		if _, ok := where[string(env.Detail)]; !ok {
			t.Errorf("event %s carries a finding that is in no object", env.ID)
		}
		ids[env.ID]++
	}
	r.repeatedEvents = len(events) - len(ids)
	if len(ids) != r.exported {
		t.Errorf("%d distinct events for %d exported lines", len(ids), r.exported)
	}
	return r
}

// report prints a result line named name: to the test log, and appended
// to $GDEXPORT_TEST_RESULTS when set (make test prints that file as the
// suite's table, since go test shows nothing of a passing package).
func report(t *testing.T, name string, start time.Time, r result) {
	t.Helper()
	line := fmt.Sprintf("%-30s findings in %5d  exported %5d  duplicates %3d (rewrites %d, repeated events %d, in two objects %d)  lost %d  %5.1fs",
		name, r.in, r.exported, r.rewrites+r.repeatedEvents+r.twice, r.rewrites, r.repeatedEvents, r.twice, r.lost, time.Since(start).Seconds())
	if r.note != "" {
		line += "  " + r.note
	}
	if t.Failed() {
		line += "  FAILED"
	}
	t.Log(line)
	if path := os.Getenv("GDEXPORT_TEST_RESULTS"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("results file: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

// checkWorkers fails the test when a worker panicked.
func (e *env) checkWorkers() {
	e.t.Helper()
	for _, w := range e.workers {
		if log := w.Log(e.t); strings.Contains(log, "panic:") {
			e.t.Errorf("%s panicked:\n%s", w.Name, log)
		}
	}
}

// watchRedelivered polls the ingest consumer until the test ends and
// returns a function giving the most redelivered messages it saw awaiting
// their ack at once: work a dead or partitioned worker held that another
// took over (JetStream counts only redelivered messages not yet acked, so
// this is a lower bound of what was taken over).
func (e *env) watchRedelivered() func() int {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := e.js.Consumer(ctx, natsx.StreamFindings, natsx.ConsumerIngest)
	if err != nil {
		e.t.Fatalf("ingest consumer: %v", err)
	}
	var mu sync.Mutex
	most := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
			info, err := cons.Info(qctx)
			qcancel()
			if err == nil {
				mu.Lock()
				most = max(most, info.NumRedelivered)
				mu.Unlock()
			}
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

var errNoLeader = errors.New("no leader")

// streamLeader names the node that leads stream.
func (e *env) streamLeader(stream string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", errNoLeader
	}
	return info.Cluster.Leader, nil
}
