package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
	"github.com/frontgate/frontgate/proxy"
)

// apiserverFlag is one kube-apiserver flag.
type apiserverFlag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func newFlagsCommand(d deps) *cobra.Command {
	o := newServeOptions(d.getenv)
	var caFile, format string
	cmd := &cobra.Command{
		Use:   "flags",
		Short: "Print the kube-apiserver flags that make it trust this frontgate",
		Long: `flags prints the --requestheader-* flags kube-apiserver needs to accept the
identities frontgate forwards: the CA that signed frontgate's proxy client
certificate, that certificate's CN as the only allowed name, and header names
matching frontgate's. It reads the same flags and --config file as serve, so
one file drives both. Warnings go to stderr, flags to stdout.`,
		Example: `  # The CA path is where kube-apiserver will read it:
  frontgate flags --requestheader-client-ca-file /etc/kubernetes/pki/frontgate-ca.crt \
    --proxy-client-cert-file pki/proxy-client.crt

  # As a kubeadm ClusterConfiguration snippet, using serve's config file:
  frontgate flags --config frontgate.yaml --requestheader-client-ca-file /etc/kubernetes/pki/frontgate-ca.crt --format kubeadm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.configFile != "" {
				if err := applyConfigFile(cmd.Flags(), o.configFile); err != nil {
					return err
				}
			}
			if caFile == "" {
				return errors.New("--requestheader-client-ca-file is required: give the path of the CA that signed --proxy-client-cert-file, as kube-apiserver will see it")
			}
			if o.proxyClientCertFile == "" {
				return errors.New("--proxy-client-cert-file is required: its CN becomes --requestheader-allowed-names")
			}
			names := o.headerNames()
			if err := names.Validate(); err != nil {
				return err
			}
			certs, err := pki.ReadCertificates(o.proxyClientCertFile)
			if err != nil {
				return fmt.Errorf("--proxy-client-cert-file: %w", err)
			}
			warnAboutProxyCert(d.stderr, certs, caFile)
			return printAPIServerFlags(d.stdout, format, apiserverFlags(caFile, certs[0].Subject.CommonName, names))
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&caFile, "requestheader-client-ca-file", "", "path of the CA that signed --proxy-client-cert-file, as kube-apiserver will read it")
	cmd.Flags().StringVar(&format, "format", "args", "output: args (one flag per line), kubeadm (ClusterConfiguration v1beta4 snippet) or json")
	return cmd
}

// apiserverFlags returns the flags for kube-apiserver, in a stable order.
func apiserverFlags(caFile, commonName string, names proxy.HeaderNames) []apiserverFlag {
	flags := []apiserverFlag{
		{"requestheader-client-ca-file", caFile},
		{"requestheader-allowed-names", commonName},
		{"requestheader-username-headers", strings.Join(names.Username, ",")},
		{"requestheader-group-headers", strings.Join(names.Group, ",")},
	}
	if len(names.UID) > 0 {
		flags = append(flags, apiserverFlag{"requestheader-uid-headers", strings.Join(names.UID, ",")})
	}
	return append(flags, apiserverFlag{"requestheader-extra-headers-prefix", strings.Join(names.ExtraPrefix, ",")})
}

func printAPIServerFlags(w io.Writer, format string, flags []apiserverFlag) error {
	switch format {
	case "args":
		for _, f := range flags {
			if _, err := fmt.Fprintf(w, "--%s=%s\n", f.Name, f.Value); err != nil {
				return err
			}
		}
		return nil
	case "json":
		out, err := json.MarshalIndent(flags, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	case "kubeadm":
		out, err := yaml.Marshal(map[string]any{
			"apiVersion": "kubeadm.k8s.io/v1beta4",
			"kind":       "ClusterConfiguration",
			"apiServer":  map[string]any{"extraArgs": flags},
		})
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	default:
		return fmt.Errorf("--format %q: use args, kubeadm or json", format)
	}
}

// warnAboutProxyCert tells the operator, on stderr, what would make
// kube-apiserver refuse frontgate's certificate or trust it too widely.
func warnAboutProxyCert(w io.Writer, chain []*x509.Certificate, caFile string) {
	leaf := chain[0]
	if err := proxy.CheckClientCertificate(leaf); err != nil {
		fmt.Fprintf(w, "warning: the proxy client certificate will not work: %v\n", err)
	}
	if leaf.Subject.CommonName == "" {
		fmt.Fprintln(w, "warning: --requestheader-allowed-names would be empty, so kube-apiserver would accept identity headers from ANY certificate its CA signed")
	}
	roots, err := pki.Pool(caFile)
	if err != nil {
		fmt.Fprintf(w, "note: cannot read %s here (%v), so the certificate's chain was not checked; run this where the CA file is, or trust it is the CA that signed %q\n", caFile, err, leaf.Subject.CommonName)
		return
	}
	intermediates := x509.NewCertPool()
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		fmt.Fprintf(w, "warning: the proxy client certificate does not chain to %s with clientAuth: %v; kube-apiserver will ignore frontgate's headers\n", caFile, err)
	}
}
