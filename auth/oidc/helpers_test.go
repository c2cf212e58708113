package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/frontgate/frontgate/auth"
)

const testClientID = "frontgate-test"

// testNow is the start of every test clock.
var testNow = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: testNow} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKey is a signing key of the test issuer.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

var (
	keyOnce          sync.Once
	rsaKeys, ecKeys  []crypto.Signer
	keyGenerationErr error
)

// pregenerated returns cached keys: RSA generation is slow under -race.
func pregenerated(t *testing.T) ([]crypto.Signer, []crypto.Signer) {
	t.Helper()
	keyOnce.Do(func() {
		for range 3 {
			r, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				keyGenerationErr = err
				return
			}
			rsaKeys = append(rsaKeys, r)
			e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				keyGenerationErr = err
				return
			}
			ecKeys = append(ecKeys, e)
		}
	})
	if keyGenerationErr != nil {
		t.Fatal(keyGenerationErr)
	}
	return rsaKeys, ecKeys
}

func rsaKey(t *testing.T, i int, kid string) testKey {
	r, _ := pregenerated(t)
	return testKey{kid: kid, alg: jose.RS256, priv: r[i]}
}

func ecKey(t *testing.T, i int, kid string) testKey {
	_, e := pregenerated(t)
	return testKey{kid: kid, alg: jose.ES256, priv: e[i]}
}

func (k testKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// testIssuer is an OpenID provider serving discovery and a JWKS over TLS.
type testIssuer struct {
	srv *httptest.Server

	mu              sync.Mutex
	keys            []json.RawMessage
	down            bool          // discovery and JWKS fail
	keysDown        bool          // JWKS fails
	discoveryIssuer string        // "" means the server's URL
	jwksGate        chan struct{} // when set, JWKS requests wait for it
	jwksEntered     chan struct{} // when set, receives one value per JWKS request

	jwksRequests atomic.Int32
}

func newTestIssuer(t *testing.T, keys ...testKey) *testIssuer {
	t.Helper()
	is := &testIssuer{}
	is.setKeys(t, keys...)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		down, iss := is.down, is.discoveryIssuer
		is.mu.Unlock()
		if down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if iss == "" {
			iss = is.srv.URL
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              is.srv.URL + "/keys",
			"authorization_endpoint":                is.srv.URL + "/authorize",
			"token_endpoint":                        is.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		is.jwksRequests.Add(1)
		is.mu.Lock()
		down, keys, gate, entered := is.down || is.keysDown, is.keys, is.jwksGate, is.jwksEntered
		is.mu.Unlock()
		if entered != nil {
			entered <- struct{}{}
		}
		if gate != nil {
			<-gate
		}
		if down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	})
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *testIssuer) URL() string { return is.srv.URL }

func (is *testIssuer) CAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(is.srv.Certificate())
	return pool
}

func (is *testIssuer) setKeys(t *testing.T, keys ...testKey) {
	t.Helper()
	raw := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		b, err := k.public().MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = b
	}
	is.setRawKeys(raw...)
}

func (is *testIssuer) setRawKeys(keys ...json.RawMessage) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

func (is *testIssuer) setDown(down bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.down = down
}

// sign returns a compact JWS of claims signed with key.
func sign(t *testing.T, key testKey, claims map[string]any, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	so := (&jose.SignerOptions{}).WithType("JWT")
	for _, o := range opts {
		o(so)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}}, so)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// handmade returns header.payload.sig with the JSON parts base64url-encoded.
func handmade(t *testing.T, header, claims any, sig string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(p) + "." + sig
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

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
func newEnv(t *testing.T, mutate func(*Options), keys ...testKey) *env {
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

func waitReady(t *testing.T, a *Authenticator) {
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
