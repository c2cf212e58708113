package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/frontgate/frontgate/proxy"
)

// roleEnv makes the runner's own binary, re-executed, play a server role in
// a process of its own, so that its CPU time and memory are its own.
const roleEnv = "FRONTGATE_BENCH_ROLE"

// configMap is what kube-apiserver answers to GET of a small ConfigMap.
const configMap = `{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"bench","namespace":"default","uid":"7d3c5a52-1b8e-4c1e-9a8e-2f4f0e1f6b11","resourceVersion":"4711","creationTimestamp":"2026-11-27T07:00:00Z","managedFields":[{"manager":"kubectl-create","operation":"Update","apiVersion":"v1","time":"2026-11-27T07:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:key":{}}}}]},"data":{"key":"value"}}`

// runRole runs the role named by roleEnv and never returns.
func runRole(role string) {
	log.SetFlags(0)
	log.SetPrefix(role + ": ")
	var err error
	switch role {
	case "upstream":
		err = runUpstream(os.Args[1:])
	case "bare":
		err = runBare(os.Args[1:])
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	log.Fatal(err)
}

// serverTLS is the listener TLS of every server: TLS 1.2+, the bench
// serving certificate.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}, nil
}

// serve runs h on a fresh loopback port with HTTP/1.1 and HTTP/2 over TLS,
// configured as frontgate's own listener, and announces the address on
// stdout.
func serve(h http.Handler, tlsConfig *tls.Config) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	fmt.Printf("LISTEN %s\n", l.Addr())
	return srv.ServeTLS(l, "", "")
}

// runUpstream is the fast upstream: it answers every GET as kube-apiserver
// answers a GET of a ConfigMap, and a watch (?watch=1) with one ADDED event,
// then holds the stream open until the client goes. Like kube-apiserver it
// verifies a client certificate when one is presented (the front-proxy
// certificate, against the requestheader CA).
func runUpstream(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ExitOnError)
	cert := fs.String("cert", "", "serving certificate")
	key := fs.String("key", "", "serving key")
	clientCA := fs.String("client-ca", "", "CA of client certificates")
	_ = fs.Parse(args)
	tlsConfig, err := serverTLS(*cert, *key)
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(*clientCA)
	if err != nil {
		return err
	}
	tlsConfig.ClientCAs = x509.NewCertPool()
	tlsConfig.ClientCAs.AppendCertsFromPEM(pem)
	tlsConfig.ClientAuth = tls.VerifyClientCertIfGiven
	body := []byte(configMap + "\n")
	event := []byte(`{"type":"ADDED","object":` + configMap + "}\n")
	return serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Audit-Id"] = []string{"1f6c1d2e-3c4b-4a59-8d7e-6f5a4b3c2d1e"}
		h["Cache-Control"] = []string{"no-cache, private"}
		h["Content-Type"] = []string{"application/json"}
		h["X-Kubernetes-Pf-Flowschema-Uid"] = []string{"0b0a8f1e-2d3c-4b5a-9687-a1b2c3d4e5f6"}
		h["X-Kubernetes-Pf-Prioritylevel-Uid"] = []string{"a9b8c7d6-e5f4-4321-8765-0fedcba98765"}
		if watch := r.URL.Query().Get("watch"); watch == "1" || watch == "true" {
			_, _ = w.Write(event)
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			return
		}
		_, _ = w.Write(body)
	}), tlsConfig)
}

// runBare is the floor any proxy pays: httputil.ReverseProxy with Rewrite
// (SetURL, SetXForwarded), over exactly the transports frontgate uses
// (proxy.NewTransports: same TLS settings, HTTP/2, the front-proxy client
// certificate), behind a listener configured as frontgate's. No
// authentication, header work, logging or metrics.
func runBare(args []string) error {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	cert := fs.String("cert", "", "serving certificate")
	key := fs.String("key", "", "serving key")
	upstream := fs.String("upstream", "", "upstream URL")
	upstreamCA := fs.String("upstream-ca", "", "CA of the upstream")
	clientCert := fs.String("client-cert", "", "front-proxy client certificate")
	clientKey := fs.String("client-key", "", "front-proxy client key")
	pprofListen := fs.String("pprof-listen", "", "serve net/http/pprof on this loopback address")
	_ = fs.Parse(args)
	if *pprofListen != "" {
		l, err := net.Listen("tcp", *pprofListen)
		if err != nil {
			return err
		}
		go func() { _ = http.Serve(l, pprofMux()) }()
	}
	tlsConfig, err := serverTLS(*cert, *key)
	if err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(*upstreamCA)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	pair, err := proxy.LoadClientCertificate(*clientCert, *clientKey)
	if err != nil {
		return err
	}
	transports := proxy.NewTransports(proxy.UpstreamTLS{
		RootCAs:           roots,
		ClientCertificate: func() (*tls.Certificate, error) { return pair, nil },
	})
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		Transport: transports.Ordinary,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	return serve(rp, tlsConfig)
}

// pprofMux serves the runtime profiles.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	return mux
}

// child is a server process the runner started.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port, for roles
	log  string // file receiving stderr (and stdout for frontgate)
	// exited is closed when the process has exited.
	exited chan struct{}
}

// started watches a started process.
func started(name string, cmd *exec.Cmd, log string) *child {
	c := &child{name: name, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// startRole re-executes the runner as role with args and waits for its
// address.
func startRole(role, logFile string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	if role == "bare" {
		cmd = proxyCommand(self, args...)
	}
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := started(role, cmd, logFile)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTEN ")
		if !ok {
			c.stop()
			b, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("%s did not start: %q %s", role, line, b)
		}
		c.addr = addr
		return c, nil
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, errors.New(role + " did not announce its address within 30s")
	}
}

// stop kills the child (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}
