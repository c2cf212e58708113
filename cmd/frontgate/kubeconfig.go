package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/kubeconfig"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
	"github.com/frontgate/frontgate/proxy"
)

// kubeconfigInstallHint is what kubectl prints when frontgate is missing.
const kubeconfigInstallHint = `This cluster is reached through frontgate, which needs the frontgate
command to log you in. Install the frontgate binary for your platform and put
it on your PATH, then run kubectl again.`

// kubeconfigOptions are the flags of `frontgate kubeconfig`.
type kubeconfigOptions struct {
	from, server, caFile                     string
	issuerURL, clientID, issuerCAFile, grant string
	scopes, loginArgs                        []string
	cluster, user, context                   string
	output, command                          string
	setCurrent                               bool
	timeout                                  time.Duration
}

func (o *kubeconfigOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.from, "from", o.from, "frontgate's https URL: read the issuer, client ID, scopes and CA from its discovery document ("+proxy.DiscoveryPath+"); the server defaults to it")
	fs.StringVar(&o.server, "server", o.server, "frontgate's https URL as kubectl should use it (default: --from)")
	fs.StringVar(&o.caFile, "certificate-authority", o.caFile, "CA bundle that verifies frontgate's certificate: used for --from and embedded in the kubeconfig (default: the discovery document's bundle, else system roots)")
	fs.StringVar(&o.issuerURL, "issuer-url", o.issuerURL, "OpenID issuer for login (required without --from; with --from, chooses among several)")
	fs.StringVar(&o.clientID, "client-id", o.clientID, "OAuth client ID for login (required without --from)")
	fs.StringSliceVar(&o.scopes, "scopes", o.scopes, "scopes for login besides openid (default: the discovery document's, else login's default)")
	fs.StringVar(&o.grant, "grant", o.grant, "login grant: auth-code or device (default: login's, auth-code)")
	fs.StringVar(&o.issuerCAFile, "issuer-ca-file", o.issuerCAFile, "CA bundle of the issuer, passed to login as --ca-file (made absolute)")
	// An array, not a slice: each value is one argument, commas included
	// (--login-arg=--listen=127.0.0.1:8000,127.0.0.1:18000).
	fs.StringArrayVar(&o.loginArgs, "login-arg", o.loginArgs, "extra argument for 'frontgate login', e.g. --login-arg=--no-browser; repeatable, one argument each (commas are kept)")
	fs.StringVar(&o.cluster, "cluster", o.cluster, "cluster entry name (default: frontgate's host name)")
	fs.StringVar(&o.user, "user", o.user, "user entry name (default: oidc@<host name>)")
	fs.StringVar(&o.context, "context", o.context, "context entry name (default: frontgate's host name)")
	fs.StringVarP(&o.output, "output", "o", o.output, "kubeconfig to write or merge into; - prints a new one to stdout (default: the first file in $KUBECONFIG, else ~/.kube/config)")
	fs.BoolVar(&o.setCurrent, "set-current-context", o.setCurrent, "make the context the current one")
	fs.StringVar(&o.command, "exec-command", o.command, "command kubectl runs to log in: frontgate on the PATH, or an absolute path")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the discovery document")
}

func newKubeconfigCommand(d deps) *cobra.Command {
	o := &kubeconfigOptions{setCurrent: true, command: "frontgate", timeout: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Write a kubeconfig that reaches kube-apiserver through frontgate",
		Long: `kubeconfig writes a cluster (frontgate's URL and CA), a user that runs
'frontgate login' as an exec credential plugin (interactiveMode IfAvailable,
with an install hint), and a context joining them. It merges them into an
existing kubeconfig, replacing entries of the same names and leaving every
other one alone, or prints a new kubeconfig with --output -.

With --from, everything comes from the running frontgate's discovery document
(` + proxy.DiscoveryPath + `): the issuer, client ID, scopes and the CA bundle of its
serving certificate. The document is fetched over TLS verified with
--certificate-authority or the system roots, never without verification.
Nothing secret is written: no token and no client secret.`,
		Example: `  # Only the URL, when frontgate's certificate is publicly trusted:
  frontgate kubeconfig --from https://frontgate.example.com

  # A private CA, printed instead of merged:
  frontgate kubeconfig --from https://frontgate.example.com:8443 --certificate-authority ca.crt -o -

  # Without discovery, into a separate file, device grant for SSH sessions:
  frontgate kubeconfig --server https://frontgate.example.com --certificate-authority ca.crt \
    --issuer-url https://login.example.com --client-id kubectl --grant device -o ~/.kube/frontgate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := d.signalContext()
			defer cancel()
			s, err := o.settings(ctx, cmd.Flags())
			if err != nil {
				return err
			}
			if o.output == "-" {
				data, err := kubeconfig.Encode(s)
				if err != nil {
					return err
				}
				_, err = d.stdout.Write(data)
				return err
			}
			path := o.output
			if path == "" {
				path = kubeconfig.DefaultPath(d.getenv("KUBECONFIG"))
			}
			report, err := kubeconfig.WriteFile(path, s)
			if err != nil {
				return err
			}
			for _, line := range report {
				fmt.Fprintf(d.stderr, "frontgate: %s: %s\n", path, line)
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// settings gathers the kubeconfig entries from the flags and, with --from,
// the discovery document.
func (o *kubeconfigOptions) settings(ctx context.Context, fs *pflag.FlagSet) (kubeconfig.Settings, error) {
	var caData []byte
	if o.caFile != "" {
		if _, err := pki.ReadCertificates(o.caFile); err != nil {
			return kubeconfig.Settings{}, fmt.Errorf("--certificate-authority: %w", err)
		}
		data, err := os.ReadFile(o.caFile)
		if err != nil {
			return kubeconfig.Settings{}, fmt.Errorf("--certificate-authority: %w", err)
		}
		caData = data
	}
	l := kubeconfig.Login{IssuerURL: o.issuerURL, ClientID: o.clientID, Grant: o.grant, Extra: o.loginArgs}
	if fs.Changed("scopes") {
		l.Scopes = append([]string{}, o.scopes...)
	}
	server := o.server
	if o.from != "" {
		client, err := o.discoveryClient()
		if err != nil {
			return kubeconfig.Settings{}, err
		}
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		doc, err := kubeconfig.Fetch(ctx, client, o.from)
		if err != nil {
			return kubeconfig.Settings{}, err
		}
		iss, err := kubeconfig.SelectIssuer(doc, o.issuerURL)
		if err != nil {
			return kubeconfig.Settings{}, err
		}
		l.IssuerURL = iss.URL
		if l.ClientID == "" {
			l.ClientID = iss.ClientID
		}
		if l.Scopes == nil && len(iss.Scopes) > 0 {
			l.Scopes = iss.Scopes
		}
		if caData == nil && doc.CABundle != "" {
			caData = []byte(doc.CABundle)
		}
		if server == "" {
			server = o.from
		}
	}
	var errs []error
	if server == "" {
		errs = append(errs, errors.New("--server or --from is required: frontgate's https URL"))
	}
	if l.IssuerURL == "" || l.ClientID == "" {
		errs = append(errs, errors.New("--issuer-url and --client-id are required without --from"))
	}
	if o.grant != "" && o.grant != "auth-code" && o.grant != "device" {
		errs = append(errs, fmt.Errorf("--grant %q: use auth-code or device", o.grant))
	}
	if err := errors.Join(errs...); err != nil {
		return kubeconfig.Settings{}, err
	}
	if o.issuerCAFile != "" {
		abs, err := filepath.Abs(o.issuerCAFile)
		if err != nil {
			return kubeconfig.Settings{}, fmt.Errorf("--issuer-ca-file: %w", err)
		}
		l.CAFile = abs
	}
	cluster, user, contextName := kubeconfig.DefaultNames(server)
	for _, name := range []struct {
		flag string
		dst  *string
	}{{o.cluster, &cluster}, {o.user, &user}, {o.context, &contextName}} {
		if name.flag != "" {
			*name.dst = name.flag
		}
	}
	return kubeconfig.Settings{
		Server: server, CAData: caData,
		ClusterName: cluster, UserName: user, ContextName: contextName,
		Command: o.command, Args: kubeconfig.LoginArgs(l), InstallHint: kubeconfigInstallHint,
		SetCurrentContext: o.setCurrent,
	}, nil
}

// discoveryClient verifies frontgate with --certificate-authority, or the
// system roots.
func (o *kubeconfigOptions) discoveryClient() (*http.Client, error) {
	client := &http.Client{}
	if o.caFile != "" {
		pool, err := pki.Pool(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--certificate-authority: %w", err)
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.Transport = transport
	}
	return client, nil
}
