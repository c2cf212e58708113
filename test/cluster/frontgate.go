package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FrontgateOptions configure [Cluster.StartFrontgate].
type FrontgateOptions struct {
	// Issuer is --oidc-issuer-url; empty means the cluster's OpenID Provider.
	Issuer string
	// ClientID is --oidc-client-id; empty means [ClientWeb].
	ClientID string
	// Upstream is --upstream; empty means the cluster's first
	// kube-apiserver ([Cluster.APIServerURL]). Its serving certificate must
	// verify with the cluster CA for 127.0.0.1, as every [APIServer]'s and
	// a TCP proxy's in front of one do.
	Upstream string
	// Args are further flags, e.g. --oidc-groups-claim amr.
	Args []string
	// AuthenticationConfig, when set, is passed as --authentication-config
	// instead of the --oidc-issuer-url and --oidc-client-id flags.
	AuthenticationConfig string
	// NoWait returns as soon as the metrics listener answers /healthz,
	// without waiting for /readyz (for starting frontgate before its issuer).
	NoWait bool
}

// Frontgate is a running `frontgate serve`.
type Frontgate struct {
	// URL is the proxy listener, https://127.0.0.1:PORT.
	URL string
	// MetricsURL is the metrics listener, http://127.0.0.1:PORT.
	MetricsURL string
	// Issuer is the OIDC issuer it trusts.
	Issuer string
	// Args are all flags it was started with.
	Args []string
	// Process is its process; its log is the JSON log frontgate writes.
	Process *Process

	cluster *Cluster
}

var fgCounter atomic.Int32

// StartFrontgate starts `frontgate serve` on free loopback ports, in front of
// the cluster's kube-apiserver, with the PKI of `frontgate pki init`, JSON
// logs, and opts. It waits until /readyz answers 200, or only until the
// process is up when opts.NoWait is set.
func (c *Cluster) StartFrontgate(ctx context.Context, opts FrontgateOptions) (*Frontgate, error) {
	if opts.Issuer == "" {
		opts.Issuer = c.OIDC.Issuer
	}
	if opts.ClientID == "" {
		opts.ClientID = ClientWeb
	}
	if opts.Upstream == "" {
		opts.Upstream = c.APIServerURL
	}
	n := fgCounter.Add(1)
	var lastErr error
	for range bindRetries {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		mport, err := FreePort()
		if err != nil {
			return nil, err
		}
		f := &Frontgate{
			URL:        fmt.Sprintf("https://127.0.0.1:%d", port),
			MetricsURL: fmt.Sprintf("http://127.0.0.1:%d", mport),
			Issuer:     opts.Issuer,
			cluster:    c,
		}
		f.Args = append([]string{
			"serve",
			"--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport),
			"--tls-cert-file", c.frontgateFile("serving.crt"),
			"--tls-private-key-file", c.frontgateFile("serving.key"),
			"--upstream", opts.Upstream,
			"--upstream-ca-file", c.CAFile,
			"--proxy-client-cert-file", c.frontgateFile("proxy-client.crt"),
			"--proxy-client-key-file", c.frontgateFile("proxy-client.key"),
			"--log-format", "json",
		}, opts.Args...)
		if opts.AuthenticationConfig != "" {
			f.Args = append(f.Args, "--authentication-config", opts.AuthenticationConfig)
		} else {
			f.Args = append(f.Args, "--oidc-issuer-url", opts.Issuer, "--oidc-client-id", opts.ClientID)
		}
		c.logf("starting frontgate %s (metrics %s): %s", f.URL, f.MetricsURL, strings.Join(opts.Args, " "))
		f.Process, err = c.start(fmt.Sprintf("frontgate-%d", n), c.FrontgateBinary, f.Args, nil)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.frontgates = append(c.frontgates, f)
		c.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		lastErr = f.waitStatus(wctx, "/healthz")
		if lastErr == nil && !opts.NoWait {
			lastErr = f.waitStatus(wctx, "/readyz")
		}
		cancel()
		if lastErr == nil {
			return f, nil
		}
		f.Process.Stop()
		if !addrInUse(lastErr) {
			break
		}
	}
	return nil, lastErr
}

// Stop stops frontgate (SIGTERM, then SIGKILL after 10 s).
func (f *Frontgate) Stop() { f.Process.Stop() }

// WaitReady waits until frontgate's /readyz answers 200, or ctx ends, or
// frontgate exits.
func (f *Frontgate) WaitReady(ctx context.Context) error { return f.waitStatus(ctx, "/readyz") }

func (f *Frontgate) waitStatus(ctx context.Context, path string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return waitFor(ctx, "frontgate "+path, f.Process, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
		return statusOK(get(ctx, client, f.MetricsURL+path))
	})
}

// Ready returns the status code of frontgate's /readyz.
func (f *Frontgate) Ready(ctx context.Context) (int, error) {
	code, _, err := get(ctx, &http.Client{Timeout: 5 * time.Second}, f.MetricsURL+"/readyz")
	return code, err
}

// HTTPClient returns a client for the proxy listener that trusts frontgate's
// serving CA and sends no client certificate. With http1 it speaks only
// HTTP/1.1 (needed to send hop-by-hop headers such as Connection, and to put
// header names on the wire in the letter case given).
func (f *Frontgate) HTTPClient(http1 bool) (*http.Client, error) {
	pool, err := certPool(f.cluster.frontgateFile("serving-ca.crt"))
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: !http1}
	if http1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}

// Metrics fetches frontgate's /metrics.
func (f *Frontgate) Metrics(ctx context.Context) (Metrics, error) {
	code, body, err := get(ctx, &http.Client{Timeout: 5 * time.Second}, f.MetricsURL+"/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: status %d", f.MetricsURL, code)
	}
	return ParseMetrics(body)
}

// Sample is one line of the Prometheus text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics are the samples of one /metrics scrape.
type Metrics []Sample

// Sum adds the values of all samples named name whose labels include every
// pair in labels.
func (m Metrics) Sum(name string, labels map[string]string) float64 {
	var sum float64
outer:
	for _, s := range m {
		if s.Name != name {
			continue
		}
		for k, v := range labels {
			if s.Labels[k] != v {
				continue outer
			}
		}
		sum += s.Value
	}
	return sum
}

// ParseMetrics parses the Prometheus text exposition format.
func ParseMetrics(text []byte) (Metrics, error) {
	var out Metrics
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s := Sample{Labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.Name = line[:i]
			var err error
			if rest, err = parseLabels(line[i+1:], s.Labels); err != nil {
				return nil, fmt.Errorf("metrics line %q: %w", line, err)
			}
		} else if i >= 0 {
			s.Name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		s.Value = v
		out = append(out, s)
	}
	return out, nil
}

// parseLabels parses `a="b",c="d"}` into labels and returns what follows the
// closing brace.
func parseLabels(s string, labels map[string]string) (string, error) {
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return "", errors.New("bad label")
		}
		name := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		for {
			if s == "" {
				return "", errors.New("unterminated label value")
			}
			ch := s[0]
			s = s[1:]
			if ch == '"' {
				break
			}
			if ch == '\\' && s != "" {
				switch s[0] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[0])
				}
				s = s[1:]
				continue
			}
			val.WriteByte(ch)
		}
		labels[name] = val.String()
	}
}
