package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/frontgate/frontgate/auth"
)

// A token signed by a key the issuer rotated in after start-up is accepted
// without a restart: the unknown kid triggers one refetch.
func TestKeyRotationRefetch(t *testing.T) {
	e := newEnv(t, nil)
	if got := e.jwksFetches("success"); got != 1 {
		t.Fatalf("fetches after start-up = %d, want 1", got)
	}
	rotated := rsaKey(t, 1, "rsa-1")
	token := sign(t, rotated, e.claims(nil))

	e.is.SetKeys(t, rotated)
	id, ok, err := e.a.AuthenticateToken(context.Background(), token)
	if err != nil || !ok {
		t.Fatalf("token of the rotated key: %v, %v, %v", id, ok, err)
	}
	if got := e.jwksFetches("success"); got != 2 {
		t.Errorf("fetches = %d, want 2", got)
	}
	// The new key set is cached: no further fetch.
	if _, ok, err := e.a.AuthenticateToken(context.Background(), token); !ok {
		t.Fatalf("second use: %v", err)
	}
	if got := e.jwksFetches("success"); got != 2 {
		t.Errorf("fetches after reuse = %d, want 2", got)
	}
	// The withdrawn key is no longer trusted.
	old := e.token(t, nil)
	id, ok, err = e.a.AuthenticateToken(context.Background(), old)
	wantRejection(t, old, id, ok, err, auth.ReasonUnknownKey)
}

// Unknown key IDs cause at most one refetch per 10 s.
func TestRefetchRateLimit(t *testing.T) {
	e := newEnv(t, nil)
	steps := []struct {
		name        string
		advance     time.Duration
		wantFetches int // total, including start-up
		wantMsg     string
	}{
		{name: "first miss refetches", wantFetches: 2, wantMsg: "not in the issuer's JWKS"},
		{name: "second miss is limited", wantFetches: 2, wantMsg: "refetched less than 10s ago"},
		{name: "third miss 5s later is limited", advance: 5 * time.Second, wantFetches: 2, wantMsg: "refetched less than 10s ago"},
		{name: "miss 10s after the first refetches", advance: 5 * time.Second, wantFetches: 3},
		{name: "and is limited again", wantFetches: 3, wantMsg: "refetched less than 10s ago"},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.clock.Advance(st.advance)
			token := sign(t, rsaKey(t, 1, "forged-"+string(rune('a'+i))), e.claims(nil))
			id, ok, err := e.a.AuthenticateToken(context.Background(), token)
			wantRejection(t, token, id, ok, err, auth.ReasonUnknownKey, st.wantMsg)
			if got := e.is.JWKSRequests(); got != st.wantFetches {
				t.Errorf("JWKS requests = %d, want %d", got, st.wantFetches)
			}
			if got := e.jwksFetches("success"); got != st.wantFetches {
				t.Errorf("frontgate_oidc_jwks_fetches_total{result=success} = %d, want %d", got, st.wantFetches)
			}
		})
	}
}

// Concurrent misses for a rotated key share one fetch, and all of them
// succeed with its result.
func TestRefetchMergesConcurrentMisses(t *testing.T) {
	e := newEnv(t, nil)
	rotated := rsaKey(t, 1, "rsa-1")
	e.is.SetKeys(t, rotated)
	gate, entered := make(chan struct{}), make(chan struct{}, 100)
	e.is.SetJWKSGate(gate, entered)

	const n = 20
	token := sign(t, rotated, e.claims(nil))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, ok, err := e.a.AuthenticateToken(context.Background(), token); !ok {
				errs <- err
			}
		})
	}
	<-entered                         // the one fetch is under way
	time.Sleep(50 * time.Millisecond) // let the other callers join it
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent caller refused: %v", err)
	}
	if got := e.is.JWKSRequests(); got != 2 {
		t.Errorf("JWKS requests = %d, want 2 (start-up and one shared refetch)", got)
	}
}

// A failing refetch is counted as an error and reported as an unknown key;
// the keys already known keep working.
func TestRefetchFailure(t *testing.T) {
	e := newEnv(t, nil)
	e.is.SetDown(true)
	token := sign(t, rsaKey(t, 1, "rsa-1"), e.claims(nil))
	id, ok, err := e.a.AuthenticateToken(context.Background(), token)
	wantRejection(t, token, id, ok, err, auth.ReasonUnknownKey, "refetching the JWKS failed")
	if got := e.jwksFetches("error"); got != 1 {
		t.Errorf("fetch errors = %d, want 1", got)
	}
	if _, ok, err := e.a.AuthenticateToken(context.Background(), e.token(t, nil)); !ok {
		t.Errorf("known key after a failed refetch: %v", err)
	}
}

// The JWKS may hold keys frontgate cannot or must not use; they are skipped
// and the others still work.
func TestJWKSSkipsUnusableKeys(t *testing.T) {
	good := rsaKey(t, 0, "rsa-0")
	goodJSON, err := good.Public().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakJSON, _ := jose.JSONWebKey{Key: &weak.PublicKey, KeyID: "weak", Algorithm: "RS256"}.MarshalJSON()
	octJSON, _ := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct", Algorithm: "HS256"}.MarshalJSON()
	e := newEnv(t, nil, good)
	e.is.SetRawKeys(json.RawMessage(`{"kty":"bogus","kid":"x"}`), octJSON, weakJSON, goodJSON)
	e.clock.Advance(time.Minute)
	// Force a refetch with an unknown kid, then use the good key.
	unknown := sign(t, rsaKey(t, 1, "nope"), e.claims(nil))
	if _, ok, _ := e.a.AuthenticateToken(context.Background(), unknown); ok {
		t.Fatal("unknown key accepted")
	}
	if n := len(e.a.keys.Load().current()); n != 1 {
		t.Errorf("usable keys = %d, want 1", n)
	}
	if _, ok, err := e.a.AuthenticateToken(context.Background(), e.token(t, nil)); !ok {
		t.Errorf("good key: %v", err)
	}
	weakToken := sign(t, testKey{KID: "weak", Alg: jose.RS256, Priv: weak}, e.claims(nil))
	id, ok, err := e.a.AuthenticateToken(context.Background(), weakToken)
	wantRejection(t, weakToken, id, ok, err, auth.ReasonUnknownKey)
}

func TestUsableFor(t *testing.T) {
	r, _ := pregenerated(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaPub := r[0].Public()
	tests := []struct {
		name string
		key  jose.JSONWebKey
		alg  string
		want bool
	}{
		{name: "RSA RS256", key: jose.JSONWebKey{Key: rsaPub}, alg: "RS256", want: true},
		{name: "RSA PS512", key: jose.JSONWebKey{Key: rsaPub}, alg: "PS512", want: true},
		{name: "RSA ES256", key: jose.JSONWebKey{Key: rsaPub}, alg: "ES256"},
		{name: "RSA with use enc", key: jose.JSONWebKey{Key: rsaPub, Use: "enc"}, alg: "RS256"},
		{name: "RSA with use sig", key: jose.JSONWebKey{Key: rsaPub, Use: "sig"}, alg: "RS256", want: true},
		{name: "RSA pinned to RS512 used for RS256", key: jose.JSONWebKey{Key: rsaPub, Algorithm: "RS512"}, alg: "RS256"},
		{name: "P-256 ES256", key: jose.JSONWebKey{Key: &p256.PublicKey}, alg: "ES256", want: true},
		{name: "P-256 ES384", key: jose.JSONWebKey{Key: &p256.PublicKey}, alg: "ES384"},
		{name: "P-384 ES384", key: jose.JSONWebKey{Key: &p384.PublicKey}, alg: "ES384", want: true},
		{name: "P-521 ES512", key: jose.JSONWebKey{Key: &p521.PublicKey}, alg: "ES512", want: true},
		{name: "EC RS256", key: jose.JSONWebKey{Key: &p256.PublicKey}, alg: "RS256"},
		{name: "symmetric key", key: jose.JSONWebKey{Key: []byte("secret")}, alg: "HS256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := usableFor(&tt.key, tt.alg); got != tt.want {
				t.Errorf("usableFor = %v, want %v", got, tt.want)
			}
		})
	}
}
