package auth

import "errors"

// Reasons are the machine-readable causes of an authentication failure. They
// label metrics and appear in the Status body the client receives.
const (
	ReasonTokenExpired      = "TokenExpired"
	ReasonTokenNotYetValid  = "TokenNotYetValid"
	ReasonInvalidIssuer     = "InvalidIssuer"
	ReasonInvalidAudience   = "InvalidAudience"
	ReasonUnknownKey        = "UnknownSigningKey"
	ReasonInvalidSignature  = "InvalidSignature"
	ReasonUnsupportedAlg    = "UnsupportedAlgorithm"
	ReasonMalformedToken    = "MalformedToken"
	ReasonMissingClaim      = "MissingClaim"
	ReasonInvalidClaim      = "InvalidClaim"
	ReasonInvalidIdentity   = "InvalidIdentity"
	ReasonReservedIdentity  = "ReservedIdentity"
	ReasonIssuerUnavailable = "IssuerUnavailable"
)

// Error is an authentication failure with a reason callers can branch on and
// a message a person understands. Messages never contain the credential.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Message explains the failure and, where possible, the fix.
	Message string
	// Err is the underlying error, if any; it is not shown to clients.
	Err error
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the first *Error in err's chain, or
// "Unknown" when there is none.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "Unknown"
}

// Reasons for refusing a client certificate (package auth/clientcert).
const (
	ReasonInvalidCertificate     = "InvalidCertificate"
	ReasonCertificateExpired     = "CertificateExpired"
	ReasonCertificateNotYetValid = "CertificateNotYetValid"
	ReasonUnknownAuthority       = "UnknownCertificateAuthority"
	ReasonCertificateUsage       = "CertificateNotForClientAuth"
	ReasonCertificateRevoked     = "CertificateRevoked"
	ReasonNoCertificateMapping   = "NoCertificateMapping"
	ReasonCertificateMapping     = "CertificateMappingFailed"
)
