package login

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// issuer is the discovered OpenID provider and the OAuth client to use
// with it.
type issuer struct {
	cfg      *Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
}

// discover fetches the issuer's discovery document. ctx must carry the HTTP
// client (oidc.ClientContext) and outlive the issuer: the key set fetches
// keys with it.
func discover(ctx context.Context, c *Config) (*issuer, error) {
	p, err := oidc.NewProvider(ctx, c.IssuerURL)
	if err != nil {
		if e := contextError(ctx, c.timeout(), ""); e != nil {
			return nil, e
		}
		if isTransportError(err) {
			return nil, unreachable(c.IssuerURL, err)
		}
		return nil, newError(KindIssuer, err, "%s is not an OpenID issuer (%s): check --issuer-url, it must be exactly the iss claim of the tokens", c.IssuerURL, describe(err))
	}
	var meta struct {
		ScopesSupported  []string `json:"scopes_supported"`
		TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	_ = p.Claims(&meta) // optional metadata; without it offline_access is not requested by default
	endpoint := p.Endpoint()
	endpoint.AuthStyle = authStyle(c.ClientSecret, meta.TokenAuthMethods)
	return &issuer{
		cfg:      c,
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: c.ClientID, Now: c.now}),
		oauth: &oauth2.Config{
			ClientID:     c.ClientID,
			ClientSecret: c.ClientSecret,
			Endpoint:     endpoint,
			Scopes:       c.effectiveScopes(meta.ScopesSupported),
		},
	}, nil
}

// authStyle chooses how the client authenticates at the token endpoint, so
// that x/oauth2 does not guess (its guessing sends every failing request
// twice): a public client sends its client_id in the body; a confidential
// one uses HTTP Basic (client_secret_basic, the default of RFC 8414) unless
// the issuer lists only client_secret_post.
func authStyle(secret string, supported []string) oauth2.AuthStyle {
	if secret == "" {
		return oauth2.AuthStyleInParams
	}
	if len(supported) > 0 && !slices.Contains(supported, "client_secret_basic") && slices.Contains(supported, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// verified checks the ID token in tok with the issuer's keys and returns the
// cache entry for it. nonce, when not empty, must match the token's.
func (is *issuer) verified(ctx context.Context, tok *oauth2.Token, nonce string) (*cacheEntry, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, newError(KindIssuer, nil, "%s answered without an ID token: make sure client %q may use the openid scope", is.cfg.IssuerURL, is.cfg.ClientID)
	}
	idt, err := is.verifier.Verify(ctx, raw)
	if err != nil {
		if e := contextError(ctx, is.cfg.timeout(), ""); e != nil {
			return nil, e
		}
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return nil, newError(KindIssuer, err, "%s issued an ID token that has already expired (%s): check this machine's clock", is.cfg.IssuerURL, expired.Expiry.Format(time.RFC3339))
		}
		if isTransportError(err) {
			return nil, unreachable(is.cfg.IssuerURL+" (its keys)", err)
		}
		return nil, newError(KindIssuer, err, "the ID token from %s does not verify (%s): check --issuer-url and --client-id", is.cfg.IssuerURL, describe(err))
	}
	if nonce != "" && idt.Nonce != nonce {
		return nil, newError(KindIssuer, nil, "the ID token from %s does not carry the nonce of this login: run the command again; if it persists the issuer or something between is misbehaving", is.cfg.IssuerURL)
	}
	return &cacheEntry{IDToken: raw, Expiry: idt.Expiry, Subject: idt.Subject, RefreshToken: tok.RefreshToken}, nil
}

// refresh exchanges the refresh token of old for new tokens. The refreshed
// ID token must be for the same subject.
func (is *issuer) refresh(ctx context.Context, old *cacheEntry) (*cacheEntry, error) {
	ts := is.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken})
	tok, err := ts.Token()
	if err != nil {
		return nil, fmt.Errorf("the issuer refused the refresh token (%s)", describe(err))
	}
	e, err := is.verified(ctx, tok, "")
	if err != nil {
		return nil, err
	}
	if old.Subject != "" && e.Subject != old.Subject {
		return nil, fmt.Errorf("the refreshed ID token is for another subject")
	}
	if e.RefreshToken == "" { // the issuer does not rotate refresh tokens
		e.RefreshToken = old.RefreshToken
	}
	return e, nil
}

// tokenError turns an error from the token endpoint into an Error.
func (is *issuer) tokenError(ctx context.Context, err error, hint string) *Error {
	if e := contextError(ctx, is.cfg.timeout(), hint); e != nil {
		return e
	}
	switch oauthErrorCode(err) {
	case "access_denied":
		return newError(KindCancelled, err, "the login was denied at %s (%s): run the command again and approve it", is.cfg.IssuerURL, describe(err))
	case "expired_token":
		return newError(KindTimeout, err, "the code expired before the login was completed (%s): run the command again and finish sooner", describe(err))
	case "invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope", "invalid_request":
		return newError(KindClientMisconfigured, err, "%s refused client %q (%s): check --client-id and --client-secret, and that the issuer allows this client the %s grant", is.cfg.IssuerURL, is.cfg.ClientID, describe(err), is.cfg.grant())
	}
	if isTransportError(err) {
		return unreachable(is.cfg.IssuerURL, err)
	}
	return newError(KindIssuer, err, "%s did not issue a token (%s): run the command again; if it persists, ask the issuer's administrator", is.cfg.IssuerURL, describe(err))
}
