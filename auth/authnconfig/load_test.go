package authnconfig

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const header = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n"

// minimal is a valid jwt entry; tests append fields or replace it.
const minimal = `
jwt:
- issuer:
    url: https://issuer.example.com
    audiences: [kubernetes]
  claimMappings:
    username:
      claim: sub
      prefix: "oidc:"
`

func TestLoadAccepts(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		wantIssuers []string
	}{
		{name: "v1 minimal", text: header + minimal, wantIssuers: []string{"https://issuer.example.com"}},
		{name: "v1beta1", text: "apiVersion: apiserver.config.k8s.io/v1beta1\nkind: AuthenticationConfiguration\n" + minimal, wantIssuers: []string{"https://issuer.example.com"}},
		{name: "JSON", text: `{"apiVersion":"apiserver.config.k8s.io/v1","kind":"AuthenticationConfiguration","jwt":[{"issuer":{"url":"https://issuer.example.com","audiences":["k"]},"claimMappings":{"username":{"claim":"sub","prefix":""}}}]}`,
			wantIssuers: []string{"https://issuer.example.com"}},
		{name: "everything kube-apiserver documents", text: header + `
jwt:
- issuer:
    url: https://issuer.example.com
    discoveryURL: https://discovery.example.com/.well-known/openid-configuration
    audiences: [kubernetes, other]
    audienceMatchPolicy: MatchAny
  claimValidationRules:
  - claim: hd
    requiredValue: example.com
  - expression: 'claims.exp - claims.iat <= 86400'
    message: tokens may live one day at most
  - expression: 'claims.?email_verified.orValue(true) == true'
    message: the email must be verified
  claimMappings:
    username:
      expression: 'claims.email + ":external"'
    groups:
      expression: 'claims.?realm_access.roles.orValue([])'
    uid:
      claim: sub
    extra:
    - key: example.com/tenant
      valueExpression: 'claims.tid'
  userValidationRules:
  - expression: "!user.username.startsWith('system:')"
    message: username cannot use the reserved system prefix
  - expression: "user.groups.all(g, !g.startsWith('system:'))"
`, wantIssuers: []string{"https://issuer.example.com"}},
		{name: "anonymous disabled is what frontgate does anyway", text: header + minimal + "anonymous:\n  enabled: false\n", wantIssuers: []string{"https://issuer.example.com"}},
		{name: "http for a loopback issuer", text: header + `
jwt:
- issuer:
    url: http://127.0.0.1:5556/dex
    discoveryURL: http://localhost:5556/dex/discovery
    audiences: [kubernetes]
  claimMappings:
    username: {claim: sub, prefix: ""}
`, wantIssuers: []string{"http://127.0.0.1:5556/dex"}},
		{name: "one issuer, several client IDs with disjoint audiences", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [kubectl]}
  claimMappings: {username: {claim: email, prefix: ""}}
- issuer: {url: https://issuer.example.com, audiences: [ci, ci-legacy], audienceMatchPolicy: MatchAny}
  claimMappings: {username: {claim: sub, prefix: "ci:"}}
- issuer: {url: https://other.example.com, audiences: [kubectl]}
  claimMappings: {username: {claim: sub, prefix: "other:"}}
`, wantIssuers: []string{"https://issuer.example.com", "https://other.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.text)
			var got []string
			for _, jwt := range cfg.Spec.JWT {
				if !slices.Contains(got, jwt.Issuer.URL) {
					got = append(got, jwt.Issuer.URL)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.wantIssuers, " ") {
				t.Errorf("issuers = %q, want %q", got, tt.wantIssuers)
			}
			if len(cfg.Spec.JWT) != len(cfg.entries) {
				t.Errorf("%d entries for %d jwt", len(cfg.entries), len(cfg.Spec.JWT))
			}
		})
	}
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name string
		text string
		// want are substrings of the error, which must also start with the
		// file name.
		want []string
	}{
		{name: "empty file", text: "\n", want: []string{"the file is empty"}},
		{name: "not YAML", text: "{[", want: []string{"not a YAML or JSON object"}},
		{name: "another kind", text: "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\n", want: []string{`kind is "AuthorizationConfiguration"`, "AuthenticationConfiguration"}},
		{name: "v1alpha1", text: "apiVersion: apiserver.config.k8s.io/v1alpha1\nkind: AuthenticationConfiguration\n" + minimal,
			want: []string{`apiVersion "apiserver.config.k8s.io/v1alpha1" is not supported`, "apiserver.config.k8s.io/v1 or apiserver.config.k8s.io/v1beta1"}},
		{name: "unknown field names the field", text: header + minimal + "    groups:\n      claim: groups\n      prefix: ''\n      separator: ','\n",
			want: []string{"strict decoding error", `unknown field "jwt[0].claimMappings.groups.separator"`}},
		{name: "duplicate field", text: header + minimal + "    username:\n      claim: email\n", want: []string{"strict decoding error", "username"}},
		{name: "no jwt entries", text: header + "jwt: []\n", want: []string{"jwt: Required value: frontgate needs at least one JWT authenticator"}},
		{name: "anonymous enabled", text: header + minimal + "anonymous:\n  enabled: true\n  conditions:\n  - path: /livez\n",
			want: []string{"anonymous: Forbidden: frontgate never forwards anonymous requests"}},
		{name: "prefix required with claim", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k]}
  claimMappings:
    username: {claim: sub}
    groups: {claim: groups}
`, want: []string{
			"jwt[0].claimMappings.username.prefix: Required value: prefix is required when claim is set. It can be set to an empty string to disable prefixing",
			"jwt[0].claimMappings.groups.prefix: Required value: prefix is required when claim is set",
		}},
		{name: "username required", text: header + "jwt:\n- issuer: {url: https://issuer.example.com, audiences: [k]}\n",
			want: []string{"jwt[0].claimMappings.username: Required value: claim or expression is required"}},
		{name: "claim and expression", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k]}
  claimMappings:
    username: {claim: sub, prefix: "", expression: claims.sub}
`, want: []string{`jwt[0].claimMappings.username: Invalid value: "": claim and expression can't both be set`}},
		{name: "prefix with expression", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k]}
  claimMappings:
    username: {expression: claims.sub, prefix: "x:"}
`, want: []string{`jwt[0].claimMappings.username.prefix: Invalid value: "x:": may not be specified when expression is set`}},
		{name: "email without email_verified", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k]}
  claimMappings:
    username: {expression: claims.email}
`, want: []string{"jwt[0].claimMappings.username.expression: Invalid value: \"claims.email\": claims.email_verified must be used in claimMappings.username.expression or claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when claims.email is used in claimMappings.username.expression"}},
		{name: "extra key rules", text: header + minimal + `    extra:
    - key: example.com/Team
      valueExpression: claims.team
    - key: team
      valueExpression: claims.team
    - key: authentication.kubernetes.io/x
      valueExpression: claims.x
    - key: example.k8s.io/y
      valueExpression: claims.y
    - key: example.com/z
`, want: []string{
			`jwt[0].claimMappings.extra[0].key: Invalid value: "example.com/Team": must be lowercase`,
			`jwt[0].claimMappings.extra[1].key: Invalid value: "team": must be a domain-prefixed path`,
			`jwt[0].claimMappings.extra[2].key: Invalid value: "authentication.kubernetes.io/x": k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use`,
			`jwt[0].claimMappings.extra[3].key: Invalid value: "example.k8s.io/y": k8s.io, kubernetes.io and their subdomains are reserved`,
			`jwt[0].claimMappings.extra[4].valueExpression: Required value`,
		}},
		{name: "several audiences without MatchAny", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [a, b]}
  claimMappings: {username: {claim: sub, prefix: ""}}
`, want: []string{`jwt[0].issuer.audienceMatchPolicy: Invalid value: "": audienceMatchPolicy must be MatchAny for multiple audiences`}},
		{name: "no audience", text: header + `
jwt:
- issuer: {url: https://issuer.example.com}
  claimMappings: {username: {claim: sub, prefix: ""}}
`, want: []string{"jwt[0].issuer.audiences: Required value"}},
		{name: "http issuer off loopback", text: header + `
jwt:
- issuer: {url: http://issuer.example.com, audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: ""}}
`, want: []string{`jwt[0].issuer.url: Invalid value: "http://issuer.example.com": URL scheme must be https`}},
		{name: "https without host", text: header + `
jwt:
- issuer: {url: "https:///x", audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: ""}}
`, want: []string{`jwt[0].issuer.url: Invalid value: "https:///x": URL has no host`}},
		{name: "discovery URL equal to the issuer", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, discoveryURL: https://issuer.example.com/, audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: ""}}
`, want: []string{"jwt[0].issuer.discoveryURL", "discoveryURL must be different from URL"}},
		{name: "bad certificate authority", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k], certificateAuthority: "not PEM"}
  claimMappings: {username: {claim: sub, prefix: ""}}
`, want: []string{`jwt[0].issuer.certificateAuthority: Invalid value: "<omitted>"`}},
		{name: "egress selector", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k], egressSelectorType: controlplane}
  claimMappings: {username: {claim: sub, prefix: ""}}
`, want: []string{"jwt[0].issuer.egressSelectorType: Forbidden: frontgate has no egress selector"}},
		{name: "CEL that does not compile names the expression", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k]}
  claimMappings:
    username: {expression: "claims.sub +"}
`, want: []string{`jwt[0].claimMappings.username.expression: Invalid value: "claims.sub +": compilation failed`}},
		{name: "claim validation must return bool", text: header + minimal + `  claimValidationRules:
  - expression: claims.sub
`, want: []string{`jwt[0].claimValidationRules[0].expression: Invalid value: "claims.sub": must evaluate to bool`}},
		{name: "user rules see user, not claims", text: header + minimal + `  userValidationRules:
  - expression: "claims.sub != ''"
`, want: []string{`jwt[0].userValidationRules[0].expression`, "undeclared reference to 'claims'"}},
		{name: "claim rule with a message", text: header + minimal + `  claimValidationRules:
  - claim: hd
    requiredValue: example.com
    message: nope
`, want: []string{`jwt[0].claimValidationRules[0].message: Invalid value: "nope": may not be specified when claim is set`}},
		{name: "duplicate issuer and audience", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [k]}
  claimMappings: {username: {claim: sub, prefix: "a:"}}
- issuer: {url: https://issuer.example.com, audiences: [x, k], audienceMatchPolicy: MatchAny}
  claimMappings: {username: {claim: sub, prefix: "b:"}}
`, want: []string{`jwt[1].issuer.audiences[1]: Invalid value: "k": jwt[0] has the same issuer URL and this audience`}},
		{name: "one issuer reached two ways", text: header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [a]}
  claimMappings: {username: {claim: sub, prefix: "a:"}}
- issuer: {url: https://issuer.example.com, audiences: [b], discoveryURL: https://d.example.com/x}
  claimMappings: {username: {claim: sub, prefix: "b:"}}
`, want: []string{`jwt[1].issuer.discoveryURL: Invalid value: "https://d.example.com/x": must be the same as in jwt[0], which has the same issuer URL`}},
		{name: "one discovery URL for two issuers", text: header + `
jwt:
- issuer: {url: https://a.example.com, audiences: [a], discoveryURL: https://d.example.com/x}
  claimMappings: {username: {claim: sub, prefix: "a:"}}
- issuer: {url: https://b.example.com, audiences: [a], discoveryURL: https://d.example.com/x}
  claimMappings: {username: {claim: sub, prefix: "b:"}}
`, want: []string{`jwt[1].issuer.discoveryURL: Duplicate value: "https://d.example.com/x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.text)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", cfg.Spec)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") {
				t.Errorf("error does not start with the file name:\n%s", msg)
			}
			for _, s := range tt.want {
				if strings.HasPrefix(s, "jwt") || strings.HasPrefix(s, "anonymous") {
					s = path + ": " + s // field errors are each prefixed
				}
				if !strings.Contains(msg, s) {
					t.Errorf("error does not contain %q:\n%s", s, msg)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
		if err == nil || !os.IsNotExist(unwrapAll(err)) {
			t.Errorf("Load = %v, want a not-exist error", err)
		}
	})
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// Load is pure: loading the same file twice gives equal, independent configs.
func TestLoadTwice(t *testing.T) {
	path := writeConfig(t, header+minimal)
	a, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a.Spec == b.Spec || a.entries[0] == b.entries[0] {
		t.Error("two loads share state")
	}
}
