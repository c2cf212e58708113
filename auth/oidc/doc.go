// Package oidc authenticates OpenID Connect ID tokens the way kube-apiserver
// does with its legacy --oidc-* flags, so that a token accepted by frontgate
// yields the same username and groups kube-apiserver itself would derive.
//
// # What it trusts
//
//   - The issuer named by --oidc-issuer-url, reached over TLS verified against
//     the configured roots (the system roots when none are given). Its
//     discovery document must name exactly that issuer, and its jwks_uri is the
//     only source of verification keys. Plain http is accepted only for a
//     loopback issuer (a local demo or test provider).
//   - A token only after its signature verifies with one of those keys, using
//     an algorithm from --oidc-signing-algs (RS256 by default), and after the
//     standard checks of an ID token as go-oidc's verifier makes them: issuer,
//     the types of the registered claims, audience containing
//     --oidc-client-id, expiry and not-before (and issued-at not in the
//     future).
//
// # What it refuses
//
//   - Anything that is not a compact JWS with three parts: encrypted tokens
//     (JWE), JSON serialisations, nested JWTs (cty: JWT) and headers with
//     critical extensions (crit) are refused before any cryptography runs.
//   - The "none" algorithm, HMAC algorithms and every algorithm not listed in
//     --oidc-signing-algs, checked against the JOSE header first. Keys in the
//     JWKS are used only for their own key type and, when they say so, their
//     own algorithm and "sig" use; symmetric keys are ignored.
//   - Tokens from another issuer: their iss claim is compared, byte for byte
//     as kube-apiserver does (which, like go-oidc, takes "accounts.google.com"
//     for "https://accounts.google.com"), before anything else. Such tokens
//     get an error with [auth.ReasonInvalidIssuer], which callers treat as
//     "not mine".
//   - Tokens whose username claim is missing, empty or not a string; tokens
//     whose email_verified claim is present and not true when the username
//     claim is "email"; tokens missing a required claim or carrying another
//     value; claims of the wrong type.
//
// Every rejection is an [*auth.Error] with a precise Reason. Messages quote
// claim values when that helps to fix a problem, but never the token.
//
// # Network use
//
// [New] does no I/O. [Authenticator.Run] discovers the issuer and fetches its
// JWKS, retrying with exponential backoff while the issuer is unreachable, and
// then refreshes the JWKS periodically. On the request path the only network
// I/O is a JWKS refetch when a token names a key ID that is not known yet
// (key rotation); refetches are rate-limited and concurrent misses share one
// fetch, so a flood of forged key IDs cannot turn frontgate into a load
// generator against the issuer.
//
// # One parse per token
//
// go-oidc discovers the issuer; tokens are verified with go-jose directly
// rather than with go-oidc's IDTokenVerifier, which parses each token twice
// and decodes its claims twice more before a mapper sees them. Here a token
// is parsed once, its claims are decoded once, and the signature is checked
// before any claim is trusted: a cold verification costs little more than
// the signature itself (BENCHMARKS.md).
//
// # Verification and mapping
//
// Verification (everything above up to the claims) and the mapping of verified
// claims to an identity are separate: [New] maps with the --oidc-* rules,
// while [NewIssuer] takes a [ClaimMapper], which auth/authnconfig uses for
// the jwt entries of an AuthenticationConfiguration. Both verify alike.
//
// The reserved "system:" prefix is not checked here: [auth.RefuseReserved]
// applies that rule to every identity source alike.
package oidc
