package authnconfig

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/oidc"
)

// FuzzLoad feeds Load arbitrary file contents. Load must not panic; an
// error must start with the file name and, when it lists problems found by
// validation, each line must name the field of the file
// ("path: jwt[0].issuer.url: ..."); a configuration Load accepts has one
// compiled entry per jwt entry, issuer URLs auth/oidc accepts, and
// NewAuthenticator accepts it.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(header + minimal))
	f.Add([]byte(`{"apiVersion":"apiserver.config.k8s.io/v1beta1","kind":"AuthenticationConfiguration","jwt":[{"issuer":{"url":"https://issuer.example.com","audiences":["k"]},"claimMappings":{"username":{"claim":"sub","prefix":""}}}]}`))
	f.Add([]byte(fuzzMappingConfig))
	f.Add([]byte(header + minimal + "    groups:\n      claim: groups\n      prefix: ''\n      separator: ','\n"))
	f.Add([]byte(header + "jwt:\n- issuer: {url: http://127.0.0.1:5556/dex, discoveryURL: http://localhost:5556/d, audiences: [a, b]}\n  claimMappings:\n    username: {expression: 'claims.email'}\n    extra:\n    - {key: example.com/Team, valueExpression: 'claims.team'}\n"))
	f.Add([]byte(header + "anonymous: {enabled: true}\njwt: []\n"))
	f.Add([]byte("apiVersion: apiserver.config.k8s.io/v1alpha1\nkind: AuthenticationConfiguration\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "authentication-config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Load returned a configuration and the error %v", err)
			}
			checkLoadError(t, path, err)
			return
		}
		if cfg.Path != path || len(cfg.Spec.JWT) == 0 || len(cfg.entries) != len(cfg.Spec.JWT) {
			t.Fatalf("accepted %d jwt entries as %d, path %q", len(cfg.Spec.JWT), len(cfg.entries), cfg.Path)
		}
		for _, e := range cfg.entries {
			if err := auth.CheckIssuerURL(e.spec.Issuer.URL); err != nil {
				t.Fatalf("accepted issuer URL %q: %v", e.spec.Issuer.URL, err)
			}
			if len(e.spec.Issuer.Audiences) == 0 {
				t.Fatalf("accepted %s without audiences", e.path)
			}
		}
		if _, err := NewAuthenticator(cfg, Options{}); err != nil {
			t.Fatalf("NewAuthenticator refused what Load accepted: %v", err)
		}
	})
}

// fieldLine is one validation problem: the file, a field path, the message.
var fieldLine = regexp.MustCompile(`^(jwt|anonymous)(\[[^\]]*\])*(\.[A-Za-z]+(\[[^\]]*\])*)*: \S`)

func checkLoadError(t *testing.T, path string, err error) {
	t.Helper()
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			rest, ok := strings.CutPrefix(e.Error(), path+": ")
			if !ok || !fieldLine.MatchString(rest) {
				t.Fatalf("a validation error does not name the file and a field: %q", e.Error())
			}
		}
		return
	}
	if rest, ok := strings.CutPrefix(err.Error(), path+": "); !ok || strings.TrimSpace(rest) == "" {
		t.Fatalf("the error does not name the file: %q", err.Error())
	}
}

// fuzzMappingConfig has two entries of one issuer, chosen by audience: one
// mapping with CEL, one with claims.
const fuzzMappingConfig = header + `
jwt:
- issuer: {url: https://issuer.example.com, audiences: [kubectl]}
  claimValidationRules:
  - claim: hd
    requiredValue: example.com
  - expression: 'claims.exp - claims.iat <= 86400'
    message: tokens may live one day at most
  claimMappings:
    username: {expression: '"oidc:" + claims.sub'}
    groups: {expression: 'has(claims.groups) ? dyn(claims.groups).map(g, "oidc:" + g) : []'}
    uid: {expression: 'claims.?uid.orValue("")'}
    extra:
    - key: example.com/tenant
      valueExpression: 'claims.?tid.orValue("")'
  userValidationRules:
  - expression: "!user.username.startsWith('oidc:system:')"
    message: no system users
  - expression: "user.groups.all(g, !g.startsWith('oidc:system:'))"
- issuer: {url: https://issuer.example.com, audiences: [ci, ci-legacy], audienceMatchPolicy: MatchAny}
  claimValidationRules:
  - claim: repository
    requiredValue: example/app
  claimMappings:
    username: {claim: email, prefix: ""}
    groups: {claim: groups, prefix: "ci:"}
    uid: {claim: sub}
`

// FuzzClaimMapping maps arbitrary JSON claims (as auth/oidc hands verified
// claims over) with fuzzMappingConfig. Mapping must not panic and must give
// an identity or an *auth.Error with a claim, identity or audience reason;
// an identity must obey every rule of the entry the audience selects and be
// exactly the mapping of the claims.
func FuzzClaimMapping(f *testing.F) {
	for _, s := range []string{
		`{"aud":"kubectl","sub":"alice","hd":"example.com","iat":1795762800,"exp":1795766400,"groups":["dev","ops"],"uid":"u-1","tid":"t-1","jti":"j-1"}`,
		`{"aud":["other","kubectl"],"sub":"system:masters","hd":"example.com","iat":0,"exp":1,"groups":["system:masters"]}`,
		`{"aud":"kubectl","sub":"alice","hd":"example.com","iat":0,"exp":1,"groups":"dev"}`,
		`{"aud":"kubectl","sub":1,"hd":"example.com","iat":"0","exp":1,"groups":[1,null]}`,
		`{"aud":"ci","sub":"123","email":"ci@example.com","email_verified":true,"repository":"example/app","groups":["a",null,""]}`,
		`{"aud":["ci-legacy"],"sub":"123","email":"ci@example.com","email_verified":"yes","repository":"example/app"}`,
		`{"aud":["ci","kubectl"],"sub":"x"}`,
		`{"aud":"ci","email":"","repository":"example/app","_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://x"}}}`,
		`{"aud":"kubectl","sub":"a","hd":"example.com","iat":1e308,"exp":-1e308,"tid":["a",""],"uid":null}`,
	} {
		f.Add([]byte(s))
	}
	cfg, err := Load(writeConfigTB(f, fuzzMappingConfig))
	if err != nil {
		f.Fatal(err)
	}
	mapper := &issuerMapper{issuer: "https://issuer.example.com", entries: cfg.entries}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c oidc.Claims
		if json.Unmarshal(data, &c) != nil || c == nil {
			return // auth/oidc refuses tokens whose claims are not a JSON object
		}
		aud := fuzzAudience(c)
		id, err := mapper.MapClaims(context.Background(), &oidc.Token{Issuer: mapper.issuer, Audience: aud, Claims: c})
		if err != nil {
			var ae *auth.Error
			if id != nil || !errors.As(err, &ae) || ae.Message == "" ||
				!slices.Contains([]string{auth.ReasonInvalidClaim, auth.ReasonMissingClaim, auth.ReasonInvalidIdentity, auth.ReasonInvalidAudience}, ae.Reason) {
				t.Fatalf("MapClaims returned %+v and %v (%T)", id, err, err)
			}
			return
		}
		if id == nil || id.Name == "" || id.Source != source {
			t.Fatalf("MapClaims returned the identity %+v", id)
		}
		kubectl, ci := slices.Contains(aud, "kubectl"), slices.Contains(aud, "ci") || slices.Contains(aud, "ci-legacy")
		got := *id
		got.Groups = slices.Clone(id.Groups)
		var want *auth.Identity
		switch {
		case kubectl && !ci:
			want = fuzzWantKubectl(t, c, &got)
		case ci && !kubectl:
			want = fuzzWantCI(t, c)
		default:
			t.Fatalf("audience %q selects no single entry, yet mapped to %+v", aud, id)
		}
		if jti := fuzzString(c, "jti"); jti != "" {
			if want.Extra == nil {
				want.Extra = map[string][]string{}
			}
			want.Extra[credentialIDKey] = []string{"JTI=" + jti}
		}
		// An empty list of groups or extra values means none.
		for _, x := range []*auth.Identity{&got, want} {
			if len(x.Groups) == 0 {
				x.Groups = nil
			}
			if len(x.Extra) == 0 {
				x.Extra = nil
			}
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("claims %s mapped to %+v, want %+v", data, id, want)
		}
	})
}

// fuzzWantKubectl is the identity jwt[0] must map c to, after checking the
// rules that must have held; it sorts the groups of got, the mapped identity,
// when their order is not defined.
func fuzzWantKubectl(t *testing.T, c oidc.Claims, got *auth.Identity) *auth.Identity {
	t.Helper()
	if fuzzString(c, "hd") != "example.com" {
		t.Fatalf("jwt[0] accepted hd %s", c["hd"])
	}
	var exp, iat float64
	if json.Unmarshal(c["exp"], &exp) != nil || json.Unmarshal(c["iat"], &iat) != nil || !(exp-iat <= 86400) {
		t.Fatalf("jwt[0] accepted exp %s, iat %s", c["exp"], c["iat"])
	}
	var sub string
	if json.Unmarshal(c["sub"], &sub) != nil || string(c["sub"]) == "null" {
		t.Fatalf("jwt[0] mapped sub %s, which is not a string", c["sub"])
	}
	want := &auth.Identity{Name: "oidc:" + sub, Source: source}
	if raw, ok := c["groups"]; ok {
		groups, ok := fuzzStrings(raw)
		if !ok {
			// CEL's map() over an object ranges over its keys, in no
			// particular order.
			var object map[string]any
			if json.Unmarshal(raw, &object) != nil || object == nil {
				t.Fatalf("jwt[0] mapped groups %s, which is neither a list of strings nor an object", raw)
			}
			groups = slices.Sorted(maps.Keys(object))
			slices.Sort(got.Groups)
		}
		for _, g := range groups {
			want.Groups = append(want.Groups, "oidc:"+g)
		}
	}
	if strings.HasPrefix(want.Name, "oidc:system:") || slices.ContainsFunc(want.Groups, func(g string) bool { return strings.HasPrefix(g, "oidc:system:") }) {
		t.Fatalf("jwt[0] accepted %+v despite its userValidationRules", want)
	}
	if _, ok := c["uid"]; ok {
		want.UID = fuzzString(c, "uid")
	}
	// A string or a list of strings; "", null and empty strings in the list
	// mean none.
	var tenants []string
	if tid, ok := fuzzStrings(c["tid"]); ok {
		tenants = slices.DeleteFunc(tid, func(s string) bool { return s == "" })
	} else if tid := fuzzString(c, "tid"); tid != "" {
		tenants = []string{tid}
	}
	if len(tenants) > 0 {
		want.Extra = map[string][]string{"example.com/tenant": tenants}
	}
	return want
}

// fuzzWantCI is the identity jwt[1] must map c to, after checking the rules
// that must have held.
func fuzzWantCI(t *testing.T, c oidc.Claims) *auth.Identity {
	t.Helper()
	if fuzzString(c, "repository") != "example/app" {
		t.Fatalf("jwt[1] accepted repository %s", c["repository"])
	}
	if raw, ok := c["email_verified"]; ok {
		var verified bool
		if json.Unmarshal(raw, &verified) != nil || !verified {
			t.Fatalf("jwt[1] accepted email_verified %s", raw)
		}
	}
	var sub string
	if json.Unmarshal(c["sub"], &sub) != nil {
		t.Fatalf("jwt[1] mapped the uid claim sub %s, which is not a string", c["sub"])
	}
	want := &auth.Identity{Name: fuzzString(c, "email"), UID: sub, Source: source}
	if raw, ok := c["groups"]; ok {
		var groups []string
		if json.Unmarshal(raw, &groups) != nil {
			var one string
			if json.Unmarshal(raw, &one) != nil {
				t.Fatalf("jwt[1] mapped groups %s, which is neither a string nor a list of strings", raw)
			}
			groups = []string{one}
		}
		for _, g := range groups {
			want.Groups = append(want.Groups, "ci:"+g)
		}
	}
	return want
}

// fuzzAudience reads the aud claim as auth/oidc does: a string or a list of
// strings.
func fuzzAudience(c oidc.Claims) []string {
	var list []string
	if json.Unmarshal(c["aud"], &list) == nil {
		return list
	}
	if s := fuzzString(c, "aud"); s != "" {
		return []string{s}
	}
	return nil
}

// fuzzStrings decodes raw as a JSON list whose elements are all strings.
func fuzzStrings(raw json.RawMessage) ([]string, bool) {
	var elems []any
	if json.Unmarshal(raw, &elems) != nil || elems == nil {
		return nil, false
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// fuzzString is the string claim name, or "".
func fuzzString(c oidc.Claims, name string) string {
	var s string
	_ = json.Unmarshal(c[name], &s)
	return s
}

// writeConfigTB writes text to a file of tb's temporary directory.
func writeConfigTB(tb testing.TB, text string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "authentication-config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
