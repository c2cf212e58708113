package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/frontgate/frontgate/auth"
)

// legacyMapper maps claims as kube-apiserver's legacy --oidc-* flags do, with
// frontgate's UID and extra claims.
type legacyMapper struct {
	usernameClaim  string
	usernamePrefix string
	groupsClaim    string
	groupsPrefix   string
	uidClaim       string
	extraClaims    map[string]string
	requiredClaims map[string]string
}

// legacyMappedBy names the legacy flags in explanations.
const legacyMappedBy = "--oidc-* flags"

// MapClaims implements [ClaimMapper] with kube-apiserver's rules for its
// --oidc-* flags. Each rule is one method, which ExplainClaims reuses.
func (a *legacyMapper) MapClaims(_ context.Context, t *Token) (*auth.Identity, error) {
	c := t.Claims
	for _, name := range sortedKeys(a.requiredClaims) {
		if err := a.requiredClaim(c, name); err != nil {
			return nil, err
		}
	}
	username, err := a.username(c)
	if err != nil {
		return nil, err
	}
	if err := a.emailVerified(c, username); err != nil {
		return nil, err
	}
	id := &auth.Identity{Name: a.usernamePrefix + username, Source: source}
	if id.Groups, err = a.groups(c); err != nil {
		return nil, err
	}
	if id.UID, err = a.uid(c); err != nil {
		return nil, err
	}
	for _, key := range sortedKeys(a.extraClaims) {
		values, err := a.extra(c, key)
		if err != nil {
			return nil, err
		}
		if values == nil {
			continue
		}
		if id.Extra == nil {
			id.Extra = make(map[string][]string, len(a.extraClaims))
		}
		id.Extra[key] = values
	}
	return id, nil
}

// ExplainClaims implements [ClaimExplainer]: every rule of MapClaims, each
// evaluated even when an earlier one failed.
func (a *legacyMapper) ExplainClaims(_ context.Context, t *Token) (string, []Check) {
	c := t.Claims
	var checks []Check
	add := func(rule, requirement string, err error, passed string) {
		checks = append(checks, checkOf(rule, requirement, err, passed))
	}
	for _, name := range sortedKeys(a.requiredClaims) {
		add("--oidc-required-claim", name+"="+a.requiredClaims[name], a.requiredClaim(c, name), "")
	}
	username, err := a.username(c)
	add("--oidc-username-claim", a.usernameClaim, err, fmt.Sprintf("username %s (prefix %s)", auth.Quote(a.usernamePrefix+username), strconv.Quote(a.usernamePrefix)))
	if a.usernameClaim == "email" {
		const rule, requirement = "email_verified", "true when present, as the username claim is email"
		if err != nil {
			checks = append(checks, Check{Rule: rule, Requirement: requirement, Outcome: CheckSkipped, Message: "the token has no usable email claim"})
		} else {
			passed := "email_verified is true"
			if _, ok := c["email_verified"]; !ok {
				passed = "email_verified is absent"
			}
			add(rule, requirement, a.emailVerified(c, username), passed)
		}
	}
	if a.groupsClaim != "" {
		groups, err := a.groups(c)
		add("--oidc-groups-claim", a.groupsClaim, err, count(len(groups), "group"))
	}
	if a.uidClaim != "" {
		_, err := a.uid(c)
		add("--oidc-uid-claim", a.uidClaim, err, "")
	}
	for _, key := range sortedKeys(a.extraClaims) {
		values, err := a.extra(c, key)
		passed := count(len(values), "value")
		if values == nil {
			passed = "claim absent: no attribute"
		}
		add("--oidc-extra-claim", key+"="+a.extraClaims[key], err, passed)
	}
	return legacyMappedBy, checks
}

// requiredClaim applies --oidc-required-claim name=value.
func (a *legacyMapper) requiredClaim(c Claims, name string) error {
	want := a.requiredClaims[name]
	raw, ok := c[name]
	if !ok {
		return &auth.Error{Reason: auth.ReasonMissingClaim, Message: fmt.Sprintf("token has no %q claim, which --oidc-required-claim requires to be %q", name, want)}
	}
	var got string
	if err := json.Unmarshal(raw, &got); err != nil {
		return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q is not a string, but --oidc-required-claim requires it to be %q", name, want)}
	}
	if got != want {
		return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q is %s, but --oidc-required-claim requires %q", name, auth.Quote(got), want)}
	}
	return nil
}

// username returns the username claim, without prefix.
func (a *legacyMapper) username(c Claims) (string, error) {
	raw, ok := c[a.usernameClaim]
	if !ok {
		return "", &auth.Error{Reason: auth.ReasonMissingClaim, Message: fmt.Sprintf("token has no %q claim, which --oidc-username-claim names as the username", a.usernameClaim)}
	}
	var username string
	if err := json.Unmarshal(raw, &username); err != nil {
		return "", &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (--oidc-username-claim) is not a string", a.usernameClaim)}
	}
	if username == "" {
		return "", &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (--oidc-username-claim) is empty", a.usernameClaim)}
	}
	return username, nil
}

// emailVerified requires email_verified to be true, when present, if the
// username claim is email.
func (a *legacyMapper) emailVerified(c Claims, username string) error {
	if a.usernameClaim != "email" {
		return nil
	}
	raw, ok := c["email_verified"]
	if !ok {
		return nil
	}
	var verified bool
	if err := json.Unmarshal(raw, &verified); err != nil {
		return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: "claim \"email_verified\" is not a boolean"}
	}
	if !verified {
		return &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("email %s is not verified (email_verified is false)", auth.Quote(username))}
	}
	return nil
}

// groups returns the prefixed groups; none without a groups claim.
func (a *legacyMapper) groups(c Claims) ([]string, error) {
	if a.groupsClaim == "" {
		return nil, nil
	}
	raw, ok := c[a.groupsClaim]
	if !ok {
		return nil, nil
	}
	values, ok := stringOrArray(raw)
	if !ok {
		return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (--oidc-groups-claim) is not a string or an array of strings", a.groupsClaim)}
	}
	var groups []string
	for _, g := range values {
		if g != "" {
			groups = append(groups, a.groupsPrefix+g)
		}
	}
	return groups, nil
}

// uid returns the UID claim; "" when none is configured.
func (a *legacyMapper) uid(c Claims) (string, error) {
	if a.uidClaim == "" {
		return "", nil
	}
	raw, ok := c[a.uidClaim]
	if !ok {
		return "", &auth.Error{Reason: auth.ReasonMissingClaim, Message: fmt.Sprintf("token has no %q claim, which is configured as the UID claim", a.uidClaim)}
	}
	var uid string
	if err := json.Unmarshal(raw, &uid); err != nil {
		return "", &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (the UID claim) is not a string", a.uidClaim)}
	}
	return uid, nil
}

// extra returns the values of the extra attribute key; nil when its claim is
// missing or null.
func (a *legacyMapper) extra(c Claims, key string) ([]string, error) {
	name := a.extraClaims[key]
	raw, ok := c[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	values, ok := stringOrArray(raw)
	if !ok {
		return nil, &auth.Error{Reason: auth.ReasonInvalidClaim, Message: fmt.Sprintf("claim %q (mapped to extra %q) is not a string or an array of strings", name, key)}
	}
	if values == nil {
		values = []string{}
	}
	return values, nil
}
