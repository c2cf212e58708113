// Package tokencache remembers successful bearer-token authentications for a
// short time, as kube-apiserver does for 10 seconds, so that a client sending
// the same token on every request costs one signature verification per TTL.
//
// # What it trusts
//
// Only the wrapped [auth.TokenAuthenticator]: an identity is cached exactly
// as that authenticator returned it, and only when it returned success.
//
// # What it refuses
//
//   - To keep raw tokens: entries are keyed by the SHA-256 of the token, so a
//     memory dump of the cache reveals no credential.
//   - To cache failures or "not mine" answers: every such token goes to the
//     wrapped authenticator again, so a fixed clock or a newly rotated key
//     takes effect at once.
//   - To serve an identity past its credential: an entry lives for the TTL or
//     until Identity.Expires, whichever comes first, and an identity that has
//     already expired is not cached at all.
//   - To grow without bound: at most MaxEntries entries are kept; the least
//     recently used one is evicted first.
//
// The price of caching is that revoking a token at the issuer takes effect
// only after the TTL; keep it short.
//
// Concurrent misses for the same token share one call to the wrapped
// authenticator. Every caller receives its own copy of the identity, so
// callers may modify what they get.
package tokencache
