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
// forge headers.
func (id *Identity) Validate() error {
	if id.Name == "" {
		return &Error{Reason: ReasonInvalidIdentity, Message: "the identity has an empty username"}
	}
	if err := checkValue("username", id.Name); err != nil {
		return err
	}
	if err := checkValue("uid", id.UID); err != nil {
		return err
	}
	for _, g := range id.Groups {
		if err := checkValue("group", g); err != nil {
			return err
		}
	}
	for k, vs := range id.Extra {
		if k == "" {
			return &Error{Reason: ReasonInvalidIdentity, Message: "the identity has an extra attribute with an empty key"}
		}
		if err := checkValue("extra key", k); err != nil {
			return err
		}
		for _, v := range vs {
			if err := checkValue(fmt.Sprintf("extra %q value", k), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkValue refuses values that are not safe inside an HTTP header.
func checkValue(what, v string) error {
	if !utf8.ValidString(v) {
		return &Error{Reason: ReasonInvalidIdentity, Message: fmt.Sprintf("the identity's %s is not valid UTF-8", what)}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return &Error{Reason: ReasonInvalidIdentity, Message: fmt.Sprintf("the identity's %s contains the control character %#02x", what, c)}
		}
	}
	return nil
}
