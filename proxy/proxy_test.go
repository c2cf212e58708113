package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
)

// upstream is a fake kube-apiserver that records what reached it.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests = append(u.requests, r.Clone(context.Background()))
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"user": r.Header.Values("X-Remote-User"), "groups": r.Header.Values("X-Remote-Group"), "proto": r.Proto})
	}))
	u.EnableHTTP2 = true
	u.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	u.StartTLS()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.requests...)
}

// tokens is a fake authenticator: "Bearer alice" is alice in devs.
var tokens = auth.AuthenticatorFunc(func(r *http.Request) (*auth.Identity, bool, error) {
	token, ok := auth.BearerToken(r)
	switch {
	case !ok:
		return nil, false, nil
	case token == "alice":
		return &auth.Identity{Name: "alice", Groups: []string{"devs"}, Source: "test"}, true, nil
	case token == "evil":
		return &auth.Identity{Name: "alice\r\nX-Remote-Group: system:masters"}, true, nil
	case token == "many-groups":
		return &auth.Identity{Name: "alice", Groups: make([]string, 200)}, true, nil
	default:
		return nil, false, &auth.Error{Reason: auth.ReasonTokenExpired, Message: "token expired at 2026-11-27T08:00:00Z"}
	}
})

func newTestProxy(t *testing.T, up *upstream, mutate ...func(*Config)) *httptest.Server {
	return startTestProxy(t, up, mutate...).server
}

func newTestProxyWithMetrics(t *testing.T, up *upstream, mutate ...func(*Config)) (*httptest.Server, *prometheus.Registry) {
	p := startTestProxy(t, up, mutate...)
	return p.server, p.registry
}

// testProxy is frontgate's handler on a TLS test server in front of up.
type testProxy struct {
	server   *httptest.Server
	handler  *Handler
	registry *prometheus.Registry
}

// startTestProxy serves a handler for up with the fake authenticator and a
// client certificate with CN frontgate; mutate adjusts the configuration.
func startTestProxy(t *testing.T, up *upstream, mutate ...func(*Config)) testProxy {
	t.Helper()
	return serveTestHandler(t, newTestHandler(t, up, mutate...))
}

// newTestHandler is the handler startTestProxy serves, not yet served.
func newTestHandler(t *testing.T, up *upstream, mutate ...func(*Config)) testProxy {
	t.Helper()
	reg := prometheus.NewRegistry()
	u, _ := url.Parse(up.URL)
	cfg := Config{
		Upstream: u, Authenticator: tokens, HeaderNames: DefaultHeaderNames(), Limits: DefaultLimits(),
		Transports: upstreamTransportsFor(up, testClientCertificate(t)),
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:    NewMetrics(reg),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testProxy{handler: h, registry: reg}
}

// serveTestHandler serves p.handler on a TLS test server with HTTP/2.
func serveTestHandler(t *testing.T, p testProxy) testProxy {
	t.Helper()
	srv := httptest.NewUnstartedServer(p.handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.server = srv
	return p
}

// upstreamTransportsFor reaches up presenting cert (nil: no certificate).
func upstreamTransportsFor(up *upstream, cert *tls.Certificate) Transports {
	cfg := UpstreamTLS{RootCAs: up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	if cert != nil {
		cfg.ClientCertificate = func() (*tls.Certificate, error) { return cert, nil }
	}
	return NewTransports(cfg)
}

// gauge returns the value of a gauge with the given label, or 0.
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func do(t *testing.T, client *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestForwardsEstablishedIdentityOnly(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up)
	// HTTP/1.1, where a client may name headers in Connection.
	client := p.Client()
	h1 := client.Transport.(*http.Transport).Clone()
	h1.Protocols = new(http.Protocols)
	h1.Protocols.SetHTTP1(true)
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	client.Transport = h1
	tests := []struct {
		name   string
		header http.Header
	}{
		{"plain", nil},
		{"spoofed identity headers in mixed case", http.Header{"x-remote-user": {"admin"}, "X-REMOTE-GROUP": {"system:masters"}, "X-Remote-Uid": {"0"}, "X-Remote-Extra-Scopes": {"all"}}},
		{"underscore variants", http.Header{"X_Remote_User": {"admin"}, "X_Remote_Group": {"system:masters"}}},
		{"Connection names the identity headers", http.Header{"Connection": {"X-Remote-User, X-Remote-Group"}, "X-Remote-User": {"admin"}}},
		{"Connection names Authorization", http.Header{"Connection": {"Authorization"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer alice"}}
			for k, v := range tt.header {
				h[k] = v
			}
			resp, body := do(t, client, "GET", p.URL+"/api", h)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := up.seen()[len(up.seen())-1]
			if u := got.Header.Values("X-Remote-User"); len(u) != 1 || u[0] != "alice" {
				t.Errorf("X-Remote-User = %q, want [alice]", u)
			}
			if g := got.Header.Values("X-Remote-Group"); len(g) != 1 || g[0] != "devs" {
				t.Errorf("X-Remote-Group = %q, want [devs]", g)
			}
			for k := range got.Header {
				lk := strings.ToLower(k)
				if lk == "authorization" || strings.HasPrefix(lk, "x-remote-extra") || lk == "x-remote-uid" || strings.Contains(lk, "_") {
					t.Errorf("header %q reached kube-apiserver", k)
				}
			}
		})
	}
}

func TestUnauthenticatedRequestsAreAnsweredAndNeverForwarded(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up)
	tests := []struct {
		name       string
		header     http.Header
		wantCode   int
		wantReason string
		wantText   string
	}{
		{"no credentials", nil, 401, "Unauthorized", "no credentials"},
		{"spoofed headers without a token", http.Header{"X-Remote-User": {"admin"}}, 401, "Unauthorized", "no credentials"},
		{"rejected token", http.Header{"Authorization": {"Bearer expired"}}, 401, "Unauthorized", "token expired at 2026-11-27T08:00:00Z"},
		{"unsafe identity", http.Header{"Authorization": {"Bearer evil"}}, 500, "InternalError", "control character"},
		{"too many groups", http.Header{"Authorization": {"Bearer many-groups"}}, 431, "BadRequest", "200 groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(up.seen())
			resp, body := do(t, p.Client(), "GET", p.URL+"/api/v1/pods", tt.header)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantCode, body)
			}
			var status struct {
				Kind, Reason, Message string
				Code                  int
			}
			if err := json.Unmarshal([]byte(body), &status); err != nil || status.Kind != "Status" || status.Code != tt.wantCode {
				t.Fatalf("body is not a Status with code %d: %s", tt.wantCode, body)
			}
			if status.Reason != tt.wantReason || !strings.Contains(status.Message, tt.wantText) {
				t.Errorf("Status reason %q message %q, want %q containing %q", status.Reason, status.Message, tt.wantReason, tt.wantText)
			}
			if after := len(up.seen()); after != before {
				t.Errorf("request reached kube-apiserver")
			}
		})
	}
}

// TestRefusalsDoNotWaitForTheBody: a request frontgate answers itself is
// answered at once, and over HTTP/1.1 its connection closed, even when the
// body it declared never arrives. Without this net/http reads the unread
// body before sending the answer, and the proxy server has no ReadTimeout
// (it would cut watches and exec sessions): a client without credentials
// could hold a connection and its goroutine for ever.
func TestRefusalsDoNotWaitForTheBody(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up, func(c *Config) {
		c.Discovery = DiscoveryHandler(Discovery{Issuers: []DiscoveryIssuer{{URL: "https://issuer.example", ClientID: "kubernetes"}}})
	})
	tests := []struct {
		name, head string
		want       int
	}{
		{"no credentials, Content-Length", "POST /api/v1/pods HTTP/1.1\r\nHost: HOST\r\nContent-Length: 100000\r\n\r\n{", 401},
		{"no credentials, chunked", "POST /api/v1/pods HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123", 401},
		{"rejected token", "POST /api/v1/pods HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer expired\r\nContent-Length: 10\r\n\r\n", 401},
		{"unsafe identity", "POST /api/v1/pods HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer evil\r\nContent-Length: 10\r\n\r\n", 500},
		{"too many groups", "POST /api/v1/pods HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer many-groups\r\nContent-Length: 10\r\n\r\n", 431},
		{"discovery", "POST " + DiscoveryPath + " HTTP/1.1\r\nHost: HOST\r\nContent-Length: 10\r\n\r\n", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse(p.URL)
			conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			_, _ = io.WriteString(conn, strings.ReplaceAll(tt.head, "HOST", u.Host))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body is outstanding: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("connection not closed after the answer: %v", err)
			}
		})
	}
	// A refusal of a request without a body keeps the connection.
	conn, br, resp := rawRequest(t, p.URL, "GET /api HTTP/1.1\r\nHost: HOST\r\n\r\n")
	_, _ = io.Copy(io.Discard, resp.Body)
	_, _ = io.WriteString(conn, "GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("second request on a kept-alive connection after a 401: %v", err)
	}
}

func TestNotReadyAnswers503(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up, func(c *Config) { c.Ready = func() error { return errors.New("issuer unreachable") } })
	resp, body := do(t, p.Client(), "GET", p.URL+"/api", http.Header{"Authorization": {"Bearer alice"}})
	if resp.StatusCode != 503 || !strings.Contains(body, "issuer unreachable") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	if len(up.seen()) != 0 {
		t.Error("request reached kube-apiserver")
	}
}

func TestUpstreamUnreachableAnswers502(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up)
	up.Close()
	resp, body := do(t, p.Client(), "GET", p.URL+"/api", http.Header{"Authorization": {"Bearer alice"}})
	if resp.StatusCode != 502 || !strings.Contains(body, "could not reach kube-apiserver") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

func TestGuardRefusesRequestsWithoutFrontgateIdentity(t *testing.T) {
	sent := false
	send := roundTripFunc(func(*http.Request) (*http.Response, error) { sent = true; return nil, errors.New("unreachable") })
	g := &guard{identity: newIdentityMatcher(DefaultHeaderNames()), metrics: NewMetrics(prometheus.NewRegistry())}
	g.upstream.Store(&upstreamTransports{transports: Transports{Ordinary: send, Upgrade: send}})
	want := http.Header{"X-Remote-User": {"alice"}, "X-Remote-Group": {"devs"}}
	tests := []struct {
		name   string
		ctx    *forward
		header http.Header
	}{
		{"no decision in context", nil, want},
		{"different user", &forward{headers: want}, http.Header{"X-Remote-User": {"admin"}, "X-Remote-Group": {"devs"}}},
		{"extra group", &forward{headers: want}, http.Header{"X-Remote-User": {"alice"}, "X-Remote-Group": {"devs", "system:masters"}}},
		{"authorization left", &forward{headers: want}, http.Header{"X-Remote-User": {"alice"}, "X-Remote-Group": {"devs"}, "Authorization": {"Bearer x"}}},
		{"identity missing", &forward{headers: want}, http.Header{}},
		{"passthrough without passthrough transports", &forward{passthrough: true}, http.Header{"Authorization": {"Bearer x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent = false
			req, _ := http.NewRequest("GET", "https://upstream/api", nil)
			req.Header = tt.header
			if tt.ctx != nil {
				req = req.WithContext(context.WithValue(req.Context(), forwardKey{}, tt.ctx))
			}
			if _, err := g.RoundTrip(req); !errors.Is(err, errUnauthenticatedForward) {
				t.Errorf("err = %v, want errUnauthenticatedForward", err)
			}
			if sent {
				t.Error("request was sent")
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRedirectsArePassedNotFollowed(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://attacker.example/steal", http.StatusFound)
	})
	p := newTestProxy(t, up)
	client := p.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := do(t, client, "GET", p.URL+"/api", http.Header{"Authorization": {"Bearer alice"}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://attacker.example/steal" {
		t.Fatalf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := len(up.seen()); n != 1 {
		t.Errorf("kube-apiserver saw %d requests, want 1", n)
	}
}

func TestUpstreamErrorBodiesPassUnchanged(t *testing.T) {
	const body = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" is forbidden: User \"alice\" cannot get resource \"pods\"","reason":"Forbidden","code":403}` + "\n"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(403)
		_, _ = io.WriteString(w, body)
	})
	p := newTestProxy(t, up)
	resp, got := do(t, p.Client(), "GET", p.URL+"/api/v1/namespaces/default/pods/x", http.Header{"Authorization": {"Bearer alice"}})
	if resp.StatusCode != 403 || got != body {
		t.Fatalf("got %d %q, want 403 %q", resp.StatusCode, got, body)
	}
}

func TestOrdinaryRequestsUseHTTP2Upstream(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up)
	resp, body := do(t, p.Client(), "GET", p.URL+"/api", http.Header{"Authorization": {"Bearer alice"}})
	if resp.ProtoMajor != 2 {
		t.Errorf("client leg negotiated %s, want HTTP/2", resp.Proto)
	}
	if !strings.Contains(body, `"proto":"HTTP/2.0"`) {
		t.Errorf("upstream leg was not HTTP/2: %s", body)
	}
}

func TestStreamingResponsesAreFlushedAsTheyArrive(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"type":"ADDED"}`+"\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, `{"type":"DELETED"}`+"\n")
	})
	p := newTestProxy(t, up)
	req, _ := http.NewRequest("GET", p.URL+"/api/v1/configmaps?watch=true", nil)
	req.Header.Set("Authorization", "Bearer alice")
	resp, err := p.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	close(release)
	if err != nil || line != `{"type":"ADDED"}`+"\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
}

// rawUpgrade sends an upgrade request over HTTP/1.1 and returns the
// connection and the response status line.
func rawUpgrade(t *testing.T, proxyURL string, header string) (net.Conn, *http.Response) {
	t.Helper()
	u, _ := url.Parse(proxyURL)
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "GET /api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\nHost: "+u.Host+"\r\nAuthorization: Bearer alice\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+header+"\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, resp
}

func TestRefusedUpgradeClosesTheClientConnection(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"kind":"Status","code":403}`)
	})
	p := newTestProxy(t, up)
	conn, resp := rawUpgrade(t, p.URL, "Sec-WebSocket-Protocol: v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.YWxpY2U\r\n")
	defer conn.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `{"kind":"Status","code":403}` {
		t.Errorf("body %q", body)
	}
	if !resp.Close {
		t.Error("response did not announce Connection: close")
	}
	// The server must close: a further read ends with EOF, not a timeout.
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("client connection still open after a refused upgrade: %v", err)
	}
	got := up.seen()[0]
	if got.ProtoMajor != 1 {
		t.Errorf("upgrade reached kube-apiserver over %s, want HTTP/1.1", got.Proto)
	}
	if p := got.Header.Get("Sec-Websocket-Protocol"); p != "v5.channel.k8s.io" {
		t.Errorf("Sec-WebSocket-Protocol upstream = %q, want the bearer entry stripped", p)
	}
}

func TestUpgradeSwitchesAndCopiesBothWays(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Remote-User") != "alice" || r.ProtoMajor != 1 {
			w.WriteHeader(400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo:" + line)
		_ = brw.Flush()
	})
	p, reg := newTestProxyWithMetrics(t, up)
	conn, resp := rawUpgrade(t, p.URL, "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n")
	defer conn.Close()
	if open := gauge(t, reg, "frontgate_upgraded_connections", "protocol", "websocket"); open != 1 {
		t.Errorf("frontgate_upgraded_connections{protocol=websocket} = %v during the session, want 1", open)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-Websocket-Protocol") != "v5.channel.k8s.io" {
		t.Fatalf("status %d, protocol %q", resp.StatusCode, resp.Header.Get("Sec-Websocket-Protocol"))
	}
	_, _ = io.WriteString(conn, "hello\n")
	reply, err := bufio.NewReader(io.MultiReader(resp.Body, conn)).ReadString('\n')
	if err != nil || reply != "echo:hello\n" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	conn.Close()
	for deadline := time.Now().Add(5 * time.Second); gauge(t, reg, "frontgate_upgraded_connections", "protocol", "websocket") != 0; {
		if time.Now().After(deadline) {
			t.Fatal("frontgate_upgraded_connections did not return to 0 after the session ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testClientCertificate makes a self-signed client certificate.
func testClientCertificate(t *testing.T) *tls.Certificate {
	t.Helper()
	return testClientCertificateCN(t, "frontgate")
}

func testClientCertificateCN(t *testing.T, cn string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestPresentsTheClientCertificateOnlyWithAnIdentity(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up)
	do(t, p.Client(), "GET", p.URL+"/api", http.Header{"Authorization": {"Bearer alice"}})
	got := up.seen()[0]
	if got.TLS == nil || len(got.TLS.PeerCertificates) != 1 || got.TLS.PeerCertificates[0].Subject.CommonName != "frontgate" {
		t.Fatal("the front-proxy client certificate did not reach kube-apiserver with an identity")
	}
}

func TestTokenPassthrough(t *testing.T) {
	foreign := auth.AuthenticatorFunc(func(r *http.Request) (*auth.Identity, bool, error) {
		token, ok := auth.BearerToken(r)
		switch {
		case !ok:
			return nil, false, nil
		case token == "service-account-token":
			return nil, false, &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: "token issuer is not configured"}
		case token == "alice":
			return &auth.Identity{Name: "alice"}, true, nil
		default:
			return nil, false, &auth.Error{Reason: auth.ReasonTokenExpired, Message: "token expired"}
		}
	})
	up := newUpstream(t, nil)
	passthrough := upstreamTransportsFor(up, nil)
	enabled := newTestProxy(t, up, func(c *Config) { c.Authenticator = foreign; c.Passthrough = &passthrough })
	disabled := newTestProxy(t, up, func(c *Config) { c.Authenticator = foreign })

	t.Run("unrecognised token goes out as it came, without the certificate or identity headers", func(t *testing.T) {
		before := len(up.seen())
		resp, body := do(t, enabled.Client(), "GET", enabled.URL+"/api", http.Header{
			"Authorization": {"Bearer service-account-token"}, "X-Remote-User": {"admin"}, "X-Remote-Group": {"system:masters"},
		})
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		seen := up.seen()
		if len(seen) != before+1 {
			t.Fatal("not forwarded")
		}
		got := seen[len(seen)-1]
		if got.Header.Get("Authorization") != "Bearer service-account-token" {
			t.Errorf("Authorization = %q", got.Header.Get("Authorization"))
		}
		if got.TLS != nil && len(got.TLS.PeerCertificates) != 0 {
			t.Error("a passthrough request presented the front-proxy certificate")
		}
		for k := range got.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-remote-") {
				t.Errorf("identity header %q reached kube-apiserver", k)
			}
		}
	})
	t.Run("recognised but rejected token is never passed through", func(t *testing.T) {
		before := len(up.seen())
		resp, _ := do(t, enabled.Client(), "GET", enabled.URL+"/api", http.Header{"Authorization": {"Bearer expired"}})
		if resp.StatusCode != 401 || len(up.seen()) != before {
			t.Errorf("status %d, forwarded %v", resp.StatusCode, len(up.seen()) != before)
		}
	})
	t.Run("disabled by default", func(t *testing.T) {
		before := len(up.seen())
		resp, _ := do(t, disabled.Client(), "GET", disabled.URL+"/api", http.Header{"Authorization": {"Bearer service-account-token"}})
		if resp.StatusCode != 401 || len(up.seen()) != before {
			t.Errorf("status %d, forwarded %v", resp.StatusCode, len(up.seen()) != before)
		}
	})
	t.Run("authenticated requests still carry the certificate", func(t *testing.T) {
		do(t, enabled.Client(), "GET", enabled.URL+"/api", http.Header{"Authorization": {"Bearer alice"}})
		seen := up.seen()
		if got := seen[len(seen)-1]; got.TLS == nil || len(got.TLS.PeerCertificates) != 1 {
			t.Error("authenticated request without the certificate")
		}
	})
}

func TestGuardRefusesPassthroughWithIdentityHeaders(t *testing.T) {
	sent := false
	send := roundTripFunc(func(*http.Request) (*http.Response, error) { sent = true; return nil, errors.New("unreachable") })
	g := &guard{identity: newIdentityMatcher(DefaultHeaderNames()), metrics: NewMetrics(prometheus.NewRegistry())}
	g.upstream.Store(&upstreamTransports{transports: Transports{Ordinary: send, Upgrade: send}, passthrough: &Transports{Ordinary: send, Upgrade: send}})
	req, _ := http.NewRequest("GET", "https://upstream/api", nil)
	req.Header = http.Header{"Authorization": {"Bearer x"}, "X-Remote-User": {"admin"}}
	req = req.WithContext(context.WithValue(req.Context(), forwardKey{}, &forward{passthrough: true}))
	if _, err := g.RoundTrip(req); !errors.Is(err, errUnauthenticatedForward) || sent {
		t.Fatalf("err = %v, sent = %v", err, sent)
	}
}

func TestDiscoveryIsServedByFrontgateAndNothingElseBypassesAuthentication(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up, func(c *Config) {
		c.Discovery = DiscoveryHandler(Discovery{Issuers: []DiscoveryIssuer{{URL: "https://issuer.example", ClientID: "kubernetes"}}})
		c.Ready = func() error { return errors.New("issuer unreachable") }
	})
	resp, body := do(t, p.Client(), "GET", p.URL+DiscoveryPath, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"clientID": "kubernetes"`) {
		t.Fatalf("discovery: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{DiscoveryPath + "/", DiscoveryPath + "x", "/.well-known/openid-configuration", "/.well-known/../api"} {
		resp, _ := do(t, p.Client(), "GET", p.URL+path, nil)
		if resp.StatusCode == 200 {
			t.Errorf("%s answered 200 without authentication", path)
		}
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("kube-apiserver saw %d requests, want none", n)
	}
}

func TestSetTransportsRotatesCredentialsWithoutCuttingStreams(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		cn := r.TLS.PeerCertificates[0].Subject.CommonName
		if r.URL.Query().Get("watch") == "true" {
			_, _ = io.WriteString(w, "first event from "+cn+"\n")
			w.(http.Flusher).Flush()
			<-release
			_, _ = io.WriteString(w, "second event\n")
			return
		}
		_, _ = io.WriteString(w, cn)
	})
	p := startTestProxy(t, up, func(c *Config) { c.Transports = upstreamTransportsFor(up, testClientCertificateCN(t, "frontgate-1")) })
	client := p.server.Client()

	req, _ := http.NewRequest("GET", p.server.URL+"/api/v1/configmaps?watch=true", nil)
	req.Header.Set("Authorization", "Bearer alice")
	watch, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Body.Close()
	events := bufio.NewReader(watch.Body)
	if line, _ := events.ReadString('\n'); line != "first event from frontgate-1\n" {
		t.Fatalf("watch: %q", line)
	}

	p.handler.SetTransports(upstreamTransportsFor(up, testClientCertificateCN(t, "frontgate-2")), nil)

	for i := range 3 {
		if _, body := do(t, client, "GET", p.server.URL+"/api", http.Header{"Authorization": {"Bearer alice"}}); body != "frontgate-2" {
			t.Fatalf("request %d after the rotation presented %q, want frontgate-2", i, body)
		}
	}
	close(release)
	if line, err := events.ReadString('\n'); line != "second event\n" {
		t.Fatalf("the open watch was cut by the rotation: %q, %v", line, err)
	}
}

func TestUpstreamFailure(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{io.EOF, "kube-apiserver closed the connection without answering (EOF)"},
		{fmt.Errorf("reading the response: %w", io.ErrUnexpectedEOF), "kube-apiserver closed the connection without answering (reading the response: unexpected EOF)"},
		{errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), "dial tcp 127.0.0.1:6443: connect: connection refused"},
	}
	for _, tt := range tests {
		if got := upstreamFailure(tt.err); got != tt.want {
			t.Errorf("upstreamFailure(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
