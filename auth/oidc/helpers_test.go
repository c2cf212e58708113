package oidc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/internal/oidctest"
)

const testClientID = "frontgate-test"

// The shared helpers of auth/internal/oidctest, under the names these tests
// have always used.
type (
	testKey    = oidctest.Key
	testIssuer = oidctest.Issuer
	testClock  = oidctest.Clock
)

var (
	testNow       = oidctest.Now
	newTestClock  = oidctest.NewClock
	newTestIssuer = oidctest.NewIssuer
	pregenerated  = oidctest.Pregenerated
	rsaKey        = oidctest.RSAKey
	ecKey         = oidctest.ECKey
	sign          = oidctest.Sign
	signHMAC      = oidctest.SignHMAC
	handmade      = oidctest.Handmade
	b64           = oidctest.B64
)

// env is a ready authenticator in front of a test issuer.
type env struct {
	a     *Authenticator
	is    *testIssuer
	clock *testClock
	key   testKey
	reg   *prometheus.Registry
}

// newEnv starts an issuer serving keys (the first one signs by default),
// and an authenticator for it configured by mutate, and waits until it is
// ready.
func newEnv(t testing.TB, mutate func(*Options), keys ...testKey) *env {
	t.Helper()
	if len(keys) == 0 {
		keys = []testKey{rsaKey(t, 0, "rsa-0")}
	}
	e := &env{is: newTestIssuer(t, keys...), clock: newTestClock(), key: keys[0], reg: prometheus.NewRegistry()}
	opts := Options{
		IssuerURL:      e.is.URL(),
		ClientID:       testClientID,
		UsernamePrefix: "oidc:",
		RootCAs:        e.is.CAs(),
		Registerer:     e.reg,
		Now:            e.clock.Now,
	}
	if mutate != nil {
		mutate(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	a.backoffMin, a.backoffMax = time.Millisecond, 10*time.Millisecond
	e.a = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReady(t, a)
	return e
}

func waitReady(t testing.TB, a *Authenticator) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for a.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", a.Ready())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// claims returns valid claims for the env's issuer, with overrides applied;
// an override with a nil value deletes the claim.
func (e *env) claims(overrides map[string]any) map[string]any {
	now := e.clock.Now()
	c := map[string]any{
		"iss":   e.is.URL(),
		"aud":   testClientID,
		"sub":   "alice",
		"email": "alice@example.com",
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// token signs the env's claims with overrides using the env's key.
func (e *env) token(t *testing.T, overrides map[string]any) string {
	t.Helper()
	return sign(t, e.key, e.claims(overrides))
}

// jwksFetches reads frontgate_oidc_jwks_fetches_total{result}.
func (e *env) jwksFetches(result string) int {
	var m dto.Metric
	if err := e.a.jwksFetches.WithLabelValues(result).Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

// wantRejection checks the three-outcome contract for a rejection and that
// the message names neither the token nor its signature.
func wantRejection(t *testing.T, token string, id *auth.Identity, ok bool, err error, reason string, msgContains ...string) {
	t.Helper()
	if ok || id != nil {
		t.Fatalf("accepted: %+v", id)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	if ae.Reason != reason {
		t.Errorf("reason = %s (%q), want %s", ae.Reason, ae.Message, reason)
	}
	for _, s := range msgContains {
		if !strings.Contains(ae.Message, s) {
			t.Errorf("message %q does not contain %q", ae.Message, s)
		}
	}
	if token != "" && strings.Contains(ae.Message, token) {
		t.Errorf("message contains the token: %q", ae.Message)
	}
	if parts := strings.Split(token, "."); len(parts) == 3 && len(parts[2]) > 8 && strings.Contains(ae.Message, parts[2]) {
		t.Errorf("message contains the token's signature: %q", ae.Message)
	}
}
