package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/frontgate/frontgate/test/cluster"
)

// The streaming tests are differential: every kubectl command runs once
// directly against kube-apiserver and once through frontgate, as the same
// user, and what kubectl printed and returned must be identical. Whatever the
// node agent does (see cluster.NodeAgent for its fidelity) then cancels out,
// and where it is faithful the tests also check the expected result.

// streamUser is the OpenID Provider user of the streaming tests.
const streamUser = "dave"

// oldKubectlEnv names an older kubectl to run every streaming case with, in
// addition to the pinned one; unset means the tools' kubectl-old (Kubernetes
// 1.29, test/tools/kubectl-old).
const oldKubectlEnv = "FRONTGATE_E2E_OLD_KUBECTL"

// kubectlBin is one kubectl binary the streaming tests run.
type kubectlBin struct {
	name string // "pinned" or its version, e.g. "v1.29.6"
	path string
	// minor is its Kubernetes minor release (29 for v1.29.6).
	minor int
	// skip, when set, is why this kubectl is not available here.
	skip string
}

var (
	kubectlsOnce sync.Once
	kubectlsList []kubectlBin
	kubectlsErr  error
)

// kubectls returns the pinned kubectl and the older one (with a skip reason
// when an older one named by oldKubectlEnv is not there).
func kubectls(t testing.TB) []kubectlBin {
	t.Helper()
	kubectlsOnce.Do(func() {
		pinned := kubectlBin{name: "pinned", path: env.Tools.Kubectl}
		if _, pinned.minor, kubectlsErr = kubectlRelease(pinned.path); kubectlsErr != nil {
			return
		}
		old := kubectlBin{name: "old", path: os.Getenv(oldKubectlEnv)}
		if old.path == "" {
			old.path = env.Tools.KubectlOld
		}
		if st, err := os.Stat(old.path); err != nil || st.IsDir() {
			old.skip = fmt.Sprintf("no older kubectl at %s (%s names one)", old.path, oldKubectlEnv)
		} else if version, minor, err := kubectlRelease(old.path); err != nil {
			old.skip = err.Error()
		} else {
			old.name, old.minor = version, minor
		}
		kubectlsList = []kubectlBin{pinned, old}
	})
	if kubectlsErr != nil {
		t.Fatal(kubectlsErr)
	}
	return kubectlsList
}

// kubectlRelease asks the kubectl at path for its release, e.g. "v1.29.6"
// and minor release 29.
func kubectlRelease(path string) (string, int, error) {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(c, path, "version", "--client", "-o", "json").Output()
	var v struct {
		ClientVersion struct{ GitVersion, Minor string }
	}
	if err != nil || json.Unmarshal(out, &v) != nil || v.ClientVersion.GitVersion == "" {
		return "", 0, fmt.Errorf("%s does not report its version (%v): %s", path, err, out)
	}
	minor, err := strconv.Atoi(strings.TrimSuffix(v.ClientVersion.Minor, "+"))
	if err != nil {
		return "", 0, fmt.Errorf("%s reports minor release %q: %v", path, v.ClientVersion.Minor, err)
	}
	return strings.TrimSuffix(v.ClientVersion.GitVersion, "-dispatcher"), minor, nil
}

// variant is one way kubectl streams: a kubectl binary and a protocol.
type variant struct {
	kubectl kubectlBin
	proto   string // "websocket" or "spdy", as frontgate's metrics name them
}

func (v variant) name() string { return "kubectl-" + v.kubectl.name + "/" + v.proto }

// env selects the protocol for exec, attach, cp and port-forward.
func (v variant) env() []string {
	ws := "true"
	if v.proto == "spdy" {
		ws = "false"
	}
	return []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=" + ws, "KUBECTL_PORT_FORWARD_WEBSOCKETS=" + ws}
}

// variants returns every kubectl × protocol combination.
func variants(t *testing.T) []variant {
	var out []variant
	for _, k := range kubectls(t) {
		for _, p := range []string{"websocket", "spdy"} {
			out = append(out, variant{kubectl: k, proto: p})
		}
	}
	return out
}

// forEachVariant runs f in a subtest per variant, one after the other (so
// that the frontgate's upgrade counters can be checked per variant), and
// skips the variants of a kubectl that is not available, and the WebSocket
// variants of a kubectl older than 1.30, saying why.
func forEachVariant(t *testing.T, f func(t *testing.T, v variant)) {
	for _, v := range variants(t) {
		t.Run(v.name(), func(t *testing.T) {
			if v.kubectl.skip != "" {
				t.Skip(v.kubectl.skip)
			}
			if v.proto == "websocket" && v.kubectl.minor < 30 {
				// client-go v0.29's remotecommand/websocket.go starts its
				// read loop while it creates the streams, so a message
				// that arrives first is dropped with an "Unknown stream id"
				// error, directly as through frontgate; later releases
				// wait until every stream exists.
				t.Skipf("kubectl %s: WebSocket streaming is alpha before 1.30 (exec, attach and cp behind KUBECTL_REMOTE_COMMAND_WEBSOCKETS, no port-forward), and its client may drop a stream's first message; its SPDY variant runs", v.kubectl.name)
			}
			f(t, v)
		})
	}
}

// streamEnv is what one streaming test works with: a namespace where
// streamUser may use pods and their streaming subresources, that user's
// kubeconfigs directly to kube-apiserver (a client certificate) and through
// a frontgate of the test's own (an ID token), and that frontgate, whose
// counters then count only this test's requests.
type streamEnv struct {
	ns     string
	fg     *cluster.Frontgate
	direct string
	via    string
	dir    string
}

// legs names the two ways to kube-apiserver, in the order results are
// compared.
var legs = []string{"direct", "frontgate"}

func newStreamEnv(t *testing.T, name string) *streamEnv {
	t.Helper()
	s := &streamEnv{ns: namespace(t, name+"-"+randomSuffix()), dir: t.TempDir()}
	s.fg = startFrontgate(t, cluster.FrontgateOptions{Args: defaultArgs})
	s.via = kubeconfigFor(t, s.fg, idToken(t, cluster.ClientWeb, streamUser))
	var err error
	if s.direct, err = env.WriteDirectKubeconfig(filepath.Join(s.dir, "direct.kubeconfig"), mappedName(streamUser), "oidc:pwd"); err != nil {
		t.Fatal(err)
	}
	admin(t, "-n", s.ns, "create", "role", "stream", "--verb=get,list,watch,create",
		"--resource=pods,pods/exec,pods/attach,pods/portforward,pods/log,configmaps")
	admin(t, "-n", s.ns, "create", "rolebinding", "stream", "--role=stream", "--user="+mappedName(streamUser))
	eventually(t, 15*time.Second, func() error {
		for _, kc := range []string{s.direct, s.via} {
			if _, errOut, err := kubectl(t, kc, "-n", s.ns, "auth", "can-i", "create", "pods/exec"); err != nil {
				return fmt.Errorf("%v: %s", err, errOut)
			}
		}
		return nil
	})
	return s
}

// kubeconfig returns the kubeconfig of a leg ("direct" or "frontgate").
func (s *streamEnv) kubeconfig(leg string) string {
	if leg == "direct" {
		return s.direct
	}
	return s.via
}

// pod creates a pod on node.
func (s *streamEnv) pod(t *testing.T, node *cluster.Node, name string, opts cluster.PodOptions) *cluster.Pod {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	p, err := node.CreatePod(c, s.ns, name, opts)
	if err != nil {
		t.Fatalf("creating pod %s on %s: %v", name, node.Name, err)
	}
	return p
}

// upgrades returns frontgate_upgrades_total of the test's frontgate by
// protocol and result ("websocket/switched").
func (s *streamEnv) upgrades(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range metrics(t, s.fg) {
		if m.Name == "frontgate_upgrades_total" {
			out[m.Labels["protocol"]+"/"+m.Labels["result"]] += m.Value
		}
	}
	return out
}

// checkUpgrades fails unless frontgate switched exactly n more connections
// to v's protocol since before, and did nothing else with upgrades.
func (s *streamEnv) checkUpgrades(t *testing.T, before map[string]float64, v variant, n int) {
	t.Helper()
	after := s.upgrades(t)
	for k, val := range after {
		want := before[k]
		if k == v.proto+"/switched" {
			want += float64(n)
		}
		if val != want {
			t.Errorf("frontgate_upgrades_total{%s} went from %v to %v, want %v (%d %s upgrade(s) switched, nothing else)", k, before[k], val, want, n, v.proto)
		}
	}
	if _, ok := after[v.proto+"/switched"]; !ok && n > 0 {
		t.Errorf("frontgate counted no %s upgrade", v.proto)
	}
}

// result is what one kubectl run produced.
type result struct {
	stdout, stderr []byte
	code           int // exit status; -1 when killed
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %d bytes %s, stderr %d bytes %q", r.code, len(r.stdout), abbreviate(r.stdout), len(r.stderr), r.stderr)
}

// abbreviate quotes b, shortened to its ends when long.
func abbreviate(b []byte) string {
	if len(b) <= 300 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q...%q", b[:150], b[len(b)-150:])
}

// runKubectl runs kubectl with stdin (may be nil), bounded by timeout, and
// returns its result.
func runKubectl(t *testing.T, bin kubectlBin, kubeconfig string, extraEnv []string, stdin io.Reader, timeout time.Duration, args ...string) result {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := kubectlCommand(c, bin, kubeconfig, extraEnv, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if r.code, err = exitCode(err); err != nil {
		t.Fatalf("running kubectl %s: %v", strings.Join(args, " "), err)
	}
	if c.Err() != nil {
		t.Fatalf("kubectl %s did not finish within %s: %s", strings.Join(args, " "), timeout, r)
	}
	return r
}

// kubectlCommand prepares kubectl with kubeconfig, the suite's cache
// directory and extraEnv.
func kubectlCommand(c context.Context, bin kubectlBin, kubeconfig string, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(c, bin.path, append([]string{"--kubeconfig", kubeconfig,
		"--cache-dir", filepath.Join(env.Dir, "kubectl-cache")}, args...)...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// sameResult fails unless the direct and frontgate results are identical
// byte for byte.
func sameResult(t *testing.T, direct, via result) {
	t.Helper()
	if direct.code != via.code {
		t.Errorf("exit status: direct %d, through frontgate %d", direct.code, via.code)
	}
	for _, s := range []struct {
		name     string
		dir, via []byte
	}{{"stdout", direct.stdout, via.stdout}, {"stderr", direct.stderr, via.stderr}} {
		if !bytes.Equal(s.dir, s.via) {
			t.Errorf("%s differs at byte %d: direct %d bytes %s, through frontgate %d bytes %s",
				s.name, firstDiff(s.dir, s.via), len(s.dir), abbreviate(s.dir), len(s.via), abbreviate(s.via))
		}
	}
	if t.Failed() {
		t.Logf("direct:  %s\nthrough frontgate: %s", direct, via)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// syncBuffer is a buffer written by a process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Bytes returns a copy of what was written so far.
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

// background is a kubectl running while the test works with it.
type background struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser // nil unless asked for
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error
	cancel         context.CancelFunc
}

// startKubectl starts kubectl in the background, with a stdin pipe when
// withStdin. It is killed when the test ends, at the latest after limit.
func startKubectl(t testing.TB, bin kubectlBin, kubeconfig string, extraEnv []string, withStdin bool, limit time.Duration, args ...string) *background {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), limit)
	b := &background{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{}), cancel: cancel}
	b.cmd = kubectlCommand(c, bin, kubeconfig, extraEnv, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.stdout, b.stderr
	if withStdin {
		var err error
		if b.stdin, err = b.cmd.StdinPipe(); err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting kubectl %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		b.err = b.cmd.Wait()
		cancel()
		close(b.done)
	}()
	t.Cleanup(func() {
		b.cancel()
		<-b.done
	})
	return b
}

// await waits until cond holds for the output so far, failing after timeout
// or if kubectl exits first.
func (b *background) await(t testing.TB, what string, timeout time.Duration, cond func(stdout, stderr string) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond(b.stdout.String(), b.stderr.String()) {
			return
		}
		select {
		case <-b.done:
			if cond(b.stdout.String(), b.stderr.String()) {
				return
			}
			t.Fatalf("kubectl %s exited (%v) before %s; stdout %q, stderr %q", strings.Join(b.cmd.Args[5:], " "), b.err, what, b.stdout, b.stderr)
		case <-deadline.C:
			t.Fatalf("kubectl %s: no %s within %s; stdout %q, stderr %q", strings.Join(b.cmd.Args[5:], " "), what, timeout, b.stdout, b.stderr)
		case <-tick.C:
		}
	}
}

// interrupt sends SIGINT (as Ctrl-C would) and waits for kubectl to exit.
func (b *background) interrupt(t testing.TB) result {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGINT)
	return b.wait(t, 30*time.Second)
}

// wait waits for kubectl to exit by itself and returns its result.
func (b *background) wait(t testing.TB, timeout time.Duration) result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		b.cancel()
		<-b.done
		t.Fatalf("kubectl %s did not exit within %s; stdout %q, stderr %q", strings.Join(b.cmd.Args[5:], " "), timeout, b.stdout, b.stderr)
	}
	r := result{stdout: b.stdout.Bytes(), stderr: b.stderr.Bytes()}
	var err error
	if r.code, err = exitCode(b.err); err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(b.cmd.Args[5:], " "), err)
	}
	return r
}

// ttySession runs kubectl (args should include exec -it) on a new
// pseudo-terminal of 24×80 and drives it: once it printed "ready", types
// "one" and Enter; once it printed "24 80", resizes the terminal to 40×120.
// It returns everything kubectl wrote to the terminal (as stdout) and its
// exit status.
func ttySession(t *testing.T, v variant, kubeconfig string, args ...string) result {
	t.Helper()
	master, slave, err := openPTY(24, 80)
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	defer master.Close()
	c, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := kubectlCommand(c, v.kubectl, kubeconfig, v.env(), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	copied := make(chan struct{})
	go func() {
		// Ends with EIO once kubectl exited and its output was read.
		_, _ = io.Copy(&out, master)
		close(copied)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitOut := func(s string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), s); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("kubectl %s: the terminal did not show %q within 30s: %q", strings.Join(args, " "), s, out.String())
			}
		}
	}
	waitOut("ready")
	if _, err := io.WriteString(master, "one\r"); err != nil {
		t.Fatal(err)
	}
	waitOut("24 80")
	if err := resizePTY(master, 40, 120); err != nil {
		t.Fatal(err)
	}
	err = <-exited
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end after kubectl exited")
	}
	r := result{stdout: out.Bytes()}
	if r.code, err = exitCode(err); err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// openPTY opens a new pseudo-terminal of rows×cols and returns its master
// and slave ends.
func openPTY(rows, cols uint16) (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	var n int
	err = control(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err == nil {
		slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err == nil {
		err = resizePTY(master, rows, cols)
	}
	if err != nil {
		master.Close()
		if slave != nil {
			slave.Close()
		}
		return nil, nil, err
	}
	return master, slave, nil
}

// resizePTY sets the terminal's size; the kernel sends SIGWINCH to its
// foreground process group (kubectl), which sends a resize event.
func resizePTY(master *os.File, rows, cols uint16) error {
	return control(master, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
}

// control runs f with f's file descriptor, keeping the file non-blocking.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// exitCode is the exit status of a command that ran to its end (0 when err
// is nil), or err when it could not be run or waited for.
func exitCode(err error) (int, error) {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), nil
	default:
		return 0, err
	}
}
