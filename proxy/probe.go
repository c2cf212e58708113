package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// UpstreamProbe tells whether kube-apiserver answers, for frontgate's
// /readyz: it asks kube-apiserver's /readyz every Interval WITHOUT the
// front-proxy certificate (a probe has no identity to forward). Any answer
// below 500 — 401 included, where anonymous requests are disabled — means
// kube-apiserver is reachable and serving.
type UpstreamProbe struct {
	upstream  *url.URL
	transport http.RoundTripper
	interval  time.Duration

	mu  sync.Mutex
	err error
}

// NewUpstreamProbe probes upstream through transport (which must not
// present the front-proxy certificate) every interval. It is not ready
// until its first probe succeeded.
func NewUpstreamProbe(upstream *url.URL, transport http.RoundTripper, interval time.Duration) *UpstreamProbe {
	return &UpstreamProbe{upstream: upstream, transport: transport, interval: interval, err: fmt.Errorf("kube-apiserver at %s not probed yet", upstream.Redacted())}
}

// SetTransport replaces the transport, for example after the upstream CA
// rotated.
func (p *UpstreamProbe) SetTransport(transport http.RoundTripper) {
	p.mu.Lock()
	p.transport = transport
	p.mu.Unlock()
}

// Run probes until ctx ends.
func (p *UpstreamProbe) Run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *UpstreamProbe) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(p.interval, time.Second))
	defer cancel()
	u := p.upstream.JoinPath("/readyz")
	p.mu.Lock()
	transport := p.transport
	p.mu.Unlock()
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := transport.RoundTrip(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("its /readyz answered %s", resp.Status)
		}
		return nil
	}()
	if err != nil {
		err = fmt.Errorf("kube-apiserver at %s: %w", p.upstream.Redacted(), err)
	}
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// Ready returns the result of the last probe.
func (p *UpstreamProbe) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
