package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// LoadClientCertificate reads the front-proxy client certificate and key and
// refuses a pair kube-apiserver would not accept as an authenticating proxy:
// a key that does not match, a leaf without the clientAuth extended key usage,
// or an empty Subject CN (which --requestheader-allowed-names cannot name).
func LoadClientCertificate(certFile, keyFile string) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("front-proxy client certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if err := CheckClientCertificate(pair.Leaf); err != nil {
		return nil, fmt.Errorf("front-proxy client certificate %s: %w", certFile, err)
	}
	return &pair, nil
}

// CheckClientCertificate reports why leaf cannot serve as a front-proxy
// client certificate, or nil.
func CheckClientCertificate(leaf *x509.Certificate) error {
	clientAuth := len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			clientAuth = true
		}
	}
	var errs []error
	if !clientAuth {
		errs = append(errs, errors.New("it lacks the clientAuth extended key usage, so kube-apiserver rejects it; issue it with extKeyUsage clientAuth (frontgate pki init does)"))
	}
	if leaf.Subject.CommonName == "" {
		errs = append(errs, errors.New("its Subject has an empty CN, which --requestheader-allowed-names cannot name; issue it with a CN such as frontgate"))
	}
	return errors.Join(errs...)
}

// UpstreamTLS is how frontgate connects to kube-apiserver.
type UpstreamTLS struct {
	// RootCAs verifies kube-apiserver's serving certificate; nil uses the
	// system roots.
	RootCAs *x509.CertPool
	// ClientCertificate returns the certificate to present; it is asked on
	// every new connection, so a rotated certificate applies to new
	// connections while open ones continue. nil presents no certificate
	// (token passthrough).
	ClientCertificate func() (*tls.Certificate, error)
}

// Transports reach kube-apiserver: Ordinary for ordinary requests (HTTP/2
// preferred), Upgrade for upgrade requests (HTTP/1.1 only, one connection
// per request).
type Transports struct {
	Ordinary, Upgrade http.RoundTripper
}

// NewTransports returns the two transports that reach kube-apiserver with
// cfg's client certificate: one for ordinary requests, which prefers HTTP/2,
// and one for upgrade requests (WebSocket, SPDY), which speaks only HTTP/1.1
// and never reuses a connection, so a refused upgrade cannot leave a
// credentialed connection behind. Neither follows redirects (a Transport
// never does) nor limits how long a response may stream.
//
// The HTTP/2 connection, which every ordinary request and watch shares, is
// health-checked as client-go checks its own: after 30 s without a frame
// from kube-apiserver it sends a PING, and closes the connection when the
// PING is not answered within 15 s. Without it, a connection that went
// silent (a network partition, a kube-apiserver host that died without
// closing it, a load balancer that dropped the flow) would take every new
// request with it, for as long as TCP takes to give up: minutes.
func NewTransports(cfg UpstreamTLS) Transports {
	return newTransports(cfg, upstreamHealthCheck)
}

// healthCheck is when the HTTP/2 connection to kube-apiserver is pinged
// (after idle without a frame received) and how long the answer may take.
type healthCheck struct{ idle, timeout time.Duration }

// upstreamHealthCheck is client-go's default (HTTP2_READ_IDLE_TIMEOUT_SECONDS,
// HTTP2_PING_TIMEOUT_SECONDS).
var upstreamHealthCheck = healthCheck{idle: 30 * time.Second, timeout: 15 * time.Second}

func newTransports(cfg UpstreamTLS, health healthCheck) Transports {
	base := func() *http.Transport {
		return &http.Transport{
			Proxy: nil,
			DialContext: (&net.Dialer{
				Timeout:   10 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			TLSClientConfig:     clientTLS(cfg),
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	ordinary := base()
	ordinary.Protocols = new(http.Protocols)
	ordinary.Protocols.SetHTTP1(true)
	ordinary.Protocols.SetHTTP2(true)
	ordinary.ForceAttemptHTTP2 = true
	ordinary.HTTP2 = &http.HTTP2Config{
		SendPingTimeout: health.idle,
		PingTimeout:     health.timeout,
		// No HPACK dynamic table for request headers: every request carries a
		// new Audit-ID, which would enter the table and evict an entry, so
		// the identity headers were evicted and re-entered over and over;
		// that churn (and the stack growth of the goroutine writing the
		// headers) cost more CPU than the whole rest of frontgate's own work
		// per request (BENCHMARKS.md). Headers now go out as literals, a few
		// hundred bytes more per request on the connection to kube-apiserver.
		MaxEncoderHeaderTableSize: 1,
	}

	upgrade := base()
	upgrade.Protocols = new(http.Protocols)
	upgrade.Protocols.SetHTTP1(true)
	upgrade.DisableKeepAlives = true
	upgrade.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return Transports{Ordinary: ordinary, Upgrade: upgrade}
}

func clientTLS(cfg UpstreamTLS) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.RootCAs}
	if cfg.ClientCertificate != nil {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cfg.ClientCertificate()
		}
	}
	return c
}

// closeIdleConnections closes the idle connections of every transport that
// can; connections busy with a request (a watch, an exec session) stay.
func (t *Transports) closeIdleConnections() {
	if t == nil {
		return
	}
	for _, rt := range []http.RoundTripper{t.Ordinary, t.Upgrade} {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}
