// Package authnconfig authenticates bearer tokens as kube-apiserver does with
// --authentication-config: it reads an AuthenticationConfiguration file
// (apiserver.config.k8s.io/v1 or v1beta1) and, for each of its jwt entries,
// verifies tokens with auth/oidc and maps their claims to an identity with
// the entry's claimMappings, claimValidationRules and userValidationRules.
//
// The file is decoded with k8s.io/apiserver's own types and strict codec,
// validated with k8s.io/apiserver's own validation (so messages name the
// same fields and read the same), and its CEL expressions are compiled once,
// by [Load], with k8s.io/apiserver's CEL environment for authentication. At
// run time each expression is evaluated against the same CEL values
// kube-apiserver builds, under kube-apiserver's per-expression cost limit;
// an expression that exceeds it fails the token, never the process.
//
// # What it trusts
//
//   - The file, which the operator controls, and nothing a client sends
//     except the token.
//   - Each issuer as auth/oidc trusts it: reached over TLS verified against
//     the entry's certificateAuthority (the system roots when it is empty),
//     its discovery document (read from discoveryURL when set) naming exactly
//     the issuer URL, and the keys of its jwks_uri. http is accepted only for
//     a loopback issuer, as in auth/oidc.
//   - A token only after auth/oidc has verified its signature (any algorithm
//     kube-apiserver supports: RS256/384/512, ES256/384/512, PS256/384/512),
//     issuer, expiry and not-before, and found one of the entry's audiences in
//     its aud claim (audienceMatchPolicy MatchAny).
//
// # What it refuses
//
//   - At load: everything kube-apiserver refuses (a claim without prefix, a
//     username expression using claims.email without claims.email_verified,
//     extra keys that are not lower-case domain-prefixed paths or that sit
//     under k8s.io or kubernetes.io, several audiences without MatchAny, CEL
//     that does not compile or returns the wrong type, unknown fields, ...);
//     and, beyond it, an anonymous section that enables anything (frontgate
//     never forwards anonymous requests), egressSelectorType (frontgate has
//     no egress selector), a configuration without jwt entries, and entries
//     that could both accept one token.
//   - Tokens of an issuer the file does not name, with
//     [auth.ReasonInvalidIssuer] ("not mine"), like auth/oidc.
//   - Tokens whose aud claim selects two entries of one issuer: ambiguous.
//   - Tokens failing a claimValidationRule or userValidationRule, tokens whose
//     mapping fails or yields an empty username, and tokens whose groups claim
//     is a distributed claim (kube-apiserver would fetch it; frontgate makes
//     no request on a token's behalf).
//
// # Several entries for one issuer
//
// kube-apiserver refuses two jwt entries with the same issuer URL, so one
// identity provider cannot serve several client IDs with different mappings
// (kubernetes/kubernetes#71162). frontgate accepts them when their audiences
// are disjoint and they reach the issuer the same way (same discoveryURL and
// certificateAuthority): one key set is kept per issuer, and a token is
// mapped by the one entry whose audiences its aud claim contains.
//
// Every rejection is an [*auth.Error]; messages name the field of the file
// that refused the token and may quote claim values, never the token.
package authnconfig
