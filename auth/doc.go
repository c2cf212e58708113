// Package auth defines who a request is: the [Identity] frontgate forwards to
// kube-apiserver, and the [Authenticator] interface that every identity source
// (OIDC tokens, client certificates, mappings) implements.
//
// Trust model: an Authenticator only ever reads the inbound request; it never
// trusts identity headers (X-Remote-*) sent by the caller. Whatever identity
// it returns passes through [RefuseReserved] and [Identity.Validate] before
// the proxy turns it into headers, so no source can mint a "system:" user or
// group unless the operator allowed that name explicitly.
package auth
