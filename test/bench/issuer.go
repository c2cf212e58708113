package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// clientID is the audience of every benchmark token.
const clientID = "bench"

// issuer is a local OpenID issuer (discovery and JWKS over plain HTTP on
// loopback, which frontgate accepts) with an RS256 and an ES256 key. It
// only signs: frontgate fetches its JWKS once at start-up.
type issuer struct {
	URL     string
	srv     *http.Server
	signers map[jose.SignatureAlgorithm]jose.Signer
	keys    map[jose.SignatureAlgorithm]crypto.Signer
	// seq numbers the tokens, so that each is distinct (jti).
	seq atomic.Int64
}

func startIssuer() (*issuer, error) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	is := &issuer{
		URL:     "http://" + l.Addr().String(),
		signers: map[jose.SignatureAlgorithm]jose.Signer{},
		keys:    map[jose.SignatureAlgorithm]crypto.Signer{jose.RS256: rsaKey, jose.ES256: ecKey},
	}
	var jwks []jose.JSONWebKey
	for alg, key := range is.keys {
		kid := "bench-" + string(alg)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			return nil, err
		}
		is.signers[alg] = s
		jwks = append(jwks, jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                is.URL,
			"jwks_uri":                              is.URL + "/keys",
			"authorization_endpoint":                is.URL + "/authorize",
			"token_endpoint":                        is.URL + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: jwks})
	})
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = is.srv.Serve(l) }()
	return is, nil
}

func (is *issuer) stop() { _ = is.srv.Close() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// token signs a typical ID token for user; n makes it distinct.
func (is *issuer) token(alg jose.SignatureAlgorithm, user string, n int) (string, error) {
	now := time.Now()
	payload, err := json.Marshal(map[string]any{
		"iss":    is.URL,
		"aud":    clientID,
		"sub":    user,
		"email":  user + "@example.com",
		"name":   "Bench User",
		"groups": []string{"devs", "team-payments", "oncall"},
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
		"jti":    fmt.Sprintf("%s-%d", alg, n),
	})
	if err != nil {
		return "", err
	}
	obj, err := is.signers[alg].Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// tokens signs n distinct tokens on every core.
func (is *issuer) tokens(alg jose.SignatureAlgorithm, n int) ([]string, error) {
	out := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				t, err := is.token(alg, "bench-user", int(is.seq.Add(1)))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				out[i] = t
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// verifyCost measures the raw signature verification of a token with
// go-jose (ParseSignedCompact and Verify), for about d.
func (is *issuer) verifyCost(alg jose.SignatureAlgorithm, d time.Duration) (time.Duration, error) {
	token, err := is.token(alg, "bench-user", -1)
	if err != nil {
		return 0, err
	}
	pub := is.keys[alg].Public()
	algs := []jose.SignatureAlgorithm{alg}
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		jws, err := jose.ParseSignedCompact(token, algs)
		if err != nil {
			return 0, err
		}
		if _, err := jws.Verify(pub); err != nil {
			return 0, err
		}
		n++
	}
	return time.Since(start) / time.Duration(n), nil
}
