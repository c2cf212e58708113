package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/frontgate/frontgate/test/cluster"
)

// header is one request header line, with its name in the letter case to
// send.
type header struct{ name, value string }

// TestSpoofedHeaders: identity headers the caller sends, in any letter case,
// hop-by-hop nominations in Connection, and other credentials smuggled next
// to the token never change the identity kube-apiserver sees (checked with a
// SelfSubjectReview through frontgate).
func TestSpoofedHeaders(t *testing.T) {
	need(t)
	alice := idToken(t, cluster.ClientWeb, "alice")
	sa := clusterAdminServiceAccountToken(t)
	want := wantUserInfo("alice")
	wsProtocol := "base64url.bearer.authorization.k8s.io." + base64.RawURLEncoding.EncodeToString([]byte(sa))

	tests := []struct {
		name    string
		headers []header
		// noAuth leaves out alice's Authorization header (headers carry it).
		noAuth bool
		// http1Only for headers HTTP/2 cannot carry (Connection).
		http1Only bool
		// may401: an ambiguous request may also be refused outright.
		may401 bool
	}{
		{name: "X-Remote-User", headers: []header{{"X-Remote-User", "system:admin"}}},
		{name: "x-remote-user lower case", headers: []header{{"x-remote-user", "system:admin"}}},
		{name: "X-REMOTE-USER upper case", headers: []header{{"X-REMOTE-USER", "system:admin"}}},
		{name: "X-Remote-Group in mixed case", headers: []header{
			{"X-Remote-Group", "system:masters"}, {"x-remote-group", "system:masters"}, {"X-REMOTE-gRoUp", "evil"}}},
		{name: "X-Remote-Uid in mixed case", headers: []header{{"X-Remote-Uid", "0"}, {"x-remote-uid", "0"}, {"X-REMOTE-UID", "0"}}},
		{name: "X-Remote-Extra- in mixed case", headers: []header{
			{"X-Remote-Extra-Example.com%2Fclient", "evil"}, {"x-remote-extra-example.com%2fclient", "evil"},
			{"X-REMOTE-EXTRA-SCOPES", "admin"}, {"x-ReMoTe-ExTrA-acme.com%2Fteam", "red"}}},
		{name: "all identity headers at once", headers: []header{
			{"X-Remote-User", "system:admin"}, {"X-Remote-Group", "system:masters"}, {"X-Remote-Uid", "0"},
			{"X-Remote-Extra-Scopes", "admin"}}},
		{name: "Authorization: second line with a cluster-admin token", headers: []header{{"Authorization", "Bearer " + sa}}, may401: true},
		{name: "Authorization: cluster-admin token first", noAuth: true, may401: true,
			headers: []header{{"Authorization", "Bearer " + sa}, {"Authorization", "Bearer " + alice}}},
		{name: "authorization lower case with a cluster-admin token", headers: []header{{"authorization", "Bearer " + sa}}, http1Only: true, may401: true},
		{name: "Proxy-Authorization with a cluster-admin token", headers: []header{{"Proxy-Authorization", "Bearer " + sa}}},
		{name: "websocket bearer protocol with a cluster-admin token", headers: []header{{"Sec-WebSocket-Protocol", wsProtocol}}},
		{name: "Connection: X-Remote-User", http1Only: true, headers: []header{{"Connection", "X-Remote-User"}}},
		{name: "Connection names every identity header", http1Only: true, headers: []header{
			{"Connection", "X-Remote-User, X-Remote-Group, X-Remote-Uid, X-Remote-Extra-Example.com%2Fclient"}}},
		{name: "connection lower case with a spoofed group", http1Only: true, headers: []header{
			{"connection", "keep-alive, x-remote-group"}, {"X-Remote-Group", "system:masters"}}},
		{name: "Connection: Authorization", http1Only: true, headers: []header{{"Connection", "Authorization"}}},
		{name: "Connection: X-Remote-User with a spoofed user", http1Only: true, headers: []header{
			{"Connection", "X-Remote-User"}, {"X-Remote-User", "system:admin"}}},
	}
	for _, tc := range tests {
		for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
			if tc.http1Only && proto == "HTTP/2" {
				continue
			}
			t.Run(tc.name+" "+proto, func(t *testing.T) {
				hdr := http.Header{}
				if !tc.noAuth {
					hdr["Authorization"] = []string{"Bearer " + alice}
				}
				for _, h := range tc.headers {
					hdr[h.name] = append(hdr[h.name], h.value)
				}
				resp, got := whoami(t, fgClient(t, fg, proto == "HTTP/1.1"), fg.URL, hdr)
				if tc.may401 && resp.code == http.StatusUnauthorized {
					status(t, resp)
					return
				}
				if got == nil {
					t.Fatalf("HTTP %d: %s", resp.code, resp.body)
				}
				if !sameUser(*got, want) {
					t.Errorf("identity changed:\n got %s\nwant %s", fmtUser(*got), fmtUser(want))
				}
			})
		}
	}
}

// clusterAdminServiceAccountToken returns a token of a service account bound
// to cluster-admin: a credential kube-apiserver itself would accept, and that
// frontgate must neither honour nor pass through.
func clusterAdminServiceAccountToken(t *testing.T) string {
	t.Helper()
	ns := "e2e-smuggle-" + randomSuffix()
	admin(t, "create", "namespace", ns)
	admin(t, "-n", ns, "create", "serviceaccount", "smuggler")
	admin(t, "create", "clusterrolebinding", ns, "--clusterrole=cluster-admin", "--serviceaccount="+ns+":smuggler")
	token := strings.TrimSpace(admin(t, "-n", ns, "create", "token", "smuggler", "--duration=10m"))
	env.RecordSecret(token)
	return token
}

// TestSpoofedUIDWithoutUIDHeader: a frontgate configured without a uid
// header (--requestheader-uid-headers "") in front of a kube-apiserver that
// reads X-Remote-Uid still strips a client's X-Remote-Uid, so the client
// cannot choose its UID.
func TestSpoofedUIDWithoutUIDHeader(t *testing.T) {
	need(t)
	f := startFrontgate(t, cluster.FrontgateOptions{Args: []string{"--requestheader-uid-headers", ""}})
	for _, name := range []string{"X-Remote-Uid", "x-remote-uid", "X_Remote_Uid"} {
		t.Run(name, func(t *testing.T) {
			hdr := bearer(idToken(t, cluster.ClientWeb, "alice"))
			hdr[name] = []string{"forged-uid"}
			resp, info := whoami(t, fgClient(t, f, true), f.URL, hdr)
			if info == nil {
				t.Fatalf("HTTP %d: %s", resp.code, resp.body)
			}
			if info.UID != "" {
				t.Errorf("kube-apiserver saw uid %q, want none", info.UID)
			}
		})
	}
}
