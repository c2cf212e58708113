package e2e

// Tests of deploy/: the kustomize base, components and overlays, the Helm
// chart and the kubeadm sidecar patch. Every rendering is applied to the
// suite's real kube-apiserver with server-side dry-run in namespace
// "frontgate", which is labelled to warn about anything PodSecurity
// "restricted" forbids, and a warning fails the test. The CRDs of the custom
// resources (ServiceMonitor, PrometheusRule, cert-manager Issuer and
// Certificate) are installed first, from the modules pinned in
// test/tools/helm/crds, so those objects are checked against their real
// schemas too.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/frontgate/frontgate/test/cluster"
)

// deployNamespace is the namespace deploy/ installs into.
const deployNamespace = "frontgate"

// deployImage is the image every manifest runs, without its tag.
const deployImage = "ghcr.io/frontgate/frontgate"

// needsMetric are metrics the alerts and the dashboard use that frontgate
// does not export yet (they are not in README's Metrics table).
var needsMetric = []string{
	"frontgate_certificate_expiry_timestamp_seconds",
}

// deployCRDs are the CRD files installed before the dry-runs, by module
// (pinned in test/tools/helm/crds/go.mod) and path inside it.
var deployCRDs = map[string][]string{
	"github.com/prometheus-operator/prometheus-operator": {
		"example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
		"example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
	},
	"github.com/cert-manager/cert-manager": {
		"deploy/crds/cert-manager.io_issuers.yaml",
		"deploy/crds/cert-manager.io_certificates.yaml",
	},
}

// deployTools is what every deploy test needs, prepared once.
type deployTools struct {
	root        string // the module root
	helm        string // the helm binary
	helmHome    string // HELM_*_HOME for every helm run
	kubeVersion string // kube-apiserver's version, for helm --kube-version
	appVersion  string // the chart's appVersion, the image tag
}

var (
	deployOnce    sync.Once
	deployShared  *deployTools
	deploySetupEr error
)

// deploySetup returns the shared deploy tools, preparing the cluster on first
// use: the namespace, kube-system's default service account (the static Pod
// needs one; no controller-manager runs here to create it) and the CRDs.
func deploySetup(t *testing.T) *deployTools {
	t.Helper()
	need(t)
	deployOnce.Do(func() {
		c, cancel := context.WithTimeout(context.Background(), 3*commandTimeout)
		defer cancel()
		deployShared, deploySetupEr = prepareDeploy(c)
	})
	if deploySetupEr != nil {
		t.Fatalf("preparing the deploy tests: %v", deploySetupEr)
	}
	return deployShared
}

func prepareDeploy(ctx context.Context) (*deployTools, error) {
	root, err := cluster.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	d := &deployTools{root: root, helm: filepath.Join(env.Tools.Dir, "helm")}
	if st, err := os.Stat(d.helm); err != nil || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("no helm binary at %s: build it with test/tools/install.sh", d.helm)
	}
	if d.helmHome, err = os.MkdirTemp(env.Dir, "helm-home-"); err != nil {
		return nil, err
	}

	// kube-apiserver built from the module proxy reports v0.0.0, so take the
	// version the tools module pins.
	gomod, err := os.ReadFile(filepath.Join(root, "test/tools/k8s/go.mod"))
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v[0-9][^\s]*)`).FindSubmatch(gomod)
	if m == nil {
		return nil, errors.New("test/tools/k8s/go.mod does not require k8s.io/kubernetes")
	}
	d.kubeVersion = string(m[1])

	chart, err := os.ReadFile(filepath.Join(root, "deploy/helm/frontgate/Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart, &meta); err != nil || meta.AppVersion == "" {
		return nil, fmt.Errorf("Chart.yaml: no appVersion (%v)", err)
	}
	d.appVersion = meta.AppVersion

	setup := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: kube-system
`, deployNamespace)
	if _, stderr, err := runCommand(ctx, strings.NewReader(setup), "", env.Tools.Kubectl, "--kubeconfig", env.AdminKubeconfig, "apply", "-f", "-"); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w\n%s", deployNamespace, err, stderr)
	}

	args := []string{"--kubeconfig", env.AdminKubeconfig, "apply", "--server-side", "--field-manager", "frontgate-e2e"}
	var names []string
	for _, mod := range slices.Sorted(maps.Keys(deployCRDs)) {
		dir, err := moduleDir(ctx, filepath.Join(root, "test/tools/helm/crds"), mod)
		if err != nil {
			return nil, err
		}
		for _, f := range deployCRDs[mod] {
			args = append(args, "-f", filepath.Join(dir, f))
			// group_plural.yaml holds CRD plural.group.
			group, plural, _ := strings.Cut(strings.TrimSuffix(path.Base(f), ".yaml"), "_")
			names = append(names, "crd/"+plural+"."+group)
		}
	}
	if _, stderr, err := runCommand(ctx, nil, "", env.Tools.Kubectl, args...); err != nil {
		return nil, fmt.Errorf("installing CRDs: %w\n%s", err, stderr)
	}
	wait := append([]string{"--kubeconfig", env.AdminKubeconfig, "wait", "--for", "condition=Established", "--timeout", "60s"}, names...)
	if _, stderr, err := runCommand(ctx, nil, "", env.Tools.Kubectl, wait...); err != nil {
		return nil, fmt.Errorf("waiting for the CRDs: %w\n%s", err, stderr)
	}
	return d, nil
}

// moduleDir returns where the Go module cache holds mod at the version the
// module in dir requires, downloading it (and checking go.sum) if needed.
func moduleDir(ctx context.Context, dir, mod string) (string, error) {
	out, stderr, err := runCommand(ctx, nil, dir, "go", "mod", "download", "-json", mod)
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w\n%s%s", mod, err, out, stderr)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download -json %s: no directory in %s (%v %s)", mod, out, err, m.Error)
	}
	return m.Dir, nil
}

// runCommand runs a command in dir (empty: the current one) and returns its
// stdout and stderr.
func runCommand(ctx context.Context, stdin io.Reader, dir, name string, args ...string) ([]byte, []byte, error) {
	c, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(c, name, args...)
	cmd.Dir, cmd.Stdin, cmd.Stdout, cmd.Stderr = dir, stdin, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), stderr.Bytes(), fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return stdout.Bytes(), stderr.Bytes(), nil
}

// kustomize renders the kustomization in deploy/dir.
func (d *deployTools) kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	out, stderr, err := runCommand(t.Context(), nil, "", env.Tools.Kubectl, "kustomize", filepath.Join(d.root, "deploy", dir))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	return out
}

// helmCommand runs helm with its own empty home directories.
func (d *deployTools) helmCommand(ctx context.Context, args ...string) ([]byte, []byte, error) {
	c, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(c, d.helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(d.helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(d.helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(d.helmHome, "data"))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// chartDir is the chart's directory.
func (d *deployTools) chartDir() string { return filepath.Join(d.root, "deploy/helm/frontgate") }

// helmTemplate renders the chart as release "frontgate" in the deploy
// namespace for the cluster's Kubernetes version, with extra helm arguments
// (-f, --set); it returns the output and helm's error.
func (d *deployTools) helmTemplate(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	out, stderr, err := d.helmCommand(t.Context(), append([]string{"template", "frontgate", d.chartDir(),
		"--namespace", deployNamespace, "--kube-version", d.kubeVersion}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %w\n%s", strings.Join(args, " "), err, stderr)
	}
	return out, nil
}

// mustHelmTemplate is helmTemplate that fails the test on error.
func (d *deployTools) mustHelmTemplate(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := d.helmTemplate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ciValues returns the chart's ci/*-values.yaml files by the overlay name
// they match.
func (d *deployTools) ciValues(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(d.chartDir(), "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml in the chart (%v)", err)
	}
	m := map[string]string{}
	for _, f := range files {
		m[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = f
	}
	return m
}

// dryRun applies manifests to kube-apiserver with server-side dry-run and
// strict field validation, and fails the test on any error or warning
// (PodSecurity, deprecated API, unknown field) and unless every object was
// accepted.
func dryRun(t *testing.T, manifests []byte) {
	t.Helper()
	objs := decodeObjects(t, manifests)
	if len(objs) == 0 {
		t.Fatal("nothing to apply")
	}
	out, stderr, err := runCommand(t.Context(), bytes.NewReader(manifests), "", env.Tools.Kubectl,
		"--kubeconfig", env.AdminKubeconfig, "--cache-dir", filepath.Join(env.Dir, "kubectl-cache"),
		"apply", "--dry-run=server", "--validate=strict", "-f", "-")
	if err != nil {
		t.Fatalf("kube-apiserver refused the manifests: %v\n%s%s", err, out, stderr)
	}
	if bytes.Contains(stderr, []byte("Warning")) {
		t.Errorf("kube-apiserver warned:\n%s", stderr)
	}
	if n := bytes.Count(out, []byte("(server dry run)")); n != len(objs) {
		t.Errorf("kube-apiserver accepted %d objects, want %d:\n%s", n, len(objs), out)
	}
}

// kobject is one decoded Kubernetes object.
type kobject = map[string]any

// decodeObjects splits a multi-document YAML stream into objects.
func decodeObjects(t *testing.T, data []byte) []kobject {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []kobject
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("reading YAML: %v", err)
		}
		var o kobject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("decoding YAML: %v\n%s", err, doc)
		}
		if len(o) > 0 {
			objs = append(objs, o)
		}
	}
}

// objectKey names an object: Kind/namespace/name.
func objectKey(o kobject) string {
	return fmt.Sprintf("%s/%s/%s", o["kind"], field(o, "metadata", "namespace"), field(o, "metadata", "name"))
}

// field walks nested maps; nil when any step is missing.
func field(o any, keys ...string) any {
	for _, k := range keys {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[k]
	}
	return o
}

// ofKind returns the objects of kind, decoded into T.
func ofKind[T any](t *testing.T, objs []kobject, kind string) []T {
	t.Helper()
	var out []T
	for _, o := range objs {
		if o["kind"] != kind {
			continue
		}
		data, _ := json.Marshal(o)
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("decoding %s: %v", objectKey(o), err)
		}
		out = append(out, v)
	}
	return out
}

// kustomizations returns every kustomization under deploy/ that builds on
// its own (kind Kustomization, not Component), as paths below deploy/.
func (d *deployTools) kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	deployDir := filepath.Join(d.root, "deploy")
	err := filepath.WalkDir(deployDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Name() != "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var k struct{ Kind string }
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if k.Kind == "Kustomization" {
			rel, _ := filepath.Rel(deployDir, filepath.Dir(p))
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kustomize/base", "kustomize/overlays/ingress", "kustomize/overlays/loadbalancer", "sidecar"} {
		if !slices.Contains(dirs, want) {
			t.Errorf("deploy/%s is missing; found %v", want, dirs)
		}
	}
	return dirs
}

// TestDeployKustomize: every kustomization under deploy/ (base, overlays,
// sidecar) renders with the pinned kubectl, and kube-apiserver accepts every
// object it renders.
func TestDeployKustomize(t *testing.T) {
	d := deploySetup(t)
	for _, dir := range d.kustomizations(t) {
		t.Run(dir, func(t *testing.T) {
			dryRun(t, d.kustomize(t, dir))
		})
	}
}

// TestDeployHelm: the chart passes helm lint --strict with its defaults and
// every ci/ values file, and kube-apiserver accepts what it renders with
// those and with values that take the templates' other branches.
func TestDeployHelm(t *testing.T) {
	d := deploySetup(t)
	valueSets := map[string][]string{"defaults": nil}
	for name, f := range d.ciValues(t) {
		valueSets["ci/"+name] = []string{"-f", f}
	}
	valueSets["other branches"] = []string{
		"--set", "fullnameOverride=gate",
		"--set", "image.digest=sha256:" + strings.Repeat("ab", 32),
		"--set", "podAntiAffinity=hard",
		"--set", "upstreamCA.configMapName=",
		"--set", "service.type=LoadBalancer",
		"--set", "service.loadBalancerSourceRanges={10.0.0.0/8}",
		"--set", "podDisruptionBudget.enabled=false",
		"--set", "networkPolicy.enabled=false",
		"--set", "serviceAccount.annotations.example\\.com/owner=platform",
		"--set", "preStopSleepSeconds=0",
		"--set", "priorityClassName=system-cluster-critical",
		"--set", "config.oidc-required-claim.hd=example.com",
		"--set-json", `extraVolumes=[{"name":"issuer-ca","configMap":{"name":"issuer-ca"}}]`,
		"--set-json", `extraVolumeMounts=[{"name":"issuer-ca","mountPath":"/etc/frontgate/issuer-ca","readOnly":true}]`,
		"--set", "config.oidc-ca-file=/etc/frontgate/issuer-ca/ca.crt",
		"--set", "certManager.enabled=true",
		"--set", "certManager.proxyClient.issuerRef.name=vault",
		"--set", "certManager.proxyClient.issuerRef.kind=ClusterIssuer",
		"--set", "certManager.serving.issuerRef.name=letsencrypt",
		"--set", "certManager.serving.issuerRef.kind=ClusterIssuer",
		"--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.serviceMonitor.labels.release=prometheus",
		"--set", "metrics.prometheusRule.enabled=true",
		"--set", "metrics.prometheusRule.certificateExpiryWarningSeconds=604800",
		"--set", "metrics.dashboard.enabled=true",
	}
	for _, name := range slices.Sorted(maps.Keys(valueSets)) {
		args := valueSets[name]
		t.Run(name, func(t *testing.T) {
			lint := append([]string{"lint", "--strict", d.chartDir(), "--namespace", deployNamespace, "--kube-version", d.kubeVersion}, args...)
			if out, stderr, err := d.helmCommand(t.Context(), lint...); err != nil {
				t.Errorf("helm lint: %v\n%s%s", err, out, stderr)
			}
			dryRun(t, d.mustHelmTemplate(t, args...))
		})
	}
}

// TestDeployHelmSchema: values.schema.json refuses values that cannot work,
// before anything is rendered.
func TestDeployHelmSchema(t *testing.T) {
	d := deploySetup(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a setting the chart owns", []string{"--set", "config.tls-cert-file=/x"}, "tls-cert-file"},
		{"the listen address", []string{"--set", "config.listen=:9443"}, "listen"},
		{"no issuer", []string{"--set", "config.oidc-issuer-url=null"}, "oidc-issuer-url"},
		{"an issuer that is not a URL", []string{"--set", "config.oidc-issuer-url=login.example.com"}, "oidc-issuer-url"},
		{"an unknown log format", []string{"--set", "config.log-format=xml"}, "log-format"},
		{"a signing algorithm frontgate never accepts", []string{"--set", "config.oidc-signing-algs={HS256}"}, "oidc-signing-algs"},
		{"a malformed duration", []string{"--set", "config.token-cache-ttl=ten"}, "token-cache-ttl"},
		{"replicas that are not a number", []string{"--set", "replicaCount=two"}, "replicaCount"},
		{"an unknown value", []string{"--set", "replicas=3"}, "replicas"},
		{"an unknown anti-affinity", []string{"--set", "podAntiAffinity=always"}, "podAntiAffinity"},
		{"a malformed digest", []string{"--set", "image.digest=latest"}, "digest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := d.helmTemplate(t, tc.args...)
			if err == nil {
				t.Fatalf("helm template %s succeeded, want a schema error:\n%s", strings.Join(tc.args, " "), out)
			}
			mustContain(t, "helm's error", err.Error(), "schema", tc.want)
		})
	}
}

// TestDeployHelmMatchesKustomize: the chart's defaults render the same
// objects as the kustomize base, and each ci/<name>-values.yaml the same as
// overlay <name>, apart from the labels only Helm adds, the config checksum
// annotation (kustomize rolls pods by hashing the ConfigMap's name instead)
// and that hash suffix.
func TestDeployHelmMatchesKustomize(t *testing.T) {
	d := deploySetup(t)
	pairs := map[string][]string{"kustomize/base": nil}
	for name, f := range d.ciValues(t) {
		pairs["kustomize/overlays/"+name] = []string{"-f", f}
	}
	for _, dir := range slices.Sorted(maps.Keys(pairs)) {
		t.Run(dir, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(d.root, "deploy", dir)); err != nil {
				t.Fatalf("the chart has ci values for %s, but there is no such overlay: %v", dir, err)
			}
			helmObjs := normalizeObjects(t, decodeObjects(t, d.mustHelmTemplate(t, pairs[dir]...)))
			kustomized := d.kustomize(t, dir)
			kustomized = unhashConfigMapNames(t, kustomized, helmObjs)
			kustomizeObjs := normalizeObjects(t, decodeObjects(t, kustomized))
			for _, k := range slices.Sorted(maps.Keys(kustomizeObjs)) {
				if _, ok := helmObjs[k]; !ok {
					t.Errorf("%s: kustomize renders it, helm does not", k)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(helmObjs)) {
				k8s, ok := kustomizeObjs[k]
				if !ok {
					t.Errorf("%s: helm renders it, kustomize does not", k)
					continue
				}
				if !reflect.DeepEqual(helmObjs[k], k8s) {
					t.Errorf("%s differs (- kustomize, + helm):\n%s", k, jsonDiff(k8s, helmObjs[k]))
				}
			}
		})
	}
}

// kustomizeHash matches the content-hash suffix kustomize gives generated
// ConfigMap names.
var kustomizeHash = regexp.MustCompile(`^(.+)-[a-z0-9]{10}$`)

// unhashConfigMapNames replaces, throughout the kustomize output, each
// hash-suffixed ConfigMap name whose unsuffixed form Helm renders.
func unhashConfigMapNames(t *testing.T, kustomized []byte, helmObjs map[string]kobject) []byte {
	t.Helper()
	for _, o := range decodeObjects(t, kustomized) {
		name, _ := field(o, "metadata", "name").(string)
		m := kustomizeHash.FindStringSubmatch(name)
		if o["kind"] != "ConfigMap" || m == nil {
			continue
		}
		if _, ok := helmObjs[fmt.Sprintf("ConfigMap/%s/%s", field(o, "metadata", "namespace"), m[1])]; ok {
			kustomized = bytes.ReplaceAll(kustomized, []byte(name), []byte(m[1]))
		}
	}
	return kustomized
}

// normalizeObjects keys objects by Kind/namespace/name and removes what only
// one of the two tools adds; the --config file is compared as YAML.
func normalizeObjects(t *testing.T, objs []kobject) map[string]kobject {
	t.Helper()
	out := map[string]kobject{}
	for _, o := range objs {
		if labels, ok := field(o, "metadata", "labels").(map[string]any); ok {
			for _, l := range []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"} {
				delete(labels, l)
			}
		}
		if tmpl, ok := field(o, "spec", "template", "metadata").(map[string]any); ok {
			if ann, ok := tmpl["annotations"].(map[string]any); ok {
				delete(ann, "checksum/config")
				if len(ann) == 0 {
					delete(tmpl, "annotations")
				}
			}
		}
		if o["kind"] == "ConfigMap" {
			if data, ok := o["data"].(map[string]any); ok {
				if s, ok := data["config.yaml"].(string); ok {
					var parsed any
					if err := yaml.Unmarshal([]byte(s), &parsed); err != nil {
						t.Fatalf("%s: config.yaml: %v", objectKey(o), err)
					}
					data["config.yaml"] = parsed
				}
			}
		}
		k := objectKey(o)
		if _, dup := out[k]; dup {
			t.Errorf("%s rendered twice", k)
		}
		out[k] = o
	}
	return out
}

// jsonDiff returns a line diff of two values as indented JSON.
func jsonDiff(a, b any) string {
	ja, _ := json.MarshalIndent(a, "", "  ")
	jb, _ := json.MarshalIndent(b, "", "  ")
	x, y := strings.Split(string(ja), "\n"), strings.Split(string(jb), "\n")
	// Longest common subsequence, then walk it.
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&sb, "+ %s\n", y[j])
			j++
		default:
			fmt.Fprintf(&sb, "- %s\n", x[i])
			i++
		}
	}
	return sb.String()
}

// TestDeployGatewayHardening: every gateway rendering (chart defaults, each
// ci values file, each kustomize overlay) has what the issue asks of the
// workload — two replicas spread over nodes, a PodDisruptionBudget, resource
// requests, /healthz and /readyz probes, non-root, read-only root, no
// privilege escalation, no capabilities, seccomp RuntimeDefault — and no RBAC
// at all: no Role or binding, no service account token. Every file the
// --config file names is on a read-only mount.
func TestDeployGatewayHardening(t *testing.T) {
	d := deploySetup(t)
	renders := map[string][]byte{"helm defaults": d.mustHelmTemplate(t)}
	for name, f := range d.ciValues(t) {
		renders["helm ci/"+name] = d.mustHelmTemplate(t, "-f", f)
	}
	for _, dir := range d.kustomizations(t) {
		if strings.HasPrefix(dir, "kustomize/") {
			renders[dir] = d.kustomize(t, dir)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(renders)) {
		t.Run(name, func(t *testing.T) {
			objs := decodeObjects(t, renders[name])
			for _, o := range objs {
				switch o["kind"] {
				case "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
					t.Errorf("%s: frontgate needs no RBAC", objectKey(o))
				}
			}
			sas := ofKind[corev1.ServiceAccount](t, objs, "ServiceAccount")
			if len(sas) != 1 || sas[0].AutomountServiceAccountToken == nil || *sas[0].AutomountServiceAccountToken {
				t.Errorf("want one ServiceAccount with automountServiceAccountToken: false, got %+v", sas)
			}
			deps := ofKind[appsv1.Deployment](t, objs, "Deployment")
			if len(deps) != 1 {
				t.Fatalf("want one Deployment, got %d", len(deps))
			}
			checkGatewayDeployment(t, d, deps[0], configFile(t, objs))
			checkSelects(t, objs, deps[0].Spec.Template.Labels)
		})
	}
}

// configFile returns the --config file in the rendered ConfigMap.
func configFile(t *testing.T, objs []kobject) map[string]any {
	t.Helper()
	for _, cm := range ofKind[corev1.ConfigMap](t, objs, "ConfigMap") {
		if s, ok := cm.Data["config.yaml"]; ok {
			var m map[string]any
			if err := yaml.Unmarshal([]byte(s), &m); err != nil {
				t.Fatalf("ConfigMap %s: config.yaml: %v", cm.Name, err)
			}
			return m
		}
	}
	t.Fatal("no ConfigMap holds config.yaml")
	return nil
}

func checkGatewayDeployment(t *testing.T, d *deployTools, dep appsv1.Deployment, config map[string]any) {
	t.Helper()
	spec := dep.Spec.Template.Spec
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", dep.Spec.Replicas)
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("want a preferred pod anti-affinity across kubernetes.io/hostname, got %+v", spec.Affinity)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token; frontgate needs none")
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	if want := deployImage + ":" + d.appVersion; c.Image != want {
		t.Errorf("image %q, want %q", c.Image, want)
	}
	checkContainerHardening(t, c, true)
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("want CPU and memory requests, got %v", c.Resources.Requests)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for probe, want := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if want == nil || want.HTTPGet == nil || want.HTTPGet.Path != probe || want.HTTPGet.Port.String() != "metrics" {
			t.Errorf("want a probe on %s at port metrics, got %+v", probe, want)
		}
	}
	if got, want := config["listen"], fmt.Sprintf(":%d", ports["https"]); got != want {
		t.Errorf("config listen %v, but container port https is %s", got, want)
	}
	if got, want := config["metrics-listen"], fmt.Sprintf(":%d", ports["metrics"]); got != want {
		t.Errorf("config metrics-listen %v, but container port metrics is %s", got, want)
	}
	var args []string
	args = append(args, c.Command...)
	args = append(args, c.Args...)
	var configPath string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "--config="); ok {
			configPath = p
		}
	}
	if configPath == "" {
		t.Fatalf("frontgate is not started with --config: %q", args)
	}
	checkMounted(t, c, configPath)
	for _, key := range []string{"tls-cert-file", "tls-private-key-file", "proxy-client-cert-file", "proxy-client-key-file", "upstream-ca-file"} {
		p, _ := config[key].(string)
		if p == "" {
			t.Errorf("config has no %s", key)
			continue
		}
		checkMounted(t, c, p)
	}
}

// checkContainerHardening checks a frontgate container's securityContext.
func checkContainerHardening(t *testing.T, c corev1.Container, nonRoot bool) {
	t.Helper()
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("privileged")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem is not true")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
	case nonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot):
		t.Error("runAsNonRoot is not true")
	}
}

// checkMounted fails unless file is on a read-only volume mount of c.
func checkMounted(t *testing.T, c corev1.Container, file string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if file == m.MountPath || strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			if !m.ReadOnly {
				t.Errorf("%s is on mount %s, which is not read-only", file, m.MountPath)
			}
			return
		}
	}
	t.Errorf("%s is not on any volume mount of container %s", file, c.Name)
}

// checkSelects: the PodDisruptionBudget, the NetworkPolicy and both Services
// select the Deployment's pods.
func checkSelects(t *testing.T, objs []kobject, podLabels map[string]string) {
	t.Helper()
	matches := func(sel map[string]any) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return true
	}
	want := map[string]int{"PodDisruptionBudget": 1, "NetworkPolicy": 1, "Service": 2}
	got := map[string]int{}
	for _, o := range objs {
		var sel any
		switch o["kind"] {
		case "PodDisruptionBudget":
			sel = field(o, "spec", "selector", "matchLabels")
		case "NetworkPolicy":
			sel = field(o, "spec", "podSelector", "matchLabels")
		case "Service":
			sel = field(o, "spec", "selector")
		default:
			continue
		}
		if m, ok := sel.(map[string]any); ok && matches(m) {
			got[o["kind"].(string)]++
		} else {
			t.Errorf("%s does not select frontgate's pods (%v)", objectKey(o), sel)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("objects selecting frontgate's pods: %v, want %v", got, want)
	}
}

// TestDeploySidecar: the kubeadm patch adds a hardened frontgate container
// and leaves kubeadm's kube-apiserver container untouched; every file the
// sidecar's config.yaml names is mounted; the patch directory holds only
// files kubeadm --patches reads; and cluster-configuration.yaml carries
// exactly the extraArgs `frontgate flags --format kubeadm` prints for
// kubeadm's front-proxy files, plus the 127.0.0.1 SAN the upstream URL needs.
func TestDeploySidecar(t *testing.T) {
	d := deploySetup(t)
	dir := filepath.Join(d.root, "deploy/sidecar")

	ref, err := os.ReadFile(filepath.Join(dir, "kube-apiserver.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	refPods := ofKind[corev1.Pod](t, decodeObjects(t, ref), "Pod")
	pods := ofKind[corev1.Pod](t, decodeObjects(t, d.kustomize(t, "sidecar")), "Pod")
	if len(pods) != 1 || len(refPods) != 1 {
		t.Fatalf("want one Pod rendered and one reference, got %d and %d", len(pods), len(refPods))
	}
	pod := pods[0]
	var apiserver, fg *corev1.Container
	for i := range pod.Spec.Containers {
		switch c := &pod.Spec.Containers[i]; c.Name {
		case "kube-apiserver":
			apiserver = c
		case "frontgate":
			fg = c
		}
	}
	if apiserver == nil || fg == nil || len(pod.Spec.Containers) != 2 {
		t.Fatalf("want containers kube-apiserver and frontgate, got %d containers", len(pod.Spec.Containers))
	}
	if !reflect.DeepEqual(*apiserver, refPods[0].Spec.Containers[0]) {
		t.Errorf("the patch changed the kube-apiserver container:\n%s", jsonDiff(refPods[0].Spec.Containers[0], *apiserver))
	}
	if want := deployImage + ":" + d.appVersion; fg.Image != want {
		t.Errorf("sidecar image %q, want %q (the chart's appVersion)", fg.Image, want)
	}
	checkContainerHardening(t, *fg, false)
	if fg.LivenessProbe == nil || fg.LivenessProbe.HTTPGet == nil || fg.LivenessProbe.HTTPGet.Path != "/healthz" ||
		fg.ReadinessProbe == nil || fg.ReadinessProbe.HTTPGet == nil || fg.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("want probes on /healthz and /readyz")
	}

	configData, err := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]any
	if err := yaml.Unmarshal(configData, &config); err != nil {
		t.Fatal(err)
	}
	if config["upstream"] != "https://127.0.0.1:6443" {
		t.Errorf("sidecar upstream %v, want https://127.0.0.1:6443", config["upstream"])
	}
	checkMounted(t, *fg, "/etc/kubernetes/frontgate/config.yaml")
	if !slices.Contains(fg.Args, "--config=/etc/kubernetes/frontgate/config.yaml") {
		t.Errorf("sidecar args %q do not name /etc/kubernetes/frontgate/config.yaml", fg.Args)
	}
	for _, key := range []string{"tls-cert-file", "tls-private-key-file", "proxy-client-cert-file", "proxy-client-key-file", "upstream-ca-file"} {
		p, _ := config[key].(string)
		checkMounted(t, *fg, p)
	}

	patches, err := os.ReadDir(filepath.Join(dir, "patches"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range patches {
		if !regexp.MustCompile(`^kube-apiserver(\+(strategic|merge|json))?\.(yaml|json)$`).MatchString(p.Name()) {
			t.Errorf("deploy/sidecar/patches/%s: kubeadm --patches would read it, and it is not a kube-apiserver patch", p.Name())
		}
	}

	// What `frontgate flags` prints on a node where front-proxy-client.crt is
	// kubeadm's certificate (CN front-proxy-client).
	pki := t.TempDir()
	if out, err := exec.CommandContext(t.Context(), env.FrontgateBinary, "pki", "init", "--dir", pki, "--cn", "front-proxy-client", "--hosts", "localhost").CombinedOutput(); err != nil {
		t.Fatalf("frontgate pki init: %v\n%s", err, out)
	}
	nodeConfig := bytes.ReplaceAll(configData, []byte("/etc/kubernetes/pki/front-proxy-client."), []byte(pki+"/proxy-client."))
	nodeConfigPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(nodeConfigPath, nodeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCommand(t.Context(), nil, "", env.FrontgateBinary, "flags", "--config", nodeConfigPath,
		"--requestheader-client-ca-file", "/etc/kubernetes/pki/front-proxy-ca.crt", "--format", "kubeadm")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	type clusterConfiguration struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		APIServer  struct {
			CertSANs  []string            `json:"certSANs"`
			ExtraArgs []map[string]string `json:"extraArgs"`
		} `json:"apiServer"`
	}
	var printed, shipped clusterConfiguration
	if err := yaml.Unmarshal(out, &printed); err != nil {
		t.Fatalf("frontgate flags --format kubeadm: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "cluster-configuration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, &shipped); err != nil {
		t.Fatalf("cluster-configuration.yaml: %v", err)
	}
	if shipped.APIVersion != printed.APIVersion || shipped.Kind != printed.Kind || !reflect.DeepEqual(shipped.APIServer.ExtraArgs, printed.APIServer.ExtraArgs) {
		t.Errorf("cluster-configuration.yaml differs from frontgate flags --format kubeadm (- shipped, + printed):\n%s", jsonDiff(shipped, printed))
	}
	if !slices.Contains(shipped.APIServer.CertSANs, "127.0.0.1") {
		t.Errorf("cluster-configuration.yaml certSANs %v lack 127.0.0.1, which the sidecar's upstream URL needs", shipped.APIServer.CertSANs)
	}
	for _, want := range []string{"--requestheader-allowed-names=front-proxy-client", "--requestheader-uid-headers=X-Remote-Uid"} {
		if !slices.Contains(apiserver.Command, want) {
			t.Errorf("the reference kube-apiserver (kubeadm with cluster-configuration.yaml) lacks %s", want)
		}
	}
}

// TestDeployConfigStartsFrontgate: the --config files deploy/ ships (the
// chart's, equal to the kustomize base's, and the sidecar's) are accepted by
// `frontgate serve`, which becomes ready with them. The harness's flags
// override the paths, ports and issuer (flags win over the file); the file's
// oidc-username-claim (email, which the suite's provider leaves out of ID
// tokens) is then seen to be in effect: a token is refused for lacking it.
func TestDeployConfigStartsFrontgate(t *testing.T) {
	d := deploySetup(t)
	sidecar, err := os.ReadFile(filepath.Join(d.root, "deploy/sidecar/config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	chartConfig, err := yaml.Marshal(configFile(t, decodeObjects(t, d.mustHelmTemplate(t))))
	if err != nil {
		t.Fatal(err)
	}
	token := idToken(t, cluster.ClientWeb, "alice")
	for name, data := range map[string][]byte{"chart": chartConfig, "sidecar": sidecar} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			f := startFrontgate(t, cluster.FrontgateOptions{Args: []string{"--config", p}})
			resp, _ := whoami(t, fgClient(t, f, false), f.URL, bearer(token))
			if resp.code != http.StatusUnauthorized || !strings.Contains(status(t, resp).Message, "email") {
				t.Errorf("want 401 naming the email claim (oidc-username-claim from the file), got %d: %s", resp.code, resp.body)
			}
		})
	}
}

// TestDeployMonitoring: the alerts cover what the issue asks for, and the
// alerts and the dashboard use only metrics frontgate exports (README's
// Metrics table) or the ones listed in needsMetric; the chart's dashboard is
// the kustomize component's, byte for byte.
func TestDeployMonitoring(t *testing.T) {
	d := deploySetup(t)
	readme, err := os.ReadFile(filepath.Join(d.root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(frontgate_[a-z0-9_]+)`").FindAllStringSubmatch(string(readme), -1) {
		known[m[1]] = true
	}
	if len(known) == 0 {
		t.Fatal("no metrics found in README's Metrics table")
	}
	for _, m := range needsMetric {
		if known[m] {
			t.Logf("%s is in README now: needsMetric can lose it", m)
		}
		known[m] = true
	}
	metricName := regexp.MustCompile(`frontgate_[a-z0-9_]+`)
	checkNames := func(where, expr string) {
		for _, name := range metricName.FindAllString(expr, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if s, ok := strings.CutSuffix(name, suffix); ok && known[s] {
					base = s
				}
			}
			if !known[base] {
				t.Errorf("%s uses %s, which frontgate does not export", where, name)
			}
		}
	}

	chartDashboard, err := os.ReadFile(filepath.Join(d.chartDir(), "dashboards/frontgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	kustomizeDashboard, err := os.ReadFile(filepath.Join(d.root, "deploy/kustomize/components/monitoring/frontgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chartDashboard, kustomizeDashboard) {
		t.Error("deploy/helm/frontgate/dashboards/frontgate.json and deploy/kustomize/components/monitoring/frontgate.json differ")
	}
	var dash struct {
		UID    string
		Panels []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(chartDashboard, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			checkNames("dashboard panel "+p.Title, tg.Expr)
		}
	}
	if dash.UID == "" || exprs == 0 {
		t.Errorf("dashboard has uid %q and %d queries", dash.UID, exprs)
	}

	for _, f := range d.ciValues(t) {
		objs := decodeObjects(t, d.mustHelmTemplate(t, "-f", f))
		rules := ofKind[struct {
			Spec struct {
				Groups []struct {
					Rules []struct{ Alert, Expr string }
				}
			}
		}](t, objs, "PrometheusRule")
		if len(rules) != 1 {
			t.Fatalf("%s: want one PrometheusRule, got %d", f, len(rules))
		}
		alerts := map[string]bool{}
		for _, g := range rules[0].Spec.Groups {
			for _, r := range g.Rules {
				alerts[r.Alert] = true
				checkNames("alert "+r.Alert, r.Expr)
			}
		}
		for _, want := range []string{"FrontgateNotReady", "FrontgateUpstreamErrors", "FrontgateAuthenticationFailureSpike", "FrontgateCertificateExpiring", "FrontgateConfigReloadFailing"} {
			if !alerts[want] {
				t.Errorf("%s: no alert %s", f, want)
			}
		}
	}
}
