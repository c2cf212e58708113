package oidc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/frontgate/frontgate/auth"
)

// fuzzIssuerPlaceholder in FuzzAuthenticateToken's claims stands for the
// test issuer's URL, whose port changes from run to run.
const fuzzIssuerPlaceholder = "ISSUER_URL"

// FuzzAuthenticateToken feeds the authenticator arbitrary token strings and
// tokens signed by the test issuer's own keys over arbitrary claims, then
// changed: a byte flipped, inserted or cut off, another header (alg none,
// HS256, other kid), an HMAC signature keyed with the issuer's public key
// (algorithm confusion), no signature, another payload. It checks that
//   - AuthenticateToken never panics and returns either an identity or an
//     *auth.Error with a reason and a message;
//   - a token is accepted only if go-jose verifies its signature with one of
//     the issuer's keys, and only if the verified claims have the configured
//     issuer and audience, an expiry not passed, no iat or nbf in the future,
//     and the required claim; the identity is then exactly the mapping of
//     those claims (--oidc-username-prefix oidc:, groups claim groups with
//     prefix oidc:), expiring at exp;
//   - no message contains the token or the signature it was made from.
//
// token is used as it is; claims (with ISSUER_URL replaced) is signed when
// not empty, with the RSA key when op&0x80 is set, else the P-256 key, and
// changed as op&7 says, at pos, with b.
func FuzzAuthenticateToken(f *testing.F) {
	ec, rsa := ecKey(f, 0, "ec-0"), rsaKey(f, 0, "rsa-0")
	e := newEnv(f, func(o *Options) {
		o.SigningAlgs = []string{"RS256", "ES256"}
		o.GroupsClaim, o.GroupsPrefix = "groups", "oidc:"
		o.RequiredClaims = map[string]string{"hd": "example.com"}
	}, ec, rsa)
	keys := []testKey{ec, rsa}
	signers := map[bool]jose.Signer{}
	for useRSA, k := range map[bool]testKey{false: ec, true: rsa} {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Priv, KeyID: k.KID}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			f.Fatal(err)
		}
		signers[useRSA] = s
	}
	// Secrets an attacker could try as HS256 keys: the issuer's public keys
	// as DER, PEM and JWK.
	der, err := x509.MarshalPKIXPublicKey(rsa.Priv.Public())
	if err != nil {
		f.Fatal(err)
	}
	jwk, err := rsa.Public().MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	hmacKeys := [][]byte{der, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), jwk}

	now := e.clock.Now().Unix()
	valid := func(overrides map[string]any) []byte {
		c := map[string]any{"iss": fuzzIssuerPlaceholder, "aud": testClientID, "sub": "alice", "hd": "example.com",
			"groups": []string{"dev", "ops"}, "iat": now, "exp": now + 3600}
		for k, v := range overrides {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		b, _ := json.Marshal(c)
		return b
	}
	for op := range uint8(8) {
		f.Add("", valid(nil), op, uint16(40), byte(op))
		f.Add("", valid(nil), op|0x80, uint16(300), byte(0x41))
	}
	f.Add("", valid(map[string]any{"exp": now - 1}), uint8(0), uint16(0), byte(0))
	f.Add("", valid(map[string]any{"aud": []string{"other", testClientID}, "nbf": now + 3600}), uint8(0), uint16(0), byte(0))
	f.Add("", valid(map[string]any{"iss": "https://evil.example", "hd": "evil.example", "groups": []any{"a", 1}}), uint8(0), uint16(0), byte(0))
	f.Add("", []byte(`{"iss":"ISSUER_URL","aud":["frontgate-test"],"sub":"system:masters","hd":"example.com","exp":1e300,"iat":-1e300,"groups":"x"}`), uint8(0), uint16(0), byte(0))
	f.Add("", []byte(`[]`), uint8(0), uint16(0), byte(0))
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", []byte(nil), uint8(0), uint16(0), byte(0))
	f.Add("a.b.c.d.e", []byte(nil), uint8(0), uint16(0), byte(0))
	f.Add("Bearer eyJhbGciOiJSUzI1NiJ9..c2ln", []byte(nil), uint8(0), uint16(0), byte(0))

	f.Fuzz(func(t *testing.T, token string, claims []byte, op uint8, pos uint16, b byte) {
		checkFuzzedToken(t, e, keys, token, "")
		if len(claims) == 0 {
			return
		}
		payload := bytes.ReplaceAll(claims, []byte(fuzzIssuerPlaceholder), []byte(e.is.URL()))
		obj, err := signers[op&0x80 != 0].Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		signature := signed[strings.LastIndexByte(signed, '.')+1:]
		checkFuzzedToken(t, e, keys, mutateToken(signed, op&7, int(pos), b, hmacKeys), signature)
	})
}

// mutateToken changes the compact JWS tok as op says.
func mutateToken(tok string, op uint8, pos int, b byte, hmacKeys [][]byte) string {
	parts := strings.SplitN(tok, ".", 3)
	switch op {
	case 1: // flip bits of one byte
		raw := []byte(tok)
		raw[pos%len(raw)] ^= b | 1
		return string(raw)
	case 2: // another header over the same payload and signature
		algs := []string{"none", "HS256", "RS256", "ES256", "PS256", "ES384", "RS512", "rs256", ""}
		kids := []string{"", "ec-0", "rsa-0", "other"}
		h, _ := json.Marshal(map[string]string{"alg": algs[int(b)%len(algs)], "kid": kids[pos%len(kids)], "typ": "JWT"})
		return b64(h) + "." + parts[1] + "." + parts[2]
	case 3: // HS256 keyed with the issuer's public key
		h, _ := json.Marshal(map[string]string{"alg": "HS256", "kid": "rsa-0", "typ": "JWT"})
		input := b64(h) + "." + parts[1]
		mac := hmac.New(sha256.New, hmacKeys[pos%len(hmacKeys)])
		mac.Write([]byte(input))
		return input + "." + b64(mac.Sum(nil))
	case 4: // no signature, or alg none
		if b&1 == 0 {
			return parts[0] + "." + parts[1] + "."
		}
		return b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	case 5: // another payload under the same signature
		p, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if len(p) > 0 {
			p[pos%len(p)] ^= b | 1
		}
		return parts[0] + "." + b64(p) + "." + parts[2]
	case 6: // cut off
		return tok[:pos%(len(tok)+1)]
	case 7: // one byte inserted
		i := pos % (len(tok) + 1)
		return tok[:i] + string([]byte{b}) + tok[i:]
	}
	return tok
}

// checkFuzzedToken authenticates token and checks FuzzAuthenticateToken's
// properties; keys are the issuer's keys and signature, when not empty, is
// the signature token was made from.
func checkFuzzedToken(t *testing.T, e *env, keys []testKey, token, signature string) {
	t.Helper()
	id, ok, err := e.a.AuthenticateToken(context.Background(), token)
	if ok {
		if err != nil || id == nil {
			t.Fatalf("accepted with identity %+v and error %v", id, err)
		}
		payload := fuzzVerifiedPayload(keys, token)
		if payload == nil {
			t.Fatalf("accepted a token no key of the issuer signed: %q", token)
		}
		checkFuzzedIdentity(t, e, payload, id)
		return
	}
	if id != nil {
		t.Fatalf("rejected, but returned identity %+v", id)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) || ae.Reason == "" || ae.Message == "" {
		t.Fatalf("rejection %v (%T) is not an *auth.Error with a reason and a message", err, err)
	}
	// A token shorter than 16 bytes, or without two dots, could appear in
	// the fixed text of a message by chance.
	if len(token) >= 16 && strings.Count(token, ".") >= 2 && strings.Contains(ae.Message, token) {
		t.Fatalf("message contains the token: %q", ae.Message)
	}
	if signature != "" && strings.Contains(ae.Message, signature) {
		t.Fatalf("message contains the token's signature: %q", ae.Message)
	}
}

// fuzzVerifiedPayload returns the payload of token if go-jose verifies its
// signature with one of the issuer's keys, else nil.
func fuzzVerifiedPayload(keys []testKey, token string) []byte {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil
	}
	for _, k := range keys {
		if p, err := jws.Verify(k.Priv.Public()); err == nil {
			return p
		}
	}
	return nil
}

// checkFuzzedIdentity checks that verified claims may be accepted at all,
// and that id is their mapping.
func checkFuzzedIdentity(t *testing.T, e *env, payload []byte, id *auth.Identity) {
	t.Helper()
	var c map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("accepted claims that are not a JSON object: %q", payload)
	}
	str := func(name string) (string, bool) {
		var s string
		raw, ok := c[name]
		return s, ok && json.Unmarshal(raw, &s) == nil
	}
	// go-oidc decodes the registered claims with encoding/json into a
	// struct, which matches keys in any letter case ("Aud") and keeps the
	// last of duplicates; read them the same way.
	var r struct {
		Issuer    string          `json:"iss"`
		Audience  json.RawMessage `json:"aud"`
		Expiry    *float64        `json:"exp"`
		IssuedAt  *float64        `json:"iat"`
		NotBefore *float64        `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		t.Fatalf("accepted registered claims of the wrong types: %s", payload)
	}
	now := e.clock.Now()
	if iss, _ := str("iss"); iss != e.is.URL() || r.Issuer != e.is.URL() {
		t.Fatalf("accepted issuer %q (%q)", iss, r.Issuer)
	}
	if aud, ok := stringOrArray(r.Audience); !ok || !slices.Contains(aud, testClientID) {
		t.Fatalf("accepted audience %s", r.Audience)
	}
	if r.Expiry == nil || time.Unix(int64(*r.Expiry), 0).Before(now) {
		t.Fatalf("accepted exp %v at %v: %s", r.Expiry, now, payload)
	}
	if r.IssuedAt != nil && time.Unix(int64(*r.IssuedAt), 0).After(now.Add(leeway)) {
		t.Fatalf("accepted iat %v at %v", *r.IssuedAt, now)
	}
	if r.NotBefore != nil && time.Unix(int64(*r.NotBefore), 0).After(now.Add(leeway)) {
		t.Fatalf("accepted nbf %v at %v", *r.NotBefore, now)
	}
	if hd, _ := str("hd"); hd != "example.com" {
		t.Fatalf("accepted without the required claim hd=example.com: %s", c["hd"])
	}
	sub, _ := str("sub")
	var groups []string
	if raw, ok := c["groups"]; ok {
		values, _ := stringOrArray(raw)
		for _, g := range values {
			if g != "" {
				groups = append(groups, "oidc:"+g)
			}
		}
	}
	if id.Name != "oidc:"+sub || !slices.Equal(id.Groups, groups) || id.UID != "" || id.Extra != nil || id.Source != source {
		t.Fatalf("identity %+v is not the mapping of claims %s", id, payload)
	}
	if id.Expires.Unix() != int64(*r.Expiry) {
		t.Fatalf("identity expires at %v, the token at %v", id.Expires, *r.Expiry)
	}
}
