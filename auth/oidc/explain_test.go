package oidc

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/frontgate/frontgate/auth"
)

// TestExplainAgreesWithAuthenticateToken checks that, for validly signed
// tokens, Explain reports exactly the verdict of AuthenticateToken (reason,
// message, identity) and a failed check naming the rule.
func TestExplainAgreesWithAuthenticateToken(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.UsernameClaim = "email"
		o.GroupsClaim = "groups"
		o.UIDClaim = "sub"
		o.RequiredClaims = map[string]string{"hd": "example.com"}
		o.ExtraClaims = map[string]string{"example.com/team": "team"}
	})
	now := e.clock.Now()
	base := map[string]any{"hd": "example.com", "groups": []string{"dev"}, "team": "platform", "email_verified": true}
	with := func(changes map[string]any) map[string]any {
		c := map[string]any{}
		for k, v := range base {
			c[k] = v
		}
		for k, v := range changes {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name       string
		token      string
		wantReason string // "" for success
		failedRule string
	}{
		{"good", e.token(t, with(nil)), "", ""},
		{"expired", e.token(t, with(map[string]any{"exp": now.Add(-time.Minute).Unix()})), auth.ReasonTokenExpired, "expiry (exp)"},
		{"no exp", e.token(t, with(map[string]any{"exp": nil})), auth.ReasonMissingClaim, "expiry (exp)"},
		{"wrong audience and expired: audience first", e.token(t, with(map[string]any{"aud": "other", "exp": now.Add(-time.Minute).Unix()})), auth.ReasonInvalidAudience, "audience (aud)"},
		{"not yet valid", e.token(t, with(map[string]any{"nbf": now.Add(time.Hour).Unix()})), auth.ReasonTokenNotYetValid, "not before (nbf)"},
		{"issued in the future", e.token(t, with(map[string]any{"iat": now.Add(time.Hour).Unix()})), auth.ReasonTokenNotYetValid, "issued at (iat)"},
		{"other issuer", e.token(t, with(map[string]any{"iss": "https://other.example.com"})), auth.ReasonInvalidIssuer, "issuer (iss)"},
		{"HMAC", signHMAC(t, "k", e.claims(with(nil))), auth.ReasonUnsupportedAlg, "header"},
		{"required claim", e.token(t, with(map[string]any{"hd": "evil.com"})), auth.ReasonInvalidClaim, "--oidc-required-claim"},
		{"email not verified", e.token(t, with(map[string]any{"email_verified": false})), auth.ReasonInvalidClaim, "email_verified"},
		{"no username", e.token(t, with(map[string]any{"email": nil})), auth.ReasonMissingClaim, "--oidc-username-claim"},
		{"groups not strings", e.token(t, with(map[string]any{"groups": []int{1}})), auth.ReasonInvalidClaim, "--oidc-groups-claim"},
		{"extra not strings", e.token(t, with(map[string]any{"team": map[string]any{}})), auth.ReasonInvalidClaim, "--oidc-extra-claim"},
		{"not a JWT", "abc", auth.ReasonMalformedToken, "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := e.a.AuthenticateToken(context.Background(), tt.token)
			x := e.a.Explain(context.Background(), tt.token)
			if auth.ReasonOf(err) != auth.ReasonOf(x.Err) || (err == nil) != (x.Err == nil) || (err != nil && err.Error() != x.Err.Error()) {
				t.Fatalf("AuthenticateToken: %v (%s); Explain: %v (%s)", err, auth.ReasonOf(err), x.Err, auth.ReasonOf(x.Err))
			}
			if tt.wantReason == "" {
				if !ok || !reflect.DeepEqual(id, x.Identity) {
					t.Fatalf("identities differ: %+v vs %+v", id, x.Identity)
				}
				if i := slices.IndexFunc(x.Checks, func(c Check) bool { return c.Outcome != CheckPassed }); i >= 0 {
					t.Errorf("check %+v did not pass", x.Checks[i])
				}
				if x.MappedBy != legacyMappedBy || x.Issuer != e.is.URL() || x.Claims["sub"] == nil {
					t.Errorf("explanation = %+v", x)
				}
				return
			}
			if auth.ReasonOf(err) != tt.wantReason {
				t.Fatalf("reason %q, want %q", auth.ReasonOf(err), tt.wantReason)
			}
			if !slices.ContainsFunc(x.Checks, func(c Check) bool { return c.Rule == tt.failedRule && c.Outcome == CheckFailed && c.Message != "" }) {
				t.Errorf("no failed %q check in %+v", tt.failedRule, x.Checks)
			}
		})
	}
}

// TestExplainEvaluatesEveryRule checks that a failing rule does not hide
// the others, and that an expired token's identity is still reported.
func TestExplainEvaluatesEveryRule(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.UsernameClaim = "email"
		o.RequiredClaims = map[string]string{"hd": "example.com", "tier": "gold"}
	})
	x := e.a.Explain(context.Background(), e.token(t, map[string]any{"exp": e.clock.Now().Add(-time.Minute).Unix(), "hd": "evil.com", "tier": "gold"}))
	var failed []string
	for _, c := range x.Checks {
		if c.Outcome == CheckFailed {
			failed = append(failed, c.Rule+" "+c.Requirement)
		}
	}
	want := []string{"expiry (exp) in the future", "--oidc-required-claim hd=example.com"}
	if !slices.Equal(failed, want) {
		t.Errorf("failed checks %q, want %q", failed, want)
	}
	if auth.ReasonOf(x.Err) != auth.ReasonTokenExpired {
		t.Errorf("Err = %v, want the expiry first", x.Err)
	}
	x = e.a.Explain(context.Background(), e.token(t, map[string]any{"exp": e.clock.Now().Add(-time.Minute).Unix(), "hd": "example.com", "tier": "gold"}))
	if auth.ReasonOf(x.Err) != auth.ReasonTokenExpired || x.Identity == nil || x.Identity.Name != "oidc:alice@example.com" {
		t.Errorf("expired token: Err %v, identity %+v", x.Err, x.Identity)
	}
}
