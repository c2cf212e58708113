package authnconfig

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/internal/oidctest"
	"github.com/frontgate/frontgate/auth/oidc"
)

// TestExplain checks that Explain names the entry the audience selects,
// reports every validation rule of that entry with its own result, and
// agrees with AuthenticateToken on the verdict.
func TestExplain(t *testing.T) {
	key := oidctest.RSAKey(t, 0, "rsa-0")
	is := oidctest.NewIssuer(t, key)
	clock := oidctest.NewClock()
	cfg := mustLoad(t, header+`
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubectl]}
  claimMappings:
    username: {claim: email, prefix: ""}
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [ci]}
  claimValidationRules:
  - claim: repository
    requiredValue: example/app
  - expression: claims.ref == 'refs/heads/main'
    message: only the main branch deploys
  claimMappings:
    username: {expression: '"ci:" + claims.sub'}
  userValidationRules:
  - expression: "!user.username.startsWith('ci:root')"
    message: no root
  - expression: user.username.size() < 20
    message: short names only
`, is)
	a := startAuthenticator(t, cfg, clock.Now)
	type result struct{ rule, outcome string }
	tests := []struct {
		name     string
		aud      string
		claims   map[string]any
		mappedBy string
		reason   string // "" for success
		want     []result
	}{
		{
			name: "every rule passes", aud: "ci", mappedBy: "jwt[1]",
			claims: map[string]any{"repository": "example/app", "ref": "refs/heads/main"},
			want: []result{
				{"jwt[1].claimValidationRules[0]", oidc.CheckPassed}, {"jwt[1].claimValidationRules[1]", oidc.CheckPassed},
				{"jwt[1].claimMappings.username", oidc.CheckPassed},
				{"jwt[1].userValidationRules[0]", oidc.CheckPassed}, {"jwt[1].userValidationRules[1]", oidc.CheckPassed},
			},
		},
		{
			name: "claim rules fail: user rules are skipped", aud: "ci", mappedBy: "jwt[1]", reason: auth.ReasonInvalidClaim,
			claims: map[string]any{"repository": "evil/app", "ref": "refs/heads/dev", "sub": nil},
			want: []result{
				{"jwt[1].claimValidationRules[0]", oidc.CheckFailed}, {"jwt[1].claimValidationRules[1]", oidc.CheckFailed},
				{"jwt[1].claimMappings.username", oidc.CheckFailed},
				{"jwt[1].userValidationRules[0]", oidc.CheckSkipped}, {"jwt[1].userValidationRules[1]", oidc.CheckSkipped},
			},
		},
		{
			name: "user rules fail, each", aud: "ci", mappedBy: "jwt[1]", reason: auth.ReasonInvalidIdentity,
			claims: map[string]any{"repository": "example/app", "ref": "refs/heads/main", "sub": "root-of-all-evil-and-more"},
			want: []result{
				{"jwt[1].claimValidationRules[0]", oidc.CheckPassed}, {"jwt[1].claimValidationRules[1]", oidc.CheckPassed},
				{"jwt[1].userValidationRules[0]", oidc.CheckFailed}, {"jwt[1].userValidationRules[1]", oidc.CheckFailed},
			},
		},
		{name: "other entry", aud: "kubectl", mappedBy: "jwt[0]", claims: map[string]any{"email": "alice@example.com"}, want: []result{{"jwt[0].claimMappings.username", oidc.CheckPassed}}},
		{name: "no entry", aud: "other", reason: auth.ReasonInvalidAudience, want: []result{{"audience (aud)", oidc.CheckFailed}, {"jwt entry", oidc.CheckFailed}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := oidctest.Sign(t, key, claimsAt(clock.Now(), is.URL(), tt.aud, tt.claims))
			id, _, err := a.AuthenticateToken(context.Background(), token)
			x := a.Explain(context.Background(), token)
			if auth.ReasonOf(err) != auth.ReasonOf(x.Err) || (err == nil) != (x.Err == nil) || (err != nil && err.Error() != x.Err.Error()) {
				t.Fatalf("AuthenticateToken: %v; Explain: %v", err, x.Err)
			}
			if tt.reason == "" && !reflect.DeepEqual(id, x.Identity) {
				t.Errorf("identities differ: %+v vs %+v", id, x.Identity)
			}
			if tt.reason != "" && auth.ReasonOf(err) != tt.reason {
				t.Errorf("reason %q, want %q (%v)", auth.ReasonOf(err), tt.reason, err)
			}
			if x.MappedBy != tt.mappedBy {
				t.Errorf("MappedBy = %q, want %q", x.MappedBy, tt.mappedBy)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(x.Checks, func(c oidc.Check) bool { return c.Rule == w.rule && c.Outcome == w.outcome }) {
					t.Errorf("no %s check %q in %+v", w.outcome, w.rule, x.Checks)
				}
			}
		})
	}

	t.Run("issuer not configured", func(t *testing.T) {
		x := a.Explain(context.Background(), oidctest.Sign(t, key, claimsAt(clock.Now(), "https://other.example.com", "ci", nil)))
		if auth.ReasonOf(x.Err) != auth.ReasonInvalidIssuer || len(x.Checks) != 1 || x.Checks[0].Outcome != oidc.CheckFailed {
			t.Errorf("explanation = %+v", x)
		}
	})
}
