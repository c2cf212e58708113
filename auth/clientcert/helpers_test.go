package clientcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frontgate/frontgate/auth"
)

// now is the test clock.
var now = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

var serials atomic.Int64

// testCA is a CA (root or intermediate) made for a test.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(serials.Add(1)),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

// newCA makes a self-signed root CA.
func newCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := caTemplate(cn)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

// intermediate makes a CA signed by ca; edit may change its template.
func (ca *testCA) intermediate(t testing.TB, cn string, edit func(*x509.Certificate)) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := caTemplate(cn)
	if edit != nil {
		edit(tmpl)
	}
	return &testCA{cert: ca.sign(t, tmpl, key), key: key}
}

func (ca *testCA) sign(t testing.TB, tmpl *x509.Certificate, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leaf issues a client certificate valid for an hour around now, with
// clientAuth usage; edit may change the template.
func (ca *testCA) leaf(t testing.TB, subject pkix.Name, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serials.Add(1)),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	return ca.sign(t, tmpl, newKey(t))
}

// crl makes a CRL signed by ca that revokes certs.
func (ca *testCA) crl(t testing.TB, certs ...*x509.Certificate) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(serials.Add(1)), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}
	for _, c := range certs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func (ca *testCA) named(name string) CA {
	return CA{Name: name, Certificates: []*x509.Certificate{ca.cert}}
}

func spiffeURI(t testing.TB, s string) []*url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return []*url.URL{u}
}

// tlsRequest is a request whose TLS handshake presented certs.
func tlsRequest(certs ...*x509.Certificate) *http.Request {
	r := httptest.NewRequest("GET", "https://frontgate/api", nil)
	r.RemoteAddr = "192.0.2.10:40000"
	if len(certs) > 0 {
		r.TLS.PeerCertificates = certs
	}
	return r
}

// headerRequest is a request from remoteAddr carrying certs in RFC 9440
// headers.
func headerRequest(remoteAddr string, certs ...*x509.Certificate) *http.Request {
	r := httptest.NewRequest("GET", "https://frontgate/api", nil)
	r.RemoteAddr = remoteAddr
	r.Header.Set(HeaderClientCert, byteSequence(certs[0].Raw))
	for _, c := range certs[1:] {
		r.Header.Add(HeaderClientCertChain, byteSequence(c.Raw))
	}
	return r
}

func byteSequence(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }

// mustMapping compiles a mapping file for the tests.
func mustMapping(t testing.TB, yaml string, caNames ...string) *Mapping {
	t.Helper()
	m, err := parseMapping([]byte(yaml), caNames, DefaultCostLimit)
	if err != nil {
		t.Fatalf("mapping: %v", err)
	}
	return m
}

func mustNew(t testing.TB, cfg Config) *Authenticator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = clock
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// wantRefused checks a refusal with reason.
func wantRefused(t testing.TB, id *auth.Identity, ok bool, err error, reason string) {
	t.Helper()
	if ok || id != nil {
		t.Fatalf("authenticated as %+v, want a refusal with reason %s", id, reason)
	}
	if err == nil {
		t.Fatalf("no error, want reason %s", reason)
	}
	if got := auth.ReasonOf(err); got != reason {
		t.Fatalf("reason %s (%v), want %s", got, err, reason)
	}
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}
