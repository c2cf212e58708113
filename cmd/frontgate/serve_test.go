package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestShutdownLetsInFlightRequestsFinish is what SIGTERM does: the request
// started before the signal completes, the listener stops accepting, and
// serve returns nil (exit 0).
func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	o := newServeOptions(func(string) string { return "" })
	o.shutdownGrace = 10 * time.Second
	started := make(chan struct{})
	s := &server{
		opts:     o,
		logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		registry: prometheus.NewRegistry(),
		ready:    func() error { return nil },
		handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(w, "finished")
		}),
	}
	var err error
	if s.tls, err = selfSignedTLS(s); err != nil {
		t.Fatal(err)
	}
	proxyLn, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsLn, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.serve(ctx, proxyLn, metricsLn) }()

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	result := make(chan string, 1)
	go func() {
		resp, err := client.Get("https://" + proxyLn.Addr().String() + "/api")
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		result <- string(body)
	}()
	<-started
	stop() // the signal

	if got := <-result; got != "finished" {
		t.Errorf("in-flight request got %q, want it to finish", got)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after shutdown")
	}
	if _, err := net.DialTimeout("tcp", proxyLn.Addr().String(), time.Second); err == nil {
		t.Error("the proxy listener still accepts connections after shutdown")
	}
}

func selfSignedTLS(s *server) (*tls.Config, error) {
	cert, err := selfSignedCertificate(s.logger)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{*cert}}, nil
}

func TestMetricsListenerPaths(t *testing.T) {
	tests := []struct {
		profiling bool
		path      string
		want      int
	}{
		{false, "/metrics", http.StatusOK},
		{false, "/healthz", http.StatusOK},
		{false, "/readyz", http.StatusOK},
		{false, "/debug/pprof/", http.StatusNotFound},
		{false, "/debug/pprof/heap", http.StatusNotFound},
		{true, "/debug/pprof/", http.StatusOK},
		{true, "/debug/pprof/heap", http.StatusOK},
		{true, "/debug/pprof/goroutine", http.StatusOK},
		{true, "/api", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("profiling=%v %s", tt.profiling, tt.path), func(t *testing.T) {
			s := &server{opts: &serveOptions{profiling: tt.profiling}, registry: prometheus.NewRegistry(), ready: func() error { return nil }}
			rec := httptest.NewRecorder()
			s.metricsMux().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.want {
				t.Errorf("GET %s: HTTP %d, want %d", tt.path, rec.Code, tt.want)
			}
		})
	}
}
