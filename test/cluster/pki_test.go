package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"testing"
	"time"
)

func TestKeyPair(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "test CA" || ca.Cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageDigitalSignature {
		t.Fatalf("CA certificate: IsCA %v, subject %v, key usage %v", ca.Cert.IsCA, ca.Cert.Subject, ca.Cert.KeyUsage)
	}
	leaf, err := ca.Issue(pkix.Name{CommonName: "alice", Organization: []string{"devs"}},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := leaf.Key.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("leaf key %T, want ECDSA P-256", leaf.Key)
	}
	if leaf.Cert.IsCA || leaf.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("leaf: IsCA %v, key usage %v", leaf.Cert.IsCA, leaf.Cert.KeyUsage)
	}
	if d := leaf.Cert.NotAfter.Sub(leaf.Cert.NotBefore); d != 7*24*time.Hour+time.Hour {
		t.Errorf("leaf validity %v", d)
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: ca.CertPool()}); err != nil {
		t.Errorf("leaf does not verify against its CA's pool: %v", err)
	}
	if err := leaf.Cert.VerifyHostname("localhost"); err != nil {
		t.Error(err)
	}

	dir := t.TempDir()
	certFile, keyFile, err := leaf.Write(dir, "leaf")
	if err != nil {
		t.Fatal(err)
	}
	for file, mode := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^mode != 0 {
			t.Errorf("%s: mode %v, want at most %v", file, fi.Mode().Perm(), mode)
		}
	}
	loaded, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.TLSCertificate(); !got.Leaf.Equal(leaf.Cert) || string(got.Certificate[0]) != string(loaded.Certificate[0]) {
		t.Error("TLSCertificate does not hold the certificate Write stored")
	}
}
