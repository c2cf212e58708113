package auth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func request(header http.Header) *http.Request {
	r, _ := http.NewRequest("GET", "https://frontgate/api", nil)
	r.Header = header
	return r
}

func TestBearerToken(t *testing.T) {
	wsToken := WebSocketBearerPrefix + base64.RawURLEncoding.EncodeToString([]byte("ws-token"))
	tests := []struct {
		name   string
		header http.Header
		want   string
		ok     bool
	}{
		{"bearer", http.Header{"Authorization": {"Bearer abc"}}, "abc", true},
		{"scheme in any case", http.Header{"Authorization": {"bEaReR abc"}}, "abc", true},
		{"basic is not a bearer token", http.Header{"Authorization": {"Basic YTpi"}}, "", false},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, "", false},
		{"none", http.Header{}, "", false},
		{"websocket subprotocol", http.Header{"Sec-Websocket-Protocol": {"v5.channel.k8s.io, " + wsToken}}, "ws-token", true},
		{"Authorization wins over the subprotocol", http.Header{"Authorization": {"Bearer abc"}, "Sec-Websocket-Protocol": {wsToken}}, "abc", true},
		{"undecodable subprotocol token", http.Header{"Sec-Websocket-Protocol": {WebSocketBearerPrefix + "!!"}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := BearerToken(request(tt.header))
			if got != tt.want || ok != tt.ok {
				t.Errorf("BearerToken = (%q, %v), want (%q, %v)", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func fixed(id *Identity, ok bool, err error) Authenticator {
	return AuthenticatorFunc(func(*http.Request) (*Identity, bool, error) { return id, ok, err })
}

func TestUnion(t *testing.T) {
	alice := &Identity{Name: "alice"}
	expired := &Error{Reason: ReasonTokenExpired, Message: "expired"}
	foreign := &Error{Reason: ReasonInvalidIssuer, Message: "foreign"}
	tests := []struct {
		name       string
		chain      []Authenticator
		wantOK     bool
		wantReason string
	}{
		{"first success wins", []Authenticator{fixed(nil, false, nil), fixed(alice, true, nil)}, true, ""},
		{"success after an error", []Authenticator{fixed(nil, false, expired), fixed(alice, true, nil)}, true, ""},
		{"nobody recognises it", []Authenticator{fixed(nil, false, nil), fixed(nil, false, nil)}, false, ""},
		{"one error is returned as it is", []Authenticator{fixed(nil, false, nil), fixed(nil, false, expired)}, false, ReasonTokenExpired},
		{"several errors are joined", []Authenticator{fixed(nil, false, foreign), fixed(nil, false, expired)}, false, ReasonInvalidIssuer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := Union(tt.chain...).AuthenticateRequest(request(http.Header{}))
			if ok != tt.wantOK || (ok && id != alice) {
				t.Fatalf("got (%v, %v, %v)", id, ok, err)
			}
			if tt.wantReason == "" && !ok && err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if tt.wantReason != "" && ReasonOf(err) != tt.wantReason {
				t.Errorf("reason %q, want %q (err %v)", ReasonOf(err), tt.wantReason, err)
			}
		})
	}
}

func TestRefuseReserved(t *testing.T) {
	tests := []struct {
		name    string
		id      Identity
		allowed []string
		wantOK  bool
	}{
		{"ordinary identity", Identity{Name: "alice", Groups: []string{"devs"}}, nil, true},
		{"system:masters group", Identity{Name: "alice", Groups: []string{"devs", "system:masters"}}, nil, false},
		{"system user", Identity{Name: "system:kube-controller-manager"}, nil, false},
		{"prefix in another case", Identity{Name: "alice", Groups: []string{"SYSTEM:masters"}}, nil, false},
		{"explicitly allowed group", Identity{Name: "alice", Groups: []string{"system:masters"}}, []string{"system:masters"}, true},
		{"allowing one name does not allow another", Identity{Name: "alice", Groups: []string{"system:nodes"}}, []string{"system:masters"}, false},
		{"name merely containing system:", Identity{Name: "alice", Groups: []string{"oidc:system:masters"}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			got, ok, err := RefuseReserved(fixed(&id, true, nil), tt.allowed).AuthenticateRequest(request(http.Header{}))
			if ok != tt.wantOK {
				t.Fatalf("ok = %v (err %v), want %v", ok, err, tt.wantOK)
			}
			if !ok {
				if got != nil || ReasonOf(err) != ReasonReservedIdentity || !strings.Contains(err.Error(), "--allow-reserved-identity") {
					t.Errorf("refusal = (%v, %v), want a ReservedIdentity error naming the flag", got, err)
				}
			}
		})
	}
	t.Run("failures pass through untouched", func(t *testing.T) {
		want := &Error{Reason: ReasonTokenExpired}
		_, ok, err := RefuseReserved(fixed(nil, false, want), nil).AuthenticateRequest(request(http.Header{}))
		if ok || !errors.Is(err, want) {
			t.Errorf("got (%v, %v)", ok, err)
		}
	})
}

func TestIdentityValidate(t *testing.T) {
	tests := []struct {
		name    string
		id      Identity
		wantErr bool
	}{
		{"valid", Identity{Name: "alice", UID: "1", Groups: []string{"a b", "ü"}, Extra: map[string][]string{"k": {"", "v\twith tab"}}}, false},
		{"empty name", Identity{}, true},
		{"CR", Identity{Name: "a\rb"}, true},
		{"LF in group", Identity{Name: "a", Groups: []string{"x\n"}}, true},
		{"NUL in uid", Identity{Name: "a", UID: "\x00"}, true},
		{"empty extra key", Identity{Name: "a", Extra: map[string][]string{"": {"v"}}}, true},
		{"bad UTF-8 in extra value", Identity{Name: "a", Extra: map[string][]string{"k": {"\xc3"}}}, true},
		// HTTP/1.1 trims header values: " system:masters" would arrive as
		// system:masters.
		{"leading space in group", Identity{Name: "a", Groups: []string{" system:masters"}}, true},
		{"leading tab in group", Identity{Name: "a", Groups: []string{"\tsystem:masters"}}, true},
		{"trailing space in name", Identity{Name: "bob "}, true},
		{"leading space in uid", Identity{Name: "a", UID: " 1"}, true},
		{"trailing tab in extra value", Identity{Name: "a", Extra: map[string][]string{"k": {"v\t"}}}, true},
		{"whitespace-only name", Identity{Name: " "}, true},
		{"spaces inside values", Identity{Name: "a b", Groups: []string{"x\ty"}, Extra: map[string][]string{"k": {"a b"}}}, false},
		{"extra key with spaces (escaped on the wire)", Identity{Name: "a", Extra: map[string][]string{" k ": {"v"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.id.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && ReasonOf(err) != ReasonInvalidIdentity {
				t.Errorf("reason %q", ReasonOf(err))
			}
		})
	}
}

func TestUnrecognised(t *testing.T) {
	foreign := &Error{Reason: ReasonInvalidIssuer}
	notJWT := &Error{Reason: ReasonMalformedToken}
	expired := &Error{Reason: ReasonTokenExpired}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"foreign issuer", foreign, true},
		{"not a JWT", notJWT, true},
		{"expired", expired, false},
		{"all unrecognised", errors.Join(foreign, notJWT), true},
		{"one recognised and rejected", errors.Join(foreign, expired), false},
		{"plain error", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unrecognised(tt.err); got != tt.want {
				t.Errorf("Unrecognised(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestCheckIssuerURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://login.example.com", true},
		{"https://login.example.com/realms/k8s", true},
		{"http://localhost:9998/", true},
		{"http://127.0.0.5:9998/", true},
		{"http://[::1]:9998/", true},
		{"http://login.example.com/", false},
		{"http://localhost.example.com/", false},
		{"https://user:pw@login.example.com", false},
		{"https://login.example.com/?tenant=x", false},
		{"https://login.example.com/#frag", false},
		{"https:///path", false},
		{"ftp://login.example.com", false},
		{"::not a url", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if err := CheckIssuerURL(tt.url); (err == nil) != tt.ok {
				t.Errorf("CheckIssuerURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	tests := []struct {
		name, got, want string
	}{
		{"plain", Quote("alice"), `"alice"`},
		{"control characters escaped", Quote("a\r\nb"), `"a\r\nb"`},
		{"long value cut on a rune boundary", Quote(long), strconv.Quote(strings.Repeat("é", 128) + "…")},
		{"list", QuoteList([]string{"a", "b"}), `["a", "b"]`},
		{"long list", QuoteList(strings.Split("1,2,3,4,5,6,7,8,9,10", ",")), `["1", "2", "3", "4", "5", "6", "7", "8", …]`},
		{"truncate short", Truncate("abc", 5), "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}
