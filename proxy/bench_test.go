package proxy

// Benchmarks of the request path, over an in-memory upstream that answers
// like kube-apiserver, so that only the proxy's own work is measured. They
// run under `make bench` only (go test -run '^$' -bench . -benchmem ./proxy/);
// BENCHMARKS.md has the results and test/bench the end-to-end load runs.
// The handler benchmarks also report cpu-ns/op, the process's CPU time per
// request, which other processes competing for the CPUs inflate far less
// than wall time.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/tokencache"
)

// benchConfigMap is what kube-apiserver answers to GET of a small ConfigMap.
const benchConfigMap = `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"bench","namespace":"default","uid":"7d3c5a52-1b8e-4c1e-9a8e-2f4f0e1f6b11","resourceVersion":"4711","creationTimestamp":"2026-11-27T07:00:00Z","managedFields":[{"manager":"kubectl-create","operation":"Update","apiVersion":"v1","time":"2026-11-27T07:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:key":{}}}}]},"data":{"key":"value"}}` + "\n"

// apiserverRoundTripper answers every request in memory as kube-apiserver
// answers a GET of a ConfigMap: status, headers and body.
type apiserverRoundTripper struct{}

func (apiserverRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: http.Header{
			"Audit-Id":                          {"1f6c1d2e-3c4b-4a59-8d7e-6f5a4b3c2d1e"},
			"Cache-Control":                     {"no-cache, private"},
			"Content-Type":                      {"application/json"},
			"X-Kubernetes-Pf-Flowschema-Uid":    {"0b0a8f1e-2d3c-4b5a-9687-a1b2c3d4e5f6"},
			"X-Kubernetes-Pf-Prioritylevel-Uid": {"a9b8c7d6-e5f4-4321-8765-0fedcba98765"},
			"Date":                              {"Fri, 27 Nov 2026 07:00:00 GMT"},
		},
		Body:          io.NopCloser(strings.NewReader(benchConfigMap)),
		ContentLength: int64(len(benchConfigMap)),
		Request:       r,
	}, nil
}

// discardWriter is a ResponseWriter that keeps nothing but a reusable
// header map, so that the benchmark measures the handler, not the writer.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) Flush()                      {}

func (w *discardWriter) reset() {
	clear(w.h)
	w.code = 0
}

// benchIdentity is a typical OIDC identity: prefixed username, a few groups.
func benchIdentity() *auth.Identity {
	return &auth.Identity{
		Name:    "https://login.example.com#alice",
		Groups:  []string{"oidc:devs", "oidc:team-payments", "oidc:oncall"},
		Source:  "oidc",
		Expires: time.Now().Add(time.Hour),
	}
}

// benchRequest is a kubectl GET of a ConfigMap with a bearer token.
func benchRequest() *http.Request {
	r, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://frontgate.example.com:8443/api/v1/namespaces/default/configmaps/bench", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlbmNoIn0.eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUuY29tIn0.c2lnbmF0dXJl")
	r.Header.Set("Accept", "application/json, */*")
	r.Header.Set("User-Agent", "kubectl/v1.37.2 (linux/amd64) kubernetes/0000000")
	r.Header.Set("Kubectl-Command", "kubectl get")
	r.Header.Set("Kubectl-Session", "0b8e3a47-8b5f-4f3e-9c44-1f1c6d1b9a77")
	return r
}

// benchHandler is frontgate's handler over the in-memory upstream with the
// authenticator chain serve builds for bearer tokens: reserved-identity
// check, union, bearer extraction, token cache in front of tokens.
func benchHandler(b *testing.B, tokens auth.TokenAuthenticator) *Handler {
	b.Helper()
	reg := prometheus.NewRegistry()
	cached := tokencache.New(tokens, tokencache.Options{TTL: time.Hour, Registerer: reg})
	u, _ := url.Parse("https://127.0.0.1:6443")
	h, err := New(Config{
		Upstream:      u,
		Authenticator: auth.RefuseReserved(auth.Union(auth.Bearer(cached)), nil),
		HeaderNames:   DefaultHeaderNames(),
		Limits:        DefaultLimits(),
		Transports:    Transports{Ordinary: apiserverRoundTripper{}, Upgrade: apiserverRoundTripper{}},
		Ready:         func() error { return nil },
		// The access log is written as in production (JSON), to nowhere.
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics: NewMetrics(reg),
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// staticTokens authenticates every token as benchIdentity.
var staticTokens auth.TokenAuthenticator = staticTokenAuthenticator{}

type staticTokenAuthenticator struct{}

func (staticTokenAuthenticator) AuthenticateToken(context.Context, string) (*auth.Identity, bool, error) {
	return benchIdentity(), true, nil
}

func serveBench(b *testing.B, h http.Handler) {
	b.Helper()
	r := benchRequest()
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, r) // warm: fills the token cache
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	reportCPU(b, cpu)
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
}

// BenchmarkHandlerCachedToken is one request through frontgate's handler
// whose bearer token is in the token cache: authentication (cache hit),
// sanitising, identity headers, the transport guard, the access log and the
// metrics, over an in-memory upstream.
func BenchmarkHandlerCachedToken(b *testing.B) {
	serveBench(b, benchHandler(b, staticTokens))
}

// BenchmarkHandlerCachedTokenParallel is the same from GOMAXPROCS
// goroutines, showing contention (token cache lock, metrics).
func BenchmarkHandlerCachedTokenParallel(b *testing.B) {
	h := benchHandler(b, staticTokens)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, benchRequest())
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	defer func() { reportCPU(b, cpu) }()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest()
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			w.reset()
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkBareReverseProxy is the floor: httputil.ReverseProxy with
// Rewrite (SetURL, SetXForwarded) over the same in-memory upstream, with no
// authentication, header work, logging or metrics.
func BenchmarkBareReverseProxy(b *testing.B) {
	u, _ := url.Parse("https://127.0.0.1:6443")
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: apiserverRoundTripper{},
	}
	serveBench(b, rp)
}

// BenchmarkHandlerNoCredentials is a request frontgate answers itself with
// 401 (no token), never forwarded.
func BenchmarkHandlerNoCredentials(b *testing.B) {
	h := benchHandler(b, staticTokens)
	r := benchRequest()
	r.Header.Del("Authorization")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	if w.code != http.StatusUnauthorized {
		b.Fatalf("status %d", w.code)
	}
}

// BenchmarkSanitize removes the credential and identity headers from a
// request that carries a few (as an attacker's would) among kubectl's own.
func BenchmarkSanitize(b *testing.B) {
	names := DefaultHeaderNames()
	m := newIdentityMatcher(names)
	template := benchRequest().Header
	template["X-Remote-User"] = []string{"mallory"}
	template["X-Remote-Group"] = []string{"system:masters"}
	template["x-remote-extra-scopes"] = []string{"all"}
	h := make(http.Header, len(template))
	b.Run("matcher", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for k, v := range template {
				h[k] = v
			}
			m.sanitize(h)
		}
	})
	// Sanitize, the exported form, builds its matcher on every call.
	b.Run("exported", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for k, v := range template {
				h[k] = v
			}
			Sanitize(h, names)
		}
	})
}

// BenchmarkIdentityHeaders encodes a typical identity, and one with extra
// attributes that need escaping.
func BenchmarkIdentityHeaders(b *testing.B) {
	names, limits := DefaultHeaderNames(), DefaultLimits()
	typical := benchIdentity()
	withExtra := benchIdentity()
	withExtra.UID = "8f14e45f-ceea-467f-a8c1-a4f3e2c1d0b9"
	withExtra.Extra = map[string][]string{"example.com/team": {"payments"}, "scopes": {"openid", "groups"}}
	for _, c := range []struct {
		name string
		id   *auth.Identity
	}{{"typical", typical}, {"extra", withExtra}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := IdentityHeaders(c.id, names, limits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWatchEvents streams watch events through frontgate's handler,
// HTTP/2 over TLS on both legs (loopback, in this process), with copy
// buffers of several sizes: what the small buffers of watches
// (streamBufferSize) cost when events are larger than they are. One op is
// one event, written and flushed by the upstream and read by the client;
// cpu-ns/op is the CPU time of all three (upstream, frontgate, client).
func BenchmarkWatchEvents(b *testing.B) {
	for _, eventSize := range []int{1 << 10, 8 << 10, 64 << 10} {
		for _, bufferSize := range []int{2 << 10, streamBufferSize, 8 << 10, copyBufferSize} {
			b.Run(fmt.Sprintf("event=%dKiB/buffer=%dKiB", eventSize>>10, bufferSize>>10), func(b *testing.B) {
				benchWatchEvents(b, eventSize, bufferSize)
			})
		}
	}
}

// freshBuffers hands out a new buffer of its size on every Get.
type freshBuffers int

func (n freshBuffers) Get() []byte { return make([]byte, n) }
func (freshBuffers) Put([]byte)    {}

func benchWatchEvents(b *testing.B, eventSize, bufferSize int) {
	event := []byte(`{"type":"MODIFIED","object":{"data":"` + strings.Repeat("x", eventSize-40) + `"}}` + "\n")
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("events"))
		w.Header().Set("Content-Type", "application/json")
		for range n {
			if _, err := w.Write(event); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
		}
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	u, _ := url.Parse(up.URL)
	h, err := New(Config{
		Upstream: u, Authenticator: tokens, HeaderNames: DefaultHeaderNames(), Limits: DefaultLimits(),
		Transports: NewTransports(UpstreamTLS{RootCAs: up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}),
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:    NewMetrics(prometheus.NewRegistry()),
	})
	if err != nil {
		b.Fatal(err)
	}
	h.streamProxy.BufferPool = freshBuffers(bufferSize)
	front := httptest.NewUnstartedServer(h)
	front.EnableHTTP2 = true
	front.StartTLS()
	defer front.Close()

	watch := func(n int) {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/api/v1/namespaces/default/configmaps?watch=true&events="+strconv.Itoa(n), nil)
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := front.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body := bufio.NewReaderSize(resp.Body, 2*eventSize)
		for range n {
			line, err := body.ReadSlice('\n')
			if err != nil || len(line) != len(event) {
				b.Fatalf("event of %d bytes, %v; want %d bytes", len(line), err, len(event))
			}
		}
	}
	watch(10) // warm: connections up
	b.SetBytes(int64(eventSize))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	watch(b.N)
	reportCPU(b, cpu)
}

// reportCPU reports the process's CPU time per operation since start
// (processCPU), as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}
