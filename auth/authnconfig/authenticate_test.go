package authnconfig

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/internal/oidctest"
)

// One identity provider, several client IDs: entries of one issuer share its
// key set and are chosen by the token's audience (kubernetes/kubernetes#71162).
func TestSameIssuerSeveralEntries(t *testing.T) {
	key := oidctest.RSAKey(t, 0, "rsa-0")
	is := oidctest.NewIssuer(t, key)
	clock := oidctest.NewClock()
	cfg := mustLoad(t, header+`
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubectl]}
  claimMappings:
    username: {claim: email, prefix: ""}
    groups: {claim: groups, prefix: "people:"}
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [ci, ci-legacy], audienceMatchPolicy: MatchAny}
  claimValidationRules:
  - claim: repository
    requiredValue: example/app
  claimMappings:
    username: {expression: '"ci:" + claims.sub'}
`, is)
	a := startAuthenticator(t, cfg, clock.Now)
	if got := is.JWKSRequests(); got != 1 {
		t.Errorf("JWKS requests at start-up = %d, want 1 (one key set per issuer)", got)
	}
	base := map[string]any{"email": "alice@example.com", "groups": []string{"dev"}, "repository": "example/app"}
	tests := []struct {
		name   string
		aud    any
		claims map[string]any
		want   *auth.Identity
		reason string
		msg    []string
	}{
		{name: "kubectl entry", aud: "kubectl", want: &auth.Identity{Name: "alice@example.com", Groups: []string{"people:dev"}}},
		{name: "ci entry", aud: "ci", want: &auth.Identity{Name: "ci:alice"}},
		{name: "ci entry, second audience", aud: []string{"other", "ci-legacy"}, want: &auth.Identity{Name: "ci:alice"}},
		{name: "ci entry applies its own rules", aud: "ci", claims: map[string]any{"repository": "evil/app"}, reason: auth.ReasonInvalidClaim, msg: []string{"jwt[1].claimValidationRules[0]"}},
		{name: "audiences of two entries are ambiguous", aud: []string{"kubectl", "ci"}, reason: auth.ReasonInvalidAudience, msg: []string{"ambiguous", "jwt[0], jwt[1]"}},
		{name: "audience of no entry", aud: "other", reason: auth.ReasonInvalidAudience, msg: []string{`["other"]`, "jwt[0], jwt[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := claimsAt(clock.Now(), is.URL(), "", base)
			claims["aud"] = tt.aud
			for k, v := range tt.claims {
				claims[k] = v
			}
			token := oidctest.Sign(t, key, claims)
			id, ok, err := a.AuthenticateToken(context.Background(), token)
			if tt.want == nil {
				wantRejection(t, token, id, ok, err, tt.reason, tt.msg...)
				return
			}
			if !ok {
				t.Fatalf("rejected: %v", err)
			}
			want := *tt.want
			want.Source, want.Expires = "jwt", id.Expires
			if !reflect.DeepEqual(*id, want) {
				t.Errorf("identity = %+v, want %+v", *id, want)
			}
			if !id.Expires.Equal(clock.Now().Add(time.Hour).Truncate(time.Second)) {
				t.Errorf("Expires = %v", id.Expires)
			}
		})
	}
}

func TestAuthenticateRejections(t *testing.T) {
	key := oidctest.RSAKey(t, 0, "rsa-0")
	is := oidctest.NewIssuer(t, key)
	clock := oidctest.NewClock()
	cfg := mustLoad(t, header+`
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: ""}
    groups: {expression: 'claims.roles'}
    extra:
    - key: example.com/team
      valueExpression: 'claims.team'
  userValidationRules:
  - expression: "user.groups.all(g, g != 'banned')"
`, is)
	a := startAuthenticator(t, cfg, clock.Now)
	ok := map[string]any{"roles": []string{"dev"}, "team": "a"}
	with := func(overrides map[string]any) map[string]any {
		c := claimsAt(clock.Now(), is.URL(), "kubernetes", ok)
		for k, v := range overrides {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	tests := []struct {
		name   string
		token  func(t *testing.T) string
		reason string
		msg    []string
	}{
		{name: "foreign issuer", token: func(t *testing.T) string {
			return oidctest.Sign(t, key, with(map[string]any{"iss": "https://other.example.com"}))
		},
			reason: auth.ReasonInvalidIssuer, msg: []string{`token issuer "https://other.example.com" is not a configured issuer ["` + is.URL() + `"]`}},
		{name: "Google's issuer without scheme", token: func(t *testing.T) string {
			return oidctest.Sign(t, key, with(map[string]any{"iss": "accounts.google.com"}))
		},
			reason: auth.ReasonInvalidIssuer, msg: []string{`"https://accounts.google.com"`}},
		{name: "no issuer", token: func(t *testing.T) string { return oidctest.Sign(t, key, with(map[string]any{"iss": nil})) },
			reason: auth.ReasonInvalidIssuer, msg: []string{"no issuer", is.URL()}},
		{name: "opaque token", token: func(*testing.T) string { return "sha256~abcdefghijklmnop" }, reason: auth.ReasonMalformedToken},
		{name: "alg none", token: func(t *testing.T) string {
			return oidctest.Handmade(t, map[string]any{"alg": "none"}, with(nil), "")
		}, reason: auth.ReasonUnsupportedAlg, msg: []string{`"none"`}},
		{name: "HS256", token: func(t *testing.T) string { return oidctest.SignHMAC(t, "rsa-0", with(nil)) }, reason: auth.ReasonUnsupportedAlg},
		{name: "expression failing names the field", token: func(t *testing.T) string { return oidctest.Sign(t, key, with(map[string]any{"roles": nil})) },
			reason: auth.ReasonInvalidClaim, msg: []string{"jwt[0].claimMappings.groups.expression could not be evaluated", "no such key: roles"}},
		{name: "extra of the wrong type names the mapping", token: func(t *testing.T) string { return oidctest.Sign(t, key, with(map[string]any{"team": 3})) },
			reason: auth.ReasonInvalidClaim, msg: []string{"jwt[0].claimMappings.extra[0].valueExpression", "not double"}},
		{name: "groups a list of numbers", token: func(t *testing.T) string { return oidctest.Sign(t, key, with(map[string]any{"roles": []int{1}})) },
			reason: auth.ReasonInvalidClaim, msg: []string{"jwt[0].claimMappings.groups.expression", "a list with other elements"}},
		{name: "user validation rule without message", token: func(t *testing.T) string {
			return oidctest.Sign(t, key, with(map[string]any{"roles": []string{"banned"}}))
		},
			reason: auth.ReasonInvalidIdentity, msg: []string{`user "alice" fails jwt[0].userValidationRules[0]: expression "user.groups.all(g, g != 'banned')" is false`}},
		{name: "empty username claim", token: func(t *testing.T) string { return oidctest.Sign(t, key, with(map[string]any{"sub": ""})) },
			reason: auth.ReasonInvalidClaim, msg: []string{`claim "sub" (jwt[0].claimMappings.username.claim) is empty`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token(t)
			id, ok, err := a.AuthenticateToken(context.Background(), token)
			wantRejection(t, token, id, ok, err, tt.reason, tt.msg...)
		})
	}
}

// Ready waits for every issuer; a reachable issuer's tokens work meanwhile.
func TestReadinessAcrossIssuers(t *testing.T) {
	keyA, keyB := oidctest.RSAKey(t, 0, "a"), oidctest.RSAKey(t, 1, "b")
	isA, isB := oidctest.NewIssuer(t, keyA), oidctest.NewIssuer(t, keyB)
	isB.SetDown(true)
	clock := oidctest.NewClock()
	cfg := mustLoad(t, header+`
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: "a:"}}
- issuer: {url: ISSUER_B, certificateAuthority: CA_B, audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: "b:"}}
`, isA, isB)
	a, err := NewAuthenticator(cfg, Options{Registerer: prometheus.NewRegistry(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(); err == nil || !strings.Contains(err.Error(), isA.URL()) || !strings.Contains(err.Error(), isB.URL()) {
		t.Fatalf("Ready before Run = %v, want both issuers named", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}()

	tokenA := oidctest.Sign(t, keyA, claimsAt(clock.Now(), isA.URL(), "k", nil))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok, _ := a.AuthenticateToken(context.Background(), tokenA); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("issuer A never became usable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Ready(); err == nil || strings.Contains(err.Error(), isA.URL()) || !strings.Contains(err.Error(), isB.URL()) {
		t.Errorf("Ready with issuer B down = %v, want only issuer B named", err)
	}
	tokenB := oidctest.Sign(t, keyB, claimsAt(clock.Now(), isB.URL(), "k", nil))
	id, ok, err := a.AuthenticateToken(context.Background(), tokenB)
	wantRejection(t, tokenB, id, ok, err, auth.ReasonIssuerUnavailable)

	isB.SetDown(false)
	for a.Ready() != nil {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("not ready after issuer B came back: %v", a.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if id, ok, err := a.AuthenticateToken(context.Background(), tokenB); !ok || id.Name != "b:alice" {
		t.Errorf("issuer B token = %v, %v, %v", id, ok, err)
	}
}

func TestNewAuthenticatorNeedsALoadedConfig(t *testing.T) {
	for _, cfg := range []*Config{nil, {}} {
		if _, err := NewAuthenticator(cfg, Options{}); err == nil {
			t.Errorf("NewAuthenticator(%v) succeeded", cfg)
		}
	}
}
