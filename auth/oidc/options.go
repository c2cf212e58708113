package oidc

import (
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/frontgate/frontgate/auth"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultUsernameClaim is the username claim used when Options.UsernameClaim
// is empty, as for kube-apiserver's --oidc-username-claim.
const DefaultUsernameClaim = "sub"

// DefaultSigningAlg is the only signing algorithm accepted when
// Options.SigningAlgs is empty, as for kube-apiserver's --oidc-signing-algs.
const DefaultSigningAlg = "RS256"

// supportedSigningAlgs are the asymmetric algorithms kube-apiserver accepts.
var supportedSigningAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}

// SupportedSigningAlgs returns the algorithms Options.SigningAlgs may
// contain: the asymmetric algorithms kube-apiserver accepts. The caller owns
// the returned slice.
func SupportedSigningAlgs() []string { return slices.Clone(supportedSigningAlgs) }

// Options configure an [Authenticator]. The fields mirror kube-apiserver's
// legacy --oidc-* flags; UIDClaim and ExtraClaims are frontgate extensions.
type Options struct {
	// IssuerURL is the issuer, compared exactly with the iss claim of tokens
	// and with the issuer of the discovery document. It must use https,
	// except that http is accepted for a loopback host (localhost,
	// 127.0.0.0/8, ::1).
	IssuerURL string
	// ClientID is required; a token's aud claim must contain it.
	ClientID string
	// UsernameClaim names the claim holding the username; "sub" when empty.
	UsernameClaim string
	// UsernamePrefix is the effective prefix prepended to every username,
	// already resolved from the flag (see [UsernamePrefixFor]).
	UsernamePrefix string
	// GroupsClaim optionally names a claim holding the groups: a string or an
	// array of strings. A token without it has no groups.
	GroupsClaim string
	// GroupsPrefix is prepended to every group.
	GroupsPrefix string
	// UIDClaim optionally names a string claim that becomes Identity.UID.
	// When set, tokens without it are refused.
	UIDClaim string
	// ExtraClaims maps extra attribute keys (lower-case, domain-prefixed such
	// as "example.com/team") to claim names. A claim may be a string or an
	// array of strings; a missing claim adds no attribute.
	ExtraClaims map[string]string
	// RequiredClaims maps claim names to the string value each must have.
	RequiredClaims map[string]string
	// RootCAs verify the issuer's TLS certificate for discovery and JWKS;
	// nil means the system roots.
	RootCAs *x509.CertPool
	// SigningAlgs are the accepted signature algorithms; [DefaultSigningAlg]
	// when empty. Only [SupportedSigningAlgs] are allowed; "none" and the
	// HMAC algorithms are refused.
	SigningAlgs []string
	// Registerer receives the package's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives discovery and JWKS events; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Tests inject a clock.
	Now func() time.Time
}

// IssuerOptions configure an [Authenticator] made by [NewIssuer]: token
// verification as for [Options], with the mapping of verified claims to an
// identity left to Mapper.
type IssuerOptions struct {
	// IssuerURL is the issuer, as for Options.IssuerURL.
	IssuerURL string
	// DiscoveryURL optionally replaces IssuerURL+"/.well-known/openid-configuration"
	// as the location of the discovery document, as an
	// AuthenticationConfiguration's issuer.discoveryURL does. The document
	// must still name IssuerURL as its issuer. The same URL rules apply.
	DiscoveryURL string
	// Audiences are required; a token's aud claim must contain at least one
	// of them (kube-apiserver's audienceMatchPolicy MatchAny).
	Audiences []string
	// AudienceDescription names the accepted audiences in rejection
	// messages, for example "the audiences of jwt[0].issuer.audiences";
	// empty means they are listed.
	AudienceDescription string
	// RootCAs verify the issuer's TLS certificate; nil means the system roots.
	RootCAs *x509.CertPool
	// SigningAlgs are the accepted signature algorithms, as for
	// Options.SigningAlgs; [DefaultSigningAlg] when empty.
	SigningAlgs []string
	// Mapper turns verified claims into an identity; required.
	Mapper ClaimMapper
	// Registerer receives the package's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives discovery and JWKS events; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// validate checks opts without any I/O and returns every problem joined.
func (opts *IssuerOptions) validate() error {
	var errs []error
	if opts.IssuerURL == "" {
		errs = append(errs, errors.New("the issuer URL is required"))
	} else if err := auth.CheckIssuerURL(opts.IssuerURL); err != nil {
		errs = append(errs, fmt.Errorf("issuer URL %q %w", opts.IssuerURL, err))
	}
	if opts.DiscoveryURL != "" {
		if err := auth.CheckIssuerURL(opts.DiscoveryURL); err != nil {
			errs = append(errs, fmt.Errorf("discovery URL %q %w", opts.DiscoveryURL, err))
		}
	}
	if len(opts.Audiences) == 0 {
		errs = append(errs, errors.New("at least one audience is required"))
	}
	if slices.Contains(opts.Audiences, "") {
		errs = append(errs, errors.New("an audience must not be empty"))
	}
	for _, alg := range opts.SigningAlgs {
		if !slices.Contains(supportedSigningAlgs, alg) {
			errs = append(errs, fmt.Errorf("signing algorithm %q is not supported; use some of %s", alg, strings.Join(supportedSigningAlgs, ", ")))
		}
	}
	if opts.Mapper == nil {
		errs = append(errs, errors.New("a claim mapper is required"))
	}
	return errors.Join(errs...)
}

// UsernamePrefixFor resolves the effective username prefix from the
// --oidc-username-prefix flag with kube-apiserver's rules: when the flag is
// not set, the prefix is issuerURL+"#" unless the username claim is "email",
// in which case there is none; the value "-" disables the prefix; any other
// value is used as is.
func UsernamePrefixFor(flagValue string, flagSet bool, issuerURL, usernameClaim string) string {
	if !flagSet {
		if usernameClaim == "email" {
			return ""
		}
		return issuerURL + "#"
	}
	if flagValue == "-" {
		return ""
	}
	return flagValue
}

// validate checks opts without any I/O and returns every problem joined, each
// naming the flag to fix.
func (opts *Options) validate() error {
	var errs []error
	if opts.IssuerURL == "" {
		errs = append(errs, errors.New("--oidc-issuer-url is required"))
	} else if err := auth.CheckIssuerURL(opts.IssuerURL); err != nil {
		errs = append(errs, fmt.Errorf("--oidc-issuer-url %q %w", opts.IssuerURL, err))
	}
	if opts.ClientID == "" {
		errs = append(errs, errors.New("--oidc-client-id is required"))
	}
	for _, alg := range opts.SigningAlgs {
		if !slices.Contains(supportedSigningAlgs, alg) {
			errs = append(errs, fmt.Errorf("--oidc-signing-algs: %q is not supported; use some of %s", alg, strings.Join(supportedSigningAlgs, ", ")))
		}
	}
	for claim := range opts.RequiredClaims {
		if claim == "" {
			errs = append(errs, errors.New("--oidc-required-claim: the claim name must not be empty"))
		}
	}
	for key, claim := range opts.ExtraClaims {
		if err := checkExtraKey(key); err != nil {
			errs = append(errs, fmt.Errorf("extra claim mapping %q: %w", key, err))
		}
		if claim == "" {
			errs = append(errs, fmt.Errorf("extra claim mapping %q: the claim name must not be empty", key))
		}
	}
	return errors.Join(errs...)
}

// checkExtraKey accepts what kube-apiserver accepts as an extra key in an
// AuthenticationConfiguration: a lower-case, domain-prefixed path outside the
// k8s.io and kubernetes.io domains.
func checkExtraKey(key string) error {
	if key == "" {
		return errors.New("the key must not be empty")
	}
	if key != strings.ToLower(key) {
		return errors.New("the key must be lower-case (kube-apiserver lower-cases extra keys)")
	}
	domain, path, ok := strings.Cut(key, "/")
	if !ok || domain == "" || path == "" || !strings.Contains(domain, ".") {
		return errors.New("the key must be a domain-prefixed path such as example.com/team")
	}
	for _, reserved := range []string{"k8s.io", "kubernetes.io"} {
		if domain == reserved || strings.HasSuffix(domain, "."+reserved) {
			return fmt.Errorf("the domain %s is reserved for Kubernetes", reserved)
		}
	}
	return nil
}
