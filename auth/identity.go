package auth

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Identity is an authenticated user as kube-apiserver will see it: the four
// fields of k8s.io/apiserver's user.Info, plus where it came from.
type Identity struct {
	// Name is the username; never empty for an authenticated identity.
	Name string
	// UID is a stable unique identifier; optional.
	UID string
	// Groups the user belongs to, in order; kube-apiserver adds
	// system:authenticated itself.
	Groups []string
	// Extra holds additional attributes, keyed by lower-case names such as
	// "example.com/team". Empty values are kept.
	Extra map[string][]string

	// Source names the authenticator that established the identity, for logs
	// and metrics only (for example "oidc"). The proxy never branches on it.
	Source string
	// Expires is when the credential behind the identity stops being valid;
	// zero when unknown. Caches never keep an identity beyond it.
	Expires time.Time
}

// Validate reports whether every value of the identity can be forwarded
// safely: a non-empty username, and no value with invalid UTF-8 or a control
// character (CR, LF, NUL and the rest of C0 and DEL), which could split or
// forge headers. The username, uid, groups and extra values must also not
// begin or end with a space or tab: HTTP/1.1 drops that whitespace on the
// wire (Go's client trims header values when it writes them, kube-apiserver's
// server when it reads them), so " system:masters" would reach
// kube-apiserver as system:masters on the upgrade path, past the reserved-name
// check. Extra keys are percent-escaped, so their whitespace survives.
func (id *Identity) Validate() error {
	if id.Name == "" {
		return &Error{Reason: ReasonInvalidIdentity, Message: "the identity has an empty username"}
	}
	if err := checkValue("username", id.Name, true); err != nil {
		return err
	}
	if err := checkValue("uid", id.UID, true); err != nil {
		return err
	}
	for _, g := range id.Groups {
		if err := checkValue("group", g, true); err != nil {
			return err
		}
	}
	for k, vs := range id.Extra {
		if k == "" {
			return &Error{Reason: ReasonInvalidIdentity, Message: "the identity has an extra attribute with an empty key"}
		}
		if err := checkValue("extra key", k, false); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkValue(fmt.Sprintf("extra %q value", k), v, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkValue refuses values that are not safe inside an HTTP header and,
// with verbatim, values that a header cannot carry unchanged: those that
// begin or end with a space or tab.
func checkValue(what, v string, verbatim bool) error {
	if !utf8.ValidString(v) {
		return &Error{Reason: ReasonInvalidIdentity, Message: fmt.Sprintf("the identity's %s is not valid UTF-8", what)}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return &Error{Reason: ReasonInvalidIdentity, Message: fmt.Sprintf("the identity's %s contains the control character %#02x", what, c)}
		}
	}
	if verbatim && v != "" && (isBlank(v[0]) || isBlank(v[len(v)-1])) {
		return &Error{Reason: ReasonInvalidIdentity, Message: fmt.Sprintf("the identity's %s %s begins or ends with whitespace, which HTTP would drop on the way to kube-apiserver", what, Quote(v))}
	}
	return nil
}

// isBlank reports whether c is HTTP's optional whitespace: space or tab.
func isBlank(c byte) bool { return c == ' ' || c == '\t' }
