package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ToolsDirEnv names the environment variable holding the directory
// test/tools/install.sh built the binaries into (what `install.sh print-dir`
// prints). The Makefile sets it for `make test`.
const ToolsDirEnv = "FRONTGATE_TOOLS_DIR"

// ErrToolsDirUnset is returned by [ToolsFromEnv] when [ToolsDirEnv] is unset:
// the end-to-end tests skip then, rather than fail.
var ErrToolsDirUnset = errors.New(ToolsDirEnv + " is not set; run `make test`, or set it to the output of `test/tools/install.sh` (which builds etcd, kube-apiserver, kubectl, oidc-provider, oidc-provider-device, kwok and test-kubelet once and prints their directory)")

// Tools are the paths of the real components the harness runs.
type Tools struct {
	// Dir is the cache directory holding the binaries.
	Dir           string
	Etcd          string
	KubeAPIServer string
	Kubectl       string
	// KubectlOld is kubectl of Kubernetes 1.29 (test/tools/kubectl-old),
	// the older client of the streaming tests.
	KubectlOld string
	// OIDCProvider is zitadel's example OpenID Provider.
	OIDCProvider string
	// OIDCProviderDevice is the same provider with one more client, for the
	// device authorization grant (test/tools/oidc/main.go).
	OIDCProviderDevice string
	// Kwok is sigs.k8s.io/kwok's fake kubelet, a node agent for
	// [Cluster.StartNode].
	Kwok string
	// TestKubelet is the project's exec-only kubelet on Kubernetes' CRI
	// streaming library (test/tools/kubelet), the other node agent.
	TestKubelet string
}

// LocateTools returns the tools in dir, or an error naming every binary that
// is missing or not executable.
func LocateTools(dir string) (*Tools, error) {
	t := &Tools{
		Dir:                dir,
		Etcd:               filepath.Join(dir, "etcd"),
		KubeAPIServer:      filepath.Join(dir, "kube-apiserver"),
		Kubectl:            filepath.Join(dir, "kubectl"),
		KubectlOld:         filepath.Join(dir, "kubectl-old"),
		OIDCProvider:       filepath.Join(dir, "oidc-provider"),
		OIDCProviderDevice: filepath.Join(dir, "oidc-provider-device"),
		Kwok:               filepath.Join(dir, "kwok"),
		TestKubelet:        filepath.Join(dir, "test-kubelet"),
	}
	var missing []string
	for _, p := range []string{t.Etcd, t.KubeAPIServer, t.Kubectl, t.KubectlOld, t.OIDCProvider, t.OIDCProviderDevice, t.Kwok, t.TestKubelet} {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing or not executable in %s: %s (build them with test/tools/install.sh)", dir, strings.Join(missing, ", "))
	}
	return t, nil
}

// ToolsFromEnv locates the tools in the directory named by [ToolsDirEnv]. It
// returns [ErrToolsDirUnset] when the variable is unset or empty.
func ToolsFromEnv() (*Tools, error) {
	dir := os.Getenv(ToolsDirEnv)
	if dir == "" {
		return nil, ErrToolsDirUnset
	}
	return LocateTools(dir)
}

// InstallTools runs test/tools/install.sh from the module root, which builds
// whatever binaries its cache lacks (printing progress to progress) and
// prints the cache directory, and returns the tools found there.
func InstallTools(ctx context.Context, progress io.Writer) (*Tools, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, "test", "tools", "install.sh"))
	cmd.Stdout = &stdout
	cmd.Stderr = progress
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("test/tools/install.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return LocateTools(strings.TrimSpace(lines[len(lines)-1]))
}

// ModuleRoot returns the directory of frontgate's go.mod, found with
// `go env GOMOD` from the current directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the frontgate module (go env GOMOD is empty); run from the repository")
	}
	return filepath.Dir(gomod), nil
}
