package login

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// errTimeout is the cause of a Login's own deadline.
var errTimeout = fmt.Errorf("login timed out: %w", context.DeadlineExceeded)

// Login returns a valid ID token for c: from the cache while it stays valid
// for c.MinValidity, else refreshed with the cached refresh token, else from
// an interactive login with c.Grant. The token is verified before it is
// cached or returned. Every error is an [*Error].
func Login(ctx context.Context, c Config) (Credential, error) {
	if err := c.Validate(); err != nil {
		return Credential{}, newError(KindConfig, err, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout(), errTimeout)
	defer cancel()
	ctx = oidc.ClientContext(ctx, c.httpClient())

	store := newCache(&c)
	unlock, err := store.lock(ctx, c.timeout())
	if err != nil {
		return Credential{}, err
	}
	defer unlock()

	cached, err := store.load()
	if err != nil {
		return Credential{}, err
	}
	now := c.now()
	if cached != nil && cached.Expiry.After(now.Add(c.minValidity())) {
		return Credential{IDToken: cached.IDToken, Expiry: cached.Expiry}, nil
	}

	is, err := discover(ctx, &c)
	if err != nil {
		return Credential{}, err
	}
	var fresh *cacheEntry
	if cached != nil && cached.RefreshToken != "" {
		fresh, err = is.refresh(ctx, cached)
		if err != nil {
			if e := contextError(ctx, c.timeout(), ""); e != nil {
				return Credential{}, e
			}
			fmt.Fprintf(c.prompt(), "frontgate: cannot refresh the token (%s); logging in again\n", oneLine(err.Error()))
			fresh = nil
		}
	}
	if fresh == nil {
		switch c.grant() {
		case GrantDevice:
			fresh, err = is.device(ctx)
		default:
			fresh, err = is.authCode(ctx)
		}
		if err != nil {
			return Credential{}, err
		}
	}
	if err := store.save(fresh); err != nil {
		// The token is good; only the next run will have to log in again.
		fmt.Fprintf(c.prompt(), "frontgate: warning: %v\n", err)
	}
	return Credential{IDToken: fresh.IDToken, Expiry: fresh.Expiry}, nil
}

// Logout removes the cached tokens of c's issuer, client and scopes. It
// needs only c.IssuerURL, c.ClientID, c.Scopes and c.CacheDir, and does no
// network I/O: the refresh token is not revoked at the issuer.
func Logout(ctx context.Context, c Config) error {
	if c.CacheDir == "" || c.IssuerURL == "" || c.ClientID == "" {
		return newError(KindConfig, nil, "--issuer-url, --client-id and --cache-dir are needed to find the token to remove; or remove every token with --all")
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout(), errTimeout)
	defer cancel()
	store := newCache(&c)
	unlock, err := store.lock(ctx, c.timeout())
	if err != nil {
		return err
	}
	defer unlock()
	return store.remove()
}

// LogoutAll removes every cached token in dir and returns how many.
func LogoutAll(dir string) (int, error) {
	if dir == "" {
		return 0, newError(KindConfig, nil, "--cache-dir is required: no user cache directory was found")
	}
	return removeAll(dir)
}

// IsKind reports whether err is an [*Error] of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}
