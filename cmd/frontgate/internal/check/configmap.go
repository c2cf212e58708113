package check

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
)

// ConfigMap keys, as kube-apiserver writes them (JSON lists of strings,
// except the two PEM bundles).
const (
	KeyClientCA            = "client-ca-file"
	KeyRequestHeaderCA     = "requestheader-client-ca-file"
	KeyAllowedNames        = "requestheader-allowed-names"
	KeyUsernameHeaders     = "requestheader-username-headers"
	KeyGroupHeaders        = "requestheader-group-headers"
	KeyUIDHeaders          = "requestheader-uid-headers"
	KeyExtraHeadersPrefix  = "requestheader-extra-headers-prefix"
	configMapRef           = ConfigMapNamespace + "/" + ConfigMapName
	frontgateFlagsCommand  = "frontgate flags --config <frontgate's config> --requestheader-client-ca-file <CA path on the control plane>"
	kubeAPIServerFlagsHint = "kube-apiserver's flags (kubeadm: ClusterConfiguration apiServer.extraArgs; `" + frontgateFlagsCommand + "` prints them)"
)

// Cluster is what kube-apiserver published about its authentication.
// Entries are merged across every kube-apiserver of the cluster and never
// removed, so a list may hold names an older configuration used.
type Cluster struct {
	// ClientCA is --client-ca-file: CAs of ordinary client certificates.
	ClientCA []*x509.Certificate
	// RequestHeaderCA is --requestheader-client-ca-file.
	RequestHeaderCA []*x509.Certificate
	// AllowedNames is --requestheader-allowed-names; empty allows any CN.
	AllowedNames []string
	// The header names kube-apiserver reads the identity from.
	UsernameHeaders, GroupHeaders, UIDHeaders, ExtraHeaderPrefixes []string
}

// ParseConfigMap reads the data of kube-system/extension-apiserver-
// authentication. It returns nil, with an error finding, when kube-apiserver
// has no requestheader CA (so nothing else can be checked) or the data is
// malformed; else an OK finding naming the requestheader CAs.
func ParseConfigMap(data map[string]string) (*Cluster, []Finding) {
	const name = "requestheader-ca"
	pem := data[KeyRequestHeaderCA]
	if strings.TrimSpace(pem) == "" {
		return nil, []Finding{failure(name,
			"add --requestheader-client-ca-file (the CA that signed frontgate's proxy client certificate) and the other --requestheader-* flags to "+kubeAPIServerFlagsHint,
			"%s has no %s: kube-apiserver trusts no authenticating proxy, so it ignores every identity frontgate forwards", configMapRef, KeyRequestHeaderCA)}
	}
	c := &Cluster{}
	var errs []string
	var err error
	if c.RequestHeaderCA, err = pki.ParseCertificates(KeyRequestHeaderCA, []byte(pem)); err != nil {
		errs = append(errs, err.Error())
	}
	if ca := data[KeyClientCA]; strings.TrimSpace(ca) != "" {
		if c.ClientCA, err = pki.ParseCertificates(KeyClientCA, []byte(ca)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, l := range []struct {
		key  string
		dest *[]string
	}{
		{KeyAllowedNames, &c.AllowedNames},
		{KeyUsernameHeaders, &c.UsernameHeaders},
		{KeyGroupHeaders, &c.GroupHeaders},
		{KeyUIDHeaders, &c.UIDHeaders},
		{KeyExtraHeadersPrefix, &c.ExtraHeaderPrefixes},
	} {
		v := strings.TrimSpace(data[l.key])
		if v == "" {
			continue
		}
		if err := json.Unmarshal([]byte(v), l.dest); err != nil {
			errs = append(errs, fmt.Sprintf("%s is not a JSON list of strings: %v", l.key, err))
		}
	}
	if len(errs) > 0 {
		return nil, []Finding{failure("configmap",
			"compare "+configMapRef+" with what kube-apiserver writes (PEM bundles and JSON lists); delete it to make kube-apiserver write it anew",
			"%s is malformed: %s", configMapRef, strings.Join(errs, "; "))}
	}
	return c, []Finding{ok(name, "kube-apiserver trusts %d requestheader CA(s): %s", len(c.RequestHeaderCA), subjects(c.RequestHeaderCA))}
}

// subjects lists the certificates' subjects for a message.
func subjects(certs []*x509.Certificate) string {
	names := make([]string, len(certs))
	for i, c := range certs {
		names[i] = fmt.Sprintf("%q", c.Subject.String())
	}
	return strings.Join(names, ", ")
}
