package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig with one cluster, user and context,
// all named name.
func writeKubeconfig(path, name, server, caFile string, user *clientcmdapi.AuthInfo) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[name] = user
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = name
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

// writeAdminKubeconfig writes the system:masters kubeconfig that talks to
// kube-apiserver directly.
func (c *Cluster) writeAdminKubeconfig() error {
	cert, err := os.ReadFile(c.pki.adminCert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(c.pki.adminKey)
	if err != nil {
		return err
	}
	c.AdminKubeconfig = filepath.Join(c.Dir, "kubeconfigs", "admin.kubeconfig")
	return writeKubeconfig(c.AdminKubeconfig, "e2e-admin", c.APIServerURL, c.CAFile,
		&clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key})
}

// WriteKubeconfig writes a kubeconfig at path that reaches kube-apiserver
// through this frontgate (trusting frontgate's serving CA) with token as
// bearer token. A relative path is taken inside the cluster's kubeconfigs
// directory. It returns the path written.
func (f *Frontgate) WriteKubeconfig(path, token string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(f.cluster.Dir, "kubeconfigs", path)
	}
	return path, writeKubeconfig(path, "frontgate", f.URL, f.cluster.frontgateFile("serving-ca.crt"),
		&clientcmdapi.AuthInfo{Token: token})
}
