// Package login is the client side of frontgate: the logic of `frontgate
// login`, a client-go exec credential plugin that gets an OpenID Connect ID
// token for the user and hands it to kubectl.
//
// # Flow
//
// [Login] takes the cache entry's lock, returns the cached ID token while it
// is valid for at least [Config.MinValidity], else refreshes it with the
// cached refresh token, and only when that fails (or there is none) runs an
// interactive grant: the authorization code grant with PKCE (S256) on a
// loopback redirect, or the device authorization grant (RFC 8628). Every ID
// token, fresh or refreshed, is verified with the issuer's keys (go-oidc:
// signature, iss, aud containing the client ID, exp; the nonce after an
// authorization code grant; the same sub after a refresh) before it is cached
// or returned. [ReadExecInfo] and [WriteExecCredential] speak
// client.authentication.k8s.io v1 and v1beta1.
//
// # What it trusts
//
//   - The issuer given in [Config.IssuerURL], over TLS verified with the
//     configured roots (plain http only for a loopback host), and the keys
//     its discovery document points to.
//   - The cache directory: it holds refresh tokens, so it is created 0700 and
//     every file in it 0600. Entries are named by a hash of issuer, client ID
//     and scopes, and an entry for another issuer or client is ignored.
//
// # What it refuses
//
//   - A callback on the loopback listener whose state does not match (it is
//     answered 400 and the login goes on waiting), and any other path.
//   - ID tokens that do not verify, and token responses without one.
//   - Secrets in output: the client secret is never printed, and neither is a
//     token except as the ExecCredential on stdout. Prompts go to
//     [Config.Prompt] (stderr), never to stdout, which carries only the
//     ExecCredential.
//
// Neither grant reads stdin, so both work when kubectl runs the plugin with
// spec.interactive false; the user still sees the prompts on stderr.
//
// # Concurrency
//
// kubectl may run the plugin several times at once. The cache entry's lock
// (flock on Unix; an O_EXCL lock file with stale detection elsewhere) is held
// from reading the cache to writing it, so one process logs in and the
// others wait for it and then find its token in the cache.
package login
