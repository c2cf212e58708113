package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
)

// mapperFunc adapts a function to ClaimMapper.
type mapperFunc func(ctx context.Context, t *Token) (*auth.Identity, error)

func (f mapperFunc) MapClaims(ctx context.Context, t *Token) (*auth.Identity, error) {
	return f(ctx, t)
}

// subMapper maps sub to the username.
var subMapper = mapperFunc(func(_ context.Context, t *Token) (*auth.Identity, error) {
	var sub string
	if err := json.Unmarshal(t.Claims["sub"], &sub); err != nil {
		return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: "no sub"}
	}
	return &auth.Identity{Name: "m:" + sub, Source: "test"}, nil
})

// newIssuerEnv is newEnv for NewIssuer.
func newIssuerEnv(t *testing.T, mutate func(*IssuerOptions)) *env {
	t.Helper()
	key := rsaKey(t, 0, "rsa-0")
	e := &env{is: newTestIssuer(t, key), clock: newTestClock(), key: key, reg: prometheus.NewRegistry()}
	opts := IssuerOptions{
		IssuerURL:  e.is.URL(),
		Audiences:  []string{testClientID},
		RootCAs:    e.is.CAs(),
		Mapper:     subMapper,
		Registerer: e.reg,
		Now:        e.clock.Now,
	}
	if mutate != nil {
		mutate(&opts)
	}
	a, err := NewIssuer(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.a = a
	startRun(t, a)
	waitReady(t, a)
	return e
}

func TestNewIssuerValidation(t *testing.T) {
	valid := func() IssuerOptions {
		return IssuerOptions{IssuerURL: "https://issuer.example.com", Audiences: []string{"a"}, Mapper: subMapper}
	}
	tests := []struct {
		name    string
		mutate  func(*IssuerOptions)
		wantErr []string
	}{
		{name: "minimal", mutate: func(*IssuerOptions) {}},
		{name: "several audiences and a discovery URL", mutate: func(o *IssuerOptions) {
			o.Audiences, o.DiscoveryURL = []string{"a", "b"}, "https://discovery.example.com/.well-known/openid-configuration"
		}},
		{name: "http loopback discovery URL", mutate: func(o *IssuerOptions) { o.DiscoveryURL = "http://127.0.0.1:8080/d" }},
		{name: "no issuer", mutate: func(o *IssuerOptions) { o.IssuerURL = "" }, wantErr: []string{"issuer URL is required"}},
		{name: "http issuer", mutate: func(o *IssuerOptions) { o.IssuerURL = "http://issuer.example.com" }, wantErr: []string{"issuer URL", "https"}},
		{name: "http discovery URL", mutate: func(o *IssuerOptions) { o.DiscoveryURL = "http://discovery.example.com" }, wantErr: []string{"discovery URL", "https"}},
		{name: "no audience", mutate: func(o *IssuerOptions) { o.Audiences = nil }, wantErr: []string{"audience is required"}},
		{name: "empty audience", mutate: func(o *IssuerOptions) { o.Audiences = []string{"a", ""} }, wantErr: []string{"must not be empty"}},
		{name: "HS256", mutate: func(o *IssuerOptions) { o.SigningAlgs = []string{"HS256"} }, wantErr: []string{`"HS256"`}},
		{name: "no mapper", mutate: func(o *IssuerOptions) { o.Mapper = nil }, wantErr: []string{"claim mapper"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid()
			tt.mutate(&opts)
			_, err := NewIssuer(opts)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("NewIssuer: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewIssuer succeeded, want %q", tt.wantErr)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// The mapper receives the verified token and decides the identity; the
// authenticator sets Expires.
func TestNewIssuerMapper(t *testing.T) {
	var got *Token
	e := newIssuerEnv(t, func(o *IssuerOptions) {
		o.Mapper = mapperFunc(func(ctx context.Context, tok *Token) (*auth.Identity, error) {
			got = tok
			return subMapper(ctx, tok)
		})
	})
	token := e.token(t, map[string]any{"aud": []string{"x", testClientID}, "team": "a"})
	id, ok, err := e.a.AuthenticateToken(context.Background(), token)
	if !ok {
		t.Fatalf("rejected: %v", err)
	}
	want := auth.Identity{Name: "m:alice", Source: "test", Expires: testNow.Add(time.Hour)}
	if !id.Expires.Equal(want.Expires) {
		t.Errorf("Expires = %v, want %v", id.Expires, want.Expires)
	}
	id.Expires = want.Expires
	if !reflect.DeepEqual(*id, want) {
		t.Errorf("identity = %+v, want %+v", *id, want)
	}
	if got.Issuer != e.is.URL() || !reflect.DeepEqual(got.Audience, []string{"x", testClientID}) || !got.Expiry.Equal(want.Expires) || string(got.Claims["team"]) != `"a"` {
		t.Errorf("token given to the mapper = %+v", got)
	}
}

func TestNewIssuerRejections(t *testing.T) {
	tests := []struct {
		name   string
		opts   func(*IssuerOptions)
		claims map[string]any
		reason string
		msg    []string
	}{
		{name: "mapper error passes through", opts: func(o *IssuerOptions) {
			o.Mapper = mapperFunc(func(context.Context, *Token) (*auth.Identity, error) {
				return nil, &auth.Error{Reason: auth.ReasonMissingClaim, Message: "mapper says no"}
			})
		}, reason: auth.ReasonMissingClaim, msg: []string{"mapper says no"}},
		{name: "mapper returning no identity", opts: func(o *IssuerOptions) {
			o.Mapper = mapperFunc(func(context.Context, *Token) (*auth.Identity, error) { return nil, nil })
		}, reason: auth.ReasonInvalidIdentity},
		{name: "audience outside the list", opts: func(o *IssuerOptions) { o.Audiences = []string{"a", "b"} }, claims: map[string]any{"aud": "c"},
			reason: auth.ReasonInvalidAudience, msg: []string{`["c"]`, `any of the audiences ["a", "b"]`}},
		{name: "audience described by the caller", opts: func(o *IssuerOptions) { o.AudienceDescription = "the audiences of jwt[3]" }, claims: map[string]any{"aud": "c"},
			reason: auth.ReasonInvalidAudience, msg: []string{"the audiences of jwt[3]"}},
		{name: "expired with a wrong audience reports the audience", claims: map[string]any{"aud": "c", "exp": testNow.Add(-time.Hour).Unix()},
			reason: auth.ReasonInvalidAudience},
		{name: "algorithm outside the list names no flag", opts: func(o *IssuerOptions) { o.SigningAlgs = []string{"ES256"} },
			reason: auth.ReasonUnsupportedAlg, msg: []string{"accepted algorithms are ES256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newIssuerEnv(t, tt.opts)
			token := e.token(t, tt.claims)
			id, ok, err := e.a.AuthenticateToken(context.Background(), token)
			wantRejection(t, token, id, ok, err, tt.reason, tt.msg...)
			if strings.Contains(err.Error(), "--oidc") {
				t.Errorf("message names a flag: %q", err)
			}
		})
	}
}

// With DiscoveryURL, the discovery document is read from there; the issuer
// it names must still be the issuer URL.
func TestNewIssuerDiscoveryURL(t *testing.T) {
	key := rsaKey(t, 0, "rsa-0")
	is := newTestIssuer(t, key)
	is.SetDiscoveryIssuer("https://wrong.example.com") // the well-known document is unusable
	is.Handle("/custom-discovery", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.URL(), "jwks_uri": is.URL() + "/keys"})
	}))
	clock := newTestClock()
	a, err := NewIssuer(IssuerOptions{
		IssuerURL: is.URL(), DiscoveryURL: is.URL() + "/custom-discovery", Audiences: []string{testClientID},
		RootCAs: is.CAs(), Mapper: subMapper, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	startRun(t, a)
	waitReady(t, a)
	token := sign(t, key, map[string]any{"iss": is.URL(), "aud": testClientID, "sub": "alice", "exp": testNow.Add(time.Hour).Unix()})
	if id, ok, err := a.AuthenticateToken(context.Background(), token); !ok || id.Name != "m:alice" {
		t.Fatalf("AuthenticateToken = %v, %v, %v", id, ok, err)
	}
}

func TestUnverifiedIssuer(t *testing.T) {
	tests := []struct {
		name    string
		claims  map[string]any
		token   string
		want    string
		wantErr string // reason
	}{
		{name: "https issuer", claims: map[string]any{"iss": "https://issuer.example.com"}, want: "https://issuer.example.com"},
		{name: "Google without scheme", claims: map[string]any{"iss": "accounts.google.com"}, want: "https://accounts.google.com"},
		{name: "no iss", claims: map[string]any{"sub": "a"}, wantErr: auth.ReasonInvalidIssuer},
		{name: "iss not a string", claims: map[string]any{"iss": 1}, wantErr: auth.ReasonMalformedToken},
		{name: "opaque token", token: "sha256~abc", wantErr: auth.ReasonMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token
			if token == "" {
				token = handmade(t, map[string]any{"alg": "RS256"}, tt.claims, "c2ln")
			}
			got, err := UnverifiedIssuer(token)
			if tt.wantErr != "" {
				var ae *auth.Error
				if !errors.As(err, &ae) || ae.Reason != tt.wantErr {
					t.Fatalf("UnverifiedIssuer = %q, %v; want reason %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("UnverifiedIssuer = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
