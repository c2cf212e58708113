package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/frontgate/frontgate/auth"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testClock is a settable clock shared by the fake OP and the client.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now().Truncate(time.Second)} }

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

// fakeOP is an OpenID provider just good enough to test the grants: it
// checks PKCE, redirect URIs, client secrets and refresh tokens, and counts
// what it was asked.
type fakeOP struct {
	t      *testing.T
	srv    *httptest.Server
	clock  *testClock
	key    *ecdsa.PrivateKey
	rogue  *ecdsa.PrivateKey // signs tokens the JWKS does not know
	client string
	secret string // required at the token endpoint when set
	ttl    time.Duration

	// Behaviour switches, set before use.
	scopesSupported []string // nil: the discovery document has none
	noDevice        bool
	denyAuthorize   string // error code /authorize redirects back with
	refreshFails    bool
	omitIDToken     bool
	wrongNonce      bool
	signWithRogue   bool
	audience        string // aud of ID tokens instead of client
	devicePending   int    // polls answered authorization_pending
	denyDevice      bool

	mu            sync.Mutex
	codes         map[string]authRequest
	refreshTokens map[string]string // refresh token -> subject
	devicePolls   int

	authorizations, codeExchanges, refreshes, deviceAuths atomic.Int32
	lastScope                                             atomic.Value // string
	serial                                                atomic.Int32
}

type authRequest struct {
	challenge, nonce, redirect, scope string
}

func newFakeOP(t *testing.T, clock *testClock) *fakeOP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{
		t: t, clock: clock, key: key, rogue: rogue, client: "kubectl", ttl: time.Hour,
		scopesSupported: []string{"openid", "offline_access", "email"},
		codes:           map[string]authRequest{}, refreshTokens: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /keys", op.keys)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("POST /device_authorization", op.deviceAuthorization)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func (op *fakeOP) issuer() string { return op.srv.URL }

func (op *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	doc := map[string]any{
		"issuer":                                op.issuer(),
		"authorization_endpoint":                op.issuer() + "/authorize",
		"token_endpoint":                        op.issuer() + "/token",
		"jwks_uri":                              op.issuer() + "/keys",
		"id_token_signing_alg_values_supported": []string{"ES256"},
	}
	if !op.noDevice {
		doc["device_authorization_endpoint"] = op.issuer() + "/device_authorization"
	}
	if op.scopesSupported != nil {
		doc["scopes_supported"] = op.scopesSupported
	}
	writeJSON(w, http.StatusOK, doc)
}

func (op *fakeOP) keys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: op.key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
}

func (op *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	op.authorizations.Add(1)
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme != "http" || !auth.IsLoopbackHost(redirect.Hostname()) || redirect.Path != CallbackPath {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest) // shown in the browser, as real OPs do
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	switch {
	case op.denyAuthorize != "":
		back.Set("error", op.denyAuthorize)
		back.Set("error_description", "the fake OP says no\nwith a second line")
	case q.Get("client_id") != op.client || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		back.Set("error", "invalid_request")
	default:
		code := fmt.Sprintf("code-%d", op.serial.Add(1))
		op.mu.Lock()
		op.codes[code] = authRequest{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: redirect.String(), scope: q.Get("scope")}
		op.mu.Unlock()
		op.lastScope.Store(q.Get("scope"))
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request", err.Error())
		return
	}
	clientID, secret, basic := r.BasicAuth()
	if !basic {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if clientID != op.client || secret != op.secret {
		w.Header().Set("WWW-Authenticate", "Basic")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication failed"}`))
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		op.codeExchanges.Add(1)
		op.mu.Lock()
		req, ok := op.codes[r.PostForm.Get("code")]
		delete(op.codes, r.PostForm.Get("code"))
		op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok:
			oauthError(w, "invalid_grant", "unknown code")
		case base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge:
			oauthError(w, "invalid_grant", "PKCE verification failed")
		case r.PostForm.Get("redirect_uri") != req.redirect:
			oauthError(w, "invalid_grant", "redirect_uri differs")
		default:
			nonce := req.nonce
			if op.wrongNonce {
				nonce = "not-" + nonce
			}
			op.issue(w, "alice", nonce, req.scope)
		}
	case "refresh_token":
		op.refreshes.Add(1)
		op.mu.Lock()
		sub, ok := op.refreshTokens[r.PostForm.Get("refresh_token")]
		delete(op.refreshTokens, r.PostForm.Get("refresh_token")) // rotation
		op.mu.Unlock()
		if !ok || op.refreshFails {
			oauthError(w, "invalid_grant", "refresh token revoked")
			return
		}
		op.issue(w, sub, "", "openid offline_access")
	case "urn:ietf:params:oauth:grant-type:device_code":
		op.mu.Lock()
		op.devicePolls++
		polls := op.devicePolls
		op.mu.Unlock()
		switch {
		case op.denyDevice:
			oauthError(w, "access_denied", "the user said no")
		case polls <= op.devicePending:
			oauthError(w, "authorization_pending", "")
		default:
			op.issue(w, "alice", "", "openid offline_access")
		}
	default:
		oauthError(w, "unsupported_grant_type", "")
	}
}

func (op *fakeOP) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	op.deviceAuths.Add(1)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("client_id") != op.client {
		oauthError(w, "invalid_client", "unknown client")
		return
	}
	op.lastScope.Store(r.PostForm.Get("scope"))
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": "device-code", "user_code": "WDJB-MJHT",
		"verification_uri": op.issuer() + "/device", "verification_uri_complete": op.issuer() + "/device?user_code=WDJB-MJHT",
		"expires_in": 60, "interval": 1,
	})
}

// issue answers with a signed ID token and, for offline_access, a refresh
// token.
func (op *fakeOP) issue(w http.ResponseWriter, sub, nonce, scope string) {
	now := op.clock.Now()
	aud := op.client
	if op.audience != "" {
		aud = op.audience
	}
	claims := map[string]any{"iss": op.issuer(), "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(op.ttl).Unix(), "jti": op.serial.Add(1)}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	key := op.key
	if op.signWithRogue {
		key = op.rogue
	}
	resp := map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": int(op.ttl.Seconds())}
	if !op.omitIDToken {
		resp["id_token"] = op.sign(key, claims)
	}
	if slices.Contains(strings.Fields(scope), "offline_access") {
		rt := fmt.Sprintf("rt-%d", op.serial.Add(1))
		op.mu.Lock()
		op.refreshTokens[rt] = sub
		op.mu.Unlock()
		resp["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

func (op *fakeOP) sign(key *ecdsa.PrivateKey, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		op.t.Error(err)
		return ""
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		op.t.Error(err)
		return ""
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		op.t.Error(err)
	}
	return raw
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, code, description string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": description})
}

// browser is a fake browser: it follows the authorization URL, redirects
// included, in the background, and keeps the last page it got.
type browser struct {
	opened atomic.Int32
	mu     sync.Mutex
	pages  []string
	wg     sync.WaitGroup
}

func (b *browser) open(u string) error {
	b.opened.Add(1)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		resp, err := http.Get(u)
		if err != nil {
			b.record(err.Error())
			return
		}
		defer resp.Body.Close()
		var sb strings.Builder
		_, _ = fmt.Fprintf(&sb, "%d ", resp.StatusCode)
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		sb.Write(buf[:n])
		b.record(sb.String())
	}()
	return nil
}

func (b *browser) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pages = append(b.pages, s)
}

// lastPage waits for the browser and returns the last page it saw.
func (b *browser) lastPage() string {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pages) == 0 {
		return ""
	}
	return b.pages[len(b.pages)-1]
}
