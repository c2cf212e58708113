package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestStreamingExec: kubectl exec, non-interactive and with stdin, on the
// test-kubelet node (faithful stdin EOF and exit codes) and on the kwok
// node, gives identical stdout, stderr and exit status directly and through
// frontgate, for every kubectl version and protocol; frontgate counts each
// session as an upgrade of that protocol, and it carries them over HTTP/1.1
// on both legs while ordinary requests use HTTP/2 on both.
func TestStreamingExec(t *testing.T) {
	need(t)
	t.Parallel()
	s := newStreamEnv(t, "e2e-exec")
	s.pod(t, execNode, "exec", cluster.PodOptions{})
	s.pod(t, kwokNode, "kwok", cluster.PodOptions{})
	input := make([]byte, 1<<20)
	_, _ = rand.Read(input)
	inputSum := sha256.Sum256(input)
	var seq bytes.Buffer
	for i := 1; i <= 300000; i++ {
		fmt.Fprintf(&seq, "%d\n", i)
	}

	cases := []struct {
		name  string
		stdin []byte
		args  []string
		// check validates the result where the node agent is faithful;
		// nil means only direct and frontgate are compared.
		check func(r result) error
	}{{
		name: "stdout, stderr and exit code",
		args: []string{"exec", "exec", "--", "sh", "-c", "echo out; echo err >&2; exit 3"},
		check: func(r result) error {
			return expect(r, 3, "out\n", "err\n")
		},
	}, {
		name:  "1 MiB of stdin until EOF, output after EOF",
		stdin: input,
		args:  []string{"exec", "-i", "exec", "--", "sh", "-c", "sha256sum; echo after-eof; sleep 0.3; echo still-flowing >&2"},
		check: func(r result) error {
			return expect(r, 0, hex.EncodeToString(inputSum[:])+"  -\nafter-eof\n", "still-flowing\n")
		},
	}, {
		name: "2 MB of stdout",
		args: []string{"exec", "exec", "--", "seq", "1", "300000"},
		check: func(r result) error {
			return expect(r, 0, seq.String(), "")
		},
	}, {
		name: "kwok: stdout, stderr and exit status",
		args: []string{"exec", "kwok", "--", "sh", "-c", "echo out; echo err >&2; exit 3"},
	}}
	forEachVariant(t, func(t *testing.T, v variant) {
		before := s.upgrades(t)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var got [2]result
				for i, leg := range legs {
					got[i] = runKubectl(t, v.kubectl, s.kubeconfig(leg), v.env(), bytes.NewReader(tc.stdin), commandTimeout,
						append([]string{"-n", s.ns}, tc.args...)...)
				}
				sameResult(t, got[0], got[1])
				if tc.check == nil {
					t.Logf("kwok answered (the same both ways): %s", got[1])
				} else if err := tc.check(got[1]); err != nil {
					t.Errorf("through frontgate: %v\n%s", err, got[1])
				}
			})
		}
		s.checkUpgrades(t, before, v, len(cases))
	})

	t.Run("protocols of both legs", func(t *testing.T) {
		checkLegProtocols(t, s.fg)
	})
}

// expect checks a result against the exit status, stdout and the start of
// stderr (kubectl adds its own line after a failed command).
func expect(r result, code int, stdout, stderrPrefix string) error {
	switch {
	case r.code != code:
		return fmt.Errorf("exit status %d, want %d", r.code, code)
	case string(r.stdout) != stdout:
		return fmt.Errorf("stdout %s, want %d bytes %s", abbreviate(r.stdout), len(stdout), abbreviate([]byte(stdout)))
	case !strings.HasPrefix(string(r.stderr), stderrPrefix):
		return fmt.Errorf("stderr %q, want it to start with %q", r.stderr, stderrPrefix)
	}
	return nil
}

// checkLegProtocols reads f's access log: every upgrade (exec, attach, cp,
// port-forward) came in over HTTP/1.1 and went to kube-apiserver over
// HTTP/1.1; kubectl's ordinary requests came in over HTTP/2 and went out
// over HTTP/2.
func checkLegProtocols(t *testing.T, f *cluster.Frontgate) {
	t.Helper()
	data, err := f.Process.Log()
	if err != nil {
		t.Fatal(err)
	}
	var upgrades, ordinary int
	for line := range strings.SplitSeq(string(data), "\n") {
		var l struct {
			Msg, Method, Path, Upgrade string
			Status                     int
			Proto                      string
			UpstreamProto              string `json:"upstream_proto"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "request" {
			continue
		}
		switch {
		case l.Upgrade != "":
			upgrades++
			if l.Status != http.StatusSwitchingProtocols || l.Proto != "HTTP/1.1" || l.UpstreamProto != "HTTP/1.1" {
				t.Errorf("upgrade %s %s: status %d, client leg %q, upstream leg %q; want 101 over HTTP/1.1 on both", l.Method, l.Path, l.Status, l.Proto, l.UpstreamProto)
			}
		case l.Status < 300:
			ordinary++
			if l.Proto != "HTTP/2.0" || l.UpstreamProto != "HTTP/2.0" {
				t.Errorf("%s %s: client leg %q, upstream leg %q; want HTTP/2.0 on both", l.Method, l.Path, l.Proto, l.UpstreamProto)
			}
		}
	}
	if upgrades == 0 || ordinary == 0 {
		t.Errorf("frontgate logged %d upgrades and %d ordinary requests; want some of each", upgrades, ordinary)
	}
}

// TestStreamingExecTTY: kubectl exec -it on a pseudo-terminal: the terminal
// size reaches the process, a resize of the local terminal reaches it as an
// event, input typed is echoed, and the exit code comes back — the same
// transcript directly and through frontgate.
func TestStreamingExecTTY(t *testing.T) {
	need(t)
	t.Parallel()
	s := newStreamEnv(t, "e2e-tty")
	s.pod(t, execNode, "tty", cluster.PodOptions{})
	// The first loop waits for kubectl's initial size, the second for the
	// resize, so the transcript does not depend on timing. The pause before
	// exiting lets the last line reach kubectl before the exit status does:
	// over SPDY, kubectl may otherwise stop reading stdout first and drop it,
	// directly as through frontgate.
	const script = `echo ready; while [ "$(stty size)" = "0 0" ]; do sleep 0.05; done; read a; stty size; ` +
		`while [ "$(stty size)" = "24 80" ]; do sleep 0.05; done; stty size; echo "got $a"; sleep 0.5; exit 3`
	forEachVariant(t, func(t *testing.T, v variant) {
		before := s.upgrades(t)
		var got [2]result
		for i, leg := range legs {
			got[i] = ttySession(t, v, s.kubeconfig(leg), "-n", s.ns, "exec", "-it", "tty", "--", "sh", "-c", script)
		}
		sameResult(t, got[0], got[1])
		if want := "ready\r\none\r\n24 80\r\n40 120\r\ngot one\r\n"; got[1].code != 3 || !strings.HasPrefix(string(got[1].stdout), want) {
			t.Errorf("through frontgate: %s; want exit 3 and a transcript starting %q", got[1], want)
		}
		s.checkUpgrades(t, before, v, 1)
	})
}

// TestStreamingAttach: kubectl attach to a kwok pod streams the container's
// stdout and stderr as they are written, identically directly and through
// frontgate.
func TestStreamingAttach(t *testing.T) {
	need(t)
	t.Parallel()
	s := newStreamEnv(t, "e2e-attach")
	pod := s.pod(t, kwokNode, "attach", cluster.PodOptions{})
	forEachVariant(t, func(t *testing.T, v variant) {
		before := s.upgrades(t)
		var procs [2]*background
		for i, leg := range legs {
			procs[i] = startKubectl(t, v.kubectl, s.kubeconfig(leg), v.env(), false, 2*time.Minute, "-n", s.ns, "attach", "attach")
		}
		// kwok's attach shows lines written after it connected: write sync
		// lines until both show one, then the lines to compare.
		synced := func(stdout, _ string) bool { return strings.Contains(stdout, "sync-") }
		for i := 0; !synced(procs[0].stdout.String(), "") || !synced(procs[1].stdout.String(), ""); i++ {
			if i == 100 {
				t.Fatalf("attach did not connect: %q, %q / %q, %q", procs[0].stdout, procs[0].stderr, procs[1].stdout, procs[1].stderr)
			}
			appendLog(t, pod, "stdout", fmt.Sprintf("sync-%d", i))
			time.Sleep(100 * time.Millisecond)
		}
		appendLog(t, pod, "stdout", "begin")
		appendLog(t, pod, "stderr", "begin")
		streamLines(t, pod, procs[:], "", 5)
		var got [2]result
		for i, p := range procs {
			got[i] = p.interrupt(t)
			got[i].stdout = after(got[i].stdout, "begin\n")
			got[i].stderr = after(got[i].stderr, "begin\n")
		}
		sameResult(t, got[0], got[1])
		if want := lines("", 5); string(got[1].stdout) != want {
			t.Errorf("through frontgate stdout after begin = %q, want %q", got[1].stdout, want)
		}
		s.checkUpgrades(t, before, v, 1)
	})
}

// appendLog writes one line to a kwok pod's container log.
func appendLog(t *testing.T, pod *cluster.Pod, stream, line string) {
	t.Helper()
	if err := pod.AppendLog(stream, line); err != nil {
		t.Fatal(err)
	}
}

// streamLines writes prefix+"line-i" to the pod's stdout and prefix+"err-i"
// to its stderr for i = 1..n, each pair only after every kubectl showed the
// previous one (on its stdout or stderr): output streams as it is produced,
// not when the stream ends.
func streamLines(t *testing.T, pod *cluster.Pod, procs []*background, prefix string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		line, errLine := fmt.Sprintf("%sline-%d", prefix, i), fmt.Sprintf("%serr-%d", prefix, i)
		appendLog(t, pod, "stdout", line)
		appendLog(t, pod, "stderr", errLine)
		for _, p := range procs {
			p.await(t, line+" and "+errLine, 20*time.Second, func(stdout, stderr string) bool {
				all := stdout + stderr
				return strings.Contains(all, line+"\n") && strings.Contains(all, errLine+"\n")
			})
		}
	}
}

// lines returns prefix+"line-i\n" for i = 1..n.
func lines(prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%sline-%d\n", prefix, i)
	}
	return b.String()
}

// after returns what follows the first marker in b (nil if absent).
func after(b []byte, marker string) []byte {
	if i := bytes.Index(b, []byte(marker)); i >= 0 {
		return b[i+len(marker):]
	}
	return nil
}

// TestStreamingCopy: kubectl cp of a 10 MiB random file into a pod and back
// out, directly and through frontgate: same output, same checksum.
func TestStreamingCopy(t *testing.T) {
	need(t)
	t.Parallel()
	s := newStreamEnv(t, "e2e-cp")
	s.pod(t, execNode, "cp", cluster.PodOptions{})
	data := make([]byte, 10<<20)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	local := filepath.Join(s.dir, "data.bin")
	if err := os.WriteFile(local, data, 0o600); err != nil {
		t.Fatal(err)
	}
	checkSum := func(t *testing.T, path string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sha256.Sum256(got) != want {
			t.Errorf("%s: %d bytes with sha256 %x, want %d bytes with sha256 %x", path, len(got), sha256.Sum256(got), len(data), want)
		}
	}
	forEachVariant(t, func(t *testing.T, v variant) {
		before := s.upgrades(t)
		var up, down [2]result
		for i, leg := range legs {
			// The "container" of the test-kubelet is its working directory.
			remote := filepath.Join(execNode.WorkDir, s.ns, strings.ReplaceAll(v.name(), "/", "-"), leg)
			if err := os.MkdirAll(remote, 0o755); err != nil {
				t.Fatal(err)
			}
			up[i] = runKubectl(t, v.kubectl, s.kubeconfig(leg), v.env(), nil, commandTimeout, "-n", s.ns, "cp", local, "cp:"+remote+"/data.bin")
			checkSum(t, filepath.Join(remote, "data.bin"))
			back := filepath.Join(s.dir, strings.ReplaceAll(v.name(), "/", "-")+"-"+leg+".bin")
			down[i] = runKubectl(t, v.kubectl, s.kubeconfig(leg), v.env(), nil, commandTimeout, "-n", s.ns, "cp", "cp:"+remote+"/data.bin", back)
			checkSum(t, back)
		}
		// The remote path differs by leg; compare with it masked.
		for i, leg := range legs {
			for _, r := range []*result{&up[i], &down[i]} {
				r.stderr = bytes.ReplaceAll(r.stderr, []byte("/"+leg+"/"), []byte("/LEG/"))
			}
		}
		sameResult(t, up[0], up[1])
		sameResult(t, down[0], down[1])
		if up[1].code != 0 || down[1].code != 0 {
			t.Errorf("through frontgate: cp into the pod: %s; out of it: %s", up[1], down[1])
		}
		// Into the pod: `test -d` and `tar x`; out of it: `tar c`.
		s.checkUpgrades(t, before, v, 3)
	})
	if n := metrics(t, s.fg).Sum("frontgate_upgraded_bytes_total", map[string]string{"direction": "to_upstream"}); n < float64(len(variants(t))/2*len(data)) {
		t.Errorf("frontgate_upgraded_bytes_total{direction=to_upstream} = %v, want at least %d (10 MiB per cp into the pod)", n, len(variants(t))/2*len(data))
	}
}

// TestStreamingPortForward: kubectl port-forward to a port the kwok node
// forwards to an HTTP server of the test: one request, then several
// concurrent connections, each answered correctly; kubectl prints the same
// directly and through frontgate.
func TestStreamingPortForward(t *testing.T) {
	need(t)
	t.Parallel()
	const concurrent = 8
	body := func(path string) string { return path + "\n" + strings.Repeat("frontgate ", 25_000) }
	var mu sync.Mutex
	barriers := map[string]chan struct{}{}
	arrived := map[string]int{}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// /TAG/c/N waits until all concurrent requests of TAG arrived.
		if parts := strings.Split(r.URL.Path, "/"); len(parts) == 4 && parts[2] == "c" {
			mu.Lock()
			ch, ok := barriers[parts[1]]
			if !ok {
				ch = make(chan struct{})
				barriers[parts[1]] = ch
			}
			if arrived[parts[1]]++; arrived[parts[1]] == concurrent {
				close(ch)
			}
			mu.Unlock()
			select {
			case <-ch:
			case <-time.After(30 * time.Second):
				http.Error(w, "the other concurrent requests did not arrive", http.StatusGatewayTimeout)
				return
			}
		}
		_, _ = io.WriteString(w, body(r.URL.Path))
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	s := newStreamEnv(t, "e2e-pf")
	s.pod(t, kwokNode, "pf", cluster.PodOptions{PortForwards: map[int32]string{8080: l.Addr().String()}})
	forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
	forEachVariant(t, func(t *testing.T, v variant) {
		before := s.upgrades(t)
		var got [2]result
		for i, leg := range legs {
			p := startKubectl(t, v.kubectl, s.kubeconfig(leg), v.env(), false, 2*time.Minute,
				"-n", s.ns, "port-forward", "--address", "127.0.0.1", "pod/pf", ":8080")
			p.await(t, "the forwarding address", 30*time.Second, func(stdout, _ string) bool { return forwarding.MatchString(stdout) })
			port := forwarding.FindStringSubmatch(p.stdout.String())[1]
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			get := func(path string) error {
				resp, err := client.Get("http://127.0.0.1:" + port + path)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusOK || string(b) != body(path) {
					return fmt.Errorf("GET %s: HTTP %d, %d bytes %s", path, resp.StatusCode, len(b), abbreviate(b))
				}
				return nil
			}
			tag := strings.NewReplacer("/", "-", ".", "-").Replace(v.name()) + "-" + leg
			if err := get("/" + tag + "/first"); err != nil {
				t.Errorf("%s: %v", leg, err)
			}
			errs := make(chan error, concurrent)
			for n := range concurrent {
				go func() { errs <- get(fmt.Sprintf("/%s/c/%d", tag, n)) }()
			}
			for range concurrent {
				if err := <-errs; err != nil {
					t.Errorf("%s: concurrent connection: %v", leg, err)
				}
			}
			// kubectl logs each connection; wait for all before stopping.
			p.await(t, "a line per connection", 30*time.Second, func(stdout, _ string) bool {
				return strings.Count(stdout, "Handling connection for") == concurrent+1
			})
			got[i] = p.interrupt(t)
			got[i].stdout = []byte(strings.ReplaceAll(string(got[i].stdout), port, "PORT"))
		}
		sameResult(t, got[0], got[1])
		s.checkUpgrades(t, before, v, 1)
	})
}

// TestStreamingLogsFollow: kubectl logs -f streams lines of a kwok pod as
// they are written, identically directly and through frontgate. (Logs are
// a streamed HTTP response, not an upgrade: there is no WebSocket or SPDY
// variant.)
func TestStreamingLogsFollow(t *testing.T) {
	need(t)
	t.Parallel()
	s := newStreamEnv(t, "e2e-logs")
	pod := s.pod(t, kwokNode, "logs", cluster.PodOptions{})
	appendLog(t, pod, "stdout", "before-1")
	appendLog(t, pod, "stderr", "before-2")
	for _, k := range kubectls(t) {
		t.Run("kubectl-"+k.name, func(t *testing.T) {
			if k.skip != "" {
				t.Skip(k.skip)
			}
			before := s.upgrades(t)
			var procs [2]*background
			for i, leg := range legs {
				procs[i] = startKubectl(t, k, s.kubeconfig(leg), nil, false, 2*time.Minute, "-n", s.ns, "logs", "-f", "logs")
			}
			for _, p := range procs {
				p.await(t, "the lines written before", 30*time.Second, func(stdout, _ string) bool { return strings.Contains(stdout, "before-2\n") })
			}
			prefix := k.name + "-"
			streamLines(t, pod, procs[:], prefix, 5)
			var got [2]result
			for i, p := range procs {
				got[i] = p.interrupt(t)
			}
			sameResult(t, got[0], got[1])
			if !strings.HasPrefix(string(got[1].stdout), "before-1\nbefore-2\n") || !strings.HasSuffix(string(got[1].stdout), prefix+"line-5\n"+prefix+"err-5\n") {
				t.Errorf("through frontgate: %s", got[1])
			}
			if after := s.upgrades(t); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("frontgate counted upgrades for kubectl logs: %v -> %v", before, after)
			}
		})
	}
}

// TestStreamingConcurrentExec: 50 exec sessions through one frontgate at the
// same time (half WebSocket, half SPDY), each with its own input, all
// correct.
func TestStreamingConcurrentExec(t *testing.T) {
	need(t)
	t.Parallel()
	const sessions = 50
	s := newStreamEnv(t, "e2e-exec50")
	s.pod(t, execNode, "many", cluster.PodOptions{})
	procs := make([]*background, sessions)
	protos := map[string]float64{}
	for i := range procs {
		v := variant{kubectl: kubectls(t)[0], proto: []string{"websocket", "spdy"}[i%2]}
		protos[v.proto]++
		procs[i] = startKubectl(t, v.kubectl, s.via, v.env(), true, 3*time.Minute,
			"-n", s.ns, "exec", "-i", "many", "--", "sh", "-c", "cat; echo done")
	}
	// All sessions are open at once before any gets its input.
	eventually(t, 2*time.Minute, func() error {
		m := metrics(t, s.fg)
		for proto, want := range protos {
			if got := m.Sum("frontgate_upgraded_connections", map[string]string{"protocol": proto}); got != want {
				return fmt.Errorf("frontgate_upgraded_connections{protocol=%s} = %v, want %v", proto, got, want)
			}
		}
		return nil
	})
	payload := func(i int) string { return strings.Repeat(fmt.Sprintf("session %d\n", i), 2000) }
	for i, p := range procs {
		go func() {
			_, _ = io.WriteString(p.stdin, payload(i))
			p.stdin.Close()
		}()
	}
	for i, p := range procs {
		r := p.wait(t, 2*time.Minute)
		if err := expect(r, 0, payload(i)+"done\n", ""); err != nil || len(r.stderr) != 0 {
			t.Errorf("session %d: %v; %s", i, err, r)
		}
	}
	eventually(t, 30*time.Second, func() error {
		if n := metrics(t, s.fg).Sum("frontgate_upgraded_connections", nil); n != 0 {
			return fmt.Errorf("frontgate_upgraded_connections = %v after every session ended, want 0", n)
		}
		return nil
	})
}

// longIdleEnv overrides how long TestStreamingLongIdle's streams stay idle
// (a Go duration, e.g. 5s for a quick local run).
const longIdleEnv = "FRONTGATE_E2E_LONG_IDLE"

// longIdle is how long the long-lived streams of TestStreamingLongIdle stay
// idle: by default longer than frontgate's HTTP idle timeout (120 s).
func longIdle(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv(longIdleEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %v", longIdleEnv, err)
		}
		return d
	}
	return 130 * time.Second
}

// TestStreamingLongIdle: watches (kubectl over HTTP/2, a client over
// HTTP/1.1) and exec sessions (WebSocket, SPDY) through frontgate, with
// every kubectl version, stay open while nothing happens for longer than any
// frontgate timeout, and still work afterwards; each kubectl watch prints
// the same as the same kubectl watching directly.
func TestStreamingLongIdle(t *testing.T) {
	need(t)
	t.Parallel()
	s := newStreamEnv(t, "e2e-idle")
	s.pod(t, execNode, "idle", cluster.PodOptions{})
	admin(t, "-n", s.ns, "create", "configmap", "before")
	idle := longIdle(t)
	limit := idle + 3*time.Minute

	type watch struct {
		name string
		legs [2]*background // direct, through frontgate
	}
	var watches []watch
	var all []*background
	sessions := map[string]*background{}
	for _, k := range kubectls(t) {
		if k.skip != "" {
			t.Logf("kubectl %s variants skipped: %s", k.name, k.skip)
			continue
		}
		w := watch{name: k.name}
		for i, leg := range legs {
			w.legs[i] = startKubectl(t, k, s.kubeconfig(leg), nil, false, limit, "-n", s.ns, "get", "configmaps", "--watch", "-o", "name")
			all = append(all, w.legs[i])
		}
		watches = append(watches, w)
		for _, proto := range []string{"websocket", "spdy"} {
			v := variant{kubectl: k, proto: proto}
			p := startKubectl(t, k, s.via, v.env(), true, limit, "-n", s.ns, "exec", "-i", "idle", "--", "cat")
			_, _ = io.WriteString(p.stdin, "ping-1\n")
			p.await(t, "the first echo", 30*time.Second, func(stdout, _ string) bool { return stdout == "ping-1\n" })
			sessions[v.name()] = p
			all = append(all, p)
		}
	}
	events := http1Watch(t, s, limit)
	for _, w := range watches {
		for _, p := range w.legs {
			p.await(t, "configmap/before", 30*time.Second, func(stdout, _ string) bool { return strings.Contains(stdout, "configmap/before\n") })
		}
	}

	t.Logf("idle for %s", idle)
	for end := time.Now().Add(idle); time.Now().Before(end); time.Sleep(time.Second) {
		for _, p := range all {
			select {
			case <-p.done:
				t.Fatalf("kubectl %s ended while idle: %v; stdout %q, stderr %q", strings.Join(p.cmd.Args[5:], " "), p.err, p.stdout, p.stderr)
			default:
			}
		}
	}

	admin(t, "-n", s.ns, "create", "configmap", "after-idle")
	for _, w := range watches {
		for _, p := range w.legs {
			p.await(t, "configmap/after-idle", 30*time.Second, func(stdout, _ string) bool { return strings.Contains(stdout, "configmap/after-idle\n") })
		}
	}
	select {
	case name := <-events:
		if name != "after-idle" {
			t.Errorf("HTTP/1.1 watch through frontgate: first event after the idle time is for %q, want after-idle", name)
		}
	case <-time.After(30 * time.Second):
		t.Error("HTTP/1.1 watch through frontgate: no event after the idle time")
	}
	for name, p := range sessions {
		_, _ = io.WriteString(p.stdin, "ping-2\n")
		p.stdin.Close()
		if r := p.wait(t, 30*time.Second); r.code != 0 || string(r.stdout) != "ping-1\nping-2\n" {
			t.Errorf("%s exec session after %s idle: %s", name, idle, r)
		}
	}
	for _, w := range watches {
		t.Run("watch/kubectl-"+w.name, func(t *testing.T) {
			var got [2]result
			for i, p := range w.legs {
				got[i] = p.interrupt(t)
			}
			sameResult(t, got[0], got[1])
		})
	}
}

// http1Watch starts a watch of configmaps through s's frontgate over
// HTTP/1.1 and returns the names of the objects added after the initial
// list. Nothing bounds the response but limit.
func http1Watch(t *testing.T, s *streamEnv, limit time.Duration) <-chan string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	client := fgClient(t, s.fg, true)
	client.Timeout = 0
	token := idToken(t, cluster.ClientWeb, streamUser)
	var list struct {
		Metadata struct{ ResourceVersion string }
	}
	resp := send(t, client, http.MethodGet, s.fg.URL+"/api/v1/namespaces/"+s.ns+"/configmaps", bearer(token), nil)
	if resp.code != http.StatusOK || json.Unmarshal(resp.body, &list) != nil {
		t.Fatalf("listing configmaps: HTTP %d %s", resp.code, resp.body)
	}
	req, _ := http.NewRequestWithContext(c, http.MethodGet, s.fg.URL+"/api/v1/namespaces/"+s.ns+"/configmaps?watch=true&resourceVersion="+list.Metadata.ResourceVersion, nil)
	req.Header = bearer(token)
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != http.StatusOK || r.ProtoMajor != 1 {
		t.Fatalf("watch through frontgate: HTTP %d over %s", r.StatusCode, r.Proto)
	}
	events := make(chan string, 16)
	go func() {
		defer r.Body.Close()
		dec := json.NewDecoder(r.Body)
		for {
			var ev struct {
				Type   string
				Object struct{ Metadata struct{ Name string } }
			}
			if dec.Decode(&ev) != nil {
				return
			}
			if ev.Type == "ADDED" {
				select {
				case events <- ev.Object.Metadata.Name:
				case <-c.Done():
					return
				}
			}
		}
	}()
	return events
}
