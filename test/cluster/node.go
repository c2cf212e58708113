package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Node agents: kube-apiserver forwards exec, attach, port-forward and
// container logs to the kubelet of the pod's node, over HTTPS (verified
// against the cluster CA, with kube-apiserver's kubelet client certificate).
// The harness has two node agents; both serve the kubelet's streaming
// endpoints with Kubernetes' own CRI streaming server library
// (k8s.io/cri-streaming), so every byte a test sends through kube-apiserver
// travels the real WebSocket or SPDY protocols to a real server.
//
// [AgentKwok] is sigs.k8s.io/kwok's fake kubelet (pinned in
// test/tools/kwok). It keeps its Node Ready and its pods Running and serves:
//   - exec, as a local process in [Node.WorkDir] (a ClusterExec for every
//     pod). Fidelity limits: it never closes the process's stdin (stdin EOF
//     is lost: `cat` never ends, `kubectl cp` into a pod hangs) and reports
//     a non-zero exit status as an internal error, not as an exit code;
//   - logs and attach, from the pod's CRI-format log file, which tests
//     write with [Pod.AppendLog] (a Logs and an Attach object per pod);
//   - port-forward, to the loopback address [PodOptions.PortForwards] names
//     for the port (a PortForward object per pod).
//
// [AgentTestKubelet] is the project's test-kubelet (test/tools/kubelet):
// exec only, as a local process in [Node.WorkDir], with stdin EOF, exit
// codes and pseudo-terminals (with resize) as a container runtime has them.
// The harness marks its Node Ready and its pods Running itself.

// NodeAgent names the node agent a [Node] runs.
type NodeAgent string

// The node agents.
const (
	AgentKwok        NodeAgent = "kwok"
	AgentTestKubelet NodeAgent = "test-kubelet"
)

// NodeOptions configure [Cluster.StartNode].
type NodeOptions struct {
	// Name is the Node's name; empty means the agent's name + "-node".
	Name string
	// Agent is the node agent; empty means [AgentKwok].
	Agent NodeAgent
}

// Node is a Node object whose kubelet endpoint is a running node agent.
type Node struct {
	// Name is the Node's name.
	Name string
	// Agent is the node agent.
	Agent NodeAgent
	// URL is the agent's kubelet endpoint, https://127.0.0.1:PORT; its
	// serving certificate is issued by the cluster CA.
	URL string
	// WorkDir is the working directory of the processes exec starts.
	WorkDir string
	// Process is the agent's process.
	Process *Process

	dir     string
	cluster *Cluster
	saMu    sync.Mutex
	saDone  map[string]bool
}

// kwokAPI is the API group and version of kwok's configuration kinds.
const kwokAPI = "kwok.x-k8s.io/v1alpha1"

// kwokCRDs are the namespaced kwok kinds the harness creates per pod; kwok
// watches them (--enable-crds). Their schemas are left open: kwok validates
// what it reads.
var kwokCRDs = []struct{ kind, plural, singular string }{
	{"Logs", "logs", "logs"},
	{"Attach", "attaches", "attach"},
	{"PortForward", "portforwards", "portforward"},
}

// StartNode starts a node agent (see [NodeAgent]) on a free loopback port,
// registers its Node and waits until the Node is Ready. Stop (of the
// cluster) stops the agent.
func (c *Cluster) StartNode(ctx context.Context, opts NodeOptions) (*Node, error) {
	if opts.Agent == "" {
		opts.Agent = AgentKwok
	}
	if opts.Name == "" {
		opts.Name = string(opts.Agent) + "-node"
	}
	n := &Node{Name: opts.Name, Agent: opts.Agent, cluster: c, dir: filepath.Join(c.Dir, "node-"+opts.Name), saDone: map[string]bool{}}
	n.WorkDir = filepath.Join(n.dir, "work")
	for _, d := range []string{n.WorkDir, filepath.Join(n.dir, "logs"), filepath.Join(n.dir, "home")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	serving, err := c.pki.ca.Issue(pkix.Name{CommonName: opts.Name}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		[]string{"localhost", opts.Name}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := serving.Write(n.dir, "kubelet-serving")
	if err != nil {
		return nil, err
	}

	var args func(port int) []string
	switch opts.Agent {
	case AgentKwok:
		configFile := filepath.Join(n.dir, "kwok.yaml")
		if err := os.WriteFile(configFile, []byte(kwokConfig(n.WorkDir)), 0o644); err != nil {
			return nil, err
		}
		c.logf("installing kwok's CRDs (%d kinds)", len(kwokCRDs))
		if err := c.installKwokCRDs(ctx); err != nil {
			return nil, err
		}
		crds := make([]string, 0, len(kwokCRDs))
		for _, k := range kwokCRDs {
			crds = append(crds, k.kind)
		}
		args = func(port int) []string {
			return []string{
				"--kubeconfig", c.AdminKubeconfig,
				"--config", configFile,
				"--manage-single-node", opts.Name,
				"--node-ip", "127.0.0.1",
				"--node-name", opts.Name,
				fmt.Sprintf("--node-port=%d", port),
				"--server-address", fmt.Sprintf("127.0.0.1:%d", port),
				"--tls-cert-file", certFile,
				"--tls-private-key-file", keyFile,
				"--enable-crds", strings.Join(crds, ","),
			}
		}
	case AgentTestKubelet:
		args = func(port int) []string {
			return []string{
				"--listen", fmt.Sprintf("127.0.0.1:%d", port),
				"--tls-cert-file", certFile,
				"--tls-private-key-file", keyFile,
				"--client-ca-file", c.pki.caFile,
				"--work-dir", n.WorkDir,
			}
		}
	default:
		return nil, fmt.Errorf("unknown node agent %q", opts.Agent)
	}
	bin := map[NodeAgent]string{AgentKwok: c.Tools.Kwok, AgentTestKubelet: c.Tools.TestKubelet}[opts.Agent]
	if bin == "" {
		return nil, fmt.Errorf("no %s binary in the tools (build it with test/tools/install.sh)", opts.Agent)
	}

	var lastErr error
	for range bindRetries {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		n.URL = fmt.Sprintf("https://127.0.0.1:%d", port)
		c.logf("starting %s as the kubelet of node %s on %s", opts.Agent, opts.Name, n.URL)
		// HOME: kwok reads ~/.kwok/kwok.yaml if it exists; keep it out.
		n.Process, err = c.start(string(opts.Agent)+"-"+opts.Name, bin, args(port), []string{"HOME=" + filepath.Join(n.dir, "home")})
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		lastErr = n.waitHealthy(wctx)
		cancel()
		if lastErr == nil {
			break
		}
		n.Process.Stop()
		if !addrInUse(lastErr) {
			return nil, lastErr
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	if err := n.register(ctx, urlPort(n.URL)); err != nil {
		return nil, err
	}
	c.logf("node %s Ready", opts.Name)
	return n, nil
}

// urlPort returns the port of an https://127.0.0.1:PORT URL.
func urlPort(url string) string { return url[strings.LastIndexByte(url, ':')+1:] }

// waitHealthy waits until the agent's /healthz answers, as kube-apiserver
// reaches it: TLS verified with the cluster CA, kube-apiserver's kubelet
// client certificate.
func (n *Node) waitHealthy(ctx context.Context) error {
	cert, err := tls.LoadX509KeyPair(n.cluster.pki.kubeletClientCert, n.cluster.pki.kubeletClientKey)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.cluster.pki.ca.CertPool(), Certificates: []tls.Certificate{cert}}}}
	defer client.CloseIdleConnections()
	return waitFor(ctx, string(n.Agent)+" /healthz", n.Process, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		return statusOK(get(ctx, client, n.URL+"/healthz"))
	})
}

// register creates the Node, with the address and kubelet port
// kube-apiserver uses to reach the agent (nodes may set status on create),
// and waits until it is Ready: kwok makes it so; for the test-kubelet the
// Node is created Ready (no node controller runs to question it).
func (n *Node) register(ctx context.Context, port string) error {
	conditions := "[]"
	if n.Agent == AgentTestKubelet {
		now := time.Now().UTC().Format(time.RFC3339)
		conditions = `[{"type":"Ready","status":"True","reason":"KubeletReady","message":"test-kubelet","lastHeartbeatTime":"` + now + `","lastTransitionTime":"` + now + `"}]`
	}
	node := fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,"labels":{"kubernetes.io/hostname":%q,"frontgate.test/agent":%q}},
		"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":%q}],
		"daemonEndpoints":{"kubeletEndpoint":{"Port":%s}},"conditions":%s}}`, n.Name, n.Name, n.Agent, n.Name, port, conditions)
	if _, err := n.cluster.adminDo(ctx, http.MethodPost, "/api/v1/nodes", []byte(node), nil, http.StatusCreated); err != nil {
		return fmt.Errorf("creating node %s: %w", n.Name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return waitFor(wctx, "node "+n.Name+" Ready", n.Process, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var got struct {
			Status struct {
				Conditions []struct{ Type, Status string }
				Addresses  []struct{ Type, Address string }
			}
		}
		if _, err := n.cluster.adminDo(ctx, http.MethodGet, "/api/v1/nodes/"+n.Name, nil, &got, http.StatusOK); err != nil {
			return false, err
		}
		ready := false
		for _, cond := range got.Status.Conditions {
			ready = ready || (cond.Type == "Ready" && cond.Status == "True")
		}
		internal := false
		for _, a := range got.Status.Addresses {
			internal = internal || (a.Type == "InternalIP" && a.Address == "127.0.0.1")
		}
		if !internal {
			// kwok may replace the addresses; put the InternalIP back.
			patch := `{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":"` + n.Name + `"}]}}`
			if _, err := n.cluster.adminPatch(ctx, "/api/v1/nodes/"+n.Name+"/status", patch); err != nil {
				return false, err
			}
		}
		return ready && internal, fmt.Errorf("conditions %v, addresses %v", got.Status.Conditions, got.Status.Addresses)
	})
}

// installKwokCRDs creates the CustomResourceDefinitions of [kwokCRDs]
// (once per cluster) and waits until they are established.
func (c *Cluster) installKwokCRDs(ctx context.Context) error {
	for _, k := range kwokCRDs {
		name := k.plural + ".kwok.x-k8s.io"
		crd := map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": name},
			"spec": map[string]any{
				"group": "kwok.x-k8s.io", "scope": "Namespaced",
				"names": map[string]any{"kind": k.kind, "listKind": k.kind + "List", "plural": k.plural, "singular": k.singular},
				"versions": []any{map[string]any{
					"name": "v1alpha1", "served": true, "storage": true,
					"subresources": map[string]any{"status": map[string]any{}},
					"schema": map[string]any{"openAPIV3Schema": map[string]any{
						"type": "object", "x-kubernetes-preserve-unknown-fields": true,
					}},
				}},
			},
		}
		body, _ := json.Marshal(crd)
		if _, err := c.adminDo(ctx, http.MethodPost, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body, nil, http.StatusCreated, http.StatusConflict); err != nil {
			return fmt.Errorf("creating CRD %s: %w", name, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := waitFor(wctx, "CRD "+name+" established", nil, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
			var got struct {
				Status struct {
					Conditions []struct{ Type, Status string }
				}
			}
			if _, err := c.adminDo(ctx, http.MethodGet, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+name, nil, &got, http.StatusOK); err != nil {
				return false, err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == "Established" && cond.Status == "True" {
					return true, nil
				}
			}
			return false, fmt.Errorf("conditions %v", got.Status.Conditions)
		})
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// kwokConfig is kwok's configuration: the stages that make a Node Ready and
// a Pod Running (and deleted when asked), taken from kwok v0.8.0's
// kustomize/stage/node/fast and kustomize/stage/pod/fast, and one
// ClusterExec running every exec as a local process in workDir.
func kwokConfig(workDir string) string {
	return kwokStages + fmt.Sprintf(`---
apiVersion: %s
kind: ClusterExec
metadata:
  name: local
spec:
  execs:
  - local:
      workDir: %q
`, kwokAPI, workDir)
}

// PodOptions configure [Node.CreatePod].
type PodOptions struct {
	// PortForwards maps a pod port to the loopback address (host:port) the
	// node agent connects port-forward streams for that port to (kwok only).
	PortForwards map[int32]string
}

// Pod is a Running pod on a [Node], with one container named "main".
type Pod struct {
	Namespace, Name string
	// LogsFile is the container's log in the CRI format; on a kwok node
	// kubectl logs and kubectl attach read it (see [Pod.AppendLog]).
	LogsFile string

	mu sync.Mutex
}

// CreatePod creates the ServiceAccount "default" in namespace if missing (no
// controller-manager runs) and a pod named name on the node, and waits until
// the pod is Running. On a kwok node it first configures kwok's logs, attach
// and port-forward for the pod and then also waits until kwok serves its
// logs; on a test-kubelet node it sets the pod's status itself.
func (n *Node) CreatePod(ctx context.Context, namespace, name string, opts PodOptions) (*Pod, error) {
	c := n.cluster
	if err := n.ensureServiceAccount(ctx, namespace); err != nil {
		return nil, err
	}
	p := &Pod{Namespace: namespace, Name: name, LogsFile: filepath.Join(n.dir, "logs", namespace+"_"+name+".log")}
	if err := os.WriteFile(p.LogsFile, nil, 0o644); err != nil {
		return nil, err
	}
	switch {
	case n.Agent == AgentKwok:
		if err := n.configureKwok(ctx, p, opts); err != nil {
			return nil, err
		}
	case len(opts.PortForwards) > 0:
		return nil, fmt.Errorf("the %s node agent serves exec only; port-forward needs a kwok node", n.Agent)
	}
	const image = "frontgate.test/none:0"
	pod, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec": map[string]any{
			"nodeName":                      n.Name,
			"automountServiceAccountToken":  false,
			"terminationGracePeriodSeconds": 0,
			"containers":                    []any{map[string]any{"name": "main", "image": image}},
		},
	})
	podPath := "/api/v1/namespaces/" + namespace + "/pods/" + name
	if _, err := c.adminDo(ctx, http.MethodPost, "/api/v1/namespaces/"+namespace+"/pods", pod, nil, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("creating pod %s/%s: %w", namespace, name, err)
	}
	if n.Agent == AgentTestKubelet {
		now := time.Now().UTC().Format(time.RFC3339)
		status := fmt.Sprintf(`{"status":{"phase":"Running","hostIP":"127.0.0.1","podIP":"127.0.0.1","startTime":%[1]q,
			"conditions":[{"type":"Initialized","status":"True","lastTransitionTime":%[1]q},{"type":"Ready","status":"True","lastTransitionTime":%[1]q},{"type":"ContainersReady","status":"True","lastTransitionTime":%[1]q}],
			"containerStatuses":[{"name":"main","image":%[2]q,"imageID":"","ready":true,"started":true,"restartCount":0,"state":{"running":{"startedAt":%[1]q}}}]}}`, now, image)
		if _, err := c.adminPatch(ctx, podPath+"/status", status); err != nil {
			return nil, fmt.Errorf("setting the status of pod %s/%s: %w", namespace, name, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := waitFor(wctx, "pod "+namespace+"/"+name+" Running", n.Process, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var got struct{ Status struct{ Phase string } }
		if _, err := c.adminDo(ctx, http.MethodGet, podPath, nil, &got, http.StatusOK); err != nil {
			return false, err
		}
		return got.Status.Phase == "Running", fmt.Errorf("phase %q", got.Status.Phase)
	})
	if err != nil {
		return nil, err
	}
	if n.Agent == AgentKwok {
		err = waitFor(wctx, "kwok serving the logs of pod "+namespace+"/"+name, n.Process, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
			_, err := c.adminDo(ctx, http.MethodGet, podPath+"/log", nil, nil, http.StatusOK)
			return err == nil, err
		})
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// configureKwok creates kwok's PortForward (if opts has forwards), Attach and
// Logs objects for p. Logs comes last: once kwok serves the pod's logs it
// has seen the others too (informers started together, objects created
// earlier).
func (n *Node) configureKwok(ctx context.Context, p *Pod, opts PodOptions) error {
	var objects []map[string]any
	if len(opts.PortForwards) > 0 {
		ports := make([]int32, 0, len(opts.PortForwards))
		for port := range opts.PortForwards {
			ports = append(ports, port)
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i] < ports[j] })
		var forwards []any
		for _, port := range ports {
			host, tport, err := net.SplitHostPort(opts.PortForwards[port])
			if err != nil {
				return fmt.Errorf("port-forward target for port %d: %w", port, err)
			}
			tp, err := strconv.Atoi(tport)
			if err != nil {
				return fmt.Errorf("port-forward target for port %d: %w", port, err)
			}
			forwards = append(forwards, map[string]any{"ports": []int32{port}, "target": map[string]any{"address": host, "port": tp}})
		}
		objects = append(objects, map[string]any{"kind": "PortForward", "plural": "portforwards", "spec": map[string]any{"forwards": forwards}})
	}
	objects = append(objects,
		map[string]any{"kind": "Attach", "plural": "attaches", "spec": map[string]any{"attaches": []any{map[string]any{"logsFile": p.LogsFile}}}},
		map[string]any{"kind": "Logs", "plural": "logs", "spec": map[string]any{"logs": []any{map[string]any{"logsFile": p.LogsFile, "follow": true}}}},
	)
	for _, o := range objects {
		body, _ := json.Marshal(map[string]any{
			"apiVersion": kwokAPI, "kind": o["kind"],
			"metadata": map[string]any{"name": p.Name, "namespace": p.Namespace},
			"spec":     o["spec"],
		})
		path := fmt.Sprintf("/apis/%s/namespaces/%s/%s", kwokAPI, p.Namespace, o["plural"])
		if _, err := n.cluster.adminDo(ctx, http.MethodPost, path, body, nil, http.StatusCreated); err != nil {
			return fmt.Errorf("creating kwok %s %s/%s: %w", o["kind"], p.Namespace, p.Name, err)
		}
	}
	return nil
}

// ensureServiceAccount creates the ServiceAccount "default" in namespace
// unless it exists.
func (n *Node) ensureServiceAccount(ctx context.Context, namespace string) error {
	n.saMu.Lock()
	defer n.saMu.Unlock()
	if n.saDone[namespace] {
		return nil
	}
	sa := fmt.Sprintf(`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default","namespace":%q}}`, namespace)
	if _, err := n.cluster.adminDo(ctx, http.MethodPost, "/api/v1/namespaces/"+namespace+"/serviceaccounts", []byte(sa), nil, http.StatusCreated, http.StatusConflict); err != nil {
		return fmt.Errorf("creating ServiceAccount %s/default: %w", namespace, err)
	}
	n.saDone[namespace] = true
	return nil
}

// AppendLog appends one line to the container's log as the container
// runtime would write it: timestamp, stream ("stdout" or "stderr"), "F"
// (full line) and the text. Followers (kubectl logs -f, kubectl attach) see
// it at once.
func (p *Pod) AppendLog(stream, line string) error {
	if strings.ContainsAny(line, "\n") {
		return errors.New("AppendLog: the line must not contain a newline")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.LogsFile, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s %s F %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// adminDo sends a request to kube-apiserver as the admin and fails unless
// the status is one of want. When out is not nil the body is decoded into
// it.
func (c *Cluster) adminDo(ctx context.Context, method, path string, body []byte, out any, want ...int) (int, error) {
	return c.adminRequest(ctx, method, path, "application/json", body, out, want...)
}

// adminPatch sends a JSON merge patch as the admin.
func (c *Cluster) adminPatch(ctx context.Context, path, patch string) (int, error) {
	return c.adminRequest(ctx, http.MethodPatch, path, "application/merge-patch+json", []byte(patch), nil, http.StatusOK)
}

func (c *Cluster) adminRequest(ctx context.Context, method, path, contentType string, body []byte, out any, want ...int) (int, error) {
	client, err := c.adminClient()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.APIServerURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			if out != nil && resp.StatusCode < 300 {
				if err := json.Unmarshal(data, out); err != nil {
					return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
				}
			}
			return resp.StatusCode, nil
		}
	}
	return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %.300s", method, path, resp.StatusCode, data)
}

// adminClient returns the cluster's shared admin HTTP client.
func (c *Cluster) adminClient() (*http.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin != nil {
		return c.admin, nil
	}
	client, err := c.AdminHTTPClient()
	if err != nil {
		return nil, err
	}
	c.admin = client
	c.closers = append(c.closers, client.CloseIdleConnections)
	return client, nil
}
