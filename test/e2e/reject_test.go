package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestRejectedTokens: requests without a valid token for this frontgate get a
// 401 Status whose message says why, the failure is counted under the right
// reason, and nothing reaches kube-apiserver.
func TestRejectedTokens(t *testing.T) {
	need(t)
	alice := idToken(t, cluster.ClientWeb, "alice")

	// A second, independent OpenID Provider: same software, other issuer
	// URL, other signing key.
	other, err := env.StartOIDCProvider(ctx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Stop)
	otherToken, err := other.IDToken(ctx(t), cluster.ClientWeb, user(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}

	// An expired token can only come from an issuer that signs what it is
	// told; the real OpenID Provider issues 1-hour tokens. A frontgate that
	// trusts this issuer checks the expiry.
	ti, err := env.StartTokenIssuer()
	if err != nil {
		t.Fatal(err)
	}
	mint := func(exp time.Time) string {
		tok, err := ti.Sign(map[string]any{
			"iss": ti.URL, "sub": "alice", "aud": cluster.ClientWeb,
			"iat": exp.Add(-time.Hour).Unix(), "exp": exp.Unix(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	expiredAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	expired := mint(expiredAt)
	fgMinted := startFrontgate(t, cluster.FrontgateOptions{Issuer: ti.URL})
	// Control: the same issuer's unexpired token is accepted.
	if _, u := whoami(t, fgClient(t, fgMinted, false), fgMinted.URL, bearer(mint(time.Now().Add(time.Hour)))); u == nil || u.Username != ti.URL+"#alice" {
		t.Fatalf("control: an unexpired token of the test issuer was not accepted: %v", u)
	}

	sa := clusterAdminServiceAccountToken(t)

	// Control: the counters the cases rely on move for an accepted request,
	// so "unchanged" below means something.
	before := metrics(t, fg)
	if _, u := whoami(t, fgClient(t, fg, false), fg.URL, bearer(alice)); u == nil {
		t.Fatal("control: alice's valid token was not accepted")
	}
	after := metrics(t, fg)
	if d := after.Sum("frontgate_upstream_request_duration_seconds_count", nil) - before.Sum("frontgate_upstream_request_duration_seconds_count", nil); d != 1 {
		t.Fatalf("control: frontgate_upstream_request_duration_seconds_count rose by %v for one forwarded request, want 1", d)
	}
	if d := after.Sum("frontgate_authentication_attempts_total", map[string]string{"result": "success"}) -
		before.Sum("frontgate_authentication_attempts_total", map[string]string{"result": "success"}); d != 1 {
		t.Fatalf("control: frontgate_authentication_attempts_total{result=success} rose by %v, want 1", d)
	}

	tests := []struct {
		name     string
		f        *cluster.Frontgate
		header   http.Header
		message  string // regexp the Status message must match
		result   string // frontgate_authentication_attempts_total labels
		reason   string
		hideInfo string // must not appear in the message
	}{
		{name: "no token", header: http.Header{}, message: `(?i)token|credential|authorization`, result: "no_credentials"},
		{name: "garbage token", header: bearer("not-a-jwt-at-all"), message: `(?i)malformed|not a (valid )?JWT|parse`, result: "failure", reason: "MalformedToken"},
		{name: "wrong audience", header: bearer(idToken(t, cluster.ClientAPI, "alice")), message: `(?i)audience`, result: "failure", reason: "InvalidAudience"},
		{name: "wrong issuer", header: bearer(otherToken), message: `(?i)issuer`, result: "failure", reason: "InvalidIssuer", hideInfo: otherToken},
		{name: "tampered signature", header: bearer(record(tamperSignature(alice))), message: `(?i)signature`, result: "failure", reason: "InvalidSignature"},
		{name: "tampered payload", header: bearer(record(tamperPayload(t, alice))), message: `(?i)signature`, result: "failure", reason: "InvalidSignature"},
		{name: "alg none", header: bearer(record(algNone(t, alice))), message: `(?i)\bnone\b`, result: "failure", reason: "UnsupportedAlgorithm"},
		{name: "service account token is not passed through", header: bearer(sa), message: `(?i)issuer|token`, result: "failure", hideInfo: sa},
		{name: "expired", f: fgMinted, header: bearer(expired), message: `(?i)expired`, result: "failure", reason: "TokenExpired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			if f == nil {
				f = fg
			}
			before := metrics(t, f)
			resp, u := whoami(t, fgClient(t, f, false), f.URL, tc.header)
			if resp.code != http.StatusUnauthorized {
				t.Fatalf("HTTP %d (identity %v), want 401: %s", resp.code, u, resp.body)
			}
			s := status(t, resp)
			t.Logf("401 message: %s", s.Message)
			if s.Reason != metav1.StatusReasonUnauthorized {
				t.Errorf("Status reason %q, want Unauthorized", s.Reason)
			}
			if !regexp.MustCompile(tc.message).MatchString(s.Message) {
				t.Errorf("Status message %q does not match %s", s.Message, tc.message)
			}
			if tc.name == "expired" && !strings.Contains(s.Message, expiredAt.UTC().Format(time.RFC3339)) {
				t.Errorf("Status message %q does not say when the token expired (%s)", s.Message, expiredAt.UTC().Format(time.RFC3339))
			}
			for _, secret := range append(secretNeedles(bearerToken(tc.header)), secretNeedles(tc.hideInfo)...) {
				if secret != "" && strings.Contains(string(resp.body), secret) {
					t.Errorf("the 401 body contains the token")
				}
			}
			after := metrics(t, f)
			if d := after.Sum("frontgate_upstream_request_duration_seconds_count", nil) - before.Sum("frontgate_upstream_request_duration_seconds_count", nil); d != 0 {
				t.Errorf("frontgate forwarded %v request(s) to kube-apiserver for a rejected token", d)
			}
			labels := map[string]string{"result": tc.result}
			if tc.reason != "" {
				labels["reason"] = tc.reason
			}
			name := "frontgate_authentication_attempts_total"
			if d := after.Sum(name, labels) - before.Sum(name, labels); d < 1 {
				t.Errorf("%s%v did not increase; failures counted now: %v", name, labels, failureCounts(after))
			}
		})
	}

	t.Run("kubectl reports a 401", func(t *testing.T) {
		_, errOut, err := kubectl(t, kubeconfigFor(t, fg, record(tamperSignature(alice))), "get", "configmaps")
		if err == nil || !strings.Contains(errOut, "You must be logged in to the server") {
			t.Errorf("want kubectl to fail as unauthenticated, got err=%v: %s", err, errOut)
		}
	})
}

// failureCounts lists the non-zero authentication counters, for messages.
func failureCounts(m cluster.Metrics) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.Name == "frontgate_authentication_attempts_total" && s.Value != 0 {
			out[s.Labels["result"]+"/"+s.Labels["reason"]] = s.Value
		}
	}
	return out
}

// bearerToken returns the token of an Authorization: Bearer header.
func bearerToken(h http.Header) string {
	return strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
}

// record registers a derived token for the log check and returns it.
func record(token string) string {
	if env != nil {
		env.RecordSecret(token)
	}
	return token
}

// tamperSignature flips bits in the middle of the token's signature.
func tamperSignature(token string) string {
	parts := strings.Split(token, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0xff
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

// tamperPayload changes the sub claim and keeps the original signature.
func tamperPayload(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	claims := decodeSegment(t, parts[1])
	claims["sub"] = "system:admin"
	parts[1] = encodeSegment(t, claims)
	return strings.Join(parts, ".")
}

// algNone re-encodes the token's header with alg none and drops the
// signature.
func algNone(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	header := decodeSegment(t, parts[0])
	header["alg"] = "none"
	return encodeSegment(t, header) + "." + parts[1] + "."
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeSegment(t *testing.T, m map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}
