package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
)

func newPKICommand(d deps) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Make the certificates frontgate and kube-apiserver need",
	}
	cmd.AddCommand(newPKIInitCommand(d))
	return cmd
}

func newPKIInitCommand(d deps) *cobra.Command {
	var (
		dir, commonName, keyType string
		hosts                    []string
		caValidity, validity     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a requestheader CA, a proxy client certificate and a serving certificate",
		Long: `init writes into --dir:

  requestheader-ca.crt, .key   the CA kube-apiserver trusts for identity headers
                               (its --requestheader-client-ca-file)
  proxy-client.crt, .key       frontgate's client certificate, signed by that CA
                               (CN from --cn, extended key usage clientAuth)
  serving-ca.crt, .key         a separate CA for frontgate's listener
  serving.crt, .key            frontgate's serving certificate (SANs from --hosts)

Keys are written 0600. Existing files are never overwritten. Keep the
requestheader CA's key offline: any certificate it signs with an allowed CN
can assert any identity to kube-apiserver, as cluster-admin can.`,
		Example: `  frontgate pki init --dir ./pki --hosts frontgate.example.com,10.0.0.7
  frontgate pki init --dir ./pki --hosts localhost,127.0.0.1 --key-type rsa`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--dir is required: the directory to write the certificates into")
			}
			if len(hosts) == 0 {
				return errors.New("--hosts is required: the DNS names and IP addresses clients use to reach frontgate")
			}
			if commonName == "" {
				return errors.New("--cn must not be empty: kube-apiserver's --requestheader-allowed-names matches it")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			for _, name := range []string{"requestheader-ca", "proxy-client", "serving-ca", "serving"} {
				for _, ext := range []string{".crt", ".key"} {
					if _, err := os.Stat(filepath.Join(dir, name+ext)); err == nil {
						return fmt.Errorf("%s already exists; frontgate pki init never overwrites files: choose another --dir or remove it", filepath.Join(dir, name+ext))
					}
				}
			}
			issue := func(ca *pki.Pair, req pki.Request) (*pki.Pair, error) {
				key, err := pki.NewKey(keyType)
				if err != nil {
					return nil, err
				}
				if ca == nil {
					return pki.NewCA(req.CommonName, key, caValidity)
				}
				return ca.Issue(req, key)
			}
			requestheaderCA, err := issue(nil, pki.Request{CommonName: "frontgate requestheader CA"})
			if err != nil {
				return err
			}
			client, err := issue(requestheaderCA, pki.Request{CommonName: commonName, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: validity})
			if err != nil {
				return err
			}
			servingCA, err := issue(nil, pki.Request{CommonName: "frontgate serving CA"})
			if err != nil {
				return err
			}
			serving, err := issue(servingCA, pki.Request{CommonName: hosts[0], Hosts: hosts, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: validity})
			if err != nil {
				return err
			}
			for name, pair := range map[string]*pki.Pair{"requestheader-ca": requestheaderCA, "proxy-client": client, "serving-ca": servingCA, "serving": serving} {
				if err := pair.Write(dir, name); err != nil {
					return err
				}
			}
			p := func(name string) string { return filepath.Join(dir, name) }
			fmt.Fprintf(d.stdout, `Wrote %s, %s, %s and %s (with their .key files) in %s.

Next:
  1. Copy %s to the control plane and print kube-apiserver's flags for it:
       frontgate flags --requestheader-client-ca-file /etc/kubernetes/pki/frontgate-requestheader-ca.crt --proxy-client-cert-file %s
  2. Start frontgate:
       frontgate serve --upstream https://KUBE-APISERVER:6443 --upstream-ca-file CLUSTER-CA.crt \
         --proxy-client-cert-file %s --proxy-client-key-file %s \
         --tls-cert-file %s --tls-private-key-file %s \
         --oidc-issuer-url https://ISSUER --oidc-client-id CLIENT-ID
  3. Give kubectl users %s as the cluster's certificate-authority.
`, "requestheader-ca.crt", "proxy-client.crt", "serving-ca.crt", "serving.crt", dir,
				p("requestheader-ca.crt"), p("proxy-client.crt"),
				p("proxy-client.crt"), p("proxy-client.key"), p("serving.crt"), p("serving.key"), p("serving-ca.crt"))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write into (created if missing)")
	cmd.Flags().StringSliceVar(&hosts, "hosts", nil, "DNS names and IP addresses of frontgate for the serving certificate, comma-separated")
	cmd.Flags().StringVar(&commonName, "cn", "frontgate", "CN of the proxy client certificate, which kube-apiserver's --requestheader-allowed-names must list")
	cmd.Flags().StringVar(&keyType, "key-type", "ecdsa", "key type: ecdsa (P-256) or rsa (3072 bits)")
	cmd.Flags().DurationVar(&caValidity, "ca-validity", 10*365*24*time.Hour, "validity of the two CAs")
	cmd.Flags().DurationVar(&validity, "validity", 365*24*time.Hour, "validity of the client and serving certificates")
	return cmd
}
