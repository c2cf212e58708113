// Package oidctest provides what tests of frontgate's token authenticators
// share: a local OpenID provider serving discovery and a JWKS over TLS,
// signing keys generated once per test binary, token signing, and a
// settable clock. It is imported by tests only.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Now is the start of every test clock.
var Now = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to [Now].
func NewClock() *Clock { return &Clock{t: Now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Key is a signing key of a test issuer.
type Key struct {
	KID  string
	Alg  jose.SignatureAlgorithm
	Priv crypto.Signer
}

var (
	keyOnce          sync.Once
	rsaKeys, ecKeys  []crypto.Signer
	keyGenerationErr error
)

// Pregenerated returns three RSA (2048 bits) and three P-256 keys, generated
// once per test binary: RSA generation is slow under -race.
func Pregenerated(t testing.TB) (rsa, ec []crypto.Signer) {
	t.Helper()
	keyOnce.Do(generate)
	if keyGenerationErr != nil {
		t.Fatal(keyGenerationErr)
	}
	return rsaKeys, ecKeys
}

func generate() {
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
}

// RSAKey returns pregenerated RSA key i (0 to 2) for RS256 under kid.
func RSAKey(t testing.TB, i int, kid string) Key {
	r, _ := Pregenerated(t)
	return Key{KID: kid, Alg: jose.RS256, Priv: r[i]}
}

// ECKey returns pregenerated P-256 key i (0 to 2) for ES256 under kid.
func ECKey(t testing.TB, i int, kid string) Key {
	_, e := Pregenerated(t)
	return Key{KID: kid, Alg: jose.ES256, Priv: e[i]}
}

// Public returns the key's public JWK, as the issuer publishes it.
func (k Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Priv.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// Issuer is an OpenID provider serving discovery and a JWKS over TLS.
type Issuer struct {
	srv *httptest.Server
	mux *http.ServeMux

	mu              sync.Mutex
	keys            []json.RawMessage
	down            bool          // discovery and JWKS fail
	keysDown        bool          // JWKS fails
	discoveryIssuer string        // "" means the server's URL
	jwksGate        chan struct{} // when set, JWKS requests wait for it
	jwksEntered     chan struct{} // when set, receives one value per JWKS request

	jwksRequests atomic.Int32
}

// NewIssuer starts an issuer publishing keys; it stops at the end of t.
func NewIssuer(t testing.TB, keys ...Key) *Issuer {
	t.Helper()
	is := &Issuer{mux: http.NewServeMux()}
	is.SetKeys(t, keys...)
	is.mux.HandleFunc("/.well-known/openid-configuration", is.serveDiscovery)
	is.mux.HandleFunc("/keys", is.serveKeys)
	is.srv = httptest.NewTLSServer(is.mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *Issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
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
}

func (is *Issuer) serveKeys(w http.ResponseWriter, r *http.Request) {
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
}

// URL is the issuer URL: https://127.0.0.1:port.
func (is *Issuer) URL() string { return is.srv.URL }

// Handle adds a handler to the issuer's server, for example a second
// discovery document.
func (is *Issuer) Handle(pattern string, h http.Handler) { is.mux.Handle(pattern, h) }

// CAs returns a pool trusting the issuer's certificate.
func (is *Issuer) CAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(is.srv.Certificate())
	return pool
}

// CAPEM returns the issuer's certificate in PEM, as an
// AuthenticationConfiguration's certificateAuthority holds it.
func (is *Issuer) CAPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}))
}

// SetKeys replaces the published keys.
func (is *Issuer) SetKeys(t testing.TB, keys ...Key) {
	t.Helper()
	raw := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		b, err := k.Public().MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = b
	}
	is.SetRawKeys(raw...)
}

// SetRawKeys replaces the published keys with JWKs as they are.
func (is *Issuer) SetRawKeys(keys ...json.RawMessage) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

// SetDown makes discovery and the JWKS fail with 503, or work again.
func (is *Issuer) SetDown(down bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.down = down
}

// SetKeysDown makes the JWKS alone fail with 503, or work again.
func (is *Issuer) SetKeysDown(down bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keysDown = down
}

// SetDiscoveryIssuer makes discovery name iss as the issuer; "" restores the
// server's URL.
func (is *Issuer) SetDiscoveryIssuer(iss string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.discoveryIssuer = iss
}

// SetJWKSGate makes every JWKS request send on entered (when not nil) and
// then wait until gate is closed (when not nil).
func (is *Issuer) SetJWKSGate(gate, entered chan struct{}) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.jwksGate, is.jwksEntered = gate, entered
}

// JWKSRequests returns how many JWKS requests the issuer has received.
func (is *Issuer) JWKSRequests() int { return int(is.jwksRequests.Load()) }

// Sign returns a compact JWS (typ JWT) of claims signed with key.
func Sign(t testing.TB, key Key, claims map[string]any, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	so := (&jose.SignerOptions{}).WithType("JWT")
	for _, o := range opts {
		o(so)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Alg, Key: jose.JSONWebKey{Key: key.Priv, KeyID: key.KID}}, so)
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, signer, claims)
}

// SignHMAC signs claims with HS256 and the given kid.
func SignHMAC(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	secret := []byte("0123456789abcdef0123456789abcdef")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, signer, claims)
}

func signPayload(t testing.TB, signer jose.Signer, claims map[string]any) string {
	t.Helper()
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

// Handmade returns header.payload.sig with the JSON parts base64url-encoded.
func Handmade(t testing.TB, header, claims any, sig string) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return B64(h) + "." + B64(p) + "." + sig
}

// B64 encodes b as base64url without padding.
func B64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
