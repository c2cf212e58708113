package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// keyPair is a certificate and its key.
type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newCA(cn string) (*keyPair, error) {
	return issue(nil, &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	})
}

// leaf issues a P-256 leaf certificate from ca.
func (ca *keyPair) leaf(subject pkix.Name, usage x509.ExtKeyUsage) (*keyPair, error) {
	return issue(ca, &x509.Certificate{
		Subject:     subject,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
}

func issue(ca *keyPair, tmpl *x509.Certificate) (*keyPair, error) {
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
		parent, parentKey = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

func (kp *keyPair) tls() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{kp.cert.Raw}, PrivateKey: kp.key, Leaf: kp.cert}
}

// write stores the certificate as name.crt and the key as name.key in dir.
func (kp *keyPair) write(dir, name string) (certFile, keyFile string, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(kp.key)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.cert.Raw}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// benchPKI is every certificate of a local run.
type benchPKI struct {
	dir string
	// ca signs the serving certificates of the upstream, the bare proxy
	// and frontgate; caFile is its certificate.
	ca     *keyPair
	caFile string
	// requestheaderCA signs the front-proxy client certificate; the
	// upstream verifies it when given, as kube-apiserver does.
	requestheaderCA *keyPair
	// userCA signs the users' client certificates (frontgate
	// --client-ca-file).
	userCA     *keyPair
	userCAFile string
	user       *keyPair // CN=alice, O=devs

	servingCert, servingKey string // 127.0.0.1, for every server
	proxyCert, proxyKey     string // CN=frontgate, clientAuth
}

func newBenchPKI(dir string) (*benchPKI, error) {
	p := &benchPKI{dir: dir}
	var err error
	if p.ca, err = newCA("bench serving CA"); err != nil {
		return nil, err
	}
	if p.requestheaderCA, err = newCA("bench requestheader CA"); err != nil {
		return nil, err
	}
	if p.userCA, err = newCA("bench user CA"); err != nil {
		return nil, err
	}
	if p.caFile, _, err = p.ca.write(dir, "ca"); err != nil {
		return nil, err
	}
	if p.userCAFile, _, err = p.userCA.write(dir, "user-ca"); err != nil {
		return nil, err
	}
	serving, err := p.ca.leaf(pkix.Name{CommonName: "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	if p.servingCert, p.servingKey, err = serving.write(dir, "serving"); err != nil {
		return nil, err
	}
	proxyClient, err := p.requestheaderCA.leaf(pkix.Name{CommonName: "frontgate"}, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	if p.proxyCert, p.proxyKey, err = proxyClient.write(dir, "proxy-client"); err != nil {
		return nil, err
	}
	if _, _, err = p.requestheaderCA.write(dir, "requestheader-ca"); err != nil {
		return nil, err
	}
	if p.user, err = p.userCA.leaf(pkix.Name{CommonName: "alice", Organization: []string{"devs"}}, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *benchPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.cert)
	return pool
}
