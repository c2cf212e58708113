package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/frontgate/frontgate/test/cluster"
)

// The kubectl exec plugin (`frontgate login`) runs here as kubectl runs it
// for a person at a terminal, except that stdin is not a terminal: with the
// kubeconfig's interactiveMode IfAvailable kubectl still runs the plugin
// (it only withholds stdin, which neither grant reads) and passes the
// plugin's stderr through, where the test reads the URL or code to act on,
// as the person would.

// authorizeURLLine is the line `frontgate login --no-browser` prints the
// authorization URL on.
var authorizeURLLine = regexp.MustCompile(`^\s+(http://\S+)$`)

// deviceCodeLine is the line `frontgate login --grant device` tells the
// user where to go and which code to enter on.
var deviceCodeLine = regexp.MustCompile(`open (http://\S+) on any device and enter the code (\S+)$`)

// loginPrompt appears on stderr only when an interactive login starts.
const loginPrompt = "to log in at"

// TestLoginAuthCode: a kubeconfig written by `frontgate kubeconfig --from`
// (discovery) makes kubectl run `frontgate login`, which logs in with the
// authorization code grant and PKCE through the real provider's login form
// and its own loopback redirect; kubectl then gets the mapped identity from
// kube-apiserver through frontgate. A second kubectl call uses the cached
// token without a single request to the provider; once the cached token has
// expired, the next call refreshes it with the refresh token (token
// endpoint, no authorization) and kubectl still works.
func TestLoginAuthCode(t *testing.T) {
	need(t)
	op := startProvider(t, env.StartOIDCProvider)
	f := startFrontgate(t, cluster.FrontgateOptions{
		Issuer: op.Issuer, ClientID: cluster.ClientNative,
		Args: append(slices.Clone(defaultArgs), "--discovery-ca-file", servingCA()),
	})
	s := setUpLogin(t, f, op.Issuer, cluster.ClientNative)
	authPath, tokenPath := providerEndpoints(t, op)
	alice := user(t, "alice")
	want := authv1.UserInfo{
		Username: op.Issuer + "#alice", UID: "alice",
		Groups: []string{"oidc:pwd", "system:authenticated"},
		Extra:  map[string]authv1.ExtraValue{extraKey: {cluster.ClientNative}},
	}

	// 1. Nothing cached: log in through the provider's own login form.
	before := providerRequests(t, op)
	run := s.kubectl(t, "auth", "whoami", "-o", "json")
	authURL := run.waitLine(t, authorizeURLLine)[1]
	callback, err := op.Authorize(ctx(t), authURL, alice)
	if err != nil {
		t.Fatalf("logging in at the provider: %v\nkubectl stderr:\n%s", err, run.stderrText())
	}
	if callback.Scheme != "http" || callback.Hostname() != "127.0.0.1" || callback.Path != "/callback" || callback.Query().Get("code") == "" {
		t.Fatalf("the provider redirected to %s, want frontgate login's loopback /callback with a code", callback.Redacted())
	}
	// The browser follows the redirect to frontgate login's listener.
	page := send(t, &http.Client{Timeout: commandTimeout}, http.MethodGet, callback.String(), nil, nil)
	if page.code != http.StatusOK || !strings.Contains(string(page.body), "Logged in") {
		t.Errorf("the loopback callback answered %d: %s", page.code, page.body)
	}
	got := run.whoami(t)
	if !sameUser(got, want) {
		t.Errorf("kubectl auth whoami after login = %s, want %s", fmtUser(got), fmtUser(want))
	}
	delta := requestDelta(before, providerRequests(t, op))
	t.Logf("login: kubectl stderr:\n%sprovider requests: %v", run.stderrText(), delta)
	if delta[authPath] != 1 || delta[tokenPath] != 1 {
		t.Errorf("the login made %v requests to the provider, want one to %s and one to %s", delta, authPath, tokenPath)
	}
	first := s.cacheEntry(t)
	if first.IDToken == "" || first.RefreshToken == "" {
		t.Fatalf("the cache holds no ID token or no refresh token (scopes %v)", first.Scopes)
	}
	if left := time.Until(first.Expiry); left < 50*time.Minute || left > 61*time.Minute {
		t.Errorf("the cached token expires in %s, want the provider's 1 h", left)
	}

	// 2. A second kubectl call uses the cache: no request to the provider.
	before = providerRequests(t, op)
	run = s.kubectl(t, "auth", "whoami", "-o", "json")
	if got := run.whoami(t); !sameUser(got, want) {
		t.Errorf("kubectl auth whoami from the cache = %s, want %s", fmtUser(got), fmtUser(want))
	}
	delta = requestDelta(before, providerRequests(t, op))
	t.Logf("cached: kubectl stderr:\n%sprovider requests: %v", run.stderrText(), delta)
	if len(delta) != 0 {
		t.Errorf("with a valid cached token kubectl made requests to the provider: %v", delta)
	}
	if strings.Contains(run.stderrText(), loginPrompt) {
		t.Errorf("kubectl asked to log in again:\n%s", run.stderrText())
	}
	if entry := s.cacheEntry(t); entry.IDToken != first.IDToken {
		t.Error("the cached token changed although it was valid")
	}

	// 3. The cached token has expired: the next call refreshes it.
	s.setCachedExpiry(t, time.Now().Add(-time.Minute))
	before = providerRequests(t, op)
	run = s.kubectl(t, "auth", "whoami", "-o", "json")
	if got := run.whoami(t); !sameUser(got, want) {
		t.Errorf("kubectl auth whoami after the refresh = %s, want %s", fmtUser(got), fmtUser(want))
	}
	delta = requestDelta(before, providerRequests(t, op))
	t.Logf("expired: kubectl stderr:\n%sprovider requests: %v", run.stderrText(), delta)
	if delta[tokenPath] != 1 || delta[authPath] != 0 || loginPages(delta) != 0 {
		t.Errorf("the refresh made %v requests to the provider, want one to %s and none to %s or the login pages", delta, tokenPath, authPath)
	}
	if strings.Contains(run.stderrText(), loginPrompt) {
		t.Errorf("kubectl logged in again instead of refreshing:\n%s", run.stderrText())
	}
	refreshed := s.cacheEntry(t)
	if refreshed.IDToken == first.IDToken || time.Until(refreshed.Expiry) < 50*time.Minute {
		t.Errorf("the cache was not refreshed: expiry %s, same token %v", refreshed.Expiry, refreshed.IDToken == first.IDToken)
	}
}

// TestLoginDevice: the same with the device authorization grant (RFC 8628),
// against zitadel's provider with a device client registered
// (test/tools/oidc/main.go): kubectl runs `frontgate login --grant device`,
// which prints the verification URI and a user code; the test opens the
// URI, enters the code, logs in and approves on the provider's own pages,
// as the user would on another device; the plugin's polling gets the tokens
// and kubectl the mapped identity. A second call uses the cache.
func TestLoginDevice(t *testing.T) {
	need(t)
	op := startProvider(t, env.StartDeviceOIDCProvider)
	f := startFrontgate(t, cluster.FrontgateOptions{
		Issuer: op.Issuer, ClientID: cluster.ClientDevice,
		Args: append(slices.Clone(defaultArgs), "--discovery-ca-file", servingCA()),
	})
	// The provider's device client is confidential.
	s := setUpLogin(t, f, op.Issuer, cluster.ClientDevice, "--grant", "device", "--login-arg=--client-secret="+cluster.ClientSecret)
	authPath, tokenPath := providerEndpoints(t, op)
	// The provider's device flow records no authentication method (no amr
	// claim, so no groups from it) and makes the username the subject.
	want := authv1.UserInfo{
		Username: op.Issuer + "#alice", UID: "alice",
		Groups: []string{"system:authenticated"},
		Extra:  map[string]authv1.ExtraValue{extraKey: {cluster.ClientDevice}},
	}

	before := providerRequests(t, op)
	run := s.kubectl(t, "auth", "whoami", "-o", "json")
	m := run.waitLine(t, deviceCodeLine)
	if err := op.ApproveDevice(ctx(t), m[1], m[2], user(t, "alice")); err != nil {
		t.Fatalf("approving the device at the provider: %v\nkubectl stderr:\n%s", err, run.stderrText())
	}
	if got := run.whoami(t); !sameUser(got, want) {
		t.Errorf("kubectl auth whoami after the device login = %s, want %s", fmtUser(got), fmtUser(want))
	}
	delta := requestDelta(before, providerRequests(t, op))
	t.Logf("device login: kubectl stderr:\n%sprovider requests: %v", run.stderrText(), delta)
	if delta["/device_authorization"] != 1 || delta[tokenPath] < 1 || delta[authPath] != 0 {
		t.Errorf("the device login made %v requests to the provider, want one device authorization, polls of %s and no %s", delta, tokenPath, authPath)
	}
	first := s.cacheEntry(t)

	before = providerRequests(t, op)
	run = s.kubectl(t, "auth", "whoami", "-o", "json")
	if got := run.whoami(t); !sameUser(got, want) {
		t.Errorf("kubectl auth whoami from the cache = %s, want %s", fmtUser(got), fmtUser(want))
	}
	if delta := requestDelta(before, providerRequests(t, op)); len(delta) != 0 {
		t.Errorf("with a valid cached token kubectl made requests to the provider: %v", delta)
	}
	if strings.Contains(run.stderrText(), loginPrompt) {
		t.Errorf("kubectl asked to log in again:\n%s", run.stderrText())
	}
	if entry := s.cacheEntry(t); entry.IDToken != first.IDToken {
		t.Error("the cached token changed although it was valid")
	}
}

// startProvider starts an OpenID Provider of the test's own, so that its
// request log counts only the test's requests, stopped when the test ends.
func startProvider(t *testing.T, start func(context.Context, int) (*cluster.OIDCProvider, error)) *cluster.OIDCProvider {
	t.Helper()
	op, err := start(ctx(t), 0)
	if err != nil {
		t.Fatalf("starting the OpenID Provider: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", op.Process.LogPath, op.Process.Tail(30))
		}
		op.Stop()
	})
	return op
}

// servingCA is the CA of frontgate's serving certificate.
func servingCA() string { return filepath.Join(env.FrontgatePKIDir, "serving-ca.crt") }

// loginSetup is a kubeconfig written by `frontgate kubeconfig` and what
// kubectl needs to run `frontgate login` from it.
type loginSetup struct {
	kubeconfig string
	// cacheDir is the plugin's token cache (--login-arg=--cache-dir).
	cacheDir string
	// path is $PATH with the frontgate under test first: the kubeconfig
	// runs the command "frontgate", as written by default.
	path string
}

// setUpLogin runs `frontgate kubeconfig --from` against f, which must
// publish its CA in discovery, with args, and checks that it wrote a login
// with issuer and clientID.
func setUpLogin(t *testing.T, f *cluster.Frontgate, issuer, clientID string, args ...string) *loginSetup {
	t.Helper()
	dir := t.TempDir()
	s := &loginSetup{kubeconfig: filepath.Join(dir, "kubeconfig"), cacheDir: filepath.Join(dir, "tokens")}
	bin, err := filepath.Abs(env.FrontgateBinary)
	if err != nil {
		t.Fatal(err)
	}
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(binDir, "frontgate")); err != nil {
		t.Fatal(err)
	}
	s.path = binDir + string(os.PathListSeparator) + os.Getenv("PATH")

	c, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(c, bin, append([]string{"kubeconfig", "--from", f.URL, "--certificate-authority", servingCA(),
		"-o", s.kubeconfig, "--login-arg=--no-browser", "--login-arg=--cache-dir=" + s.cacheDir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("frontgate kubeconfig: %v\n%s", err, out)
	}

	cfg, err := clientcmd.LoadFromFile(s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(servingCA())
	if err != nil {
		t.Fatal(err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil || cfg.Clusters[kctx.Cluster] == nil || cfg.AuthInfos[kctx.AuthInfo] == nil {
		t.Fatalf("frontgate kubeconfig wrote no current context with a cluster and a user: %+v", cfg)
	}
	if cl := cfg.Clusters[kctx.Cluster]; cl.Server != f.URL || !bytes.Equal(cl.CertificateAuthorityData, ca) {
		t.Errorf("cluster: server %q, want %q; CA from discovery equal to frontgate's: %v", cl.Server, f.URL, bytes.Equal(cl.CertificateAuthorityData, ca))
	}
	x := cfg.AuthInfos[kctx.AuthInfo].Exec
	if x == nil || x.Command != "frontgate" || x.InteractiveMode != clientcmdapi.IfAvailableExecInteractiveMode ||
		!slices.Contains(x.Args, "--issuer-url="+issuer) || !slices.Contains(x.Args, "--client-id="+clientID) {
		t.Fatalf("user's exec = %+v, want frontgate login for %s and client %s, interactive if available", x, issuer, clientID)
	}
	return s
}

// cacheFile is the part of a token cache file the tests look at.
type cacheFile struct {
	IDToken      string    `json:"idToken"`
	RefreshToken string    `json:"refreshToken"`
	Expiry       time.Time `json:"expiry"`
	Scopes       []string  `json:"scopes"`
}

// cachePath returns the only token cache file, checking its permissions.
func (s *loginSetup) cachePath(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.cacheDir, "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("want one token cache file in %s, got %v (%v)", s.cacheDir, files, err)
	}
	for path, mode := range map[string]os.FileMode{s.cacheDir: 0o700, files[0]: 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	return files[0]
}

// cacheEntry reads the token cache; its ID token is recorded as a secret
// that no frontgate may log.
func (s *loginSetup) cacheEntry(t *testing.T) cacheFile {
	t.Helper()
	data, err := os.ReadFile(s.cachePath(t))
	if err != nil {
		t.Fatal(err)
	}
	var e cacheFile
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("token cache: %v", err)
	}
	if e.IDToken != "" {
		env.RecordSecret(e.IDToken)
	}
	return e
}

// setCachedExpiry rewrites the expiry of the cached token, leaving every
// other field as it is.
func (s *loginSetup) setCachedExpiry(t *testing.T, expiry time.Time) {
	t.Helper()
	path := s.cachePath(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	fields["expiry"] = expiry.Format(time.RFC3339Nano)
	if data, err = json.Marshal(fields); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// kubectlRun is a kubectl process whose stderr is read while it runs, as a
// person watches the terminal.
type kubectlRun struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	lines  chan string
	done   chan error

	mu     sync.Mutex
	stderr strings.Builder
}

// kubectl starts kubectl with s's kubeconfig. kubectl and the plugin it
// starts run in their own process group, killed when the test ends.
func (s *loginSetup) kubectl(t *testing.T, args ...string) *kubectlRun {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	r := &kubectlRun{lines: make(chan string, 256), done: make(chan error, 1)}
	r.cmd = exec.CommandContext(c, env.Tools.Kubectl, append([]string{"--kubeconfig", s.kubeconfig,
		"--cache-dir", filepath.Join(env.Dir, "kubectl-cache")}, args...)...)
	r.cmd.Env = append(os.Environ(), "PATH="+s.path)
	r.cmd.Stdout = &r.stdout
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r.cmd.Cancel = func() error { return syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL) }
	r.cmd.WaitDelay = 5 * time.Second
	pipe, err := r.cmd.StderrPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel() // kills the group if still running
		<-r.done
	})
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.stderr.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			select {
			case r.lines <- sc.Text():
			default: // nobody is waiting for lines: stderrText has them
			}
		}
		close(r.lines)
		r.done <- r.cmd.Wait()
		close(r.done)
	}()
	return r
}

func (r *kubectlRun) stderrText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

// waitLine returns the submatches of the first stderr line that matches re.
func (r *kubectlRun) waitLine(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(commandTimeout)
	for {
		select {
		case line, ok := <-r.lines:
			if !ok {
				t.Fatalf("kubectl ended without printing a line matching %s; stderr:\n%s", re, r.stderrText())
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-timeout:
			t.Fatalf("no line matching %s from kubectl within %s; stderr:\n%s", re, commandTimeout, r.stderrText())
		}
	}
}

// whoami waits for `kubectl auth whoami -o json` to succeed and returns the
// identity it printed.
func (r *kubectlRun) whoami(t *testing.T) authv1.UserInfo {
	t.Helper()
	var err error
	select {
	case err = <-r.done:
	case <-time.After(commandTimeout):
		err = errors.New("timed out")
	}
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr:\n%s", strings.Join(r.cmd.Args[1:], " "), err, r.stdout.String(), r.stderrText())
	}
	var ssr authv1.SelfSubjectReview
	if err := json.Unmarshal(r.stdout.Bytes(), &ssr); err != nil {
		t.Fatalf("kubectl auth whoami -o json: %v: %s", err, r.stdout.String())
	}
	return ssr.Status.UserInfo
}

// providerEndpoints returns the paths of the provider's authorization and
// token endpoints, from its discovery document.
func providerEndpoints(t *testing.T, op *cluster.OIDCProvider) (authPath, tokenPath string) {
	t.Helper()
	resp := send(t, &http.Client{Timeout: commandTimeout}, http.MethodGet, op.Issuer+".well-known/openid-configuration", nil, nil)
	var disc struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(resp.body, &disc); err != nil {
		t.Fatalf("discovery document: %v: %s", err, resp.body)
	}
	a, errA := url.Parse(disc.Authorization)
	tok, errT := url.Parse(disc.Token)
	if errA != nil || errT != nil || a.Path == "" || tok.Path == "" {
		t.Fatalf("discovery document without endpoints: %s", resp.body)
	}
	return a.Path, tok.Path
}

// providerRequests counts the requests op has logged, by path.
func providerRequests(t *testing.T, op *cluster.OIDCProvider) map[string]int {
	t.Helper()
	// The provider logs each request before its handler returns, so before
	// the client has read the whole response and gone on.
	counts, err := op.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// requestDelta returns the paths requested more often in after than in
// before, with how many more times.
func requestDelta(before, after map[string]int) map[string]int {
	delta := map[string]int{}
	for _, p := range slices.Sorted(maps.Keys(after)) {
		if n := after[p] - before[p]; n != 0 {
			delta[p] = n
		}
	}
	return delta
}

// loginPages counts the requests to the provider's login pages in delta.
func loginPages(delta map[string]int) int {
	n := 0
	for p, c := range delta {
		if strings.HasPrefix(p, "/login/") {
			n += c
		}
	}
	return n
}
