package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// silentRelay is a TCP relay that can go silent: keep every connection
// open and deliver nothing, as a network partition or a peer whose host
// died does.
type silentRelay struct {
	l      net.Listener
	target string
	silent atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	closed chan struct{}
}

func newSilentRelay(t *testing.T, target string) *silentRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &silentRelay{l: l, target: target, closed: make(chan struct{})}
	go r.accept()
	t.Cleanup(func() {
		close(r.closed)
		l.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *silentRelay) accept() {
	for {
		client, err := r.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			client.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, client, up)
		r.mu.Unlock()
		go r.pipe(up, client)
		go r.pipe(client, up)
	}
}

func (r *silentRelay) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for r.silent.Load() {
			select {
			case <-r.closed:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// TestSilentUpstreamConnection: frontgate's HTTP/2 connection to
// kube-apiserver, which every ordinary request shares, goes silent. With the
// health check, a request sent over it is answered with 502 once the PING
// goes unanswered; without it (the control), the request hangs.
func TestSilentUpstreamConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		health healthCheck
		hangs  bool
	}{
		{"health-checked", healthCheck{idle: 200 * time.Millisecond, timeout: 200 * time.Millisecond}, false},
		{"control: no health check", healthCheck{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			relay := newSilentRelay(t, up.Listener.Addr().String())
			viaRelay, _ := url.Parse("https://" + relay.l.Addr().String())
			cert := testClientCertificate(t)
			transports := newTransports(UpstreamTLS{
				RootCAs:           up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs,
				ClientCertificate: func() (*tls.Certificate, error) { return cert, nil },
			}, tc.health)
			p := newTestProxy(t, up, func(c *Config) { c.Upstream, c.Transports = viaRelay, transports })
			get := func(timeout time.Duration) (int, error) {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api", nil)
				req.Header.Set("Authorization", "Bearer alice")
				resp, err := p.Client().Do(req)
				if err != nil {
					return 0, err
				}
				defer resp.Body.Close()
				_, err = io.ReadAll(resp.Body)
				return resp.StatusCode, err
			}
			if code, err := get(5 * time.Second); err != nil || code != http.StatusOK {
				t.Fatalf("before the upstream connection went silent: %d %v", code, err)
			}
			relay.silent.Store(true)
			start := time.Now()
			code, err := get(2 * time.Second)
			switch {
			case tc.hangs && err == nil:
				t.Fatalf("without a health check the request was answered (%d): the test does not reproduce a silent connection", code)
			case tc.hangs:
				t.Logf("without a health check: still no answer after %s", time.Since(start).Round(time.Millisecond))
			case err != nil || code != http.StatusBadGateway:
				t.Fatalf("request over a silent upstream connection: %d %v after %s, want 502 within the health check", code, err, time.Since(start).Round(time.Millisecond))
			default:
				t.Logf("502 after %s", time.Since(start).Round(time.Millisecond))
			}
		})
	}
}

// TestOrdinaryTransportHTTP2Settings pins the HTTP/2 settings of the
// transport ordinary requests share: client-go's health check, and no HPACK
// dynamic table for request headers (every request's new Audit-ID would
// churn it; BENCHMARKS.md).
func TestOrdinaryTransportHTTP2Settings(t *testing.T) {
	tr := NewTransports(UpstreamTLS{}).Ordinary.(*http.Transport)
	got := tr.HTTP2
	if got == nil {
		t.Fatal("no HTTP/2 settings")
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"SendPingTimeout", int64(got.SendPingTimeout), int64(30 * time.Second)},
		{"PingTimeout", int64(got.PingTimeout), int64(15 * time.Second)},
		{"MaxEncoderHeaderTableSize", int64(got.MaxEncoderHeaderTableSize), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !tr.Protocols.HTTP2() {
		t.Error("HTTP/2 is off")
	}
}
