package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KeyPair is an X.509 certificate and its private key, for the throwaway
// PKIs of tests and benchmarks. [NewCA] makes a CA; [KeyPair.Issue] signs
// leaf certificates with it.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer // ECDSA P-256
}

// NewCA returns a self-signed CA certificate with common name cn (key usages
// certSign and digitalSignature, no path length limit) and a new P-256 key,
// valid from an hour ago for seven days.
func NewCA(cn string) (*KeyPair, error) {
	return sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil)
}

// Issue returns a leaf certificate signed by ca for subject, with a new
// P-256 key, key usage digitalSignature, the extended key usages usage and
// the subject alternative names dnsNames and ips (either may be nil), valid
// from an hour ago for seven days.
func (ca *KeyPair) Issue(subject pkix.Name, usage []x509.ExtKeyUsage, dnsNames []string, ips []net.IP) (*KeyPair, error) {
	return sign(&x509.Certificate{
		Subject:     subject,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: usage,
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}, ca)
}

// sign completes tmpl (serial number, validity), generates its P-256 key and
// signs it with ca, or with that key itself when ca is nil.
func sign(tmpl *x509.Certificate, ca *KeyPair) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(7 * 24 * time.Hour)
	parent, parentKey := tmpl, crypto.Signer(key)
	if ca != nil {
		parent, parentKey = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

func (kp *KeyPair) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.Cert.Raw})
}

func (kp *KeyPair) keyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(kp.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Write stores the pair as PEM files in dir: the certificate as name.crt
// (mode 0644) and the PKCS#8 key as name.key (mode 0600). It returns their
// paths.
func (kp *KeyPair) Write(dir, name string) (certFile, keyFile string, err error) {
	keyPEM, err := kp.keyPEM()
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, kp.certPEM(), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// TLSCertificate returns the pair for a [tls.Config]'s Certificates (leaf
// parsed, no chain).
func (kp *KeyPair) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key, Leaf: kp.Cert}
}

// CertPool returns a pool holding only this certificate, for a
// [tls.Config]'s RootCAs when kp is a CA.
func (kp *KeyPair) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(kp.Cert)
	return pool
}

// clusterPKI are the files of the cluster's own PKI (not frontgate's).
type clusterPKI struct {
	ca                   *KeyPair
	caFile               string // CA of the serving cert and of client certs (--client-ca-file)
	servingCert          string
	servingKey           string
	adminCert            string
	adminKey             string
	serviceAccountKey    string // RSA private key, PKCS#8
	serviceAccountPubKey string
	kubeletClientCert    string // kube-apiserver's client certificate towards kubelets
	kubeletClientKey     string
}

// writeClusterPKI generates kube-apiserver's PKI into dir: one CA for its
// serving certificate (127.0.0.1, ::1, localhost) and its client
// certificates, an admin client certificate (CN e2e-admin, O system:masters),
// kube-apiserver's client certificate for kubelets and the service-account
// signing key.
func writeClusterPKI(dir string) (*clusterPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := NewCA("frontgate-e2e-cluster-ca")
	if err != nil {
		return nil, err
	}
	p := &clusterPKI{ca: ca, caFile: filepath.Join(dir, "ca.crt")}
	if err := os.WriteFile(p.caFile, ca.certPEM(), 0o644); err != nil {
		return nil, err
	}
	serving, err := ca.Issue(pkix.Name{CommonName: "kube-apiserver"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.0.0.1")})
	if err != nil {
		return nil, err
	}
	if p.servingCert, p.servingKey, err = serving.Write(dir, "apiserver"); err != nil {
		return nil, err
	}
	admin, err := ca.Issue(pkix.Name{CommonName: "e2e-admin", Organization: []string{"system:masters"}},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil)
	if err != nil {
		return nil, err
	}
	if p.adminCert, p.adminKey, err = admin.Write(dir, "admin"); err != nil {
		return nil, err
	}
	kubeletClient, err := ca.Issue(pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil)
	if err != nil {
		return nil, err
	}
	if p.kubeletClientCert, p.kubeletClientKey, err = kubeletClient.Write(dir, "apiserver-kubelet-client"); err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	p.serviceAccountKey = filepath.Join(dir, "sa.key")
	if err := os.WriteFile(p.serviceAccountKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p.serviceAccountPubKey = filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(p.serviceAccountPubKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

// certPool reads a PEM bundle into a pool.
func certPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return pool, nil
}
