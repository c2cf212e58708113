package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/frontgate/frontgate/test/cluster"
)

// commandTimeout bounds every kubectl run and HTTP exchange of a test.
const commandTimeout = time.Minute

// need skips the test when the suite has no cluster.
func need(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Skip(skipReason)
	}
}

// ctx returns a context that ends with the test or after 2 minutes.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// user returns the suite's OpenID Provider user with the given ID.
func user(t *testing.T, id string) cluster.User {
	t.Helper()
	for _, u := range env.Users {
		if u.ID == id {
			return u
		}
	}
	t.Fatalf("no OpenID Provider user %q", id)
	return cluster.User{}
}

// idToken gets a real ID token for user id from the suite's OpenID Provider
// through the authorization-code flow.
func idToken(t *testing.T, client, id string) string {
	t.Helper()
	tok, err := env.OIDC.IDToken(ctx(t), client, user(t, id))
	if err != nil {
		t.Fatalf("getting an ID token for %s (client %s): %v", id, client, err)
	}
	return tok
}

// mappedName is the username the shared frontgate gives the OIDC subject sub.
func mappedName(sub string) string { return env.OIDC.Issuer + "#" + sub }

// wantUserInfo is the identity the shared frontgate establishes for sub with
// a token of client "web".
func wantUserInfo(sub string) authv1.UserInfo {
	return authv1.UserInfo{
		Username: mappedName(sub),
		UID:      sub,
		Groups:   []string{"oidc:pwd", "system:authenticated"},
		Extra:    map[string]authv1.ExtraValue{extraKey: {"web"}},
	}
}

// impersonationHeaders are the headers that make a direct admin request act
// as exactly the identity in u.
func impersonationHeaders(u authv1.UserInfo) http.Header {
	h := http.Header{}
	h.Set("Impersonate-User", u.Username)
	if u.UID != "" {
		h.Set("Impersonate-Uid", u.UID)
	}
	for _, g := range u.Groups {
		if g != "system:authenticated" {
			h.Add("Impersonate-Group", g)
		}
	}
	for k, vs := range u.Extra {
		for _, v := range vs {
			h.Add("Impersonate-Extra-"+strings.ReplaceAll(k, "/", "%2F"), v)
		}
	}
	return h
}

// startFrontgate starts a frontgate for one test, stopped when the test ends
// (with its log tail printed if the test failed).
func startFrontgate(t *testing.T, opts cluster.FrontgateOptions) *cluster.Frontgate {
	t.Helper()
	f, err := env.StartFrontgate(ctx(t), opts)
	if err != nil {
		t.Fatalf("starting frontgate: %v", err)
	}
	t.Cleanup(func() {
		f.Stop()
		if code := f.Process.ExitCode(); code != 0 {
			t.Errorf("frontgate exited with status %d after SIGTERM, want 0 (%v)", code, f.Process.ExitError())
		}
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", f.Process.LogPath, f.Process.Tail(30))
		}
	})
	return f
}

// kubeconfigFor writes a kubeconfig for token through f and returns its path.
func kubeconfigFor(t *testing.T, f *cluster.Frontgate, token string) string {
	t.Helper()
	path, err := f.WriteKubeconfig(filepath.Join(t.TempDir(), "user.kubeconfig"), token)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// kubectl runs the real kubectl with kubeconfig and returns stdout, stderr
// and its error.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(c, env.Tools.Kubectl, append([]string{"--kubeconfig", kubeconfig,
		"--cache-dir", filepath.Join(env.Dir, "kubectl-cache")}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// mustKubectl runs kubectl and fails the test unless it succeeds.
func mustKubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, errOut, err := kubectl(t, kubeconfig, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// admin runs kubectl as the cluster admin, directly against kube-apiserver.
func admin(t *testing.T, args ...string) string {
	t.Helper()
	return mustKubectl(t, env.AdminKubeconfig, args...)
}

// namespace creates a namespace for one test and returns its name.
func namespace(t *testing.T, name string) string {
	t.Helper()
	admin(t, "create", "namespace", name)
	return name
}

// grantRole creates a Role with verbs on resources in ns and binds it to the
// user named username.
func grantRole(t *testing.T, ns, username, verbs, resources string) {
	t.Helper()
	role := "e2e-" + strings.ReplaceAll(resources, ",", "-")
	admin(t, "-n", ns, "create", "role", role, "--verb="+verbs, "--resource="+resources)
	admin(t, "-n", ns, "create", "rolebinding", role, "--role="+role, "--user="+username)
}

// eventually calls f until it returns nil, for at most timeout (RBAC changes
// reach kube-apiserver's authorizer through an informer, a moment later).
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// response is an HTTP response read in full.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// send performs one request; hdr's keys are sent in the letter case given.
// A transport error fails the test.
func send(t *testing.T, client *http.Client, method, url string, hdr http.Header, body []byte) response {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	resp, err := try(c, client, method, url, hdr, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// getOK GETs url with token as a bearer token, once (see try); an answer
// other than 200 is an error too.
func getOK(c context.Context, client *http.Client, url, token string) (response, error) {
	resp, err := try(c, client, http.MethodGet, url, bearer(token), nil)
	if err == nil && resp.code != http.StatusOK {
		err = fmt.Errorf("HTTP %d %s", resp.code, resp.body)
	}
	return resp, err
}

// try performs one request like send, but returns a transport error
// instead of failing the test. It gives up after 2 minutes.
func try(c context.Context, client *http.Client, method, url string, hdr http.Header, body []byte) (response, error) {
	c, cancel := context.WithTimeout(c, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(c, method, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	for k, vs := range hdr {
		req.Header[k] = append(req.Header[k], vs...)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return response{}, fmt.Errorf("%s %s: HTTP %d, reading the body: %w", method, url, resp.StatusCode, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: data}, nil
}

// bearer returns a header with Authorization: Bearer token.
func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// fgClient returns an HTTP client for f (HTTP/1.1 only when http1).
func fgClient(t *testing.T, f *cluster.Frontgate, http1 bool) *http.Client {
	t.Helper()
	c, err := f.HTTPClient(http1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// adminClient returns an HTTP client for kube-apiserver as the admin.
func adminClient(t *testing.T) *http.Client {
	t.Helper()
	c, err := env.AdminHTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const selfSubjectReviewPath = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

var selfSubjectReviewBody = []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)

// whoami posts a SelfSubjectReview to baseURL with hdr and returns the
// response and, on 201, the identity kube-apiserver saw.
func whoami(t *testing.T, client *http.Client, baseURL string, hdr http.Header) (response, *authv1.UserInfo) {
	t.Helper()
	resp := send(t, client, http.MethodPost, baseURL+selfSubjectReviewPath, hdr, selfSubjectReviewBody)
	if resp.code != http.StatusCreated {
		return resp, nil
	}
	var ssr authv1.SelfSubjectReview
	if err := json.Unmarshal(resp.body, &ssr); err != nil {
		t.Fatalf("SelfSubjectReview response: %v: %s", err, resp.body)
	}
	return resp, &ssr.Status.UserInfo
}

// kubectlWhoami runs `kubectl auth whoami -o json` and returns the identity.
func kubectlWhoami(t *testing.T, kubeconfig string, args ...string) authv1.UserInfo {
	t.Helper()
	out := mustKubectl(t, kubeconfig, append([]string{"auth", "whoami", "-o", "json"}, args...)...)
	var ssr authv1.SelfSubjectReview
	if err := json.Unmarshal([]byte(out), &ssr); err != nil {
		t.Fatalf("kubectl auth whoami -o json: %v: %s", err, out)
	}
	return ssr.Status.UserInfo
}

// sameUser compares identities, treating nil and empty lists/maps alike.
func sameUser(got, want authv1.UserInfo) bool {
	norm := func(u authv1.UserInfo) authv1.UserInfo {
		if len(u.Groups) == 0 {
			u.Groups = nil
		}
		if len(u.Extra) == 0 {
			u.Extra = nil
		}
		return u
	}
	return reflect.DeepEqual(norm(got), norm(want))
}

func fmtUser(u authv1.UserInfo) string {
	b, _ := json.Marshal(u)
	return string(b)
}

// status decodes a Kubernetes Status body, failing the test if it is not one.
func status(t *testing.T, resp response) metav1.Status {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal(resp.body, &s); err != nil || s.Kind != "Status" {
		t.Fatalf("want a Status object (HTTP %d, Content-Type %q), got: %s", resp.code, resp.header.Get("Content-Type"), resp.body)
	}
	if int(s.Code) != resp.code {
		t.Errorf("Status code %d differs from HTTP status %d", s.Code, resp.code)
	}
	return s
}

// metrics scrapes f.
func metrics(t *testing.T, f *cluster.Frontgate) cluster.Metrics {
	t.Helper()
	m, err := f.Metrics(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// upstreamRequests is how many requests f has sent to kube-apiserver.
func upstreamRequests(t *testing.T, f *cluster.Frontgate) float64 {
	t.Helper()
	return metrics(t, f).Sum("frontgate_upstream_request_duration_seconds_count", nil)
}

// mustContain fails unless s contains every one of subs.
func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

// randomSuffix returns a short random lower-case suffix for object names.
func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
