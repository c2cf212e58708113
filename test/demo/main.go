// Command demo runs frontgate in front of a real kube-apiserver, for a person
// to try with kubectl: `make demo`, or `go run ./test/demo` from the
// repository.
//
// It builds (first time only, cached afterwards) etcd, kube-apiserver and
// kubectl of the pinned Kubernetes version and zitadel's example OpenID
// Provider with test/tools/install.sh (unless FRONTGATE_TOOLS_DIR names their
// directory already), runs `frontgate pki init`, starts etcd and
// kube-apiserver with exactly the flags `frontgate flags` prints, starts the
// OpenID Provider and frontgate, logs a demo user in through the provider's
// login form to get an ID token, writes a kubeconfig with it, grants the user
// read access to configmaps in the default namespace, and prints what to
// type. Ctrl-C stops every process it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// demoUser is the OpenID Provider account the demo logs in as.
var demoUser = cluster.User{
	ID: "jane", Username: "jane", Password: "jane-password",
	FirstName: "Jane", LastName: "Demo", Email: "jane@example.com", EmailVerified: true, PreferredLanguage: "en",
}

func main() {
	keep := flag.Bool("keep", false, "keep the working directory (logs, PKI, kubeconfigs) after exiting")
	flag.Parse()
	if err := run(*keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, ">> "+format+"\n", args...)
}

func run(keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tools, err := cluster.ToolsFromEnv()
	if errors.Is(err, cluster.ErrToolsDirUnset) {
		logf("locating or building etcd, kube-apiserver, kubectl and the OpenID Provider (test/tools/install.sh)")
		tools, err = cluster.InstallTools(ctx, os.Stderr)
	}
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "frontgate-demo-")
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	c, err := cluster.Start(startCtx, cluster.Options{
		Tools: tools,
		Dir:   dir,
		Users: []cluster.User{demoUser},
		Logf:  logf,
	})
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping everything")
		c.Stop()
		if keep {
			logf("kept %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()

	f, err := c.StartFrontgate(startCtx, cluster.FrontgateOptions{Args: []string{
		"--oidc-username-prefix", "oidc:",
		"--oidc-uid-claim", "sub",
		"--oidc-groups-claim", "amr",
		"--oidc-groups-prefix", "oidc:",
		"--oidc-extra-claim", "example.com/client=azp",
	}})
	if err != nil {
		c.DumpLogs(os.Stderr, 30)
		return err
	}
	logf("frontgate ready at %s", f.URL)

	logf("logging in to the OpenID Provider as %q (authorization-code flow, client %q)", demoUser.Username, cluster.ClientWeb)
	token, err := c.OIDC.IDToken(startCtx, cluster.ClientWeb, demoUser)
	if err != nil {
		return err
	}
	kubeconfig, err := f.WriteKubeconfig(filepath.Join(dir, "demo.kubeconfig"), token)
	if err != nil {
		return err
	}
	username := "oidc:" + demoUser.ID
	for _, args := range [][]string{
		{"create", "role", "configmap-reader", "--verb=get,list,watch", "--resource=configmaps"},
		{"create", "rolebinding", "configmap-reader", "--role=configmap-reader", "--user=" + username},
		{"create", "configmap", "hello", "--from-literal=greeting=hello from kube-apiserver, through frontgate"},
	} {
		if err := kubectlAdmin(startCtx, c, args...); err != nil {
			return err
		}
	}

	k := fmt.Sprintf("%s --kubeconfig %s", c.Tools.Kubectl, kubeconfig)
	fmt.Printf(`
frontgate is running in front of a real kube-apiserver.

  kube-apiserver   %s  (trusts frontgate through --requestheader-* flags from "frontgate flags")
  OpenID Provider  %s  (zitadel/oidc example server)
  frontgate        %s  (metrics, /healthz, /readyz on %s)

You are %q: kubeconfig %s holds an ID token (valid 1 hour) the
OpenID Provider issued after logging in with its login form. frontgate
verifies it, maps it to the Kubernetes user %q and forwards your
requests with X-Remote-User/-Group/-Uid/-Extra-* and its client certificate.

Try:

  %s auth whoami
  %s get configmaps
  %s get configmap hello -o jsonpath='{.data.greeting}'
  %s get secrets                 # Forbidden: the Role only covers configmaps
  %s delete configmap hello      # Forbidden too

As the cluster admin, directly against kube-apiserver:

  %s --kubeconfig %s get rolebindings

Logs: %s
Press Ctrl-C to stop everything.
`, c.APIServerURL, c.OIDC.Issuer, f.URL, f.MetricsURL,
		demoUser.Username, kubeconfig, username,
		k, k, k, k, k,
		c.Tools.Kubectl, c.AdminKubeconfig, filepath.Join(dir, "logs"))

	select {
	case <-ctx.Done():
		fmt.Println()
		return nil
	case <-f.Process.Exited():
		c.DumpLogs(os.Stderr, 30)
		return fmt.Errorf("frontgate exited: %v", f.Process.ExitError())
	case <-c.OIDC.Process.Exited():
		c.DumpLogs(os.Stderr, 30)
		return fmt.Errorf("the OpenID Provider exited: %v", c.OIDC.Process.ExitError())
	}
}

// kubectlAdmin runs kubectl as the cluster admin in the default namespace.
func kubectlAdmin(ctx context.Context, c *cluster.Cluster, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.Tools.Kubectl, append([]string{"--kubeconfig", c.AdminKubeconfig, "-n", "default"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
