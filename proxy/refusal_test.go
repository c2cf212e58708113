package proxy

import (
	"errors"
	"net/http"
	"testing"

	"github.com/frontgate/frontgate/auth"
)

func TestRefusals(t *testing.T) {
	tests := []struct {
		name     string
		refusal  Refusal
		wantCode int
	}{
		{"reserved identity", RefuseAuthentication(&auth.Error{Reason: auth.ReasonReservedIdentity, Message: "reserved"}), http.StatusForbidden},
		{"issuer unavailable", RefuseAuthentication(&auth.Error{Reason: auth.ReasonIssuerUnavailable, Message: "down"}), http.StatusServiceUnavailable},
		{"expired", RefuseAuthentication(&auth.Error{Reason: auth.ReasonTokenExpired, Message: "expired"}), http.StatusUnauthorized},
		{"several errors", RefuseAuthentication(errors.Join(&auth.Error{Reason: auth.ReasonInvalidIssuer}, errors.New("x"))), http.StatusUnauthorized},
		{"no credentials", RefuseNoCredentials(), http.StatusUnauthorized},
		{"not ready", RefuseNotReady(errors.New("issuer down")), http.StatusServiceUnavailable},
		{"over a limit", RefuseIdentity(&LimitError{Message: "too many groups"}), http.StatusRequestHeaderFieldsTooLarge},
		{"unsafe value", RefuseIdentity(&auth.Error{Reason: auth.ReasonInvalidIdentity, Message: "CR"}), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.refusal.Code != tt.wantCode || tt.refusal.Message == "" || tt.refusal.Reason == "" {
				t.Errorf("refusal %+v, want code %d with a reason and a message", tt.refusal, tt.wantCode)
			}
		})
	}
}
