package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/frontgate/frontgate/auth/clientcert"
	"github.com/frontgate/frontgate/auth/reload"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
	"github.com/frontgate/frontgate/proxy"
)

func newServeCommand(d deps) *cobra.Command {
	o := newServeOptions(d.getenv)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authenticating proxy in front of kube-apiserver",
		Long: `serve authenticates every request (OIDC ID tokens), removes every identity
header the caller sent, sets X-Remote-User, X-Remote-Group, X-Remote-Uid and
X-Remote-Extra-* for the identity it established, and forwards the request to
kube-apiserver presenting the front-proxy client certificate. Requests it
cannot authenticate are answered with a Kubernetes Status and never forwarded.

/metrics, /healthz and /readyz are served on --metrics-listen only.`,
		Example: `  # In front of a local kube-apiserver, with files from 'frontgate pki init --dir pki':
  frontgate serve \
    --upstream https://127.0.0.1:6443 --upstream-ca-file /etc/kubernetes/pki/ca.crt \
    --proxy-client-cert-file pki/proxy-client.crt --proxy-client-key-file pki/proxy-client.key \
    --tls-cert-file pki/serving.crt --tls-private-key-file pki/serving.key \
    --oidc-issuer-url https://login.example.com --oidc-client-id kubernetes \
    --oidc-username-claim email --oidc-groups-claim groups --oidc-groups-prefix oidc:

  # The same settings from a file (keys are flag names; flags given here win):
  frontgate serve --config /etc/frontgate/config.yaml --log-format json`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return o.load(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := d.signalContext()
			defer cancel()
			s, err := o.build(d)
			if err != nil {
				return err
			}
			return s.run(ctx)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// load applies the --config file, completes and validates the options.
func (o *serveOptions) load(cmd *cobra.Command) error {
	if o.configFile != "" {
		if err := applyConfigFile(cmd.Flags(), o.configFile); err != nil {
			return err
		}
	}
	o.complete(cmd.Flags())
	return o.validate()
}

// server is a built frontgate: every file read, every object made, no
// listener open yet.
type server struct {
	opts     *serveOptions
	logger   *slog.Logger
	registry *prometheus.Registry
	handler  http.Handler
	tls      *tls.Config
	// background runs until shutdown: issuer discovery, file watches.
	background []func(context.Context)
	// ready reports whether requests can be served (/readyz).
	ready func() error
}

// build reads every file the options name and makes the runtime objects.
func (o *serveOptions) build(d deps) (*server, error) {
	logger, err := newLogger(d.stderr, o.logFormat, o.logLevel)
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	watches := &fileWatches{metrics: reload.NewMetrics(registry), logger: logger}

	// Upstream credentials: rotated by building new transports, so every new
	// request uses the new certificate while open streams finish on the old.
	var handler *proxy.Handler
	var probe *proxy.UpstreamProbe
	upstreamFiles := []string{o.proxyClientCertFile, o.proxyClientKeyFile}
	if o.upstreamCAFile != "" {
		upstreamFiles = append(upstreamFiles, o.upstreamCAFile)
	}
	if err := watches.add("upstream-credentials", upstreamFiles, func() error {
		transports, certless, err := o.upstreamTransports(watches.metrics)
		if err != nil {
			return err
		}
		handler.SetTransports(transports, &certless)
		probe.SetTransport(certless.Ordinary)
		return nil
	}); err != nil {
		return nil, err
	}
	transports, certless, err := o.upstreamTransports(watches.metrics)
	if err != nil {
		return nil, err
	}
	var passthrough *proxy.Transports
	if o.tokenPassthrough {
		passthrough = &certless
	}

	sources, err := o.buildIdentitySources(logger, registry, watches)
	if err != nil {
		return nil, err
	}

	discovery := proxy.Discovery{Issuers: sources.issuers}
	if o.discoveryCAFile != "" {
		bundle, err := os.ReadFile(o.discoveryCAFile)
		if err != nil {
			return nil, fmt.Errorf("--discovery-ca-file: %w", err)
		}
		discovery.CABundle = string(bundle)
	}
	if err := discovery.Validate(); err != nil {
		return nil, fmt.Errorf("the discovery document (%s) cannot be served: %w", proxy.DiscoveryPath, err)
	}

	trusted, err := clientcert.ParseTrustedProxies(o.trustedProxyCIDRs)
	if err != nil {
		return nil, err
	}
	audit, err := o.auditLog(d)
	if err != nil {
		return nil, err
	}

	upstream, _ := url.Parse(o.upstream) // validated
	probe = proxy.NewUpstreamProbe(upstream, certless.Ordinary, upstreamProbeInterval)
	handler, err = proxy.New(proxy.Config{
		Upstream:          upstream,
		Authenticator:     sources.authenticator,
		HeaderNames:       o.headerNames(),
		CredentialHeaders: clientcert.ForwardedCertHeaders(),
		Limits:            proxy.Limits{MaxGroups: o.maxGroups, MaxHeaderBytes: o.maxIdentityHeaderBytes},
		Transports:        transports,
		Passthrough:       passthrough,
		Ready:             sources.ready,
		Discovery:         proxy.DiscoveryHandler(discovery),
		Logger:            logger,
		Audit:             audit,
		TrustedProxies:    trusted,
		Metrics:           proxy.NewMetrics(registry),
	})
	if err != nil {
		return nil, err
	}

	serving, err := o.servingCertificates(logger, watches)
	if err != nil {
		return nil, err
	}
	return &server{
		opts:     o,
		logger:   logger,
		registry: registry,
		handler:  handler,
		tls: sources.listenerTLS(servingTLS(func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return serving.Load(), nil
		})),
		background: append(append(sources.background, watches.runs...), probe.Run),
		ready: func() error {
			return errors.Join(sources.ready(), probe.Ready())
		},
	}, nil
}

// auditLog opens --audit-log-path: nil when unset, stdout for "-".
func (o *serveOptions) auditLog(d deps) (*proxy.AuditLog, error) {
	switch o.auditLogPath {
	case "":
		return nil, nil
	case "-":
		return proxy.NewAuditLog(d.stdout), nil
	}
	f, err := proxy.OpenRotatingFile(o.auditLogPath, int64(o.auditLogMaxSize)<<20, o.auditLogMaxBackups)
	if err != nil {
		return nil, fmt.Errorf("--audit-log-path: %w", err)
	}
	return proxy.NewAuditLog(f), nil
}

// upstreamProbeInterval is how often /readyz asks kube-apiserver whether it
// serves.
const upstreamProbeInterval = 2 * time.Second

// upstreamTransports reads the front-proxy client certificate and the
// upstream CA and makes the transports that reach kube-apiserver: with the
// certificate, for requests whose identity frontgate established, and
// without it, for token passthrough and the readiness probe.
func (o *serveOptions) upstreamTransports(metrics *reload.Metrics) (withCert, certless proxy.Transports, err error) {
	clientCert, err := proxy.LoadClientCertificate(o.proxyClientCertFile, o.proxyClientKeyFile)
	if err != nil {
		return withCert, certless, err
	}
	var roots *x509.CertPool
	if o.upstreamCAFile != "" {
		if roots, err = pki.Pool(o.upstreamCAFile); err != nil {
			return withCert, certless, fmt.Errorf("--upstream-ca-file: %w", err)
		}
	}
	metrics.ObserveCertificate("proxy-client-cert-file", clientCert.Leaf)
	withCert = proxy.NewTransports(proxy.UpstreamTLS{
		RootCAs:           roots,
		ClientCertificate: func() (*tls.Certificate, error) { return clientCert, nil },
	})
	return withCert, proxy.NewTransports(proxy.UpstreamTLS{RootCAs: roots}), nil
}

// servingCertificates returns the serving certificate in use, reloaded when
// --tls-cert-file or --tls-private-key-file change; without them, a
// self-signed one.
func (o *serveOptions) servingCertificates(logger *slog.Logger, watches *fileWatches) (*atomic.Pointer[tls.Certificate], error) {
	var current atomic.Pointer[tls.Certificate]
	if o.tlsCertFile == "" {
		cert, err := selfSignedCertificate(logger)
		if err != nil {
			return nil, err
		}
		current.Store(cert)
		return &current, nil
	}
	load := func() error {
		pair, err := tls.LoadX509KeyPair(o.tlsCertFile, o.tlsKeyFile)
		if err != nil {
			return fmt.Errorf("--tls-cert-file %s with --tls-private-key-file %s: %w", o.tlsCertFile, o.tlsKeyFile, err)
		}
		watches.metrics.ObserveCertificate("tls-cert-file", pair.Leaf)
		current.Store(&pair)
		return nil
	}
	if err := watches.add("serving-certificate", []string{o.tlsCertFile, o.tlsKeyFile}, load); err != nil {
		return nil, err
	}
	if err := load(); err != nil {
		return nil, err
	}
	return &current, nil
}

// selfSignedCertificate makes an in-memory serving certificate, for trying
// frontgate out without a PKI, and warns loudly.
func selfSignedCertificate(logger *slog.Logger) (*tls.Certificate, error) {
	logger.Warn("NO SERVING CERTIFICATE GIVEN: serving a self-signed certificate made in memory; clients cannot verify frontgate. Set --tls-cert-file and --tls-private-key-file (frontgate pki init makes them) before real use")
	key, err := pki.NewKey("ecdsa")
	if err != nil {
		return nil, err
	}
	ca, err := pki.NewCA("frontgate self-signed CA", key, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	leafKey, err := pki.NewKey("ecdsa")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "frontgate", Hosts: []string{"localhost", "127.0.0.1", "::1"}, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: 365 * 24 * time.Hour}, leafKey)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw, ca.Cert.Raw}, PrivateKey: leafKey, Leaf: leaf.Cert}, nil
}

// run serves until ctx ends, then shuts down gracefully: it stops accepting,
// lets in-flight requests (upgraded sessions included) finish within
// --shutdown-grace, and returns nil.
func (s *server) run(ctx context.Context) error {
	proxyListener, err := net.Listen("tcp", s.opts.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	metricsListener, err := net.Listen("tcp", s.opts.metricsListen)
	if err != nil {
		proxyListener.Close()
		return fmt.Errorf("--metrics-listen: %w", err)
	}
	return s.serve(ctx, proxyListener, metricsListener)
}

// serve is run on listeners that are already open.
func (s *server) serve(ctx context.Context, proxyListener, metricsListener net.Listener) error {

	var inFlight sync.WaitGroup
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	proxyServer := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inFlight.Add(1)
			defer inFlight.Done()
			s.handler.ServeHTTP(w, r)
		}),
		TLSConfig:         s.tls,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	metricsServer := &http.Server{
		Handler:           s.metricsMux(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}

	backgroundCtx, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	for _, run := range s.background {
		go run(backgroundCtx)
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- proxyServer.ServeTLS(proxyListener, "", "") }()
	go func() { serveErr <- metricsServer.Serve(metricsListener) }()
	s.logger.Info("frontgate serving", "listen", proxyListener.Addr().String(), "metrics", metricsListener.Addr().String(), "upstream", s.opts.upstream, "version", version)

	select {
	case err := <-serveErr:
		proxyServer.Close()
		metricsServer.Close()
		return fmt.Errorf("listener failed: %w", err)
	case <-ctx.Done():
	}

	s.logger.Info("shutting down: no new connections; waiting for in-flight requests", "grace", s.opts.shutdownGrace.String())
	graceCtx, cancel := context.WithTimeout(context.Background(), s.opts.shutdownGrace)
	defer cancel()
	if err := proxyServer.Shutdown(graceCtx); err != nil {
		s.logger.Warn("in-flight requests did not finish within --shutdown-grace; closing them", "error", err)
		proxyServer.Close()
	}
	done := make(chan struct{})
	go func() { inFlight.Wait(); close(done) }()
	select {
	case <-done:
	case <-graceCtx.Done():
		s.logger.Warn("upgraded sessions still open after --shutdown-grace; exiting anyway")
	}
	_ = metricsServer.Shutdown(context.Background())
	s.logger.Info("stopped")
	return nil
}

// metricsMux serves /metrics, /healthz and /readyz.
func (s *server) metricsMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	if debugRoutes != nil {
		debugRoutes(mux)
	}
	return mux
}

// debugRoutes, when set, adds profiling endpoints to the metrics listener;
// only a binary built with -tags frontgate_pprof sets it (pprof.go).
var debugRoutes func(*http.ServeMux)

// newLogger makes the slog logger for --log-format and --log-level.
func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) (*slog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func parseLevel(level string) (slog.Level, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return 0, errors.New("--log-level " + level + ": use debug, info, warn or error")
	}
	return lvl, nil
}
