package e2e

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
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/frontgate/frontgate/test/cluster"
)

// spiffeMapping maps an X.509-SVID's SPIFFE ID to a user and a group.
const spiffeMapping = `apiVersion: frontgate/v1alpha1
kind: ClientCertificateMapping
mappings:
- name: workloads
  cas: [spiffe]
  condition: cert.spiffeID.startsWith("spiffe://example.org/ns/")
  username: '"spiffe:" + cert.spiffeID.split("/")[6]'
  groups: '[cert.spiffeID.split("/")[4]]'
  uid: cert.spiffeID
  extra:
  - key: example.org/spiffe-id
    valueExpression: cert.spiffeID
`

// TestClientCertificateSPIFFE: a client certificate from the organisation's
// own CA whose SPIFFE URI SAN maps (CEL) to a user and a group reaches
// kube-apiserver as exactly that identity, seen by `kubectl auth whoami`; a
// certificate from another CA is refused with 401 and not forwarded.
func TestClientCertificateSPIFFE(t *testing.T) {
	need(t)
	dir := t.TempDir()
	caCert, caKey := newTestCA(t, "example.org SPIFFE CA")
	writePEM(t, filepath.Join(dir, "spiffe-ca.crt"), "CERTIFICATE", caCert.Raw)
	if err := os.WriteFile(filepath.Join(dir, "mapping.yaml"), []byte(spiffeMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	const spiffeID = "spiffe://example.org/ns/team-a/sa/ci"
	svid := issueClientCert(t, caCert, caKey, spiffeID)

	f := startFrontgate(t, cluster.FrontgateOptions{Args: append(slices.Clone(defaultArgs),
		"--client-ca-file", "spiffe="+filepath.Join(dir, "spiffe-ca.crt"),
		"--client-cert-mapping", filepath.Join(dir, "mapping.yaml"),
	)})

	got := kubectlWhoami(t, clientCertKubeconfig(t, f, dir, svid))
	if got.Username != "spiffe:ci" || !slices.Equal(got.Groups, []string{"team-a", "system:authenticated"}) ||
		got.UID != spiffeID || !slices.Equal(got.Extra["example.org/spiffe-id"], []string{spiffeID}) {
		t.Errorf("kube-apiserver saw %s, want spiffe:ci in team-a with uid and extra %s", fmtUser(got), spiffeID)
	}

	t.Run("a certificate from another CA is refused and not forwarded", func(t *testing.T) {
		otherCert, otherKey := newTestCA(t, "someone else's CA")
		foreign := issueClientCert(t, otherCert, otherKey, spiffeID)
		client := fgClient(t, f, false)
		client.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return foreign, nil
		}
		before := upstreamRequests(t, f)
		resp, _ := whoami(t, client, f.URL, nil)
		if resp.code != http.StatusUnauthorized {
			t.Errorf("HTTP %d, want 401: %s", resp.code, resp.body)
		}
		if upstreamRequests(t, f) != before {
			t.Error("the request reached kube-apiserver")
		}
	})
}

// newTestCA makes a CA valid for an hour that can sign certificates and
// revocation lists.
func newTestCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// issueClientCert issues a clientAuth certificate with a URI SAN.
func issueClientCert(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, uri string) *tls.Certificate {
	t.Helper()
	u, _ := url.Parse(uri)
	return issueCert(t, ca, caKey, &x509.Certificate{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, URIs: []*url.URL{u}})
}

// issueCert signs tmpl (valid for an hour, with a new key) with ca.
func issueCert(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, tmpl *x509.Certificate) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientCertKubeconfig writes a kubeconfig that reaches f with cert.
func clientCertKubeconfig(t *testing.T, f *cluster.Frontgate, dir string, cert *tls.Certificate) string {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(env.FrontgatePKIDir, "serving-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["frontgate"] = &clientcmdapi.Cluster{Server: f.URL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["svid"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}),
		ClientKeyData:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	cfg.Contexts["frontgate"] = &clientcmdapi.Context{Cluster: "frontgate", AuthInfo: "svid"}
	cfg.CurrentContext = "frontgate"
	path := filepath.Join(dir, "svid.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
