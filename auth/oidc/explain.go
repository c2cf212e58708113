package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

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
	if raw, err := json.Marshal(payload); err != nil || !validStandardClaims(raw) {
		add("registered claims", "sub, aud, exp, iat and nbf of their standard JSON types",
			&auth.Error{Reason: auth.ReasonInvalidClaim, Message: "token has a registered claim of the wrong type (sub, aud, exp, iat and nbf must have their standard JSON types)"}, "")
	}

	aud, _ := stringOrArray(payload["aud"])
	var audErr error
	if !a.audienceMatches(aud) {
		audErr = a.audienceError(aud, nil)
	}
	add("audience (aud)", a.audienceText, audErr, "token audience "+auth.QuoteList(aud))

	now := a.now()
	exp, hasExp := numericDate(payload, "exp")
	switch {
	case !hasExp:
		add("expiry (exp)", "in the future", &auth.Error{Reason: auth.ReasonMissingClaim, Message: "token has no expiry (exp) claim"}, "")
	case exp.Before(now):
		add("expiry (exp)", "in the future", &auth.Error{Reason: auth.ReasonTokenExpired, Message: "token expired at " + formatTime(exp)}, "")
	default:
		add("expiry (exp)", "in the future", nil, "valid until "+formatTime(exp))
	}
	if nbf, ok := numericDate(payload, "nbf"); ok {
		var err error
		if nbf.After(now.Add(leeway)) {
			err = &auth.Error{Reason: auth.ReasonTokenNotYetValid, Message: "token is not valid before " + formatTime(nbf)}
		}
		add("not before (nbf)", "not in the future (5m leeway)", err, "valid from "+formatTime(nbf))
	}
	if iat, ok := numericDate(payload, "iat"); ok {
		var err error
		if iat.After(now.Add(leeway)) {
			err = &auth.Error{Reason: auth.ReasonTokenNotYetValid, Message: fmt.Sprintf("token was issued at %s, which is in the future; check the clocks of the issuer and of frontgate", formatTime(iat))}
		}
		add("issued at (iat)", "not in the future (5m leeway)", err, "issued at "+formatTime(iat))
	}

	t := &Token{Issuer: a.issuer, Audience: aud, Expiry: exp, Claims: payload}
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
	id.Expires = exp
	x.Identity = id
	return x
}

// numericDate decodes the NumericDate claim name as go-oidc does (whole
// seconds); ok is false when the claim is absent or not a number.
func numericDate(c Claims, name string) (time.Time, bool) {
	raw, ok := c[name]
	if !ok {
		return time.Time{}, false
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// count says "1 group", "2 groups".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
