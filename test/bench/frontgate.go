package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// frontgate is a running `frontgate serve`.
type frontgate struct {
	*child
	url        string // https://127.0.0.1:PORT
	metricsURL string // http://127.0.0.1:PORT
}

// frontgateArgs are the serve flags of every local run: the upstream, the
// front-proxy certificate, the local issuer (RS256 and ES256), a groups
// claim, and --client-ca-file for the certificate scenario. Logging is
// frontgate's default (one text access line per request at info) to a file.
func frontgateArgs(p *benchPKI, upstreamURL, issuerURL string, port, metricsPort int) []string {
	return []string{
		"serve",
		"--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--tls-cert-file", p.servingCert,
		"--tls-private-key-file", p.servingKey,
		"--upstream", upstreamURL,
		"--upstream-ca-file", p.caFile,
		"--proxy-client-cert-file", p.proxyCert,
		"--proxy-client-key-file", p.proxyKey,
		"--oidc-issuer-url", issuerURL,
		"--oidc-client-id", clientID,
		"--oidc-signing-algs", "RS256,ES256",
		"--oidc-groups-claim", "groups",
		"--oidc-groups-prefix", "oidc:",
		"--client-ca-file", "users=" + p.userCAFile,
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startFrontgate runs bin serve with args from mkArgs(port, metricsPort)
// and waits until /readyz answers 200; it returns the time from exec to
// that answer. It retries on new ports when a port was taken meanwhile.
func startFrontgate(bin, logFile string, mkArgs func(port, metricsPort int) []string) (*frontgate, time.Duration, error) {
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		mport, err := freePort()
		if err != nil {
			return nil, 0, err
		}
		lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, 0, err
		}
		cmd := exec.Command(bin, mkArgs(port, mport)...)
		cmd.Stdout, cmd.Stderr = lf, lf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			lf.Close()
			return nil, 0, err
		}
		lf.Close()
		f := &frontgate{
			child:      started("frontgate", cmd, logFile),
			url:        fmt.Sprintf("https://127.0.0.1:%d", port),
			metricsURL: fmt.Sprintf("http://127.0.0.1:%d", mport),
		}
		err = waitReady(f.metricsURL, f.exited, 30*time.Second)
		if err == nil {
			return f, time.Since(start), nil
		}
		lastErr = err
		f.stop()
		if !strings.Contains(tail(logFile), "address already in use") {
			break
		}
	}
	return nil, 0, lastErr
}

// waitReady polls metricsURL/readyz every millisecond until it answers 200.
func waitReady(metricsURL string, exited <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("frontgate exited")
		case <-ctx.Done():
			return errors.New("frontgate not ready within " + timeout.String())
		case <-time.After(time.Millisecond):
		}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// buildFrontgate builds ./cmd/frontgate as `make build` does, into dir as
// name, with further build tags if any.
func buildFrontgate(root, dir, name string, tags ...string) (string, error) {
	out := filepath.Join(dir, name)
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "./cmd/frontgate")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/frontgate: %w\n%s", err, b)
	}
	return out, nil
}
