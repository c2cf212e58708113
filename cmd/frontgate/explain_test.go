package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/explain"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
)

// explainIssuer is a local OpenID provider publishing one ES256 key.
// (auth/internal/oidctest cannot be imported from cmd/: Go's internal rule.)
type explainIssuer struct {
	url    string
	caFile string
	caPEM  string
	key    *ecdsa.PrivateKey
}

func newExplainIssuer(t *testing.T) *explainIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &explainIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.url, "jwks_uri": is.url + "/keys", "id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []jose.JSONWebKey{jwk}})
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	is.url = srv.URL
	is.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	is.caFile = writeFile(t, "issuer-ca.pem", is.caPEM)
	return is
}

// sign returns claims signed with key under kid; nil key means the issuer's.
func (is *explainIssuer) sign(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	if key == nil {
		key = is.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// claims returns a valid token's claims with changes applied (nil deletes).
func (is *explainIssuer) claims(changes map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": is.url, "aud": "kubernetes", "sub": "u-123",
		"email": "alice@example.com", "email_verified": true, "hd": "example.com",
		"groups": []string{"dev", "ops"}, "team": "platform",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lockedBuffer is a bytes.Buffer safe for the logger's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runExplain runs `frontgate explain args...` with stdin.
func runExplain(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out bytes.Buffer
	var errOut lockedBuffer
	d := deps{
		stdout: &out, stderr: &errOut,
		getenv:        func(string) string { return "" },
		signalContext: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
	}
	cmd := newRootCommand(d)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append([]string{"explain"}, args...))
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// clientCertificate makes a CA (written as corp.pem) and a client
// certificate for CN alice, O dev (written as alice.crt).
func clientCertificate(t *testing.T) (caFile, certFile string) {
	t.Helper()
	caKey, err := pki.NewKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("corp CA", caKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := pki.NewKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "alice", Organization: []string{"dev"}, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: time.Hour}, leafKey)
	if err != nil {
		t.Fatal(err)
	}
	encode := func(c *x509.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return writeFile(t, "corp.pem", encode(ca.Cert)), writeFile(t, "alice.crt", encode(leaf.Cert))
}

func TestExplain(t *testing.T) {
	is := newExplainIssuer(t)
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	legacy := []string{
		"--oidc-issuer-url", is.url, "--oidc-client-id", "kubernetes", "--oidc-ca-file", is.caFile,
		"--oidc-signing-algs", "ES256", "--oidc-username-claim", "email",
		"--oidc-groups-claim", "groups", "--oidc-groups-prefix", "oidc:",
		"--oidc-required-claim", "hd=example.com", "--oidc-extra-claim", "example.com/team=team",
	}
	ca, _ := json.Marshal(is.caPEM)
	authnConfig := writeFile(t, "authn.yaml", `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: `+is.url+`
    audiences: [kubernetes]
    certificateAuthority: `+string(ca)+`
  claimValidationRules:
  - claim: hd
    requiredValue: example.com
  - expression: claims.email_verified == true
    message: the email must be verified
  claimMappings:
    username:
      expression: '"oidc:" + claims.email'
    groups:
      claim: groups
      prefix: "oidc:"
  userValidationRules:
  - expression: "!user.username.startsWith('oidc:admin')"
    message: administrators use their admin account
  - expression: "user.groups.all(g, g != 'oidc:banned')"
    message: banned users may not log in
`)
	withConfig := func(args ...string) []string {
		return append([]string{"--authentication-config", authnConfig}, args...)
	}
	caFile, certFile := clientCertificate(t)
	mapping := writeFile(t, "mapping.yaml", `apiVersion: frontgate/v1alpha1
kind: ClientCertificateMapping
mappings:
- name: staff
  cas: [corp]
  username: '"corp:" + cert.subject.commonName'
  groups: 'cert.subject.organizations.map(o, "corp:" + o)'
`)
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closed.Close()

	good := is.sign(t, nil, "k1", is.claims(nil))
	tests := []struct {
		name  string
		args  []string
		token string // given with --token-file -
		// refused: the command must fail; its report is still printed.
		refused bool
		// wantErr: the command fails without a report.
		wantErr string
		want    []string
		notWant []string
	}{
		{
			name:  "legacy flags, good token",
			args:  legacy,
			token: good,
			want: []string{
				"signature verified with the issuer's keys",
				"pass  signature",
				"pass  --oidc-required-claim [hd=example.com]",
				"pass  email_verified",
				"pass  --oidc-groups-claim [groups]: 2 groups",
				"username       alice@example.com",
				"X-Remote-User: alice@example.com",
				"X-Remote-Group: oidc:dev\n  X-Remote-Group: oidc:ops",
				"X-Remote-Extra-Example.com%2fteam: platform",
				"forward: kube-apiserver receives",
			},
		},
		{
			name:    "legacy flags, required claim and email_verified fail, each reported",
			args:    legacy,
			token:   is.sign(t, nil, "k1", is.claims(map[string]any{"hd": "evil.com", "email_verified": false})),
			refused: true,
			want: []string{
				`fail  --oidc-required-claim [hd=example.com]: claim "hd" is "evil.com"`,
				"fail  email_verified",
				"refuse: 401 InvalidClaim",
			},
		},
		{
			name:  "authentication config, every rule passes",
			args:  withConfig(),
			token: good,
			want: []string{
				"configured by  --authentication-config " + authnConfig,
				"entry          jwt[0]",
				"authenticator  jwt",
				`pass  jwt[0].claimValidationRules[0] [claim "hd" is "example.com"]`,
				"pass  jwt[0].claimValidationRules[1] [claims.email_verified == true]",
				"pass  jwt[0].claimMappings.username",
				"pass  jwt[0].userValidationRules[0]",
				"pass  jwt[0].userValidationRules[1]",
				"X-Remote-User: oidc:alice@example.com",
				"forward: kube-apiserver receives",
			},
		},
		{
			name:    "authentication config, failing rules each reported",
			args:    withConfig(),
			token:   is.sign(t, nil, "k1", is.claims(map[string]any{"email": "admin@example.com", "hd": "evil.com", "groups": []string{"banned"}})),
			refused: true,
			want: []string{
				`fail  jwt[0].claimValidationRules[0] [claim "hd" is "example.com"]: claim "hd" is "evil.com", but jwt[0].claimValidationRules[0] requires "example.com"`,
				"pass  jwt[0].claimValidationRules[1]",
				`fail  jwt[0].userValidationRules[0] [!user.username.startsWith('oidc:admin')]: user "oidc:admin@example.com" fails jwt[0].userValidationRules[0]: administrators use their admin account`,
				"fail  jwt[0].userValidationRules[1]",
				"refuse: 401 InvalidClaim",
			},
		},
		{
			name:    "expired token",
			args:    legacy,
			token:   is.sign(t, nil, "k1", is.claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})),
			refused: true,
			want: []string{
				"pass  signature",
				"fail  expiry (exp) [in the future]: token expired at",
				"(what the credential maps to; frontgate would not forward it)",
				"none: nothing is forwarded",
				"refuse: 401 TokenExpired: token expired at",
			},
		},
		{
			name:    "reserved group",
			args:    legacy[:len(legacy)-6], // without the groups prefix and later flags
			token:   is.sign(t, nil, "k1", is.claims(map[string]any{"groups": []string{"system:masters"}})),
			refused: true,
			want: []string{
				"fail  --allow-reserved-identity",
				`refuse: 403 ReservedIdentity: group "system:masters" is reserved for Kubernetes components; an operator can allow it with --allow-reserved-identity`,
			},
		},
		{
			name:  "reserved group explicitly allowed",
			args:  append(slices.Clone(legacy[:len(legacy)-6]), "--allow-reserved-identity", "system:masters"),
			token: is.sign(t, nil, "k1", is.claims(map[string]any{"groups": []string{"system:masters"}})),
			want:  []string{"X-Remote-Group: system:masters", "forward:"},
		},
		{
			name:    "too many groups",
			args:    append(slices.Clone(legacy), "--max-groups", "2"),
			token:   is.sign(t, nil, "k1", is.claims(map[string]any{"groups": []string{"a", "b", "c"}})),
			refused: true,
			want: []string{
				"fail  --max-groups [at most 2 groups]",
				"refuse: 431 RequestHeaderFieldsTooLarge: the identity has 3 groups, more than the limit of 2 (--max-groups); narrow the groups claim or raise the limit",
			},
		},
		{
			name:    "unknown signing key",
			args:    legacy,
			token:   is.sign(t, otherKey, "rotated", is.claims(nil)),
			refused: true,
			want:    []string{`fail  signature`, `refuse: 401 UnknownSigningKey: token is signed with key ID "rotated", which is not in the issuer's JWKS`},
		},
		{
			name:  "--skip-signature on a token signed by an unknown key",
			args:  append(slices.Clone(legacy), "--skip-signature"),
			token: is.sign(t, otherKey, "rotated", is.claims(nil)),
			want: []string{
				"UNVERIFIED (signature not checked)",
				"claims (UNVERIFIED)",
				`email:          "alice@example.com"`,
				"skip  signature",
				"X-Remote-User: alice@example.com",
				"forward, IF the signature verifies",
			},
		},
		{
			name:  "--skip-signature with an authentication config needs no issuer",
			args:  []string{"--authentication-config", writeFile(t, "offline.yaml", strings.Replace(mustRead(t, authnConfig), is.url, closed.URL, 1)), "--skip-signature"},
			token: is.sign(t, otherKey, "k1", is.claims(map[string]any{"iss": closed.URL})),
			want:  []string{"entry          jwt[0]", "X-Remote-User: oidc:alice@example.com"},
		},
		{
			name:    "issuer unreachable within --timeout",
			args:    []string{"--oidc-issuer-url", closed.URL, "--oidc-client-id", "kubernetes", "--oidc-signing-algs", "ES256", "--timeout", "300ms"},
			token:   is.sign(t, nil, "k1", is.claims(map[string]any{"iss": closed.URL})),
			refused: true,
			want:    []string{"skip  signature", "refuse: 503 IssuerUnavailable: frontgate is not ready: OIDC issuer"},
		},
		{
			name:  "token of another issuer with --token-passthrough",
			args:  append(slices.Clone(legacy), "--token-passthrough"),
			token: is.sign(t, nil, "k1", is.claims(map[string]any{"iss": "https://other.example.com"})),
			want:  []string{"passthrough: no configured issuer recognises the token"},
		},
		{
			name:    "not a JWT",
			args:    legacy,
			token:   "not-a-jwt-but-secret",
			refused: true,
			want:    []string{"fail  format", "refuse: 401 MalformedToken"},
		},
		{
			name: "client certificate with a mapping file",
			args: []string{"--client-ca-file", "corp=" + caFile, "--client-cert-mapping", mapping, "--cert", certFile},
			want: []string{
				"credential     client certificate, chain verified",
				"entry          staff",
				"authenticator  client-certificate:staff",
				"subject        CN=alice,O=dev",
				"pass  certificate",
				"X-Remote-User: corp:alice",
				"X-Remote-Group: corp:dev",
			},
		},
		{
			name:    "client certificate of an unknown CA",
			args:    []string{"--client-ca-file", "corp=" + is.caFile, "--cert", certFile},
			refused: true,
			want:    []string{"fail  certificate", "refuse: 401 UnknownCertificateAuthority"},
		},
		{name: "no credential", args: legacy, wantErr: "give exactly one of --token-file, --token or --cert"},
		{name: "--cert without --client-ca-file", args: append(slices.Clone(legacy), "--cert", certFile), wantErr: "--cert needs --client-ca-file"},
		{name: "bad output", args: append(slices.Clone(legacy), "-o", "yaml"), token: good, wantErr: `--output "yaml"`},
		{name: "no identity source", args: nil, token: good, wantErr: "no identity source"},
		{name: "token given as an argument", args: append(slices.Clone(legacy), good), wantErr: "explain takes no arguments"},
		{name: "--config holds serve's settings only, never the token", args: append(slices.Clone(legacy), "--config", writeFile(t, "config.yaml", "token: "+good+"\n")), wantErr: `unknown setting "token"`},
		{name: "--config applies serve's settings", args: []string{"--config", writeFile(t, "serve.yaml", "oidc-issuer-url: "+is.url+"\noidc-client-id: kubernetes\noidc-ca-file: "+is.caFile+"\noidc-signing-algs: [ES256]\noidc-groups-claim: groups\nmax-groups: 1\n")}, token: good, refused: true, want: []string{"refuse: 431"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.token != "" {
				args = append(slices.Clone(args), "--token-file", "-")
			}
			stdout, stderr, err := runExplain(t, tt.token+"\n", args...)
			if testing.Verbose() {
				t.Log("stdout:\n" + stdout + "stderr:\n" + stderr)
			}
			all := stdout + stderr
			if err != nil {
				all += err.Error()
			}
			for _, secret := range []string{good, tt.token} {
				if secret == "" {
					continue
				}
				if strings.Contains(all, secret) {
					t.Fatalf("the token appears in the output:\n%s", all)
				}
				if parts := strings.Split(secret, "."); len(parts) == 3 && strings.Contains(all, parts[2]) {
					t.Fatalf("the token's signature appears in the output:\n%s", all)
				}
			}
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if stdout != "" {
					t.Errorf("stdout = %q, want nothing", stdout)
				}
				return
			case tt.refused && (err == nil || !strings.Contains(err.Error(), "frontgate would refuse")):
				t.Errorf("err = %v, want a refusal", err)
			case !tt.refused && err != nil:
				t.Errorf("err = %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stdout, w) {
					t.Errorf("stdout has %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestExplainJSON checks the stable shape of -o json, and that the token
// is read from --token and --token-file alike without appearing anywhere.
func TestExplainJSON(t *testing.T) {
	is := newExplainIssuer(t)
	token := is.sign(t, nil, "k1", is.claims(nil))
	flags := []string{"--oidc-issuer-url", is.url, "--oidc-client-id", "kubernetes", "--oidc-ca-file", is.caFile, "--oidc-signing-algs", "ES256", "--oidc-groups-claim", "groups", "-o", "json"}
	tokenFile := writeFile(t, "token", token+"\n")
	expired := is.sign(t, nil, "k1", is.claims(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}))
	tests := []struct {
		name        string
		args        []string
		stdin       string
		wantOutcome string
		wantStatus  int
	}{
		{"--token", append(slices.Clone(flags), "--token", token), "", explain.Forward, 0},
		{"--token-file", append(slices.Clone(flags), "--token-file", tokenFile), "", explain.Forward, 0},
		{"--token-file - (stdin)", append(slices.Clone(flags), "--token-file", "-"), token, explain.Forward, 0},
		{"refused", append(slices.Clone(flags), "--token-file", "-"), expired, explain.Refuse, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runExplain(t, tt.stdin, tt.args...)
			if (err != nil) != (tt.wantOutcome == explain.Refuse) {
				t.Fatalf("err = %v", err)
			}
			for _, secret := range []string{token, expired} {
				if strings.Contains(stdout+stderr, secret) {
					t.Fatal("the token appears in the output")
				}
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal([]byte(stdout), &top); err != nil {
				t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
			}
			for _, key := range []string{"outcome", "verified", "source", "checks", "identity", "headers"} {
				if _, ok := top[key]; !ok {
					t.Errorf("no %q field in %s", key, stdout)
				}
			}
			var r struct {
				Outcome  string `json:"outcome"`
				Verified bool   `json:"verified"`
				Status   int    `json:"status"`
				Reason   string `json:"reason"`
				Message  string `json:"message"`
				Source   struct {
					Credential    string                     `json:"credential"`
					Config        string                     `json:"config"`
					Authenticator string                     `json:"authenticator"`
					Issuer        string                     `json:"issuer"`
					Claims        map[string]json.RawMessage `json:"claims"`
				} `json:"source"`
				Checks []struct {
					Rule        string `json:"rule"`
					Requirement string `json:"requirement"`
					Result      string `json:"result"`
					Message     string `json:"message"`
				} `json:"checks"`
				Identity struct {
					Username string              `json:"username"`
					UID      string              `json:"uid"`
					Groups   []string            `json:"groups"`
					Extra    map[string][]string `json:"extra"`
					Expires  *time.Time          `json:"expires"`
				} `json:"identity"`
				Headers []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"headers"`
			}
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatal(err)
			}
			if r.Outcome != tt.wantOutcome || r.Status != tt.wantStatus || !r.Verified {
				t.Errorf("outcome %q status %d verified %v, want %q %d true", r.Outcome, r.Status, r.Verified, tt.wantOutcome, tt.wantStatus)
			}
			if r.Source.Credential != "bearer token" || r.Source.Config != "--oidc-* flags" || r.Source.Issuer != is.url || string(r.Source.Claims["sub"]) != `"u-123"` {
				t.Errorf("source = %+v", r.Source)
			}
			wantUser := is.url + "#u-123"
			if r.Identity.Username != wantUser || !slices.Equal(r.Identity.Groups, []string{"dev", "ops"}) || r.Identity.Expires == nil {
				t.Errorf("identity = %+v", r.Identity)
			}
			if len(r.Checks) == 0 || r.Checks[0].Rule != "signature" || r.Checks[0].Result != explain.Pass {
				t.Errorf("checks = %+v", r.Checks)
			}
			if tt.wantOutcome == explain.Refuse {
				if r.Reason != "TokenExpired" || !strings.HasPrefix(r.Message, "token expired at ") || len(r.Headers) != 0 {
					t.Errorf("refusal: reason %q message %q headers %v", r.Reason, r.Message, r.Headers)
				}
				return
			}
			want := []struct{ name, value string }{{"X-Remote-User", wantUser}, {"X-Remote-Group", "dev"}, {"X-Remote-Group", "ops"}}
			if len(r.Headers) != len(want) {
				t.Fatalf("headers = %+v", r.Headers)
			}
			for i, h := range r.Headers {
				if h.Name != want[i].name || h.Value != want[i].value {
					t.Errorf("header %d = %+v, want %+v", i, h, want[i])
				}
			}
		})
	}
}
