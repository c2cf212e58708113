package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// authenticationConfig is an AuthenticationConfiguration with two entries
// for the shared issuer (clients web and api, mapped differently — which
// kube-apiserver itself cannot do) and one for a second issuer mapped with
// CEL. webPrefix is the username prefix of the web entry.
func authenticationConfig(issuerA, issuerB, webPrefix string) string {
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %[1]s
    audiences: [web]
  claimMappings:
    username: {claim: sub, prefix: "%[3]s"}
    groups: {claim: amr, prefix: "web:"}
- issuer:
    url: %[1]s
    audiences: [api]
  claimMappings:
    username: {claim: sub, prefix: "api:"}
    uid: {claim: sub}
- issuer:
    url: %[2]s
    audiences: [web]
  claimMappings:
    username:
      expression: '"second:" + claims.sub'
    groups:
      expression: '["from-second"]'
    extra:
    - key: example.com/issuer
      valueExpression: claims.iss
`, issuerA, issuerB, webPrefix)
}

// writeAtomically replaces path as a mounted ConfigMap changes: a new file
// renamed over the old one.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestAuthenticationConfig: frontgate reads kube-apiserver's own
// AuthenticationConfiguration format: two real issuers at once with
// different mappings, and one issuer whose two client IDs are mapped
// differently; then the file is swapped while requests flow, and the new
// mapping takes over without a single failed request.
func TestAuthenticationConfig(t *testing.T) {
	need(t)
	second, err := env.StartOIDCProvider(ctx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Stop)
	path := filepath.Join(t.TempDir(), "authentication.yaml")
	writeAtomically(t, path, authenticationConfig(env.OIDC.Issuer, second.Issuer, "web:"))
	f := startFrontgate(t, cluster.FrontgateOptions{AuthenticationConfig: path})
	client := fgClient(t, f, false)

	secondToken, err := second.IDToken(ctx(t), cluster.ClientWeb, user(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	env.RecordSecret(secondToken)
	tests := []struct {
		name      string
		token     string
		wantName  string
		wantUID   string
		wantGroup string
		wantExtra string
	}{
		{"first issuer, client web", idToken(t, cluster.ClientWeb, "alice"), "web:alice", "", "web:pwd", ""},
		{"first issuer, client api", idToken(t, cluster.ClientAPI, "alice"), "api:alice", "alice", "", ""},
		{"second issuer, CEL mapping", secondToken, "second:alice", "", "from-second", second.Issuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, info := whoami(t, client, f.URL, bearer(tt.token))
			if info == nil {
				t.Fatalf("HTTP %d: %s", resp.code, resp.body)
			}
			if info.Username != tt.wantName || info.UID != tt.wantUID {
				t.Errorf("kube-apiserver saw %s, want %s uid %q", fmtUser(*info), tt.wantName, tt.wantUID)
			}
			if tt.wantGroup != "" && (len(info.Groups) == 0 || info.Groups[0] != tt.wantGroup) {
				t.Errorf("groups %q, want %s first", info.Groups, tt.wantGroup)
			}
			if tt.wantExtra != "" && strings.Join(info.Extra["example.com/issuer"], ",") != tt.wantExtra {
				t.Errorf("extra %v, want example.com/issuer=%s", info.Extra, tt.wantExtra)
			}
		})
	}

	t.Run("reload under traffic", func(t *testing.T) {
		token := idToken(t, cluster.ClientWeb, "bob")
		var (
			stop     atomic.Bool
			failures atomic.Int64
			requests atomic.Int64
			wg       sync.WaitGroup
			mu       sync.Mutex
			lastErr  string
		)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					resp := send(t, client, http.MethodPost, f.URL+selfSubjectReviewPath, bearer(token), selfSubjectReviewBody)
					requests.Add(1)
					if resp.code != http.StatusCreated {
						failures.Add(1)
						mu.Lock()
						lastErr = fmt.Sprintf("HTTP %d: %s", resp.code, resp.body)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		writeAtomically(t, path, authenticationConfig(env.OIDC.Issuer, second.Issuer, "reloaded:"))
		eventually(t, 60*time.Second, func() error {
			_, info := whoami(t, client, f.URL, bearer(token))
			if info == nil || info.Username != "reloaded:bob" {
				return fmt.Errorf("not reloaded yet: %v", info)
			}
			return nil
		})
		time.Sleep(300 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
		if n := failures.Load(); n != 0 {
			t.Errorf("%d of %d requests failed during the reload; last: %s", n, requests.Load(), lastErr)
		}
		if got := metrics(t, f).Sum("frontgate_config_reload_total", map[string]string{"config": "authentication-config", "result": "success"}); got != 1 {
			t.Errorf("frontgate_config_reload_total{result=success} = %v, want 1", got)
		}
		t.Logf("%d requests during the reload, none failed", requests.Load())
	})

	t.Run("an invalid file keeps the current configuration", func(t *testing.T) {
		writeAtomically(t, path, "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer: {url: "+env.OIDC.Issuer+", audiences: [web]}\n  claimMappings:\n    username: {claim: sub}\n")
		eventually(t, 30*time.Second, func() error {
			if got := metrics(t, f).Sum("frontgate_config_reload_total", map[string]string{"config": "authentication-config", "result": "failure"}); got != 1 {
				return fmt.Errorf("failures %v, want 1", got)
			}
			return nil
		})
		_, info := whoami(t, client, f.URL, bearer(idToken(t, cluster.ClientWeb, "bob")))
		if info == nil || info.Username != "reloaded:bob" {
			t.Errorf("after an invalid file, kube-apiserver saw %v, want reloaded:bob", info)
		}
	})
}
