package authnconfig

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	upstreamoidc "k8s.io/apiserver/plugin/pkg/authenticator/token/oidc"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/internal/oidctest"
)

// The conformance test runs the same AuthenticationConfiguration files
// through frontgate and through kube-apiserver's own JWT authenticator
// (k8s.io/apiserver/plugin/pkg/authenticator/token/oidc, used as a library)
// against one local issuer, and requires the same identity (username, UID,
// groups, extra) or a rejection from both. The few deliberate differences are
// cases of their own, with the reason.

// staticCA is the CAContentProvider kube-apiserver builds from
// issuer.certificateAuthority.
type staticCA []byte

func (c staticCA) CurrentCABundleContent() []byte { return c }

// newUpstream builds kube-apiserver's authenticator for cfg as kube-apiserver
// does (one JWT authenticator per entry, all algorithms, a union that stops
// at the first error) and waits until it is healthy.
func newUpstream(t *testing.T, cfg *Config) authenticator.Token {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var list []authenticator.Token
	for _, jwt := range cfg.Spec.JWT {
		a, err := upstreamoidc.New(ctx, upstreamoidc.Options{
			JWTAuthenticator:     jwt,
			CAContentProvider:    staticCA(jwt.Issuer.CertificateAuthority),
			SupportedSigningAlgs: upstreamoidc.AllValidSigningAlgorithms(),
		})
		if err != nil {
			t.Fatalf("k8s.io/apiserver oidc.New: %v", err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for a.HealthCheck() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("k8s.io/apiserver authenticator not healthy: %v", a.HealthCheck())
			}
			time.Sleep(5 * time.Millisecond)
		}
		list = append(list, a)
	}
	return tokenunion.NewFailOnError(list...)
}

// outcomeSource is kube-apiserver's authenticator.
type outcomeSource struct{ authenticator.Token }

// outcome authenticates token.
func (s *outcomeSource) outcome(token string) outcome {
	resp, ok, err := s.AuthenticateToken(context.Background(), token)
	if !ok {
		return outcome{err: err}
	}
	u := resp.User
	return outcome{ok: true, name: u.GetName(), uid: u.GetUID(), groups: u.GetGroups(), extra: u.GetExtra()}
}

// outcome is what one authenticator made of a token.
type outcome struct {
	ok     bool
	name   string
	uid    string
	groups []string
	extra  map[string][]string
	err    error
}

func (o outcome) String() string {
	if !o.ok {
		return "rejected (" + errString(o.err) + ")"
	}
	return "accepted as name=" + o.name + " uid=" + o.uid + " groups=[" + strings.Join(o.groups, ",") + "] extra=" + formatExtra(o.extra)
}

func errString(err error) string {
	if err == nil {
		return "not mine"
	}
	return err.Error()
}

func formatExtra(extra map[string][]string) string {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + strings.Join(extra[k], ",") + ";")
	}
	return "{" + b.String() + "}"
}

func (o outcome) same(p outcome) bool {
	if o.ok != p.ok {
		return false
	}
	if !o.ok {
		return true
	}
	norm := func(m map[string][]string) map[string][]string {
		if len(m) == 0 {
			return nil
		}
		return m
	}
	return o.name == p.name && o.uid == p.uid && slices.Equal(o.groups, p.groups) && reflect.DeepEqual(norm(o.extra), norm(p.extra))
}

// conformanceConfigs are jwt entries, by name; ISSUER_A/CA_A and
// ISSUER_B/CA_B stand for the two local issuers.
var conformanceConfigs = map[string]string{
	"claims": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: "oidc:"}
    groups: {claim: groups, prefix: "oidc:"}
    uid: {claim: oid}
`,
	"email": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: email, prefix: ""}
`,
	"cel": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimValidationRules:
  - expression: 'claims.?email_verified.orValue(true) == true'
    message: the email address must be verified
  claimMappings:
    username: {expression: '"idp:" + claims.email'}
    groups: {expression: 'claims.?realm_access.roles.orValue([])'}
    uid: {expression: 'claims.sub + "@idp"'}
    extra:
    - key: example.com/tenant
      valueExpression: 'claims.?tid.orValue("")'
    - key: example.com/client-roles
      valueExpression: 'claims.?resource_access.my__dash__app.roles.orValue([])'
`,
	"cel-optional": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {expression: 'claims.?preferred_username.orValue("")'}
`,
	"groups-split": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: ""}
    groups: {expression: 'claims.groups.split(",").map(g, g.trim())'}
`,
	"groups-split-unmapped": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: ""}
    groups: {expression: 'claims.groups.split(",")'}
`,
	"groups-string-or-list": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: ""}
    groups: {expression: 'type(claims.roles) == string ? [claims.roles] : claims.roles'}
`,
	"rules": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimValidationRules:
  - claim: hd
    requiredValue: example.com
  - expression: 'claims.exp - claims.iat <= 3600'
    message: tokens may live one hour at most
  claimMappings:
    username: {claim: sub, prefix: ""}
  userValidationRules:
  - expression: "!user.username.startsWith('admin')"
    message: admin accounts may not use kubectl
  - expression: "user.extra.?__dot__missing.orValue([]).size() == 0"
`,
	"audiences": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubectl, ci], audienceMatchPolicy: MatchAny}
  claimMappings:
    username: {claim: sub, prefix: ""}
`,
	"cost": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: ""}
    groups: {expression: 'dyn(claims.groups).map(a, dyn(claims.groups).map(b, dyn(claims.groups).map(c, a + b + c))).size() > 0 ? ["many"] : []'}
`,
	"two-issuers": `
jwt:
- issuer: {url: ISSUER_A, certificateAuthority: CA_A, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: "a:"}
- issuer: {url: ISSUER_B, certificateAuthority: CA_B, audiences: [kubernetes]}
  claimMappings:
    username: {claim: sub, prefix: "b:"}
    groups: {claim: groups, prefix: ""}
`,
}

func TestConformance(t *testing.T) {
	rsaA, ecA, rsaB := oidctest.RSAKey(t, 0, "a-rsa"), oidctest.ECKey(t, 0, "a-ec"), oidctest.RSAKey(t, 1, "b-rsa")
	isA, isB := oidctest.NewIssuer(t, rsaA, ecA), oidctest.NewIssuer(t, rsaB)
	many := make([]string, 150)
	for i := range many {
		many[i] = "g"
	}

	tests := []struct {
		name   string
		config string
		claims map[string]any // overrides of claimsAt(now, ISSUER_A, "kubernetes")
		key    *oidctest.Key  // nil: rsaA
		wantOK bool           // frontgate's outcome; kube-apiserver's is the same unless diverge
		// diverge explains why kube-apiserver decides the other way.
		diverge string
	}{
		// Claim mappings with prefix.
		{name: "claims: username, groups array and uid with prefixes", config: "claims", claims: map[string]any{"groups": []string{"dev", "ops"}, "oid": "u-1"}, wantOK: true},
		{name: "claims: groups as a single string", config: "claims", claims: map[string]any{"groups": "admins", "oid": "u-1"}, wantOK: true},
		{name: "claims: no groups claim", config: "claims", claims: map[string]any{"oid": "u-1"}, wantOK: true},
		{name: "claims: groups null", config: "claims", claims: map[string]any{"groups": nil, "oid": "u-1"}, wantOK: true},
		{name: "claims: empty group kept with its prefix", config: "claims", claims: map[string]any{"groups": []string{"", "a"}, "oid": "u-1"}, wantOK: true},
		{name: "claims: groups a number", config: "claims", claims: map[string]any{"groups": 7, "oid": "u-1"}},
		{name: "claims: groups with a number", config: "claims", claims: map[string]any{"groups": []any{"a", 7}, "oid": "u-1"}},
		{name: "claims: uid claim missing", config: "claims"},
		{name: "claims: uid null is an empty uid", config: "claims", claims: map[string]any{"oid": nil}, wantOK: true},
		{name: "claims: sub not a string", config: "claims", claims: map[string]any{"sub": 42, "oid": "u-1"}},
		{name: "claims: jti becomes the credential ID", config: "claims", claims: map[string]any{"jti": "abc-123", "oid": "u-1"}, wantOK: true},
		{name: "claims: ES256 is accepted as all algorithms are", config: "claims", claims: map[string]any{"oid": "u-1"}, key: &ecA, wantOK: true},
		{name: "claims: wrong audience", config: "claims", claims: map[string]any{"aud": "other", "oid": "u-1"}},
		{name: "claims: expired", config: "claims", claims: map[string]any{"exp": time.Now().Add(-time.Minute).Unix(), "oid": "u-1"}},
		{name: "claims: foreign issuer", config: "claims", claims: map[string]any{"iss": "https://elsewhere.example.com", "oid": "u-1"}},
		{name: "claims: distributed groups claim", config: "claims", claims: map[string]any{
			"oid": "u-1", "_claim_names": map[string]string{"groups": "src1"},
			"_claim_sources": map[string]any{"src1": map[string]string{"endpoint": "ISSUER_A/groups-overage"}},
		}},
		{name: "claims: empty sub", config: "claims", claims: map[string]any{"sub": "", "oid": "u-1"},
			diverge: `kube-apiserver maps an empty username claim to the prefix alone ("oidc:"); frontgate refuses an empty claim`},
		{name: "claims: nbf 3 minutes ahead", config: "claims", claims: map[string]any{"nbf": time.Now().Add(3 * time.Minute).Unix(), "oid": "u-1"}, wantOK: true,
			diverge: "go-oidc v2 in kube-apiserver allows 1 minute of clock skew for nbf, go-oidc v3 in frontgate 5 minutes"},
		{name: "claims: iat 10 minutes ahead", config: "claims", claims: map[string]any{"iat": time.Now().Add(10 * time.Minute).Unix(), "oid": "u-1"},
			diverge: "kube-apiserver does not check iat; frontgate refuses tokens issued more than 5 minutes in the future"},

		// email and email_verified.
		{name: "email: email_verified true", config: "email", claims: map[string]any{"email": "alice@example.com", "email_verified": true}, wantOK: true},
		{name: "email: email_verified absent", config: "email", claims: map[string]any{"email": "alice@example.com"}, wantOK: true},
		{name: "email: email_verified false", config: "email", claims: map[string]any{"email": "alice@example.com", "email_verified": false}},
		{name: "email: email_verified a string", config: "email", claims: map[string]any{"email": "alice@example.com", "email_verified": "true"}},
		{name: "email: no email claim", config: "email"},

		// CEL mappings.
		{name: "cel: username, nested roles, uid and extra", config: "cel", claims: map[string]any{
			"email": "alice@example.com", "email_verified": true, "tid": "t-1",
			"realm_access":    map[string]any{"roles": []string{"viewer", "editor"}},
			"resource_access": map[string]any{"my-app": map[string]any{"roles": []string{"deployer"}}},
		}, wantOK: true},
		{name: "cel: optional claims absent", config: "cel", claims: map[string]any{"email": "alice@example.com"}, wantOK: true},
		{name: "cel: email_verified false fails the validation rule", config: "cel", claims: map[string]any{"email": "alice@example.com", "email_verified": false}},
		{name: "cel: no email, the username expression fails", config: "cel"},
		{name: "cel: roles not strings", config: "cel", claims: map[string]any{"email": "alice@example.com", "realm_access": map[string]any{"roles": []int{1}}}},
		{name: "cel: empty email still has the prefix", config: "cel", claims: map[string]any{"email": ""}, wantOK: true},
		{name: "cel: empty username from an expression", config: "cel-optional"},
		{name: "cel: username from an optional claim", config: "cel-optional", claims: map[string]any{"preferred_username": "al"}, wantOK: true},

		// Groups from a comma-separated string, a string or a list.
		{name: "groups-split: comma-separated string", config: "groups-split", claims: map[string]any{"groups": "dev, ops,,admins"}, wantOK: true},
		{name: "groups-split: split without map", config: "groups-split-unmapped", claims: map[string]any{"groups": "dev,ops"}},
		{name: "groups-string-or-list: string", config: "groups-string-or-list", claims: map[string]any{"roles": "admin"}, wantOK: true},
		{name: "groups-string-or-list: list", config: "groups-string-or-list", claims: map[string]any{"roles": []string{"a", "b"}}, wantOK: true},

		// Validation rules.
		{name: "rules: all pass", config: "rules", claims: map[string]any{"hd": "example.com"}, wantOK: true},
		{name: "rules: required claim with another value", config: "rules", claims: map[string]any{"hd": "evil.example"}},
		{name: "rules: required claim missing", config: "rules"},
		{name: "rules: required claim not a string", config: "rules", claims: map[string]any{"hd": true}},
		{name: "rules: expression false", config: "rules", claims: map[string]any{"hd": "example.com", "exp": time.Now().Add(2 * time.Hour).Unix()}},
		{name: "rules: user validation rule false", config: "rules", claims: map[string]any{"hd": "example.com", "sub": "admin-bob"}},

		// Audiences.
		{name: "audiences: first", config: "audiences", claims: map[string]any{"aud": "kubectl"}, wantOK: true},
		{name: "audiences: second", config: "audiences", claims: map[string]any{"aud": "ci"}, wantOK: true},
		{name: "audiences: one of several in the token", config: "audiences", claims: map[string]any{"aud": []string{"other", "ci"}}, wantOK: true},
		{name: "audiences: none", config: "audiences", claims: map[string]any{"aud": []string{"other"}}},
		{name: "audiences: no aud claim", config: "audiences", claims: map[string]any{"aud": nil}},

		// Cost limit.
		{name: "cost: cheap", config: "cost", claims: map[string]any{"groups": []string{"a", "b"}}, wantOK: true},
		{name: "cost: over the limit", config: "cost", claims: map[string]any{"groups": many}},

		// Several issuers.
		{name: "two-issuers: first", config: "two-issuers", wantOK: true},
		{name: "two-issuers: second", config: "two-issuers", claims: map[string]any{"iss": "ISSUER_B", "groups": []string{"b"}}, key: &rsaB, wantOK: true},
		{name: "two-issuers: second issuer's token signed by the first", config: "two-issuers", claims: map[string]any{"iss": "ISSUER_B"}},
	}

	type pair struct {
		frontgate *Authenticator
		upstream  authenticator.Token
	}
	// Both authenticators run until the end of the whole test.
	built := map[string]pair{}
	for name, text := range conformanceConfigs {
		cfg := mustLoad(t, header+text, isA, isB)
		built[name] = pair{frontgate: startAuthenticatorFor(t, cfg), upstream: newUpstream(t, cfg)}
	}
	fill := strings.NewReplacer("ISSUER_A", isA.URL(), "ISSUER_B", isB.URL())

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := built[tt.config]
			claims := claimsAt(time.Now(), isA.URL(), "kubernetes", nil)
			for k, v := range tt.claims {
				if s, ok := v.(string); ok {
					v = fill.Replace(s)
				}
				if m, ok := v.(map[string]any); ok && k == "_claim_sources" {
					v = map[string]any{"src1": map[string]string{"endpoint": fill.Replace(m["src1"].(map[string]string)["endpoint"])}}
				}
				claims[k] = v
			}
			for k, v := range tt.claims {
				if v == nil && k != "groups" && k != "oid" {
					delete(claims, k)
				}
			}
			key := rsaA
			if tt.key != nil {
				key = *tt.key
			}
			token := oidctest.Sign(t, key, claims)

			fg := frontgateOutcome(p.frontgate, token)
			if !fg.ok {
				wantRejection(t, token, nil, false, fg.err, auth.ReasonOf(fg.err))
			}
			up := (&outcomeSource{p.upstream}).outcome(token)

			t.Logf("frontgate:      %s\nkube-apiserver: %s", fg, up)
			if fg.ok != tt.wantOK {
				t.Errorf("frontgate %s, want ok=%v", fg, tt.wantOK)
			}
			if tt.diverge == "" {
				if !fg.same(up) {
					t.Errorf("frontgate and kube-apiserver differ:\nfrontgate:      %s\nkube-apiserver: %s", fg, up)
				}
				return
			}
			if up.ok == fg.ok {
				t.Errorf("documented difference (%s) no longer holds: both %v\nfrontgate:      %s\nkube-apiserver: %s", tt.diverge, fg.ok, fg, up)
			}
		})
	}
}

// startAuthenticatorFor is startAuthenticator with the real clock, which
// kube-apiserver's authenticator uses too.
func startAuthenticatorFor(t *testing.T, cfg *Config) *Authenticator {
	return startAuthenticator(t, cfg, time.Now)
}
