package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// soakEnv sets the soak's duration (a Go duration: 30m); unset skips it.
const soakEnv = "FRONTGATE_SOAK"

// Soak load, bounded in rate: about 10 GETs/s (lists, single objects,
// SelfSubjectReviews, discovery), 2 writes/s, 4 watches always open (each
// 5–15 s, ended by kube-apiserver at timeoutSeconds), an exec every 2 s, a
// port-forward session (3 HTTP GETs through it) every 4 s, both over
// WebSocket and SPDY in turn, and one interactive exec session open
// throughout, echoing a line every 5 s.
const (
	soakGetters        = 2
	soakGetInterval    = 200 * time.Millisecond
	soakWriteInterval  = 500 * time.Millisecond
	soakWatchers       = 4
	soakExecInterval   = 2 * time.Second
	soakPFInterval     = 4 * time.Second
	soakEchoInterval   = 5 * time.Second
	soakWarmup         = 30 * time.Second
	soakOpTimeout      = time.Minute
	soakUpstreamIdle   = 95 * time.Second // > frontgate's 90 s IdleConnTimeout to kube-apiserver
	soakSettleGCLimit  = 3 * time.Minute  // the runtime forces a GC every 2 minutes
	soakSamples        = 5
	soakSampleInterval = 2 * time.Second
)

// Tolerances of "back to baseline", after the load drained and a garbage
// collection ran, compared with the same measurement after the warm-up:
//
//   - goroutines: +10. Idle, frontgate's goroutines are fixed (listeners,
//     file watches, issuer refresh, the readiness probe and its one HTTP/2
//     connection); what moves is a scrape or probe in progress (a few). A
//     leak per request, watch or session would add hundreds to thousands.
//   - open file descriptors: +5, the same reasoning: listeners, logs and
//     the probe's connection are fixed; a leaked connection per session
//     would add hundreds.
//   - heap in use: +25 % + 2 MiB. Measured after a GC, it is the live heap
//     plus span fragmentation; the live heap of an idle frontgate is its
//     fixed state (one token-cache entry here, buffer pools). 2 MiB absorbs
//     pools and fragmentation; a leak of 1 KiB per operation would add
//     tens of MiB in 30 minutes.
const (
	soakGoroutineSlack = 10
	soakFDSlack        = 5
	soakHeapFactor     = 1.25
	soakHeapSlack      = 2 << 20
)

// TestSoak runs the mixed load through a frontgate of its own against the
// real cluster: a warm-up, then FRONTGATE_SOAK of load. After each, it lets
// the load drain and measures frontgate's goroutines and heap (/metrics)
// and open file descriptors (/proc/PID/fd); after the load they must be
// back to the warm-up's baseline within the tolerances above. Every
// operation is counted as a success or as a failure with its reason
// (frontgate's own Status, kube-apiserver's Status, a transport error,
// kubectl's message); there must be no failure.
func TestSoak(t *testing.T) {
	spec := os.Getenv(soakEnv)
	if spec == "" {
		t.Skipf("set %s to a duration (make soak sets 30m) to run the soak test", soakEnv)
	}
	duration, err := time.ParseDuration(spec)
	if err != nil || duration <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 5m", soakEnv, spec)
	}
	need(t)
	// Warm-up, two settlings of up to soakSettleGCLimit each and the drain.
	overhead := soakWarmup + 2*soakSettleGCLimit + 2*soakOpTimeout
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < duration+overhead {
		t.Fatalf("%s=%s needs up to %s, but the go test -timeout ends in %s: raise it (make soak SOAK_TIMEOUT=...)",
			soakEnv, duration, (duration + overhead).Round(time.Minute), time.Until(deadline).Round(time.Minute))
	}

	s := newSoak(t)
	t.Logf("warm-up: %s of load", soakWarmup)
	s.run(t, soakWarmup)
	baseline := s.settle(t, "baseline")
	warmup := s.tally.reset()
	t.Logf("warm-up: %s", warmup.summary())
	if len(warmup.failures) > 0 {
		t.Errorf("warm-up failures:\n%s", warmup.failureTable())
	}

	t.Logf("soak: %s of load", duration)
	s.run(t, duration)
	final := s.settle(t, "after")
	load := s.tally.reset()
	t.Logf("soak: %s", load.summary())
	if len(load.failures) > 0 {
		t.Errorf("soak failures, by reason:\n%s", load.failureTable())
	}
	if load.total() == 0 {
		t.Fatal("the soak ran no operation")
	}

	check := func(what string, base, after, limit float64, unit string) {
		t.Logf("%s: baseline %s, after %s, limit %s", what, fmtQty(base, unit), fmtQty(after, unit), fmtQty(limit, unit))
		if after > limit {
			t.Errorf("%s did not return to baseline: %s after the load, baseline %s, limit %s", what, fmtQty(after, unit), fmtQty(base, unit), fmtQty(limit, unit))
		}
	}
	check("goroutines", baseline.goroutines, final.goroutines, baseline.goroutines+soakGoroutineSlack, "")
	check("open file descriptors", baseline.fds, final.fds, baseline.fds+soakFDSlack, "")
	check("heap in use", baseline.heapInuse, final.heapInuse, baseline.heapInuse*soakHeapFactor+soakHeapSlack, "MiB")
	t.Logf("frontgate answered (warm-up and soak): %s", final.codes)
	// frontgate's own count agrees: nothing but the load's expected codes
	// (404 is get/missing's, passed through from kube-apiserver).
	for code, n := range final.byCode {
		if code != "101" && code != "200" && code != "201" && code != "404" && n > 0 {
			t.Errorf("frontgate answered %v requests with %s", n, code)
		}
	}
	missing := 0
	for _, tl := range []*tally{warmup, load} {
		missing += tl.ok["get/missing/h1"] + tl.ok["get/missing/h2"]
	}
	if int(final.byCode["404"]) != missing {
		t.Errorf("frontgate answered %v requests with 404, the load expected %d", final.byCode["404"], missing)
	}
}

// soak is the environment of the soak test.
type soak struct {
	f          *cluster.Frontgate
	ns         string
	token      string
	kubeconfig string
	kubectl    kubectlBin
	h2, h1     *http.Client
	scrape     *http.Client
	pfBody     string
	tally      *tally
	seq        atomic.Int64
	current    string // the writer's ConfigMap; only the writer uses it
	sessions   int    // interactive sessions so far; only run uses it
}

func newSoak(t *testing.T) *soak {
	t.Helper()
	s := &soak{tally: newTally(), kubectl: kubectls(t)[0]}
	s.f = startFrontgate(t, cluster.FrontgateOptions{Args: defaultArgs})
	s.ns = namespace(t, "e2e-soak-"+randomSuffix())
	const who = "frank"
	s.token = idToken(t, cluster.ClientWeb, who)
	admin(t, "-n", s.ns, "create", "role", "soak", "--verb=get,list,watch,create,update,delete",
		"--resource=configmaps,pods,pods/exec,pods/portforward")
	admin(t, "-n", s.ns, "create", "rolebinding", "soak", "--role=soak", "--user="+mappedName(who))
	s.kubeconfig = kubeconfigFor(t, s.f, s.token)
	s.h2, s.h1 = fgClient(t, s.f, false), fgClient(t, s.f, true)
	s.h2.Timeout, s.h1.Timeout = 0, 0 // every operation has its own deadline
	s.scrape = &http.Client{Timeout: 10 * time.Second}

	// The port-forward target: an HTTP server the kwok node connects to.
	s.pfBody = strings.Repeat("soak ", 20_000)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Path+"\n"+s.pfBody)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if _, err := execNode.CreatePod(c, s.ns, "exec", cluster.PodOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kwokNode.CreatePod(c, s.ns, "pf", cluster.PodOptions{PortForwards: map[int32]string{8080: l.Addr().String()}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		if _, errOut, err := kubectl(t, s.kubeconfig, "-n", s.ns, "auth", "can-i", "create", "pods/portforward"); err != nil {
			return fmt.Errorf("%v: %s", err, errOut)
		}
		return nil
	})
	return s
}

// run drives the load for d, then lets every operation in progress finish.
func (s *soak) run(t *testing.T, d time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	every := func(interval time.Duration, op func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				op(i)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	for g := range soakGetters {
		every(soakGetInterval, func(i int) { s.get(g, i) })
	}
	every(soakWriteInterval, s.write)
	for range soakWatchers {
		every(time.Millisecond, func(int) { s.watch() })
	}
	every(soakExecInterval, s.exec)
	every(soakPFInterval, s.portForward)
	wg.Add(1)
	v := soakVariant(s.kubectl, s.sessions)
	s.sessions++
	go func() {
		defer wg.Done()
		s.session(v, stop)
	}()

	timer := time.NewTimer(d)
	defer timer.Stop()
	progress := time.NewTicker(time.Minute)
	defer progress.Stop()
	start := time.Now()
	for running := true; running; {
		select {
		case <-timer.C:
			running = false
		case <-progress.C:
			t.Logf("%s in: %s", time.Since(start).Round(time.Second), s.tally.snapshot().summary())
		case <-t.Context().Done():
			running = false
		}
	}
	close(stop)
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * soakOpTimeout):
		t.Fatal("the load did not drain within 2 minutes")
	}
	s.h2.CloseIdleConnections()
	s.h1.CloseIdleConnections()
}

// measurement is frontgate's state once idle.
type measurement struct {
	goroutines, fds, heapInuse float64
	codes                      string
	byCode                     map[string]float64 // frontgate_http_requests_total
}

// settle waits until frontgate is idle (no request in flight), a garbage
// collection ran after that, and its idle connections to kube-apiserver
// timed out; then it samples frontgate a few times and keeps the lowest
// goroutine and descriptor counts and heap (transients such as a scrape in
// progress only ever add).
func (s *soak) settle(t *testing.T, what string) measurement {
	t.Helper()
	start := time.Now()
	for {
		m := s.metrics(t)
		if m.Sum("frontgate_http_requests_in_flight", nil) == 0 && m.Sum("frontgate_upgraded_connections", nil) == 0 {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("%s: frontgate still has requests in flight a minute after the load stopped", what)
		}
		time.Sleep(time.Second)
	}
	idle := time.Now()
	for {
		m := s.metrics(t)
		lastGC := time.Unix(0, int64(m.Sum("go_memstats_last_gc_time_seconds", nil)*1e9))
		if lastGC.After(idle) && time.Since(idle) >= soakUpstreamIdle {
			break
		}
		if time.Since(idle) > soakSettleGCLimit {
			t.Fatalf("%s: no garbage collection in frontgate within %s of the load stopping", what, soakSettleGCLimit)
		}
		time.Sleep(2 * time.Second)
	}
	var out measurement
	for i := range soakSamples {
		m := s.metrics(t)
		fds := openFDs(t, s.f.Process.PID())
		g, h := m.Sum("go_goroutines", nil), m.Sum("go_memstats_heap_inuse_bytes", nil)
		if i == 0 || g < out.goroutines {
			out.goroutines = g
		}
		if i == 0 || fds < out.fds {
			out.fds = fds
		}
		if i == 0 || h < out.heapInuse {
			out.heapInuse = h
		}
		if pfds := m.Sum("process_open_fds", nil); pfds != 0 && pfds != fds {
			t.Logf("%s: process_open_fds %v, /proc/%d/fd %v", what, pfds, s.f.Process.PID(), fds)
		}
		if i == soakSamples-1 {
			out.byCode = codesOf(m)
			out.codes = fmtCodes(out.byCode)
		} else {
			time.Sleep(soakSampleInterval)
		}
	}
	t.Logf("%s (settled %s after the load): %v goroutines, %v open fds, %s heap in use",
		what, time.Since(start).Round(time.Second), out.goroutines, out.fds, fmtQty(out.heapInuse, "MiB"))
	return out
}

func (s *soak) metrics(t *testing.T) cluster.Metrics {
	t.Helper()
	m, err := s.f.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// openFDs counts the open file descriptors of a process.
func openFDs(t *testing.T, pid int) float64 {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return float64(len(entries))
}

// codesOf sums frontgate_http_requests_total by status code.
func codesOf(m cluster.Metrics) map[string]float64 {
	codes := map[string]float64{}
	for _, sm := range m {
		if sm.Name == "frontgate_http_requests_total" {
			codes[sm.Labels["code"]] += sm.Value
		}
	}
	return codes
}

func fmtCodes(codes map[string]float64) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s×%v ", k, codes[k])
	}
	return strings.TrimSpace(b.String())
}

// The operations. Each records one success or one failure with its
// reason in s.tally.

// get is one GET (or SelfSubjectReview) of several kinds, over HTTP/2 or
// HTTP/1.1 in turn.
func (s *soak) get(g, i int) {
	client, proto := s.h2, "h2"
	if (g+i)%2 == 1 {
		client, proto = s.h1, "h1"
	}
	base := s.f.URL + "/api/v1/namespaces/" + s.ns + "/configmaps"
	var kind, method, url string
	var body []byte
	want := http.StatusOK
	switch i % 5 {
	case 0:
		kind, method, url = "get/list", http.MethodGet, base
	case 1:
		kind, method, url = "get/object", http.MethodGet, s.f.URL+"/api/v1/namespaces/"+s.ns+"/pods/exec"
	case 2:
		kind, method, url, body, want = "get/selfsubjectreview", http.MethodPost, s.f.URL+selfSubjectReviewPath, selfSubjectReviewBody, http.StatusCreated
	case 3:
		kind, method, url = "get/discovery", http.MethodGet, s.f.URL+"/apis"
	case 4:
		kind, method, url = "get/missing", http.MethodGet, base+"/does-not-exist"
		want = http.StatusNotFound // kube-apiserver's own 404, passed through
	}
	c, cancel := context.WithTimeout(context.Background(), soakOpTimeout)
	defer cancel()
	resp, err := try(c, client, method, url, bearer(s.token), body)
	s.tally.record(kind+"/"+proto, httpReason(resp, err, want))
}

// write creates, updates or deletes a ConfigMap (feeding the watches).
func (s *soak) write(i int) {
	if i%3 == 0 {
		s.current = fmt.Sprintf("soak-%d", s.seq.Add(1))
	}
	name := s.current
	base := s.f.URL + "/api/v1/namespaces/" + s.ns + "/configmaps"
	cm := func(name, v string) []byte {
		return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q},"data":{"v":%q}}`, name, v)
	}
	c, cancel := context.WithTimeout(context.Background(), soakOpTimeout)
	defer cancel()
	var kind string
	var resp response
	var err error
	want := http.StatusOK
	switch i % 3 {
	case 0:
		kind, want = "write/create", http.StatusCreated
		resp, err = try(c, s.h2, http.MethodPost, base, bearer(s.token), cm(name, "created"))
	case 1:
		kind = "write/update"
		resp, err = try(c, s.h2, http.MethodPut, base+"/"+name, bearer(s.token), cm(name, "updated"))
	case 2:
		kind = "write/delete"
		resp, err = try(c, s.h2, http.MethodDelete, base+"/"+name, bearer(s.token), nil)
	}
	s.tally.record(kind, httpReason(resp, err, want))
}

// watch watches the namespace's ConfigMaps for 5–15 s (kube-apiserver ends
// the watch at timeoutSeconds); it must end cleanly, with only well-formed
// events, not before its time.
func (s *soak) watch() {
	secs := 5 + rand.IntN(11)
	client, proto := s.h2, "h2"
	if secs%2 == 1 {
		client, proto = s.h1, "h1"
	}
	kind := "watch/" + proto
	c, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+soakOpTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(c, http.MethodGet, fmt.Sprintf("%s/api/v1/namespaces/%s/configmaps?watch=1&timeoutSeconds=%d", s.f.URL, s.ns, secs), nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		s.tally.record(kind, transportReason(err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		s.tally.record(kind, httpReason(response{code: resp.StatusCode, header: resp.Header, body: body}, nil, http.StatusOK))
		return
	}
	dec := json.NewDecoder(resp.Body)
	events := 0
	for {
		var ev struct {
			Type   string
			Object json.RawMessage
		}
		err := dec.Decode(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.tally.record(kind, "watch stream broken after "+strconv.Itoa(events)+" events: "+transportReason(err))
			return
		}
		switch ev.Type {
		case "ADDED", "MODIFIED", "DELETED", "BOOKMARK":
			events++
		case "ERROR":
			s.tally.record(kind, "kube-apiserver ERROR event: "+statusText(ev.Object))
			return
		default:
			s.tally.record(kind, "unknown watch event type "+strconv.Quote(ev.Type))
			return
		}
	}
	if took := time.Since(start); took < time.Duration(secs)*time.Second-time.Second {
		s.tally.record(kind, fmt.Sprintf("watch ended early, after %s of %ds", took.Round(time.Second), secs))
		return
	}
	s.tally.add("watch events", events)
	s.tally.record(kind, "")
}

// exec runs one kubectl exec, over WebSocket or SPDY in turn.
func (s *soak) exec(i int) {
	v := soakVariant(s.kubectl, i)
	want := fmt.Sprintf("soak-%d\n", i)
	c, cancel := context.WithTimeout(context.Background(), soakOpTimeout)
	defer cancel()
	cmd := kubectlCommand(c, s.kubectl, s.kubeconfig, v.env(), "-n", s.ns, "exec", "exec", "--", "sh", "-c", "echo soak-"+strconv.Itoa(i))
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	switch {
	case err != nil:
		s.tally.record("exec/"+v.proto, kubectlReason(err, stderr.String()))
	case stdout.String() != want:
		s.tally.record("exec/"+v.proto, fmt.Sprintf("exec printed %q, want %q", abbreviate(stdout.Bytes()), want))
	default:
		s.tally.record("exec/"+v.proto, "")
	}
}

var soakForwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)

// portForward runs one kubectl port-forward session, over WebSocket or
// SPDY in turn: three HTTP GETs through it, then Ctrl-C.
func (s *soak) portForward(i int) {
	v := soakVariant(s.kubectl, i)
	kind := "port-forward/" + v.proto
	c, cancel := context.WithTimeout(context.Background(), soakOpTimeout)
	defer cancel()
	cmd := kubectlCommand(c, s.kubectl, s.kubeconfig, v.env(), "-n", s.ns, "port-forward", "--address", "127.0.0.1", "pod/pf", ":8080")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.tally.record(kind, "stdout pipe: "+err.Error())
		return
	}
	if err := cmd.Start(); err != nil {
		s.tally.record(kind, "starting kubectl: "+err.Error())
		return
	}
	ports, eof := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := soakForwarding.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ports <- m[1]:
				default:
				}
			}
		}
	}()
	var reason string
	select {
	case port := <-ports:
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for j := range 3 {
			path := fmt.Sprintf("/pf-%d-%d", i, j)
			resp, err := client.Get("http://127.0.0.1:" + port + path)
			if err != nil {
				reason = "GET through the forwarded port: " + transportReason(err)
				break
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || string(b) != path+"\n"+s.pfBody {
				reason = fmt.Sprintf("GET through the forwarded port: HTTP %d, %d bytes, %v", resp.StatusCode, len(b), err)
				break
			}
		}
	case <-eof:
		reason = "kubectl port-forward exited before forwarding: " + lastLine(stderr.String())
	case <-c.Done():
		reason = "kubectl port-forward printed no forwarding address: " + lastLine(stderr.String())
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if reason == "" && err != nil && c.Err() == nil {
		var ee *exec.ExitError
		// Ctrl-C ends kubectl port-forward with status 0 (or by the signal).
		if !errors.As(err, &ee) || (ee.ExitCode() != 0 && ee.ExitCode() != -1) {
			reason = kubectlReason(err, stderr.String())
		}
	}
	if reason == "" && strings.Contains(stderr.String(), "error") {
		reason = "kubectl port-forward reported: " + lastLine(stderr.String())
	}
	s.tally.record(kind, reason)
}

// session keeps one interactive exec session (cat) over v open until stop,
// echoing a line every soakEchoInterval; then closes stdin and expects exit
// status 0.
func (s *soak) session(v variant, stop <-chan struct{}) {
	kind := "exec-session/" + v.proto
	c, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
	defer cancel()
	cmd := kubectlCommand(c, s.kubectl, s.kubeconfig, v.env(), "-n", s.ns, "exec", "-i", "exec", "--", "cat")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		s.tally.record(kind, "stdin pipe: "+err.Error())
		return
	}
	if err := cmd.Start(); err != nil {
		s.tally.record(kind, "starting kubectl: "+err.Error())
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var want strings.Builder
	tick := time.NewTicker(soakEchoInterval)
	defer tick.Stop()
	fail := func(reason string) {
		_ = cmd.Process.Kill()
		<-exited
		s.tally.record(kind, reason)
	}
	for n := 0; ; n++ {
		line := fmt.Sprintf("echo-%d\n", n)
		want.WriteString(line)
		if _, err := io.WriteString(stdin, line); err != nil {
			fail("writing to the session: " + err.Error())
			return
		}
		deadline := time.Now().Add(30 * time.Second)
		for stdout.String() != want.String() {
			select {
			case err := <-exited:
				s.tally.record(kind, "the session ended early: "+kubectlReason(err, stderr.String()))
				return
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				fail(fmt.Sprintf("no echo of %q within 30 s (output so far %d bytes)", strings.TrimSpace(line), len(stdout.String())))
				return
			}
		}
		s.tally.add("session echoes", 1)
		select {
		case <-stop:
			stdin.Close()
			select {
			case err := <-exited:
				if err != nil {
					s.tally.record(kind, kubectlReason(err, stderr.String()))
				} else {
					s.tally.record(kind, "")
				}
			case <-time.After(30 * time.Second):
				fail("kubectl exec did not exit within 30 s of stdin closing")
			}
			return
		case <-tick.C:
		}
	}
}

// soakVariant alternates WebSocket and SPDY.
func soakVariant(k kubectlBin, i int) variant {
	if i%2 == 0 {
		return variant{kubectl: k, proto: "websocket"}
	}
	return variant{kubectl: k, proto: "spdy"}
}

// Reasons: every failure is recorded with one, naming who answered or
// what broke.

// httpReason is "" when resp has the wanted code; otherwise who answered
// what: frontgate's own Status (it sends Cache-Control: no-store),
// kube-apiserver's Status, or the transport error.
func httpReason(resp response, err error, want int) string {
	switch {
	case err != nil:
		return transportReason(err)
	case resp.code == want:
		return ""
	}
	who := "kube-apiserver"
	if resp.header.Get("Cache-Control") == "no-store" {
		who = "frontgate"
	}
	if s := asStatus(resp); s != nil {
		return fmt.Sprintf("%s answered %d %s: %s", who, resp.code, s.Reason, normalise(s.Message))
	}
	return fmt.Sprintf("%s answered %d (want %d) without a Status: %.200q", who, resp.code, want, resp.body)
}

// transportReason classifies a transport error.
func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "connection closed mid-response (unexpected EOF)"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "client timeout"
	}
	return "transport error: " + normalise(err.Error())
}

// kubectlReason is kubectl's exit status and last stderr line.
func kubectlReason(err error, stderr string) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Sprintf("kubectl exit %d: %s", ee.ExitCode(), lastLine(stderr))
	}
	return "kubectl: " + err.Error()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return normalise(lines[len(lines)-1])
}

// statusText is the reason and message of a Status in a watch ERROR event.
func statusText(raw json.RawMessage) string {
	if s := asStatus(response{body: raw}); s != nil {
		return fmt.Sprintf("%d %s: %s", s.Code, s.Reason, normalise(s.Message))
	}
	return fmt.Sprintf("%.200s", raw)
}

var numbers = regexp.MustCompile(`[0-9]+`)

// normalise replaces numbers (ports, counts, IDs) so that equal reasons
// group together.
func normalise(s string) string { return numbers.ReplaceAllString(s, "N") }

// fmtQty formats a quantity for the log.
func fmtQty(v float64, unit string) string {
	if unit == "MiB" {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// tally counts operations by kind: successes, and failures by reason.
type tally struct {
	mu       sync.Mutex
	ok       map[string]int
	failures map[string]int // "kind: reason"
	extra    map[string]int
}

func newTally() *tally {
	return &tally{ok: map[string]int{}, failures: map[string]int{}, extra: map[string]int{}}
}

func (t *tally) record(kind, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if reason == "" {
		t.ok[kind]++
		return
	}
	t.failures[kind+": "+reason]++
}

func (t *tally) add(what string, n int) {
	t.mu.Lock()
	t.extra[what] += n
	t.mu.Unlock()
}

// snapshot returns a copy.
func (t *tally) snapshot() *tally {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := newTally()
	for k, v := range t.ok {
		c.ok[k] = v
	}
	for k, v := range t.failures {
		c.failures[k] = v
	}
	for k, v := range t.extra {
		c.extra[k] = v
	}
	return c
}

// reset returns a copy and starts counting anew.
func (t *tally) reset() *tally {
	c := t.snapshot()
	t.mu.Lock()
	t.ok, t.failures, t.extra = map[string]int{}, map[string]int{}, map[string]int{}
	t.mu.Unlock()
	return c
}

func (t *tally) total() int {
	n := 0
	for _, v := range t.ok {
		n += v
	}
	for _, v := range t.failures {
		n += v
	}
	return n
}

func (t *tally) summary() string {
	kinds := map[string]bool{}
	for k := range t.ok {
		kinds[k] = true
	}
	failed := map[string]int{}
	for k, v := range t.failures {
		kind, _, _ := strings.Cut(k, ": ")
		kinds[kind] = true
		failed[kind] += v
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d operations", t.total())
	for _, k := range names {
		fmt.Fprintf(&b, "; %s %d ok", k, t.ok[k])
		if failed[k] > 0 {
			fmt.Fprintf(&b, " %d failed", failed[k])
		}
	}
	extras := make([]string, 0, len(t.extra))
	for k := range t.extra {
		extras = append(extras, k)
	}
	sort.Strings(extras)
	for _, k := range extras {
		fmt.Fprintf(&b, "; %s %d", k, t.extra[k])
	}
	return b.String()
}

func (t *tally) failureTable() string {
	keys := make([]string, 0, len(t.failures))
	for k := range t.failures {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %5d × %s\n", t.failures[k], k)
	}
	return b.String()
}
