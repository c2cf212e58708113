package login

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Kind says what went wrong in a way callers can branch on.
type Kind int

// The kinds of [Error].
const (
	// KindConfig: the flags are wrong; nothing was sent anywhere.
	KindConfig Kind = iota + 1
	// KindIssuerUnreachable: the issuer's discovery document or one of its
	// endpoints could not be reached, or its certificate is not trusted.
	KindIssuerUnreachable
	// KindIssuer: the issuer answered, but not as an OpenID provider should
	// (bad discovery document, no ID token, a token that does not verify).
	KindIssuer
	// KindClientMisconfigured: the issuer refused the client: unknown client
	// ID, wrong secret, grant or redirect URI not allowed.
	KindClientMisconfigured
	// KindCancelled: the user denied the login, or interrupted the command.
	KindCancelled
	// KindTimeout: no login completed in time.
	KindTimeout
	// KindCache: the token cache could not be read, locked or written.
	KindCache
)

// Error is a login failure. Its message is one line that says what happened
// and what to do about it.
type Error struct {
	Kind Kind
	// Message is the whole one-line message.
	Message string
	// Err is the cause, for errors.Is and errors.As.
	Err error
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// newError builds an Error; format's result and the cause are folded into
// one line.
func newError(kind Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: oneLine(fmt.Sprintf(format, args...)), Err: cause}
}

// oneLine collapses every run of white space, line breaks included, into one
// space, so that an error from a server cannot break the message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// describe returns a short description of err for a message: the OAuth
// error code and description for an error from the issuer, never the whole
// response body.
func describe(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode == "" {
			status := ""
			if re.Response != nil {
				status = re.Response.Status
			}
			return "HTTP " + status
		}
		if re.ErrorDescription != "" {
			return re.ErrorCode + ": " + re.ErrorDescription
		}
		return re.ErrorCode
	}
	return oneLine(err.Error())
}

// oauthErrorCode returns the OAuth error code of err, or "".
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// isTransportError reports whether err means the server was not reached
// (or not trusted), rather than that it answered.
func isTransportError(err error) bool {
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe)
}

// IsCertificateError reports whether err is a TLS verification failure.
func IsCertificateError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify)
}

// unreachable turns a transport error talking to what (an URL) into an
// Error.
func unreachable(what string, err error) *Error {
	if IsCertificateError(err) {
		return newError(KindIssuerUnreachable, err, "the certificate of %s is not trusted (%s): give the issuer's CA with --ca-file", what, describe(err))
	}
	return newError(KindIssuerUnreachable, err, "cannot reach the issuer at %s (%s): check --issuer-url, your network and proxy settings", what, describe(err))
}

// contextError turns the end of ctx into an Error, or returns nil while ctx
// is live. timeout is the configured limit; hint is added to a timeout
// message.
func contextError(ctx context.Context, timeout time.Duration, hint string) *Error {
	err := context.Cause(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		msg := fmt.Sprintf("no login completed within %v: run the command again, or give it more time with --timeout", timeout)
		if hint != "" {
			msg += "; " + hint
		}
		return newError(KindTimeout, err, "%s", msg)
	default:
		return newError(KindCancelled, err, "login cancelled: run the command again to log in")
	}
}
