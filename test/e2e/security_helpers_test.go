package e2e

import (
	"bufio"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// recordedRequest is what frontgate sent to an [upstreamRecorder].
type recordedRequest struct {
	Method, Path, Proto string
	Header, Trailer     http.Header
	// ClientCN is the CN of the client certificate frontgate presented;
	// empty without one.
	ClientCN string
	// Remote is frontgate's end of the connection.
	Remote string
}

// upstreamRecorder stands in for kube-apiserver where a test must see
// exactly what frontgate sends on the wire: a TLS server (HTTP/1.1 and
// HTTP/2) on loopback that records every request and answers with handler.
// frontgate's readiness probe (GET /readyz without a client certificate) is
// answered and not recorded.
type upstreamRecorder struct {
	URL    string
	CAFile string

	mu      sync.Mutex
	reqs    []recordedRequest
	handler http.HandlerFunc
}

// okStatus is the recorder's default answer.
const okStatus = `{"kind":"Status","apiVersion":"v1","status":"Success","code":200}`

// startRecorder starts an [upstreamRecorder]; handler nil answers 200 with
// okStatus.
func startRecorder(t *testing.T, handler http.HandlerFunc) *upstreamRecorder {
	t.Helper()
	rec := &upstreamRecorder{handler: handler}
	if rec.handler == nil {
		rec.handler = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, okStatus)
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cn string
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		if r.URL.Path == "/readyz" && cn == "" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		// Read the body so that trailers arrive.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recordedRequest{
			Method: r.Method, Path: r.URL.RequestURI(), Proto: r.Proto,
			Header: r.Header.Clone(), Trailer: r.Trailer.Clone(), ClientCN: cn, Remote: r.RemoteAddr,
		})
		rec.mu.Unlock()
		rec.handler(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.StartTLS()
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	rec.CAFile = filepath.Join(t.TempDir(), "recorder-ca.crt")
	if err := os.WriteFile(rec.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return rec
}

// requests returns the requests recorded so far and forgets them.
func (rec *upstreamRecorder) take() []recordedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.reqs
	rec.reqs = nil
	return out
}

// frontgateBefore starts a frontgate with the shared frontgate's arguments
// plus args, in front of rec instead of kube-apiserver.
func frontgateBefore(t *testing.T, rec *upstreamRecorder, args ...string) *cluster.Frontgate {
	t.Helper()
	all := append(slices.Clone(defaultArgs), "--upstream", rec.URL, "--upstream-ca-file", rec.CAFile)
	return startFrontgate(t, cluster.FrontgateOptions{Args: append(all, args...)})
}

// identityHeaderLines returns the request header lines of h whose names,
// folded (lower case, "_" read as "-"), start with one of prefixes, as
// sorted "folded-name: value" strings.
func identityHeaderLines(h http.Header, prefixes ...string) []string {
	var out []string
	for k, vs := range h {
		name := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				for _, v := range vs {
					out = append(out, name+": "+v)
				}
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// dialFrontgate opens a TLS connection to f's proxy listener that speaks
// HTTP/1.1, with cfg adjusted by tweak when not nil.
func dialFrontgate(t *testing.T, f *cluster.Frontgate, tweak func(*tls.Config)) (*tls.Conn, error) {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(env.FrontgatePKIDir, "serving-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}}
	if tweak != nil {
		tweak(cfg)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", strings.TrimPrefix(f.URL, "https://"), cfg)
}

// mustDial is dialFrontgate that fails the test on error; the connection is
// closed when the test ends.
func mustDial(t *testing.T, f *cluster.Frontgate) *tls.Conn {
	t.Helper()
	c, err := dialFrontgate(t, f, nil)
	if err != nil {
		t.Fatalf("connecting to frontgate: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawExchange writes raw (a whole HTTP/1.x request, header block and body,
// exactly as given) to conn and reads one response, body included.
func rawExchange(t *testing.T, conn net.Conn, br *bufio.Reader, raw string) (*http.Response, []byte) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(commandTimeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %.80q: %v", raw, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return resp, body
}

// rawRequest builds an HTTP/1.1 request with header lines given exactly
// (name case, duplicates, order) and an optional body.
func rawRequest(method, target string, lines []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: frontgate\r\n", method, target)
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

// closedWithin reports nil when the peer closes conn (EOF or reset) within
// d, reading and discarding whatever else arrives; otherwise why not.
func closedWithin(conn net.Conn, r io.Reader, d time.Duration) error {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := r.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("still open after %s", d)
		}
		return nil
	}
}

// wsUpgradeLines are the header lines of a WebSocket upgrade as kubectl
// sends it for exec.
var wsUpgradeLines = []string{
	"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: v5.channel.k8s.io",
}

// httpsIssuer is an OpenID issuer served over TLS from the test process
// (discovery and JWKS; it signs RS256 tokens for any claims), for options
// that only matter for an https issuer, such as --oidc-ca-file.
type httpsIssuer struct {
	URL    string
	CAFile string
	key    *rsa.PrivateKey
}

func startHTTPSIssuer(t *testing.T) *httpsIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &httpsIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/keys", "authorization_endpoint": is.URL + "/authorize",
			"token_endpoint": is.URL + "/token", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "https-issuer",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()), "e": "AQAB",
		}}})
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	is.URL = srv.URL
	is.CAFile = filepath.Join(t.TempDir(), "issuer-ca.crt")
	if err := os.WriteFile(is.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

// token signs a valid token of client web for sub.
func (is *httpsIssuer) token(t *testing.T, sub string) string {
	t.Helper()
	return record(signRS256(t, is.key, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "https-issuer"}, map[string]any{
		"iss": is.URL, "aud": cluster.ClientWeb, "sub": sub, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}))
}

// signRS256 encodes header and claims and signs them with key.
func signRS256(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	signed := encodeSegment(t, header) + "." + encodeSegment(t, claims)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// keyMaterial returns what must never appear in a log or a response: every
// base64 line of every private key the harness wrote (frontgate's
// front-proxy, serving and CA keys, the cluster's keys).
func keyMaterial() []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(env.Dir, "pki"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".key") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			for _, line := range strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: "K", Bytes: block.Bytes})), "\n") {
				if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
					out = append(out, line)
				}
			}
		}
		return nil
	})
	return out
}

// privateKeyMarker starts every PEM private key.
const privateKeyMarker = "PRIVATE KEY-----"
