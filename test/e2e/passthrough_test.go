package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestTokenPassthrough: with --token-passthrough a real ServiceAccount token
// (kubectl create token) is forwarded for kube-apiserver to authenticate, and
// kube-apiserver sees the service account — also when the client adds
// spoofed identity headers, which frontgate strips and, without its
// certificate, kube-apiserver would ignore anyway. A token the configured
// issuer recognised and rejected is never passed through, and without the
// flag the service-account token gets 401.
func TestTokenPassthrough(t *testing.T) {
	need(t)
	ns := namespace(t, "e2e-passthrough")
	admin(t, "-n", ns, "create", "serviceaccount", "robot")
	token := strings.TrimSpace(admin(t, "-n", ns, "create", "token", "robot"))
	env.RecordSecret(token)
	wantName := "system:serviceaccount:" + ns + ":robot"

	f := startFrontgate(t, cluster.FrontgateOptions{Args: append(slices.Clone(defaultArgs), "--token-passthrough")})
	client := fgClient(t, f, false)

	tests := []struct {
		name   string
		header http.Header
	}{
		{"service-account token", bearer(token)},
		{"with spoofed identity headers", http.Header{
			"Authorization": {"Bearer " + token}, "X-Remote-User": {"admin"}, "X-Remote-Group": {"system:masters"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, info := whoami(t, client, f.URL, tt.header)
			if info == nil {
				t.Fatalf("HTTP %d: %s", resp.code, resp.body)
			}
			if info.Username != wantName || slices.Contains(info.Groups, "system:masters") {
				t.Errorf("kube-apiserver saw %s, want %s without system:masters", fmtUser(*info), wantName)
			}
		})
	}
	if n := metrics(t, f).Sum("frontgate_authentication_attempts_total", map[string]string{"result": "passthrough"}); n < 2 {
		t.Errorf("passthrough attempts counted %v, want >= 2", n)
	}

	t.Run("a rejected OIDC token is not passed through", func(t *testing.T) {
		good := idToken(t, cluster.ClientWeb, "alice")
		tampered := good[:len(good)-4] + "AAAA"
		before := upstreamRequests(t, f)
		resp := send(t, client, http.MethodPost, f.URL+selfSubjectReviewPath, bearer(tampered), selfSubjectReviewBody)
		if resp.code != http.StatusUnauthorized {
			t.Errorf("HTTP %d, want 401: %s", resp.code, resp.body)
		}
		if after := upstreamRequests(t, f); after != before {
			t.Errorf("the rejected token reached kube-apiserver")
		}
	})

	t.Run("without the flag", func(t *testing.T) {
		resp := send(t, fgClient(t, fg, false), http.MethodPost, fg.URL+selfSubjectReviewPath, bearer(token), selfSubjectReviewBody)
		if resp.code != http.StatusUnauthorized {
			t.Errorf("HTTP %d, want 401: %s", resp.code, resp.body)
		}
	})
}
