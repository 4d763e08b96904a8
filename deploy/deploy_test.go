package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/modfile"
)

// pendingEnv are TAPPROOF_* variables the deployment files set although the
// serve command does not read them yet, each with the reason. Keep it empty
// when you can.
var pendingEnv = map[string]string{}

// The addresses tapproof listens on and connects to.
const (
	apiPort  = "8480"
	natsPort = "4222"
)

// pinned matches an image reference with a version tag: not latest, not a
// bare name, not a variable.
var pinned = regexp.MustCompile(`^[a-z0-9][a-z0-9./_-]*(:[0-9]+)?(/[a-z0-9._-]+)*:v?[0-9]+(\.[0-9]+)+(-[a-z0-9.]+)?$`)

// servedEnv returns the TAPPROOF_* variables the serve command reads, from
// the source of cmd/tapproof: the "($TAPPROOF_NAME)" that ends a flag's
// usage (the variable main binds to the flag), env("NAME", ...) calls and
// "TAPPROOF_NAME" literals in its serve*.go files.
func servedEnv(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "cmd", "tapproof", "serve*.go"))
	if err != nil {
		t.Fatal(err)
	}
	envCall := regexp.MustCompile(`\benv\("([A-Z0-9_]+)"`)
	bound := regexp.MustCompile(`\(\$(TAPPROOF_[A-Z0-9_]+)\)["` + "`" + `]`)
	literal := regexp.MustCompile(`"(TAPPROOF_[A-Z0-9_]+)"`)
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envCall.FindAllSubmatch(b, -1) {
			out["TAPPROOF_"+string(m[1])] = true
		}
		for _, m := range literal.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
		for _, m := range bound.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	if !out["TAPPROOF_HTTP"] || !out["TAPPROOF_NATS_URL"] {
		t.Fatalf("found %v in %v; has the serve command moved?", slices.Sorted(maps.Keys(out)), files)
	}
	for name, why := range pendingEnv {
		if out[name] {
			t.Logf("%s is read by the serve command now; remove it from pendingEnv", name)
		} else {
			t.Logf("%s is set for %s but not read by the serve command yet", name, why)
		}
	}
	return out
}

// checkTapproofEnv checks that env sets only variables the serve command
// reads, and those it needs in a container.
func checkTapproofEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	read := servedEnv(t)
	for name := range env {
		if !strings.HasPrefix(name, "TAPPROOF_") {
			t.Errorf("%s: sets %s, which tapproof does not read", where, name)
			continue
		}
		if !read[name] && pendingEnv[name] == "" {
			t.Errorf("%s: sets %s, which tapproof serve does not read (it reads %v)", where, name, slices.Sorted(maps.Keys(read)))
		}
	}
	for _, name := range []string{"TAPPROOF_DATA", "TAPPROOF_HTTP", "TAPPROOF_NATS_URL", "TAPPROOF_TRILLIAN",
		"TAPPROOF_INFLUX_URL", "TAPPROOF_INFLUX_DB", "TAPPROOF_INFLUX_TOKEN", "TAPPROOF_ORIGIN"} {
		if _, ok := env[name]; !ok {
			t.Errorf("%s: %s is not set", where, name)
		}
	}
	if h := env["TAPPROOF_HTTP"]; h != "0.0.0.0:"+apiPort {
		t.Errorf("%s: TAPPROOF_HTTP = %q, want 0.0.0.0:%s (reachable from outside the container)", where, h, apiPort)
	}
	for _, u := range strings.Split(env["TAPPROOF_NATS_URL"], ",") {
		if !strings.HasPrefix(u, "tls://") || !strings.HasSuffix(u, ":"+natsPort) {
			t.Errorf("%s: TAPPROOF_NATS_URL has %q, want tls://HOST:%s: the broker speaks TLS only", where, u, natsPort)
		}
	}
	// The NATS cluster has three servers, and every stream three copies.
	if r := env["TAPPROOF_REPLICAS"]; r != "3" {
		t.Errorf("%s: TAPPROOF_REPLICAS = %q, want 3: a copy of every stream on each of the three NATS servers", where, r)
	}
	if env["TAPPROOF_BROKER_DIR"] == "" {
		t.Errorf("%s: TAPPROOF_BROKER_DIR is not set: tapproof needs the broker's nkeys to connect", where)
	}
}

// goMod returns the module's go.mod.
func goMod(t *testing.T) *modfile.File {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// requiredVersion returns the version of module path in go.mod.
func requiredVersion(t *testing.T, mod *modfile.File, path string) string {
	t.Helper()
	for _, r := range mod.Require {
		if r.Mod.Path == path {
			return r.Mod.Version
		}
	}
	t.Fatalf("go.mod does not require %s", path)
	return ""
}

// checkImage checks that image is pinned and, for the components whose Go
// modules tapproof builds and tests against, that it is the same version.
func checkImage(t *testing.T, where, image string) {
	t.Helper()
	if !pinned.MatchString(image) {
		t.Errorf("%s: image %q is not pinned to a version", where, image)
		return
	}
	mod := goMod(t)
	name, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	switch name {
	case "nats":
		want := strings.TrimPrefix(requiredVersion(t, mod, "github.com/nats-io/nats-server/v2"), "v")
		if !strings.HasPrefix(tag, want+"-") && tag != want {
			t.Errorf("%s: image %s, want nats %s as in go.mod", where, image, want)
		}
	case "log_server", "log_signer":
		if want := requiredVersion(t, mod, "github.com/google/trillian"); tag != want {
			t.Errorf("%s: image %s, want trillian %s as in go.mod", where, image, want)
		}
	}
}

// composeFile is the part of the Compose specification the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Networks map[string]*struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

type composeService struct {
	Image       string         `yaml:"image"`
	Build       map[string]any `yaml:"build"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Ports       []string       `yaml:"ports"`
	Volumes     []string       `yaml:"volumes"`
	DependsOn   map[string]any `yaml:"depends_on"`
	// Networks is a list of names or a map keyed by name.
	Networks    yaml.Node `yaml:"networks"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// distroless are the Compose services Docker cannot probe: their images have
// no shell and no HTTP client. tapproof's /readyz covers Trillian.
var distroless = []string{"trillian-log-server", "trillian-log-signer"}

func readCompose(t *testing.T) (composeFile, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c, b
}

func TestCompose(t *testing.T) {
	c, raw := readCompose(t)
	for _, want := range []string{"nats", "influxdb", "postgres", "trillian-log-server", "trillian-log-signer", "tapproof", "prometheus", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("compose.yaml has no service %s", want)
		}
	}
	for name, s := range c.Services {
		where := "compose service " + name
		if s.Build != nil {
			if s.Image == "" {
				t.Errorf("%s: built image has no name", where)
			}
			df, _ := s.Build["dockerfile"].(string)
			ctx, _ := s.Build["context"].(string)
			if _, err := os.Stat(filepath.Join("compose", ctx, df)); err != nil {
				t.Errorf("%s: build: %v", where, err)
			}
		} else {
			checkImage(t, where, s.Image)
		}
		if s.Healthcheck == nil && !slices.Contains(distroless, name) {
			t.Errorf("%s: no health check", where)
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s: depends on unknown service %s", where, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if src == "./broker" || src == "./broker/server" {
				continue // written by tapproof broker init: keys, never in the repository
			}
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join("compose", src)); err != nil {
					t.Errorf("%s: bind mount: %v", where, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: volume %s is not declared", where, src)
			}
		}
	}
	// Stateful services keep their data in named volumes.
	for svc, path := range map[string]string{
		"nats": "/data", "influxdb": "/var/lib/influxdb2", "postgres": "/var/lib/postgresql/data",
		"tapproof": "/var/lib/tapproof", "prometheus": "/prometheus", "grafana": "/var/lib/grafana",
	} {
		if !mountsVolume(c, svc, path) {
			t.Errorf("compose service %s: no named volume at %s", svc, path)
		}
	}

	tp := c.Services["tapproof"]
	env := map[string]string{}
	for k, v := range tp.Environment {
		env[k] = fmt.Sprint(v)
	}
	checkTapproofEnv(t, "compose service tapproof", env)
	for k, addr := range map[string]string{
		"TAPPROOF_NATS_URL":   "tls://nats:" + natsPort + ",tls://nats-2:" + natsPort + ",tls://nats-3:" + natsPort,
		"TAPPROOF_TRILLIAN":   "trillian-log-server:8090",
		"TAPPROOF_INFLUX_URL": "http://influxdb:8086",
	} {
		if env[k] != addr {
			t.Errorf("compose service tapproof: %s = %q, want %q", k, env[k], addr)
		}
	}
	// Three NATS servers of one configuration, each its own name and store.
	stores := map[string]bool{}
	for svc, name := range map[string]string{"nats": "nats-1", "nats-2": "nats-2", "nats-3": "nats-3"} {
		n, ok := c.Services[svc]
		if !ok {
			t.Errorf("compose: no service %s: the NATS cluster has three servers", svc)
			continue
		}
		if !slices.Contains(n.Command, "/etc/nats/nats.conf") || !slices.Contains(n.Command, "--server_name="+name) {
			t.Errorf("compose service %s: command %v, want -c /etc/nats/nats.conf and --server_name=%s", svc, n.Command, name)
		}
		for _, v := range n.Volumes {
			if src, dst, _ := strings.Cut(v, ":"); dst == "/data" {
				if stores[src] {
					t.Errorf("compose service %s: store %s shared with another server", svc, src)
				}
				stores[src] = true
			}
		}
	}
	if len(stores) != 3 {
		t.Errorf("compose: the NATS servers have stores %v, want three of their own", stores)
	}
	if !slices.Contains(tp.Ports, apiPort+":"+apiPort) {
		t.Errorf("compose service tapproof: ports %v, want %s published", tp.Ports, apiPort)
	}
	if !slices.Contains(c.Services["nats"].Ports, natsPort+":"+natsPort) {
		t.Errorf("compose service nats: ports %v, want %s published for sensors", c.Services["nats"].Ports, natsPort)
	}
	if !mountsVolume(c, "tapproof", env["TAPPROOF_DATA"]) {
		t.Errorf("compose service tapproof: TAPPROOF_DATA %s is not a named volume; the log signing keys live there", env["TAPPROOF_DATA"])
	}
	if hc := tp.Healthcheck; hc == nil || !probesTapproof(strings.Join(hc.Test, " ")) {
		t.Errorf("compose service tapproof: health check %v, want /healthz or /readyz on port %s", hc, apiPort)
	}
	if cmd := c.Services["nats"].Command; !slices.Contains(cmd, "/etc/nats/nats.conf") {
		t.Errorf("compose service nats: command %v, want -c /etc/nats/nats.conf, the configuration tapproof broker init writes", cmd)
	}

	// Every ${VAR} the file uses is documented in env.example.
	documented := envFileKeys(t, filepath.Join("compose", "env.example"))
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllSubmatch(raw, -1) {
		if !documented[string(m[1])] {
			t.Errorf("compose.yaml uses ${%s}, which env.example does not document", m[1])
		}
	}

	// Grafana gets every variable its provisioning files use.
	checkGrafanaEnv(t, "compose service grafana", envStrings(c.Services["grafana"].Environment))
	checkGrafanaMounts(t, c.Services["grafana"].Volumes)
}

// networks returns the networks s joins: default if it names none.
func (s composeService) networks(t *testing.T) []string {
	t.Helper()
	switch s.Networks.Kind {
	case 0:
		return []string{"default"}
	case yaml.SequenceNode:
		var names []string
		if err := s.Networks.Decode(&names); err != nil {
			t.Fatal(err)
		}
		return names
	case yaml.MappingNode:
		var m map[string]any
		if err := s.Networks.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(m))
	}
	t.Fatalf("networks: unexpected YAML %v", s.Networks.Kind)
	return nil
}

// TestComposeTrillianPrivate: Trillian's gRPC port takes writes from anyone
// who reaches it, and PostgreSQL holds its tree. Neither publishes a port;
// both are only on internal networks; only tapproof (and Prometheus, for
// metrics) shares one with the Trillian servers, and only they share one
// with PostgreSQL.
func TestComposeTrillianPrivate(t *testing.T) {
	c, _ := readCompose(t)
	trillian := []string{"trillian-log-server", "trillian-log-signer"}
	peers := map[string][]string{ // who may share a network with each
		"trillian-log-server": {"trillian-log-signer", "postgres", "tapproof", "prometheus"},
		"trillian-log-signer": {"trillian-log-server", "postgres", "tapproof", "prometheus"},
		"postgres":            trillian,
	}
	on := map[string][]string{} // network -> services
	for name, s := range c.Services {
		for _, n := range s.networks(t) {
			on[n] = append(on[n], name)
		}
	}
	for svc, allowed := range peers {
		s, ok := c.Services[svc]
		if !ok {
			t.Errorf("compose: no service %s", svc)
			continue
		}
		if len(s.Ports) > 0 {
			t.Errorf("compose service %s: publishes %v, want no port", svc, s.Ports)
		}
		for _, n := range s.networks(t) {
			if net := c.Networks[n]; net == nil || !net.Internal {
				t.Errorf("compose service %s: on network %s, which is not declared internal: true", svc, n)
			}
			for _, other := range on[n] {
				if other != svc && !slices.Contains(allowed, other) {
					t.Errorf("compose service %s shares network %s with %s; only %v may reach it", svc, n, other, allowed)
				}
			}
		}
	}
	shares := func(a, b string) bool {
		for _, n := range c.Services[a].networks(t) {
			if slices.Contains(c.Services[b].networks(t), n) {
				return true
			}
		}
		return false
	}
	for a, b := range map[string]string{"tapproof": "trillian-log-server", "trillian-log-server": "postgres", "trillian-log-signer": "postgres"} {
		if !shares(a, b) {
			t.Errorf("compose: %s shares no network with %s, which it connects to", a, b)
		}
	}
}

func mountsVolume(c composeFile, svc, path string) bool {
	for _, v := range c.Services[svc].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == path {
			_, named := c.Volumes[parts[0]]
			return named
		}
	}
	return false
}

func probesTapproof(s string) bool {
	return (strings.Contains(s, "/healthz") || strings.Contains(s, "/readyz")) && strings.Contains(s, ":"+apiPort)
}

func envStrings(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// envFileKeys returns the names an env file (NAME=value lines) sets.
func envFileKeys(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: line %q is not NAME=value", path, line)
			continue
		}
		out[k] = true
	}
	return out
}

// grafanaProvisioning is what Grafana's provisioning files need: the
// variables they expand and the directory the dashboards provider reads.
func grafanaProvisioning(t *testing.T) (vars []string, dashboardsPath string) {
	t.Helper()
	dir := filepath.Join("grafana", "provisioning")
	ds, err := os.ReadFile(filepath.Join(dir, "datasources", "tapproof.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	for line := range strings.Lines(string(ds)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			body = append(body, line...)
		}
	}
	for _, m := range regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)`).FindAllSubmatch(body, -1) {
		if !slices.Contains(vars, string(m[1])) {
			vars = append(vars, string(m[1]))
		}
	}
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(dir, "dashboards", "tapproof.yaml"), &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v, want one of type file", prov.Providers)
	}
	return vars, prov.Providers[0].Options.Path
}

func checkGrafanaEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	vars, _ := grafanaProvisioning(t)
	for _, v := range vars {
		if _, ok := env[v]; !ok {
			t.Errorf("%s: %s is not set; the data source provisioning uses it", where, v)
		}
	}
}

// checkGrafanaMounts checks that the generated dashboards and the
// provisioning files are mounted where Grafana and the provider look.
func checkGrafanaMounts(t *testing.T, volumes []string) {
	t.Helper()
	_, path := grafanaProvisioning(t)
	want := map[string]string{
		"../../dashboards/json":               path,
		"../grafana/provisioning/datasources": "/etc/grafana/provisioning/datasources",
		"../grafana/provisioning/dashboards":  "/etc/grafana/provisioning/dashboards",
	}
	got := map[string]string{}
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if _, ok := want[parts[0]]; ok {
			got[parts[0]] = parts[1]
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("compose service grafana: mounts (-want +got):\n%s", diff)
	}
}

// TestTrillianSchema checks that the schema the deployments apply is
// Trillian's own, of the version in go.mod.
func TestTrillianSchema(t *testing.T) {
	mod := goMod(t)
	version := requiredVersion(t, mod, "github.com/google/trillian")
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/google/trillian").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/google/trillian: %v", err)
	}
	upstream, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "storage", "postgresql", "schema", "storage.sql"))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(filepath.Join("compose", "trillian", "storage.sql"))
	if err != nil {
		t.Fatal(err)
	}
	header, body, ok := bytes.Cut(ours, []byte("\n\n"))
	if !ok || !bytes.Contains(header, []byte("Trillian "+version)) {
		t.Errorf("compose/trillian/storage.sql: header %q does not name Trillian %s", header, version)
	}
	if !bytes.Equal(body, upstream) {
		t.Errorf("compose/trillian/storage.sql differs from Trillian %s's storage/postgresql/schema/storage.sql; copy it again", version)
	}
}

// TestDockerfile checks the tapproof image: pinned bases, the Go version of
// go.mod, and a health check on the API port.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("compose", "tapproof.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goMod(t).Go.Version
	var froms []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
			checkImage(t, "tapproof.Dockerfile", f[1])
		}
	}
	if len(froms) == 0 || !strings.HasPrefix(froms[0], "golang:"+goVersion+"-") {
		t.Errorf("tapproof.Dockerfile builds with %v, want golang:%s (go.mod)", froms, goVersion)
	}
	if !probesTapproof(string(b)) || !strings.Contains(string(b), "HEALTHCHECK") {
		t.Error("tapproof.Dockerfile: no HEALTHCHECK on /healthz")
	}
	for _, m := range regexp.MustCompile(`(TAPPROOF_[A-Z0-9_]+)=`).FindAllStringSubmatch(string(b), -1) {
		if !servedEnv(t)[m[1]] {
			t.Errorf("tapproof.Dockerfile sets %s, which tapproof serve does not read", m[1])
		}
	}
}

// k8sObject is a Kubernetes object, decoded loosely.
type k8sObject struct {
	Kind     string         `yaml:"kind"`
	Metadata map[string]any `yaml:"metadata"`
	Spec     k8sSpec        `yaml:"spec"`
	file     string
}

type k8sSpec struct {
	Replicas    *int                   `yaml:"replicas"`
	ServiceName string                 `yaml:"serviceName"`
	ClusterIP   string                 `yaml:"clusterIP"`
	AccessModes []string               `yaml:"accessModes"`
	Ports       []k8sPort              `yaml:"ports"`
	Selector    any                    `yaml:"selector"`
	Strategy    *struct{ Type string } `yaml:"strategy"`
	Template    struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
	// A NetworkPolicy's.
	PodSelector *labelSelector `yaml:"podSelector"`
	PolicyTypes []string       `yaml:"policyTypes"`
	Ingress     []struct {
		From []struct {
			PodSelector       *labelSelector `yaml:"podSelector"`
			NamespaceSelector any            `yaml:"namespaceSelector"`
			IPBlock           any            `yaml:"ipBlock"`
		} `yaml:"from"`
		Ports []struct {
			Port any `yaml:"port"`
		} `yaml:"ports"`
	} `yaml:"ingress"`
}

// labelSelector is a Kubernetes label selector; these tests read only
// matchLabels, and refuse matchExpressions.
type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []any             `yaml:"matchExpressions"`
}

// selects reports whether s selects pods labelled labels.
func (s *labelSelector) selects(labels map[string]string) bool {
	if s == nil || len(s.MatchExpressions) > 0 {
		return false
	}
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

type k8sPort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort any    `yaml:"targetPort"`
}

type podSpec struct {
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
}

type kustomization struct {
	Resources       []string `yaml:"resources"`
	SecretGenerator []struct {
		Name string   `yaml:"name"`
		Envs []string `yaml:"envs"`
	} `yaml:"secretGenerator"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
}

func readKubernetes(t *testing.T) (kustomization, []k8sObject) {
	t.Helper()
	dir := "kubernetes"
	var k kustomization
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	var objs []k8sObject
	for _, r := range k.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			var o k8sObject
			if err := node.Decode(&o); err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			o.file = r
			objs = append(objs, o)
		}
	}
	return k, objs
}

func (o k8sObject) name() string { s, _ := o.Metadata["name"].(string); return s }

func TestKubernetes(t *testing.T) {
	k, objs := readKubernetes(t)
	dir := "kubernetes"

	// Generated config maps and secrets come from files that exist.
	generated := map[string]bool{}
	for _, g := range k.ConfigMapGenerator {
		generated[g.Name] = true
		for _, f := range g.Files {
			_, path, ok := strings.Cut(f, "=")
			if !ok {
				path = f
			}
			if _, err := os.Stat(filepath.Join(dir, path)); err != nil {
				t.Errorf("configMapGenerator %s: %v", g.Name, err)
			}
		}
	}
	secretKeys := map[string]map[string]bool{}
	for _, g := range k.SecretGenerator {
		generated[g.Name] = true
		secretKeys[g.Name] = map[string]bool{}
		for _, e := range g.Envs {
			// secrets.env is the operator's copy of the example.
			maps.Copy(secretKeys[g.Name], envFileKeys(t, filepath.Join(dir, e+".example")))
		}
	}
	for _, f := range []string{"../../dashboards/json/overview.json", "../../dashboards/json/compliance.json", "../../dashboards/json/operations.json"} {
		found := false
		for _, g := range k.ConfigMapGenerator {
			for _, file := range g.Files {
				found = found || strings.HasSuffix(file, "="+f)
			}
		}
		if !found {
			t.Errorf("kustomization.yaml does not put %s in a config map", f)
		}
	}

	services := map[string][]int{}
	headless := map[string]bool{}
	claims := map[string][]string{}
	for _, o := range objs {
		switch o.Kind {
		case "Service":
			for _, p := range o.Spec.Ports {
				services[o.name()] = append(services[o.name()], p.Port)
			}
			headless[o.name()] = o.Spec.ClusterIP == "None"
		case "PersistentVolumeClaim":
			claims[o.name()] = o.Spec.AccessModes
		}
	}

	workloads := map[string]k8sObject{}
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
			continue
		}
		workloads[o.name()] = o
		for _, c := range o.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("%s %s, container %s", o.Kind, o.name(), c.Name)
			if c.Name == "tapproof" {
				if !strings.HasPrefix(c.Image, "tapproof:") || !pinned.MatchString(c.Image) {
					t.Errorf("%s: image %q, want tapproof:VERSION", where, c.Image)
				}
			} else {
				checkImage(t, where, c.Image)
			}
			if c.ReadinessProbe == nil || c.LivenessProbe == nil {
				t.Errorf("%s: needs readiness and liveness probes", where)
			}
			for _, e := range c.Env {
				if r := e.ValueFrom; r != nil && r.SecretKeyRef != nil {
					if !secretKeys[r.SecretKeyRef.Name][r.SecretKeyRef.Key] {
						t.Errorf("%s: env %s from secret %s key %s, which secrets.env.example lacks", where, e.Name, r.SecretKeyRef.Name, r.SecretKeyRef.Key)
					}
				}
			}
		}
		for _, v := range o.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil && !generated[v.ConfigMap.Name] {
				t.Errorf("%s %s: volume %s from config map %s, which kustomization.yaml does not generate", o.Kind, o.name(), v.Name, v.ConfigMap.Name)
			}
			if v.PersistentVolumeClaim != nil {
				if _, ok := claims[v.PersistentVolumeClaim.ClaimName]; !ok {
					t.Errorf("%s %s: claim %s is not defined", o.Kind, o.name(), v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
	}
	for _, want := range []string{"nats", "influxdb", "postgres", "trillian-log-server", "trillian-log-signer", "tapproof", "prometheus", "grafana"} {
		if _, ok := workloads[want]; !ok {
			t.Errorf("no Deployment or StatefulSet %s", want)
		}
	}

	// tapproof: several replicas, probes on /healthz and /readyz, the
	// services it connects to, keys shared by every replica.
	tp, ok := workloads["tapproof"]
	if !ok || tp.Kind != "Deployment" {
		t.Fatalf("tapproof must be a Deployment")
	}
	if tp.Spec.Replicas == nil || *tp.Spec.Replicas < 2 {
		t.Errorf("tapproof: replicas %s, want at least 2", replicas(tp))
	}
	c := tp.Spec.Template.Spec.Containers[0]
	if len(c.Ports) == 0 || fmt.Sprint(c.Ports[0].ContainerPort) != apiPort {
		t.Errorf("tapproof: container ports %+v, want %s", c.Ports, apiPort)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		t.Errorf("tapproof: readiness probe %+v, want GET /readyz", p)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("tapproof: liveness probe %+v, want GET /healthz", p)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "(secret)"
		}
	}
	checkTapproofEnv(t, "Deployment tapproof", env)
	for k, hostPort := range map[string]string{
		"TAPPROOF_NATS_URL":   "nats:" + natsPort,
		"TAPPROOF_TRILLIAN":   "trillian-log-server:8090",
		"TAPPROOF_INFLUX_URL": "influxdb:8086",
	} {
		if !strings.HasSuffix(env[k], hostPort) && !strings.Contains(env[k], "//"+hostPort) {
			t.Errorf("Deployment tapproof: %s = %q, want %s", k, env[k], hostPort)
		}
		host, port, _ := strings.Cut(hostPort, ":")
		if !slices.Contains(services[host], atoi(port)) {
			t.Errorf("Deployment tapproof: %s points at %s, which no Service serves (services: %v)", k, hostPort, services)
		}
	}
	keys := filepath.Join(env["TAPPROOF_DATA"], "keys")
	shared := false
	for _, m := range c.VolumeMounts {
		if m.MountPath != keys {
			continue
		}
		for _, v := range tp.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil && slices.Contains(claims[v.PersistentVolumeClaim.ClaimName], "ReadWriteMany") {
				shared = true
			}
		}
	}
	if !shared {
		t.Errorf("Deployment tapproof: %s must be a ReadWriteMany volume, so that every replica has the log signing keys", keys)
	}

	// NATS: a cluster of three, whose servers find each other's routes
	// through a headless Service.
	ns := workloads["nats"]
	if ns.Kind != "StatefulSet" || ns.Spec.Replicas == nil || *ns.Spec.Replicas != 3 {
		t.Errorf("nats: %s with replicas %s, want a StatefulSet of 3", ns.Kind, replicas(ns))
	}
	if !headless[ns.Spec.ServiceName] || !slices.Contains(services[ns.Spec.ServiceName], 6222) {
		t.Errorf("nats: serviceName %q, want a headless Service with the route port 6222 (services: %v)", ns.Spec.ServiceName, services)
	}
	routes := false
	for _, c := range ns.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			routes = routes || p.ContainerPort == 6222
		}
	}
	if !routes {
		t.Errorf("nats: no container port 6222 for the cluster's routes")
	}

	// One Trillian signer: it runs with --force_master.
	if s := workloads["trillian-log-signer"]; s.Spec.Replicas == nil || *s.Spec.Replicas != 1 || s.Spec.Strategy == nil || s.Spec.Strategy.Type != "Recreate" {
		t.Errorf("trillian-log-signer: replicas %s, strategy %+v; want exactly one replica, replaced with Recreate", replicas(s), s.Spec.Strategy)
	}

	// Grafana gets every variable its provisioning uses, and mounts the
	// dashboards where the provider reads them.
	g := workloads["grafana"].Spec.Template.Spec.Containers[0]
	genv := map[string]string{}
	for _, e := range g.Env {
		genv[e.Name] = e.Value
	}
	checkGrafanaEnv(t, "Deployment grafana", genv)
	_, path := grafanaProvisioning(t)
	found := false
	for _, m := range g.VolumeMounts {
		found = found || m.MountPath == path
	}
	if !found {
		t.Errorf("Deployment grafana: nothing mounted at %s, where the dashboards provider reads", path)
	}

	// The same components run the same versions as in compose.
	cf, _ := readCompose(t)
	for name, w := range workloads {
		if name == "tapproof" {
			continue
		}
		if s, ok := cf.Services[name]; ok && s.Image != w.Spec.Template.Spec.Containers[0].Image {
			t.Errorf("%s: image %s, but compose runs %s", name, w.Spec.Template.Spec.Containers[0].Image, s.Image)
		}
	}
}

// TestKubernetesTrillianPolicy: NetworkPolicies admit to the Trillian log
// server's gRPC port tapproof's pods only, to the Trillian servers' other
// ports Prometheus only, and to PostgreSQL the Trillian servers only. A
// policy's rules add up, so every policy selecting those pods is checked,
// and every peer is a pod selector in the namespace matching an actual
// workload (no ipBlock, no namespaceSelector, no rule without from).
func TestKubernetesTrillianPolicy(t *testing.T) {
	_, objs := readKubernetes(t)
	pods := map[string]map[string]string{} // workload -> pod labels
	for _, o := range objs {
		if o.Kind == "Deployment" || o.Kind == "StatefulSet" {
			pods[o.name()] = o.Spec.Template.Metadata.Labels
		}
	}
	type peer struct {
		workload string
		port     int // 0: any port
	}
	allowed := map[string][]peer{
		"trillian-log-server": {{"tapproof", 8090}, {"prometheus", 8091}},
		"trillian-log-signer": {{"prometheus", 8091}},
		"postgres":            {{"trillian-log-server", 5432}, {"trillian-log-signer", 5432}},
	}
	must := map[string][]peer{
		"trillian-log-server": {{"tapproof", 8090}},
		"postgres":            {{"trillian-log-server", 5432}, {"trillian-log-signer", 5432}},
	}
	for protected, ok := range allowed {
		labels, found := pods[protected]
		if !found {
			t.Errorf("no workload %s", protected)
			continue
		}
		admitted := map[peer]bool{}
		policies := 0
		for _, o := range objs {
			if o.Kind != "NetworkPolicy" || !o.Spec.PodSelector.selects(labels) {
				continue
			}
			where := "NetworkPolicy " + o.name()
			if !slices.Contains(o.Spec.PolicyTypes, "Ingress") {
				continue // restricts nothing coming in
			}
			policies++
			for _, rule := range o.Spec.Ingress {
				if len(rule.From) == 0 {
					t.Errorf("%s: a rule without from admits every source to %s", where, protected)
				}
				var ports []int
				for _, p := range rule.Ports {
					n, isInt := p.Port.(int)
					if !isInt {
						t.Errorf("%s: port %v, want a number", where, p.Port)
					}
					ports = append(ports, n)
				}
				if len(ports) == 0 {
					ports = []int{0}
				}
				for _, from := range rule.From {
					if from.IPBlock != nil || from.NamespaceSelector != nil || from.PodSelector == nil {
						t.Errorf("%s: admits %+v to %s, want only pod selectors in the namespace", where, from, protected)
						continue
					}
					matched := false
					for w, l := range pods {
						if !from.PodSelector.selects(l) {
							continue
						}
						matched = true
						for _, port := range ports {
							p := peer{w, port}
							if !slices.Contains(ok, p) {
								t.Errorf("%s admits %s to %s on port %d (0: any); allowed: %v", where, w, protected, port, ok)
							}
							admitted[p] = true
						}
					}
					if !matched {
						t.Errorf("%s: selector %v matches no workload's pods", where, from.PodSelector.MatchLabels)
					}
				}
			}
		}
		if policies == 0 {
			t.Errorf("no NetworkPolicy restricts ingress to %s: every pod in the cluster can reach it", protected)
		}
		for _, p := range must[protected] {
			if !admitted[p] {
				t.Errorf("%s: %s is not admitted on port %d, and needs to be", protected, p.workload, p.port)
			}
		}
	}
}

func replicas(o k8sObject) string {
	if o.Spec.Replicas == nil {
		return "unset (1)"
	}
	return fmt.Sprint(*o.Spec.Replicas)
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// TestPrometheusScrapeConfigs checks that every scrape configuration
// scrapes tapproof under the job name the alerting rules select, and loads
// the rules.
func TestPrometheusScrapeConfigs(t *testing.T) {
	type config struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	for file, target := range map[string]string{
		filepath.Join("prometheus", "prometheus.yml"): "127.0.0.1:" + apiPort,
		filepath.Join("compose", "prometheus.yml"):    "tapproof:" + apiPort,
		filepath.Join("kubernetes", "prometheus.yml"): "tapproof-pods:" + apiPort,
	} {
		var c config
		readYAML(t, file, &c)
		found := false
		for _, sc := range c.ScrapeConfigs {
			if sc.JobName != "tapproof" {
				continue
			}
			if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
				t.Errorf("%s: tapproof metrics_path %s", file, sc.MetricsPath)
			}
			for _, s := range sc.StaticConfigs {
				found = found || slices.Contains(s.Targets, target)
			}
			for _, d := range sc.DNSSDConfigs {
				for _, n := range d.Names {
					found = found || fmt.Sprintf("%s:%d", n, d.Port) == target
				}
			}
		}
		if !found {
			t.Errorf("%s: no job tapproof scraping %s", file, target)
		}
		if len(c.RuleFiles) != 1 || filepath.Base(c.RuleFiles[0]) != "alerts.yml" {
			t.Errorf("%s: rule_files %v, want alerts.yml", file, c.RuleFiles)
		}
	}
}

// promtool returns the path of promtool, or skips the test when it is not
// installed, except in CI, where it must be (scripts/deps.sh installs
// Debian's prometheus package).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found; CI must install Debian's prometheus package (scripts/deps.sh)")
		}
		t.Skip("promtool not found; install Debian's prometheus package to check the rules")
	}
	return p
}

// TestPromtool checks the configurations and rules with promtool and runs
// the rules' unit tests.
func TestPromtool(t *testing.T) {
	bin := promtool(t)
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
		}
	}
	run("prometheus", "check", "config", "prometheus.yml")
	run("prometheus", "check", "rules", "alerts.yml")
	run("prometheus", "test", "rules", "alerts_test.yml")
	// These name the rules by their path inside the container.
	run("compose", "check", "config", "--syntax-only", "prometheus.yml")
	run("kubernetes", "check", "config", "--syntax-only", "prometheus.yml")
}

// TestCheckScript keeps deploy/prometheus/check.sh working.
func TestCheckScript(t *testing.T) {
	promtool(t)
	out, err := exec.Command("bash", filepath.Join("prometheus", "check.sh")).CombinedOutput()
	if err != nil {
		t.Errorf("check.sh: %v\n%s", err, out)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
