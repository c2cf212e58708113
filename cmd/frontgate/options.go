package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/frontgate/frontgate/proxy"
)

// serveOptions are the settings of `frontgate serve` as the user gave them:
// strings, paths and durations. Validate checks them without I/O; build
// (serve.go) reads files and makes the runtime objects.
type serveOptions struct {
	configFile string

	listen, tlsCertFile, tlsKeyFile string

	upstream, upstreamCAFile                string
	proxyClientCertFile, proxyClientKeyFile string

	usernameHeaders, groupHeaders, uidHeaders, extraHeaderPrefixes []string

	oidc oidcOptions
	// oidcFlagsSet are the --oidc-* flags given, by name.
	oidcFlagsSet []string

	authenticationConfig string

	clientCAFiles, clientCRLFiles []string
	clientCertMapping             string
	trustedProxyCIDRs             []string

	tokenCacheTTL    time.Duration
	tokenCacheSize   int
	tokenPassthrough bool

	allowReserved          []string
	maxGroups              int
	maxIdentityHeaderBytes int

	discoveryCAFile string

	auditLogPath       string
	auditLogMaxSize    int
	auditLogMaxBackups int

	metricsListen       string
	profiling           bool
	logFormat, logLevel string
	shutdownGrace       time.Duration
}

// oidcOptions mirror kube-apiserver's --oidc-* flags, plus two extensions.
type oidcOptions struct {
	issuerURL, clientID           string
	usernameClaim, usernamePrefix string
	usernamePrefixSet             bool
	groupsClaim, groupsPrefix     string
	requiredClaims                map[string]string
	caFile                        string
	signingAlgs                   []string
	uidClaim                      string
	extraClaims                   map[string]string
}

// newServeOptions returns the defaults; getenv supplies the in-cluster
// upstream (KUBERNETES_SERVICE_HOST and _PORT).
func newServeOptions(getenv func(string) string) *serveOptions {
	o := &serveOptions{
		listen:                 ":8443",
		metricsListen:          ":8081",
		logFormat:              "text",
		logLevel:               "info",
		shutdownGrace:          30 * time.Second,
		tokenCacheTTL:          10 * time.Second,
		tokenCacheSize:         10000,
		auditLogMaxSize:        100,
		auditLogMaxBackups:     5,
		maxGroups:              proxy.DefaultLimits().MaxGroups,
		maxIdentityHeaderBytes: proxy.DefaultLimits().MaxHeaderBytes,
	}
	names := proxy.DefaultHeaderNames()
	o.usernameHeaders, o.groupHeaders, o.uidHeaders, o.extraHeaderPrefixes = names.Username, names.Group, names.UID, names.ExtraPrefix
	o.oidc.usernameClaim = "sub"
	o.oidc.signingAlgs = []string{"RS256"}
	if host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT"); host != "" && port != "" {
		o.upstream = "https://" + net.JoinHostPort(host, port)
	}
	return o
}

// addFlags registers every setting; each can also be given in the --config
// file under the same name.
func (o *serveOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.configFile, "config", o.configFile, "YAML file whose keys are these flag names, for example \"upstream: https://10.0.0.1:6443\"; flags given on the command line win")

	fs.StringVar(&o.listen, "listen", o.listen, "address of the proxy's HTTPS listener (HTTP/1.1 and HTTP/2)")
	fs.StringVar(&o.tlsCertFile, "tls-cert-file", o.tlsCertFile, "serving certificate (PEM, may include intermediates); without it and --tls-private-key-file frontgate makes a self-signed certificate in memory")
	fs.StringVar(&o.tlsKeyFile, "tls-private-key-file", o.tlsKeyFile, "private key of --tls-cert-file")

	fs.StringVar(&o.upstream, "upstream", o.upstream, "kube-apiserver URL; defaults to https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT when those are set")
	fs.StringVar(&o.upstreamCAFile, "upstream-ca-file", o.upstreamCAFile, "CA bundle that verifies kube-apiserver's serving certificate (default: system roots)")
	fs.StringVar(&o.proxyClientCertFile, "proxy-client-cert-file", o.proxyClientCertFile, "front-proxy client certificate frontgate presents to kube-apiserver; must chain to its --requestheader-client-ca-file, have clientAuth and a CN in --requestheader-allowed-names")
	fs.StringVar(&o.proxyClientKeyFile, "proxy-client-key-file", o.proxyClientKeyFile, "private key of --proxy-client-cert-file")

	fs.StringSliceVar(&o.usernameHeaders, "requestheader-username-headers", o.usernameHeaders, "username header names, as kube-apiserver's flag of the same name; frontgate sets the first and strips all")
	fs.StringSliceVar(&o.groupHeaders, "requestheader-group-headers", o.groupHeaders, "group header names, as kube-apiserver's flag of the same name")
	fs.StringSliceVar(&o.uidHeaders, "requestheader-uid-headers", o.uidHeaders, "UID header names, as kube-apiserver's flag of the same name (kube-apiserver 1.32+)")
	fs.StringSliceVar(&o.extraHeaderPrefixes, "requestheader-extra-headers-prefix", o.extraHeaderPrefixes, "extra attribute header prefixes, as kube-apiserver's flag of the same name")

	fs.StringVar(&o.oidc.issuerURL, "oidc-issuer-url", o.oidc.issuerURL, "OpenID issuer URL (https; http only on a loopback host); as kube-apiserver's flag")
	fs.StringVar(&o.oidc.clientID, "oidc-client-id", o.oidc.clientID, "client ID every ID token's aud must contain")
	fs.StringVar(&o.oidc.usernameClaim, "oidc-username-claim", o.oidc.usernameClaim, "claim that holds the username; with email, email_verified must be true when present")
	fs.StringVar(&o.oidc.usernamePrefix, "oidc-username-prefix", o.oidc.usernamePrefix, "prefix for usernames; unset means \"<issuer>#\" unless the claim is email; \"-\" disables prefixing")
	fs.StringVar(&o.oidc.groupsClaim, "oidc-groups-claim", o.oidc.groupsClaim, "claim that holds the groups (an array of strings or one string)")
	fs.StringVar(&o.oidc.groupsPrefix, "oidc-groups-prefix", o.oidc.groupsPrefix, "prefix for every group")
	fs.StringToStringVar(&o.oidc.requiredClaims, "oidc-required-claim", o.oidc.requiredClaims, "key=value a token must carry as a string claim; repeatable")
	fs.StringVar(&o.oidc.caFile, "oidc-ca-file", o.oidc.caFile, "CA bundle that verifies the issuer's certificate (default: system roots)")
	fs.StringSliceVar(&o.oidc.signingAlgs, "oidc-signing-algs", o.oidc.signingAlgs, "accepted JOSE signing algorithms (RS256/384/512, ES256/384/512, PS256/384/512)")
	fs.StringVar(&o.oidc.uidClaim, "oidc-uid-claim", o.oidc.uidClaim, "claim that holds the user's UID (frontgate extension)")
	fs.StringToStringVar(&o.oidc.extraClaims, "oidc-extra-claim", o.oidc.extraClaims, "key=claim: forward the claim (string or array) as the extra attribute key, e.g. example.com/team=team (frontgate extension); repeatable")

	fs.StringVar(&o.authenticationConfig, "authentication-config", o.authenticationConfig, "kube-apiserver AuthenticationConfiguration file (apiserver.config.k8s.io/v1 or v1beta1): several issuers, CEL claim mappings and validation rules; one issuer may appear with several audiences; hot-reloaded; excludes the --oidc-* flags")
	fs.StringArrayVar(&o.clientCAFiles, "client-ca-file", o.clientCAFiles, "CA bundle, as PATH or NAME=PATH, whose client certificates authenticate users (mTLS requested, not required, so token users still work); repeatable")
	fs.StringVar(&o.clientCertMapping, "client-cert-mapping", o.clientCertMapping, "YAML file mapping client certificates to identities with CEL (docs/client-certificates.md); default: CN is the user, O are the groups")
	fs.StringArrayVar(&o.clientCRLFiles, "client-crl-file", o.clientCRLFiles, "certificate revocation list (PEM or DER) for --client-ca-file; repeatable")
	fs.StringSliceVar(&o.trustedProxyCIDRs, "trusted-proxy-cidrs", o.trustedProxyCIDRs, "addresses of load balancers in front of frontgate whose X-Forwarded-For (passed on to kube-apiserver, and the audit log's source IP) and RFC 9440 Client-Cert headers are believed; every other client's are replaced or removed (default: none)")

	fs.DurationVar(&o.tokenCacheTTL, "token-cache-ttl", o.tokenCacheTTL, "how long a successful token authentication is reused (never past the token's exp); 0 disables the cache")
	fs.IntVar(&o.tokenCacheSize, "token-cache-size", o.tokenCacheSize, "most cached token authentications")

	fs.BoolVar(&o.tokenPassthrough, "token-passthrough", o.tokenPassthrough, "forward a bearer token that no configured issuer recognises (a service-account token, say) unchanged and WITHOUT the front-proxy certificate, for kube-apiserver to authenticate itself; rejected tokens are never passed through")
	fs.StringSliceVar(&o.allowReserved, "allow-reserved-identity", o.allowReserved, "\"system:\" username or group that identities may carry (for example system:masters); all others are refused")
	fs.IntVar(&o.maxGroups, "max-groups", o.maxGroups, "most groups one identity may carry; more is answered with 431")
	fs.IntVar(&o.maxIdentityHeaderBytes, "max-identity-header-bytes", o.maxIdentityHeaderBytes, "largest total size of one request's identity headers; more is answered with 431")

	fs.StringVar(&o.discoveryCAFile, "discovery-ca-file", o.discoveryCAFile, "CA bundle published in /.well-known/frontgate for clients to verify frontgate's serving certificate (frontgate kubeconfig --from); certificates only")
	fs.StringVar(&o.auditLogPath, "audit-log-path", o.auditLogPath, "file to write the audit log to, one JSON line per request and per exec/attach/port-forward session; \"-\" for stdout; empty: no audit log")
	fs.IntVar(&o.auditLogMaxSize, "audit-log-max-size", o.auditLogMaxSize, "MiB after which --audit-log-path is rotated to PATH.1")
	fs.IntVar(&o.auditLogMaxBackups, "audit-log-max-backups", o.auditLogMaxBackups, "rotated audit log files to keep")
	fs.StringVar(&o.metricsListen, "metrics-listen", o.metricsListen, "address of the plain-HTTP listener for /metrics, /healthz and /readyz")
	fs.BoolVar(&o.profiling, "profiling", o.profiling, "also serve the Go runtime profiles (net/http/pprof) at /debug/pprof/ on --metrics-listen, for performance work; they show no tokens or keys, but keep the listener private")
	fs.StringVar(&o.logFormat, "log-format", o.logFormat, "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", o.logLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", o.shutdownGrace, "on SIGTERM, how long in-flight requests may take to finish")
}

// complete records which optional flags were set, after flags and config.
func (o *serveOptions) complete(fs *pflag.FlagSet) {
	o.oidc.usernamePrefixSet = fs.Changed("oidc-username-prefix")
	o.oidcFlagsSet = nil
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed && strings.HasPrefix(f.Name, "oidc-") {
			o.oidcFlagsSet = append(o.oidcFlagsSet, "--"+f.Name)
		}
	})
}

// headerNames returns the configured identity header names.
func (o *serveOptions) headerNames() proxy.HeaderNames {
	return proxy.HeaderNames{Username: o.usernameHeaders, Group: o.groupHeaders, UID: o.uidHeaders, ExtraPrefix: o.extraHeaderPrefixes}
}

// validate reports every setting that cannot work, each naming its flag and
// the fix. It reads no files.
func (o *serveOptions) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		add("--listen %q: %v; use host:port such as :8443", o.listen, err)
	}
	if _, _, err := net.SplitHostPort(o.metricsListen); err != nil {
		add("--metrics-listen %q: %v; use host:port such as :8081", o.metricsListen, err)
	}
	if (o.tlsCertFile == "") != (o.tlsKeyFile == "") {
		add("--tls-cert-file and --tls-private-key-file go together; give both or neither")
	}
	errs = append(errs, o.validateUpstream()...)
	errs = append(errs, o.validateIdentitySources()...)
	switch o.logFormat {
	case "text", "json":
	default:
		add("--log-format %q: use text or json", o.logFormat)
	}
	if _, err := parseLevel(o.logLevel); err != nil {
		errs = append(errs, err)
	}
	if o.auditLogMaxSize < 1 || o.auditLogMaxBackups < 0 {
		add("--audit-log-max-size must be at least 1 (MiB) and --audit-log-max-backups not negative")
	}
	if o.shutdownGrace < 0 {
		add("--shutdown-grace must not be negative")
	}
	return errors.Join(errs...)
}

// validateIdentitySources reports the settings of the identity sources and
// of the identity headers that cannot work: what serve and explain share.
// It reads no files.
func (o *serveOptions) validateIdentitySources() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := o.headerNames().Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case o.authenticationConfig != "" && len(o.oidcFlagsSet) > 0:
		add("--authentication-config and the --oidc-* flags are mutually exclusive, as in kube-apiserver: move %s into a jwt entry of the file", strings.Join(o.oidcFlagsSet, ", "))
	case o.authenticationConfig != "":
	case o.oidc.issuerURL == "" && o.oidc.clientID == "" && len(o.clientCAFiles) == 0:
		add("no identity source: set --oidc-issuer-url and --oidc-client-id, --authentication-config, or --client-ca-file")
	case (o.oidc.issuerURL == "") != (o.oidc.clientID == ""):
		add("--oidc-issuer-url and --oidc-client-id go together; give both")
	}
	if len(o.clientCAFiles) == 0 && (o.clientCertMapping != "" || len(o.clientCRLFiles) > 0) {
		add("--client-cert-mapping and --client-crl-file need --client-ca-file; without it no client certificate is accepted")
	}
	if o.tokenCacheTTL < 0 {
		add("--token-cache-ttl must not be negative")
	}
	if o.tokenCacheSize < 1 {
		add("--token-cache-size must be at least 1")
	}
	if o.maxGroups < 0 || o.maxIdentityHeaderBytes < 0 {
		add("--max-groups and --max-identity-header-bytes must not be negative (0 means no limit)")
	}
	return errs
}

// validateUpstream checks the settings that reach kube-apiserver; `frontgate
// flags` needs the same certificate settings.
func (o *serveOptions) validateUpstream() []error {
	var errs []error
	if o.upstream == "" {
		errs = append(errs, errors.New("--upstream is required outside a cluster: set it to kube-apiserver's URL, such as https://127.0.0.1:6443"))
	} else if u, err := url.Parse(o.upstream); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("--upstream %q: must be an https:// URL with a host, such as https://127.0.0.1:6443", o.upstream))
	}
	if o.proxyClientCertFile == "" || o.proxyClientKeyFile == "" {
		errs = append(errs, errors.New("--proxy-client-cert-file and --proxy-client-key-file are required: kube-apiserver trusts identity headers only with that certificate (make one with frontgate pki init)"))
	}
	return errs
}
