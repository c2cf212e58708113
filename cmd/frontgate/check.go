package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/check"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
)

// checkOptions are the flags of `frontgate check` besides serve's.
type checkOptions struct {
	kubeconfig, context string
	configMapFile       string
	through             string
	throughContext      string
	token, tokenFile    string
	throughCAFile       string
	output              string
	timeout             time.Duration
}

func (c *checkOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", c.kubeconfig, "admin kubeconfig that reads kube-system/extension-apiserver-authentication (default: $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&c.context, "context", c.context, "context of the kubeconfig to use for the ConfigMap (default: its current context)")
	fs.StringVar(&c.configMapFile, "configmap-file", c.configMapFile, "read the ConfigMap from this YAML or JSON file (kubectl -n kube-system get configmap extension-apiserver-authentication -o yaml) instead of the cluster")
	fs.StringVar(&c.through, "through", c.through, "frontgate's https URL: also send a SelfSubjectReview through it with --token or --token-file and print who kube-apiserver thinks you are")
	fs.StringVar(&c.throughContext, "through-context", c.throughContext, "like --through, with the server and credentials of this kubeconfig context (e.g. the one 'frontgate kubeconfig' wrote, which runs 'frontgate login')")
	fs.StringVar(&c.token, "token", c.token, "ID token for --through (visible to other local users in the process list: prefer --token-file)")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "file holding the ID token for --through")
	fs.StringVar(&c.throughCAFile, "through-ca-file", c.throughCAFile, "CA bundle that verifies frontgate's serving certificate at --through (default: system roots)")
	fs.StringVarP(&c.output, "output", "o", c.output, "output format: text (one line per finding, then its fix) or json")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "bound of each network step: reading the ConfigMap, reaching --upstream, the SelfSubjectReview (a login the --through-context runs included)")
}

// validate checks the flags' combinations without I/O.
func (c *checkOptions) validate() error {
	switch c.output {
	case "text", "json":
	default:
		return fmt.Errorf("--output %q: use text or json", c.output)
	}
	if c.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if c.token != "" && c.tokenFile != "" {
		return errors.New("--token and --token-file exclude each other: give one")
	}
	hasToken := c.token != "" || c.tokenFile != ""
	switch {
	case c.through != "" && c.throughContext != "":
		return errors.New("--through and --through-context exclude each other: give the URL with a token, or a kubeconfig context")
	case c.through != "" && !hasToken:
		return errors.New("--through needs --token or --token-file (an ID token frontgate accepts); or use --through-context with a context that runs 'frontgate login'")
	case c.throughContext != "" && (hasToken || c.throughCAFile != ""):
		return errors.New("--through-context takes the server, CA and credentials from the kubeconfig: leave out --token, --token-file and --through-ca-file")
	case c.through == "" && (hasToken || c.throughCAFile != ""):
		return errors.New("--token, --token-file and --through-ca-file go with --through")
	}
	if c.through != "" {
		if u, err := url.Parse(c.through); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--through %q: must be frontgate's https:// URL", c.through)
		}
	}
	return nil
}

// checkReport is the JSON output of `frontgate check`.
type checkReport struct {
	Findings []check.Finding `json:"findings"`
	// User is who kube-apiserver thinks the --through user is.
	User *authv1.UserInfo `json:"user,omitempty"`
}

func newCheckCommand(d deps) *cobra.Command {
	o := newServeOptions(d.getenv)
	c := &checkOptions{output: "text", timeout: 30 * time.Second}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that kube-apiserver trusts frontgate the way frontgate is configured",
		Long: `check compares what kube-apiserver published in the ConfigMap
kube-system/extension-apiserver-authentication with frontgate's settings (the
same flags and --config file as serve):

  - the proxy client certificate chains to requestheader-client-ca-file, has
    clientAuth, and its CN is in requestheader-allowed-names (a warning when
    that list is empty: any certificate from the CA may assert identities);
  - it is valid now and for 30 more days, and its key matches (when given);
  - the header names kube-apiserver reads are those frontgate sets and
    strips; a warning when kube-apiserver reads no UID header;
  - the requestheader CA is not also a client-ca-file CA;
  - kube-apiserver's serving certificate at --upstream verifies with
    --upstream-ca-file (a warning when it cannot be reached from here);
  - with --through (or --through-context), a SelfSubjectReview through
    frontgate shows who kube-apiserver thinks you are.

Every finding has a severity (ok, warning, error) and, unless ok, a one-line
fix. The exit status is 1 when any finding is an error. Run it with an admin
kubeconfig (reading the ConfigMap needs Role
extension-apiserver-authentication-reader in kube-system), or with
--configmap-file.`,
		Example: `  # With frontgate's config file and the current kubeconfig context:
  frontgate check --config /etc/frontgate/config.yaml

  # Also as a user, through frontgate, with a token:
  frontgate check --config frontgate.yaml --kubeconfig admin.conf \
    --through https://frontgate.example.com --token-file token --through-ca-file serving-ca.crt

  # Through the kubeconfig context 'frontgate kubeconfig' wrote (runs 'frontgate login'), as JSON:
  frontgate check --config frontgate.yaml --context admin --through-context frontgate.example.com -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.configFile != "" {
				if err := applyConfigFile(cmd.Flags(), o.configFile); err != nil {
					return err
				}
			}
			if err := c.validate(); err != nil {
				return err
			}
			if err := o.headerNames().Validate(); err != nil {
				return err
			}
			ctx, cancel := d.signalContext()
			defer cancel()
			report, err := c.run(ctx, d, o)
			if err != nil {
				return err
			}
			if c.output == "json" {
				out, err := json.MarshalIndent(report, "", "  ")
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(d.stdout, "%s\n", out); err != nil {
					return err
				}
			} else if err := check.WriteText(d.stdout, report.Findings); err != nil {
				return err
			}
			if n := check.Count(report.Findings, check.Error); n > 0 {
				return fmt.Errorf("%d of %d checks failed", n, len(report.Findings))
			}
			return nil
		},
	}
	o.addFlags(cmd.Flags())
	c.addFlags(cmd.Flags())
	return cmd
}

// run gathers the inputs, runs the checks and, with --through, the
// SelfSubjectReview. Problems with the cluster, the files or the network are
// findings; only unusable flags are errors.
func (c *checkOptions) run(ctx context.Context, d deps, o *serveOptions) (*checkReport, error) {
	now := time.Now
	if d.now != nil {
		now = d.now
	}
	in := check.Inputs{Headers: o.headerNames(), ProxyCertFile: o.proxyClientCertFile}
	var pre []check.Finding

	data, err := c.configMap(ctx, d)
	if err != nil {
		if c.configMapFile != "" {
			return nil, err
		}
		pre = append(pre, check.ConfigMapUnavailable(err))
	}
	in.ConfigMap = data

	if o.proxyClientCertFile == "" {
		pre = append(pre, check.ProxyCertUnavailable("", nil))
	} else if in.ProxyChain, err = pki.ReadCertificates(o.proxyClientCertFile); err != nil {
		pre = append(pre, check.ProxyCertUnavailable(o.proxyClientCertFile, err))
	}

	in.Upstream = upstream(ctx, o, c.timeout)
	in.Now = now()
	findings := append(pre, check.Run(in)...)
	if len(in.ProxyChain) > 0 && o.proxyClientKeyFile != "" {
		findings = append(findings, keyPair(o.proxyClientCertFile, o.proxyClientKeyFile))
	}

	report := &checkReport{Findings: findings}
	if c.through != "" || c.throughContext != "" {
		cn := ""
		if len(in.ProxyChain) > 0 {
			cn = in.ProxyChain[0].Subject.CommonName
		}
		target, user, err := c.selfSubjectReview(ctx, d)
		if err != nil && target == "" {
			return nil, err
		}
		report.Findings = append(report.Findings, check.SelfSubjectReview(target, user, err, cn))
		report.User = user
	}
	return report, nil
}

// loadingRules are client-go's kubeconfig loading rules with --kubeconfig,
// reading $KUBECONFIG through d.
func (c *checkOptions) loadingRules(d deps) *clientcmd.ClientConfigLoadingRules {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	if v := d.getenv(clientcmd.RecommendedConfigPathEnvVar); v != "" {
		rules.Precedence = filepath.SplitList(v)
	} else {
		rules.Precedence = []string{clientcmd.RecommendedHomeFile}
	}
	return rules
}

// restConfig returns the client configuration of a kubeconfig context
// (empty: the current one), bounded by --timeout.
func (c *checkOptions) restConfig(d deps, context string) (*rest.Config, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(c.loadingRules(d), &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = c.timeout
	return cfg, nil
}

// configMap returns the data of kube-system/extension-apiserver-
// authentication, from --configmap-file or read with the admin kubeconfig.
func (c *checkOptions) configMap(ctx context.Context, d deps) (map[string]string, error) {
	var cm corev1.ConfigMap
	if c.configMapFile != "" {
		raw, err := os.ReadFile(c.configMapFile)
		if err != nil {
			return nil, fmt.Errorf("--configmap-file: %w", err)
		}
		if err := yaml.Unmarshal(raw, &cm); err != nil {
			return nil, fmt.Errorf("--configmap-file %s: not a ConfigMap in YAML or JSON: %w", c.configMapFile, err)
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		return cm.Data, nil
	}
	cfg, err := c.restConfig(d, c.context)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	got, err := client.CoreV1().ConfigMaps(check.ConfigMapNamespace).Get(ctx, check.ConfigMapName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if got.Data == nil {
		got.Data = map[string]string{}
	}
	return got.Data, nil
}

// upstream reads --upstream-ca-file and fetches the certificate chain
// kube-apiserver presents at --upstream.
func upstream(ctx context.Context, o *serveOptions, timeout time.Duration) *check.Upstream {
	u := &check.Upstream{URL: o.upstream, CAFile: o.upstreamCAFile}
	if o.upstreamCAFile != "" {
		u.Roots, u.CAErr = pki.Pool(o.upstreamCAFile)
	}
	if u.URL == "" || u.CAErr != nil {
		return u
	}
	parsed, err := url.Parse(u.URL)
	if err != nil || parsed.Host == "" {
		u.DialErr = fmt.Errorf("--upstream %q is not a URL with a host", u.URL)
		return u
	}
	addr := parsed.Host
	if parsed.Port() == "" {
		addr = net.JoinHostPort(parsed.Hostname(), "443")
	}
	dialer := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: timeout},
		Config: &tls.Config{
			ServerName: parsed.Hostname(),
			MinVersion: tls.VersionTLS12,
			// Only to obtain the chain, which the check then verifies
			// exactly as frontgate will; nothing is sent.
			InsecureSkipVerify: true,
		},
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		u.DialErr = err
		return u
	}
	defer conn.Close()
	u.Chain = conn.(*tls.Conn).ConnectionState().PeerCertificates
	return u
}

// keyPair checks that --proxy-client-key-file belongs to the certificate.
func keyPair(certFile, keyFile string) check.Finding {
	keyPEM, readErr := os.ReadFile(keyFile)
	if readErr != nil {
		return check.KeyPair(keyFile, readErr, nil)
	}
	certPEM, readErr := os.ReadFile(certFile)
	if readErr != nil {
		return check.KeyPair(keyFile, readErr, nil)
	}
	_, pairErr := tls.X509KeyPair(certPEM, keyPEM)
	return check.KeyPair(keyFile, nil, pairErr)
}

// selfSubjectReview asks kube-apiserver, through frontgate, who the caller
// is. It returns the URL used; an error with an empty URL is a flag problem.
func (c *checkOptions) selfSubjectReview(ctx context.Context, d deps) (string, *authv1.UserInfo, error) {
	var cfg *rest.Config
	if c.throughContext != "" {
		var err error
		if cfg, err = c.restConfig(d, c.throughContext); err != nil {
			return "", nil, fmt.Errorf("--through-context %q: %w", c.throughContext, err)
		}
	} else {
		token := c.token
		if c.tokenFile != "" {
			raw, err := os.ReadFile(c.tokenFile)
			if err != nil {
				return "", nil, fmt.Errorf("--token-file: %w", err)
			}
			token = strings.TrimSpace(string(raw))
		}
		if c.throughCAFile != "" {
			if _, err := pki.Pool(c.throughCAFile); err != nil {
				return "", nil, fmt.Errorf("--through-ca-file: %w", err)
			}
		}
		cfg = &rest.Config{
			Host:            c.through,
			BearerToken:     token,
			TLSClientConfig: rest.TLSClientConfig{CAFile: c.throughCAFile},
			Timeout:         c.timeout,
		}
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ssr, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return cfg.Host, nil, err
	}
	return cfg.Host, &ssr.Status.UserInfo, nil
}
