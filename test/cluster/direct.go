package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"os"
	"path/filepath"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// directCert issues a client certificate from kube-apiserver's
// --client-ca-file CA: kube-apiserver authenticates it as username (CN) with
// groups (O), without frontgate and without impersonation.
func (c *Cluster) directCert(username string, groups []string) (*KeyPair, error) {
	return c.pki.ca.Issue(pkix.Name{CommonName: username, Organization: groups},
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil)
}

// DirectHTTPClient returns an HTTP client that talks to kube-apiserver
// directly, authenticated by a client certificate as username with groups:
// the reference to compare frontgate's answers with when impersonation
// cannot be used (for example to test impersonation itself).
func (c *Cluster) DirectHTTPClient(username string, groups ...string) (*http.Client, error) {
	kp, err := c.directCert(username, groups)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: c.pki.ca.CertPool(), Certificates: []tls.Certificate{kp.TLSCertificate()}},
			ForceAttemptHTTP2: true,
		},
	}, nil
}

// WriteDirectKubeconfig writes a kubeconfig at path that talks to
// kube-apiserver directly with a client certificate for username and groups
// (see [Cluster.DirectHTTPClient]). A relative path is taken inside the
// cluster's kubeconfigs directory. It returns the path written.
func (c *Cluster) WriteDirectKubeconfig(path, username string, groups ...string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(c.Dir, "kubeconfigs", path)
	}
	kp, err := c.directCert(username, groups)
	if err != nil {
		return "", err
	}
	keyPEM, err := kp.keyPEM()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return path, writeKubeconfig(path, "direct", c.APIServerURL, c.CAFile,
		&clientcmdapi.AuthInfo{ClientCertificateData: kp.certPEM(), ClientKeyData: keyPEM})
}
