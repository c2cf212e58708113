package oidc

// Benchmarks of token verification, run under `make bench` only
// (go test -run '^$' -bench . -benchmem ./auth/oidc/). For RS256 and ES256,
// in the same run:
//
//   - VerifySignature/<alg>/jose: the raw signature check with go-jose
//     directly (ParseSignedCompact + Verify with the public key), the floor
//     any JWT verification pays;
//   - VerifySignature/<alg>/crypto: the bare crypto/rsa or crypto/ecdsa
//     verification of the SHA-256 digest, without JOSE parsing;
//   - AuthenticateToken/<alg>/cold: Authenticator.AuthenticateToken on a
//     token it has not seen (the authenticator keeps no cache; the tokens
//     are distinct anyway, taken in turn from a pool signed beforehand);
//   - AuthenticateToken/<alg>/cache-miss: the same through the token cache,
//     whose clock jumps past the TTL before every call, so every call is a
//     miss that verifies and stores (frontgate's real cold path);
//   - AuthenticateToken/<alg>/cache-hit: through the token cache, hit.
//
// Besides ns/op (wall time) each reports cpu-ns/op, the process's CPU time
// per operation, which other processes competing for the CPUs inflate far
// less. BENCHMARKS.md compares cold against jose: the target is ≤ 1.3×.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/tokencache"
)

// benchTokens is how many distinct tokens a cold benchmark cycles through.
const benchTokens = 256

// benchEnv is a ready Authenticator for one signing key, with typical
// settings: sub with a prefix as the username, a groups claim.
type benchEnv struct {
	a      *Authenticator
	key    testKey
	issuer string
}

func newBenchEnv(b *testing.B, key testKey) *benchEnv {
	b.Helper()
	is := newTestIssuer(b, key)
	a, err := New(Options{
		IssuerURL:      is.URL(),
		ClientID:       testClientID,
		UsernamePrefix: "oidc:",
		GroupsClaim:    "groups",
		GroupsPrefix:   "oidc:",
		SigningAlgs:    []string{string(key.Alg)},
		RootCAs:        is.CAs(),
		Registerer:     prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for a.Ready() != nil {
		if time.Now().After(deadline) {
			b.Fatalf("not ready: %v", a.Ready())
		}
		time.Sleep(time.Millisecond)
	}
	return &benchEnv{a: a, key: key, issuer: is.URL()}
}

// token signs a typical ID token; n makes it distinct.
func (e *benchEnv) token(b *testing.B, n int) string {
	now := time.Now()
	return sign(b, e.key, map[string]any{
		"iss":    e.issuer,
		"aud":    testClientID,
		"sub":    "alice",
		"email":  "alice@example.com",
		"name":   "Alice Example",
		"groups": []string{"devs", "team-payments", "oncall"},
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
		"jti":    fmt.Sprintf("bench-%d", n),
	})
}

func (e *benchEnv) tokens(b *testing.B, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = e.token(b, i)
	}
	return out
}

func benchKeys(b *testing.B) []testKey {
	return []testKey{rsaKey(b, 0, "rsa-0"), ecKey(b, 0, "ec-0")}
}

func BenchmarkVerifySignature(b *testing.B) {
	for _, key := range benchKeys(b) {
		e := &benchEnv{key: key, issuer: "https://issuer.example"}
		token := e.token(b, 0)
		pub := key.Priv.Public()
		algs := []jose.SignatureAlgorithm{key.Alg}
		b.Run(string(key.Alg)+"/jose", func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				jws, err := jose.ParseSignedCompact(token, algs)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.Verify(pub); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
		b.Run(string(key.Alg)+"/crypto", func(b *testing.B) {
			i := strings.LastIndexByte(token, '.')
			digest := sha256.Sum256([]byte(token[:i]))
			sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				switch pub := pub.(type) {
				case *rsa.PublicKey:
					err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
				case *ecdsa.PublicKey:
					r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
					if !ecdsa.Verify(pub, digest[:], r, s) {
						err = fmt.Errorf("ES256 signature does not verify")
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

func BenchmarkAuthenticateToken(b *testing.B) {
	for _, key := range benchKeys(b) {
		e := newBenchEnv(b, key)
		pool := e.tokens(b, benchTokens)
		ctx := context.Background()
		check := func(b *testing.B, id *auth.Identity, ok bool, err error) {
			if err != nil || !ok || id.Name != "oidc:alice" {
				b.Fatalf("%v %v %+v", ok, err, id)
			}
		}
		b.Run(string(key.Alg)+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU()
			i := 0
			for b.Loop() {
				id, ok, err := e.a.AuthenticateToken(ctx, pool[i%len(pool)])
				check(b, id, ok, err)
				i++
			}
			reportCPU(b, cpu)
		})
		b.Run(string(key.Alg)+"/cache-miss", func(b *testing.B) {
			// The cache's clock jumps a TTL ahead before every call; the
			// authenticator keeps the real clock.
			var ticks atomic.Int64
			base := time.Now()
			cache := tokencache.New(e.a, tokencache.Options{
				TTL: time.Minute, Registerer: prometheus.NewRegistry(),
				Now: func() time.Time { return base.Add(time.Duration(ticks.Load()) * time.Minute) },
			})
			token := pool[0]
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				ticks.Add(2)
				id, ok, err := cache.AuthenticateToken(ctx, token)
				check(b, id, ok, err)
			}
			reportCPU(b, cpu)
		})
		b.Run(string(key.Alg)+"/cache-hit", func(b *testing.B) {
			cache := tokencache.New(e.a, tokencache.Options{TTL: time.Hour, Registerer: prometheus.NewRegistry()})
			token := pool[0]
			if _, _, err := cache.AuthenticateToken(ctx, token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				id, ok, err := cache.AuthenticateToken(ctx, token)
				check(b, id, ok, err)
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the process's CPU time per operation since start
// (processCPU), as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}
