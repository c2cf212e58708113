package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options configure [Start].
type Options struct {
	// Tools are the binaries to run. Required.
	Tools *Tools
	// Dir is the working directory for PKI, data and logs. Empty means a new
	// temporary directory, removed by Stop unless KeepDir was called.
	Dir string
	// FrontgateBinary is a prebuilt frontgate binary. Empty means build
	// ./cmd/frontgate of the module once into Dir (env FRONTGATE_BINARY, if
	// set, is used instead of building).
	FrontgateBinary string
	// Users are the OpenID Provider's users; nil means [DefaultUsers].
	Users []User
	// Logf receives progress messages; nil discards them.
	Logf func(format string, args ...any)
}

// Cluster is a running etcd, kube-apiserver and OpenID Provider, plus the
// frontgate processes started through it.
type Cluster struct {
	// Dir is the working directory (PKI, data, logs, kubeconfigs).
	Dir string
	// Tools are the binaries in use.
	Tools *Tools
	// FrontgateBinary is the frontgate binary every frontgate is started from.
	FrontgateBinary string
	// APIServerURL is kube-apiserver's https URL on 127.0.0.1.
	APIServerURL string
	// CAFile is the CA bundle of kube-apiserver's serving certificate (and of
	// its --client-ca-file).
	CAFile string
	// AdminKubeconfig is a kubeconfig with a system:masters client
	// certificate, pointing directly at kube-apiserver.
	AdminKubeconfig string
	// FrontgatePKIDir holds the files `frontgate pki init` wrote.
	FrontgatePKIDir string
	// RequestHeaderFlags are the kube-apiserver flags `frontgate flags`
	// printed, passed to kube-apiserver verbatim.
	RequestHeaderFlags []string
	// APIServerAuditLog is kube-apiserver's own audit log (JSON lines, every
	// request at level Metadata).
	APIServerAuditLog string
	// OIDC is the OpenID Provider started with the cluster.
	OIDC *OIDCProvider
	// Users are the OpenID Provider's users.
	Users []User

	pki     *clusterPKI
	etcdURL string
	logf    func(string, ...any)
	ownsDir bool
	keepDir bool

	mu         sync.Mutex
	procs      []*Process
	frontgates []*Frontgate
	secrets    []string
	closers    []func()
	admin      *http.Client
	stopped    bool
}

// Start builds frontgate (unless given), creates its PKI with `frontgate pki
// init`, and starts etcd, kube-apiserver (with the flags of `frontgate
// flags`) and the OpenID Provider, each waited for until ready. On error
// everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Tools == nil {
		return nil, errors.New("cluster.Options.Tools is required")
	}
	c := &Cluster{Tools: opts.Tools, Dir: opts.Dir, Users: opts.Users, logf: opts.Logf}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	}
	if c.Users == nil {
		c.Users = DefaultUsers()
	}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "frontgate-e2e-"); err != nil {
			return nil, err
		}
		c.ownsDir = true
	}
	defer func() {
		if err != nil {
			c.KeepDir()
			c.logf("start failed; logs are in %s", c.Dir)
			c.Stop()
		}
	}()
	for _, d := range []string{"logs", "pki", "kubeconfigs"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}

	c.FrontgateBinary = opts.FrontgateBinary
	if c.FrontgateBinary == "" {
		c.FrontgateBinary = os.Getenv("FRONTGATE_BINARY")
	}
	if c.FrontgateBinary == "" {
		if c.FrontgateBinary, err = c.buildFrontgate(ctx); err != nil {
			return nil, err
		}
	}
	if c.pki, err = writeClusterPKI(filepath.Join(c.Dir, "pki", "cluster")); err != nil {
		return nil, fmt.Errorf("generating the cluster PKI: %w", err)
	}
	c.CAFile = c.pki.caFile
	if err := c.frontgatePKI(ctx); err != nil {
		return nil, err
	}
	etcdURL, err := c.startEtcd(ctx)
	if err != nil {
		return nil, err
	}
	c.etcdURL = etcdURL
	apiServer, err := c.newAPIServer(ctx, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	c.APIServerURL, c.APIServerAuditLog = apiServer.URL, apiServer.AuditLog
	if err := c.writeAdminKubeconfig(); err != nil {
		return nil, err
	}
	c.logf("starting the OpenID Provider (zitadel/oidc example server)")
	if c.OIDC, err = c.StartOIDCProvider(ctx, 0); err != nil {
		return nil, err
	}
	c.logf("OpenID Provider ready at %s", c.OIDC.Issuer)
	return c, nil
}

// buildFrontgate builds ./cmd/frontgate into the cluster directory.
func (c *Cluster) buildFrontgate(ctx context.Context) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	out := filepath.Join(c.Dir, "frontgate")
	c.logf("building frontgate (go build ./cmd/frontgate)")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/frontgate")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/frontgate: %w\n%s", err, b)
	}
	return out, nil
}

// runFrontgate runs a short frontgate command and returns its stdout; its
// stderr (warnings) goes to the frontgate-cli log.
func (c *Cluster) runFrontgate(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, c.FrontgateBinary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	logPath := filepath.Join(c.Dir, "logs", "frontgate-cli.log")
	if f, ferr := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "=== frontgate %s\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), stdout.Bytes(), stderr.Bytes())
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("frontgate %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// frontgatePKI runs `frontgate pki init` and `frontgate flags`.
func (c *Cluster) frontgatePKI(ctx context.Context) error {
	c.FrontgatePKIDir = filepath.Join(c.Dir, "pki", "frontgate")
	c.logf("frontgate pki init --dir %s", c.FrontgatePKIDir)
	if _, err := c.runFrontgate(ctx, "pki", "init", "--dir", c.FrontgatePKIDir, "--hosts", "localhost,127.0.0.1"); err != nil {
		return err
	}
	for _, f := range []string{"requestheader-ca.crt", "proxy-client.crt", "proxy-client.key", "serving-ca.crt", "serving.crt", "serving.key"} {
		if _, err := os.Stat(filepath.Join(c.FrontgatePKIDir, f)); err != nil {
			return fmt.Errorf("frontgate pki init did not write %s: %w", f, err)
		}
	}
	out, err := c.runFrontgate(ctx, "flags",
		"--requestheader-client-ca-file", c.frontgateFile("requestheader-ca.crt"),
		"--proxy-client-cert-file", c.frontgateFile("proxy-client.crt"),
		"--format", "args")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "--requestheader-") || !strings.Contains(line, "=") {
			return fmt.Errorf("frontgate flags printed an unexpected line %q; want only --requestheader-*=value lines", line)
		}
		c.RequestHeaderFlags = append(c.RequestHeaderFlags, line)
	}
	if len(c.RequestHeaderFlags) == 0 {
		return errors.New("frontgate flags printed nothing")
	}
	c.logf("kube-apiserver flags from frontgate flags: %s", strings.Join(c.RequestHeaderFlags, " "))
	return nil
}

func (c *Cluster) frontgateFile(name string) string { return filepath.Join(c.FrontgatePKIDir, name) }

// start starts a process and registers it for Stop.
func (c *Cluster) start(name, bin string, args, env []string) (*Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, errors.New("cluster is stopped")
	}
	p, err := startProcess(name, filepath.Join(c.Dir, "logs", name+".log"), bin, args, env)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// startEtcd starts etcd and waits for /health.
func (c *Cluster) startEtcd(ctx context.Context) (string, error) {
	var lastErr error
	for range bindRetries {
		port, err := FreePort()
		if err != nil {
			return "", err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		c.logf("starting etcd on %s", url)
		p, err := c.start("etcd", c.Tools.Etcd, []string{
			"--name", "e2e",
			"--data-dir", filepath.Join(c.Dir, "etcd-data"),
			"--listen-client-urls", url,
			"--advertise-client-urls", url,
			"--listen-peer-urls", "http://127.0.0.1:0",
			"--unsafe-no-fsync",
			"--log-level", "warn",
		}, nil)
		if err != nil {
			return "", err
		}
		client := &http.Client{Timeout: 2 * time.Second}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		lastErr = waitFor(wctx, "etcd /health", p, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
			code, body, err := get(ctx, client, url+"/health")
			if err != nil {
				return false, err
			}
			return code == 200 && bytes.Contains(body, []byte(`"true"`)), fmt.Errorf("/health: %d %s", code, body)
		})
		cancel()
		if lastErr == nil {
			return url, nil
		}
		p.Stop()
		if !addrInUse(lastErr) {
			break
		}
	}
	return "", lastErr
}

// AdminHTTPClient returns an HTTP client that talks to kube-apiserver
// directly as the system:masters admin (client certificate).
func (c *Cluster) AdminHTTPClient() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(c.pki.adminCert, c.pki.adminKey)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: c.pki.ca.CertPool(), Certificates: []tls.Certificate{cert}},
			ForceAttemptHTTP2: true,
		},
	}, nil
}

// get performs a GET and returns the status and body.
func get(ctx context.Context, client *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// statusOK turns the result of get into a waitFor check: done on 200, else
// the reason.
func statusOK(code int, body []byte, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	if code != http.StatusOK {
		return false, fmt.Errorf("HTTP %d: %.200s", code, body)
	}
	return true, nil
}

// RecordSecret remembers a credential (an ID token) so that tests can check
// that no log contains it. Tokens obtained through the cluster's OpenID
// Providers and token issuers are recorded automatically.
func (c *Cluster) RecordSecret(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets = append(c.secrets, s)
}

// Secrets returns every recorded credential.
func (c *Cluster) Secrets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.secrets...)
}

// Frontgates returns every frontgate started through the cluster, stopped
// ones included.
func (c *Cluster) Frontgates() []*Frontgate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Frontgate(nil), c.frontgates...)
}

// KeepDir makes Stop leave the working directory in place (for inspecting
// logs after a failure).
func (c *Cluster) KeepDir() {
	c.mu.Lock()
	c.keepDir = true
	c.mu.Unlock()
}

// Stop stops every process the cluster started, newest first, closes the
// in-process servers, and removes the working directory if Start created it
// and KeepDir was not called. It is safe to call more than once and
// concurrently (e.g. from a signal handler).
func (c *Cluster) Stop() {
	c.mu.Lock()
	c.stopped = true
	procs := c.procs
	c.procs = nil
	closers := c.closers
	c.closers = nil
	remove := c.ownsDir && !c.keepDir
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
	for _, f := range closers {
		f()
	}
	if remove {
		_ = os.RemoveAll(c.Dir)
	}
}

// DumpLogs writes the last n lines of every log the cluster produced to w.
func (c *Cluster) DumpLogs(w io.Writer, n int) {
	logs, _ := filepath.Glob(filepath.Join(c.Dir, "logs", "*.log"))
	for _, l := range logs {
		fmt.Fprintf(w, "\n===== last %d lines of %s =====\n%s\n", n, l, tailFile(l, n))
	}
}
