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
	"github.com/frontgate/frontgate/auth/clientcert"
	"github.com/frontgate/frontgate/auth/oidc"
	"github.com/frontgate/frontgate/auth/tokencache"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
)

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
}

// buildIdentitySources reads the files of every configured identity source.
func (o *serveOptions) buildIdentitySources(logger *slog.Logger, registry prometheus.Registerer) (*identitySources, error) {
	s := &identitySources{listenerTLS: func(c *tls.Config) *tls.Config { return c }}
	var sources []auth.Authenticator
	var readiness []func() error

	if len(o.clientCAFiles) > 0 {
		files := clientcert.Files{CAFiles: o.clientCAFiles, CRLFiles: o.clientCRLFiles, MappingFile: o.clientCertMapping}
		cfg, err := files.Load()
		if err != nil {
			return nil, err
		}
		if cfg.TrustedProxies, err = clientcert.ParseTrustedProxies(o.trustedProxyCIDRs); err != nil {
			return nil, err
		}
		certs, err := clientcert.New(cfg)
		if err != nil {
			return nil, err
		}
		sources = append(sources, certs)
		s.listenerTLS = certs.TLSConfig
		s.background = append(s.background, func(ctx context.Context) { certs.Watch(ctx, files, 0, logger) })
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
		var tokens auth.TokenAuthenticator = issuer
		if o.tokenCacheTTL > 0 {
			tokens = tokencache.New(issuer, tokencache.Options{TTL: o.tokenCacheTTL, MaxEntries: o.tokenCacheSize, Registerer: registry})
		}
		sources = append(sources, auth.Bearer(tokens))
		readiness = append(readiness, issuer.Ready)
		s.background = append(s.background, issuer.Run)
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
