package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/authnconfig"
	"github.com/frontgate/frontgate/auth/clientcert"
	"github.com/frontgate/frontgate/auth/oidc"
	"github.com/frontgate/frontgate/auth/reload"
	"github.com/frontgate/frontgate/auth/tokencache"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
	"github.com/frontgate/frontgate/proxy"
)

// reloadReadyTimeout bounds how long a reloaded authentication configuration
// may take to reach its issuers before the reload is abandoned.
const reloadReadyTimeout = 30 * time.Second

// identitySources are the configured ways to authenticate a caller, ready to
// run.
type identitySources struct {
	// authenticator tries every source, client certificates first (as
	// kube-apiserver orders them), and refuses reserved identities.
	authenticator auth.Authenticator
	// background keeps the sources current for the server's lifetime:
	// issuer discovery and key refresh, file watches.
	background []func(context.Context)
	// ready reports whether every source can authenticate now.
	ready func() error
	// listenerTLS adds what the sources need to the listener's TLS settings.
	listenerTLS func(*tls.Config) *tls.Config
	// issuers are the OpenID issuers and clients published for `frontgate
	// kubeconfig --from`, as configured at start-up.
	issuers []proxy.DiscoveryIssuer
}

// buildIdentitySources reads the files of every configured identity source.
func (o *serveOptions) buildIdentitySources(logger *slog.Logger, registry prometheus.Registerer) (*identitySources, error) {
	s := &identitySources{listenerTLS: func(c *tls.Config) *tls.Config { return c }}
	var sources []auth.Authenticator
	var readiness []func() error
	reloads := reload.NewMetrics(registry)
	// watch creates a watcher before the files are first read, so no change
	// is missed, and runs it with the server.
	watch := func(name string, paths []string, apply func() error) error {
		w, err := reload.New(reload.Options{Name: name, Paths: paths, Apply: apply, Logger: logger, Metrics: reloads})
		if err != nil {
			return err
		}
		s.background = append(s.background, w.Run)
		return nil
	}
	// addTokens authenticates bearer tokens with t, behind the token cache.
	addTokens := func(t reload.TokenSource) {
		var tokens auth.TokenAuthenticator = t
		if o.tokenCacheTTL > 0 {
			tokens = tokencache.New(t, tokencache.Options{TTL: o.tokenCacheTTL, MaxEntries: o.tokenCacheSize, Registerer: registry})
		}
		sources = append(sources, auth.Bearer(tokens))
		readiness = append(readiness, t.Ready)
		s.background = append(s.background, t.Run)
	}

	if len(o.clientCAFiles) > 0 {
		files := clientcert.Files{CAFiles: o.clientCAFiles, CRLFiles: o.clientCRLFiles, MappingFile: o.clientCertMapping}
		paths, err := files.Paths()
		if err != nil {
			return nil, err
		}
		var certs *clientcert.Authenticator
		if err := watch("client-certificates", paths, func() error { return certs.Reload(files) }); err != nil {
			return nil, err
		}
		cfg, err := files.Load()
		if err != nil {
			return nil, err
		}
		if cfg.TrustedProxies, err = clientcert.ParseTrustedProxies(o.trustedProxyCIDRs); err != nil {
			return nil, err
		}
		if certs, err = clientcert.New(cfg); err != nil {
			return nil, err
		}
		sources = append(sources, certs)
		s.listenerTLS = certs.TLSConfig
	}

	if o.authenticationConfig != "" {
		path := o.authenticationConfig
		opts := authnconfig.Options{Registerer: registry, Logger: logger}
		load := func() (*authnconfig.Authenticator, error) {
			cfg, err := authnconfig.Load(path)
			if err != nil {
				return nil, err
			}
			return authnconfig.NewAuthenticator(cfg, opts)
		}
		var tokens *reload.Tokens
		if err := watch("authentication-config", []string{path}, func() error {
			next, err := load()
			if err != nil {
				return err
			}
			return tokens.Replace(next, reloadReadyTimeout)
		}); err != nil {
			return nil, fmt.Errorf("--authentication-config: %w", err)
		}
		cfg, err := authnconfig.Load(path)
		if err != nil {
			return nil, err
		}
		first, err := authnconfig.NewAuthenticator(cfg, opts)
		if err != nil {
			return nil, err
		}
		for _, jwt := range cfg.Spec.JWT {
			s.issuers = append(s.issuers, proxy.DiscoveryIssuer{URL: jwt.Issuer.URL, ClientID: jwt.Issuer.Audiences[0]})
		}
		tokens = reload.NewTokens(first)
		addTokens(tokens)
	}

	if o.oidc.issuerURL != "" {
		var roots *x509.CertPool
		if o.oidc.caFile != "" {
			var err error
			if roots, err = pki.Pool(o.oidc.caFile); err != nil {
				return nil, fmt.Errorf("--oidc-ca-file: %w", err)
			}
		}
		issuer, err := oidc.New(oidc.Options{
			IssuerURL:      o.oidc.issuerURL,
			ClientID:       o.oidc.clientID,
			UsernameClaim:  o.oidc.usernameClaim,
			UsernamePrefix: oidc.UsernamePrefixFor(o.oidc.usernamePrefix, o.oidc.usernamePrefixSet, o.oidc.issuerURL, o.oidc.usernameClaim),
			GroupsClaim:    o.oidc.groupsClaim,
			GroupsPrefix:   o.oidc.groupsPrefix,
			UIDClaim:       o.oidc.uidClaim,
			ExtraClaims:    o.oidc.extraClaims,
			RequiredClaims: o.oidc.requiredClaims,
			RootCAs:        roots,
			SigningAlgs:    o.oidc.signingAlgs,
			Registerer:     registry,
			Logger:         logger,
		})
		if err != nil {
			return nil, err
		}
		addTokens(issuer)
		s.issuers = append(s.issuers, proxy.DiscoveryIssuer{URL: o.oidc.issuerURL, ClientID: o.oidc.clientID})
	}

	s.authenticator = auth.RefuseReserved(auth.Union(sources...), o.allowReserved)
	s.ready = func() error {
		var errs []error
		for _, ready := range readiness {
			if err := ready(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return s, nil
}
