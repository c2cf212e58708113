package proxy

import (
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strings"

	"github.com/frontgate/frontgate/auth"
)

// HeaderNames are the request headers kube-apiserver reads an identity from,
// as set by its --requestheader-*-headers flags. frontgate writes the first
// name of each list and deletes every name of every list from inbound requests.
type HeaderNames struct {
	Username    []string
	Group       []string
	UID         []string
	ExtraPrefix []string
}

// DefaultHeaderNames returns the names kubeadm configures, plus X-Remote-Uid.
func DefaultHeaderNames() HeaderNames {
	return HeaderNames{
		Username:    []string{"X-Remote-User"},
		Group:       []string{"X-Remote-Group"},
		UID:         []string{"X-Remote-Uid"},
		ExtraPrefix: []string{"X-Remote-Extra-"},
	}
}

// Validate reports names that cannot work: a missing username, group or
// extra prefix header, or a name that is not a valid header field name.
func (n HeaderNames) Validate() error {
	for _, list := range []struct {
		flag     string
		names    []string
		required bool
	}{
		{"--requestheader-username-headers", n.Username, true},
		{"--requestheader-group-headers", n.Group, true},
		{"--requestheader-uid-headers", n.UID, false},
		{"--requestheader-extra-headers-prefix", n.ExtraPrefix, true},
	} {
		if list.required && len(list.names) == 0 {
			return fmt.Errorf("%s is empty: kube-apiserver would ignore that part of the identity; set it to the value kube-apiserver uses", list.flag)
		}
		for _, name := range list.names {
			if !validHeaderName(name) {
				return fmt.Errorf("%s: %q is not a valid HTTP header name", list.flag, name)
			}
		}
	}
	return nil
}

// normalizedName folds a header name for comparison: lower case, with
// underscores read as hyphens (some front ends translate one to the other).
func normalizedName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// Sanitize deletes from h every credential and identity header a client may
// have sent: Authorization and credentialHeaders, every configured username,
// group and uid header and kubeadm's X-Remote-* defaults
// and every header under an extra prefix (in any letter case, with
// underscores or hyphens), and every bearer-token entry of
// Sec-WebSocket-Protocol. Impersonate-* headers are kept: kube-apiserver
// authorizes them against the forwarded identity.
func Sanitize(h http.Header, names HeaderNames, credentialHeaders ...string) {
	newIdentityMatcher(names, credentialHeaders...).sanitize(h)
}

// identityMatcher recognises credential and identity header names.
type identityMatcher struct {
	exact    map[string]bool
	prefixes []string
}

// newIdentityMatcher matches the configured names and, always, the names of
// [DefaultHeaderNames]: a cluster whose kube-apiserver reads X-Remote-Uid
// while frontgate is configured without a uid header must still never see
// a client's X-Remote-Uid.
func newIdentityMatcher(names HeaderNames, credentialHeaders ...string) identityMatcher {
	m := identityMatcher{exact: map[string]bool{"authorization": true}}
	defaults := DefaultHeaderNames()
	for _, list := range [][]string{credentialHeaders, names.Username, names.Group, names.UID, defaults.Username, defaults.Group, defaults.UID} {
		for _, name := range list {
			m.exact[normalizedName(name)] = true
		}
	}
	for _, prefix := range append(slices.Clone(names.ExtraPrefix), defaults.ExtraPrefix...) {
		if p := normalizedName(prefix); !slices.Contains(m.prefixes, p) {
			m.prefixes = append(m.prefixes, p)
		}
	}
	return m
}

// matches reports whether key names a credential or identity header.
func (m identityMatcher) matches(key string) bool {
	norm := normalizedName(key)
	if m.exact[norm] {
		return true
	}
	for _, prefix := range m.prefixes {
		if strings.HasPrefix(norm, prefix) {
			return true
		}
	}
	return false
}

func (m identityMatcher) sanitize(h http.Header) {
	for key := range h {
		if m.matches(key) {
			delete(h, key)
		}
	}
	stripBearerSubprotocols(h)
}

// stripBearerSubprotocols removes bearer-token entries from every
// Sec-WebSocket-Protocol line, under its name in any letter case (lines of
// names that differ in case only are merged on the way to kube-apiserver),
// and keeps the other subprotocols in order.
func stripBearerSubprotocols(h http.Header) {
	for key, lines := range h {
		if !strings.EqualFold(key, "Sec-Websocket-Protocol") {
			continue
		}
		var kept []string
		for _, line := range lines {
			for _, p := range strings.Split(line, ",") {
				p = strings.TrimSpace(p)
				if p == "" || (len(p) >= len(auth.WebSocketBearerPrefix) && strings.EqualFold(p[:len(auth.WebSocketBearerPrefix)], auth.WebSocketBearerPrefix)) {
					continue
				}
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			delete(h, key)
			continue
		}
		h[key] = []string{strings.Join(kept, ", ")}
	}
}

// Limits bound what one identity may put into request headers.
type Limits struct {
	// MaxGroups is the largest number of groups; 0 means no limit.
	MaxGroups int
	// MaxHeaderBytes is the largest total size of the identity header lines
	// (name, value and separators); 0 means no limit.
	MaxHeaderBytes int
}

// DefaultLimits fit under the header limits of common load balancers.
func DefaultLimits() Limits { return Limits{MaxGroups: 100, MaxHeaderBytes: 8 << 10} }

// LimitError reports an identity too large to forward. The proxy answers it
// with 431 rather than forwarding a truncated identity.
type LimitError struct{ Message string }

// Error returns the message.
func (e *LimitError) Error() string { return e.Message }

// IdentityHeaders encodes id as the header lines kube-apiserver decodes: the
// username, the uid when known, one line per group and one line per extra
// value, extra keys escaped as client-go's transport.SetAuthProxyHeaders
// escapes them. It fails when a value could forge or split a header or when
// the identity exceeds limits; nothing is forwarded then.
func IdentityHeaders(id *auth.Identity, names HeaderNames, limits Limits) (http.Header, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if limits.MaxGroups > 0 && len(id.Groups) > limits.MaxGroups {
		return nil, &LimitError{Message: fmt.Sprintf("the identity has %d groups, more than the limit of %d (--max-groups); narrow the groups claim or raise the limit", len(id.Groups), limits.MaxGroups)}
	}
	h := make(http.Header, 3+len(id.Extra))
	h[textproto.CanonicalMIMEHeaderKey(names.Username[0])] = []string{id.Name}
	if id.UID != "" && len(names.UID) > 0 {
		h[textproto.CanonicalMIMEHeaderKey(names.UID[0])] = []string{id.UID}
	}
	if len(id.Groups) > 0 {
		groups := make([]string, 0, len(id.Groups))
		for _, g := range id.Groups {
			if g != "" {
				groups = append(groups, g)
			}
		}
		if len(groups) > 0 {
			h[textproto.CanonicalMIMEHeaderKey(names.Group[0])] = groups
		}
	}
	for key, values := range id.Extra {
		name := textproto.CanonicalMIMEHeaderKey(names.ExtraPrefix[0] + EscapeExtraKey(key))
		h[name] = append(h[name], values...)
	}
	if limits.MaxHeaderBytes > 0 {
		if size := headerBytes(h); size > limits.MaxHeaderBytes {
			return nil, &LimitError{Message: fmt.Sprintf("the identity needs %d bytes of request headers, more than the limit of %d (--max-identity-header-bytes); narrow the groups or extra claims or raise the limit", size, limits.MaxHeaderBytes)}
		}
	}
	return h, nil
}

// headerBytes is the size of h on the wire in HTTP/1.1: "Name: value\r\n".
func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// EscapeExtraKey percent-encodes every byte of key that is not an RFC 7230
// token character, and '%' itself, exactly as client-go's
// transport.SetAuthProxyHeaders does. kube-apiserver lower-cases the header
// suffix and then percent-decodes it.
func EscapeExtraKey(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '%' || !isTokenByte(c) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isTokenByte reports whether c is an RFC 7230 tchar.
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHeaderName reports whether name is a non-empty RFC 7230 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenByte(name[i]) {
			return false
		}
	}
	return true
}
