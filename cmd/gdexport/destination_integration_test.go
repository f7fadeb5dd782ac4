//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gdexport/gdexport/pipeline"
	"github.com/gdexport/gdexport/pipeline/assemble"
	"github.com/gdexport/gdexport/pipeline/config"
	"github.com/gdexport/gdexport/pipeline/natsx"
	"github.com/gdexport/gdexport/pipeline/state"
	"github.com/gdexport/gdexport/sinks/s3"
	"github.com/gdexport/gdexport/stages/compress"
	"github.com/gdexport/gdexport/stages/encrypt"
	"github.com/gdexport/gdexport/stages/encrypt/kms"
	"github.com/gdexport/gdexport/testing/containers"
	"github.com/gdexport/gdexport/testing/e2e"
	"github.com/gdexport/gdexport/testing/natstest"
)

// switchableCreds are the worker's S3 credentials, which a test swaps to
// deny its writes (a role whose policy lost s3:PutObject) and back. They
// never stay cached: the SDK asks again on every request.
type switchableCreds struct {
	cur atomic.Pointer[aws.Credentials]
}

func (s *switchableCreds) set(c aws.Credentials) { s.cur.Store(&c) }

func (s *switchableCreds) Retrieve(context.Context) (aws.Credentials, error) {
	c := *s.cur.Load()
	c.CanExpire, c.Expires = true, time.Now().Add(10*time.Millisecond)
	return c, nil
}

// faultEnv is one MinIO, one local-kms and one worker shared by the
// fault scenarios.
type faultEnv struct {
	t        *testing.T
	minio    *containers.MinIO
	kms      *containers.LocalKMS
	s3Admin  *awss3.Client
	kmsAdmin *awskms.Client
	reader   *kms.Keys
	root     aws.Credentials
	creds    *switchableCreds
	natsURL  string
	js       jetstream.JetStream
}

func startFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	containers.Require(t) // before any AWS client: fences the SDK in on loopback
	m := containers.StartMinIO(t)
	lk := containers.StartLocalKMS(t)
	rootCreds := aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey, Source: "test"}
	static := credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, "")
	// The commands use the standard chain: the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_REGION", m.Region)
	e := &faultEnv{t: t, minio: m, kms: lk, root: rootCreds, creds: &switchableCreds{},
		s3Admin:  awss3.New(awss3.Options{Region: m.Region, Credentials: static, BaseEndpoint: aws.String(m.URL), UsePathStyle: true}),
		kmsAdmin: awskms.New(awskms.Options{Region: lk.Region, Credentials: static, BaseEndpoint: aws.String(lk.URL)}),
	}
	e.creds.set(rootCreds)
	var err error
	if e.reader, err = kms.NewKeys(kms.WithCredentials(static), kms.WithEndpoint(lk.URL)); err != nil {
		t.Fatal(err)
	}
	_, e.natsURL = natstest.Start(t)
	cfg := &config.Config{
		DataDir: t.TempDir(), NATS: config.NATS{URL: e.natsURL}, HTTP: config.HTTP{Listen: "127.0.0.1:0"},
		NewFindingDelay: config.Duration(300 * time.Millisecond),
		RetryInitial:    config.Duration(300 * time.Millisecond), RetryMax: config.Duration(time.Second),
		FailureThreshold: config.Duration(2 * time.Second),
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	runWorker(t, assemble.Options{Config: cfg, Log: log, SummaryEvery: -1,
		S3:  []s3.Option{s3.WithCredentials(e.creds), s3.WithRegion(m.Region)},
		KMS: []kms.Option{kms.WithCredentials(static), kms.WithRegion(lk.Region)},
	})
	nc, err := nats.Connect(e.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	e.js, _ = jetstream.New(nc)
	return e
}

// gd runs a gdexport command against the worker's NATS for account in
// us-east-1.
func (e *faultEnv) gd(account string, args ...string) result {
	e.t.Helper()
	return gdx(e.t, "", append(args, "--nats-url", e.natsURL, "--account", account, "--region", "us-east-1")...)
}

func (e *faultEnv) bucket(name string) {
	e.t.Helper()
	if _, err := e.s3Admin.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		e.t.Fatalf("create bucket %s: %v", name, err)
	}
}

// dropBucket deletes every object of a bucket, then the bucket.
func (e *faultEnv) dropBucket(name string) {
	e.t.Helper()
	ctx := context.Background()
	list, err := e.s3Admin.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []s3types.ObjectIdentifier
	for _, o := range list.Contents {
		ids = append(ids, s3types.ObjectIdentifier{Key: o.Key})
	}
	if len(ids) > 0 {
		if _, err := e.s3Admin.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String(name), Delete: &s3types.Delete{Objects: ids}}); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.s3Admin.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
		e.t.Fatalf("delete bucket %s: %v", name, err)
	}
}

func (e *faultEnv) newKey() string {
	e.t.Helper()
	out, err := e.kmsAdmin.CreateKey(context.Background(), &awskms.CreateKeyInput{})
	if err != nil {
		e.t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// create makes a destination with the command and waits for the worker to
// verify it.
func (e *faultEnv) create(account string, args ...string) string {
	e.t.Helper()
	r := e.gd(account, append([]string{"destination", "create", "--endpoint", e.minio.URL, "--wait", "30s"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("destination create: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var v struct {
		ID     string `json:"destinationId"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Status != pipeline.StatusPublishing {
		e.t.Fatalf("destination create: %s (%v)", r.stdout, err)
	}
	return v.ID
}

func (e *faultEnv) publish(account, prefix string, n int) []string {
	e.t.Helper()
	raw, err := os.ReadFile(filepath.Join(samples, "finding_elastic_rds_anomalous_login.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%s%04d", prefix, account[:4], i)
		tmpl["id"], tmpl["accountId"], tmpl["region"] = id, account, "us-east-1"
		b, _ := json.Marshal(tmpl)
		m := &nats.Msg{Subject: pipeline.IngestSubject("us-east-1", account), Data: b, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// exported reads every object of bucket but those in skip back
// (decrypting envelope objects through local-kms) and counts the finding
// ids; objects holds the keys.
func (e *faultEnv) exported(bucket string, skip map[string]bool) (ids map[string]int, objects []string) {
	e.t.Helper()
	ctx := context.Background()
	ids = map[string]int{}
	list, err := e.s3Admin.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		return ids, nil // the bucket is gone
	}
	for _, o := range list.Contents {
		key := aws.ToString(o.Key)
		if skip[key] {
			continue
		}
		objects = append(objects, key)
		out, err := e.s3Admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		if err != nil {
			e.t.Fatal(err)
		}
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if strings.HasSuffix(key, ".enc") {
			body, err = encrypt.Open(ctx, func(_, keyID string) (encrypt.KeyProvider, error) { return e.reader.Provider(ctx, keyID, "") }, body)
			if err != nil {
				e.t.Fatalf("decrypt %s through local-kms: %v", key, err)
			}
		}
		plain, err := compress.Gunzip(bytes.NewReader(body))
		if err != nil {
			e.t.Fatalf("gunzip %s: %v", key, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(plain)), "\n") {
			var f struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(l), &f); err != nil {
				e.t.Fatalf("%s: line %q: %v", key, l, err)
			}
			ids[f.ID]++
		}
	}
	return ids, objects
}

func (e *faultEnv) status(id string) state.Status {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), natsx.BucketStatus)
	if err != nil {
		e.t.Fatal(err)
	}
	st, _, _, err := state.NewStatuses(kv, nil).Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *faultEnv) waitStatus(id, want string) state.Status {
	e.t.Helper()
	var st state.Status
	e2e.Eventually(e.t, 30*time.Second, "destination "+id+" "+want, func() bool {
		st = e.status(id)
		return st.Status == want
	})
	return st
}

// unableNotes counts the notifications of id that announced
// UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY, and returns all as FROM>TO.
func (e *faultEnv) unableNotes(id string) (int, []string) {
	e.t.Helper()
	n := 0
	var all []string
	for _, m := range e2e.ReadStream(e.t, e.js, natsx.StreamEvents, natsx.NotificationSubject(id)) {
		var no state.Notification
		if err := json.Unmarshal(m.Data, &no); err != nil {
			e.t.Fatal(err)
		}
		if no.Status == pipeline.StatusUnableToPublish {
			n++
			if no.LastError == "" || no.PublishingFailureStartTimestamp == 0 {
				e.t.Errorf("UNABLE notification lacks its error: %s", m.Data)
			}
		}
		all = append(all, no.PreviousStatus+">"+no.Status)
	}
	return n, all
}

// fault runs one scenario on destination id (of bucket): findings
// published while it is broken drive it UNABLE with one notification,
// wait, and once fix has run are exported exactly once.
func (e *faultEnv) fault(account, id, bucket, wantCode string, breakIt, fix func()) {
	e.t.Helper()
	e.faultOfKind(account, id, bucket, wantCode, state.ErrorKindAccess, breakIt, fix)
}

// faultOfKind is fault for errors of kind (access or transient).
func (e *faultEnv) faultOfKind(account, id, bucket, wantCode, kind string, breakIt, fix func()) {
	t := e.t
	t.Helper()
	e.publish(account, "ok", 2)
	e2e.Eventually(t, 30*time.Second, "the first findings exported", func() bool { ids, _ := e.exported(bucket, nil); return len(ids) == 2 })
	// What was written before the fault is left out below: a deleted
	// bucket takes it along, a deleted key makes it unreadable.
	_, objs := e.exported(bucket, nil)
	old := map[string]bool{}
	for _, k := range objs {
		old[k] = true
	}
	earlier, _ := e.unableNotes(id)
	breakIt()
	held := e.publish(account, "held", 3)
	st := e.waitStatus(id, pipeline.StatusUnableToPublish)
	if !strings.Contains(st.LastError, wantCode) || st.LastErrorKind != kind {
		t.Errorf("UNABLE for %q (%s), want an %s error with %s", st.LastError, st.LastErrorKind, kind, wantCode)
	}
	held = append(held, e.publish(account, "late", 2)...)
	time.Sleep(2500 * time.Millisecond) // retries with backoff meanwhile
	if st := e.status(id); st.Status != pipeline.StatusUnableToPublish {
		t.Fatalf("status while broken: %+v", st)
	}
	if n, all := e.unableNotes(id); n-earlier != 1 {
		t.Fatalf("%d UNABLE notifications (%q), want 1", n-earlier, all)
	}
	r := e.gd(account, "destination", "describe", "--destination-id", id)
	if !strings.Contains(r.stdout, `"status": "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"`) || !strings.Contains(r.stdout, `"batches"`) {
		t.Errorf("describe while broken:\n%s", r.stdout)
	}
	fix()
	e.waitStatus(id, pipeline.StatusPublishing)
	e2e.Eventually(t, 30*time.Second, "every held finding exported", func() bool {
		ids, _ := e.exported(bucket, old)
		n := 0
		for _, h := range held {
			n += ids[h]
		}
		return n >= len(held)
	})
	time.Sleep(time.Second) // nothing more may come
	ids, objects := e.exported(bucket, old)
	for _, h := range held {
		if ids[h] != 1 {
			t.Errorf("held finding %s exported %d times, want once", h, ids[h])
		}
	}
	if len(ids) != len(held) {
		t.Errorf("exported after the fault %v, want exactly the held findings %v", ids, held)
	}
	if n, all := e.unableNotes(id); n-earlier != 1 {
		t.Errorf("%d UNABLE notifications after the fix (%q), want 1", n-earlier, all)
	}
	for _, k := range objects {
		if !strings.Contains(k, "/AWSLogs/"+account+"/GuardDuty/us-east-1/") {
			t.Errorf("object %s outside the layout", k)
		}
	}
	t.Logf("objects: %d, findings: %d", len(objects), len(ids))
}

// TestDestinationFaults drives a real worker's S3 destinations on MinIO
// and local-kms through export access errors (a deleted bucket, a denied
// write, a disabled key, a missing then deleted key) and through transient
// errors that outlast failureThreshold (the store refuses connections).
// Each makes the
// destination UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY with exactly one
// notification; findings published meanwhile wait; once the fault is fixed
// (by itself, or with destination restart or update) each is exported
// exactly once.
func TestDestinationFaults(t *testing.T) {
	e := startFaultEnv(t)
	role := "arn:aws:iam::111122223333:role/gdexport"

	t.Run("deleted bucket", func(t *testing.T) {
		e.t = t
		// --create-bucket against MinIO: what it does not implement is a warning.
		r := e.gd("111111111111", "destination", "create", "--destination-arn", "arn:aws:s3:::gd-deleted/guardduty",
			"--kms-key-arn", e.minio.KMSKey, "--endpoint", e.minio.URL, "--create-bucket", "--principal", role, "--wait", "30s")
		if r.code != 0 || !strings.Contains(r.stdout, `"status": "PUBLISHING"`) {
			t.Fatalf("create --create-bucket: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("create-bucket warnings: %s", strings.TrimSpace(r.stderr))
		var v struct {
			ID string `json:"destinationId"`
		}
		_ = json.Unmarshal([]byte(r.stdout), &v)
		e.fault("111111111111", v.ID, "gd-deleted", "NoSuchBucket",
			func() { e.dropBucket("gd-deleted") },
			func() { e.bucket("gd-deleted") }) // recovers by itself: a retry succeeds
	})

	t.Run("denied write", func(t *testing.T) {
		e.t = t
		e.bucket("gd-denied")
		id := e.create("222222222222", "--destination-arn", "arn:aws:s3:::gd-denied/guardduty", "--kms-key-arn", e.minio.KMSKey)
		e.fault("222222222222", id, "gd-denied", "AccessDenied",
			func() { e.creds.set(readOnly(t, e)) }, // the worker's role loses s3:PutObject
			func() {
				e.creds.set(e.root)
				if r := e.gd("222222222222", "destination", "restart", "--destination-id", id, "--wait", "30s"); r.code != 0 {
					t.Fatalf("restart: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
				}
			})
	})

	t.Run("disabled key, envelope", func(t *testing.T) {
		e.t = t
		e.bucket("gd-disabled")
		key := e.newKey()
		id := e.create("333333333333", "--destination-arn", "arn:aws:s3:::gd-disabled/guardduty", "--kms-key-arn", key,
			"--encryption", "envelope", "--kms-endpoint", e.kms.URL)
		e.fault("333333333333", id, "gd-disabled", "DisabledException",
			func() {
				if _, err := e.kmsAdmin.DisableKey(context.Background(), &awskms.DisableKeyInput{KeyId: aws.String(key)}); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if _, err := e.kmsAdmin.EnableKey(context.Background(), &awskms.EnableKeyInput{KeyId: aws.String(key)}); err != nil {
					t.Fatal(err)
				}
			})
	})

	t.Run("store unreachable past failureThreshold", func(t *testing.T) {
		e.t = t
		e.bucket("gd-down")
		p := newProxy(t, e.minio.URL)
		r := e.gd("555555555555", "destination", "create", "--destination-arn", "arn:aws:s3:::gd-down/guardduty",
			"--kms-key-arn", e.minio.KMSKey, "--endpoint", p.url(), "--wait", "30s")
		var v struct {
			ID     string `json:"destinationId"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Status != pipeline.StatusPublishing {
			t.Fatalf("create behind the proxy: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// Refused connections are transient: the destination stays
		// PUBLISHING until they outlast failureThreshold (2 s here).
		e.faultOfKind("555555555555", v.ID, "gd-down", "connect", state.ErrorKindTransient, p.stop, p.start)
	})

	t.Run("missing and deleted key, envelope", func(t *testing.T) {
		e.t = t
		e.bucket("gd-keyless")
		// A key that does not exist fails verification: UNABLE from the start.
		r := e.gd("444444444444", "destination", "create", "--destination-arn", "arn:aws:s3:::gd-keyless/guardduty",
			"--kms-key-arn", "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000",
			"--encryption", "envelope", "--kms-endpoint", e.kms.URL, "--endpoint", e.minio.URL, "--wait", "30s")
		if r.code != 1 || !strings.Contains(r.stdout, `"status": "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"`) || !strings.Contains(r.stderr, "NotFoundException") {
			t.Fatalf("create with a missing key: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		var v struct {
			ID string `json:"destinationId"`
		}
		_ = json.Unmarshal([]byte(r.stdout), &v)
		first := e.newKey()
		if r := e.gd("444444444444", "destination", "update", "--destination-id", v.ID, "--kms-key-arn", first, "--wait", "30s"); r.code != 0 {
			t.Fatalf("update to an existing key: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		second := e.newKey()
		e.fault("444444444444", v.ID, "gd-keyless", "KMSInvalidStateException",
			func() {
				if _, err := e.kmsAdmin.ScheduleKeyDeletion(context.Background(), &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(first), PendingWindowInDays: aws.Int32(7)}); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				// A new key: the backlog is encrypted with it.
				if r := e.gd("444444444444", "destination", "update", "--destination-id", v.ID, "--kms-key-arn", second, "--wait", "30s"); r.code != 0 {
					t.Fatalf("update to a new key: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
				}
			})
	})
}

// proxy forwards TCP connections from a loopback port to MinIO until it is
// stopped (the store is down: connections are refused), and again once it
// is started on the same port.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, targetURL string) *proxy {
	t.Helper()
	p := &proxy{t: t, target: strings.TrimPrefix(targetURL, "http://")}
	p.start()
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) url() string { return "http://" + p.addr }

func (p *proxy) start() {
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// readOnly asks MinIO's STS for credentials of the root user restricted
// by a session policy that only reads.
func readOnly(t *testing.T, e *faultEnv) aws.Credentials {
	t.Helper()
	c := sts.New(sts.Options{Region: e.minio.Region, BaseEndpoint: aws.String(e.minio.URL),
		Credentials: credentials.NewStaticCredentialsProvider(e.minio.AccessKey, e.minio.SecretKey, "")})
	out, err := c.AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::111122223333:role/read-only"),
		RoleSessionName: aws.String("gdexport-test"),
		Policy:          aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::*"]}]}`),
	})
	if err != nil {
		t.Fatalf("MinIO AssumeRole: %v", err)
	}
	cr := out.Credentials
	return aws.Credentials{AccessKeyID: aws.ToString(cr.AccessKeyId), SecretAccessKey: aws.ToString(cr.SecretAccessKey),
		SessionToken: aws.ToString(cr.SessionToken), Source: "test"}
}
