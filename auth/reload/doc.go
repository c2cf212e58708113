// Package reload re-applies configuration when the files behind it change,
// and swaps token authenticators without dropping requests.
//
// A [Watcher] hashes the content of its files on a fixed interval, so it
// sees an edit in place and the atomic symlink swap with which Kubernetes
// updates a mounted Secret or ConfigMap alike. On a change it calls its
// apply function, which must validate the new configuration completely
// before it replaces the old: an error keeps the current configuration,
// is logged, and counts as a failed reload in the metrics.
//
// [Tokens] holds the token authenticator currently in use; a replacement
// runs (for example, discovers its issuers) and must become ready before it
// takes over, and the old one stops only then.
package reload
