package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"

	"github.com/frontgate/frontgate/test/cluster"
)

// issueLoopback issues a leaf certificate from ca for subject with the one
// extended key usage usage, valid for DNS localhost and IP 127.0.0.1, where
// every bench server listens.
func issueLoopback(ca *cluster.KeyPair, subject pkix.Name, usage x509.ExtKeyUsage) (*cluster.KeyPair, error) {
	return ca.Issue(subject, []x509.ExtKeyUsage{usage}, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
}

// benchPKI is every certificate of a local run.
type benchPKI struct {
	dir string
	// ca signs the serving certificates of the upstream, the bare proxy
	// and frontgate; caFile is its certificate.
	ca     *cluster.KeyPair
	caFile string
	// requestheaderCA signs the front-proxy client certificate; the
	// upstream verifies it when given, as kube-apiserver does.
	requestheaderCA *cluster.KeyPair
	// userCA signs the users' client certificates (frontgate
	// --client-ca-file).
	userCA     *cluster.KeyPair
	userCAFile string
	user       *cluster.KeyPair // CN=alice, O=devs

	servingCert, servingKey string // 127.0.0.1, for every server
	proxyCert, proxyKey     string // CN=frontgate, clientAuth
}

// newBenchPKI generates the certificates of a local run and writes the
// files the servers read into dir.
func newBenchPKI(dir string) (*benchPKI, error) {
	p := &benchPKI{dir: dir}
	var err error
	if p.ca, err = cluster.NewCA("bench serving CA"); err != nil {
		return nil, err
	}
	if p.requestheaderCA, err = cluster.NewCA("bench requestheader CA"); err != nil {
		return nil, err
	}
	if p.userCA, err = cluster.NewCA("bench user CA"); err != nil {
		return nil, err
	}
	if p.caFile, _, err = p.ca.Write(dir, "ca"); err != nil {
		return nil, err
	}
	if p.userCAFile, _, err = p.userCA.Write(dir, "user-ca"); err != nil {
		return nil, err
	}
	serving, err := issueLoopback(p.ca, pkix.Name{CommonName: "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	if p.servingCert, p.servingKey, err = serving.Write(dir, "serving"); err != nil {
		return nil, err
	}
	proxyClient, err := issueLoopback(p.requestheaderCA, pkix.Name{CommonName: "frontgate"}, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	if p.proxyCert, p.proxyKey, err = proxyClient.Write(dir, "proxy-client"); err != nil {
		return nil, err
	}
	if _, _, err = p.requestheaderCA.Write(dir, "requestheader-ca"); err != nil {
		return nil, err
	}
	if p.user, err = issueLoopback(p.userCA, pkix.Name{CommonName: "alice", Organization: []string{"devs"}}, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return p, nil
}
