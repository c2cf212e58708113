package proxy

import (
	"errors"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/frontgate/frontgate/auth"
)

// Refusal is frontgate's own answer to a request it will not forward: the
// HTTP status, the Kubernetes Status reason and a message that never holds
// a credential.
type Refusal struct {
	Code    int
	Reason  metav1.StatusReason
	Message string
}

// Write sends the refusal as a Kubernetes Status.
func (r Refusal) Write(w http.ResponseWriter) { WriteStatus(w, r.Code, r.Reason, r.Message) }

// RefuseNotReady answers while the identity sources cannot authenticate
// yet: 503.
func RefuseNotReady(err error) Refusal {
	return Refusal{http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "frontgate is not ready: " + err.Error()}
}

// RefuseAuthentication answers a credential the authenticators rejected:
// 403 for a reserved identity, 503 when an issuer cannot be reached, 401
// otherwise.
func RefuseAuthentication(err error) Refusal {
	switch auth.ReasonOf(err) {
	case auth.ReasonReservedIdentity:
		return Refusal{http.StatusForbidden, metav1.StatusReasonForbidden, err.Error()}
	case auth.ReasonIssuerUnavailable:
		return Refusal{http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, err.Error()}
	default:
		return Refusal{http.StatusUnauthorized, metav1.StatusReasonUnauthorized, err.Error()}
	}
}

// RefuseNoCredentials answers a request that carries no credential: 401.
func RefuseNoCredentials() Refusal {
	return Refusal{http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "no credentials: send a bearer token (an OIDC ID token) in the Authorization header"}
}

// RefuseIdentity answers an established identity that [IdentityHeaders]
// could not encode: 431 over a limit, 500 for a value that is unsafe in a
// header.
func RefuseIdentity(err error) Refusal {
	var limit *LimitError
	if errors.As(err, &limit) {
		return Refusal{http.StatusRequestHeaderFieldsTooLarge, metav1.StatusReasonBadRequest, limit.Message}
	}
	return Refusal{http.StatusInternalServerError, metav1.StatusReasonInternalError, "the identity established for this request cannot be forwarded safely: " + err.Error()}
}
