package oidc

import (
	"context"
	"encoding/json"
	"fmt"

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

// MapClaims implements [ClaimMapper] with kube-apiserver's rules for its
// --oidc-* flags.
func (a *legacyMapper) MapClaims(_ context.Context, t *Token) (*auth.Identity, error) {
	c := t.Claims
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
