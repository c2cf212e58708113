package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	var c claims
	if err := idToken.Claims(&c); err != nil {
		return nil, false, &auth.Error{Reason: auth.ReasonMalformedToken, Message: "the token's claims are not a JSON object", Err: err}
	}
	if !idToken.IssuedAt.IsZero() && idToken.IssuedAt.After(a.now().Add(leeway)) {
		return nil, false, &auth.Error{
			Reason:  auth.ReasonTokenNotYetValid,
			Message: fmt.Sprintf("token was issued at %s, which is in the future; check the clocks of the issuer and of frontgate", formatTime(idToken.IssuedAt)),
		}
	}
	id, err := a.identity(c)
	if err != nil {
		return nil, false, err
	}
	id.Expires = idToken.Expiry
	return id, true, nil
}

// precheck refuses, without any cryptography, what is not a compact JWS of
// the configured issuer with an acceptable header.
func (a *Authenticator) precheck(token string) error {
	malformed := func(msg string, err error) error {
		return &auth.Error{Reason: auth.ReasonMalformedToken, Message: msg, Err: err}
	}
	if len(token) > maxTokenBytes {
		return malformed(fmt.Sprintf("token is longer than %d bytes", maxTokenBytes), nil)
	}
	parts := strings.Split(token, ".")
	switch len(parts) {
	case 3:
	case 5:
		return malformed("token is an encrypted JWT (JWE); only signed ID tokens (JWS) are accepted", nil)
	default:
		return malformed("token is not a JWT: it must have three base64url parts separated by dots", nil)
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return malformed("token is not a JWT: its header is not base64url", err)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(rawHeader, &header); err != nil || header == nil {
		return malformed("token is not a JWT: its header is not a JSON object", err)
	}
	rawPayload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return malformed("token is not a JWT: its payload is not base64url", err)
	}
	var payload claims
	if err := json.Unmarshal(rawPayload, &payload); err != nil || payload == nil {
		return malformed("token is not a JWT: its payload is not a JSON object", err)
	}
	// The issuer comes first: a token of another issuer is "not mine",
	// whatever else is wrong with it.
	raw, ok := payload["iss"]
	if !ok {
		return &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token has no issuer (iss) claim; the configured issuer is %q", a.issuer)}
	}
	var iss string
	if err := json.Unmarshal(raw, &iss); err != nil {
		return malformed("token's issuer (iss) claim is not a string", err)
	}
	if iss != a.issuer {
		return &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: fmt.Sprintf("token issuer %s is not the configured issuer %q", quote(iss), a.issuer)}
	}

	var alg string
	if raw, ok := header["alg"]; !ok || json.Unmarshal(raw, &alg) != nil {
		return malformed("token header has no algorithm (alg)", nil)
	}
	if !slices.Contains(a.algs, alg) {
		return &auth.Error{Reason: auth.ReasonUnsupportedAlg, Message: fmt.Sprintf("token is signed with algorithm %s; accepted algorithms are %s (--oidc-signing-algs)", quote(alg), strings.Join(a.algs, ", "))}
	}
	if parts[2] == "" {
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
		msg := fmt.Sprintf("token is signed with key ID %s, which is not in the issuer's JWKS", quote(unknown.kid))
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
	case errors.As(err, &expired):
		if expired.Expiry.IsZero() {
			return &auth.Error{Reason: auth.ReasonMissingClaim, Message: "token has no expiry (exp) claim", Err: err}
		}
		return &auth.Error{Reason: auth.ReasonTokenExpired, Message: "token expired at " + formatTime(expired.Expiry), Err: err}
	}

	var c struct {
		Audience  json.RawMessage `json:"aud"`
		NotBefore *json.Number    `json:"nbf"`
	}
	if json.Unmarshal(result.payload, &c) != nil || !validStandardClaims(result.payload) {
		return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: "token has a registered claim of the wrong type (sub, aud, exp, iat and nbf must have their standard JSON types)", Err: err}
	}
	aud, _ := stringOrArray(c.Audience)
	if !slices.Contains(aud, a.clientID) {
		return &auth.Error{Reason: auth.ReasonInvalidAudience, Message: fmt.Sprintf("token audience %s does not include the client ID %q (--oidc-client-id)", quoteList(aud), a.clientID), Err: err}
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

// claims are the claims of a token, undecoded.
type claims map[string]json.RawMessage

// identity maps verified claims to an identity with kube-apiserver's rules.
func (a *Authenticator) identity(c claims) (*auth.Identity, error) {
	for _, name := range sortedKeys(a.requiredClaims) {
		want := a.requiredClaims[name]
		raw, ok := c[name]
		if !ok {
			return nil, &auth.Error{Reason: auth.ReasonMissingClaim, Message: fmt.Sprintf("token has no %q claim, which --oidc-required-claim requires to be %q", name, want)}
		}
		var got string
		if err := json.Unmarshal(raw, &got); err != nil {
			return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q is not a string, but --oidc-required-claim requires it to be %q", name, want)}
		}
		if got != want {
			return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q is %s, but --oidc-required-claim requires %q", name, quote(got), want)}
		}
	}

	raw, ok := c[a.usernameClaim]
	if !ok {
		return nil, &auth.Error{Reason: auth.ReasonMissingClaim, Message: fmt.Sprintf("token has no %q claim, which --oidc-username-claim names as the username", a.usernameClaim)}
	}
	var username string
	if err := json.Unmarshal(raw, &username); err != nil {
		return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (--oidc-username-claim) is not a string", a.usernameClaim)}
	}
	if username == "" {
		return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (--oidc-username-claim) is empty", a.usernameClaim)}
	}
	if a.usernameClaim == "email" {
		if raw, ok := c["email_verified"]; ok {
			var verified bool
			if err := json.Unmarshal(raw, &verified); err != nil {
				return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: "claim \"email_verified\" is not a boolean"}
			}
			if !verified {
				return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("email %s is not verified (email_verified is false)", quote(username))}
			}
		}
	}
	id := &auth.Identity{Name: a.usernamePrefix + username, Source: source}

	if a.groupsClaim != "" {
		if raw, ok := c[a.groupsClaim]; ok {
			groups, ok := stringOrArray(raw)
			if !ok {
				return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (--oidc-groups-claim) is not a string or an array of strings", a.groupsClaim)}
			}
			for _, g := range groups {
				if g != "" {
					id.Groups = append(id.Groups, a.groupsPrefix+g)
				}
			}
		}
	}

	if a.uidClaim != "" {
		raw, ok := c[a.uidClaim]
		if !ok {
			return nil, &auth.Error{Reason: auth.ReasonMissingClaim, Message: fmt.Sprintf("token has no %q claim, which is configured as the UID claim", a.uidClaim)}
		}
		if err := json.Unmarshal(raw, &id.UID); err != nil {
			return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (the UID claim) is not a string", a.uidClaim)}
		}
	}

	for _, key := range sortedKeys(a.extraClaims) {
		name := a.extraClaims[key]
		raw, ok := c[name]
		if !ok || string(raw) == "null" {
			continue
		}
		values, ok := stringOrArray(raw)
		if !ok {
			return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (mapped to extra %q) is not a string or an array of strings", name, key)}
		}
		if id.Extra == nil {
			id.Extra = make(map[string][]string, len(a.extraClaims))
		}
		id.Extra[key] = values
	}
	return id, nil
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

// quote quotes a value taken from a token for a message, shortened so that a
// hostile token cannot inflate logs.
func quote(s string) string { return strconv.Quote(truncate(s, 256)) }

func quoteList(list []string) string {
	quoted := make([]string, 0, len(list))
	for i, s := range list {
		if i == 8 {
			quoted = append(quoted, "…")
			break
		}
		quoted = append(quoted, quote(s))
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
