package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestWatch: `kubectl get configmaps --watch` through frontgate streams a
// configmap created after the watch started.
func TestWatch(t *testing.T) {
	need(t)
	ns := namespace(t, "e2e-watch")
	kc := kubeconfigFor(t, fg, idToken(t, cluster.ClientWeb, "erin"))
	grantRole(t, ns, mappedName("erin"), "get,list,watch", "configmaps")
	admin(t, "-n", ns, "create", "configmap", "before")
	eventually(t, 15*time.Second, func() error {
		_, errOut, err := kubectl(t, kc, "-n", ns, "get", "configmaps")
		if err != nil {
			return fmt.Errorf("%v: %s", err, errOut)
		}
		return nil
	})

	c, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(c, env.Tools.Kubectl, "--kubeconfig", kc, "-n", ns,
		"get", "configmaps", "--watch", "-o", "name")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	seen := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			seen <- strings.TrimSpace(sc.Text())
		}
		close(seen)
	}()
	await := func(name string) {
		t.Helper()
		for {
			select {
			case line, ok := <-seen:
				if !ok {
					t.Fatalf("kubectl --watch ended before showing %s; stderr: %s", name, stderr.String())
				}
				if line == name {
					return
				}
			case <-c.Done():
				t.Fatalf("kubectl --watch did not show %s in time; stderr: %s", name, stderr.String())
			}
		}
	}
	// The initial list shows "before"; the watch starts from the list's
	// resourceVersion, so "after", created now, can only arrive as an event.
	await("configmap/before")
	admin(t, "-n", ns, "create", "configmap", "after")
	await("configmap/after")
}

// TestCreateApplyDelete: writes through frontgate with kubectl create, apply
// (client-side and server-side) and delete, checked by the admin directly.
func TestCreateApplyDelete(t *testing.T) {
	need(t)
	ns := namespace(t, "e2e-crud")
	kc := kubeconfigFor(t, fg, idToken(t, cluster.ClientWeb, "dave"))
	grantRole(t, ns, mappedName("dave"), "get,list,watch,create,update,patch,delete", "configmaps")
	eventually(t, 15*time.Second, func() error {
		if out, _, _ := kubectl(t, kc, "-n", ns, "auth", "can-i", "delete", "configmaps"); strings.TrimSpace(out) != "yes" {
			return fmt.Errorf("can-i delete configmaps: %q", out)
		}
		return nil
	})

	manifest := func(name, value string) string {
		path := filepath.Join(t.TempDir(), name+".yaml")
		body := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  k: %s\n", name, ns, value)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	dataK := func(name string) string {
		return admin(t, "-n", ns, "get", "configmap", name, "-o", "jsonpath={.data.k}")
	}
	steps := []struct {
		args []string
		want string // kubectl's stdout
	}{
		{[]string{"create", "configmap", "created", "--from-literal=k=v1"}, "configmap/created created"},
		{[]string{"apply", "-f", manifest("applied", "v1")}, "configmap/applied created"},
		{[]string{"apply", "-f", manifest("applied", "v2")}, "configmap/applied configured"},
		{[]string{"apply", "--server-side", "-f", manifest("ssa", "v1")}, "configmap/ssa serverside-applied"},
		{[]string{"apply", "--server-side", "-f", manifest("ssa", "v2")}, "configmap/ssa serverside-applied"},
	}
	for _, s := range steps {
		if out := strings.TrimSpace(mustKubectl(t, kc, append([]string{"-n", ns}, s.args...)...)); out != s.want {
			t.Errorf("kubectl %s: %q, want %q", strings.Join(s.args, " "), out, s.want)
		}
	}
	for name, want := range map[string]string{"created": "v1", "applied": "v2", "ssa": "v2"} {
		if got := dataK(name); got != want {
			t.Errorf("configmap %s: data.k = %q, want %q", name, got, want)
		}
	}
	out := mustKubectl(t, kc, "-n", ns, "delete", "configmap", "created", "applied", "ssa")
	for _, name := range []string{"created", "applied", "ssa"} {
		mustContain(t, "kubectl delete output", out, fmt.Sprintf("configmap %q deleted", name))
	}
	if left := admin(t, "-n", ns, "get", "configmaps", "-o", "name"); strings.TrimSpace(left) != "" {
		t.Errorf("configmaps left after delete: %s", left)
	}
}

// TestNotFoundUnchanged: a 404 from kube-apiserver reaches the client
// identical (status, content type, body) to the same request made directly
// as the same identity.
func TestNotFoundUnchanged(t *testing.T) {
	need(t)
	ns := namespace(t, "e2e-notfound")
	token := idToken(t, cluster.ClientWeb, "frank")
	id := wantUserInfo("frank")
	grantRole(t, ns, id.Username, "get", "configmaps")
	admin(t, "create", "clusterrole", "e2e-missing-path", "--verb=get", "--non-resource-url=/e2e-missing", "--non-resource-url=/e2e-missing/*")
	admin(t, "create", "clusterrolebinding", "e2e-missing-path", "--clusterrole=e2e-missing-path", "--user="+id.Username)

	for _, path := range []string{
		"/api/v1/namespaces/" + ns + "/configmaps/missing",
		"/e2e-missing/sub",
	} {
		t.Run(path, func(t *testing.T) {
			var via, direct response
			eventually(t, 15*time.Second, func() error {
				via = send(t, fgClient(t, fg, false), http.MethodGet, fg.URL+path, bearer(token), nil)
				if via.code != http.StatusNotFound {
					return fmt.Errorf("through frontgate: HTTP %d, want 404: %s", via.code, via.body)
				}
				return nil
			})
			direct = send(t, adminClient(t), http.MethodGet, env.APIServerURL+path, impersonationHeaders(id), nil)
			if via.code != direct.code || !bytes.Equal(via.body, direct.body) {
				t.Errorf("404 through frontgate differs from the direct one:\nfrontgate: %d %q\ndirect:    %d %q", via.code, via.body, direct.code, direct.body)
			}
			if a, b := via.header.Get("Content-Type"), direct.header.Get("Content-Type"); a != b {
				t.Errorf("Content-Type through frontgate %q, direct %q", a, b)
			}
		})
	}
}

// TestAPIServerReadyz: kube-apiserver's own /readyz and /livez answer through
// frontgate (they are kube-apiserver's, not frontgate's).
func TestAPIServerReadyz(t *testing.T) {
	need(t)
	token := idToken(t, cluster.ClientWeb, "alice")
	for _, path := range []string{"/readyz", "/livez", "/healthz"} {
		resp := send(t, fgClient(t, fg, false), http.MethodGet, fg.URL+path, bearer(token), nil)
		if resp.code != http.StatusOK || strings.TrimSpace(string(resp.body)) != "ok" {
			t.Errorf("GET %s through frontgate: %d %q, want 200 ok", path, resp.code, resp.body)
		}
	}
	verbose := send(t, fgClient(t, fg, false), http.MethodGet, fg.URL+"/readyz?verbose", bearer(token), nil)
	mustContain(t, "/readyz?verbose through frontgate", string(verbose.body), "[+]etcd ok", "readyz check passed")
	if out := mustKubectl(t, kubeconfigFor(t, fg, token), "get", "--raw", "/readyz"); out != "ok" {
		t.Errorf("kubectl get --raw /readyz through frontgate: %q, want ok", out)
	}
}

// TestFrontgateReadiness: frontgate started before its issuer is up reports
// not ready on /readyz and answers 503 instead of proxying; once the issuer
// comes up it becomes ready by itself and serves its tokens.
func TestFrontgateReadiness(t *testing.T) {
	need(t)
	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	issuer := fmt.Sprintf("http://localhost:%d/", port)
	f := startFrontgate(t, cluster.FrontgateOptions{Issuer: issuer, NoWait: true})

	if code, err := f.Ready(ctx(t)); err != nil || code == http.StatusOK {
		t.Fatalf("/readyz while the issuer is down: %d %v, want not 200", code, err)
	}
	resp := send(t, fgClient(t, f, false), http.MethodGet, f.URL+"/api", bearer("any-token"), nil)
	if resp.code != http.StatusServiceUnavailable {
		t.Errorf("request while not ready: HTTP %d, want 503: %s", resp.code, resp.body)
	} else {
		status(t, resp)
	}
	if code, _ := f.Ready(ctx(t)); code == http.StatusOK {
		t.Fatal("/readyz turned 200 with the issuer still down")
	}
	if n := upstreamRequests(t, f); n != 0 {
		t.Errorf("frontgate forwarded %v requests while not ready", n)
	}

	op, err := env.StartOIDCProvider(ctx(t), port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Stop)
	start := time.Now()
	wctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := f.WaitReady(wctx); err != nil {
		t.Fatalf("frontgate did not become ready after the issuer came up: %v", err)
	}
	t.Logf("ready %s after the issuer came up", time.Since(start).Round(time.Millisecond))
	token, err := op.IDToken(ctx(t), cluster.ClientWeb, user(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, u := whoami(t, fgClient(t, f, false), f.URL, bearer(token)); u == nil || u.Username != issuer+"#alice" {
		t.Errorf("after becoming ready: identity %v, want %s#alice", u, issuer)
	}
}
