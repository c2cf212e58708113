package clientcert

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/frontgate/frontgate/auth"
)

func TestParseCAFlag(t *testing.T) {
	tests := []struct {
		value, wantName, wantPath string
		wantErr                   bool
	}{
		{"corp=/etc/pki/ca.pem", "corp", "/etc/pki/ca.pem", false},
		{"/etc/pki/Corp-CA.pem", "corp-ca", "/etc/pki/Corp-CA.pem", false},
		{"spire-bundle.crt", "spire-bundle", "spire-bundle.crt", false},
		{"/etc/a=b/ca.pem", "ca", "/etc/a=b/ca.pem", false},
		{"/etc/pki/my_ca.pem", "", "", true},
		{"corp=", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			name, path, err := ParseCAFlag(tt.value)
			if (err != nil) != tt.wantErr || name != tt.wantName || path != tt.wantPath {
				t.Errorf("ParseCAFlag = (%q, %q, %v), want (%q, %q, error %v)", name, path, err, tt.wantName, tt.wantPath, tt.wantErr)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"10.0.0.0/8", " 192.0.2.1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v", got)
	}
	if _, err := ParseTrustedProxies([]string{"lb.example.com"}); err == nil || !strings.Contains(err.Error(), "--trusted-proxy-cidrs") {
		t.Errorf("error %v", err)
	}
}

func TestFilesLoad(t *testing.T) {
	dir := t.TempDir()
	corp := newCA(t, "corp root")
	corp2 := newCA(t, "corp root 2")
	spire := newCA(t, "spire")
	corpFile := writeFile(t, dir, "corp.pem", certPEM(corp.cert, corp2.cert))
	spireFile := writeFile(t, dir, "bundle.pem", certPEM(spire.cert))
	leafFile := writeFile(t, dir, "leaf.pem", certPEM(corp.leaf(t, pkix.Name{CommonName: "alice"}, nil)))
	mappingFile := writeFile(t, dir, "mapping.yaml", []byte(spiffeMapping+"- name: people\n  cas: [corp]\n  username: cert.subject.commonName\n"))
	revoked := corp2.leaf(t, pkix.Name{CommonName: "mallory"}, nil)
	crlPEM := writeFile(t, dir, "crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: corp2.crl(t, revoked).Raw}))
	crlDER := writeFile(t, dir, "crl.der", spire.crl(t).Raw)

	t.Run("everything", func(t *testing.T) {
		cfg, err := Files{CAFiles: []string{corpFile, "spiffe=" + spireFile}, CRLFiles: []string{crlPEM, crlDER}, MappingFile: mappingFile}.Load()
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.CAs) != 2 || cfg.CAs[0].Name != "corp" || len(cfg.CAs[0].Certificates) != 2 || cfg.CAs[1].Name != "spiffe" {
			t.Errorf("CAs %+v", cfg.CAs)
		}
		if len(cfg.CRLs) != 2 || cfg.Mapping == nil {
			t.Fatalf("CRLs %d, mapping %v", len(cfg.CRLs), cfg.Mapping)
		}
		cfg.Now = clock
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Both certificates of the bundle are anchors of "corp".
		id, ok, err := a.AuthenticateRequest(tlsRequest(corp2.leaf(t, pkix.Name{CommonName: "bob"}, nil)))
		if !ok || id.Name != "bob" || id.Source != "client-certificate:people" {
			t.Errorf("got (%+v, %v, %v)", id, ok, err)
		}
		id, ok, err = a.AuthenticateRequest(tlsRequest(revoked))
		wantRefused(t, id, ok, err, auth.ReasonCertificateRevoked)
	})
	errorTests := []struct {
		name  string
		files Files
		want  string
	}{
		{"no CA", Files{}, "--client-ca-file: at least one"},
		{"missing CA file", Files{CAFiles: []string{filepath.Join(dir, "nope.pem")}}, "--client-ca-file"},
		{"same name twice", Files{CAFiles: []string{corpFile, "corp=" + spireFile}}, `two files are named "corp"`},
		{"leaf in the CA file", Files{CAFiles: []string{leafFile}}, "not a CA certificate"},
		{"not PEM", Files{CAFiles: []string{mappingFile}}, "not PEM"},
		{"key in the CA file", Files{CAFiles: []string{writeFile(t, dir, "key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))}}, `"PRIVATE KEY"`},
		{"missing CRL", Files{CAFiles: []string{corpFile}, CRLFiles: []string{filepath.Join(dir, "nope.crl")}}, "--client-crl-file"},
		{"CRL file with a certificate", Files{CAFiles: []string{corpFile}, CRLFiles: []string{corpFile}}, "only X509 CRL blocks"},
		{"CRL not DER", Files{CAFiles: []string{corpFile}, CRLFiles: []string{writeFile(t, dir, "junk.crl", []byte("junk"))}}, "--client-crl-file"},
		{"mapping names an absent CA", Files{CAFiles: []string{corpFile}, MappingFile: mappingFile}, `--client-cert-mapping`},
	}
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.files.Load()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	corp := newCA(t, "corp")
	other := newCA(t, "other")
	// A CRL that claims to come from corp but is signed by another key.
	forged := (&testCA{cert: corp.cert, key: other.key}).crl(t)
	notCA := corp.leaf(t, pkix.Name{CommonName: "alice"}, nil)
	m := mustMapping(t, head+"mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n", "corp")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no CA", Config{}, "at least one CA"},
		{"CA without certificates", Config{CAs: []CA{{Name: "corp"}}}, "has no certificate"},
		{"bad CA name", Config{CAs: []CA{corp.named("Corp CA")}}, "CA name"},
		{"duplicate CA name", Config{CAs: []CA{corp.named("corp"), other.named("corp")}}, "two CAs"},
		{"leaf as a CA", Config{CAs: []CA{{Name: "corp", Certificates: []*x509.Certificate{notCA}}}}, "not a CA certificate"},
		{"mapping names a missing CA", Config{CAs: []CA{other.named("other")}, Mapping: m}, `CA "corp", which is not configured`},
		{"CA unused by the mapping", Config{CAs: []CA{corp.named("corp"), other.named("other")}, Mapping: m}, `CA "other" is named by no mapping entry`},
		{"forged CRL of a configured CA", Config{CAs: []CA{corp.named("corp")}, CRLs: []*x509.RevocationList{forged}}, "not signed"},
		{"trusting every IPv4 address", Config{CAs: []CA{corp.named("corp")}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, "covers every address"},
		{"trusting every IPv6 address", Config{CAs: []CA{corp.named("corp")}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::/0")}}, "covers every address"},
		{"invalid prefix", Config{CAs: []CA{corp.named("corp")}, TrustedProxies: []netip.Prefix{{}}}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	old := newCA(t, "old")
	repl := newCA(t, "new")
	a := mustNew(t, Config{CAs: []CA{old.named("corp")}})
	fromOld := tlsRequest(old.leaf(t, pkix.Name{CommonName: "alice"}, nil))
	fromNew := tlsRequest(repl.leaf(t, pkix.Name{CommonName: "bob"}, nil))
	if _, ok, _ := a.AuthenticateRequest(fromOld); !ok {
		t.Fatal("old CA refused")
	}
	if err := a.Update(Config{}); err == nil {
		t.Fatal("an invalid configuration was accepted")
	}
	if _, ok, _ := a.AuthenticateRequest(fromOld); !ok {
		t.Fatal("a failed update changed the configuration")
	}
	if err := a.Update(Config{CAs: []CA{repl.named("corp")}, Now: clock}); err != nil {
		t.Fatal(err)
	}
	id, ok, err := a.AuthenticateRequest(fromOld)
	wantRefused(t, id, ok, err, auth.ReasonUnknownAuthority)
	if _, ok, err := a.AuthenticateRequest(fromNew); !ok {
		t.Fatalf("new CA refused: %v", err)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "corp")
	caFile := writeFile(t, dir, "corp.pem", certPEM(ca.cert))
	mapping := func(prefix string) []byte {
		return []byte(head + "mappings:\n- name: a\n  cas: [corp]\n  username: '\"" + prefix + "\" + cert.subject.commonName'\n")
	}
	mappingFile := writeFile(t, dir, "mapping.yaml", mapping("v1:"))
	files := Files{CAFiles: []string{caFile}, MappingFile: mappingFile}
	cfg, err := files.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = clock
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	a := mustNew(t, cfg)
	leaf := ca.leaf(t, pkix.Name{CommonName: "alice"}, nil)
	name := func() string {
		id, ok, err := a.AuthenticateRequest(headerRequest("10.1.2.3:4", leaf))
		if !ok {
			t.Fatalf("refused: %v", err)
		}
		return id.Name
	}
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for name() != want {
			if time.Now().After(deadline) {
				t.Fatalf("name %q, want %q", name(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	waitFor("v1:alice")
	writeFile(t, dir, "mapping.yaml", mapping("v2:"))
	if err := a.Reload(files); err != nil {
		t.Fatal(err)
	}
	waitFor("v2:alice") // trusted proxies and the clock survive the reload

	writeFile(t, dir, "mapping.yaml", []byte(head+"mappings:\n- name: a\n  cas: [corp]\n  username: cert.nope\n"))
	if err := a.Reload(files); err == nil {
		t.Fatal("an invalid mapping was accepted")
	}
	if got := name(); got != "v2:alice" {
		t.Fatalf("an invalid file replaced the configuration: %q", got)
	}
	os.Remove(mappingFile)
	if err := a.Reload(files); err == nil {
		t.Fatal("a missing mapping file was accepted")
	}
	if got := name(); got != "v2:alice" {
		t.Fatalf("a missing file replaced the configuration: %q", got)
	}
	paths, err := files.Paths()
	if err != nil || len(paths) != 2 || paths[1] != mappingFile {
		t.Fatalf("Paths() = %q, %v", paths, err)
	}
}

func TestTLSConfig(t *testing.T) {
	ca := newCA(t, "corp")
	a := mustNew(t, Config{CAs: []CA{ca.named("corp")}})
	base := &tls.Config{MinVersion: tls.VersionTLS13, ClientAuth: tls.RequireAndVerifyClientCert}
	c := a.TLSConfig(base)
	if c.ClientAuth != tls.RequestClientCert || c.MinVersion != tls.VersionTLS13 || c.ClientCAs == nil {
		t.Errorf("config %+v", c)
	}
	if base.ClientAuth != tls.RequireAndVerifyClientCert || base.ClientCAs != nil {
		t.Error("base was modified")
	}
	if c := a.TLSConfig(nil); c.ClientAuth != tls.RequestClientCert || c.MinVersion < tls.VersionTLS12 {
		t.Errorf("config from nil %+v", c)
	}
}

// TestListener runs a real TLS listener: a client without a certificate
// still connects (token users), one with a certificate is authenticated,
// and one from another CA is refused by the authenticator, not the
// handshake.
func TestListener(t *testing.T) {
	ca := newCA(t, "corp")
	other := newCA(t, "other")
	a := mustNew(t, Config{CAs: []CA{ca.named("corp")}})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok, err := a.AuthenticateRequest(r)
		switch {
		case ok:
			io.WriteString(w, "user "+id.Name)
		case err != nil:
			io.WriteString(w, "refused "+auth.ReasonOf(err))
		default:
			io.WriteString(w, "anonymous")
		}
	}))
	srv.TLS = a.TLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})
	srv.StartTLS()
	defer srv.Close()

	clientCert := func(issuer *testCA) []tls.Certificate {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serials.Add(1)),
			Subject:      pkix.Name{CommonName: "alice"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		leaf := issuer.sign(t, tmpl, key)
		return []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}}
	}
	tests := []struct {
		name  string
		certs []tls.Certificate
		want  string
	}{
		{"no certificate", nil, "anonymous"},
		{"certificate from the CA", clientCert(ca), "user alice"},
		// crypto/tls clients send no certificate whose issuer is not
		// advertised; a client that sends it anyway is refused.
		{"certificate from another CA", clientCert(other), "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.TLSClientConfig.Certificates = tt.certs
			resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tt.want {
				t.Errorf("got %q, want %q", body, tt.want)
			}
		})
	}
	t.Run("a client that sends a foreign certificate anyway", func(t *testing.T) {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		foreign := clientCert(other)[0]
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if want := "refused " + auth.ReasonUnknownAuthority; string(body) != want {
			t.Errorf("got %q, want %q", body, want)
		}
	})
}
