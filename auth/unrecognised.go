package auth

import "errors"

// Unrecognised reports whether err says only that no authenticator
// recognised the credential as one of its own — a token from an issuer none
// of them trusts, or a token that is not a JWT — as opposed to a credential
// that was recognised and rejected (expired, bad signature, reserved name).
// Only unrecognised tokens may be passed through to kube-apiserver.
func Unrecognised(err error) bool {
	if err == nil {
		return false
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if !Unrecognised(e) {
				return false
			}
		}
		return true
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Reason == ReasonInvalidIssuer || e.Reason == ReasonMalformedToken
}
