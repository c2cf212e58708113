package oidc

import (
	"context"
	"fmt"
	"strings"

	"github.com/frontgate/frontgate/auth"
)

// Outcomes of a [Check].
const (
	// CheckPassed: the token satisfies the rule.
	CheckPassed = "pass"
	// CheckFailed: the rule refuses the token; Check.Message says why.
	CheckFailed = "fail"
	// CheckSkipped: the rule could not be evaluated; Check.Message says why.
	CheckSkipped = "skip"
)

// Check is the result of one rule applied to a token, for an offline
// explanation of what frontgate does with it (`frontgate explain`).
type Check struct {
	// Rule names the rule: a flag such as "--oidc-required-claim", a field
	// path such as "jwt[0].claimValidationRules[1]", or a registered claim
	// such as "expiry (exp)".
	Rule string
	// Requirement says what the rule requires, for example a claim and its
	// value or a CEL expression; it may be empty.
	Requirement string
	// Outcome is CheckPassed, CheckFailed or CheckSkipped.
	Outcome string
	// Message says why the rule failed or was skipped, and may describe
	// what passed. Like every message of this package it quotes claim
	// values, never the token.
	Message string
}

// checkOf is a passed check (with message passed) when err is nil, else a
// failed one with err's message.
func checkOf(rule, requirement string, err error, passed string) Check {
	if err != nil {
		return Check{Rule: rule, Requirement: requirement, Outcome: CheckFailed, Message: err.Error()}
	}
	return Check{Rule: rule, Requirement: requirement, Outcome: CheckPassed, Message: passed}
}

// Explanation is what [Authenticator.Explain] reports about one token.
type Explanation struct {
	// Issuer is the configured issuer URL that handled the token; empty
	// when the token is not a JWT of this issuer.
	Issuer string
	// MappedBy names the configuration that mapped the claims: "--oidc-*
	// flags" for [New], a [ClaimExplainer]'s answer (such as "jwt[0]") for
	// [NewIssuer]; empty when no mapping ran.
	MappedBy string
	// Claims are the token's claims, NOT verified by Explain.
	Claims Claims
	// Checks are the results of every rule, in the order
	// [Authenticator.AuthenticateToken] applies them; each is evaluated even
	// when an earlier one failed. The signature is not among them.
	Checks []Check
	// Identity is what the claims map to, Expires set; nil when the mapping
	// failed. It is set even when an earlier check failed (an expired
	// token's identity, say): only Err says whether it would be accepted.
	Identity *auth.Identity
	// Err is the first failure, as AuthenticateToken would report it if the
	// signature verified; nil when every check passed.
	Err error
}

// ClaimExplainer is implemented by a [ClaimMapper] that can report each of
// its rules, for [Authenticator.Explain]. Mappers that do not implement it
// are explained by MapClaims' result alone.
type ClaimExplainer interface {
	// ExplainClaims returns the name of the configuration that maps t (for
	// example "jwt[0]") and the result of every rule MapClaims applies to
	// t, each evaluated even when an earlier one failed. t's claims may be
	// unverified. It must not change what MapClaims returns.
	ExplainClaims(ctx context.Context, t *Token) (mappedBy string, checks []Check)
}

// Explain reports, for `frontgate explain` only, how a would treat token:
// every check of [Authenticator.AuthenticateToken] except the signature
// (format and header, issuer, registered claims, audience, expiry,
// not-before, issued-at), then every rule of the claim mapper, and the
// identity the claims map to.
//
// Explain verifies NO signature and does no network I/O; it needs neither
// [Authenticator.Run] nor readiness. Its claims are therefore unverified,
// and callers must say so unless AuthenticateToken accepted the same token.
// The request path never calls it.
func (a *Authenticator) Explain(ctx context.Context, token string) *Explanation {
	x := &Explanation{}
	add := func(rule, requirement string, err error, passed string) {
		x.Checks = append(x.Checks, checkOf(rule, requirement, err, passed))
		if err != nil && x.Err == nil {
			x.Err = err
		}
	}

	_, payload, err := parseUnverified(token)
	if err != nil {
		add("format", "a signed JWT (compact JWS)", err, "")
		return x
	}
	x.Claims = payload
	headerRequirement := "alg one of " + strings.Join(a.algs, ", ") + "; no crit; not a nested JWT"
	switch err := a.precheck(token); {
	case auth.ReasonOf(err) == auth.ReasonInvalidIssuer:
		add("issuer (iss)", a.issuer, err, "")
		return x
	default:
		x.Issuer = a.issuer
		add("issuer (iss)", a.issuer, nil, "")
		add("header", headerRequirement, err, "")
	}
	reg, err := registeredClaims(payload) // whatever decodes is explained below
	if err != nil {
		add("registered claims", "sub, aud, exp, iat and nbf of their standard JSON types", err, "")
	}
	now := a.now()
	add("audience (aud)", a.audienceText, a.checkAudience(reg.audience), "token audience "+auth.QuoteList(reg.audience))
	add("expiry (exp)", "in the future", checkExpiry(reg, now), "valid until "+formatTime(reg.expiry))
	if !reg.notBefore.IsZero() {
		add("not before (nbf)", "not in the future (5m leeway)", checkNotBefore(reg, now), "valid from "+formatTime(reg.notBefore))
	}
	if !reg.issuedAt.IsZero() {
		add("issued at (iat)", "not in the future (5m leeway)", checkIssuedAt(reg, now), "issued at "+formatTime(reg.issuedAt))
	}

	t := &Token{Issuer: a.issuer, Audience: reg.audience, Expiry: reg.expiry, Claims: payload}
	if ce, ok := a.mapper.(ClaimExplainer); ok {
		var checks []Check
		x.MappedBy, checks = ce.ExplainClaims(ctx, t)
		x.Checks = append(x.Checks, checks...)
	}
	id, err := a.mapper.MapClaims(ctx, t)
	if err == nil && id == nil {
		err = &auth.Error{Reason: auth.ReasonInvalidIdentity, Message: "the claim mapper returned no identity"}
	}
	if err != nil {
		if _, ok := a.mapper.(ClaimExplainer); !ok {
			x.Checks = append(x.Checks, checkOf("claim mapping", "", err, ""))
		}
		if x.Err == nil {
			x.Err = err
		}
		return x
	}
	id.Expires = reg.expiry
	x.Identity = id
	return x
}

// count says "1 group", "2 groups".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
