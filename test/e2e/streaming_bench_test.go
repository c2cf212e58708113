package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// Benchmarks of the streaming path, run by hand against the suite's cluster
// (they are not part of any test run):
//
//	FRONTGATE_TOOLS_DIR=$(test/tools/install.sh print-dir) go test ./test/e2e/ \
//	    -run '^$' -bench 'PortForward|IdleExec' -benchtime 200x -count 1 -timeout 20m
//
// BenchmarkPortForwardThroughput moves data through one kubectl
// port-forward stream (kwok node → a TCP server of the benchmark) directly
// and through frontgate, in the same run; compare the MB/s. With a fixed
// -benchtime Nx each variant moves N × 4 MiB.
//
// BenchmarkIdleExecSessionMemory opens b.N idle exec sessions (WebSocket,
// as kubectl does, each running cat on the test-kubelet node) through a
// fresh frontgate and reports how much its resident memory, Go heap and
// goroutine count grew per session; use -benchtime 200x (b.N is the number
// of sessions) and -count 1 (further runs start a frontgate each, whose
// start-up message interrupts the result line).

// benchEnv is what the benchmarks share: like a streamEnv, plus a pod on
// each node and the port-forward target.
type benchEnv struct {
	*streamEnv
	token  string
	target string // the TCP server port 8080 of the pf pod forwards to
	// idleFGs are fresh frontgates for BenchmarkIdleExecSessionMemory, one
	// per run of it, started beforehand so that their start-up messages do
	// not break the benchmark's output line.
	idleFGs chan *cluster.Frontgate
}

var (
	benchOnce  sync.Once
	benchSetup *benchEnv
	benchErr   error
)

// setupBench creates the benchmarks' namespace, user, frontgate and pods
// once per run.
func setupBench(b *testing.B) *benchEnv {
	b.Helper()
	if env == nil {
		b.Skip(skipReason)
	}
	benchOnce.Do(func() { benchSetup, benchErr = newBenchEnv() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchSetup
}

func newBenchEnv() (*benchEnv, error) {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp(env.Dir, "bench-")
	if err != nil {
		return nil, err
	}
	e := &benchEnv{streamEnv: &streamEnv{ns: "bench-" + randomSuffix(), dir: dir}}
	adminRun := func(args ...string) error {
		out, err := exec.CommandContext(c, env.Tools.Kubectl, append([]string{"--kubeconfig", env.AdminKubeconfig}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, args := range [][]string{
		{"create", "namespace", e.ns},
		{"-n", e.ns, "create", "role", "stream", "--verb=get,list,watch,create", "--resource=pods,pods/exec,pods/portforward"},
		{"-n", e.ns, "create", "rolebinding", "stream", "--role=stream", "--user=" + mappedName(streamUser)},
	} {
		if err := adminRun(args...); err != nil {
			return nil, err
		}
	}
	var u cluster.User
	for _, x := range env.Users {
		if x.ID == streamUser {
			u = x
		}
	}
	if e.token, err = env.OIDC.IDToken(c, cluster.ClientWeb, u); err != nil {
		return nil, err
	}
	if e.fg, err = env.StartFrontgate(c, cluster.FrontgateOptions{Args: defaultArgs}); err != nil {
		return nil, err
	}
	e.idleFGs = make(chan *cluster.Frontgate, 2) // -count 1: a b.N=1 run, then the real one
	for range cap(e.idleFGs) {
		f, err := env.StartFrontgate(c, cluster.FrontgateOptions{Args: defaultArgs})
		if err != nil {
			return nil, err
		}
		e.idleFGs <- f
	}
	if e.via, err = e.fg.WriteKubeconfig(filepath.Join(dir, "via.kubeconfig"), e.token); err != nil {
		return nil, err
	}
	if e.direct, err = env.WriteDirectKubeconfig(filepath.Join(dir, "direct.kubeconfig"), mappedName(streamUser), "oidc:pwd"); err != nil {
		return nil, err
	}
	if e.target, err = startSource(); err != nil {
		return nil, err
	}
	if _, err := kwokNode.CreatePod(c, e.ns, "pf", cluster.PodOptions{PortForwards: map[int32]string{8080: e.target}}); err != nil {
		return nil, err
	}
	if _, err := execNode.CreatePod(c, e.ns, "idle", cluster.PodOptions{}); err != nil {
		return nil, err
	}
	// RBAC reaches the authorizer a moment later.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := exec.CommandContext(c, env.Tools.Kubectl, "--kubeconfig", e.via, "-n", e.ns, "auth", "can-i", "create", "pods/portforward").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("RBAC for the benchmark user: %v: %s", err, out)
		}
	}
	return e, nil
}

// startSource starts a TCP server that answers each 8-byte big-endian
// length with that many bytes, for as long as the connection lasts.
func startSource() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	block := make([]byte, 256<<10)
	_, _ = rand.Read(block)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				var n uint64
				for binary.Read(conn, binary.BigEndian, &n) == nil {
					for n > 0 {
						k := min(n, uint64(len(block)))
						if _, err := conn.Write(block[:k]); err != nil {
							return
						}
						n -= k
					}
				}
			}()
		}
	}()
	return l.Addr().String(), nil
}

func BenchmarkPortForwardThroughput(b *testing.B) {
	e := setupBench(b)
	const chunk = 4 << 20
	forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
	pinned := kubectls(b)[0]
	for _, proto := range []string{"websocket", "spdy"} {
		for _, leg := range legs {
			b.Run(proto+"/"+leg, func(b *testing.B) {
				v := variant{kubectl: pinned, proto: proto}
				p := startKubectl(b, pinned, e.kubeconfig(leg), v.env(), false, 15*time.Minute,
					"-n", e.ns, "port-forward", "--address", "127.0.0.1", "pod/pf", ":8080")
				p.await(b, "the forwarding address", 30*time.Second, func(stdout, _ string) bool { return forwarding.MatchString(stdout) })
				conn, err := net.Dial("tcp", "127.0.0.1:"+forwarding.FindStringSubmatch(p.stdout.String())[1])
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				buf := make([]byte, 256<<10)
				fetch := func() {
					if err := binary.Write(conn, binary.BigEndian, uint64(chunk)); err != nil {
						b.Fatal(err)
					}
					if _, err := io.CopyBuffer(io.Discard, io.LimitReader(conn, chunk), buf); err != nil {
						b.Fatal(err)
					}
				}
				fetch() // connect the stream through to the target
				b.SetBytes(chunk)
				b.ResetTimer()
				for range b.N {
					fetch()
				}
				b.StopTimer()
				conn.Close()
				p.interrupt(b)
			})
		}
	}
}

func BenchmarkIdleExecSessionMemory(b *testing.B) {
	e := setupBench(b)
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A fresh frontgate, so nothing it served before blurs the numbers.
	var f *cluster.Frontgate
	select {
	case f = <-e.idleFGs:
	default:
		var err error
		if f, err = env.StartFrontgate(c, cluster.FrontgateOptions{Args: defaultArgs}); err != nil {
			b.Fatal(err)
		}
	}
	defer f.Stop()
	client, err := f.HTTPClient(true)
	if err != nil {
		b.Fatal(err)
	}
	tlsConfig := client.Transport.(*http.Transport).TLSClientConfig
	// Warm up: the first session loads the token cache, transports, ...
	warm, err := openIdleExec(f.URL, tlsConfig, e.token, e.ns, "idle")
	if err != nil {
		b.Fatal(err)
	}
	defer warm.Close()
	time.Sleep(2 * time.Second)
	before := sampleProcess(b, f)
	b.ResetTimer()
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for range b.N {
		conn, err := openIdleExec(f.URL, tlsConfig, e.token, e.ns, "idle")
		if err != nil {
			b.Fatalf("session %d: %v", len(conns)+1, err)
		}
		conns = append(conns, conn)
	}
	b.StopTimer()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		m, err := f.Metrics(c)
		if err == nil && m.Sum("frontgate_upgraded_connections", nil) == float64(b.N+1) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("frontgate does not count %d open sessions", b.N+1)
		}
	}
	time.Sleep(2 * time.Second) // let the sessions settle
	after := sampleProcess(b, f)
	n := float64(b.N)
	b.ReportMetric((after.rss-before.rss)/n, "rss-B/session")
	b.ReportMetric((after.heap-before.heap)/n, "heap-B/session")
	b.ReportMetric((after.goroutines-before.goroutines)/n, "goroutines/session")
	b.Logf("%d idle sessions: RSS %.1f -> %.1f MiB, heap in use %.1f -> %.1f MiB, goroutines %.0f -> %.0f",
		b.N, before.rss/(1<<20), after.rss/(1<<20), before.heap/(1<<20), after.heap/(1<<20), before.goroutines, after.goroutines)
}

// openIdleExec opens `kubectl exec -i POD -- cat` as kubectl does over
// WebSocket (v5.channel.k8s.io) through frontgate at baseURL, and returns
// the switched connection, idle.
func openIdleExec(baseURL string, tlsConfig *tls.Config, token, ns, pod string) (net.Conn, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	cfg := tlsConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", u.Host, cfg)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "GET /api/v1/namespaces/%s/pods/%s/exec?command=cat&stdin=true&stdout=true&stderr=true HTTP/1.1\r\n"+
		"Host: %s\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
		ns, pod, u.Host, token, base64.StdEncoding.EncodeToString(key))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		conn.Close()
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// processSample is frontgate's memory and goroutines at one moment.
type processSample struct{ rss, heap, goroutines float64 }

func sampleProcess(b *testing.B, f *cluster.Frontgate) processSample {
	b.Helper()
	var s processSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", f.Process.PID()))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			s.rss = kb * 1024
		}
	}
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := f.Metrics(c)
	if err != nil {
		b.Fatal(err)
	}
	s.heap = m.Sum("go_memstats_heap_inuse_bytes", nil)
	s.goroutines = m.Sum("go_goroutines", nil)
	return s
}
