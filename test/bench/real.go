package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// realUser is the user of the real scenario, with the same RBAC directly
// (client certificate CN) and through frontgate (ID token sub, no prefix).
const realUser = "bench-user"

// runReal measures GET of a ConfigMap against a real kube-apiserver
// (test/cluster): directly with a client certificate, and through frontgate
// with a cached token.
func runReal(ctx context.Context, cfg *config, w io.Writer, dir, bin string) error {
	tools, err := cluster.ToolsFromEnv()
	if errors.Is(err, cluster.ErrToolsDirUnset) {
		root, rerr := cluster.ModuleRoot(ctx)
		if rerr != nil {
			return rerr
		}
		out, rerr := exec.CommandContext(ctx, filepath.Join(root, "test", "tools", "install.sh"), "print-dir").Output()
		if rerr != nil {
			return fmt.Errorf("%w (and test/tools/install.sh print-dir: %v)", err, rerr)
		}
		tools, err = cluster.LocateTools(strings.TrimSpace(string(out)))
	}
	if err != nil {
		return fmt.Errorf("-real: %w (run `make tools` first)", err)
	}
	log.Printf("-real: starting etcd, kube-apiserver and the OpenID Provider")
	c, err := cluster.Start(ctx, cluster.Options{Tools: tools, FrontgateBinary: bin, Dir: filepath.Join(dir, "cluster"), Logf: log.Printf})
	if err != nil {
		return err
	}
	defer c.Stop()
	ti, err := c.StartTokenIssuer()
	if err != nil {
		return err
	}
	if err := grantRead(ctx, c); err != nil {
		return err
	}
	f, err := c.StartFrontgate(ctx, cluster.FrontgateOptions{Issuer: ti.URL, ClientID: clientID, Args: []string{"--oidc-username-prefix", "-"}})
	if err != nil {
		return err
	}
	token, err := ti.Sign(map[string]any{"iss": ti.URL, "aud": clientID, "sub": realUser, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		return err
	}
	apiserverPID := findPID(tools.KubeAPIServer, c.Dir)
	etcdPID := findPID(tools.Etcd, c.Dir)

	path := "/api/v1/namespaces/default/configmaps/bench"
	direct := &target{name: "direct (client certificate)", upstreamPID: apiserverPID, helperPIDs: []int{etcdPID}}
	direct.url, _ = url.Parse(c.APIServerURL + path)
	fg := &target{name: "frontgate, cached token", pid: f.Process.PID(), upstreamPID: apiserverPID, helperPIDs: []int{etcdPID},
		authorization: func(int64) (string, bool) { return "Bearer " + token, true }}
	fg.url, _ = url.Parse(f.URL + path)
	for range cfg.conns {
		dc, err := c.DirectHTTPClient(realUser)
		if err != nil {
			return err
		}
		fc, err := f.HTTPClient(false)
		if err != nil {
			return err
		}
		for _, hc := range []*http.Client{dc, fc} {
			hc.Transport.(*http.Transport).MaxConnsPerHost = 1
		}
		direct.clients = append(direct.clients, dc)
		fg.clients = append(fg.clients, fc)
	}
	targets := []*target{direct, fg}
	for _, t := range targets {
		if _, err := t.do(ctx, t.clients[0], 0); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	time.Sleep(5 * time.Second) // let kube-apiserver's start-up work settle

	fmt.Fprintf(w, "## Real kube-apiserver (test/cluster: etcd, kube-apiserver v1.37.2, RBAC), GET of a ConfigMap\n\n")
	sat := map[*target]*result{}
	for _, t := range targets {
		log.Printf("-real saturation: %s (load %s)", t.name, loadAverage())
		sat[t] = closedLoop(t, cfg.concurrency, cfg.warmup, cfg.realDuration)
	}
	fmt.Fprintf(w, "### Saturation: closed loop, %d requests in flight over %d HTTP/2 connections, %s measured after %s warm-up (\"upstream\" is kube-apiserver; etcd not counted)\n\n", cfg.concurrency, cfg.conns, cfg.realDuration, cfg.warmup)
	printRuns(w, targets, sat, false, cfg.realDuration)
	rate := sat[direct].rps / 2
	half := map[*target]*result{}
	for _, t := range targets {
		log.Printf("-real %.0f req/s: %s (load %s)", rate, t.name, loadAverage())
		half[t] = openLoop(t, rate, cfg.warmup, cfg.realDuration)
	}
	fmt.Fprintf(w, "### Fixed offered load: 50 %% of direct saturation = %.0f requests/s\n\n", rate)
	printRuns(w, targets, half, true, cfg.realDuration)
	fmt.Fprintf(w, "Throughput through frontgate: %.0f %% of direct. p99 added at half of saturation: %s.\n\n",
		100*sat[fg].rps/sat[direct].rps, ms(half[fg].pct(0.99)-half[direct].pct(0.99)))
	for _, t := range targets {
		closeClients(t.clients)
	}
	f.Stop()
	return nil
}

// grantRead creates the ConfigMap default/bench and lets realUser get it.
func grantRead(ctx context.Context, c *cluster.Cluster) error {
	admin, err := c.AdminHTTPClient()
	if err != nil {
		return err
	}
	defer admin.CloseIdleConnections()
	for _, obj := range []struct{ path, body string }{
		{"/api/v1/namespaces/default/configmaps", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bench"},"data":{"key":"value"}}`},
		{"/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"bench-read"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get","list","watch"]}]}`},
		{"/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"bench-read"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"bench-read"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"` + realUser + `"}]}`},
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.APIServerURL+obj.path, bytes.NewBufferString(obj.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := admin.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusConflict {
			return fmt.Errorf("POST %s: %d %s", obj.path, resp.StatusCode, b)
		}
	}
	return nil
}

// findPID returns the process whose command line contains every part, or 0.
func findPID(parts ...string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		all := true
		for _, p := range parts {
			if !strings.Contains(cmdline, p) {
				all = false
				break
			}
		}
		if all {
			return pid
		}
	}
	return 0
}
