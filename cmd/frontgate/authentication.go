package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

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

// identitySources are the configured ways to authenticate a caller, ready to
// run.
type identitySources struct {
	// authenticator tries every source, client certificates first (as
	// kube-apiserver orders them), and refuses reserved identities.
	authenticator auth.Authenticator
	// background runs the token sources for the server's lifetime: issuer
	// discovery and key refresh.
	background []func(context.Context)
	// ready reports whether every source can authenticate now.
	ready func() error
	// listenerTLS adds what the sources need to the listener's TLS settings.
	listenerTLS func(*tls.Config) *tls.Config
	// issuers are the OpenID issuers and clients published for `frontgate
	// kubeconfig --from`, as configured at start-up.
	issuers []proxy.DiscoveryIssuer
	// tokens are the token sources inside authenticator, for `frontgate
	// explain`.
	tokens []tokenSource
	// certs is the client-certificate source inside authenticator, for
	// `frontgate explain`; nil without --client-ca-file.
	certs *clientcert.Authenticator
}

// buildIdentitySources reads the files of every configured identity source.
func (o *serveOptions) buildIdentitySources(logger *slog.Logger, registry prometheus.Registerer, watches *fileWatches) (*identitySources, error) {
	s := &identitySources{listenerTLS: func(c *tls.Config) *tls.Config { return c }}
	var sources []auth.Authenticator
	var readiness []func() error
	// addTokens authenticates bearer tokens with t, behind the token cache.
	addTokens := func(t reload.TokenSource, config string, explain *explainFunc) {
		s.tokens = append(s.tokens, tokenSource{config: config, explain: explain})
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
		if err := watches.add("client-certificates", paths, func() error { return certs.Reload(files) }); err != nil {
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
		s.certs = certs
	}

	if o.authenticationConfig != "" {
		path := o.authenticationConfig
		opts := authnconfig.Options{Registerer: registry, Logger: logger}
		explain := new(explainFunc)
		// The issuers published for discovery are those of the first load.
		tokens, err := watches.tokens("authentication-config", []string{path}, func() (reload.TokenSource, error) {
			cfg, err := authnconfig.Load(path)
			if err != nil {
				return nil, err
			}
			if s.issuers == nil {
				for _, jwt := range cfg.Spec.JWT {
					s.issuers = append(s.issuers, proxy.DiscoveryIssuer{URL: jwt.Issuer.URL, ClientID: jwt.Issuer.Audiences[0]})
				}
			}
			a, err := authnconfig.NewAuthenticator(cfg, opts)
			if err != nil {
				return nil, err
			}
			explain.setFirst(a.Explain)
			return a, nil
		})
		if err != nil {
			return nil, fmt.Errorf("--authentication-config: %w", err)
		}
		addTokens(tokens, "--authentication-config "+path, explain)
	}

	if o.oidc.issuerURL != "" {
		var caFiles []string
		if o.oidc.caFile != "" {
			caFiles = []string{o.oidc.caFile}
		}
		explain := new(explainFunc)
		tokens, err := watches.tokens("oidc-ca-file", caFiles, func() (reload.TokenSource, error) {
			var roots *x509.CertPool
			if o.oidc.caFile != "" {
				var err error
				if roots, err = pki.Pool(o.oidc.caFile); err != nil {
					return nil, fmt.Errorf("--oidc-ca-file: %w", err)
				}
			}
			a, err := oidc.New(oidc.Options{
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
			explain.setFirst(a.Explain)
			return a, nil
		})
		if err != nil {
			return nil, err
		}
		addTokens(tokens, "--oidc-* flags", explain)
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
