package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/gdexport/gdexport/pipeline/config"
)

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "deployments", "Dockerfile")); err != nil {
		t.Fatalf("deployments/ not found above %s: %v", root, err)
	}
	return root
}

// doc is one YAML document as generic maps and lists.
type doc map[string]any

// get follows a dotted path of map keys ("spec.template.metadata").
func (d doc) get(path string) any {
	var cur any = map[string]any(d)
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func (d doc) str(path string) string {
	s, _ := d.get(path).(string)
	return s
}

func (d doc) list(path string) []any {
	l, _ := d.get(path).([]any)
	return l
}

func (d doc) labels(path string) map[string]string {
	out := map[string]string{}
	m, _ := d.get(path).(map[string]any)
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// asDoc turns a list element into a doc.
func asDoc(v any) doc {
	m, _ := v.(map[string]any)
	return doc(m)
}

// readDocs parses every YAML document of a file.
func readDocs(t *testing.T, path string) []doc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []doc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: not well-formed YAML: %v", path, err)
		}
		if d != nil {
			out = append(out, doc(d))
		}
	}
}

// manifest is one Kubernetes object with the file it is in.
type manifest struct {
	file string
	doc
}

func (m manifest) String() string {
	return fmt.Sprintf("%s %s (%s)", m.str("kind"), m.str("metadata.name"), m.file)
}

// selects reports whether a selector's matchLabels select pods labelled so.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// validWorkerConfig parses and validates a gdexport configuration file the
// way `gdexport run` does.
func validWorkerConfig(t *testing.T, what string, b []byte) *config.Config {
	t.Helper()
	cfg, err := config.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return cfg
}

// TestKubernetesManifests checks every manifest of deployments/k8s.
func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deployments", "k8s")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	var all []manifest
	var kustomization doc
	for _, f := range files {
		for _, d := range readDocs(t, f) {
			m := manifest{file: filepath.Base(f), doc: d}
			if m.str("kind") == "Kustomization" {
				kustomization = d
				continue
			}
			for _, field := range []string{"apiVersion", "kind", "metadata.name"} {
				if m.str(field) == "" {
					t.Errorf("%s: document without %s", m.file, field)
				}
			}
			if m.str("kind") != "Namespace" && m.str("metadata.namespace") != "gdexport" {
				t.Errorf("%s: namespace %q, want gdexport", m, m.str("metadata.namespace"))
			}
			all = append(all, m)
		}
	}
	byKind := map[string]map[string]manifest{}
	for _, m := range all {
		k := m.str("kind")
		if byKind[k] == nil {
			byKind[k] = map[string]manifest{}
		}
		if _, dup := byKind[k][m.str("metadata.name")]; dup {
			t.Errorf("%s is declared twice", m)
		}
		byKind[k][m.str("metadata.name")] = m
	}
	exists := func(kind, name string) bool { _, ok := byKind[kind][name]; return ok }

	// The kustomization lists every manifest file, and only existing ones.
	if kustomization == nil {
		t.Fatal("no kustomization.yaml")
	}
	var listed []string
	for _, r := range kustomization.list("resources") {
		listed = append(listed, fmt.Sprint(r))
	}
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	sort.Strings(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("kustomization resources %v, want every manifest %v", listed, want)
	}

	deployments := byKind["Deployment"]
	if len(deployments) != 1 {
		t.Fatalf("%d Deployments, want the workers' one", len(deployments))
	}
	var dep manifest
	for _, d := range deployments {
		dep = d
	}
	podLabels := dep.labels("spec.template.metadata.labels")
	if !selects(dep.labels("spec.selector.matchLabels"), podLabels) {
		t.Errorf("%s: selector %v does not select its pods %v", dep, dep.labels("spec.selector.matchLabels"), podLabels)
	}
	replicas, _ := dep.get("spec.replicas").(uint64)
	if replicas < 2 {
		t.Errorf("%s: %d replicas, want at least 2 (the work is shared)", dep, replicas)
	}
	if sa := dep.str("spec.template.spec.serviceAccountName"); sa != "" && !exists("ServiceAccount", sa) {
		t.Errorf("%s: ServiceAccount %s does not exist", dep, sa)
	}
	if dep.get("spec.template.spec.securityContext.runAsNonRoot") != true {
		t.Errorf("%s: pods do not run as non-root", dep)
	}
	volumes := map[string]doc{}
	for _, v := range dep.list("spec.template.spec.volumes") {
		volumes[asDoc(v).str("name")] = asDoc(v)
	}
	var configFile []byte
	for name, v := range volumes {
		if cm := v.str("configMap.name"); cm != "" {
			if !exists("ConfigMap", cm) {
				t.Errorf("%s: volume %s names ConfigMap %s, which does not exist", dep, name, cm)
			} else if data, ok := byKind["ConfigMap"][cm].get("data").(map[string]any); ok {
				if f, ok := data["gdexport.yaml"].(string); ok {
					configFile = []byte(f)
				}
			}
		}
		if s := v.str("secret.secretName"); s != "" && !exists("Secret", s) {
			t.Errorf("%s: volume %s names Secret %s, which does not exist", dep, name, s)
		}
	}
	containers := dep.list("spec.template.spec.containers")
	if len(containers) == 0 {
		t.Fatalf("%s: no containers", dep)
	}
	ports := map[string]int{}
	for _, c := range containers {
		c := asDoc(c)
		name := c.str("name")
		if c.str("image") == "" {
			t.Errorf("%s container %s: no image", dep, name)
		}
		for _, p := range c.list("ports") {
			p := asDoc(p)
			n, _ := p.get("containerPort").(uint64)
			ports[p.str("name")] = int(n)
		}
		for _, probe := range []string{"readinessProbe", "livenessProbe"} {
			pr := asDoc(c.get(probe))
			if pr == nil {
				t.Errorf("%s container %s: no %s", dep, name, probe)
				continue
			}
			if pr.get("httpGet") == nil && pr.get("exec") == nil {
				t.Errorf("%s container %s: %s has neither httpGet nor exec", dep, name, probe)
			}
			if port := pr.get("httpGet.port"); port != nil {
				if s, ok := port.(string); ok {
					if _, named := ports[s]; !named {
						t.Errorf("%s container %s: %s probes port %q, which it does not declare", dep, name, probe, s)
					}
				}
			}
		}
		if got := c.str("readinessProbe.httpGet.path"); got != "/readyz" {
			t.Errorf("%s container %s: readiness probes %q, want /readyz", dep, name, got)
		}
		for _, r := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
			if c.get("resources."+r) == nil {
				t.Errorf("%s container %s: no resources.%s", dep, name, r)
			}
		}
		for _, m := range c.list("volumeMounts") {
			if v := asDoc(m).str("name"); volumes[v] == nil {
				t.Errorf("%s container %s: mounts volume %s, which the pod does not have", dep, name, v)
			}
		}
		for _, e := range c.list("envFrom") {
			e := asDoc(e)
			if s := e.str("secretRef.name"); s != "" && !exists("Secret", s) {
				t.Errorf("%s container %s: envFrom names Secret %s, which does not exist", dep, name, s)
			}
			if cm := e.str("configMapRef.name"); cm != "" && !exists("ConfigMap", cm) {
				t.Errorf("%s container %s: envFrom names ConfigMap %s, which does not exist", dep, name, cm)
			}
		}
		for _, e := range c.list("env") {
			e := asDoc(e)
			if s := e.str("valueFrom.secretKeyRef.name"); s != "" && !exists("Secret", s) {
				t.Errorf("%s container %s: env %s names Secret %s, which does not exist", dep, name, e.str("name"), s)
			}
		}
	}

	// The configuration the workers read is valid, R3, and listens where
	// the probes look.
	if configFile == nil {
		t.Fatalf("%s: no ConfigMap volume holds gdexport.yaml", dep)
	}
	cfg := validWorkerConfig(t, "ConfigMap gdexport.yaml", configFile)
	if cfg.NATS.Replicas != 3 {
		t.Errorf("ConfigMap gdexport.yaml: nats.replicas %d, want 3 (a 3-node cluster)", cfg.NATS.Replicas)
	}
	if cfg.NATS.URL == "" {
		t.Error("ConfigMap gdexport.yaml: no nats.url: the workers would each start an embedded server")
	}
	host, port, _ := strings.Cut(cfg.HTTP.Listen, ":")
	if host != "0.0.0.0" || port != strconv.Itoa(ports["http"]) {
		t.Errorf("ConfigMap gdexport.yaml: http.listen %s, want 0.0.0.0:%d (the probed port)", cfg.HTTP.Listen, ports["http"])
	}

	pdbs := byKind["PodDisruptionBudget"]
	if len(pdbs) == 0 {
		t.Error("no PodDisruptionBudget")
	}
	for _, p := range pdbs {
		if !selects(p.labels("spec.selector.matchLabels"), podLabels) {
			t.Errorf("%s: selector %v does not select the workers %v", p, p.labels("spec.selector.matchLabels"), podLabels)
		}
		if (p.get("spec.minAvailable") == nil) == (p.get("spec.maxUnavailable") == nil) {
			t.Errorf("%s: needs exactly one of minAvailable and maxUnavailable", p)
		}
		if n, ok := p.get("spec.minAvailable").(uint64); ok && n >= replicas {
			t.Errorf("%s: minAvailable %d with %d replicas blocks every drain", p, n, replicas)
		}
	}
	for _, s := range byKind["Service"] {
		if !selects(s.labels("spec.selector"), podLabels) {
			t.Errorf("%s: selector %v does not select the workers %v", s, s.labels("spec.selector"), podLabels)
		}
		for _, p := range s.list("spec.ports") {
			if tp, ok := asDoc(p).get("targetPort").(string); ok {
				if _, named := ports[tp]; !named {
					t.Errorf("%s: targetPort %q is no port of the workers", s, tp)
				}
			}
		}
	}
}

// TestCompose checks deployments/docker-compose.yml and the workers'
// configuration it mounts.
func TestCompose(t *testing.T) {
	root := repoRoot(t)
	dir := filepath.Join(root, "deployments")
	docs := readDocs(t, filepath.Join(dir, "docker-compose.yml"))
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml holds %d documents, want 1", len(docs))
	}
	services, _ := docs[0].get("services").(map[string]any)
	var names []string
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	workers := 0
	for _, want := range []string{"nats-0", "nats-1", "nats-2", "minio", "local-kms"} {
		if _, ok := services[want]; !ok {
			t.Errorf("no service %s (services %v)", want, names)
		}
	}
	for _, n := range names {
		svc := asDoc(services[n])
		image := svc.str("image")
		if !strings.HasSuffix(image, ":local") {
			t.Errorf("service %s: image %q is not one `make images` builds (gdexport/<name>:local)", n, image)
		}
		if image == "gdexport/gdexport:local" {
			workers++
		}
		for _, p := range svc.list("ports") {
			if !strings.HasPrefix(fmt.Sprint(p), "127.0.0.1:") {
				t.Errorf("service %s publishes %v beyond loopback", n, p)
			}
		}
		for _, v := range svc.list("volumes") {
			src, _, _ := strings.Cut(fmt.Sprint(v), ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
					t.Errorf("service %s mounts %s, which does not exist: %v", n, src, err)
				}
			}
		}
	}
	if workers < 2 {
		t.Errorf("%d gdexport workers, want at least 2 sharing the work", workers)
	}
	b, err := os.ReadFile(filepath.Join(dir, "compose", "gdexport.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := validWorkerConfig(t, "compose/gdexport.yaml", b)
	if cfg.NATS.Replicas != 3 {
		t.Errorf("compose/gdexport.yaml: nats.replicas %d, want 3", cfg.NATS.Replicas)
	}
	for _, node := range []string{"nats-0", "nats-1", "nats-2"} {
		if !strings.Contains(cfg.NATS.URL, "nats://"+node+":4222") {
			t.Errorf("compose/gdexport.yaml: nats.url %q does not list %s", cfg.NATS.URL, node)
		}
	}
	if cfg.HTTP.Listen != "0.0.0.0:8480" {
		t.Errorf("compose/gdexport.yaml: http.listen %s, want 0.0.0.0:8480 (the image's HEALTHCHECK and published port)", cfg.HTTP.Listen)
	}
}
