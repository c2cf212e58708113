package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// APIServer is a kube-apiserver process of the cluster. The one [Start]
// runs is at [Cluster.APIServerURL]; [Cluster.StartAPIServer] adds more on
// the same etcd, as in a highly available control plane, for tests that stop
// and restart one without disturbing the others.
type APIServer struct {
	// Name names its process and its logs.
	Name string
	// URL is its https URL on 127.0.0.1; it keeps its port across restarts.
	URL string
	// Port is its secure port.
	Port int
	// AuditLog is its audit log (JSON lines, every request at level
	// Metadata).
	AuditLog string

	cluster *Cluster
	mu      sync.Mutex
	process *Process
}

var apiServerCounter atomic.Int32

// StartAPIServer starts one more kube-apiserver on the cluster's etcd, with
// the same flags, certificates and --requestheader-* settings as the first,
// on a free loopback port, and waits for its /readyz. Objects written
// through either are seen by both. [APIServer.Stop] and [APIServer.Start]
// stop it and start it again on the same port; [Cluster.Stop] stops it too.
func (c *Cluster) StartAPIServer(ctx context.Context) (*APIServer, error) {
	return c.newAPIServer(ctx, fmt.Sprintf("kube-apiserver-%d", apiServerCounter.Add(1)+1))
}

// newAPIServer starts a kube-apiserver named name on a free port, retrying
// on another port when the probed one was taken in between.
func (c *Cluster) newAPIServer(ctx context.Context, name string) (*APIServer, error) {
	policy := filepath.Join(c.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		return nil, err
	}
	var lastErr error
	for range bindRetries {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		a := &APIServer{
			Name:     name,
			URL:      fmt.Sprintf("https://127.0.0.1:%d", port),
			Port:     port,
			AuditLog: filepath.Join(c.Dir, "logs", name+"-audit.log"),
			cluster:  c,
		}
		if lastErr = a.Start(ctx); lastErr == nil {
			return a, nil
		}
		if !addrInUse(lastErr) {
			break
		}
	}
	return nil, lastErr
}

// Start starts the kube-apiserver (again, after [APIServer.Stop]) on its
// port and waits until its /readyz answers 200. It fails if it is running.
func (a *APIServer) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.process != nil && a.process.Running() {
		return fmt.Errorf("%s is running", a.Name)
	}
	c := a.cluster
	args := []string{
		"--etcd-servers=" + c.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", a.Port),
		"--tls-cert-file=" + c.pki.servingCert,
		"--tls-private-key-file=" + c.pki.servingKey,
		"--client-ca-file=" + c.pki.caFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.pki.serviceAccountPubKey,
		"--service-account-signing-key-file=" + c.pki.serviceAccountKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(c.Dir, "pki", a.Name+"-generated"),
		"--profiling=false",
		"--audit-policy-file=" + filepath.Join(c.Dir, "audit-policy.yaml"),
		"--audit-log-path=" + a.AuditLog,
		"--audit-log-format=json",
		// Node agents (test/cluster's kwok node) are reached on their
		// InternalIP with a client certificate, and their serving
		// certificates are verified against the cluster CA.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-client-certificate=" + c.pki.kubeletClientCert,
		"--kubelet-client-key=" + c.pki.kubeletClientKey,
		"--kubelet-certificate-authority=" + c.pki.caFile,
	}
	args = append(args, c.RequestHeaderFlags...)
	c.logf("starting %s on %s", a.Name, a.URL)
	p, err := c.start(a.Name, c.Tools.KubeAPIServer, args, nil)
	if err != nil {
		return err
	}
	a.process = p
	client, err := c.AdminHTTPClient()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = waitFor(wctx, a.Name+" /readyz", p, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		return statusOK(get(ctx, client, a.URL+"/readyz"))
	})
	if err != nil {
		p.Stop()
		return err
	}
	c.logf("%s ready", a.Name)
	return nil
}

// Stop stops the kube-apiserver (SIGTERM, then SIGKILL after 10 s) and
// returns once it has exited.
func (a *APIServer) Stop() {
	if p := a.Process(); p != nil {
		p.Stop()
	}
}

// Process returns its current process (nil before the first start).
func (a *APIServer) Process() *Process {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.process
}

// Kill kills the kube-apiserver at once (SIGKILL), as a crash would, and
// returns once it has exited.
func (a *APIServer) Kill() error {
	p := a.Process()
	if p == nil {
		return errors.New(a.Name + " was never started")
	}
	return p.Kill()
}
