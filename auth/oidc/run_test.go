package oidc

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
)

// startRun starts a.Run with fast backoff and stops it at the end of t.
func startRun(t *testing.T, a *Authenticator) {
	t.Helper()
	a.backoffMin, a.backoffMax = time.Millisecond, 5*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// eventually polls cond until it holds or 10s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The issuer is down when Run starts: Ready reports it and tokens are refused
// as IssuerUnavailable; once it is up, Ready is nil and tokens work.
func TestReadinessIssuerDownThenUp(t *testing.T) {
	key := rsaKey(t, 0, "rsa-0")
	is := newTestIssuer(t, key)
	is.SetDown(true)
	clock := newTestClock()
	logs := &syncBuffer{}
	a, err := New(Options{
		IssuerURL: is.URL(), ClientID: testClientID, RootCAs: is.CAs(),
		Registerer: prometheus.NewRegistry(), Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Ready before Run = %v, want unreachable", err)
	}
	startRun(t, a)
	eventually(t, "a failed discovery attempt", func() bool {
		err := a.Ready()
		return err != nil && strings.Contains(err.Error(), "503")
	})
	err = a.Ready()
	for _, want := range []string{"unreachable", is.URL(), "503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Ready() = %q, want it to contain %q", err, want)
		}
	}
	claims := map[string]any{"iss": is.URL(), "aud": testClientID, "sub": "alice", "exp": testNow.Add(time.Hour).Unix()}
	token := sign(t, key, claims)
	id, ok, err := a.AuthenticateToken(context.Background(), token)
	wantRejection(t, token, id, ok, err, auth.ReasonIssuerUnavailable)

	eventually(t, "two logged attempts", func() bool { return strings.Count(logs.String(), "retrying") >= 2 })
	is.SetDown(false)
	eventually(t, "readiness", func() bool { return a.Ready() == nil })
	if id, ok, err := a.AuthenticateToken(context.Background(), token); !ok {
		t.Fatalf("after recovery: %v, %v", id, err)
	}
	if !strings.Contains(logs.String(), "attempt=1 ") {
		t.Errorf("logs do not number the attempts:\n%s", logs)
	}
}

func TestReadinessFailures(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(is *testIssuer, o *Options)
		wantErr string
	}{
		{
			name:    "system roots do not trust the issuer",
			setup:   func(is *testIssuer, o *Options) { o.RootCAs = nil },
			wantErr: "certificate",
		},
		{
			name: "discovery names another issuer",
			setup: func(is *testIssuer, o *Options) {
				is.SetDiscoveryIssuer(is.URL() + "/")
			},
			wantErr: "issuer",
		},
		{
			name:    "configured issuer differs by a trailing slash",
			setup:   func(is *testIssuer, o *Options) { o.IssuerURL = is.URL() + "/" },
			wantErr: "issuer",
		},
		{
			name: "JWKS unavailable",
			setup: func(is *testIssuer, o *Options) {
				is.SetKeysDown(true)
			},
			wantErr: "JWKS",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := newTestIssuer(t, rsaKey(t, 0, "rsa-0"))
			opts := Options{IssuerURL: is.URL(), ClientID: testClientID, RootCAs: is.CAs(), Registerer: prometheus.NewRegistry()}
			tt.setup(is, &opts)
			a, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			startRun(t, a)
			eventually(t, "a failed attempt", func() bool {
				err := a.Ready()
				return err != nil && strings.Contains(err.Error(), tt.wantErr) && !strings.Contains(err.Error(), "not completed")
			})
			time.Sleep(20 * time.Millisecond)
			if err := a.Ready(); err == nil {
				t.Fatal("became ready")
			}
		})
	}
}

// Run returns promptly when its context ends, even while backing off.
func TestRunStopsWithContext(t *testing.T) {
	is := newTestIssuer(t)
	is.SetDown(true)
	a, err := New(Options{IssuerURL: is.URL(), ClientID: testClientID, RootCAs: is.CAs()})
	if err != nil {
		t.Fatal(err)
	}
	a.backoffMin = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	eventually(t, "a failed attempt", func() bool { return strings.Contains(a.Ready().Error(), "503") })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}
