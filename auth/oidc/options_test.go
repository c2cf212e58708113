package oidc

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
)

func TestUsernamePrefixFor(t *testing.T) {
	const issuer = "https://issuer.example.com"
	tests := []struct {
		name      string
		flagValue string
		flagSet   bool
		claim     string
		want      string
	}{
		{name: "unset, claim sub: issuer#", claim: "sub", want: issuer + "#"},
		{name: "unset, default claim: issuer#", claim: "", want: issuer + "#"},
		{name: "unset, claim preferred_username: issuer#", claim: "preferred_username", want: issuer + "#"},
		{name: "unset, claim email: none", claim: "email", want: ""},
		{name: "dash disables", flagValue: "-", flagSet: true, claim: "sub", want: ""},
		{name: "dash with email disables", flagValue: "-", flagSet: true, claim: "email", want: ""},
		{name: "explicit value", flagValue: "oidc:", flagSet: true, claim: "sub", want: "oidc:"},
		{name: "explicit value with email", flagValue: "oidc:", flagSet: true, claim: "email", want: "oidc:"},
		{name: "explicitly empty", flagValue: "", flagSet: true, claim: "sub", want: ""},
		{name: "unset ignores a stray value", flagValue: "ignored:", flagSet: false, claim: "sub", want: issuer + "#"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UsernamePrefixFor(tt.flagValue, tt.flagSet, issuer, tt.claim); got != tt.want {
				t.Errorf("UsernamePrefixFor(%q, %v, %q) = %q, want %q", tt.flagValue, tt.flagSet, tt.claim, got, tt.want)
			}
		})
	}
}

func TestNewValidation(t *testing.T) {
	valid := func() Options {
		return Options{IssuerURL: "https://issuer.example.com", ClientID: "client"}
	}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr []string // substrings; none means success
	}{
		{name: "minimal https", mutate: func(*Options) {}},
		{name: "https with path", mutate: func(o *Options) { o.IssuerURL = "https://issuer.example.com/realms/x" }},
		{name: "http localhost", mutate: func(o *Options) { o.IssuerURL = "http://localhost:5556/dex" }},
		{name: "http 127.0.0.1", mutate: func(o *Options) { o.IssuerURL = "http://127.0.0.1:8080" }},
		{name: "http 127.1.2.3", mutate: func(o *Options) { o.IssuerURL = "http://127.1.2.3" }},
		{name: "http ::1", mutate: func(o *Options) { o.IssuerURL = "http://[::1]:8080" }},
		{name: "all allowed algs", mutate: func(o *Options) { o.SigningAlgs = SupportedSigningAlgs() }},
		{name: "extra and required claims", mutate: func(o *Options) {
			o.ExtraClaims = map[string]string{"example.com/team": "team"}
			o.RequiredClaims = map[string]string{"hd": "example.com"}
		}},
		{name: "missing issuer", mutate: func(o *Options) { o.IssuerURL = "" }, wantErr: []string{"--oidc-issuer-url is required"}},
		{name: "http non-loopback", mutate: func(o *Options) { o.IssuerURL = "http://issuer.example.com" }, wantErr: []string{"--oidc-issuer-url", "https"}},
		{name: "http 10.0.0.1", mutate: func(o *Options) { o.IssuerURL = "http://10.0.0.1" }, wantErr: []string{"--oidc-issuer-url", "https"}},
		{name: "http localhost lookalike", mutate: func(o *Options) { o.IssuerURL = "http://localhost.evil.example" }, wantErr: []string{"--oidc-issuer-url"}},
		{name: "no scheme", mutate: func(o *Options) { o.IssuerURL = "issuer.example.com" }, wantErr: []string{"--oidc-issuer-url"}},
		{name: "no host", mutate: func(o *Options) { o.IssuerURL = "https:///path" }, wantErr: []string{"--oidc-issuer-url", "host"}},
		{name: "fragment", mutate: func(o *Options) { o.IssuerURL = "https://issuer.example.com#x" }, wantErr: []string{"--oidc-issuer-url", "fragment"}},
		{name: "query", mutate: func(o *Options) { o.IssuerURL = "https://issuer.example.com?x=1" }, wantErr: []string{"--oidc-issuer-url", "query"}},
		{name: "user info", mutate: func(o *Options) { o.IssuerURL = "https://u:p@issuer.example.com" }, wantErr: []string{"--oidc-issuer-url", "user"}},
		{name: "missing client id", mutate: func(o *Options) { o.ClientID = "" }, wantErr: []string{"--oidc-client-id is required"}},
		{name: "alg none", mutate: func(o *Options) { o.SigningAlgs = []string{"none"} }, wantErr: []string{"--oidc-signing-algs", `"none"`}},
		{name: "alg HS256", mutate: func(o *Options) { o.SigningAlgs = []string{"RS256", "HS256"} }, wantErr: []string{"--oidc-signing-algs", `"HS256"`}},
		{name: "alg lower case", mutate: func(o *Options) { o.SigningAlgs = []string{"rs256"} }, wantErr: []string{"--oidc-signing-algs"}},
		{name: "alg EdDSA", mutate: func(o *Options) { o.SigningAlgs = []string{"EdDSA"} }, wantErr: []string{"--oidc-signing-algs"}},
		{name: "empty required claim name", mutate: func(o *Options) { o.RequiredClaims = map[string]string{"": "x"} }, wantErr: []string{"--oidc-required-claim"}},
		{name: "extra key upper case", mutate: func(o *Options) { o.ExtraClaims = map[string]string{"example.com/Team": "team"} }, wantErr: []string{"lower-case"}},
		{name: "extra key without domain", mutate: func(o *Options) { o.ExtraClaims = map[string]string{"team": "team"} }, wantErr: []string{"domain-prefixed"}},
		{name: "extra key under k8s.io", mutate: func(o *Options) { o.ExtraClaims = map[string]string{"authentication.k8s.io/x": "x"} }, wantErr: []string{"reserved"}},
		{name: "extra key under kubernetes.io", mutate: func(o *Options) { o.ExtraClaims = map[string]string{"kubernetes.io/x": "x"} }, wantErr: []string{"reserved"}},
		{name: "extra empty claim", mutate: func(o *Options) { o.ExtraClaims = map[string]string{"example.com/team": ""} }, wantErr: []string{"claim name"}},
		{name: "errors are joined", mutate: func(o *Options) { o.IssuerURL, o.ClientID = "", "" }, wantErr: []string{"--oidc-issuer-url is required", "--oidc-client-id is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid()
			tt.mutate(&opts)
			a, err := New(opts)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if a == nil {
					t.Fatal("New returned nil")
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want an error containing %q", tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// New must do no network I/O: an unresolvable issuer is fine until Run.
func TestNewDoesNoIO(t *testing.T) {
	a, err := New(Options{IssuerURL: "https://issuer.invalid", ClientID: "client"})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Ready()
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("Ready() = %v, want an unreachable error", err)
	}
	token := handmade(t, map[string]any{"alg": "RS256"}, map[string]any{"iss": "https://issuer.invalid", "sub": "a"}, "c2ln")
	id, ok, err := a.AuthenticateToken(context.Background(), token)
	wantRejection(t, token, id, ok, err, auth.ReasonIssuerUnavailable, "has not been reached yet")
}

func TestNewDefaults(t *testing.T) {
	a, err := New(Options{IssuerURL: "https://issuer.example.com", ClientID: "client", SigningAlgs: []string{"ES256", "ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	if m := a.mapper.(*legacyMapper); m.usernameClaim != "sub" {
		t.Errorf("username claim = %q, want sub", m.usernameClaim)
	}
	if len(a.algs) != 1 || a.algs[0] != "ES256" {
		t.Errorf("algs = %q, want [ES256]", a.algs)
	}
	b, err := New(Options{IssuerURL: "https://issuer.example.com", ClientID: "client"})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.algs) != 1 || b.algs[0] != "RS256" {
		t.Errorf("default algs = %q, want [RS256]", b.algs)
	}
}

// Two authenticators may share a registry (several issuers, or tests).
func TestNewSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for i := range 2 {
		if _, err := New(Options{IssuerURL: "https://issuer.example.com", ClientID: "client", Registerer: reg}); err != nil {
			t.Fatalf("New #%d: %v", i, err)
		}
	}
}
