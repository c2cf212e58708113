package oidc

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/frontgate/frontgate/auth"
)

func TestAuthenticateSuccess(t *testing.T) {
	tests := []struct {
		name   string
		opts   func(*Options)
		keys   func(t *testing.T) []testKey // nil: one RSA key
		claims map[string]any
		want   auth.Identity // Source and Expires are checked separately
	}{
		{
			name: "RS256 sub with prefix",
			want: auth.Identity{Name: "oidc:alice"},
		},
		{
			name: "ES256 key",
			opts: func(o *Options) { o.SigningAlgs = []string{"ES256"} },
			keys: func(t *testing.T) []testKey { return []testKey{ecKey(t, 0, "ec-0")} },
			want: auth.Identity{Name: "oidc:alice"},
		},
		{
			name: "RS256 and ES256 both accepted, ES256 signs",
			opts: func(o *Options) { o.SigningAlgs = []string{"RS256", "ES256"} },
			keys: func(t *testing.T) []testKey { return []testKey{ecKey(t, 0, "ec-0"), rsaKey(t, 0, "rsa-0")} },
			want: auth.Identity{Name: "oidc:alice"},
		},
		{
			name: "issuer# prefix by default",
			opts: func(o *Options) { o.UsernamePrefix = UsernamePrefixFor("", false, o.IssuerURL, "sub") },
			want: auth.Identity{Name: "#alice"}, // issuer URL prepended below
		},
		{
			name: "email claim, email_verified absent",
			opts: func(o *Options) { o.UsernameClaim, o.UsernamePrefix = "email", "" },
			want: auth.Identity{Name: "alice@example.com"},
		},
		{
			name:   "email claim, email_verified true",
			opts:   func(o *Options) { o.UsernameClaim, o.UsernamePrefix = "email", "" },
			claims: map[string]any{"email_verified": true},
			want:   auth.Identity{Name: "alice@example.com"},
		},
		{
			name:   "email_verified false ignored for another username claim",
			claims: map[string]any{"email_verified": false},
			want:   auth.Identity{Name: "oidc:alice"},
		},
		{
			name:   "groups as array with prefix",
			opts:   func(o *Options) { o.GroupsClaim, o.GroupsPrefix = "groups", "oidc:" },
			claims: map[string]any{"groups": []string{"dev", "ops"}},
			want:   auth.Identity{Name: "oidc:alice", Groups: []string{"oidc:dev", "oidc:ops"}},
		},
		{
			name:   "groups as a single string",
			opts:   func(o *Options) { o.GroupsClaim = "role" },
			claims: map[string]any{"role": "admin"},
			want:   auth.Identity{Name: "oidc:alice", Groups: []string{"admin"}},
		},
		{
			name:   "groups claim absent",
			opts:   func(o *Options) { o.GroupsClaim = "groups" },
			claims: map[string]any{},
			want:   auth.Identity{Name: "oidc:alice"},
		},
		{
			name:   "groups null and empty strings dropped",
			opts:   func(o *Options) { o.GroupsClaim, o.GroupsPrefix = "groups", "p:" },
			claims: map[string]any{"groups": []string{"", "a", ""}},
			want:   auth.Identity{Name: "oidc:alice", Groups: []string{"p:a"}},
		},
		{
			name:   "system groups are passed through (RefuseReserved decides)",
			opts:   func(o *Options) { o.GroupsClaim = "groups" },
			claims: map[string]any{"groups": []string{"system:masters"}},
			want:   auth.Identity{Name: "oidc:alice", Groups: []string{"system:masters"}},
		},
		{
			name: "uid and extra claims",
			opts: func(o *Options) {
				o.UIDClaim, o.ExtraClaims = "oid", map[string]string{"example.com/team": "team", "example.com/tenant": "tid", "example.com/absent": "nope"}
			},
			claims: map[string]any{"oid": "0000-1111", "team": []string{"a", "b"}, "tid": "t1"},
			want:   auth.Identity{Name: "oidc:alice", UID: "0000-1111", Extra: map[string][]string{"example.com/team": {"a", "b"}, "example.com/tenant": {"t1"}}},
		},
		{
			name:   "required claims match",
			opts:   func(o *Options) { o.RequiredClaims = map[string]string{"hd": "example.com", "tier": "gold"} },
			claims: map[string]any{"hd": "example.com", "tier": "gold"},
			want:   auth.Identity{Name: "oidc:alice"},
		},
		{
			name:   "audience array containing the client ID",
			claims: map[string]any{"aud": []string{"other", testClientID}},
			want:   auth.Identity{Name: "oidc:alice"},
		},
		{
			name:   "nbf and iat within the 5 minute leeway",
			claims: map[string]any{"nbf": testNow.Add(4 * time.Minute).Unix(), "iat": testNow.Add(4 * time.Minute).Unix()},
			want:   auth.Identity{Name: "oidc:alice"},
		},
		{
			name:   "preferred_username claim",
			opts:   func(o *Options) { o.UsernameClaim = "preferred_username" },
			claims: map[string]any{"preferred_username": "al"},
			want:   auth.Identity{Name: "oidc:al"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var keys []testKey
			if tt.keys != nil {
				keys = tt.keys(t)
			}
			e := newEnv(t, tt.opts, keys...)
			token := e.token(t, tt.claims)
			id, ok, err := e.a.AuthenticateToken(context.Background(), token)
			if err != nil || !ok {
				t.Fatalf("AuthenticateToken = %v, %v, %v", id, ok, err)
			}
			want := tt.want
			if strings.HasPrefix(want.Name, "#") {
				want.Name = e.is.URL() + want.Name
			}
			want.Source = "oidc"
			want.Expires = testNow.Add(time.Hour)
			if !id.Expires.Equal(want.Expires) {
				t.Errorf("Expires = %v, want %v", id.Expires, want.Expires)
			}
			id.Expires = want.Expires
			if !reflect.DeepEqual(*id, want) {
				t.Errorf("identity = %+v\nwant       %+v", *id, want)
			}
		})
	}
}

func TestAuthenticateRejections(t *testing.T) {
	tests := []struct {
		name   string
		opts   func(*Options)
		token  func(t *testing.T, e *env) string
		reason string
		msg    []string
	}{
		// Not a JWT at all.
		{name: "opaque token", token: func(*testing.T, *env) string { return "sha256~abcdefghijklmnop" }, reason: auth.ReasonMalformedToken, msg: []string{"not a JWT"}},
		{name: "empty token", token: func(*testing.T, *env) string { return "" }, reason: auth.ReasonMalformedToken},
		{name: "two parts", token: func(*testing.T, *env) string { return "eyJhbGciOiJSUzI1NiJ9.e30" }, reason: auth.ReasonMalformedToken, msg: []string{"three"}},
		{name: "four parts", token: func(*testing.T, *env) string { return "a.b.c.d" }, reason: auth.ReasonMalformedToken},
		{name: "header not base64url", token: func(*testing.T, *env) string { return "!!!.e30.c2ln" }, reason: auth.ReasonMalformedToken, msg: []string{"base64url"}},
		{name: "header not JSON", token: func(*testing.T, *env) string { return b64([]byte("nope")) + ".e30.c2ln" }, reason: auth.ReasonMalformedToken, msg: []string{"JSON"}},
		{name: "payload not JSON", token: func(*testing.T, *env) string {
			return b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte("[1]")) + ".c2ln"
		}, reason: auth.ReasonMalformedToken, msg: []string{"payload"}},
		{name: "JSON serialization", token: func(t *testing.T, e *env) string { return `{"payload":"e30","signatures":[]}` }, reason: auth.ReasonMalformedToken},
		{name: "too long", token: func(*testing.T, *env) string { return strings.Repeat("a", maxTokenBytes+1) }, reason: auth.ReasonMalformedToken, msg: []string{"longer"}},
		{name: "JWE (five parts)", token: func(*testing.T, *env) string {
			return b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + ".a2V5.aXY.Y2lwaGVy.dGFn"
		}, reason: auth.ReasonMalformedToken, msg: []string{"JWE"}},

		// Another issuer: "not mine".
		{name: "foreign issuer", token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"iss": "https://other.example.com"})
		}, reason: auth.ReasonInvalidIssuer, msg: []string{`token issuer "https://other.example.com" is not the configured issuer "https://127.0.0.1:`}},
		{name: "issuer with trailing slash", token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"iss": e.is.URL() + "/"})
		}, reason: auth.ReasonInvalidIssuer, msg: []string{"is not the configured issuer"}},
		{name: "no issuer claim", token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"iss": nil}) }, reason: auth.ReasonInvalidIssuer, msg: []string{"no issuer"}},
		{name: "foreign issuer wins over a bad algorithm", token: func(t *testing.T, e *env) string {
			return handmade(t, map[string]any{"alg": "none"}, map[string]any{"iss": "https://other.example.com"}, "")
		}, reason: auth.ReasonInvalidIssuer},
		{name: "issuer not a string", token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"iss": 42}) }, reason: auth.ReasonMalformedToken, msg: []string{"iss"}},

		// Header checks before any cryptography.
		{name: "alg none", token: func(t *testing.T, e *env) string {
			return handmade(t, map[string]any{"alg": "none", "typ": "JWT"}, e.claims(nil), "")
		}, reason: auth.ReasonUnsupportedAlg, msg: []string{`"none"`, "--oidc-signing-algs"}},
		{name: "alg HS256 signed with the RSA kid", token: func(t *testing.T, e *env) string {
			return signHMAC(t, e.key.KID, e.claims(nil))
		}, reason: auth.ReasonUnsupportedAlg, msg: []string{`"HS256"`}},
		{name: "RS384 not configured", token: func(t *testing.T, e *env) string {
			k := e.key
			k.Alg = jose.RS384
			return sign(t, k, e.claims(nil))
		}, reason: auth.ReasonUnsupportedAlg, msg: []string{`"RS384"`, "RS256"}},
		{name: "ES256 not configured", token: func(t *testing.T, e *env) string {
			return sign(t, ecKey(t, 0, "ec-0"), e.claims(nil))
		}, reason: auth.ReasonUnsupportedAlg, msg: []string{`"ES256"`}},
		{name: "no alg", token: func(t *testing.T, e *env) string {
			return handmade(t, map[string]any{"typ": "JWT"}, e.claims(nil), "c2lnbmF0dXJl")
		}, reason: auth.ReasonMalformedToken, msg: []string{"alg"}},
		{name: "crit header", token: func(t *testing.T, e *env) string {
			return sign(t, e.key, e.claims(nil), func(o *jose.SignerOptions) { o.WithHeader("crit", []string{"exp"}) })
		}, reason: auth.ReasonUnsupportedAlg, msg: []string{"crit"}},
		{name: "nested JWT", token: func(t *testing.T, e *env) string {
			return sign(t, e.key, e.claims(nil), func(o *jose.SignerOptions) { o.WithContentType("JWT") })
		}, reason: auth.ReasonMalformedToken, msg: []string{"nested"}},
		{name: "empty signature", token: func(t *testing.T, e *env) string {
			return handmade(t, map[string]any{"alg": "RS256", "kid": "rsa-0"}, e.claims(nil), "")
		}, reason: auth.ReasonInvalidSignature},

		// Keys and signatures.
		{name: "unknown kid", token: func(t *testing.T, e *env) string {
			return sign(t, rsaKey(t, 1, "unknown"), e.claims(nil))
		}, reason: auth.ReasonUnknownKey, msg: []string{`"unknown"`}},
		{name: "signed by another key under a known kid", token: func(t *testing.T, e *env) string {
			return sign(t, rsaKey(t, 1, e.key.KID), e.claims(nil))
		}, reason: auth.ReasonInvalidSignature, msg: []string{"signature"}},
		{name: "tampered payload", token: func(t *testing.T, e *env) string {
			parts := strings.Split(e.token(t, nil), ".")
			forged := strings.Split(handmade(t, map[string]any{}, e.claims(map[string]any{"sub": "admin"}), ""), ".")
			return parts[0] + "." + forged[1] + "." + parts[2]
		}, reason: auth.ReasonInvalidSignature},
		{name: "no kid and no key verifies", token: func(t *testing.T, e *env) string {
			return sign(t, rsaKey(t, 1, ""), e.claims(nil))
		}, reason: auth.ReasonInvalidSignature},

		// Time.
		{name: "expired", token: func(t *testing.T, e *env) string {
			e.clock.Advance(2 * time.Hour)
			return e.token(t, map[string]any{"iat": testNow.Unix(), "exp": time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC).Unix()})
		}, reason: auth.ReasonTokenExpired, msg: []string{"token expired at 2026-11-27T08:00:00Z"}},
		{name: "no exp", token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"exp": nil}) }, reason: auth.ReasonMissingClaim, msg: []string{"exp"}},
		{name: "exp not a number", token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"exp": "tomorrow"}) }, reason: auth.ReasonInvalidClaim},
		{name: "nbf in the future", token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"nbf": testNow.Add(10 * time.Minute).Unix()})
		}, reason: auth.ReasonTokenNotYetValid, msg: []string{"not valid before 2026-11-27T07:10:00Z"}},
		{name: "iat in the future", token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"iat": testNow.Add(10 * time.Minute).Unix()})
		}, reason: auth.ReasonTokenNotYetValid, msg: []string{"issued at 2026-11-27T07:10:00Z"}},

		// Audience.
		{name: "wrong audience", token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"aud": "someone-else"}) }, reason: auth.ReasonInvalidAudience, msg: []string{`"someone-else"`, `"` + testClientID + `"`, "--oidc-client-id"}},
		{name: "no audience", token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"aud": nil}) }, reason: auth.ReasonInvalidAudience, msg: []string{testClientID}},
		{name: "audience array without the client ID", token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"aud": []string{"a", "b"}})
		}, reason: auth.ReasonInvalidAudience},

		// Claims.
		{name: "missing username claim", opts: func(o *Options) { o.UsernameClaim = "preferred_username" }, token: func(t *testing.T, e *env) string { return e.token(t, nil) },
			reason: auth.ReasonMissingClaim, msg: []string{`"preferred_username"`, "--oidc-username-claim"}},
		{name: "username claim not a string", opts: func(o *Options) { o.UsernameClaim = "upn" }, token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"upn": []string{"a"}}) },
			reason: auth.ReasonInvalidClaim, msg: []string{`"upn"`, "not a string"}},
		{name: "empty username", token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"sub": ""}) },
			reason: auth.ReasonInvalidClaim, msg: []string{"empty"}},
		{name: "email not verified", opts: func(o *Options) { o.UsernameClaim = "email" }, token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"email_verified": false}) },
			reason: auth.ReasonInvalidClaim, msg: []string{"not verified"}},
		{name: "email_verified not a boolean", opts: func(o *Options) { o.UsernameClaim = "email" }, token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"email_verified": "true"}) },
			reason: auth.ReasonInvalidClaim, msg: []string{"email_verified"}},
		{name: "email_verified null", opts: func(o *Options) { o.UsernameClaim = "email" }, token: func(t *testing.T, e *env) string {
			return sign(t, e.key, withNull(e.claims(nil), "email_verified"))
		}, reason: auth.ReasonInvalidClaim, msg: []string{"not verified"}},
		{name: "groups claim a number", opts: func(o *Options) { o.GroupsClaim = "groups" }, token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"groups": 7}) },
			reason: auth.ReasonInvalidClaim, msg: []string{`"groups"`, "--oidc-groups-claim"}},
		{name: "groups claim an array of numbers", opts: func(o *Options) { o.GroupsClaim = "groups" }, token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"groups": []int{1}}) },
			reason: auth.ReasonInvalidClaim},
		{name: "uid claim missing", opts: func(o *Options) { o.UIDClaim = "oid" }, token: func(t *testing.T, e *env) string { return e.token(t, nil) },
			reason: auth.ReasonMissingClaim, msg: []string{`"oid"`}},
		{name: "uid claim not a string", opts: func(o *Options) { o.UIDClaim = "oid" }, token: func(t *testing.T, e *env) string { return e.token(t, map[string]any{"oid": 12}) },
			reason: auth.ReasonInvalidClaim},
		{name: "extra claim wrong type", opts: func(o *Options) { o.ExtraClaims = map[string]string{"example.com/team": "team"} }, token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"team": map[string]any{"x": 1}})
		}, reason: auth.ReasonInvalidClaim, msg: []string{`"team"`}},
		{name: "required claim mismatch", opts: func(o *Options) { o.RequiredClaims = map[string]string{"hd": "example.com"} }, token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"hd": "evil.example"})
		}, reason: auth.ReasonInvalidClaim, msg: []string{`"hd"`, `"example.com"`, "--oidc-required-claim"}},
		{name: "required claim missing", opts: func(o *Options) { o.RequiredClaims = map[string]string{"hd": "example.com"} }, token: func(t *testing.T, e *env) string { return e.token(t, nil) },
			reason: auth.ReasonMissingClaim, msg: []string{`"hd"`, "--oidc-required-claim"}},
		{name: "required claim not a string", opts: func(o *Options) { o.RequiredClaims = map[string]string{"admin": "true"} }, token: func(t *testing.T, e *env) string {
			return e.token(t, map[string]any{"admin": true})
		}, reason: auth.ReasonInvalidClaim, msg: []string{`"admin"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts)
			token := tt.token(t, e)
			id, ok, err := e.a.AuthenticateToken(context.Background(), token)
			wantRejection(t, token, id, ok, err, tt.reason, tt.msg...)
		})
	}
}

// withNull returns claims with name set to JSON null.
func withNull(claims map[string]any, name string) map[string]any {
	claims[name] = nil
	return claims
}
