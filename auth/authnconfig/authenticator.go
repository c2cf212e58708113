package authnconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/oidc"
)

// Options are the runtime dependencies of an [Authenticator].
type Options struct {
	// Registerer receives the metrics of auth/oidc; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives discovery and JWKS events; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Tests inject a clock.
	Now func() time.Time
}

// Authenticator authenticates the tokens of every jwt entry of a [Config].
// It implements auth.TokenAuthenticator: a token goes to the issuer named by
// its iss claim, and then to the entry of that issuer whose audiences its
// aud claim contains. It is safe for concurrent use; start
// [Authenticator.Run] and check [Authenticator.Ready].
type Authenticator struct {
	path    string
	issuers map[string]*oidc.Authenticator
	order   []string // issuer URLs in file order
}

// NewAuthenticator returns an Authenticator for cfg: one auth/oidc
// authenticator per distinct issuer URL (one JWKS key set, one readiness),
// whose claims are mapped by the entry the token's audience selects. Every
// signing algorithm kube-apiserver supports is accepted, as kube-apiserver
// does with --authentication-config. It does no network I/O.
func NewAuthenticator(cfg *Config, opts Options) (*Authenticator, error) {
	if cfg == nil || len(cfg.entries) == 0 {
		return nil, errors.New("authnconfig: NewAuthenticator needs a Config returned by Load")
	}
	a := &Authenticator{path: cfg.Path, issuers: map[string]*oidc.Authenticator{}}
	byIssuer := map[string][]*entry{}
	for _, e := range cfg.entries {
		iss := e.spec.Issuer.URL
		if _, ok := byIssuer[iss]; !ok {
			a.order = append(a.order, iss)
		}
		byIssuer[iss] = append(byIssuer[iss], e)
	}
	for _, iss := range a.order {
		entries := byIssuer[iss]
		first := entries[0]
		var audiences, paths []string
		for _, e := range entries {
			audiences = append(audiences, e.spec.Issuer.Audiences...)
			paths = append(paths, e.path)
		}
		var mapper oidc.ClaimMapper = first
		description := fmt.Sprintf("any of the audiences %s of %s.issuer.audiences", auth.QuoteList(first.spec.Issuer.Audiences), first.path)
		if len(entries) > 1 {
			mapper = &issuerMapper{issuer: iss, entries: entries}
			description = fmt.Sprintf("any of the audiences of %s (issuer.audiences)", strings.Join(paths, ", "))
		}
		ia, err := oidc.NewIssuer(oidc.IssuerOptions{
			IssuerURL:           iss,
			DiscoveryURL:        first.spec.Issuer.DiscoveryURL,
			Audiences:           audiences,
			AudienceDescription: description,
			RootCAs:             first.rootCAs,
			SigningAlgs:         oidc.SupportedSigningAlgs(),
			Mapper:              mapper,
			Registerer:          opts.Registerer,
			Logger:              opts.Logger,
			Now:                 opts.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", cfg.Path, first.path, err)
		}
		a.issuers[iss] = ia
	}
	return a, nil
}

// Run runs every issuer's discovery and JWKS refresh (see
// oidc.Authenticator.Run) and returns when ctx ends and all have stopped.
// Run must be called once.
func (a *Authenticator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, iss := range a.order {
		wg.Go(func() { a.issuers[iss].Run(ctx) })
	}
	wg.Wait()
}

// Ready returns nil once every issuer has been discovered and its keys
// fetched; before that, the errors of those that are not ready, joined. As
// in kube-apiserver, one unreachable issuer makes the whole configuration
// not ready.
func (a *Authenticator) Ready() error {
	var errs []error
	for _, iss := range a.order {
		if err := a.issuers[iss].Ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AuthenticateToken implements auth.TokenAuthenticator. A token of an issuer
// the configuration does not name is refused with [auth.ReasonInvalidIssuer],
// as auth/oidc does, so that callers can treat it as "not mine".
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*auth.Identity, bool, error) {
	ia, err := a.issuerOf(token)
	if err != nil {
		return nil, false, err
	}
	return ia.AuthenticateToken(ctx, token)
}

// issuerOf returns the authenticator of the issuer named by token's
// (unverified) iss claim.
func (a *Authenticator) issuerOf(token string) (*oidc.Authenticator, error) {
	iss, err := oidc.UnverifiedIssuer(token)
	if err != nil {
		if auth.ReasonOf(err) == auth.ReasonInvalidIssuer {
			return nil, &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token has no issuer (iss) claim; the configured issuers are %s", auth.QuoteList(a.order))}
		}
		return nil, err
	}
	ia, ok := a.issuers[iss]
	if !ok {
		return nil, &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token issuer %s is not a configured issuer %s", auth.Quote(iss), auth.QuoteList(a.order))}
	}
	return ia, nil
}

// Explain reports, for `frontgate explain` only, how a would treat token:
// the issuer its iss claim selects, then that issuer's
// oidc.Authenticator.Explain, whose MappedBy names the jwt entry chosen by
// the token's audience and whose checks include every claimValidationRule
// and userValidationRule of that entry, each with its result. Like
// oidc.Authenticator.Explain it verifies no signature and does no network
// I/O; the request path never calls it.
func (a *Authenticator) Explain(ctx context.Context, token string) *oidc.Explanation {
	ia, err := a.issuerOf(token)
	if err != nil {
		rule, requirement := "issuer (iss)", "one of "+auth.QuoteList(a.order)
		if auth.ReasonOf(err) == auth.ReasonMalformedToken {
			rule, requirement = "format", "a signed JWT (compact JWS)"
		}
		return &oidc.Explanation{
			Checks: []oidc.Check{{Rule: rule, Requirement: requirement, Outcome: oidc.CheckFailed, Message: err.Error()}},
			Err:    err,
		}
	}
	return ia.Explain(ctx, token)
}

// issuerMapper chooses among the entries of one issuer by the token's
// audience. Load made their audiences disjoint; a token whose aud claim
// names audiences of two entries is refused as ambiguous.
type issuerMapper struct {
	issuer  string
	entries []*entry
}

// MapClaims implements oidc.ClaimMapper.
func (m *issuerMapper) MapClaims(ctx context.Context, t *oidc.Token) (*auth.Identity, error) {
	e, err := m.choose(t.Audience)
	if err != nil {
		return nil, err
	}
	return e.MapClaims(ctx, t)
}

// ExplainClaims implements oidc.ClaimExplainer: the choice of entry, then
// the chosen entry's explanation.
func (m *issuerMapper) ExplainClaims(ctx context.Context, t *oidc.Token) (string, []oidc.Check) {
	e, err := m.choose(t.Audience)
	if err != nil {
		return "", []oidc.Check{{Rule: "jwt entry", Requirement: "the token's audience selects exactly one entry of issuer " + auth.Quote(m.issuer), Outcome: oidc.CheckFailed, Message: err.Error()}}
	}
	return e.ExplainClaims(ctx, t)
}

// choose returns the one entry whose audiences aud contains.
func (m *issuerMapper) choose(aud []string) (*entry, error) {
	var matched []*entry
	var paths []string
	for _, e := range m.entries {
		if e.acceptsAudience(aud) {
			matched = append(matched, e)
			paths = append(paths, e.path)
		}
	}
	switch len(matched) {
	case 1:
		return matched[0], nil
	case 0:
		return nil, &auth.Error{Reason: auth.ReasonInvalidAudience, Message: fmt.Sprintf("token audience %s matches no entry of issuer %q", auth.QuoteList(aud), m.issuer)}
	default:
		return nil, &auth.Error{Reason: auth.ReasonInvalidAudience, Message: fmt.Sprintf("token audience %s matches several entries of issuer %q (%s), so the mapping to use is ambiguous; a token must carry the audiences of one entry only", auth.QuoteList(aud), m.issuer, strings.Join(paths, ", "))}
	}
}
