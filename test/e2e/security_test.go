package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"

	"github.com/frontgate/frontgate/test/cluster"
)

// The security matrix (issue 7 §2): every rule of "Incidents to never
// repeat" and every hostile input the issue lists, each proven against
// running frontgate processes. "new" tests are in this file; the others
// already existed and are not repeated here.
//
//	rule or input                                        test
//	---------------------------------------------------  ----------------------------------------------------------------
//	CVE-2021-31999: identity set after hop-by-hop,       TestSecurity_IdentitySetAfterHopByHop_CVE_2021_31999 (new: wire,
//	  Connection naming identity/Impersonate headers       upgrade, HTTP/1.0, trailers); TestSpoofedHeaders (Connection
//	                                                       cases, as kube-apiserver sees them); fail-closed guard: unit
//	                                                       proxy.TestGuardRefusesRequestsWithoutFrontgateIdentity
//	CVE-2018-1002105: refused upgrade closes both sides  TestSecurity_RefusedUpgradeClosesBothSides_CVE_2018_1002105 (new)
//	CVE-2020-8559, CVE-2022-3172: redirects              TestSecurity_RedirectsNotFollowed_CVE_2020_8559 (new)
//	Teleport #64488: CR/LF/NUL, non-UTF-8 in claims,     TestSecurity_HeaderInjectionRefused_Teleport64488 (new; claims
//	  edge whitespace                                      from a test issuer, the OpenID Provider is not needed)
//	kubectl-rexec #171: X-Remote-* only with the         TestSecurity_IdentityHeadersNeedTheProxyCertificate_KubectlRexec171
//	  proxy certificate; documented                        (new); TestCheck (allowed names, CA overlap)
//	kube-rbac-proxy #443: every configured name and      TestSecurity_IdentityHeadersAlwaysStripped_KubeRBACProxy443 (new:
//	  prefix stripped, every path, any case, "_",          every path, both protocols, passthrough); TestSpoofedHeaders;
//	  duplicate and empty headers                          TestTokenPassthrough ("with spoofed identity headers")
//	Tremolo v1.0.7: security options have effect         TestSecurity_SecurityOptionsHaveEffect (new; its doc lists
//	                                                       the options proven by other tests)
//	oauth2-proxy CVE-2026-40575 …: no bypass paths       TestSecurity_NoBypassPaths (new)
//	kube-oidc-proxy: IdP mints system:masters            TestReservedIdentity; TestSecurity_ReservedIdentityRefused (new:
//	                                                       letter case, exact allow, client certificates)
//	oversized token, header block, > 100 groups (431)    TestSecurity_OversizedRequestsRefused (new)
//	alg none, tampered, expired, wrong audience/issuer   TestRejectedTokens
//	HS256 with the public key, kid nowhere, crit,        TestSecurity_HostileTokensRefused (new); unit:
//	  nested JWT, JWE, issuer trailing slash               auth/oidc.TestAuthenticateRejections
//	slowloris headers, slow body                         TestSecurity_SlowClientsAreCutOff (new)
//	many idle connections                                TestSecurity_IdleConnectionsBounded (new)
//	TLS versions and ciphers                             TestSecurity_TLSVersionsAndCiphers (new); unit:
//	                                                       cmd/frontgate.TestServingTLSRefusesOldVersionsAndWeakSuites
//	metrics listener exposes nothing sensitive           TestSecurity_MetricsExposeNothingSensitive (new)
//	no token, key or cookie in any log line              TestMain (checkNoSecretsInLogs: every frontgate log line of the
//	                                                       suite, now also for cookies, key lines and PEM key headers)
//
// Not covered end to end: a slow body of an authenticated request (it is
// streamed to kube-apiserver, whose own timeouts apply), slow HTTP/2
// header frames, and a cap on connections (frontgate has none; the
// timeouts above bound how long each lives).

// claimIssuer is a frontgate that trusts a [cluster.TokenIssuer], for claims
// the real OpenID Provider cannot be made to issue.
type claimIssuer struct {
	ti *cluster.TokenIssuer
	f  *cluster.Frontgate
}

// claimIssuerArgs map the test issuer's claims: username ti:<sub>, groups
// from groups (no prefix, as kube-apiserver's default), uid from uid, and
// the extra example.com/team from team.
var claimIssuerArgs = []string{
	"--oidc-username-prefix", "ti:",
	"--oidc-groups-claim", "groups",
	"--oidc-uid-claim", "uid",
	"--oidc-extra-claim", "example.com/team=team",
}

// startClaimIssuer starts a token issuer and a frontgate that trusts it,
// with claimIssuerArgs plus args.
func startClaimIssuer(t *testing.T, args ...string) *claimIssuer {
	t.Helper()
	ti, err := env.StartTokenIssuer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ti.Stop)
	f := startFrontgate(t, cluster.FrontgateOptions{Issuer: ti.URL, Args: append(slices.Clone(claimIssuerArgs), args...)})
	return &claimIssuer{ti: ti, f: f}
}

// token signs a valid token for sub with the given further claims.
func (c *claimIssuer) token(t *testing.T, sub any, claims map[string]any) string {
	t.Helper()
	all := map[string]any{
		"iss": c.ti.URL, "aud": cluster.ClientWeb, "sub": sub, "uid": "u-1", "team": "red",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}
	for k, v := range claims {
		all[k] = v
	}
	tok, err := c.ti.Sign(all)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// execUpgrade asks, over HTTP/1.1 as kubectl exec does (a WebSocket
// upgrade), to exec in a pod that does not exist, and returns the status:
// kube-apiserver answers 404 only to a user allowed to exec in any pod
// (system:masters), 403 to others.
func execUpgrade(t *testing.T, f *cluster.Frontgate, token string) int {
	t.Helper()
	conn := mustDial(t, f)
	resp, _ := rawExchange(t, conn, bufio.NewReader(conn), rawRequest(http.MethodGet,
		"/api/v1/namespaces/default/pods/e2e-no-such-pod/exec?command=true&stdout=true",
		append([]string{"Authorization: Bearer " + token}, wsUpgradeLines...), ""))
	return resp.StatusCode
}

// TestSecurity_HeaderInjectionRefused_Teleport64488: an identity value that
// would not reach kube-apiserver exactly as established — CR, LF, NUL or
// another control character (header splitting), or leading or trailing
// whitespace, which HTTP/1.1 drops on the wire (" system:masters" would
// become system:masters on the upgrade path) — is refused with a 500
// Status and never forwarded, on ordinary and upgrade requests alike.
// Invalid UTF-8 in a claim cannot survive JSON decoding: it arrives as
// U+FFFD. Characters that are not line breaks in HTTP (U+2028, NEL, an
// inner tab) pass unchanged.
func TestSecurity_HeaderInjectionRefused_Teleport64488(t *testing.T) {
	need(t)
	ci := startClaimIssuer(t)
	client := fgClient(t, ci.f, false)

	tests := []struct {
		name   string
		sub    any
		claims map[string]any
		code   int    // 500, 403, or 201 (forwarded)
		msg    string // regexp the refusal's message must match
		// wantUser and wantGroups: what kube-apiserver sees when forwarded.
		wantUser   string
		wantGroups []string
	}{
		{name: "CR LF in the username", sub: "mallory\r\nX-Remote-Group: system:masters", code: 500, msg: `username contains the control character 0x0d`},
		{name: "LF in a group", sub: "mallory", claims: map[string]any{"groups": []string{"devs\nX-Remote-User: system:admin"}}, code: 500, msg: `group contains the control character 0x0a`},
		{name: "CR in the uid", sub: "mallory", claims: map[string]any{"uid": "1\r2"}, code: 500, msg: `uid contains the control character 0x0d`},
		{name: "NUL in the username", sub: "mallory\x00admin", code: 500, msg: `username contains the control character 0x00`},
		{name: "NUL in an extra value", sub: "mallory", claims: map[string]any{"team": "red\x00"}, code: 500, msg: `extra "example.com/team" value contains the control character 0x00`},
		{name: "DEL in a group", sub: "mallory", claims: map[string]any{"groups": []string{"devs\x7f"}}, code: 500, msg: `group contains the control character 0x7f`},
		{name: "ESC in the username", sub: "mallory\x1b[2J", code: 500, msg: `username contains the control character 0x1b`},
		{name: "leading space before system:masters", sub: "mallory", claims: map[string]any{"groups": []string{" system:masters"}}, code: 500, msg: `group .*whitespace`},
		{name: "leading tab before system:masters", sub: "mallory", claims: map[string]any{"groups": []string{"\tsystem:masters"}}, code: 500, msg: `group .*whitespace`},
		{name: "trailing space in the username", sub: "bob ", code: 500, msg: `username .*whitespace`},
		{name: "trailing space after system:masters", sub: "mallory", claims: map[string]any{"groups": []string{"system:masters "}}, code: 403, msg: `reserved`},
		{name: "invalid UTF-8 in the username arrives as U+FFFD", sub: json.RawMessage("\"mallory\xff\""), code: 201, wantUser: "ti:mallory\uFFFD"},
		{name: "invalid UTF-8 in a group arrives as U+FFFD", sub: "mallory", claims: map[string]any{"groups": json.RawMessage("[\"devs\xc3\"]")}, code: 201, wantUser: "ti:mallory", wantGroups: []string{"devs\uFFFD"}},
		{name: "U+2028 and NEL are not line breaks", sub: "mallory\u2028\u0085x", code: 201, wantUser: "ti:mallory\u2028\u0085x"},
		{name: "an inner tab passes", sub: "mallory", claims: map[string]any{"groups": []string{"dev\tops"}}, code: 201, wantUser: "ti:mallory", wantGroups: []string{"dev\tops"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := ci.token(t, tc.sub, tc.claims)
			before := upstreamRequests(t, ci.f)
			if tc.code != http.StatusCreated {
				// The upgrade path goes to kube-apiserver over HTTP/1.1,
				// which is where whitespace would be lost.
				if code := execUpgrade(t, ci.f, token); code != tc.code {
					verdict := ""
					if code == http.StatusNotFound {
						verdict = " — kube-apiserver authorized the exec as system:masters"
					}
					t.Errorf("exec (WebSocket upgrade, HTTP/1.1): HTTP %d, want %d%s", code, tc.code, verdict)
				}
			}
			resp, got := whoami(t, client, ci.f.URL, bearer(token))
			if resp.code != tc.code {
				t.Fatalf("HTTP %d, want %d: %s", resp.code, tc.code, resp.body)
			}
			if tc.code == http.StatusCreated {
				want := append(slices.Clone(tc.wantGroups), "system:authenticated")
				if got.Username != tc.wantUser || !slices.Equal(got.Groups, want) {
					t.Errorf("kube-apiserver saw %q in %q, want %q in %q", got.Username, got.Groups, tc.wantUser, want)
				}
				return
			}
			s := status(t, resp)
			if !regexp.MustCompile(tc.msg).MatchString(s.Message) {
				t.Errorf("Status message %q does not match %s", s.Message, tc.msg)
			}
			if after := upstreamRequests(t, ci.f); after != before {
				t.Errorf("frontgate forwarded %v request(s) with an unsafe identity", after-before)
			}
		})
	}
}

// readHeaderTimeout is frontgate's http.Server ReadHeaderTimeout (which
// also bounds the TLS handshake); slack covers a loaded machine.
const (
	readHeaderTimeout = 10 * time.Second
	timeoutSlack      = 5 * time.Second
)

// TestSecurity_SlowClientsAreCutOff: a client cannot hold a connection to
// the proxy listener open by being slow before frontgate has decided about
// it. A TLS handshake that never comes, a request that never comes and a
// header block sent a byte a second (slowloris) are cut off at
// ReadHeaderTimeout; a request frontgate refuses is answered at once and its
// connection closed, even when the body it declared never arrives (before
// the fix net/http waited, with no deadline, to discard that body before
// sending the 401).
func TestSecurity_SlowClientsAreCutOff(t *testing.T) {
	need(t)
	t.Parallel()
	f := startFrontgate(t, cluster.FrontgateOptions{Args: defaultArgs})
	addr := strings.TrimPrefix(f.URL, "https://")

	t.Run("no TLS handshake", func(t *testing.T) {
		t.Parallel()
		conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := closedWithin(conn, conn, readHeaderTimeout+timeoutSlack); err != nil {
			t.Errorf("a TCP connection without a TLS handshake: %v", err)
		}
	})
	t.Run("no request after the handshake", func(t *testing.T) {
		t.Parallel()
		conn := mustDial(t, f)
		if err := closedWithin(conn, conn, readHeaderTimeout+timeoutSlack); err != nil {
			t.Errorf("a TLS connection that sends no request: %v", err)
		}
	})
	t.Run("slowloris header block", func(t *testing.T) {
		t.Parallel()
		conn := mustDial(t, f)
		start := time.Now()
		if _, err := io.WriteString(conn, "GET /api HTTP/1.1\r\nHost: frontgate\r\n"); err != nil {
			t.Fatal(err)
		}
		closed := make(chan error, 1)
		go func() { closed <- closedWithin(conn, conn, readHeaderTimeout+timeoutSlack) }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case err := <-closed:
				if err != nil {
					t.Fatalf("a header block sent a byte a second: %v", err)
				}
				t.Logf("closed after %s", time.Since(start).Round(100*time.Millisecond))
				return
			case <-tick.C:
				_, _ = io.WriteString(conn, "X-Slow: a"[i%9:i%9+1])
			}
		}
	})
	for _, tc := range []struct{ name, lines, body string }{
		{"declared body never sent", "Content-Length: 100000", "{"},
		{"chunked body never finished", "Transfer-Encoding: chunked", "10\r\n0123456789"},
	} {
		t.Run("refused request, "+tc.name, func(t *testing.T) {
			t.Parallel()
			conn := mustDial(t, f)
			raw := "POST " + selfSubjectReviewPath + " HTTP/1.1\r\nHost: frontgate\r\nContent-Type: application/json\r\n" + tc.lines + "\r\n\r\n" + tc.body
			if _, err := io.WriteString(conn, raw); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(timeoutSlack))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer within %s to a request without credentials whose body does not arrive: %v", timeoutSlack, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("HTTP %d, want 401", resp.StatusCode)
			}
			if err := closedWithin(conn, br, timeoutSlack); err != nil {
				t.Errorf("after the 401 the connection is %v", err)
			}
		})
	}
}

// wantForwarded are the identity header lines (folded names) a frontgate
// with defaultArgs sets for alice's token of client web.
func wantForwarded() []string {
	return []string{
		"x-remote-extra-example.com%2fclient: web",
		"x-remote-group: oidc:pwd",
		"x-remote-uid: alice",
		"x-remote-user: " + mappedName("alice"),
	}
}

// checkForwarded fails unless rec received exactly one request since the
// last check, with the front-proxy certificate, exactly wantForwarded as
// identity (every name folded: any case, "_" for "-"), and no credential.
func checkForwarded(t *testing.T, rec *upstreamRecorder, what string, extraPrefixes ...string) recordedRequest {
	t.Helper()
	reqs := rec.take()
	if len(reqs) != 1 {
		t.Fatalf("%s: kube-apiserver received %d requests, want 1", what, len(reqs))
	}
	r := reqs[0]
	if r.ClientCN != "frontgate" {
		t.Errorf("%s: forwarded with client certificate CN %q, want frontgate's", what, r.ClientCN)
	}
	prefixes := append([]string{"x-remote-"}, extraPrefixes...)
	if got := identityHeaderLines(r.Header, prefixes...); !slices.Equal(got, wantForwarded()) {
		t.Errorf("%s: identity headers at kube-apiserver:\n got %q\nwant %q", what, got, wantForwarded())
	}
	// Declared trailer names may pass (ReverseProxy copies the request's
	// Trailer map before the body is read); their values never do.
	if got := identityHeaderLines(r.Trailer, prefixes...); len(got) > 0 {
		t.Errorf("%s: identity trailers reached kube-apiserver: %q", what, got)
	}
	for _, h := range []string{"authorization", "proxy-authorization", "client-cert"} {
		if got := identityHeaderLines(r.Header, h); len(got) > 0 {
			t.Errorf("%s: credential header reached kube-apiserver: %q", what, got)
		}
	}
	if p := r.Header.Get("Sec-Websocket-Protocol"); strings.Contains(strings.ToLower(p), "bearer") {
		t.Errorf("%s: bearer subprotocol reached kube-apiserver: %q", what, p)
	}
	return r
}

// TestSecurity_IdentitySetAfterHopByHop_CVE_2021_31999: a client that names
// identity headers, Authorization or Impersonate-* headers in Connection
// (on an ordinary request, on an upgrade, in HTTP/1.0) cannot make frontgate
// forward a request without its identity: kube-apiserver (here a recorder,
// to see the wire) receives exactly the identity frontgate established.
// A header named in Connection is hop-by-hop and dropped, so Impersonate-*
// named there is dropped (the request runs as the caller, never as more).
func TestSecurity_IdentitySetAfterHopByHop_CVE_2021_31999(t *testing.T) {
	need(t)
	rec := startRecorder(t, nil)
	f := frontgateBefore(t, rec)
	alice := idToken(t, cluster.ClientWeb, "alice")
	auth := "Authorization: Bearer " + alice

	tests := []struct {
		name  string
		raw   string
		check func(t *testing.T, r recordedRequest)
	}{
		{name: "Connection names every identity header", raw: rawRequest("GET", "/api", []string{auth,
			"Connection: X-Remote-User, X-Remote-Group, X-Remote-Uid, X-Remote-Extra-Example.com%2Fclient"}, "")},
		{name: "connection in lower case names a spoofed user", raw: rawRequest("GET", "/api", []string{auth,
			"connection: keep-alive, x-remote-user", "X-Remote-User: system:admin"}, "")},
		{name: "Connection names Authorization", raw: rawRequest("GET", "/api", []string{auth, "Connection: Authorization"}, "")},
		{name: "Connection names Impersonate headers", raw: rawRequest("GET", "/api", []string{auth,
			"Connection: Impersonate-User, Impersonate-Group", "Impersonate-User: bob", "Impersonate-Group: system:masters"}, ""),
			check: func(t *testing.T, r recordedRequest) {
				if got := identityHeaderLines(r.Header, "impersonate-"); len(got) > 0 {
					t.Errorf("Impersonate headers named in Connection reached kube-apiserver: %q", got)
				}
			}},
		{name: "Impersonate headers not named in Connection are kept", raw: rawRequest("GET", "/api", []string{auth,
			"Connection: X-Remote-User", "Impersonate-User: bob"}, ""),
			check: func(t *testing.T, r recordedRequest) {
				if got := r.Header.Values("Impersonate-User"); !slices.Equal(got, []string{"bob"}) {
					t.Errorf("Impersonate-User at kube-apiserver: %q, want bob (kube-apiserver authorizes it)", got)
				}
			}},
		{name: "upgrade whose Connection names identity headers", raw: rawRequest("GET", "/api/v1/namespaces/default/pods/p/exec?command=sh",
			append([]string{auth, "Connection: Upgrade, X-Remote-User, X-Remote-Group, X-Remote-Uid", "Upgrade: websocket",
				"X-Remote-Group: system:masters"}, wsUpgradeLines[2:]...), "")},
		{name: "HTTP/1.0 with Connection naming the user", raw: strings.Replace(rawRequest("GET", "/api", []string{auth,
			"Connection: keep-alive, X-Remote-User"}, ""), "HTTP/1.1", "HTTP/1.0", 1)},
		{name: "chunked request with identity trailers", raw: rawRequest("POST", "/api/v1/namespaces/default/configmaps", []string{auth,
			"Transfer-Encoding: chunked", "Trailer: X-Remote-Group, X-Remote-User", "Connection: X-Remote-User"}, "") +
			"2\r\n{}\r\n0\r\nX-Remote-Group: system:masters\r\nX-Remote-User: system:admin\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := mustDial(t, f)
			resp, body := rawExchange(t, conn, bufio.NewReader(conn), tc.raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
			}
			r := checkForwarded(t, rec, tc.name)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	// Against kube-apiserver, the same requests run as alice (not as
	// frontgate, not as system:masters): TestSpoofedHeaders, "Connection"
	// cases.
}

// TestSecurity_RefusedUpgradeClosesBothSides_CVE_2018_1002105: an upgrade
// that kube-apiserver answers with anything but 101 reaches the client
// unchanged, and frontgate closes both the client's connection and its own
// connection to kube-apiserver (which carries its certificate); every
// upgrade uses a new connection to kube-apiserver. The real kube-apiserver's
// refusal (403 for an exec alice may not do) closes the client connection
// too, and is counted as refused.
func TestSecurity_RefusedUpgradeClosesBothSides_CVE_2018_1002105(t *testing.T) {
	need(t)
	const refusal = `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`
	upstreamClosed := make(chan error, 4)
	rec := startRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			_, _ = io.WriteString(w, okStatus)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			upstreamClosed <- err
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(refusal), refusal)
		_ = brw.Flush()
		// frontgate must close this connection: a read ends with EOF.
		upstreamClosed <- closedWithin(conn, brw, 10*time.Second)
	})
	f := frontgateBefore(t, rec)
	alice := idToken(t, cluster.ClientWeb, "alice")

	var remotes []string
	for _, up := range []struct{ name, method, upgrade string }{
		{"websocket", http.MethodGet, "websocket"},
		{"spdy", http.MethodPost, "SPDY/3.1"},
	} {
		t.Run(up.name, func(t *testing.T) {
			conn := mustDial(t, f)
			br := bufio.NewReader(conn)
			resp, body := rawExchange(t, conn, br, rawRequest(up.method, "/api/v1/namespaces/default/pods/p/exec?command=sh",
				[]string{"Authorization: Bearer " + alice, "Connection: Upgrade", "Upgrade: " + up.upgrade,
					"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "X-Stream-Protocol-Version: v4.channel.k8s.io"}, ""))
			if resp.StatusCode != http.StatusForbidden || string(body) != refusal {
				t.Errorf("client got %d %q, want kube-apiserver's 403 %q unchanged", resp.StatusCode, body, refusal)
			}
			if err := closedWithin(conn, br, 10*time.Second); err != nil {
				t.Errorf("client connection after the refused upgrade: %v", err)
			}
			select {
			case err := <-upstreamClosed:
				if err != nil {
					t.Errorf("frontgate's connection to kube-apiserver after the refused upgrade: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("kube-apiserver never saw the upgrade")
			}
			r := checkForwarded(t, rec, "refused upgrade")
			if r.Proto != "HTTP/1.1" {
				t.Errorf("upgrade reached kube-apiserver over %s, want HTTP/1.1", r.Proto)
			}
			remotes = append(remotes, r.Remote)
		})
	}
	if len(remotes) == 2 && remotes[0] == remotes[1] {
		t.Errorf("both upgrades reached kube-apiserver on the same connection %s", remotes[0])
	}

	t.Run("kube-apiserver refuses an exec", func(t *testing.T) {
		before := metrics(t, fg).Sum("frontgate_upgrades_total", map[string]string{"protocol": "websocket", "result": "refused"})
		conn := mustDial(t, fg)
		br := bufio.NewReader(conn)
		resp, body := rawExchange(t, conn, br, rawRequest(http.MethodGet, "/api/v1/namespaces/default/pods/e2e-no-such-pod/exec?command=true&stdout=true",
			append([]string{"Authorization: Bearer " + alice}, wsUpgradeLines...), ""))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("HTTP %d, want kube-apiserver's 403: %s", resp.StatusCode, body)
		}
		if err := closedWithin(conn, br, 10*time.Second); err != nil {
			t.Errorf("client connection after the refused upgrade: %v", err)
		}
		if after := metrics(t, fg).Sum("frontgate_upgrades_total", map[string]string{"protocol": "websocket", "result": "refused"}); after != before+1 {
			t.Errorf("frontgate_upgrades_total{websocket,refused} went from %v to %v, want +1", before, after)
		}
	})
}

// TestSecurity_RedirectsNotFollowed_CVE_2020_8559: a redirect from
// kube-apiserver — to another host, to another path, in answer to an
// upgrade — reaches the client unchanged and frontgate never follows it:
// kube-apiserver sees one request, the redirect target none.
func TestSecurity_RedirectsNotFollowed_CVE_2020_8559(t *testing.T) {
	need(t)
	elsewhere := startRecorder(t, nil)
	rec := startRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/away"):
			http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/default/pods/p/exec"):
			http.Redirect(w, r, elsewhere.URL+"/exec", http.StatusFound)
		default:
			http.Redirect(w, r, "/api/v1/namespaces/kube-system/secrets", http.StatusTemporaryRedirect)
		}
	})
	f := frontgateBefore(t, rec)
	alice := idToken(t, cluster.ClientWeb, "alice")
	client := fgClient(t, f, false)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for _, tc := range []struct {
		path, location string
		code           int
	}{
		{"/away", elsewhere.URL + "/steal", http.StatusFound},
		{"/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/kube-system/secrets", http.StatusTemporaryRedirect},
	} {
		resp := send(t, client, http.MethodGet, f.URL+tc.path, bearer(alice), nil)
		if resp.code != tc.code || resp.header.Get("Location") != tc.location {
			t.Errorf("GET %s: HTTP %d Location %q, want %d %q passed through", tc.path, resp.code, resp.header.Get("Location"), tc.code, tc.location)
		}
		checkForwarded(t, rec, "GET "+tc.path)
	}

	conn := mustDial(t, f)
	br := bufio.NewReader(conn)
	resp, _ := rawExchange(t, conn, br, rawRequest(http.MethodGet, "/api/v1/namespaces/default/pods/p/exec?command=sh",
		append([]string{"Authorization: Bearer " + alice}, wsUpgradeLines...), ""))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != elsewhere.URL+"/exec" {
		t.Errorf("upgrade: HTTP %d Location %q, want the 302 passed through", resp.StatusCode, resp.Header.Get("Location"))
	}
	if err := closedWithin(conn, br, 10*time.Second); err != nil {
		t.Errorf("client connection after the redirected upgrade: %v", err)
	}
	checkForwarded(t, rec, "redirected upgrade")
	if got := elsewhere.take(); len(got) > 0 {
		t.Errorf("frontgate followed a redirect: the target received %d request(s), first %s %s", len(got), got[0].Method, got[0].Path)
	}
}

// spoofedIdentityLines are identity header lines a client may send: every
// name configured by extraNameArgs, in upper, lower, mixed case and with
// underscores, duplicated and empty.
func spoofedIdentityLines() []string {
	names := []string{"X-Remote-User", "X-Remote-Group", "X-Remote-Uid", "X-Remote-Extra-Scopes", "X-Remote-Extra-Example.com%2Fclient",
		"X-Fg-User", "X-Fg-Group", "X-Fg-Uid", "X-Fg-Extra-Scopes"}
	var lines []string
	for _, n := range names {
		for _, v := range []string{n, strings.ToLower(n), strings.ToUpper(n), strings.ReplaceAll(n, "-", "_"), strings.ReplaceAll(strings.ToLower(n), "-", "_"),
			strings.Replace(n, "-", "_", 1)} {
			lines = append(lines, v+": system:masters", v+": system:admin", v+":")
		}
	}
	return append(lines, "Client-Cert: :AAAA:", "Client_Cert-Chain: :AAAA:")
}

// extraNameArgs configure a second name for every identity header, which
// frontgate must strip as well.
var extraNameArgs = []string{
	"--requestheader-username-headers", "X-Remote-User,X-Fg-User",
	"--requestheader-group-headers", "X-Remote-Group,X-Fg-Group",
	"--requestheader-uid-headers", "X-Remote-Uid,X-Fg-Uid",
	"--requestheader-extra-headers-prefix", "X-Remote-Extra-,X-Fg-Extra-",
}

// TestSecurity_IdentityHeadersAlwaysStripped_KubeRBACProxy443: every
// configured identity header name and extra prefix (a second name of each
// is configured here) that a client sends — any letter case, "_" for "-",
// duplicated, empty — is removed on every path (API, discovery-like,
// health-like, traversals, watch, log, exec upgrade), over HTTP/1.1 and
// HTTP/2; kube-apiserver (a recorder, to see the wire) receives exactly
// frontgate's identity. A passed-through token is forwarded with no identity
// header at all and without the front-proxy certificate; the discovery
// document forwards nothing.
func TestSecurity_IdentityHeadersAlwaysStripped_KubeRBACProxy443(t *testing.T) {
	need(t)
	rec := startRecorder(t, nil)
	f := frontgateBefore(t, rec, append(slices.Clone(extraNameArgs), "--token-passthrough")...)
	alice := idToken(t, cluster.ClientWeb, "alice")
	spoofed := spoofedIdentityLines()
	paths := []string{
		"/", "/api", "/apis/authentication.k8s.io/v1/selfsubjectreviews", "/version", "/healthz", "/readyz", "/livez", "/metrics",
		"/openapi/v2", "/openid/v1/jwks", "/.well-known/openid-configuration", "/.well-known/frontgate/", "/.well-known/frontgate/x",
		"//api", "/api/../api/v1/secrets", "/%2e%2e/api", "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
		"/api/v1/namespaces/default/pods/p/log?follow=true", "/api/v1/namespaces/default/pods/p/exec?command=sh",
	}
	for _, path := range paths {
		t.Run("HTTP/1.1 "+path, func(t *testing.T) {
			lines := append([]string{"Authorization: Bearer " + alice}, spoofed...)
			if strings.Contains(path, "/exec") {
				lines = append(lines, wsUpgradeLines...)
				lines = append(lines, "Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.c3lzdGVtOm1hc3RlcnM")
			}
			conn := mustDial(t, f)
			resp, body := rawExchange(t, conn, bufio.NewReader(conn), rawRequest(http.MethodGet, path, lines, ""))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
			}
			checkForwarded(t, rec, "GET "+path, "x-fg-")
		})
		t.Run("HTTP/2 "+path, func(t *testing.T) {
			hdr := bearer(alice)
			for _, l := range spoofed {
				name, value, _ := strings.Cut(l, ":")
				hdr[name] = append(hdr[name], strings.TrimSpace(value))
			}
			resp := send(t, fgClient(t, f, false), http.MethodGet, f.URL+path, hdr, nil)
			if resp.code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", resp.code, resp.body)
			}
			checkForwarded(t, rec, "GET "+path, "x-fg-")
		})
	}

	t.Run("passthrough", func(t *testing.T) {
		const opaque = "sha256~not-an-oidc-token-e2e"
		record(opaque)
		conn := mustDial(t, f)
		resp, body := rawExchange(t, conn, bufio.NewReader(conn), rawRequest(http.MethodGet, "/api", append([]string{"Authorization: Bearer " + opaque}, spoofed...), ""))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
		}
		reqs := rec.take()
		if len(reqs) != 1 {
			t.Fatalf("kube-apiserver received %d requests, want 1", len(reqs))
		}
		if got := identityHeaderLines(reqs[0].Header, "x-remote-", "x-fg-", "client-cert"); len(got) > 0 {
			t.Errorf("identity headers reached kube-apiserver with a passed-through token: %q", got)
		}
		if reqs[0].ClientCN != "" {
			t.Errorf("a passed-through token was forwarded with the client certificate %q", reqs[0].ClientCN)
		}
		if got := reqs[0].Header.Get("Authorization"); got != "Bearer "+opaque {
			t.Errorf("Authorization at kube-apiserver %q, want the passed-through token", got)
		}
	})

	t.Run("discovery", func(t *testing.T) {
		conn := mustDial(t, f)
		resp, _ := rawExchange(t, conn, bufio.NewReader(conn), rawRequest(http.MethodGet, "/.well-known/frontgate", append([]string{"Authorization: Bearer " + alice}, spoofed...), ""))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("discovery: HTTP %d", resp.StatusCode)
		}
		if reqs := rec.take(); len(reqs) > 0 {
			t.Errorf("the discovery request reached kube-apiserver")
		}
	})
}

// refusedCase is a request that frontgate must answer itself with code and
// a Status message matching msg, counting the authentication failure under
// reason (when set), and never forward.
type refusedCase struct {
	name   string
	header http.Header
	code   int
	msg    string
	reason string
}

// checkRefused sends each case as a SelfSubjectReview to f and checks the
// refusal and that f forwarded nothing.
func checkRefused(t *testing.T, f *cluster.Frontgate, cases []refusedCase) {
	t.Helper()
	client := fgClient(t, f, false)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := metrics(t, f)
			resp, u := whoami(t, client, f.URL, tc.header)
			if resp.code != tc.code {
				t.Fatalf("HTTP %d (identity %v), want %d: %.300s", resp.code, u, tc.code, resp.body)
			}
			if s := status(t, resp); !regexp.MustCompile(tc.msg).MatchString(s.Message) {
				t.Errorf("Status message %q does not match %s", s.Message, tc.msg)
			}
			after := metrics(t, f)
			if d := after.Sum("frontgate_upstream_request_duration_seconds_count", nil) - before.Sum("frontgate_upstream_request_duration_seconds_count", nil); d != 0 {
				t.Errorf("frontgate forwarded %v request(s)", d)
			}
			if tc.reason != "" {
				labels := map[string]string{"result": "failure", "reason": tc.reason}
				if d := after.Sum("frontgate_authentication_attempts_total", labels) - before.Sum("frontgate_authentication_attempts_total", labels); d != 1 {
					t.Errorf("frontgate_authentication_attempts_total%v rose by %v, want 1; failures now: %v", labels, d, failureCounts(after))
				}
			}
		})
	}
}

// opSigningKey returns the OpenID Provider's first RSA signing key from its
// JWKS.
func opSigningKey(t *testing.T) *rsa.PublicKey {
	t.Helper()
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	resp := send(t, http.DefaultClient, http.MethodGet, env.OIDC.Issuer+".well-known/openid-configuration", nil, nil)
	if err := json.Unmarshal(resp.body, &disc); err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct{ Kty, N, E string }
	}
	resp = send(t, http.DefaultClient, http.MethodGet, disc.JWKSURI, nil, nil)
	if err := json.Unmarshal(resp.body, &jwks); err != nil {
		t.Fatal(err)
	}
	for _, k := range jwks.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("JWKS key: %v %v", err1, err2)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	t.Fatalf("no RSA key in the OpenID Provider's JWKS: %s", resp.body)
	return nil
}

// reheader replaces the token's header with header (signature kept).
func reheader(t *testing.T, token string, header map[string]any) string {
	parts := strings.Split(token, ".")
	return encodeSegment(t, header) + "." + parts[1] + "." + parts[2]
}

// TestSecurity_HostileTokensRefused: tokens built from a real one to get
// past a careless verifier are refused with 401, the precise reason in the
// message and the metric, and never forwarded: HS256 signed with the
// OpenID Provider's public key as the HMAC secret, a kid that names no key,
// a crit header, a nested JWT (cty: JWT, and a JWT as the payload), a JWE,
// the JWS JSON serialization, a token signed by an attacker's key that it
// carries itself (jwk, jku, x5u: frontgate fetches nothing from them), and
// an issuer differing only by its trailing slash — as a claim, and as
// frontgate's configuration, which then never becomes ready. alg none,
// tampered signatures and payloads, wrong audience and expiry are
// TestRejectedTokens.
func TestSecurity_HostileTokensRefused(t *testing.T) {
	need(t)
	f := startFrontgate(t, cluster.FrontgateOptions{Args: defaultArgs})
	alice := idToken(t, cluster.ClientWeb, "alice")
	parts := strings.Split(alice, ".")
	header := decodeSegment(t, parts[0])
	claims := decodeSegment(t, parts[1])
	withHeader := func(changes map[string]any) map[string]any {
		h := map[string]any{}
		for k, v := range header {
			h[k] = v
		}
		for k, v := range changes {
			h[k] = v
		}
		return h
	}

	// HS256 with the public key as the secret, as a verifier that takes
	// the algorithm from the token would check it.
	pub := opSigningKey(t)
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	hmacSigned := func(secret []byte) string {
		signed := encodeSegment(t, withHeader(map[string]any{"alg": "HS256"})) + "." + parts[1]
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signed))
		return record(signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
	}

	// An attacker's own key, offered by the token in every way JOSE allows.
	jku := startRecorder(t, nil)
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	selfSigned := func(h map[string]any) string { return record(signRS256(t, attacker, h, claims)) }
	attackerJWK := map[string]any{"kty": "RSA", "kid": "attacker", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(attacker.N.Bytes()), "e": "AQAB"}

	noSlash := maps.Clone(claims)
	noSlash["iss"] = strings.TrimSuffix(env.OIDC.Issuer, "/")
	padded := maps.Clone(claims)
	padded["x"] = "y"

	checkRefused(t, f, []refusedCase{
		{name: "HS256 keyed with the public key (PKIX DER)", header: bearer(hmacSigned(der)), code: 401, msg: `"HS256"`, reason: "UnsupportedAlgorithm"},
		{name: "HS256 keyed with the public key (PEM)", header: bearer(hmacSigned(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))), code: 401, msg: `"HS256"`, reason: "UnsupportedAlgorithm"},
		{name: "HS256 keyed with the modulus", header: bearer(hmacSigned(pub.N.Bytes())), code: 401, msg: `"HS256"`, reason: "UnsupportedAlgorithm"},
		{name: "kid pointing nowhere", header: bearer(record(reheader(t, alice, withHeader(map[string]any{"kid": "e2e-nowhere"})))), code: 401, msg: `key ID "e2e-nowhere"`, reason: "UnknownSigningKey"},
		{name: "no kid, signature of another token", header: bearer(record(reheader(t, alice, withHeader(map[string]any{"kid": nil})) + "x")), code: 401, msg: `(?i)signature`},
		{name: "crit header", header: bearer(record(reheader(t, alice, withHeader(map[string]any{"crit": []string{"exp"}, "exp": 1})))), code: 401, msg: `crit`, reason: "UnsupportedAlgorithm"},
		{name: "nested JWT (cty: JWT)", header: bearer(record(reheader(t, alice, withHeader(map[string]any{"cty": "JWT"})))), code: 401, msg: `nested`, reason: "MalformedToken"},
		{name: "nested JWT (a JWT as the payload)", header: bearer(record(encodeSegment(t, withHeader(map[string]any{"cty": "JWT"})) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(alice)) + "." + parts[2])), code: 401, msg: `payload is not a JSON object`, reason: "MalformedToken"},
		{name: "JWE (five parts)", header: bearer(record(encodeSegment(t, map[string]any{"alg": "RSA-OAEP", "enc": "A256GCM", "kid": header["kid"]}) +
			".a2V5.aXY." + parts[1] + ".dGFn")), code: 401, msg: `JWE`, reason: "MalformedToken"},
		{name: "JWS JSON serialization", header: bearer(record(`{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`)),
			code: 401, msg: `(?i)not a JWT`, reason: "MalformedToken"},
		{name: "attacker key in jwk, jku and x5u", header: bearer(selfSigned(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "attacker",
			"jwk": attackerJWK, "jku": jku.URL + "/jwks", "x5u": jku.URL + "/cert"})), code: 401, msg: `key ID "attacker"`, reason: "UnknownSigningKey"},
		{name: "attacker key under the provider's kid", header: bearer(selfSigned(withHeader(map[string]any{"jwk": attackerJWK}))), code: 401, msg: `(?i)signature`, reason: "InvalidSignature"},
		{name: "issuer without its trailing slash", header: bearer(record(parts[0] + "." + encodeSegment(t, noSlash) + "." + parts[2])), code: 401, msg: `is not the configured issuer`, reason: "InvalidIssuer"},
		{name: "payload changed, signature kept", header: bearer(record(parts[0] + "." + encodeSegment(t, padded) + "." + parts[2])), code: 401, msg: `(?i)signature`, reason: "InvalidSignature"},
	})
	if got := jku.take(); len(got) > 0 {
		t.Errorf("frontgate fetched %s from a URL a token named", got[0].Path)
	}

	t.Run("configured issuer without the trailing slash never becomes ready", func(t *testing.T) {
		noSlashFG := startFrontgate(t, cluster.FrontgateOptions{Issuer: strings.TrimSuffix(env.OIDC.Issuer, "/"), Args: defaultArgs, NoWait: true})
		var last string
		eventually(t, 20*time.Second, func() error {
			code, body, err := getText(ctx(t), noSlashFG.MetricsURL+"/readyz")
			last = body
			if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "issuer") {
				return fmt.Errorf("/readyz: %d %q %v", code, body, err)
			}
			return nil
		})
		t.Logf("/readyz: %s", last)
		resp, _ := whoami(t, fgClient(t, noSlashFG, false), noSlashFG.URL, bearer(alice))
		if resp.code != http.StatusServiceUnavailable && resp.code != http.StatusUnauthorized {
			t.Errorf("a token of the provider through a frontgate configured without the slash: HTTP %d, want 503 or 401: %s", resp.code, resp.body)
		}
		if n := upstreamRequests(t, noSlashFG); n != 0 {
			t.Errorf("frontgate forwarded %v requests", n)
		}
	})
}

// getText GETs url and returns the status and body.
func getText(c context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(c, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// TestSecurity_OversizedRequestsRefused: size limits answer, never
// truncate, and never forward: a token over 64 KiB is verified (and a
// tampered one refused, 401), one over frontgate's 128 KiB parse limit is
// refused unparsed (401); a header block over net/http's 1 MiB limit gets
// 431 over HTTP/1.1 and a connection error over HTTP/2; more than --max-groups (100) groups or more
// than --max-identity-header-bytes (8 KiB) of identity headers gets a 431
// Status, while exactly 100 groups pass.
func TestSecurity_OversizedRequestsRefused(t *testing.T) {
	need(t)
	f := startFrontgate(t, cluster.FrontgateOptions{Args: defaultArgs})
	alice := idToken(t, cluster.ClientWeb, "alice")
	parts := strings.Split(alice, ".")
	claims := decodeSegment(t, parts[1])
	pad := func(n int) string {
		c := maps.Clone(claims)
		c["pad"] = strings.Repeat("A", n)
		return record(parts[0] + "." + encodeSegment(t, c) + "." + parts[2])
	}
	checkRefused(t, f, []refusedCase{
		{name: "token of 107 KiB", header: bearer(pad(80 << 10)), code: 401, msg: `(?i)signature`, reason: "InvalidSignature"},
		{name: "token of 200 KiB", header: bearer(pad(200 << 10)), code: 401, msg: `longer than 131072 bytes`, reason: "MalformedToken"},
	})

	t.Run("header block over 1 MiB", func(t *testing.T) {
		big := strings.Repeat("b", 1<<20+8<<10)
		before := upstreamRequests(t, f)
		conn := mustDial(t, f)
		resp, _ := rawExchange(t, conn, bufio.NewReader(conn), rawRequest(http.MethodGet, "/api", []string{"Authorization: Bearer " + alice, "X-Big: " + big}, ""))
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("HTTP/1.1: HTTP %d, want 431", resp.StatusCode)
		}
		c, cancel := context.WithTimeout(t.Context(), commandTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(c, http.MethodGet, f.URL+"/api", nil)
		req.Header = bearer(alice)
		req.Header.Set("X-Big", big)
		if r, err := fgClient(t, f, false).Do(req); err == nil {
			r.Body.Close()
			if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("HTTP/2: HTTP %d, want 431", r.StatusCode)
			}
		} else {
			// Refused at the HTTP/2 layer (GOAWAY COMPRESSION_ERROR: the
			// header field exceeds what the decoder accepts).
			t.Logf("HTTP/2: %v", err)
		}
		if n := upstreamRequests(t, f); n != before {
			t.Errorf("frontgate forwarded %v oversized request(s)", n-before)
		}
	})

	ci := startClaimIssuer(t)
	groups := func(n, size int) map[string]any {
		g := make([]string, n)
		for i := range g {
			g[i] = fmt.Sprintf("g%0*d", size-1, i)
		}
		return map[string]any{"groups": g}
	}
	checkRefused(t, ci.f, []refusedCase{
		{name: "101 groups", header: bearer(ci.token(t, "mallory", groups(101, 4))), code: 431, msg: `101 groups, more than the limit of 100 \(--max-groups\)`},
		{name: "identity headers over 8 KiB", header: bearer(ci.token(t, "mallory", groups(40, 250))), code: 431, msg: `more than the limit of 8192 \(--max-identity-header-bytes\)`},
	})
	t.Run("100 groups pass", func(t *testing.T) {
		resp, u := whoami(t, fgClient(t, ci.f, false), ci.f.URL, bearer(ci.token(t, "mallory", groups(100, 4))))
		if u == nil || len(u.Groups) != 101 {
			t.Fatalf("HTTP %d: %.300s", resp.code, resp.body)
		}
	})
}

// TestSecurity_NoBypassPaths: on the proxy listener nothing but exactly
// /.well-known/frontgate is answered without credentials — not health or
// metrics paths, not kube-apiserver's anonymous endpoints, not path
// variants of the discovery document, not CORS preflights — and no
// client-controlled header (X-Forwarded-*, X-Original-URL, Forwarded,
// X-Real-IP, Host, User-Agent) or query string (access_token=…) changes
// that, nor, with a token, the identity. /metrics, /healthz and /readyz
// exist on the metrics listener only, which forwards nothing.
func TestSecurity_NoBypassPaths(t *testing.T) {
	need(t)
	f := startFrontgate(t, cluster.FrontgateOptions{Args: defaultArgs})
	alice := idToken(t, cluster.ClientWeb, "alice")
	secrets := "/api/v1/namespaces/kube-system/secrets"

	type req struct {
		method, target string
		lines          []string
	}
	var refused []req
	for _, p := range []string{
		"/", "/api", secrets, "/metrics", "/healthz", "/readyz", "/livez", "/version", "/debug/pprof/", "/debug/pprof/goroutine",
		"/.well-known/openid-configuration", "/openid/v1/jwks", "/.well-known/frontgate/", "/.well-known/frontgate/x",
		"/.well-known/Frontgate", "/.WELL-KNOWN/frontgate", "//.well-known/frontgate", "/.well-known/./frontgate",
		"/.well-known/frontgate/../../" + secrets[1:], "/.well-known/frontgate%2F..%2F..%2Fapi%2Fv1%2Fsecrets",
		"/.well-known/frontgate;/../../api", "/.well-known/frontgate/." + secrets,
	} {
		refused = append(refused, req{http.MethodGet, p, nil})
	}
	for _, l := range []string{
		"X-Forwarded-Uri: /.well-known/frontgate", "X-Original-URL: /.well-known/frontgate", "X-Rewrite-URL: /.well-known/frontgate",
		"X-Forwarded-Path: /.well-known/frontgate", "X-Forwarded-Prefix: /.well-known/frontgate", "X-Forwarded-For: 127.0.0.1",
		"X-Real-IP: 127.0.0.1", "Forwarded: for=127.0.0.1;proto=https;host=localhost", "X-Forwarded-Host: localhost",
		"X-Forwarded-Proto: http", "Host: localhost", "User-Agent: kube-probe/1.37", "User-Agent: Prometheus/3.0",
		"X-Remote-User: system:admin", "Impersonate-User: system:admin", "Client-Cert: :AAAA:",
	} {
		refused = append(refused, req{http.MethodGet, secrets, []string{l}})
	}
	for _, q := range []string{"?access_token=" + alice, "?token=" + alice, "?authorization=Bearer%20" + alice, "?bearer=" + alice, "?.well-known/frontgate"} {
		refused = append(refused, req{http.MethodGet, secrets + q, nil})
	}
	refused = append(refused,
		req{http.MethodOptions, secrets, []string{"Origin: https://evil.example", "Access-Control-Request-Method: GET"}},
		req{"TRACE", secrets, nil},
		req{http.MethodGet, "https://127.0.0.1/.well-known/frontgate/../../api", nil},
	)

	before := upstreamRequests(t, f)
	for _, r := range refused {
		conn := mustDial(t, f)
		raw := rawRequest(r.method, r.target, r.lines, "")
		if len(r.lines) == 1 && strings.HasPrefix(r.lines[0], "Host:") {
			raw = strings.Replace(raw, "Host: frontgate\r\n", "", 1)
		}
		resp, body := rawExchange(t, conn, bufio.NewReader(conn), raw)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"kind":"Status"`) {
			t.Errorf("%s %.60s %q: HTTP %d %.100s, want frontgate's 401 Status", r.method, r.target, r.lines, resp.StatusCode, body)
		}
		conn.Close()
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		if resp := send(t, fgClient(t, f, false), m, f.URL+"/.well-known/frontgate", nil, nil); resp.code != http.StatusOK {
			t.Errorf("%s /.well-known/frontgate: HTTP %d, want 200", m, resp.code)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if resp := send(t, fgClient(t, f, false), m, f.URL+"/.well-known/frontgate", bearer(alice), []byte("{}")); resp.code != http.StatusMethodNotAllowed {
			t.Errorf("%s /.well-known/frontgate: HTTP %d, want 405", m, resp.code)
		}
	}
	if after := upstreamRequests(t, f); after != before {
		t.Errorf("frontgate forwarded %v unauthenticated request(s)", after-before)
	}

	t.Run("with a token, headers and query do not change the identity", func(t *testing.T) {
		hdr := bearer(alice)
		for k, v := range map[string]string{"X-Forwarded-For": "10.0.0.1", "X-Forwarded-User": "system:admin", "X-Forwarded-Groups": "system:masters",
			"X-Forwarded-Email": "admin@example.com", "X-Auth-Request-User": "system:admin", "User-Agent": "kube-probe/1.37", "X-Original-URL": "/healthz"} {
			hdr.Set(k, v)
		}
		resp := send(t, fgClient(t, f, false), http.MethodPost, f.URL+selfSubjectReviewPath+"?as=system:admin&impersonate-user=system:admin&user=system:admin", hdr, selfSubjectReviewBody)
		var ssr struct {
			Status struct{ UserInfo authv1.UserInfo } `json:"status"`
		}
		if resp.code != http.StatusCreated || json.Unmarshal(resp.body, &ssr) != nil {
			t.Fatalf("HTTP %d: %s", resp.code, resp.body)
		}
		if want := wantUserInfo("alice"); !sameUser(ssr.Status.UserInfo, want) {
			t.Errorf("identity changed:\n got %s\nwant %s", fmtUser(ssr.Status.UserInfo), fmtUser(want))
		}
	})

	t.Run("the metrics listener forwards nothing", func(t *testing.T) {
		before := upstreamRequests(t, f)
		client := &http.Client{Timeout: 10 * time.Second}
		for _, p := range []string{"/", "/api", secrets, selfSubjectReviewPath, "/.well-known/frontgate", "/debug/pprof/", "/livez"} {
			req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, f.MetricsURL+p, nil)
			req.Header = bearer(alice)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("metrics listener GET %s: HTTP %d, want 404", p, resp.StatusCode)
			}
		}
		if after := upstreamRequests(t, f); after != before {
			t.Errorf("the metrics listener forwarded %v request(s)", after-before)
		}
	})
}

// rulesConfig is an AuthenticationConfiguration for the shared issuer whose
// claim rule refuses carol and whose user rule refuses alice.
func rulesConfig(issuer string) string {
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %s
    audiences: [web]
  claimValidationRules:
  - expression: claims.sub != 'carol'
    message: carol's tokens are not accepted here
  claimMappings:
    username: {claim: sub, prefix: "web:"}
  userValidationRules:
  - expression: user.username != 'web:alice'
    message: alice is suspended
`, issuer)
}

// TestSecurity_SecurityOptionsHaveEffect: every security option is seen to
// change what frontgate does, not only to parse (kube-oidc-proxy v1.0.7
// accepted --oidc-required-claim and ignored it). Options proven elsewhere:
//
//	--allow-reserved-identity              TestReservedIdentity, TestSecurity_ReservedIdentityRefused
//	--oidc-required-claim                  TestRequiredClaim
//	--oidc-username-prefix, --oidc-groups-prefix  TestClaimMapping, TestReservedIdentity
//	--token-passthrough (on and off)       TestTokenPassthrough, TestSecurity_IdentityHeadersAlwaysStripped_KubeRBACProxy443
//	--requestheader-*-headers, -prefix     TestSecurity_IdentityHeadersAlwaysStripped_KubeRBACProxy443 (every configured name stripped)
//	--client-ca-file, --client-cert-mapping  TestClientCertificateSPIFFE
//	--max-groups, --max-identity-header-bytes (defaults)  TestSecurity_OversizedRequestsRefused
//	--metrics-listen                       TestSecurity_NoBypassPaths
//	--audit-log-path                       TestAuditLog
//	--authentication-config (mappings, reload)  TestAuthenticationConfig
//	--token-cache-ttl (never past exp, failures not cached)  auth/tokencache unit tests only
//	--discovery-ca-file (certificates only)  proxy.TestDiscoveryNeverPublishesAKey (unit)
//
// Here: --max-groups and --max-identity-header-bytes set, --oidc-signing-algs,
// --trusted-proxy-cidrs (X-Forwarded-For and RFC 9440 Client-Cert, both
// ways), --upstream-ca-file, --oidc-ca-file, --client-crl-file, and the
// validation rules of --authentication-config.
func TestSecurity_SecurityOptionsHaveEffect(t *testing.T) {
	need(t)
	alice := idToken(t, cluster.ClientWeb, "alice")

	t.Run("--max-groups", func(t *testing.T) {
		ci := startClaimIssuer(t, "--max-groups", "2")
		checkRefused(t, ci.f, []refusedCase{{name: "3 groups over 2", header: bearer(ci.token(t, "mallory", map[string]any{"groups": []string{"a", "b", "c"}})), code: 431, msg: `3 groups, more than the limit of 2`}})
		if resp, u := whoami(t, fgClient(t, ci.f, false), ci.f.URL, bearer(ci.token(t, "mallory", map[string]any{"groups": []string{"a", "b"}}))); u == nil {
			t.Errorf("2 groups with --max-groups 2: HTTP %d: %s", resp.code, resp.body)
		}
	})
	t.Run("--max-identity-header-bytes", func(t *testing.T) {
		f := startFrontgate(t, cluster.FrontgateOptions{Args: append(slices.Clone(defaultArgs), "--max-identity-header-bytes", "100")})
		checkRefused(t, f, []refusedCase{{name: "alice over 100 bytes", header: bearer(alice), code: 431, msg: `more than the limit of 100 \(--max-identity-header-bytes\)`}})
	})
	t.Run("--oidc-signing-algs", func(t *testing.T) {
		f := startFrontgate(t, cluster.FrontgateOptions{Args: append(slices.Clone(defaultArgs), "--oidc-signing-algs", "ES256")})
		checkRefused(t, f, []refusedCase{{name: "RS256 token when only ES256 is accepted", header: bearer(alice), code: 401, msg: `"RS256"; accepted algorithms are ES256`, reason: "UnsupportedAlgorithm"}})
	})

	t.Run("--trusted-proxy-cidrs", func(t *testing.T) {
		dir := t.TempDir()
		caCert, caKey := newTestCA(t, "load balancer clients CA")
		writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caCert.Raw)
		leaf := issueCert(t, caCert, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "lb-user"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		clientCert := "Client-Cert: :" + base64.StdEncoding.EncodeToString(leaf.Certificate[0]) + ":"
		rec := startRecorder(t, nil)
		for _, trusted := range []bool{false, true} {
			args := []string{"--client-ca-file", "lb=" + filepath.Join(dir, "ca.crt")}
			if trusted {
				args = append(args, "--trusted-proxy-cidrs", "127.0.0.1/32")
			}
			f := frontgateBefore(t, rec, args...)
			conn := mustDial(t, f)
			br := bufio.NewReader(conn)
			resp, _ := rawExchange(t, conn, br, rawRequest(http.MethodGet, "/api", []string{"Authorization: Bearer " + alice, "X-Forwarded-For: 203.0.113.7"}, ""))
			wantXFF := "127.0.0.1"
			if trusted {
				wantXFF = "203.0.113.7, 127.0.0.1"
			}
			if reqs := rec.take(); resp.StatusCode != http.StatusOK || len(reqs) != 1 || reqs[0].Header.Get("X-Forwarded-For") != wantXFF {
				t.Errorf("trusted=%v: X-Forwarded-For at kube-apiserver: HTTP %d %v, want %q", trusted, resp.StatusCode, reqs, wantXFF)
			}
			conn = mustDial(t, f)
			resp, body := rawExchange(t, conn, bufio.NewReader(conn), rawRequest(http.MethodGet, "/api", []string{clientCert}, ""))
			reqs := rec.take()
			switch {
			case !trusted && (resp.StatusCode != http.StatusUnauthorized || len(reqs) != 0):
				t.Errorf("Client-Cert from an untrusted address: HTTP %d, %d forwarded; want 401, none: %s", resp.StatusCode, len(reqs), body)
			case trusted && (resp.StatusCode != http.StatusOK || len(reqs) != 1 || reqs[0].Header.Get("X-Remote-User") != "lb-user"):
				t.Errorf("Client-Cert from a trusted load balancer: HTTP %d, %v; want lb-user forwarded: %s", resp.StatusCode, reqs, body)
			}
		}
	})

	t.Run("--upstream-ca-file", func(t *testing.T) {
		f := startFrontgate(t, cluster.FrontgateOptions{NoWait: true, Args: append(slices.Clone(defaultArgs),
			"--upstream-ca-file", filepath.Join(env.FrontgatePKIDir, "serving-ca.crt"))})
		var resp response
		eventually(t, 30*time.Second, func() error {
			resp, _ = whoami(t, fgClient(t, f, false), f.URL, bearer(alice))
			if resp.code == http.StatusServiceUnavailable {
				return fmt.Errorf("HTTP %d", resp.code)
			}
			return nil
		})
		if resp.code != http.StatusBadGateway || !strings.Contains(string(resp.body), "certificate") {
			t.Errorf("kube-apiserver's certificate not from --upstream-ca-file: HTTP %d %s, want 502 naming the certificate", resp.code, resp.body)
		}
	})

	t.Run("--oidc-ca-file", func(t *testing.T) {
		is := startHTTPSIssuer(t)
		good := startFrontgate(t, cluster.FrontgateOptions{Issuer: is.URL, Args: []string{"--oidc-ca-file", is.CAFile}})
		if resp, u := whoami(t, fgClient(t, good, false), good.URL, bearer(is.token(t, "erin"))); u == nil || u.Username != is.URL+"#erin" {
			t.Fatalf("control: the https issuer's token with its CA: HTTP %d %s", resp.code, resp.body)
		}
		wrong := startFrontgate(t, cluster.FrontgateOptions{Issuer: is.URL, NoWait: true, Args: []string{"--oidc-ca-file", filepath.Join(env.FrontgatePKIDir, "serving-ca.crt")}})
		eventually(t, 20*time.Second, func() error {
			code, body, err := getText(ctx(t), wrong.MetricsURL+"/readyz")
			if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "certificate") {
				return fmt.Errorf("/readyz: %d %q %v", code, body, err)
			}
			return nil
		})
		if resp, _ := whoami(t, fgClient(t, wrong, false), wrong.URL, bearer(is.token(t, "erin"))); resp.code != http.StatusServiceUnavailable {
			t.Errorf("issuer certificate not from --oidc-ca-file: HTTP %d %s, want 503", resp.code, resp.body)
		}
		if n := upstreamRequests(t, wrong); n != 0 {
			t.Errorf("forwarded %v request(s)", n)
		}
	})

	t.Run("--client-crl-file", func(t *testing.T) {
		dir := t.TempDir()
		caCert, caKey := newTestCA(t, "revoking CA")
		writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caCert.Raw)
		revoked := issueCert(t, caCert, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "revoked-user"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		kept := issueCert(t, caCert, caKey, &x509.Certificate{Subject: pkix.Name{CommonName: "kept-user"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: revoked.Leaf.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)}},
		}, caCert, caKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, "ca.crl"), "X509 CRL", crl)
		f := startFrontgate(t, cluster.FrontgateOptions{Args: []string{"--client-ca-file", filepath.Join(dir, "ca.crt"), "--client-crl-file", filepath.Join(dir, "ca.crl")}})
		for _, tc := range []struct {
			cert *tls.Certificate
			code int
		}{{kept, http.StatusCreated}, {revoked, http.StatusUnauthorized}} {
			client := fgClient(t, f, false)
			client.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			resp, u := whoami(t, client, f.URL, nil)
			if resp.code != tc.code {
				t.Errorf("%s: HTTP %d, want %d: %s", tc.cert.Leaf.Subject.CommonName, resp.code, tc.code, resp.body)
			} else if u != nil && u.Username != "kept-user" {
				t.Errorf("kube-apiserver saw %s", fmtUser(*u))
			} else if u == nil && !strings.Contains(string(resp.body), "revoked") {
				t.Errorf("the 401 does not say the certificate is revoked: %s", resp.body)
			}
		}
	})

	t.Run("--authentication-config validation rules", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rules.yaml")
		writeAtomically(t, path, rulesConfig(env.OIDC.Issuer))
		f := startFrontgate(t, cluster.FrontgateOptions{AuthenticationConfig: path})
		checkRefused(t, f, []refusedCase{
			{name: "userValidationRules", header: bearer(alice), code: 401, msg: `alice is suspended`},
			{name: "claimValidationRules", header: bearer(idToken(t, cluster.ClientWeb, "carol")), code: 401, msg: `carol's tokens are not accepted here`},
		})
		if resp, u := whoami(t, fgClient(t, f, false), f.URL, bearer(idToken(t, cluster.ClientWeb, "bob"))); u == nil || u.Username != "web:bob" {
			t.Errorf("control: bob passes both rules: HTTP %d %s", resp.code, resp.body)
		}
	})
}

// TestSecurity_TLSVersionsAndCiphers: the proxy listener refuses TLS 1.0
// and 1.1, accepts 1.2 and 1.3, and in TLS 1.2 agrees only to forward-secret
// AEAD cipher suites (ECDHE with AES-GCM or ChaCha20-Poly1305): no RC4,
// 3DES, CBC or RSA key exchange, whatever the client offers.
func TestSecurity_TLSVersionsAndCiphers(t *testing.T) {
	need(t)
	for _, v := range []struct {
		version uint16
		ok      bool
	}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		conn, err := dialFrontgate(t, fg, func(c *tls.Config) { c.MinVersion, c.MaxVersion = v.version, v.version })
		switch {
		case v.ok && err != nil:
			t.Errorf("%s refused: %v", tls.VersionName(v.version), err)
		case v.ok && conn.ConnectionState().Version != v.version:
			t.Errorf("%s offered, %s negotiated", tls.VersionName(v.version), tls.VersionName(conn.ConnectionState().Version))
		case !v.ok && err == nil:
			t.Errorf("%s accepted", tls.VersionName(v.version))
		}
		if conn != nil {
			conn.Close()
		}
	}

	var accepted []string
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			continue
		}
		conn, err := dialFrontgate(t, fg, func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{s.ID}
		})
		if err != nil {
			continue
		}
		conn.Close()
		accepted = append(accepted, s.Name)
		aead := strings.Contains(s.Name, "_GCM_") || strings.Contains(s.Name, "CHACHA20_POLY1305")
		if s.Insecure || !strings.HasPrefix(s.Name, "TLS_ECDHE_") || !aead {
			t.Errorf("TLS 1.2 cipher suite %s accepted; want only ECDHE with an AEAD", s.Name)
		}
	}
	t.Logf("TLS 1.2 cipher suites accepted: %s", strings.Join(accepted, ", "))
	if len(accepted) == 0 {
		t.Error("no TLS 1.2 cipher suite accepted")
	}
}

// idleTimeout is frontgate's http.Server IdleTimeout.
const idleTimeout = 120 * time.Second

// TestSecurity_IdleConnectionsBounded: many connections that do nothing do
// not stop frontgate from serving, and each is closed by a timeout —
// before the TLS handshake or the first request at ReadHeaderTimeout,
// after a request (HTTP/1.1 keep-alive) or without one (HTTP/2) at
// IdleTimeout — after
// which frontgate's open file descriptors are back where they were.
// frontgate has no cap on the number of connections (nor has
// kube-apiserver); these timeouts are what bounds them.
func TestSecurity_IdleConnectionsBounded(t *testing.T) {
	need(t)
	t.Parallel()
	f := startFrontgate(t, cluster.FrontgateOptions{Args: defaultArgs})
	alice := idToken(t, cluster.ClientWeb, "alice")
	openFDs := func() float64 { return metrics(t, f).Sum("process_open_fds", nil) }
	baseline := openFDs()

	const n = 200
	var conns []net.Conn
	for i := range n {
		if i%2 == 0 {
			c, err := net.DialTimeout("tcp", strings.TrimPrefix(f.URL, "https://"), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			continue
		}
		conns = append(conns, mustDial(t, f))
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	opened := time.Now()
	t.Logf("open descriptors: %v with %d idle connections, %v before", openFDs(), n, baseline)
	start := time.Now()
	if resp, u := whoami(t, fgClient(t, f, false), f.URL, bearer(alice)); u == nil {
		t.Fatalf("with %d idle connections open: HTTP %d %s", n, resp.code, resp.body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a request took %s while %d idle connections were open", d, n)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stillOpen := 0
	for _, c := range conns {
		wg.Go(func() {
			if err := closedWithin(c, c, readHeaderTimeout+timeoutSlack-time.Since(opened)); err != nil {
				mu.Lock()
				stillOpen++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if stillOpen > 0 {
		t.Errorf("%d of %d idle connections still open after %s", stillOpen, n, readHeaderTimeout+timeoutSlack)
	}

	// Connections kept alive after a request, over both protocols.
	h1 := mustDial(t, f)
	br := bufio.NewReader(h1)
	if resp, _ := rawExchange(t, h1, br, rawRequest(http.MethodGet, "/api", []string{"Authorization: Bearer " + alice}, "")); resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP/1.1 request: %d", resp.StatusCode)
	}
	h2, err := dialFrontgate(t, f, func(c *tls.Config) { c.NextProtos = []string{"h2"} })
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	// The HTTP/2 preface and an empty SETTINGS frame, then nothing.
	if _, err := io.WriteString(h2, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	idleSince := time.Now()
	var idle sync.WaitGroup
	for name, r := range map[string]io.Reader{"HTTP/1.1": br, "HTTP/2": h2} {
		conn := net.Conn(h1)
		if name == "HTTP/2" {
			conn = h2
		}
		idle.Go(func() {
			if err := closedWithin(conn, r, idleTimeout+timeoutSlack); err != nil {
				t.Errorf("%s connection idle after a request: %v", name, err)
			} else {
				t.Logf("%s idle connection closed after %s", name, time.Since(idleSince).Round(time.Second))
			}
		})
	}
	idle.Wait()
	eventually(t, 10*time.Second, func() error {
		if open := openFDs(); open > baseline+5 {
			return fmt.Errorf("frontgate has %v open descriptors, %v before the idle connections", open, baseline)
		}
		return nil
	})
}

// TestSecurity_ReservedIdentityRefused adds to TestReservedIdentity (system:
// usernames and groups from claims and prefixes, refused with 403 unless
// --allow-reserved-identity names them): the refusal ignores letter case,
// --allow-reserved-identity allows only the exact name, and a client
// certificate (CN, O) is refused like a token. Nothing is forwarded.
func TestSecurity_ReservedIdentityRefused(t *testing.T) {
	need(t)
	ci := startClaimIssuer(t, "--oidc-username-prefix", "-", "--allow-reserved-identity", "system:masters")
	checkRefused(t, ci.f, []refusedCase{
		{name: "SYSTEM:admin username", header: bearer(ci.token(t, "SYSTEM:admin", nil)), code: 403, msg: `username "SYSTEM:admin" is reserved`, reason: "ReservedIdentity"},
		{name: "System:Masters group, system:masters allowed", header: bearer(ci.token(t, "mallory", map[string]any{"groups": []string{"System:Masters"}})), code: 403, msg: `group "System:Masters" is reserved`, reason: "ReservedIdentity"},
		{name: "system:nodes group", header: bearer(ci.token(t, "mallory", map[string]any{"groups": []string{"system:nodes"}})), code: 403, msg: `group "system:nodes" is reserved`, reason: "ReservedIdentity"},
	})

	dir := t.TempDir()
	caCert, caKey := newTestCA(t, "reserved names CA")
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caCert.Raw)
	f := startFrontgate(t, cluster.FrontgateOptions{Args: []string{"--client-ca-file", filepath.Join(dir, "ca.crt")}})
	for _, tc := range []struct {
		name    string
		subject pkix.Name
		msg     string
	}{
		{"certificate O=system:masters", pkix.Name{CommonName: "mallory", Organization: []string{"system:masters"}}, `group "system:masters" is reserved`},
		{"certificate CN=system:kube-controller-manager", pkix.Name{CommonName: "system:kube-controller-manager"}, `username "system:kube-controller-manager" is reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := issueCert(t, caCert, caKey, &x509.Certificate{Subject: tc.subject, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
			client := fgClient(t, f, false)
			client.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
			resp, u := whoami(t, client, f.URL, nil)
			if resp.code != http.StatusForbidden {
				t.Fatalf("HTTP %d (identity %v), want 403: %s", resp.code, u, resp.body)
			}
			if s := status(t, resp); !strings.Contains(s.Message, tc.msg) {
				t.Errorf("Status message %q, want %s", s.Message, tc.msg)
			}
		})
	}
	if n := upstreamRequests(t, f); n != 0 {
		t.Errorf("frontgate forwarded %v request(s) with a reserved identity", n)
	}
}

// TestSecurity_IdentityHeadersNeedTheProxyCertificate_KubectlRexec171: the
// cluster frontgate's flags configure (frontgate flags, frontgate pki init)
// believes X-Remote-* only from frontgate's front-proxy certificate: not
// from a client without a certificate, not from a certificate of the
// cluster's client CA — not even one whose CN is frontgate's. frontgate
// itself believes no X-Remote-* from anyone (TestSpoofedHeaders), `frontgate
// check` verifies allowed names and CA separation (TestCheck), and the README
// says that the proxy certificate and key are as strong as cluster-admin.
func TestSecurity_IdentityHeadersNeedTheProxyCertificate_KubectlRexec171(t *testing.T) {
	need(t)
	spoof := http.Header{"X-Remote-User": {"system:admin"}, "X-Remote-Group": {"system:masters"}}
	for _, who := range []string{"mallory", "frontgate"} {
		client, err := env.DirectHTTPClient(who)
		if err != nil {
			t.Fatal(err)
		}
		resp, u := whoami(t, client, env.APIServerURL, spoof)
		if u == nil || u.Username != who || slices.Contains(u.Groups, "system:masters") {
			t.Errorf("client certificate CN=%s from the cluster CA with X-Remote-* headers: HTTP %d, kube-apiserver saw %v, want %s", who, resp.code, u, who)
		}
	}
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(env.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	anonymous := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, u := whoami(t, anonymous, env.APIServerURL, spoof); u != nil && (u.Username == "system:admin" || slices.Contains(u.Groups, "system:masters")) {
		t.Errorf("no client certificate, X-Remote-* headers: HTTP %d, kube-apiserver saw %s", resp.code, fmtUser(*u))
	}
	root, err := cluster.ModuleRoot(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), "proxy client key is as powerful as cluster-admin") {
		t.Error("README.md no longer says that the proxy client key is as powerful as cluster-admin")
	}
}

// TestSecurity_MetricsExposeNothingSensitive: after frontgate has served
// valid and hostile tokens, a token in a query string, cookies, spoofed
// identity headers, client certificates and unique paths, its /metrics holds
// no token or part of one, no cookie, no private key material, no user or
// group name and no path or query: every label comes from a bounded set.
// (User names are not secrets, but per-user labels would be unbounded; they
// belong in the access and audit logs.) The same requests' log lines are
// checked by TestMain, with every other log line of the suite.
func TestSecurity_MetricsExposeNothingSensitive(t *testing.T) {
	need(t)
	f := startFrontgate(t, cluster.FrontgateOptions{Args: append(slices.Clone(defaultArgs), "--token-passthrough")})
	alice := idToken(t, cluster.ClientWeb, "alice")
	cookie := record("e2e-cookie-" + randomSuffix() + randomSuffix() + randomSuffix())
	marker := "e2e-marker-" + randomSuffix()
	client := fgClient(t, f, false)
	hdr := bearer(alice)
	hdr.Set("Cookie", "session="+cookie)
	hdr.Set("X-Remote-User", "spoofed-"+marker)
	send(t, client, http.MethodGet, f.URL+"/api/v1/namespaces/"+marker+"/configmaps?labelSelector="+marker, hdr, nil)
	send(t, client, http.MethodGet, f.URL+"/api/v1/namespaces/"+marker+"/configmaps?access_token="+alice, http.Header{"Cookie": {"session=" + cookie}}, nil)
	send(t, client, http.MethodGet, f.URL+"/api", bearer(tamperSignature(alice)), nil)
	send(t, client, http.MethodGet, f.URL+"/api", bearer(record("sha256~passthrough-"+marker)), nil)
	whoami(t, client, f.URL, bearer(alice))

	code, text, err := getText(ctx(t), f.MetricsURL+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	var leaks []string
	check := func(what string, needles ...string) {
		for _, n := range needles {
			if n != "" && strings.Contains(text, n) {
				leaks = append(leaks, what)
				return
			}
		}
	}
	for _, s := range env.Secrets() {
		check("a token or cookie", secretNeedles(s)...)
	}
	check("private key material", append(keyMaterial(), privateKeyMarker)...)
	check("a user name", "alice", mappedName("alice"), "oidc:pwd", "spoofed-")
	check("a path or query", marker, "/api/v1", "labelSelector")
	if len(leaks) > 0 {
		t.Errorf("/metrics contains %s", strings.Join(slices.Compact(leaks), ", "))
	}
	m, err := cluster.ParseMetrics([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]map[string]bool{}
	for _, s := range m {
		if !strings.HasPrefix(s.Name, "frontgate_") {
			continue
		}
		for k, v := range s.Labels {
			if values[k] == nil {
				values[k] = map[string]bool{}
			}
			values[k][v] = true
		}
	}
	for k, vs := range values {
		t.Logf("label %s: %d values", k, len(vs))
		if len(vs) > 40 {
			t.Errorf("label %s has %d values: unbounded?", k, len(vs))
		}
	}
}
