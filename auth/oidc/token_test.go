package oidc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/frontgate/frontgate/auth"
)

func TestRegisteredClaims(t *testing.T) {
	const wrongType = "wrong type"
	tests := []struct {
		name    string
		payload string
		want    registered
		// err is a substring of the error's message; "" for none.
		err string
	}{
		{name: "typical", payload: `{"sub":"alice","aud":"frontgate","exp":1800000000,"iat":1700000000.9,"nbf":null}`,
			want: registered{audience: []string{"frontgate"}, expiry: time.Unix(1800000000, 0), issuedAt: time.Unix(1700000000, 0)}},
		{name: "audience array and nbf", payload: `{"aud":["a","b"],"exp":1800000000,"nbf":1600000000}`,
			want: registered{audience: []string{"a", "b"}, expiry: time.Unix(1800000000, 0), notBefore: time.Unix(1600000000, 0)}},
		{name: "numeric string, as go-oidc accepts", payload: `{"exp":"1800000000"}`, want: registered{expiry: time.Unix(1800000000, 0)}},
		{name: "names match exactly", payload: `{"EXP":1800000000,"Aud":"x"}`, want: registered{}},
		{name: "aud null is no audience", payload: `{"aud":null}`, want: registered{}},
		{name: "exp null", payload: `{"exp":null}`, err: wrongType},
		{name: "iat null", payload: `{"iat":null}`, err: wrongType},
		{name: "exp not a number", payload: `{"exp":"tomorrow"}`, err: wrongType},
		{name: "nbf object", payload: `{"nbf":{}}`, err: wrongType},
		{name: "sub number", payload: `{"sub":42}`, err: wrongType},
		{name: "nonce array", payload: `{"nonce":["x"]}`, err: wrongType},
		{name: "at_hash object", payload: `{"at_hash":{}}`, err: wrongType},
		{name: "aud number", payload: `{"aud":42}`, err: wrongType},
		{name: "aud array of numbers", payload: `{"aud":[1]}`, err: wrongType},
		{name: "distributed claims", payload: `{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://x.example"}}}`, want: registered{}},
		{name: "distributed claim without its source", payload: `{"_claim_names":{"groups":"src2"},"_claim_sources":{"src1":{"endpoint":"https://x.example"}}}`, err: `source "src2"`},
		{name: "distributed claim with an empty source", payload: `{"_claim_names":{"groups":""}}`, err: `source ""`},
		{name: "claim names not a map of strings", payload: `{"_claim_names":{"groups":1}}`, err: wrongType},
		{name: "claim sources not objects", payload: `{"_claim_sources":{"src1":"x"}}`, err: wrongType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Claims
			if err := json.Unmarshal([]byte(tt.payload), &c); err != nil {
				t.Fatal(err)
			}
			got, err := registeredClaims(c)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || auth.ReasonOf(err) != auth.ReasonInvalidClaim {
					t.Fatalf("err = %v (reason %q), want InvalidClaim containing %q", err, auth.ReasonOf(err), tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !slices.Equal(got.audience, tt.want.audience) || !got.expiry.Equal(tt.want.expiry) ||
				!got.issuedAt.Equal(tt.want.issuedAt) || !got.notBefore.Equal(tt.want.notBefore) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
