// Command test-kubelet is the exec endpoint of a kubelet and nothing else,
// for frontgate's end-to-end tests: kube-apiserver forwards `kubectl exec`
// (and so `kubectl cp`) of pods on its node to it, over the same WebSocket
// and SPDY streaming protocols a real kubelet speaks, served by Kubernetes'
// own CRI streaming library (k8s.io/cri-streaming, the code behind the
// kubelet's and the container runtimes' streaming servers).
//
// A command runs as a local process in --work-dir (there are no containers
// or images). Unlike kwok's fake kubelet it behaves as a real runtime does
// where the tests need it: stdin EOF reaches the process (so `cat` ends and
// `kubectl cp` into a pod completes), the process's exit status travels back
// as kubectl's exit code, and -t runs the process on a pseudo-terminal that
// follows resize events.
//
// It serves HTTPS only and requires a client certificate signed by
// --client-ca-file (kube-apiserver's --kubelet-client-certificate). It keeps
// no pods and no node status: the test harness registers the Node and sets
// the pods' status.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// streamIdleTimeout is the kubelet's default --streaming-connection-idle-timeout.
const streamIdleTimeout = 4 * time.Hour

func main() {
	listen := flag.String("listen", "127.0.0.1:10250", "address to serve HTTPS on")
	certFile := flag.String("tls-cert-file", "", "serving certificate (PEM)")
	keyFile := flag.String("tls-private-key-file", "", "serving key (PEM)")
	clientCA := flag.String("client-ca-file", "", "CA bundle that signs the client certificates accepted (kube-apiserver's)")
	workDir := flag.String("work-dir", ".", "working directory of exec'd commands")
	flag.Parse()
	if err := run(*listen, *certFile, *keyFile, *clientCA, *workDir); err != nil {
		log.Fatal(err)
	}
}

func run(listen, certFile, keyFile, clientCA, workDir string) error {
	if certFile == "" || keyFile == "" || clientCA == "" {
		return errors.New("--tls-cert-file, --tls-private-key-file and --client-ca-file are required")
	}
	caPEM, err := os.ReadFile(clientCA)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s: no certificates", clientCA)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	r := &runtime{workDir: workDir}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	for _, p := range []string{"/exec/{namespace}/{pod}/{container}", "/exec/{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc("GET "+p, r.serveExec)
		mux.HandleFunc("POST "+p, r.serveExec)
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           logRequests(mux),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Printf("test-kubelet serving exec on https://%s, commands run in %s", l.Addr(), workDir)
	if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logRequests logs one line per request: what kube-apiserver asked and as whom.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		client := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		h.ServeHTTP(w, r)
		log.Printf("%s %s %s upgrade=%q client=%q took=%s", r.Method, r.URL.RequestURI(), r.Proto, r.Header.Get("Upgrade"), client, time.Since(start).Round(time.Millisecond))
	})
}

// runtime runs exec'd commands as local processes.
type runtime struct{ workDir string }

func (rt *runtime) serveExec(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "missing command", http.StatusBadRequest)
		return
	}
	pod := r.PathValue("namespace") + "/" + r.PathValue("pod")
	remotecommand.ServeExec(w, r, rt, pod, r.PathValue("uid"), r.PathValue("container"), cmd, opts,
		streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// ExecInContainer implements remotecommand.Executor. Like a container
// runtime it ends the session when the process exits, whether or not stdin
// is still open, and reports a non-zero exit status as a
// utilexec.CodeExitError, which the streaming library turns into the status
// kubectl reads its exit code from.
func (rt *runtime) ExecInContainer(ctx context.Context, pod, _, container string, argv []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = rt.workDir
	cmd.Env = append(os.Environ(), "POD="+pod, "CONTAINER="+container)
	var err error
	if tty {
		err = runTTY(cmd, in, out, resize)
	} else {
		err = runPiped(cmd, in, out, errOut)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		return utilexec.CodeExitError{Err: err, Code: exitErr.ExitCode()}
	}
	return err
}

// runPiped runs cmd with stdin copied from in (closed at EOF, so the process
// sees it) and stdout and stderr going to out and errOut.
func runPiped(cmd *exec.Cmd, in io.Reader, out, errOut io.Writer) error {
	if out != nil {
		cmd.Stdout = out
	}
	if errOut != nil {
		cmd.Stderr = errOut
	}
	var stdin io.WriteCloser
	if in != nil {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if stdin != nil {
		// Not waited for: the session ends with the process, as with a
		// runtime, even if the client never closes stdin.
		go func() {
			_, _ = io.Copy(stdin, in)
			stdin.Close()
		}()
	}
	return cmd.Wait()
}

// runTTY runs cmd on a new pseudo-terminal: in is typed into it, everything
// the process writes comes back on out, and every size on resize is applied
// to it.
func runTTY(cmd *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	ptmx, err := pty.Start(cmd)
	if err != nil {
		return err
	}
	defer ptmx.Close()
	if resize != nil {
		go func() {
			for size := range resize {
				_ = pty.Setsize(ptmx, &pty.Winsize{Rows: size.Height, Cols: size.Width})
			}
		}()
	}
	if in != nil {
		go func() { _, _ = io.Copy(ptmx, in) }()
	}
	var wg sync.WaitGroup
	if out != nil {
		wg.Go(func() {
			// Ends with EIO once the process exited and its output is read.
			_, _ = io.Copy(out, ptmx)
		})
	}
	err = cmd.Wait()
	wg.Wait()
	return err
}
