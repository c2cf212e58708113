package cluster

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// TokenIssuer is a minimal OpenID issuer run inside the test process (discovery
// document and JWKS, RS256) that signs whatever claims it is given. It exists
// only for token shapes the real OpenID Provider cannot produce on demand,
// such as an expired ID token; everything else uses [OIDCProvider].
type TokenIssuer struct {
	// URL is the issuer URL, http://127.0.0.1:PORT (no trailing slash).
	URL string

	key     *rsa.PrivateKey
	kid     string
	srv     *http.Server
	cluster *Cluster
}

// StartTokenIssuer starts a [TokenIssuer] on a free loopback port; Stop
// closes it.
func (c *Cluster) StartTokenIssuer() (*TokenIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ti := &TokenIssuer{URL: "http://" + l.Addr().String(), key: key, kid: randomString(), cluster: c}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                ti.URL,
			"authorization_endpoint":                ti.URL + "/authorize",
			"token_endpoint":                        ti.URL + "/token",
			"jwks_uri":                              ti.URL + "/keys",
			"response_types_supported":              []string{"code", "id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		pub := ti.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": ti.kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	ti.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ti.srv.Serve(l) }()
	c.mu.Lock()
	c.closers = append(c.closers, ti.Stop)
	c.mu.Unlock()
	return ti, nil
}

// Stop closes the issuer's server.
func (ti *TokenIssuer) Stop() { _ = ti.srv.Close() }

// Sign returns an RS256 JWT with claims, signed with the issuer's key (iss is
// not added: pass it). The token is recorded with [Cluster.RecordSecret].
func (ti *TokenIssuer) Sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": ti.kid})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ti.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	token := signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	ti.cluster.RecordSecret(token)
	return token, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
