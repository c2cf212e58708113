package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Authenticator establishes the identity of a request. It has the three
// outcomes of k8s.io/apiserver's request authenticators:
//
//   - (nil, false, nil): the request carries no credential of this kind;
//   - (nil, false, err): it carries one, and it is invalid;
//   - (id, true, nil): the request is authenticated as id.
//
// Implementations must not modify the request.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (*Identity, bool, error)
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(r *http.Request) (*Identity, bool, error)

// AuthenticateRequest calls f(r).
func (f AuthenticatorFunc) AuthenticateRequest(r *http.Request) (*Identity, bool, error) {
	return f(r)
}

// TokenAuthenticator establishes an identity from a bearer token, with the
// same three outcomes as [Authenticator]: a token it does not recognise (for
// example, issued by another issuer) is (nil, false, nil).
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (*Identity, bool, error)
}

// WebSocketBearerPrefix starts a Sec-WebSocket-Protocol entry that carries a
// base64url-encoded bearer token, as browsers cannot set Authorization.
const WebSocketBearerPrefix = "base64url.bearer.authorization.k8s.io."

// BearerToken returns the bearer token of r: from the Authorization header,
// or else from a WebSocket subprotocol entry, as kube-apiserver accepts it.
func BearerToken(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(token)
			return token, token != ""
		}
		return "", false
	}
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			p = strings.TrimSpace(p)
			if len(p) > len(WebSocketBearerPrefix) && strings.EqualFold(p[:len(WebSocketBearerPrefix)], WebSocketBearerPrefix) {
				raw, err := base64.RawURLEncoding.DecodeString(p[len(WebSocketBearerPrefix):])
				if err != nil || len(raw) == 0 {
					return "", false
				}
				return string(raw), true
			}
		}
	}
	return "", false
}

// Bearer turns a [TokenAuthenticator] into an [Authenticator] that reads the
// request's bearer token (see [BearerToken]).
func Bearer(t TokenAuthenticator) Authenticator {
	return AuthenticatorFunc(func(r *http.Request) (*Identity, bool, error) {
		token, ok := BearerToken(r)
		if !ok {
			return nil, false, nil
		}
		return t.AuthenticateToken(r.Context(), token)
	})
}

// Union tries each authenticator in order; the first success wins. When none
// succeeds, the errors of those that recognised but rejected the credential
// are returned joined, so a client learns why its credential failed.
func Union(authenticators ...Authenticator) Authenticator {
	return AuthenticatorFunc(func(r *http.Request) (*Identity, bool, error) {
		var errs []error
		for _, a := range authenticators {
			id, ok, err := a.AuthenticateRequest(r)
			if ok {
				return id, true, nil
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		switch len(errs) {
		case 0:
			return nil, false, nil
		case 1:
			return nil, false, errs[0]
		default:
			return nil, false, errors.Join(errs...)
		}
	})
}

// ReservedPrefix starts the usernames and groups that Kubernetes reserves for
// its own components, such as system:masters.
const ReservedPrefix = "system:"

// RefuseReserved wraps a so that an identity whose username or any group
// starts with "system:" (in any letter case) is rejected, unless that exact
// name is in allowed. It applies to every identity source alike.
func RefuseReserved(a Authenticator, allowed []string) Authenticator {
	allow := make(map[string]bool, len(allowed))
	for _, name := range allowed {
		allow[name] = true
	}
	reserved := func(name string) bool {
		return len(name) >= len(ReservedPrefix) && strings.EqualFold(name[:len(ReservedPrefix)], ReservedPrefix) && !allow[name]
	}
	return AuthenticatorFunc(func(r *http.Request) (*Identity, bool, error) {
		id, ok, err := a.AuthenticateRequest(r)
		if !ok {
			return id, ok, err
		}
		if reserved(id.Name) {
			return nil, false, &Error{Reason: ReasonReservedIdentity, Message: "username " + strconv.Quote(id.Name) + " is reserved for Kubernetes components; an operator can allow it with --allow-reserved-identity"}
		}
		for _, g := range id.Groups {
			if reserved(g) {
				return nil, false, &Error{Reason: ReasonReservedIdentity, Message: "group " + strconv.Quote(g) + " is reserved for Kubernetes components; an operator can allow it with --allow-reserved-identity"}
			}
		}
		return id, true, nil
	})
}
