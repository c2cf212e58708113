// Package e2e tests frontgate end to end against real components: etcd,
// kube-apiserver and kubectl of one pinned Kubernetes version, zitadel's
// example OpenID Provider and two node agents (kwok's fake kubelet and the
// project's exec-only test-kubelet), all started by test/cluster; the
// streaming tests also run the machine's own older kubectl when present.
// One cluster is shared by all tests; tests that need other frontgate flags
// start their own frontgate in front of it.
//
// The tests skip when FRONTGATE_TOOLS_DIR is unset and fail when it is set
// but a binary is missing. Run them with `make test`, or:
//
//	FRONTGATE_TOOLS_DIR=$(test/tools/install.sh) go test ./test/e2e/ -v -count=1 -timeout 20m
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

var (
	// env is the shared cluster; nil when the suite is skipped.
	env *cluster.Cluster
	// fg is the shared frontgate, started with defaultArgs.
	fg *cluster.Frontgate
	// kwokNode is the shared kwok node (attach, logs, port-forward, and
	// exec as kwok does it); execNode the shared test-kubelet node (exec
	// with stdin EOF, exit codes and TTYs as a container runtime has them).
	kwokNode, execNode *cluster.Node
	// skipReason says why every test skips, when env is nil.
	skipReason string
)

// defaultArgs configure the shared frontgate: username from sub with the
// default prefix (<issuer>#), uid from sub, groups from the amr array claim
// with prefix oidc:, and one extra from azp.
var defaultArgs = []string{
	"--oidc-uid-claim", "sub",
	"--oidc-groups-claim", "amr",
	"--oidc-groups-prefix", "oidc:",
	"--oidc-extra-claim", extraKey + "=azp",
}

// extraKey is the extra key the shared frontgate maps the azp claim to.
const extraKey = "example.com/client"

// Users beyond cluster.DefaultUsers, whose sub claims are reserved names.
var (
	mastersUser = cluster.User{ID: "system:masters", Username: "masters", Password: "masters-password", PreferredLanguage: "en"}
	sysAdmin    = cluster.User{ID: "system:admin", Username: "sysadmin", Password: "sysadmin-password", PreferredLanguage: "en"}
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	tools, err := cluster.ToolsFromEnv()
	if errors.Is(err, cluster.ErrToolsDirUnset) {
		skipReason = "end-to-end tests need the real components: " + err.Error()
		return m.Run()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s is set but the tools are not usable: %v\n", cluster.ToolsDirEnv, err)
		return 1
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	setupCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	env, err = cluster.Start(setupCtx, cluster.Options{
		Tools: tools,
		Users: append(cluster.DefaultUsers(), mastersUser, sysAdmin),
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", args...)
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the cluster: %v\n", err)
		return 1
	}
	// Ctrl-C or SIGTERM while tests run: stop every process, then exit.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "e2e: interrupted, stopping the cluster")
			env.Stop()
			os.Exit(130)
		case <-done:
		}
	}()

	fg, err = env.StartFrontgate(setupCtx, cluster.FrontgateOptions{Args: defaultArgs})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting frontgate: %v\n", err)
		env.DumpLogs(os.Stderr, 40)
		env.KeepDir()
		env.Stop()
		return 1
	}
	for _, n := range []struct {
		node  **cluster.Node
		agent cluster.NodeAgent
	}{{&kwokNode, cluster.AgentKwok}, {&execNode, cluster.AgentTestKubelet}} {
		if *n.node, err = env.StartNode(setupCtx, cluster.NodeOptions{Agent: n.agent}); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: starting the %s node: %v\n", n.agent, err)
			env.DumpLogs(os.Stderr, 40)
			env.KeepDir()
			env.Stop()
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "e2e setup: cluster ready in %s (dir %s)\n", time.Since(start).Round(time.Millisecond), env.Dir)

	code := m.Run()

	// Stop every frontgate so their logs are complete, then check them.
	for _, f := range env.Frontgates() {
		f.Stop()
	}
	if c := fg.Process.ExitCode(); c != 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the shared frontgate exited with status %d after SIGTERM, want 0\n", c)
		code = 1
	}
	if err := checkNoSecretsInLogs(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	if code != 0 {
		env.DumpLogs(os.Stderr, 40)
		env.KeepDir()
		fmt.Fprintf(os.Stderr, "e2e: logs kept in %s\n", env.Dir)
	}
	env.Stop()
	return code
}

// checkNoSecretsInLogs greps every line every frontgate of the run logged
// (serve processes and the harness's frontgate commands) for every ID token
// (and service-account token) the suite used, whole or as its payload or
// signature segment, for every cookie and other credential recorded, and for
// private keys: a PEM header or a line of any key the harness wrote.
func checkNoSecretsInLogs() error {
	secrets := append(env.Secrets(), keyMaterial()...)
	var leaks []string
	lines := 0
	logs := []string{filepath.Join(env.Dir, "logs", "frontgate-cli.log")}
	for _, f := range env.Frontgates() {
		logs = append(logs, f.Process.LogPath)
	}
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			lines++
			if strings.Contains(line, privateKeyMarker) {
				leaks = append(leaks, fmt.Sprintf("%s:%d (a PEM private key)", path, i+1))
			}
			for _, s := range secrets {
				for _, needle := range secretNeedles(s) {
					if strings.Contains(line, needle) {
						leaks = append(leaks, fmt.Sprintf("%s:%d", path, i+1))
					}
				}
			}
		}
	}
	fmt.Fprintf(os.Stderr, "e2e: checked %d frontgate log lines from %d files for %d tokens, cookies and key lines\n", lines, len(logs), len(secrets))
	if len(secrets) > 0 && lines == 0 {
		return errors.New("no frontgate log lines to check for tokens")
	}
	if len(leaks) > 0 {
		return fmt.Errorf("frontgate logged a token, cookie or key (or a part of one) at %s", strings.Join(leaks, ", "))
	}
	return nil
}

// secretNeedles returns what must not appear in a log: the token and, for a
// JWT, its payload and signature segments.
func secretNeedles(token string) []string {
	needles := []string{token}
	if parts := strings.Split(token, "."); len(parts) == 3 {
		for _, p := range parts[1:] {
			if len(p) >= 16 {
				needles = append(needles, p)
			}
		}
	}
	return needles
}
