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

	"github.com/coreos/go-oidc/v3/oidc"

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
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*auth.Identity, bool, error) {
	if err := a.precheck(token); err != nil {
		return nil, false, err
	}
	state := a.state.Load()
	if state == nil {
		a.mu.Lock()
		lastErr := a.lastErr
		a.mu.Unlock()
		return nil, false, &auth.Error{
			Reason:  auth.ReasonIssuerUnavailable,
			Message: fmt.Sprintf("the OIDC issuer %q has not been reached yet; try again shortly", a.issuer),
			Err:     lastErr,
		}
	}

	result := &sigResult{}
	idToken, err := state.verifier.Verify(context.WithValue(ctx, sigResultKey{}, result), token)
	if err != nil {
		return nil, false, a.classify(err, result)
	}
	if !a.audienceMatches(idToken.Audience) {
		return nil, false, a.audienceError(idToken.Audience, nil)
	}
	var c Claims
	if err := idToken.Claims(&c); err != nil {
		return nil, false, &auth.Error{Reason: auth.ReasonMalformedToken, Message: "the token's claims are not a JSON object", Err: err}
	}
	if !idToken.IssuedAt.IsZero() && idToken.IssuedAt.After(a.now().Add(leeway)) {
		return nil, false, &auth.Error{
			Reason:  auth.ReasonTokenNotYetValid,
			Message: fmt.Sprintf("token was issued at %s, which is in the future; check the clocks of the issuer and of frontgate", formatTime(idToken.IssuedAt)),
		}
	}
	id, err := a.mapper.MapClaims(ctx, &Token{Issuer: a.issuer, Audience: idToken.Audience, Expiry: idToken.Expiry, Claims: c})
	if err != nil {
		return nil, false, err
	}
	if id == nil {
		return nil, false, &auth.Error{Reason: auth.ReasonInvalidIdentity, Message: "the claim mapper returned no identity"}
	}
	id.Expires = idToken.Expiry
	return id, true, nil
}

// audienceMatches reports whether aud contains one of the accepted audiences.
func (a *Authenticator) audienceMatches(aud []string) bool {
	return slices.ContainsFunc(aud, func(s string) bool { return slices.Contains(a.audiences, s) })
}

func (a *Authenticator) audienceError(aud []string, err error) error {
	return &auth.Error{Reason: auth.ReasonInvalidAudience, Message: fmt.Sprintf("token audience %s does not include %s", auth.QuoteList(aud), a.audienceText), Err: err}
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

// precheck refuses, without any cryptography, what is not a compact JWS of
// the configured issuer with an acceptable header.
func (a *Authenticator) precheck(token string) error {
	malformed := func(msg string, err error) error {
		return &auth.Error{Reason: auth.ReasonMalformedToken, Message: msg, Err: err}
	}
	header, payload, err := parseUnverified(token)
	if err != nil {
		return err
	}
	// The issuer comes first: a token of another issuer is "not mine",
	// whatever else is wrong with it.
	iss, err := issuerOf(payload)
	if err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) && ae.Reason == auth.ReasonInvalidIssuer {
			return &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token has no issuer (iss) claim; the configured issuer is %q", a.issuer)}
		}
		return err
	}
	if iss != a.issuer {
		return &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token issuer %s is not the configured issuer %q", auth.Quote(iss), a.issuer)}
	}
	var alg string
	if raw, ok := header["alg"]; !ok || json.Unmarshal(raw, &alg) != nil {
		return malformed("token header has no algorithm (alg)", nil)
	}
	if !slices.Contains(a.algs, alg) {
		msg := fmt.Sprintf("token is signed with algorithm %s; accepted algorithms are %s", auth.Quote(alg), strings.Join(a.algs, ", "))
		if a.algsHint != "" {
			msg += " (" + a.algsHint + ")"
		}
		return &auth.Error{Reason: auth.ReasonUnsupportedAlg, Message: msg}
	}
	if strings.HasSuffix(token, ".") { // parseUnverified found three parts
		return &auth.Error{Reason: auth.ReasonInvalidSignature, Message: "token has an empty signature"}
	}
	if _, ok := header["crit"]; ok {
		return &auth.Error{Reason: auth.ReasonUnsupportedAlg, Message: "token header lists critical extensions (crit), which are not supported"}
	}
	if raw, ok := header["cty"]; ok {
		var cty string
		_ = json.Unmarshal(raw, &cty)
		if strings.EqualFold(cty, "JWT") || strings.EqualFold(cty, "application/jwt") {
			return malformed("token is a nested JWT (cty: JWT), which is not accepted", nil)
		}
	}
	return nil
}

// classify turns an error of the go-oidc verifier into an *auth.Error. The
// key set's own error is used when there is one; otherwise the signature was
// verified and the reason is read from the verified claims, in the order
// go-oidc checks them.
func (a *Authenticator) classify(err error, result *sigResult) error {
	var (
		unknown   *unknownKeyError
		signature *signatureError
		malformed *malformedError
		expired   *oidc.TokenExpiredError
	)
	switch {
	case errors.As(result.err, &unknown):
		msg := fmt.Sprintf("token is signed with key ID %s, which is not in the issuer's JWKS", auth.Quote(unknown.kid))
		if unknown.kid == "" {
			msg = "token names no key ID (kid) and no key of the issuer's JWKS fits its algorithm"
		}
		if errors.Is(unknown.refetch, errRefetchLimited) {
			msg += "; the JWKS was refetched less than 10s ago, try again later"
		} else if unknown.refetch != nil {
			msg += "; refetching the JWKS failed"
		}
		return &auth.Error{Reason: auth.ReasonUnknownKey, Message: msg, Err: result.err}
	case errors.As(result.err, &signature):
		return &auth.Error{Reason: auth.ReasonInvalidSignature, Message: "token signature is invalid", Err: result.err}
	case errors.As(result.err, &malformed):
		return &auth.Error{Reason: auth.ReasonMalformedToken, Message: "token is not a well-formed signed JWT", Err: result.err}
	case result.err != nil:
		return &auth.Error{Reason: auth.ReasonInvalidSignature, Message: "token signature could not be verified", Err: result.err}
	case result.payload == nil:
		// go-oidc refused the token before asking the key set.
		return &auth.Error{Reason: auth.ReasonMalformedToken, Message: "token is not a well-formed signed JWT", Err: err}
	}

	// The signature verified. go-oidc checks the audience before the
	// validity period; so does this classification, as the audience is
	// checked after go-oidc's Verify.
	var c struct {
		Audience  json.RawMessage `json:"aud"`
		NotBefore *json.Number    `json:"nbf"`
	}
	if json.Unmarshal(result.payload, &c) != nil || !validStandardClaims(result.payload) {
		return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: "token has a registered claim of the wrong type (sub, aud, exp, iat and nbf must have their standard JSON types)", Err: err}
	}
	aud, _ := stringOrArray(c.Audience)
	if !a.audienceMatches(aud) {
		return a.audienceError(aud, err)
	}
	if errors.As(err, &expired) {
		if expired.Expiry.IsZero() {
			return &auth.Error{Reason: auth.ReasonMissingClaim, Message: "token has no expiry (exp) claim", Err: err}
		}
		return &auth.Error{Reason: auth.ReasonTokenExpired, Message: "token expired at " + formatTime(expired.Expiry), Err: err}
	}
	if c.NotBefore != nil {
		if f, ferr := c.NotBefore.Float64(); ferr == nil {
			if nbf := time.Unix(int64(f), 0); nbf.After(a.now().Add(leeway)) {
				return &auth.Error{Reason: auth.ReasonTokenNotYetValid, Message: "token is not valid before " + formatTime(nbf), Err: err}
			}
		}
	}
	return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: "token claims are invalid", Err: err}
}

// validStandardClaims reports whether the registered claims go-oidc decodes
// have the types it expects.
func validStandardClaims(payload []byte) bool {
	var c struct {
		Subject   *string          `json:"sub"`
		Audience  *json.RawMessage `json:"aud"`
		Expiry    *json.Number     `json:"exp"`
		IssuedAt  *json.Number     `json:"iat"`
		NotBefore *json.Number     `json:"nbf"`
		Nonce     *string          `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return false
	}
	if c.Audience != nil {
		if _, ok := stringOrArray(*c.Audience); !ok {
			return false
		}
	}
	return true
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
