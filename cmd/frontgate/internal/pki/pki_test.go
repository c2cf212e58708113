package pki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewKey(t *testing.T) {
	tests := []struct {
		keyType string
		check   func(any) bool
		wantErr bool
	}{
		{"", func(k any) bool { _, ok := k.(*ecdsa.PrivateKey); return ok }, false},
		{"ecdsa", func(k any) bool { _, ok := k.(*ecdsa.PrivateKey); return ok }, false},
		{"rsa", func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 3072 }, false},
		{"dsa", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.keyType, func(t *testing.T) {
			key, err := NewKey(tt.keyType)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && !tt.check(key) {
				t.Errorf("key %T is not what %q asks for", key, tt.keyType)
			}
		})
	}
}

func TestIssueWriteRead(t *testing.T) {
	caKey, _ := NewKey("ecdsa")
	ca, err := NewCA("test CA", caKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewKey("rsa")
	leaf, err := ca.Issue(Request{CommonName: "frontgate", Hosts: []string{"localhost", "127.0.0.1"}, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: time.Hour}, key)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Cert.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
		t.Error("an RSA leaf lacks keyEncipherment")
	}
	if len(leaf.Cert.DNSNames) != 1 || len(leaf.Cert.IPAddresses) != 1 {
		t.Errorf("SANs: DNS %v IP %v", leaf.Cert.DNSNames, leaf.Cert.IPAddresses)
	}
	dir := t.TempDir()
	if err := leaf.Write(dir, "leaf"); err != nil {
		t.Fatal(err)
	}
	if err := leaf.Write(dir, "leaf"); err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Errorf("second Write: %v, want a refusal to overwrite", err)
	}
	info, _ := os.Stat(filepath.Join(dir, "leaf.key"))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", info.Mode().Perm())
	}
	pool, err := Pool(filepath.Join(dir, "leaf.crt"))
	if err != nil || pool == nil {
		t.Fatalf("Pool: %v", err)
	}
	certs, err := ReadCertificates(filepath.Join(dir, "leaf.crt"))
	if err != nil || len(certs) != 1 || certs[0].Subject.CommonName != "frontgate" {
		t.Fatalf("ReadCertificates = %v, %v", certs, err)
	}
	if _, err := ReadCertificates(filepath.Join(dir, "leaf.key")); err == nil {
		t.Error("a key file was read as certificates")
	}
	if _, err := ReadCertificates(filepath.Join(dir, "missing.crt")); err == nil {
		t.Error("a missing file was read")
	}
}
