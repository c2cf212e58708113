package authnconfig

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/frontgate/frontgate/auth/internal/oidctest"
)

// recipeBlock finds the recipes of docs/identity-providers.md: a YAML block
// preceded by <!-- recipe: name -->.
var recipeBlock = regexp.MustCompile("(?s)<!-- recipe: ([a-z-]+) -->\n```yaml\n(.*?)```")

// readRecipes returns the doc's recipes by name.
func readRecipes(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/identity-providers.md")
	if err != nil {
		t.Fatal(err)
	}
	recipes := map[string]string{}
	for _, m := range recipeBlock.FindAllStringSubmatch(string(doc), -1) {
		recipes[m[1]] = m[2]
	}
	return recipes
}

// retarget points every jwt entry of a recipe at the local issuer.
func retarget(t *testing.T, recipe string, is *oidctest.Issuer) string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(recipe), &doc); err != nil {
		t.Fatal(err)
	}
	for _, j := range doc["jwt"].([]any) {
		issuer := j.(map[string]any)["issuer"].(map[string]any)
		issuer["url"], issuer["certificateAuthority"] = is.URL(), is.CAPEM()
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "recipe.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRecipes loads every recipe of the documentation as it is written, then
// runs sample tokens through it, against a local issuer, in frontgate and in
// kube-apiserver's authenticator, and checks both give the documented
// identity.
func TestRecipes(t *testing.T) {
	recipes := readRecipes(t)
	key := oidctest.RSAKey(t, 0, "rsa-0")
	is := oidctest.NewIssuer(t, key)
	const (
		tenant = "00000000-0000-0000-0000-000000000001"
		entra  = "11111111-1111-1111-1111-111111111111"
		okta   = "0oa1b2c3d4e5f6g7h8i9"
		google = "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com"
	)
	type sample struct {
		name   string
		aud    any
		claims map[string]any
		want   *outcome // nil: refused
	}
	tests := map[string][]sample{
		"keycloak": {
			{name: "realm and client roles", aud: "kubernetes", claims: map[string]any{
				"preferred_username": "alice", "email_verified": true,
				"realm_access":    map[string]any{"roles": []string{"admin", "offline_access"}},
				"resource_access": map[string]any{"kubernetes": map[string]any{"roles": []string{"deployer"}}},
			}, want: &outcome{ok: true, name: "keycloak:alice", uid: "alice", groups: []string{"keycloak:admin", "keycloak:offline_access"}, extra: map[string][]string{"keycloak.example.com/client-roles": {"deployer"}}}},
			{name: "no roles", aud: "kubernetes", claims: map[string]any{"preferred_username": "alice", "email_verified": true},
				want: &outcome{ok: true, name: "keycloak:alice", uid: "alice"}},
			{name: "unverified email", aud: "kubernetes", claims: map[string]any{"preferred_username": "alice", "email_verified": false}},
		},
		"entra": {
			{name: "groups and app roles", aud: entra, claims: map[string]any{
				"tid": tenant, "oid": "u-0001", "preferred_username": "alice@example.com",
				"groups": []string{"g-1", "g-2"}, "roles": []string{"Reader"},
			}, want: &outcome{ok: true, name: "entra:u-0001", uid: "u-0001", groups: []string{"entra:g-1", "entra:g-2"},
				extra: map[string][]string{"entra.example.com/upn": {"alice@example.com"}, "entra.example.com/app-roles": {"Reader"}}}},
			{name: "another tenant", aud: entra, claims: map[string]any{"tid": "other", "oid": "u-0001"}},
			{name: "group overage", aud: entra, claims: map[string]any{
				"tid": tenant, "oid": "u-0001",
				"_claim_names":   map[string]string{"groups": "src1"},
				"_claim_sources": map[string]any{"src1": map[string]string{"endpoint": is.URL() + "/v1.0/users/u-0001/getMemberObjects"}},
			}},
		},
		"okta": {
			{name: "email and groups", aud: okta, claims: map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"Everyone", "k8s-admins"}},
				want: &outcome{ok: true, name: "okta:alice@example.com", uid: "alice", groups: []string{"okta:Everyone", "okta:k8s-admins"}}},
			{name: "unverified email", aud: okta, claims: map[string]any{"email": "alice@example.com", "email_verified": false}},
		},
		"google": {
			{name: "workspace account", aud: google, claims: map[string]any{"email": "alice@example.com", "email_verified": true, "hd": "example.com"},
				want: &outcome{ok: true, name: "alice@example.com", uid: "alice"}},
			{name: "consumer account", aud: google, claims: map[string]any{"email": "alice@gmail.com", "email_verified": true}},
			{name: "another domain", aud: google, claims: map[string]any{"email": "alice@evil.example", "email_verified": true, "hd": "evil.example"}},
		},
		"comma-separated": {
			{name: "spaces and empty entries", aud: "kubernetes", claims: map[string]any{"groups": "dev, ops,,admins"},
				want: &outcome{ok: true, name: "idp:alice", groups: []string{"idp:dev", "idp:ops", "idp:admins"}}},
			{name: "no groups claim", aud: "kubernetes", want: &outcome{ok: true, name: "idp:alice"}},
		},
		"single-string": {
			{name: "a string", aud: "kubernetes", claims: map[string]any{"role": "admin"}, want: &outcome{ok: true, name: "idp:alice", groups: []string{"idp:admin"}}},
			{name: "a list", aud: "kubernetes", claims: map[string]any{"role": []string{"a", "b"}}, want: &outcome{ok: true, name: "idp:alice", groups: []string{"idp:a", "idp:b"}}},
		},
		"github-actions": {
			{name: "environment", aud: "frontgate.example.com", claims: map[string]any{
				"sub": "repo:example-org/app:environment:production", "repository": "example-org/app",
				"repository_owner": "example-org", "repository_owner_id": "123456", "ref": "refs/heads/main", "environment": "production",
				"actor": "octocat", "job_workflow_ref": "example-org/app/.github/workflows/deploy.yaml@refs/heads/main", "run_id": "42",
			}, want: &outcome{ok: true, name: "github:example-org/app:environment:production", uid: "repo:example-org/app:environment:production",
				groups: []string{"github:example-org", "github:example-org/app", "github:example-org/app:environment:production"},
				extra:  map[string][]string{"github.example.com/actor": {"octocat"}, "github.example.com/workflow": {"example-org/app/.github/workflows/deploy.yaml@refs/heads/main"}, "github.example.com/run-id": {"42"}}}},
			{name: "main without an environment", aud: "frontgate.example.com", claims: map[string]any{
				"sub": "repo:example-org/app:ref:refs/heads/main", "repository": "example-org/app",
				"repository_owner": "example-org", "repository_owner_id": "123456", "ref": "refs/heads/main",
			}, want: &outcome{ok: true, name: "github:example-org/app:refs/heads/main", uid: "repo:example-org/app:ref:refs/heads/main",
				groups: []string{"github:example-org", "github:example-org/app"}}},
			{name: "another branch", aud: "frontgate.example.com", claims: map[string]any{
				"sub": "repo:example-org/app:ref:refs/heads/feature", "repository": "example-org/app",
				"repository_owner": "example-org", "repository_owner_id": "123456", "ref": "refs/heads/feature",
			}},
			{name: "another owner", aud: "frontgate.example.com", claims: map[string]any{
				"sub": "repo:mallory/app:environment:production", "repository": "mallory/app",
				"repository_owner": "mallory", "repository_owner_id": "999", "ref": "refs/heads/main", "environment": "production",
			}},
			{name: "owner name taken over", aud: "frontgate.example.com", claims: map[string]any{
				"sub": "repo:example-org/app:ref:refs/heads/main", "repository": "example-org/app",
				"repository_owner": "example-org", "repository_owner_id": "999", "ref": "refs/heads/main",
			}},
			{name: "default audience", aud: "https://github.com/example-org", claims: map[string]any{
				"sub": "repo:example-org/app:ref:refs/heads/main", "repository": "example-org/app",
				"repository_owner": "example-org", "repository_owner_id": "123456", "ref": "refs/heads/main",
			}},
		},
		"several-client-ids": {
			{name: "kubectl", aud: "kubectl", claims: map[string]any{"email": "alice@example.com", "groups": []string{"dev"}},
				want: &outcome{ok: true, name: "alice@example.com", groups: []string{"people:dev"}}},
			{name: "ci", aud: "ci", claims: map[string]any{"azp": "ci"}, want: &outcome{ok: true, name: "ci:alice"}},
			{name: "both", aud: []string{"kubectl", "ci"}, claims: map[string]any{"email": "alice@example.com", "azp": "ci"}},
		},
	}
	for name := range recipes {
		if _, ok := tests[name]; !ok {
			t.Errorf("recipe %q has no samples in this test", name)
		}
	}
	for name, samples := range tests {
		recipe, ok := recipes[name]
		if !ok {
			t.Errorf("docs/identity-providers.md has no recipe %q", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			if _, err := Load(writeConfig(t, recipe)); err != nil {
				t.Fatalf("the recipe as documented does not load: %v", err)
			}
			cfg, err := Load(retarget(t, recipe, is))
			if err != nil {
				t.Fatal(err)
			}
			fg := startAuthenticator(t, cfg, time.Now)
			var up *outcomeSource
			if name != "several-client-ids" { // not valid for kube-apiserver
				up = &outcomeSource{newUpstream(t, cfg)}
			}
			for _, s := range samples {
				t.Run(s.name, func(t *testing.T) {
					claims := claimsAt(time.Now(), is.URL(), "", s.claims)
					claims["aud"] = s.aud
					token := oidctest.Sign(t, key, claims)
					got := frontgateOutcome(fg, token)
					want := outcome{}
					if s.want != nil {
						want = *s.want
					}
					if !got.same(want) {
						t.Errorf("frontgate %s, want %s", got, want)
					}
					if up != nil {
						if u := up.outcome(token); !u.same(got) {
							t.Errorf("kube-apiserver %s, frontgate %s", u, got)
						}
					}
				})
			}
		})
	}
}

// frontgateOutcome authenticates token with a.
func frontgateOutcome(a *Authenticator, token string) outcome {
	id, ok, err := a.AuthenticateToken(context.Background(), token)
	if !ok {
		return outcome{err: err}
	}
	return outcome{ok: true, name: id.Name, uid: id.UID, groups: id.Groups, extra: id.Extra}
}
