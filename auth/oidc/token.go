package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/frontgate/frontgate/auth"
)

const (
	// maxTokenBytes bounds the tokens parsed at all.
	maxTokenBytes = 128 << 10
	// leeway tolerates clock skew for nbf (as go-oidc does) and iat.
	leeway = 5 * time.Minute
	// source is Identity.Source.
	source = "oidc"
)

// Claims are the claims of a token, by name, as undecoded JSON values.
type Claims map[string]json.RawMessage

// Token is a token whose signature, issuer, audience and validity period
// have been verified — except in [Authenticator.Explain], which hands the
// unverified claims of a token to the mapper to explain them offline.
type Token struct {
	// Issuer is the configured issuer URL the token was verified against.
	Issuer string
	// Audience is the token's aud claim; it contains at least one of the
	// configured audiences.
	Audience []string
	// Expiry is the token's exp claim.
	Expiry time.Time
	// Claims are all the token's claims, registered ones included.
	Claims Claims
}

// ClaimMapper turns the verified claims of a token into an identity. It is
// the part of an [Authenticator] that differs between kube-apiserver's
// legacy --oidc-* flags ([New]) and other configurations ([NewIssuer]).
type ClaimMapper interface {
	// MapClaims returns the identity of t, or an error saying why t is
	// refused; errors should be an *auth.Error with a precise Reason and a
	// message that never contains the token. The Authenticator sets the
	// identity's Expires itself. MapClaims must be safe for concurrent use
	// and must not keep or modify t.
	MapClaims(ctx context.Context, t *Token) (*auth.Identity, error)
}

// AuthenticateToken implements auth.TokenAuthenticator. A token from another
// issuer is refused with [auth.ReasonInvalidIssuer], so that callers can tell
// it apart; every other rejection carries the precise reason. Apart from a
// rate-limited JWKS refetch for an unknown key ID, it does no network I/O.
//
// The token is parsed and its claims are decoded once: the checks that need
// no key come first (format, issuer, header), then the signature, then the
// registered claims in go-oidc's order (types, audience, expiry,
// not-before) and the issued-at time, then the claim mapping.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*auth.Identity, bool, error) {
	jws, claims, err := a.parse(token)
	if err != nil {
		return nil, false, err
	}
	keys := a.keys.Load()
	if keys == nil {
		a.mu.Lock()
		lastErr := a.lastErr
		a.mu.Unlock()
		return nil, false, &auth.Error{
			Reason:  auth.ReasonIssuerUnavailable,
			Message: fmt.Sprintf("the OIDC issuer %q has not been reached yet; try again shortly", a.issuer),
			Err:     lastErr,
		}
	}
	if err := keys.verify(ctx, jws); err != nil {
		return nil, false, signatureRejection(err)
	}
	reg, err := registeredClaims(claims)
	if err != nil {
		return nil, false, err
	}
	now := a.now()
	for _, check := range []error{a.checkAudience(reg.audience), checkExpiry(reg, now), checkNotBefore(reg, now), checkIssuedAt(reg, now)} {
		if check != nil {
			return nil, false, check
		}
	}
	id, err := a.mapper.MapClaims(ctx, &Token{Issuer: a.issuer, Audience: reg.audience, Expiry: reg.expiry, Claims: claims})
	if err != nil {
		return nil, false, err
	}
	if id == nil {
		return nil, false, &auth.Error{Reason: auth.ReasonInvalidIdentity, Message: "the claim mapper returned no identity"}
	}
	id.Expires = reg.expiry
	return id, true, nil
}

// parse parses token as a compact JWS once, decodes its claims, and applies
// the checks that need no key (see [Authenticator.precheck]). When go-jose
// cannot parse the token, precheck says precisely why.
func (a *Authenticator) parse(token string) (*jose.JSONWebSignature, Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, nil, &auth.Error{Reason: auth.ReasonMalformedToken, Message: fmt.Sprintf("token is longer than %d bytes", maxTokenBytes)}
	}
	jws, err := jose.ParseSignedCompact(token, a.joseAlgs)
	if err != nil {
		if perr := a.precheck(token); perr != nil {
			return nil, nil, perr
		}
		return nil, nil, &auth.Error{Reason: auth.ReasonMalformedToken, Message: "token is not a well-formed signed JWT", Err: err}
	}
	var claims Claims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil || claims == nil {
		return nil, nil, &auth.Error{Reason: auth.ReasonMalformedToken, Message: "token is not a JWT: its payload is not a JSON object", Err: err}
	}
	h := jws.Signatures[0].Header
	header := unverifiedHeader{alg: h.Algorithm, hasAlg: h.Algorithm != ""}
	_, header.crit = h.ExtraHeaders["crit"]
	header.cty, _ = h.ExtraHeaders[jose.HeaderContentType].(string)
	if err := a.checkUnverified(token, header, claims); err != nil {
		return nil, nil, err
	}
	return jws, claims, nil
}

// UnverifiedIssuer returns the iss claim of token without verifying
// anything, so that a caller holding several issuers can choose the one to
// ask. As go-oidc and kube-apiserver do, "accounts.google.com" is returned as
// "https://accounts.google.com". Errors are *auth.Error: MalformedToken for
// anything but a compact JWS with JSON header and payload, InvalidIssuer for
// a token without iss.
func UnverifiedIssuer(token string) (string, error) {
	_, payload, err := parseUnverified(token)
	if err != nil {
		return "", err
	}
	return issuerOf(payload)
}

// Google's ID tokens may name their issuer without the scheme.
const (
	googleIssuer         = "https://accounts.google.com"
	googleIssuerNoScheme = "accounts.google.com"
)

// issuerOf returns the unverified iss claim of payload.
func issuerOf(payload Claims) (string, error) {
	raw, ok := payload["iss"]
	if !ok {
		return "", &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: "token has no issuer (iss) claim"}
	}
	var iss string
	if err := json.Unmarshal(raw, &iss); err != nil {
		return "", &auth.Error{Reason: auth.ReasonMalformedToken, Message: "token's issuer (iss) claim is not a string", Err: err}
	}
	if iss == googleIssuerNoScheme {
		iss = googleIssuer
	}
	return iss, nil
}

// parseUnverified splits a compact JWS and decodes its header and payload,
// verifying nothing.
func parseUnverified(token string) (map[string]json.RawMessage, Claims, error) {
	malformed := func(msg string, err error) error {
		return &auth.Error{Reason: auth.ReasonMalformedToken, Message: msg, Err: err}
	}
	if len(token) > maxTokenBytes {
		return nil, nil, malformed(fmt.Sprintf("token is longer than %d bytes", maxTokenBytes), nil)
	}
	parts := strings.Split(token, ".")
	switch len(parts) {
	case 3:
	case 5:
		return nil, nil, malformed("token is an encrypted JWT (JWE); only signed ID tokens (JWS) are accepted", nil)
	default:
		return nil, nil, malformed("token is not a JWT: it must have three base64url parts separated by dots", nil)
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, nil, malformed("token is not a JWT: its header is not base64url", err)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(rawHeader, &header); err != nil || header == nil {
		return nil, nil, malformed("token is not a JWT: its header is not a JSON object", err)
	}
	rawPayload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, nil, malformed("token is not a JWT: its payload is not base64url", err)
	}
	var payload Claims
	if err := json.Unmarshal(rawPayload, &payload); err != nil || payload == nil {
		return nil, nil, malformed("token is not a JWT: its payload is not a JSON object", err)
	}
	return header, payload, nil
}

// unverifiedHeader is what frontgate checks in a token's JOSE header before
// any cryptography.
type unverifiedHeader struct {
	alg    string
	hasAlg bool
	// crit reports a crit (critical extensions) parameter.
	crit bool
	// cty is the content type, "" when absent or not a string.
	cty string
}

// precheck refuses, without any cryptography, what is not a compact JWS of
// the configured issuer with an acceptable header. It parses the token
// itself, to say precisely what is wrong with a token go-jose refused, and
// for [Authenticator.Explain].
func (a *Authenticator) precheck(token string) error {
	rawHeader, payload, err := parseUnverified(token)
	if err != nil {
		return err
	}
	var header unverifiedHeader
	if raw, ok := rawHeader["alg"]; ok && json.Unmarshal(raw, &header.alg) == nil {
		header.hasAlg = true
	}
	_, header.crit = rawHeader["crit"]
	if raw, ok := rawHeader["cty"]; ok {
		_ = json.Unmarshal(raw, &header.cty)
	}
	return a.checkUnverified(token, header, payload)
}

// checkUnverified applies the checks that need no key to a compact JWS with
// three parts, its header and its claims.
func (a *Authenticator) checkUnverified(token string, header unverifiedHeader, claims Claims) error {
	// The issuer comes first: a token of another issuer is "not mine",
	// whatever else is wrong with it.
	iss, err := issuerOf(claims)
	if err != nil {
		if auth.ReasonOf(err) == auth.ReasonInvalidIssuer {
			return &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token has no issuer (iss) claim; the configured issuer is %q", a.issuer)}
		}
		return err
	}
	if iss != a.issuer {
		return &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token issuer %s is not the configured issuer %q", auth.Quote(iss), a.issuer)}
	}
	if !header.hasAlg {
		return &auth.Error{Reason: auth.ReasonMalformedToken, Message: "token header has no algorithm (alg)"}
	}
	if !slices.Contains(a.algs, header.alg) {
		msg := fmt.Sprintf("token is signed with algorithm %s; accepted algorithms are %s", auth.Quote(header.alg), strings.Join(a.algs, ", "))
		if a.algsHint != "" {
			msg += " (" + a.algsHint + ")"
		}
		return &auth.Error{Reason: auth.ReasonUnsupportedAlg, Message: msg}
	}
	if strings.HasSuffix(token, ".") { // the token has three parts
		return &auth.Error{Reason: auth.ReasonInvalidSignature, Message: "token has an empty signature"}
	}
	if header.crit {
		return &auth.Error{Reason: auth.ReasonUnsupportedAlg, Message: "token header lists critical extensions (crit), which are not supported"}
	}
	if strings.EqualFold(header.cty, "JWT") || strings.EqualFold(header.cty, "application/jwt") {
		return &auth.Error{Reason: auth.ReasonMalformedToken, Message: "token is a nested JWT (cty: JWT), which is not accepted"}
	}
	return nil
}

// signatureRejection turns an error of the key set into an *auth.Error.
func signatureRejection(err error) error {
	var (
		unknown   *unknownKeyError
		signature *signatureError
	)
	switch {
	case errors.As(err, &unknown):
		msg := fmt.Sprintf("token is signed with key ID %s, which is not in the issuer's JWKS", auth.Quote(unknown.kid))
		if unknown.kid == "" {
			msg = "token names no key ID (kid) and no key of the issuer's JWKS fits its algorithm"
		}
		if errors.Is(unknown.refetch, errRefetchLimited) {
			msg += "; the JWKS was refetched less than 10s ago, try again later"
		} else if unknown.refetch != nil {
			msg += "; refetching the JWKS failed"
		}
		return &auth.Error{Reason: auth.ReasonUnknownKey, Message: msg, Err: err}
	case errors.As(err, &signature):
		return &auth.Error{Reason: auth.ReasonInvalidSignature, Message: "token signature is invalid", Err: err}
	default:
		return &auth.Error{Reason: auth.ReasonInvalidSignature, Message: "token signature could not be verified", Err: err}
	}
}

// registered are the registered claims frontgate checks.
type registered struct {
	audience []string
	// expiry is zero when the token has no exp claim.
	expiry time.Time
	// notBefore and issuedAt are zero when absent.
	notBefore, issuedAt time.Time
}

// errClaimTypes refuses registered claims of the wrong JSON type.
var errClaimTypes = &auth.Error{Reason: auth.ReasonInvalidClaim, Message: "token has a registered claim of the wrong type (sub, aud, exp, iat and nbf must have their standard JSON types)"}

// registeredClaims decodes the registered claims with the types go-oidc
// (and so kube-apiserver) requires of an ID token: sub, nonce and at_hash
// strings, aud a string or an array of strings, exp and iat numbers
// (NumericDate, whole seconds), nbf a number or null. The distributed-claims
// map _claim_names must name only sources that _claim_sources defines.
// Claims are matched by their exact name. It decodes every claim it can
// and returns the first error, so that an explanation can go on.
func registeredClaims(c Claims) (registered, error) {
	var r registered
	var err error
	fail := func(e error) {
		if err == nil {
			err = e
		}
	}
	for _, name := range [...]string{"sub", "nonce", "at_hash"} {
		var s string
		if raw, present := c[name]; present && json.Unmarshal(raw, &s) != nil {
			fail(errClaimTypes)
		}
	}
	if raw, present := c["aud"]; present {
		var ok bool
		if r.audience, ok = stringOrArray(raw); !ok {
			fail(errClaimTypes)
		}
	}
	for _, d := range [...]struct {
		name     string
		to       *time.Time
		nullable bool
	}{{"exp", &r.expiry, false}, {"iat", &r.issuedAt, false}, {"nbf", &r.notBefore, true}} {
		raw, present := c[d.name]
		if !present || d.nullable && string(raw) == "null" {
			continue
		}
		var ok bool
		if *d.to, ok = numericDate(raw); !ok {
			fail(errClaimTypes)
		}
	}
	if e := distributedClaims(c); e != nil {
		fail(e)
	}
	return r, err
}

// numericDate decodes a NumericDate as go-oidc does: a JSON number (or a
// string holding one), truncated to whole seconds.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, false
	}
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0), true
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// distributedClaims checks that every source _claim_names refers to is
// defined in _claim_sources, as go-oidc does.
func distributedClaims(c Claims) error {
	rawNames, present := c["_claim_names"]
	rawSources, hasSources := c["_claim_sources"]
	if !present && !hasSources {
		return nil
	}
	var names map[string]string
	var sources map[string]struct {
		Endpoint    string `json:"endpoint"`
		AccessToken string `json:"access_token"`
	}
	if present && json.Unmarshal(rawNames, &names) != nil || hasSources && json.Unmarshal(rawSources, &sources) != nil {
		return errClaimTypes
	}
	for name, source := range names {
		if _, ok := sources[source]; source == "" || !ok {
			return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("token's _claim_names maps claim %s to source %s, which _claim_sources does not define", auth.Quote(name), auth.Quote(source))}
		}
	}
	return nil
}

// checkAudience refuses an audience without any of the accepted ones, as
// kube-apiserver's MatchAny audience policy does.
func (a *Authenticator) checkAudience(aud []string) error {
	if slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(a.audiences, s) }) {
		return nil
	}
	return &auth.Error{Reason: auth.ReasonInvalidAudience, Message: fmt.Sprintf("token audience %s does not include %s", auth.QuoteList(aud), a.audienceText)}
}

// checkExpiry refuses a token without expiry or past it.
func checkExpiry(r registered, now time.Time) error {
	switch {
	case r.expiry.IsZero():
		return &auth.Error{Reason: auth.ReasonMissingClaim, Message: "token has no expiry (exp) claim"}
	case r.expiry.Before(now):
		return &auth.Error{Reason: auth.ReasonTokenExpired, Message: "token expired at " + formatTime(r.expiry)}
	}
	return nil
}

// checkNotBefore refuses a token not valid yet, with [leeway].
func checkNotBefore(r registered, now time.Time) error {
	if !r.notBefore.IsZero() && r.notBefore.After(now.Add(leeway)) {
		return &auth.Error{Reason: auth.ReasonTokenNotYetValid, Message: "token is not valid before " + formatTime(r.notBefore)}
	}
	return nil
}

// checkIssuedAt refuses a token issued in the future, with [leeway].
func checkIssuedAt(r registered, now time.Time) error {
	if !r.issuedAt.IsZero() && r.issuedAt.After(now.Add(leeway)) {
		return &auth.Error{Reason: auth.ReasonTokenNotYetValid, Message: fmt.Sprintf("token was issued at %s, which is in the future; check the clocks of the issuer and of frontgate", formatTime(r.issuedAt))}
	}
	return nil
}

// stringOrArray decodes a claim that is a string or an array of strings; JSON
// null is an empty list.
func stringOrArray(raw json.RawMessage) ([]string, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if string(raw) == "null" {
			return nil, true
		}
		return []string{s}, true
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false
	}
	return list, true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
