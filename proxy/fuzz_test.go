package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
)

// fuzzIdentity is the identity frontgate establishes in FuzzSanitize,
// whatever the request carries.
func fuzzIdentity() *auth.Identity {
	return &auth.Identity{
		Name: "alice@example.com", UID: "u-1", Groups: []string{"devs", "ops"},
		Extra: map[string][]string{"acme.com/team": {"blue"}, "scopes": {"openid", "email"}}, Source: "fuzz",
	}
}

// fuzzCredentialHeaders are the CredentialHeaders of every FuzzSanitize
// configuration.
var fuzzCredentialHeaders = []string{"Client-Cert", "Client-Cert-Chain"}

// fuzzHeaderNames are the header name configurations FuzzSanitize picks
// from: kubeadm's defaults; several names per list, with an extra prefix
// that has an 's' (which Unicode case folding matches with 'ſ'); and no uid
// header at all (kube-apiserver before 1.32).
var fuzzHeaderNames = []HeaderNames{
	DefaultHeaderNames(),
	{
		Username:    []string{"X-Forwarded-User", "X-Alt-User"},
		Group:       []string{"X-Forwarded-Groups", "X-Alt-Group"},
		UID:         []string{"X-Forwarded-Uid"},
		ExtraPrefix: []string{"X-Auth-Request-Extra-", "X-Alt-Extra-"},
	},
	{Username: []string{"X-Remote-User"}, Group: []string{"X-Remote-Group"}, ExtraPrefix: []string{"X-Remote-Extra-"}},
}

// FuzzSanitize checks that no header a client sends — any name, in any
// letter case, with '_' for '-', any value, control characters included —
// changes the identity kube-apiserver decodes: after Sanitize and the
// identity headers frontgate sets, k8s.io/apiserver's requestheader
// authenticator sees exactly frontgate's identity, no header with an
// identity or credential name carries anything but what frontgate set, and
// no bearer-token WebSocket subprotocol is left. It checks the same of what
// the whole handler (authentication, httputil.ReverseProxy, the transport
// guard) sends upstream.
//
// raw holds one header per line, "Name: value"; a line without a colon is a
// header named by the line whose value is value (which may hold CR, LF and
// NUL). Each name is also sent in lower case, upper case, canonical form and
// with '-' and '_' swapped. mode picks the header names configuration.
func FuzzSanitize(f *testing.F) {
	f.Add("X-Remote-User: mallory\nX-Remote-Group: system:masters\nX-Remote-Uid: 0\nX-Remote-Extra-Scopes: all\nAuthorization: Bearer stolen", "", uint8(0))
	f.Add("x_remote_user: mallory\nX_REMOTE_GROUP: system:masters\nx-remote-extra-acme.com%2fteam: red\nX_Remote_Extra_Scopes: admin", "", uint8(0))
	f.Add("Connection: X-Remote-User, Authorization\nX-Remote-User\nImpersonate-User: bob\nImpersonate-Group: devs", "mallory\r\nX-Remote-Group: system:masters", uint8(0))
	f.Add("Sec-WebSocket-Protocol: v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.c2VjcmV0\nsec-websocket-protocol: BASE64URL.BEARER.AUTHORIZATION.K8S.IO.eA\nConnection: Upgrade\nUpgrade: websocket", "", uint8(0))
	f.Add("X-Alt-User: mallory\nx_forwarded_uid: 0\nX-Auth-Request-Extra-Scopes: all\nx-alt-extra-team: red\nX-Remote-User: not configured, kept", "", uint8(1))
	f.Add("X-Auth-Reque\u017ft-Extra-Scopes: all\nX-Auth-Request-Extra\x00: x\nX-Forwarded-User ", "mallory\x00", uint8(1))
	f.Add("X-Remote-Uid: 0\nClient-Cert: :AAAA:\nclient_cert_chain: :AAAA:\nCLIENT-CERT: :AAAA:", "", uint8(2))

	handlers := make([]*Handler, len(fuzzHeaderNames))
	var (
		mu   sync.Mutex
		sent *http.Request
	)
	upstream := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		sent = r
		mu.Unlock()
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
	})
	for i, names := range fuzzHeaderNames {
		h, err := New(Config{
			Upstream:          &url.URL{Scheme: "https", Host: "kube-apiserver:6443"},
			Authenticator:     auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, bool, error) { return fuzzIdentity(), true, nil }),
			HeaderNames:       names,
			CredentialHeaders: fuzzCredentialHeaders,
			Limits:            DefaultLimits(),
			Transports:        Transports{Ordinary: upstream, Upgrade: upstream},
			Logger:            slog.New(slog.DiscardHandler),
			Metrics:           NewMetrics(prometheus.NewRegistry()),
		})
		if err != nil {
			f.Fatal(err)
		}
		handlers[i] = h
	}

	f.Fuzz(func(t *testing.T, raw, value string, mode uint8) {
		names := fuzzHeaderNames[int(mode)%len(fuzzHeaderNames)]
		client := fuzzClientHeaders(raw, value)
		id := fuzzIdentity()
		set, err := IdentityHeaders(id, names, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}

		// Sanitize, then the identity headers, as Handler.rewrite does.
		h := client.Clone()
		Sanitize(h, names, fuzzCredentialHeaders...)
		for k, v := range set {
			h[k] = v
		}
		checkForwardedIdentity(t, "Sanitize", names, id, set, h)

		// The whole handler, with an in-memory kube-apiserver.
		req := httptest.NewRequest(http.MethodGet, "https://frontgate.example/api/v1/namespaces", nil)
		req.Header = client.Clone()
		mu.Lock()
		sent = nil
		mu.Unlock()
		rec := httptest.NewRecorder()
		handlers[int(mode)%len(handlers)].ServeHTTP(rec, req)
		mu.Lock()
		out := sent
		mu.Unlock()
		switch {
		case rec.Code == http.StatusInternalServerError:
			// The transport guard caught identity headers that Sanitize
			// let through: fail-closed, but Sanitize is wrong.
			t.Fatalf("the handler refused its own request (500): %s", rec.Body)
		case out == nil && rec.Code == http.StatusOK:
			t.Fatal("200 without a request upstream")
		case out != nil:
			checkForwardedIdentity(t, "the handler", names, id, set, out.Header)
		}
	})
}

// checkForwardedIdentity fails t unless forwarded, the headers of a request
// to kube-apiserver, carries exactly frontgate's identity id (whose headers
// are set) and no client credential.
func checkForwardedIdentity(t *testing.T, what string, names HeaderNames, id *auth.Identity, set, forwarded http.Header) {
	t.Helper()
	for k, vs := range forwarded {
		if fuzzIdentityName(k, names) && !slices.Equal(vs, set[k]) {
			t.Fatalf("%s: header %q = %q reached kube-apiserver; frontgate set %q", what, k, vs, set[k])
		}
	}
	// kube-apiserver's net/http server canonicalises header names, merging
	// the lines of names that differ in letter case only.
	wire := onTheWire(forwarded)
	for _, line := range wire["Sec-Websocket-Protocol"] {
		for p := range strings.SplitSeq(line, ",") {
			if p = strings.TrimSpace(p); len(p) >= len(auth.WebSocketBearerPrefix) && strings.EqualFold(p[:len(auth.WebSocketBearerPrefix)], auth.WebSocketBearerPrefix) {
				t.Fatalf("%s: the bearer-token subprotocol %q reached kube-apiserver", what, p)
			}
		}
	}
	name, uid, groups, extra, ok := decode(t, names, wire)
	wantUID := id.UID
	if len(names.UID) == 0 {
		wantUID = ""
	}
	if !ok || name != id.Name || uid != wantUID || !slices.Equal(groups, id.Groups) || !reflect.DeepEqual(extra, id.Extra) {
		t.Fatalf("%s: kube-apiserver decodes (%q, %q, %q, %q, ok %v), want frontgate's identity (%q, %q, %q, %q)",
			what, name, uid, groups, extra, ok, id.Name, wantUID, id.Groups, id.Extra)
	}
}

// fuzzIdentityName is the test's own reading of which header names carry an
// identity or a credential: ASCII letters in any case, '_' read as '-', as
// kube-apiserver and the front ends before it may read them.
func fuzzIdentityName(key string, names HeaderNames) bool {
	k := strings.ReplaceAll(asciiLower(key), "_", "-")
	for _, list := range [][]string{{"Authorization"}, fuzzCredentialHeaders, names.Username, names.Group, names.UID} {
		for _, n := range list {
			if k == asciiLower(n) {
				return true
			}
		}
	}
	for _, p := range names.ExtraPrefix {
		if strings.HasPrefix(k, asciiLower(p)) {
			return true
		}
	}
	return false
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// onTheWire returns h as a Go server hands it to kube-apiserver's handlers:
// names canonicalised, lines of names equal after that merged.
func onTheWire(h http.Header) http.Header {
	keys := slices.Sorted(mapKeys(h))
	out := make(http.Header, len(h))
	for _, k := range keys {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		out[ck] = append(out[ck], h[k]...)
	}
	return out
}

// fuzzClientHeaders turns FuzzSanitize's input into a client's header map,
// keeping names exactly as given (as a raw map or HTTP/2 may deliver them).
func fuzzClientHeaders(raw, value string) http.Header {
	h := http.Header{}
	lines := strings.Split(raw, "\n")
	if len(lines) > 64 {
		lines = lines[:64]
	}
	for _, line := range lines {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			v = value
		}
		v = strings.TrimPrefix(v, " ")
		variants := []string{name, asciiLower(name), strings.ToUpper(name), textproto.CanonicalMIMEHeaderKey(name),
			strings.ReplaceAll(name, "-", "_"), strings.ReplaceAll(name, "_", "-")}
		slices.Sort(variants)
		for _, n := range slices.Compact(variants) {
			h[n] = append(h[n], v)
		}
	}
	return h
}
