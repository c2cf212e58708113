package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/frontgate/frontgate/test/cluster"
)

// The fault tests (issue 7 §4) break the real components under a frontgate
// of their own: the OpenID Provider (a dedicated instance on a fixed port,
// stopped and started again — each start has a new signing key), a second
// kube-apiserver on the shared etcd (killed, stopped and restarted), a slow
// TCP path to kube-apiserver, and frontgate itself (SIGTERM under load).
// The shared kube-apiserver and OpenID Provider are never disturbed.

// faultTimeout bounds one fault test.
const faultTimeout = 6 * time.Minute

// faultCtx returns a context that ends with the test or after faultTimeout.
func faultCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), faultTimeout)
	t.Cleanup(cancel)
	return c
}

// asStatus decodes a Kubernetes Status body, or returns nil.
func asStatus(resp response) *metav1.Status {
	var s metav1.Status
	if json.Unmarshal(resp.body, &s) != nil || s.Kind != "Status" {
		return nil
	}
	return &s
}

// tokenKeyID returns the kid of a JWT's header.
func tokenKeyID(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid
}

// TestFaultIssuerDownAndKeyRotation: frontgate trusts a dedicated OpenID
// Provider (token cache off, so every request verifies the signature).
// Once the provider is down, a token it signed keeps working with the
// cached keys and /readyz stays 200; a token signed with a key frontgate
// has never seen fails closed with 401 UnknownSigningKey, saying the
// refetch failed. When the provider comes back with a new key (a restart
// on the same port: the example provider generates its key at start),
// its tokens are accepted without restarting frontgate, once the
// rate-limited refetch (at most one per 10 s) ran, and the old key's
// tokens are refused.
func TestFaultIssuerDownAndKeyRotation(t *testing.T) {
	need(t)
	t.Parallel()
	c := faultCtx(t)
	port, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	startOP := func() *cluster.OIDCProvider {
		t.Helper()
		op, err := env.StartOIDCProvider(c, port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(op.Stop)
		return op
	}
	tokenOf := func(op *cluster.OIDCProvider) string {
		t.Helper()
		tok, err := op.IDToken(c, cluster.ClientWeb, user(t, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	opA := startOP()
	f := startFrontgate(t, cluster.FrontgateOptions{Issuer: opA.Issuer, Args: []string{"--token-cache-ttl", "0"}})
	pid := f.Process.PID()
	client := fgClient(t, f, false)
	want := opA.Issuer + "#alice"
	accepted := func(token string) (bool, response) {
		t.Helper()
		resp, err := try(c, client, http.MethodPost, f.URL+selfSubjectReviewPath, bearer(token), selfSubjectReviewBody)
		if err != nil {
			t.Fatalf("SelfSubjectReview through frontgate: %v", err)
		}
		if resp.code != http.StatusCreated {
			return false, resp
		}
		if !strings.Contains(string(resp.body), `"username":"`+want+`"`) {
			t.Fatalf("SelfSubjectReview: want user %s, got %s", want, resp.body)
		}
		return true, resp
	}
	refused := func(what, token string, wantMsg ...string) {
		t.Helper()
		ok, resp := accepted(token)
		if ok {
			t.Fatalf("%s: accepted, want 401", what)
		}
		s := asStatus(resp)
		if resp.code != http.StatusUnauthorized || s == nil || s.Reason != metav1.StatusReasonUnauthorized {
			t.Fatalf("%s: HTTP %d %s, want a 401 Unauthorized Status", what, resp.code, resp.body)
		}
		mustContain(t, what+": the Status message", s.Message, wantMsg...)
		t.Logf("%s: 401 %q", what, s.Message)
	}
	counter := func(name string, labels map[string]string) float64 {
		return metrics(t, f).Sum(name, labels)
	}
	unknownKey := map[string]string{"result": "failure", "reason": "UnknownSigningKey"}

	tokA := tokenOf(opA)
	if ok, resp := accepted(tokA); !ok {
		t.Fatalf("provider A's token with A up: HTTP %d %s", resp.code, resp.body)
	}

	// The issuer goes down: the keys frontgate holds keep verifying.
	opA.Stop()
	fetchesBefore := counter("frontgate_oidc_jwks_fetches_total", nil)
	const whileDown = 5
	for i := range whileDown {
		if ok, resp := accepted(tokA); !ok {
			t.Fatalf("request %d with the issuer down: HTTP %d %s, want 201 (cached keys)", i+1, resp.code, resp.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, err := f.Ready(c); err != nil || code != http.StatusOK {
		t.Errorf("/readyz with the issuer down after start: %d %v, want 200 (keys are cached)", code, err)
	}
	if n := counter("frontgate_oidc_jwks_fetches_total", nil); n != fetchesBefore {
		t.Errorf("frontgate fetched the JWKS %v times for tokens of a known key", n-fetchesBefore)
	}

	// A token signed with a key frontgate has never seen (the provider
	// restarted once, briefly, while frontgate was not looking): it asks the
	// issuer, cannot reach it and refuses.
	opB := startOP()
	tokB := tokenOf(opB)
	opB.Stop()
	kidA, kidB := tokenKeyID(t, tokA), tokenKeyID(t, tokB)
	if kidA == kidB || kidA == "" {
		t.Fatalf("provider restarts did not change the key ID (%q, %q)", kidA, kidB)
	}
	errorsBefore := counter("frontgate_oidc_jwks_fetches_total", map[string]string{"result": "error"})
	unknownBefore := counter("frontgate_authentication_attempts_total", unknownKey)
	refusedAt := time.Now()
	refused("an unknown key ID with the issuer down", tokB, kidB, "not in the issuer's JWKS", "refetching the JWKS failed")
	if d := counter("frontgate_oidc_jwks_fetches_total", map[string]string{"result": "error"}) - errorsBefore; d != 1 {
		t.Errorf("frontgate_oidc_jwks_fetches_total{result=error} rose by %v, want 1 (one refetch, failed)", d)
	}
	if d := counter("frontgate_authentication_attempts_total", unknownKey) - unknownBefore; d != 1 {
		t.Errorf("frontgate_authentication_attempts_total{reason=UnknownSigningKey} rose by %v, want 1", d)
	}
	if n := upstreamRequests(t, f); n != 1+whileDown {
		t.Errorf("frontgate forwarded %v requests, want %d (refused ones are not forwarded)", n, 1+whileDown)
	}
	// The failed refetch kept the keys.
	if ok, resp := accepted(tokA); !ok {
		t.Fatalf("provider A's token after a failed refetch: HTTP %d %s", resp.code, resp.body)
	}

	// Rotation: the provider comes back with a new key. frontgate picks it
	// up on the first unknown key ID after the rate limit allows a refetch.
	opC := startOP()
	tokC := tokenOf(opC)
	upAt := time.Now()
	var limited int
	for {
		ok, resp := accepted(tokC)
		if ok {
			break
		}
		s := asStatus(resp)
		if resp.code != http.StatusUnauthorized || s == nil || !strings.Contains(s.Message, "refetched less than 10s ago") {
			t.Fatalf("the rotated key's token before the refetch: HTTP %d %s, want 401 'refetched less than 10s ago'", resp.code, resp.body)
		}
		limited++
		if time.Since(refusedAt) > 30*time.Second {
			t.Fatalf("the rotated key's token was still refused %s after the last refetch", time.Since(refusedAt).Round(time.Millisecond))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("rotated key accepted %s after the provider came back, %s after the previous refetch; %d requests in between refused by the 10 s rate limit",
		time.Since(upAt).Round(time.Millisecond), time.Since(refusedAt).Round(time.Millisecond), limited)
	if f.Process.PID() != pid || !f.Process.Running() {
		t.Fatal("frontgate was restarted")
	}
	// The old key is gone from the issuer's JWKS: its tokens fail closed.
	refused("provider A's token after the rotation", tokA, kidA, "not in the issuer's JWKS")
	for range 3 {
		if ok, resp := accepted(tokC); !ok {
			t.Fatalf("the rotated key's token: HTTP %d %s", resp.code, resp.body)
		}
	}
}

// informer watches the ConfigMaps of a namespace through a frontgate with
// client-go's shared informer (a reflector: list, then watch, re-listing
// and re-watching by itself after errors), as controllers do.
type informer struct {
	added      chan string
	watchErrs  chan error
	stop       context.CancelFunc
	stopped    chan struct{}
	storeNames func() []string
}

// startInformer starts an informer on the ConfigMaps of ns through f as
// the bearer of token, and waits for its cache to sync.
func startInformer(t *testing.T, f *cluster.Frontgate, token, ns string) *informer {
	t.Helper()
	cfg := &rest.Config{
		Host:            f.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(env.FrontgatePKIDir, "serving-ca.crt")},
		Timeout:         30 * time.Second,
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().ConfigMaps().Informer()
	in := &informer{added: make(chan string, 100), watchErrs: make(chan error, 100), stopped: make(chan struct{})}
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		select {
		case in.watchErrs <- err:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok {
			in.added <- cm.Name
		}
	}}); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	in.stop = cancel
	factory.Start(c.Done())
	go func() {
		<-c.Done()
		factory.Shutdown()
		close(in.stopped)
	}()
	t.Cleanup(func() {
		in.stop()
		<-in.stopped
	})
	in.storeNames = inf.GetStore().ListKeys
	sctx, scancel := context.WithTimeout(t.Context(), time.Minute)
	defer scancel()
	if !cache.WaitForCacheSync(sctx.Done(), inf.HasSynced) {
		t.Fatal("the informer's cache did not sync through frontgate within a minute")
	}
	return in
}

// await waits until the informer delivered an add of name.
func (in *informer) await(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case got := <-in.added:
			if got == name {
				return
			}
		case <-deadline:
			t.Fatalf("the informer did not deliver configmap %s within %s (cache: %v)", name, timeout, in.storeNames())
		}
	}
}

// outcome is one request of a request loop.
type outcome struct {
	at     time.Time
	code   int    // 0 on a transport error
	reason string // the Status reason, or the transport error
	msg    string
}

// requestLoop GETs url through client every interval until stopped, and
// returns every outcome.
func requestLoop(c context.Context, client *http.Client, url string, hdr http.Header, interval time.Duration) (stop func() []outcome) {
	var out []outcome
	done := make(chan struct{})
	lc, cancel := context.WithCancel(c)
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			o := outcome{at: time.Now()}
			resp, err := try(lc, client, http.MethodGet, url, hdr, nil)
			switch {
			case lc.Err() != nil:
				return
			case err != nil:
				o.reason = err.Error()
			default:
				o.code = resp.code
				if s := asStatus(resp); s != nil && resp.code != http.StatusOK {
					o.reason, o.msg = string(s.Reason), s.Message
				}
			}
			out = append(out, o)
			select {
			case <-lc.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() []outcome {
		cancel()
		<-done
		return out
	}
}

// TestFaultAPIServerDown: a frontgate in front of a second kube-apiserver
// (on the shared etcd) while that kube-apiserver crashes (SIGKILL) and,
// later, shuts down (SIGTERM), each time restarted on the same port. While
// it is down, requests get frontgate's 502 Status naming kube-apiserver and
// the cause, and /readyz turns 503 within the 2 s probe interval; once it is
// back, /readyz is 200 again and requests succeed, without restarting
// frontgate; a client-go informer whose watch was cut re-lists and
// re-watches by itself and receives a ConfigMap created after the restart.
// A request loop runs throughout: every answer is 200 or a Status.
func TestFaultAPIServerDown(t *testing.T) {
	need(t)
	t.Parallel()
	c := faultCtx(t)
	api, err := env.StartAPIServer(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	f := startFrontgate(t, cluster.FrontgateOptions{Upstream: api.URL, Args: defaultArgs})
	pid := f.Process.PID()
	ns := namespace(t, "e2e-apidown-"+randomSuffix())
	token := idToken(t, cluster.ClientWeb, "bob")
	grantRole(t, ns, mappedName("bob"), "get,list,watch", "configmaps")
	admin(t, "-n", ns, "create", "configmap", "before")
	client := fgClient(t, f, false)
	list := f.URL + "/api/v1/namespaces/" + ns + "/configmaps"
	eventually(t, 30*time.Second, func() error {
		_, err := getOK(c, client, list, token)
		return err
	})
	in := startInformer(t, f, token, ns)
	in.await(t, "before", 30*time.Second)
	stopLoop := requestLoop(c, fgClient(t, f, false), list, bearer(token), 250*time.Millisecond)

	readyz := func() (int, string) {
		code, body, err := getBody(c, f.MetricsURL+"/readyz")
		if err != nil {
			t.Fatalf("frontgate /readyz: %v", err)
		}
		return code, body
	}
	waitReadyz := func(want bool, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			code, body := readyz()
			if (code == http.StatusOK) == want {
				if !want {
					mustContain(t, "/readyz while kube-apiserver is down", body, "kube-apiserver at "+api.URL)
				}
				return time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("/readyz still %d %q after %s", code, body, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for i, fault := range []struct {
		name string
		down func()
	}{
		{"crash (SIGKILL)", func() {
			if err := api.Kill(); err != nil {
				t.Fatal(err)
			}
		}},
		{"shutdown (SIGTERM)", api.Stop},
	} {
		fault.down()
		downAt := time.Now()
		resp, err := try(c, client, http.MethodGet, list, bearer(token), nil)
		if err != nil {
			t.Fatalf("%s: request while kube-apiserver is down: %v", fault.name, err)
		}
		s := asStatus(resp)
		if resp.code != http.StatusBadGateway || s == nil || s.Reason != metav1.StatusReasonServiceUnavailable {
			t.Fatalf("%s: request while kube-apiserver is down: HTTP %d %s, want a 502 Status", fault.name, resp.code, resp.body)
		}
		mustContain(t, "the 502 Status message", s.Message, "frontgate could not reach kube-apiserver at "+api.URL, "connection refused")
		notReady := waitReadyz(false, 10*time.Second)
		if code, body, err := getBody(c, f.MetricsURL+"/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("%s: /healthz while kube-apiserver is down: %d %q %v, want 200", fault.name, code, body, err)
		}
		time.Sleep(3 * time.Second) // down for a while: the informer's retries fail too

		startAt := time.Now()
		if err := api.Start(c); err != nil {
			t.Fatalf("%s: restarting kube-apiserver: %v", fault.name, err)
		}
		apiReady := time.Now()
		ready := waitReadyz(true, 10*time.Second)
		if resp, err := try(c, client, http.MethodGet, list, bearer(token), nil); err != nil || resp.code != http.StatusOK {
			t.Fatalf("%s: request after the restart: %v HTTP %d %s", fault.name, err, resp.code, resp.body)
		}
		name := fmt.Sprintf("after-restart-%d", i+1)
		created := time.Now()
		admin(t, "-n", ns, "create", "configmap", name)
		in.await(t, name, 2*time.Minute)
		delivered := time.Since(created)
		t.Logf("%s: 502 Status at once (%q); /readyz 503 after %s; kube-apiserver down %s, its start took %s; /readyz 200 %s after kube-apiserver's own; the informer delivered %s %s after kubectl create started",
			fault.name, s.Message, notReady.Round(time.Millisecond), startAt.Sub(downAt).Round(time.Millisecond),
			apiReady.Sub(startAt).Round(time.Millisecond), ready.Round(time.Millisecond), name, delivered.Round(time.Millisecond))
	}
	if f.Process.PID() != pid || !f.Process.Running() {
		t.Fatal("frontgate was restarted")
	}

	outcomes := stopLoop()
	classes := map[string]int{}
	for _, o := range outcomes {
		class := fmt.Sprintf("%d %s", o.code, o.reason)
		switch {
		case o.code == http.StatusOK:
			class = "200"
		case o.code == 0:
			t.Errorf("request loop: transport error at %s: %s", o.at.Format(time.StampMilli), o.reason)
		case o.reason == "":
			t.Errorf("request loop: HTTP %d without a Status at %s", o.code, o.at.Format(time.StampMilli))
		case o.code == http.StatusBadGateway && !strings.Contains(o.msg, "frontgate could not reach kube-apiserver"):
			t.Errorf("request loop: a 502 that is not frontgate's: %s", o.msg)
		case o.code != http.StatusBadGateway:
			// kube-apiserver's own answer while starting or stopping
			// (e.g. 503 or 429 while it shuts down, 403 before its
			// authorizer synced).
			class += " (kube-apiserver: " + o.msg + ")"
		}
		classes[class]++
	}
	t.Logf("request loop, %d GETs every 250 ms: %v", len(outcomes), classes)
	if classes["200"] == 0 || classes["502 ServiceUnavailable"] == 0 {
		t.Errorf("request loop: want both 200s and 502s, got %v", classes)
	}
	watchErrs := len(in.watchErrs)
	t.Logf("the informer's reflector reported %d list/watch errors and recovered by itself", watchErrs)
	if watchErrs == 0 {
		t.Error("the informer's reflector saw no error: its watch was not cut")
	}
}

// getBody GETs a plain-HTTP URL (frontgate's metrics listener).
func getBody(c context.Context, url string) (int, string, error) {
	c, cancel := context.WithTimeout(c, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// bigConfigMaps creates n ConfigMaps big-0 … of size bytes of random
// (incompressible) text each in ns, as the admin, and returns the size.
func bigConfigMaps(t *testing.T, ns string, n, size int) {
	t.Helper()
	raw := make([]byte, size*3/4)
	for i := range n {
		_, _ = rand.Read(raw)
		path := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(raw)), 0o600); err != nil {
			t.Fatal(err)
		}
		admin(t, "-n", ns, "create", "configmap", fmt.Sprintf("big-%d", i), "--from-file=data="+path)
	}
}

// checkBigList fails unless body is a ConfigMapList of n ConfigMaps big-*
// whose data is size bytes each.
func checkBigList(body []byte, n, size int) error {
	var list corev1.ConfigMapList
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("not a ConfigMapList (%d bytes): %w", len(body), err)
	}
	got := 0
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, "big-") {
			if l := len(cm.Data["data"]); l != size {
				return fmt.Errorf("%s has %d bytes of data, want %d", cm.Name, l, size)
			}
			got++
		}
	}
	if got != n {
		return fmt.Errorf("%d big ConfigMaps, want %d", got, n)
	}
	return nil
}

// waitBigList waits until a GET of list with token answers 200 with the n
// big ConfigMaps whole (bigConfigMaps), as caches warm up after creation.
func waitBigList(t *testing.T, c context.Context, client *http.Client, list, token string, n, size int) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		resp, err := getOK(c, client, list, token)
		if err != nil {
			return err
		}
		return checkBigList(resp.body, n, size)
	})
}

// watchLines reads a watch response's lines into a channel, closed when
// the response ends; the error it ended with is sent on errc.
func watchLines(body io.Reader) (lines <-chan string, errc <-chan error) {
	l, e := make(chan string, 100), make(chan error, 1)
	go func() {
		defer close(l)
		r := bufio.NewReader(body)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				l <- line
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				e <- err
				return
			}
		}
	}()
	return l, e
}

// awaitLine waits for a line containing s.
func awaitLine(t *testing.T, lines <-chan string, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the watch ended before an event containing %q", s)
			}
			if strings.Contains(line, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no watch event containing %q within %s", s, timeout)
		}
	}
}

// TestFaultSlowAPIServer: frontgate reaches kube-apiserver through a TCP
// proxy that delays every byte and limits the bandwidth. Requests still
// complete — a 1 MiB list that takes over 10 s to arrive included, with no
// frontgate timeout — and a watch delivers its events late but whole. A
// response cut off mid-body (the proxy drops the connection) reaches the
// client as a broken stream, never as a complete-looking one; only when the
// upstream connection breaks before kube-apiserver answered does frontgate
// answer itself, with 502. It recovers by itself when the path is healthy.
func TestFaultSlowAPIServer(t *testing.T) {
	need(t)
	t.Parallel()
	c := faultCtx(t)
	p := newDelayProxy(t, strings.TrimPrefix(env.APIServerURL, "https://"), 0, 0)
	f := startFrontgate(t, cluster.FrontgateOptions{Upstream: p.URL(), Args: defaultArgs})
	ns := namespace(t, "e2e-slow-"+randomSuffix())
	token := idToken(t, cluster.ClientWeb, "frank")
	grantRole(t, ns, mappedName("frank"), "get,list,watch", "configmaps")
	const bigN, bigSize = 2, 512 << 10
	bigConfigMaps(t, ns, bigN, bigSize)
	admin(t, "-n", ns, "create", "configmap", "small")
	client := fgClient(t, f, false)
	client.Timeout = 0 // bounded by contexts
	list := f.URL + "/api/v1/namespaces/" + ns + "/configmaps"
	waitBigList(t, c, client, list, token, bigN, bigSize)
	timed := func(url string) (response, time.Duration) {
		t.Helper()
		start := time.Now()
		resp, err := try(c, client, http.MethodGet, url, bearer(token), nil)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		return resp, time.Since(start)
	}

	// Latency: 150 ms each way on every byte.
	const latency = 150 * time.Millisecond
	p.Set(latency, 0)
	resp, took := timed(list + "/small")
	if resp.code != http.StatusOK || took < 2*latency {
		t.Fatalf("GET a ConfigMap with %s latency: HTTP %d after %s, want 200 after at least %s", latency, resp.code, took, 2*latency)
	}
	t.Logf("one small GET with %s latency each way: 200 in %s", latency, took.Round(time.Millisecond))

	// Bandwidth: 64 KiB/s. The list (over 1 MiB, about 0.8 MiB gzipped)
	// takes longer than any timeout frontgate has (10 s for dialing and TLS
	// handshakes).
	const bps = 64 << 10
	p.Set(latency, bps)
	resp, took = timed(list)
	if resp.code != http.StatusOK {
		t.Fatalf("slow list: HTTP %d %.300s", resp.code, resp.body)
	}
	if err := checkBigList(resp.body, bigN, bigSize); err != nil {
		t.Fatalf("slow list: %v", err)
	}
	if took < 10*time.Second {
		t.Errorf("slow list took only %s; the proxy did not slow it down", took)
	}
	t.Logf("list of %d × %d KiB at %d KiB/s with %s latency: 200, complete, in %s", bigN, bigSize>>10, bps>>10, latency, took.Round(time.Millisecond))

	// A watch through the slow path delivers an event created later.
	wc, wcancel := context.WithTimeout(c, 2*time.Minute)
	defer wcancel()
	req, _ := http.NewRequestWithContext(wc, http.MethodGet, list+"?watch=1&timeoutSeconds=60&fieldSelector=metadata.name%3Dlate", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	wresp, err := client.Do(req)
	if err != nil || wresp.StatusCode != http.StatusOK {
		t.Fatalf("watch through the slow path: %v %v", err, wresp)
	}
	lines, _ := watchLines(wresp.Body)
	created := time.Now()
	admin(t, "-n", ns, "create", "configmap", "late")
	awaitLine(t, lines, `"name":"late"`, time.Minute)
	t.Logf("watch event through the slow path %s after the create started", time.Since(created).Round(time.Millisecond))
	wcancel()
	wresp.Body.Close()

	// The upstream connection breaks mid-body: the client sees a broken
	// stream, not a complete response.
	failedBefore := metrics(t, f).Sum("frontgate_http_requests_total", map[string]string{"code": "502"})
	bc, bcancel := context.WithTimeout(c, 2*time.Minute)
	defer bcancel()
	req, _ = http.NewRequestWithContext(bc, http.MethodGet, list, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	bresp, err := client.Do(req)
	if err != nil || bresp.StatusCode != http.StatusOK {
		t.Fatalf("list before the break: %v %v", err, bresp)
	}
	time.Sleep(2 * time.Second)
	broken := p.BreakAll()
	body, err := io.ReadAll(bresp.Body)
	bresp.Body.Close()
	if err == nil {
		t.Fatalf("a response cut off upstream after %d bytes ended cleanly for the client", len(body))
	}
	if checkBigList(body, bigN, bigSize) == nil {
		t.Fatal("the cut-off list arrived complete")
	}
	t.Logf("upstream cut after 2 s (%d connections): the client got %d bytes, then %q", broken, len(body), err)

	// The upstream connection breaks before kube-apiserver answered: 502.
	p.Set(0, 0)
	p.Refuse(true)
	p.BreakAll()
	resp, err = try(c, client, http.MethodGet, list+"/small", bearer(token), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := asStatus(resp)
	if resp.code != http.StatusBadGateway || s == nil {
		t.Fatalf("upstream connection closed before an answer: HTTP %d %s, want a 502 Status", resp.code, resp.body)
	}
	mustContain(t, "the 502 Status", s.Message, "frontgate could not reach kube-apiserver at "+p.URL())
	t.Logf("upstream connection closed before an answer: 502 %q", s.Message)
	if d := metrics(t, f).Sum("frontgate_http_requests_total", map[string]string{"code": "502"}) - failedBefore; d != 1 {
		t.Errorf("frontgate answered %v requests with 502, want exactly 1 (the one whose upstream connection broke before an answer)", d)
	}

	// Healthy again: requests succeed without a restart.
	p.Refuse(false)
	resp, _ = timed(list)
	if resp.code != http.StatusOK || checkBigList(resp.body, bigN, bigSize) != nil {
		t.Fatalf("after the path recovered: HTTP %d", resp.code)
	}
	log, err := f.Process.Log()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "kube-apiserver request failed"); n != 1 {
		t.Errorf("frontgate logged %d failed kube-apiserver requests, want 1 (the refused connection): no timeouts", n)
	}

	// A partition: the upstream connection stays open but nothing arrives
	// any more. frontgate's HTTP/2 health check (a PING unanswered within
	// 15 s after 30 s without a frame) declares it broken: 502, not a hang.
	p.Freeze(true)
	pc, pcancel := context.WithTimeout(c, 2*time.Minute)
	defer pcancel()
	frozenAt := time.Now()
	resp, err = try(pc, client, http.MethodGet, list+"/small", bearer(token), nil)
	if err != nil {
		t.Fatalf("a request while the upstream connection is silent: %v after %s, want a 502 Status", err, time.Since(frozenAt).Round(time.Millisecond))
	}
	s = asStatus(resp)
	if resp.code != http.StatusBadGateway || s == nil {
		t.Fatalf("a request while the upstream connection is silent: HTTP %d %s, want a 502 Status", resp.code, resp.body)
	}
	t.Logf("upstream connection silent (partition): 502 after %s: %q", time.Since(frozenAt).Round(time.Millisecond), s.Message)
	p.Freeze(false)
	p.BreakAll()
	eventually(t, 30*time.Second, func() error {
		_, err := getOK(c, client, list+"/small", token)
		return err
	})
}

// TestFaultSIGTERMUnderLoad: SIGTERM reaches a frontgate (--shutdown-grace
// 90s, kube-apiserver behind a slow path) while watches (over HTTP/2 and
// HTTP/1.1), a slow list and an exec session are in flight. Every one of
// them completes normally — the watches even deliver an event created after
// the signal and end at their timeoutSeconds, the list arrives whole, the
// exec session prints its last line and exits 0 — while new connections
// are refused from the moment of the signal and no request that arrives
// after it is served. frontgate then exits with status 0.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	need(t)
	t.Parallel()
	c := faultCtx(t)
	p := newDelayProxy(t, strings.TrimPrefix(env.APIServerURL, "https://"), 20*time.Millisecond, 0)
	f := startFrontgate(t, cluster.FrontgateOptions{Upstream: p.URL(), Args: append([]string{"--shutdown-grace", "90s"}, defaultArgs...)})
	ns := namespace(t, "e2e-sigterm-"+randomSuffix())
	const who = "erin"
	token := idToken(t, cluster.ClientWeb, who)
	admin(t, "-n", ns, "create", "role", "sigterm", "--verb=get,list,watch,create", "--resource=configmaps,pods,pods/exec")
	admin(t, "-n", ns, "create", "rolebinding", "sigterm", "--role=sigterm", "--user="+mappedName(who))
	const bigN, bigSize = 2, 512 << 10
	bigConfigMaps(t, ns, bigN, bigSize)
	pc, pcancel := context.WithTimeout(c, 2*time.Minute)
	defer pcancel()
	if _, err := execNode.CreatePod(pc, ns, "sleeper", cluster.PodOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig := kubeconfigFor(t, f, token)
	h2, h1 := fgClient(t, f, false), fgClient(t, f, true)
	h2.Timeout, h1.Timeout = 0, 0 // bounded by contexts
	list := f.URL + "/api/v1/namespaces/" + ns + "/configmaps"
	waitBigList(t, c, h2, list, token, bigN, bigSize)

	// The load, each request started (response headers received) before
	// the signal.
	type done struct {
		what string
		err  error
		at   time.Time
	}
	results := make(chan done, 16)
	start := func(client *http.Client, url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(c, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", url, err, resp)
		}
		return resp
	}
	const watchSeconds = 12
	var inFlight int
	for i := range 6 {
		client, proto := h2, "HTTP/2"
		if i%3 == 2 {
			client, proto = h1, "HTTP/1.1"
			if i > 2 {
				// Another HTTP/1.1 connection.
				client = fgClient(t, f, true)
				client.Timeout = 0
			}
		}
		resp := start(client, fmt.Sprintf("%s?watch=1&timeoutSeconds=%d&fieldSelector=metadata.name%%3Dafter-sigterm", list, watchSeconds))
		inFlight++
		go func() {
			defer resp.Body.Close()
			lines, errc := watchLines(resp.Body)
			sawEvent := false
			for line := range lines {
				if strings.Contains(line, `"type":"ADDED"`) && strings.Contains(line, `"name":"after-sigterm"`) {
					sawEvent = true
				}
			}
			err := <-errc
			if err == nil && !sawEvent {
				err = fmt.Errorf("ended without the ADDED event of the ConfigMap created after the signal")
			}
			results <- done{what: "watch over " + proto, err: err, at: time.Now()}
		}()
	}
	exec := startKubectl(t, kubectls(t)[0], kubeconfig, nil, false, 2*time.Minute,
		"-n", ns, "exec", "sleeper", "--", "sh", "-c", "echo started; sleep 6; echo finished")
	exec.await(t, "the exec session's first line", time.Minute, func(stdout, _ string) bool { return strings.Contains(stdout, "started") })
	inFlight++
	go func() {
		<-exec.done
		err := exec.err
		if err == nil && exec.stdout.String() != "started\nfinished\n" {
			err = fmt.Errorf("stdout %q, want started and finished", exec.stdout.String())
		}
		results <- done{what: "exec session", err: err, at: time.Now()}
	}()
	// A list of over 1 MiB at 128 KiB/s takes seconds. (One: the next
	// request's response headers would queue behind its body on frontgate's
	// one HTTP/2 connection to kube-apiserver.)
	p.Set(20*time.Millisecond, 128<<10)
	slow := start(h2, list)
	inFlight++
	go func() {
		defer slow.Body.Close()
		body, err := io.ReadAll(slow.Body)
		if err == nil {
			err = checkBigList(body, bigN, bigSize)
		}
		results <- done{what: "slow list", err: err, at: time.Now()}
	}()
	if got := metrics(t, f).Sum("frontgate_http_requests_in_flight", nil); got != float64(inFlight) {
		t.Errorf("frontgate_http_requests_in_flight is %v before the signal, want %d", got, inFlight)
	}

	signalled := time.Now()
	if err := f.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// New connections are refused from now on. (One that raced with the
	// listener's closing may be reset instead: not accepted either.)
	addr := strings.TrimPrefix(f.URL, "https://")
	var refusedAfter time.Duration
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			refusedAfter = time.Since(signalled)
			break
		}
		switch {
		case errors.Is(err, syscall.ECONNRESET):
		case err != nil:
			t.Fatalf("dialing frontgate after SIGTERM: %v, want connection refused", err)
		default:
			conn.Close()
		}
		if time.Since(signalled) > 5*time.Second {
			t.Fatal("frontgate still accepts connections 5 s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A request after the signal, on a client whose HTTP/2 connection
	// carries in-flight watches and on a new one, is not served.
	const lateName = "late-request-after-sigterm"
	for _, client := range []*http.Client{h2, fgClient(t, f, false)} {
		if resp, err := try(c, client, http.MethodGet, list+"/"+lateName, bearer(token), nil); err == nil {
			t.Errorf("a request sent after SIGTERM was answered: HTTP %d %s", resp.code, resp.body)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("a request sent after SIGTERM: %v, want connection refused", err)
		}
	}
	admin(t, "-n", ns, "create", "configmap", "after-sigterm")

	var last time.Time
	for range inFlight {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("%s started before SIGTERM: %v", r.what, r.err)
			} else {
				t.Logf("%s started before SIGTERM completed %s after it", r.what, r.at.Sub(signalled).Round(time.Millisecond))
			}
			last = r.at
		case <-time.After(2 * time.Minute):
			t.Fatal("in-flight requests did not complete within 2 minutes of SIGTERM")
		}
	}
	select {
	case <-f.Process.Exited():
	case <-time.After(time.Minute):
		t.Fatal("frontgate did not exit within a minute of its last request")
	}
	exited := time.Now()
	if code := f.Process.ExitCode(); code != 0 {
		t.Fatalf("frontgate exited with status %d (%v), want 0", code, f.Process.ExitError())
	}
	log, err := f.Process.Log()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), lateName) {
		t.Error("frontgate logged the request sent after SIGTERM")
	}
	for _, s := range []string{"shutting down", `"msg":"stopped"`} {
		if !strings.Contains(string(log), s) {
			t.Errorf("frontgate's log lacks %q", s)
		}
	}
	if strings.Contains(string(log), "did not finish within") || strings.Contains(string(log), "exiting anyway") {
		t.Error("frontgate cut requests short at shutdown")
	}
	t.Logf("SIGTERM with %d requests in flight: new connections refused after %s; all %d completed, the last %s after the signal; exit 0 %s after the last",
		inFlight, refusedAfter.Round(time.Millisecond), inFlight, last.Sub(signalled).Round(time.Millisecond), exited.Sub(last).Round(time.Millisecond))
}
