package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testCertPEM returns a self-signed certificate and its key, both PEM.
func testCertPEM(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "frontgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

func TestDiscoveryBuiltAndParsed(t *testing.T) {
	ca, _ := testCertPEM(t)
	want := Discovery{
		Issuers: []DiscoveryIssuer{
			{URL: "https://login.example.com", ClientID: "kubernetes", Scopes: []string{"offline_access", "groups"}},
			{URL: "http://localhost:9998/", ClientID: "native"},
		},
		CABundle: ca,
	}
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(DiscoveryHandler(want))
	defer srv.Close()
	resp, err := http.Get(srv.URL + DiscoveryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for header, value := range map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "public, max-age=300",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(header); got != value {
			t.Errorf("%s = %q, want %q", header, got, value)
		}
	}
	if resp.Header.Get("ETag") == "" {
		t.Error("no ETag")
	}
	got, err := ParseDiscovery(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed %+v\nwant %+v", got, want)
	}
}

func TestDiscoveryHandlerMethodsAndPaths(t *testing.T) {
	h := DiscoveryHandler(Discovery{Issuers: []DiscoveryIssuer{{URL: "https://issuer.example", ClientID: "k"}}})
	tests := []struct {
		name, method, path string
		header             http.Header
		wantCode           int
		wantBody           bool
	}{
		{name: "GET", method: http.MethodGet, path: DiscoveryPath, wantCode: http.StatusOK, wantBody: true},
		{name: "HEAD has no body", method: http.MethodHead, path: DiscoveryPath, wantCode: http.StatusOK},
		{name: "POST is refused", method: http.MethodPost, path: DiscoveryPath, wantCode: http.StatusMethodNotAllowed},
		{name: "PUT is refused", method: http.MethodPut, path: DiscoveryPath, wantCode: http.StatusMethodNotAllowed},
		{name: "other path", method: http.MethodGet, path: "/api/v1/namespaces", wantCode: http.StatusNotFound},
		{name: "trailing slash is another path", method: http.MethodGet, path: DiscoveryPath + "/", wantCode: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("code %d, want %d", rec.Code, tt.wantCode)
			}
			if got := rec.Body.Len() > 0; tt.wantCode == http.StatusOK && got != tt.wantBody {
				t.Errorf("body present = %v, want %v", got, tt.wantBody)
			}
			if tt.wantCode == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", rec.Header().Get("Allow"))
			}
		})
	}
	t.Run("If-None-Match gets 304", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, DiscoveryPath, nil))
		req := httptest.NewRequest(http.MethodGet, DiscoveryPath, nil)
		req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
		rec2 := httptest.NewRecorder()
		h.ServeHTTP(rec2, req)
		if rec2.Code != http.StatusNotModified {
			t.Errorf("code %d, want 304", rec2.Code)
		}
	})
}

func TestDiscoveryNeverPublishesAKey(t *testing.T) {
	ca, key := testCertPEM(t)
	d := Discovery{Issuers: []DiscoveryIssuer{{URL: "https://issuer.example", ClientID: "k"}}, CABundle: ca + key}
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), `"PRIVATE KEY"`) {
		t.Errorf("Validate = %v, want it to refuse the key", err)
	}
	rec := httptest.NewRecorder()
	DiscoveryHandler(d).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, DiscoveryPath, nil))
	if strings.Contains(rec.Body.String(), "PRIVATE KEY") {
		t.Fatalf("the handler published a private key:\n%s", rec.Body)
	}
	got, err := ParseDiscovery(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got.CABundle != ca {
		t.Errorf("CA bundle = %q, want the certificate only", got.CABundle)
	}
}

func TestDiscoveryValidate(t *testing.T) {
	ca, _ := testCertPEM(t)
	tests := []struct {
		name string
		d    Discovery
		want string
	}{
		{"valid", Discovery{Issuers: []DiscoveryIssuer{{URL: "https://i.example", ClientID: "k"}}, CABundle: ca}, ""},
		{"loopback http", Discovery{Issuers: []DiscoveryIssuer{{URL: "http://127.0.0.1:9998/", ClientID: "k"}}}, ""},
		{"no issuer", Discovery{}, "no issuer"},
		{"remote http", Discovery{Issuers: []DiscoveryIssuer{{URL: "http://i.example", ClientID: "k"}}}, "must use https"},
		{"no client", Discovery{Issuers: []DiscoveryIssuer{{URL: "https://i.example"}}}, "no client ID"},
		{"bad scope", Discovery{Issuers: []DiscoveryIssuer{{URL: "https://i.example", ClientID: "k", Scopes: []string{"a b"}}}}, "not a valid scope"},
		{"garbage bundle", Discovery{Issuers: []DiscoveryIssuer{{URL: "https://i.example", ClientID: "k"}}, CABundle: "hello"}, "not PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseDiscoveryRefuses(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"not JSON", "<html>", "not a frontgate discovery document"},
		{"empty object", "{}", "no issuer"},
		{"too large", `{"issuers":[],"x":"` + strings.Repeat("a", 1<<20) + `"}`, "larger than"},
		{"unknown fields are fine but issuers are needed", `{"future":1,"issuers":[{"url":"https://i.example","clientID":"k"}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDiscovery(strings.NewReader(tt.body))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
