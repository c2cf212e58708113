package clientcert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	"github.com/frontgate/frontgate/auth"
)

func TestForwardedCertificate(t *testing.T) {
	root := newCA(t, "corp root")
	inter := root.intermediate(t, "corp issuing", nil)
	other := newCA(t, "other")
	alice := root.leaf(t, pkix.Name{CommonName: "alice"}, nil)
	bob := inter.leaf(t, pkix.Name{CommonName: "bob"}, nil)
	lb := root.leaf(t, pkix.Name{CommonName: "load-balancer"}, nil)
	a := mustNew(t, Config{
		CAs:            []CA{root.named("corp")},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8::/64")},
	})

	tests := []struct {
		name       string
		req        func() *http.Request
		wantName   string // "" with wantReason "": no identity, no error
		wantReason string
	}{
		{"header from a trusted IPv4 proxy", func() *http.Request { return headerRequest("10.0.0.7:5000", alice) }, "alice", ""},
		{"header from a trusted IPv6 proxy", func() *http.Request { return headerRequest("[2001:db8::7]:5000", alice) }, "alice", ""},
		{"IPv4-mapped IPv6 peer", func() *http.Request { return headerRequest("[::ffff:10.0.0.7]:5000", alice) }, "alice", ""},
		{"chain header supplies the intermediate", func() *http.Request { return headerRequest("10.0.0.7:5000", bob, inter.cert) }, "bob", ""},
		{"chain in one comma-separated line", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", bob)
			r.Header.Set(HeaderClientCertChain, byteSequence(inter.cert.Raw)+", "+byteSequence(root.cert.Raw))
			return r
		}, "bob", ""},
		{"unpadded base64 is accepted", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", alice)
			r.Header.Set(HeaderClientCert, ":"+base64.RawStdEncoding.EncodeToString(alice.Raw)+":")
			return r
		}, "alice", ""},
		{"header wins over the proxy's own TLS certificate", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", alice)
			r.TLS.PeerCertificates = []*x509.Certificate{lb}
			return r
		}, "alice", ""},
		{"trusted proxy without header: its TLS certificate", func() *http.Request {
			r := tlsRequest(lb)
			r.RemoteAddr = "10.0.0.7:5000"
			return r
		}, "load-balancer", ""},
		{"chain header alone is ignored", func() *http.Request {
			r := tlsRequest()
			r.RemoteAddr = "10.0.0.7:5000"
			r.Header.Set(HeaderClientCertChain, byteSequence(alice.Raw))
			return r
		}, "", ""},
		{"header from an untrusted address is ignored", func() *http.Request { return headerRequest("192.0.2.7:5000", alice) }, "", ""},
		{"header from next to a trusted prefix is ignored", func() *http.Request { return headerRequest("10.0.1.7:5000", alice) }, "", ""},
		{"untrusted address: the TLS certificate, not the header", func() *http.Request {
			r := headerRequest("192.0.2.7:5000", alice)
			r.TLS.PeerCertificates = []*x509.Certificate{bob, inter.cert}
			return r
		}, "bob", ""},
		{"unparsable remote address is untrusted", func() *http.Request { return headerRequest("10.0.0.7", alice) }, "", ""},
		{"trusted header is verified like any certificate", func() *http.Request {
			return headerRequest("10.0.0.7:5000", other.leaf(t, pkix.Name{CommonName: "alice"}, nil))
		}, "", auth.ReasonUnknownAuthority},
		{"not a byte sequence", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", alice)
			r.Header.Set(HeaderClientCert, base64.StdEncoding.EncodeToString(alice.Raw))
			return r
		}, "", auth.ReasonInvalidCertificate},
		{"bad base64", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", alice)
			r.Header.Set(HeaderClientCert, ":not base64!:")
			return r
		}, "", auth.ReasonInvalidCertificate},
		{"not DER", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", alice)
			r.Header.Set(HeaderClientCert, byteSequence([]byte("hello")))
			return r
		}, "", auth.ReasonInvalidCertificate},
		{"two Client-Cert headers", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", alice)
			r.Header.Add(HeaderClientCert, byteSequence(bob.Raw))
			return r
		}, "", auth.ReasonInvalidCertificate},
		{"empty chain member", func() *http.Request {
			r := headerRequest("10.0.0.7:5000", bob)
			r.Header.Set(HeaderClientCertChain, byteSequence(inter.cert.Raw)+",,")
			return r
		}, "", auth.ReasonInvalidCertificate},
		{"chain too long", func() *http.Request {
			return headerRequest("10.0.0.7:5000", append([]*x509.Certificate{bob}, slices.Repeat([]*x509.Certificate{inter.cert}, maxChainCertificates)...)...)
		}, "", auth.ReasonInvalidCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			before := r.Header.Clone()
			id, ok, err := a.AuthenticateRequest(r)
			switch {
			case tt.wantReason != "":
				wantRefused(t, id, ok, err, tt.wantReason)
			case tt.wantName == "":
				if id != nil || ok || err != nil {
					t.Fatalf("got (%+v, %v, %v), want the header treated as absent", id, ok, err)
				}
			default:
				if !ok || id.Name != tt.wantName {
					t.Fatalf("got (%+v, %v, %v), want %s", id, ok, err, tt.wantName)
				}
			}
			if len(r.Header) != len(before) || r.Header.Get(HeaderClientCert) != before.Get(HeaderClientCert) {
				t.Errorf("AuthenticateRequest modified the request headers")
			}
		})
	}
}

func TestNoTrustedProxiesByDefault(t *testing.T) {
	ca := newCA(t, "corp")
	a := mustNew(t, Config{CAs: []CA{ca.named("corp")}})
	for _, addr := range []string{"127.0.0.1:1", "[::1]:1", "10.0.0.1:1"} {
		id, ok, err := a.AuthenticateRequest(headerRequest(addr, ca.leaf(t, pkix.Name{CommonName: "alice"}, nil)))
		if id != nil || ok || err != nil {
			t.Errorf("%s: got (%v, %v, %v), want the header ignored", addr, id, ok, err)
		}
	}
}

func TestForwardedCertHeadersReturnsACopy(t *testing.T) {
	names := ForwardedCertHeaders()
	names[0] = "changed"
	if got := ForwardedCertHeaders(); !slices.Equal(got, []string{HeaderClientCert, HeaderClientCertChain}) {
		t.Errorf("ForwardedCertHeaders() = %q after the caller changed its copy", got)
	}
}
