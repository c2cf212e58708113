package authnconfig

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/internal/oidctest"
)

// writeConfig writes text to a file of t's temporary directory and returns
// its path. In text, ISSUER_A and CA_A (ISSUER_B, CA_B) stand for the URL of
// issuers[0] (issuers[1]) and its certificate as a quoted YAML string.
func writeConfig(t *testing.T, text string, issuers ...*oidctest.Issuer) string {
	t.Helper()
	var pairs []string
	for i, is := range issuers {
		ca, err := json.Marshal(is.CAPEM())
		if err != nil {
			t.Fatal(err)
		}
		letter := string(rune('A' + i))
		pairs = append(pairs, "ISSUER_"+letter, is.URL(), "CA_"+letter, string(ca))
	}
	path := filepath.Join(t.TempDir(), "authentication-config.yaml")
	if err := os.WriteFile(path, []byte(strings.NewReplacer(pairs...).Replace(text)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustLoad loads text (see writeConfig) and fails t on error.
func mustLoad(t *testing.T, text string, issuers ...*oidctest.Issuer) *Config {
	t.Helper()
	cfg, err := Load(writeConfig(t, text, issuers...))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// startAuthenticator makes an Authenticator for cfg, runs it until the end
// of t and waits until it is ready.
func startAuthenticator(t *testing.T, cfg *Config, now func() time.Time) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(cfg, Options{Registerer: prometheus.NewRegistry(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for a.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", a.Ready())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return a
}

// wantRejection checks a rejection: its reason, message fragments, and that
// the message does not contain the token or its signature.
func wantRejection(t *testing.T, token string, id *auth.Identity, ok bool, err error, reason string, msgContains ...string) {
	t.Helper()
	if ok || id != nil {
		t.Fatalf("accepted: %+v", id)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	if ae.Reason != reason {
		t.Errorf("reason = %s (%q), want %s", ae.Reason, ae.Message, reason)
	}
	for _, s := range msgContains {
		if !strings.Contains(ae.Message, s) {
			t.Errorf("message %q does not contain %q", ae.Message, s)
		}
	}
	if parts := strings.Split(token, "."); len(parts) == 3 && (strings.Contains(ae.Message, parts[1]) || len(parts[2]) > 8 && strings.Contains(ae.Message, parts[2])) {
		t.Errorf("message contains the token: %q", ae.Message)
	}
}

// claimsAt returns valid claims for iss and aud at now, with overrides; an
// override with a nil value deletes the claim.
func claimsAt(now time.Time, iss, aud string, overrides map[string]any) map[string]any {
	c := map[string]any{
		"iss": iss,
		"aud": aud,
		"sub": "alice",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}
