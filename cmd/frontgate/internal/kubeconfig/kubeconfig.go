package kubeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ExecAPIVersion is the ExecCredential version the kubeconfig asks for.
const ExecAPIVersion = "client.authentication.k8s.io/v1"

// Settings are the entries to write.
type Settings struct {
	// Server is frontgate's URL (https).
	Server string
	// CAData is PEM that verifies frontgate's serving certificate; empty
	// means the system roots.
	CAData []byte
	// ClusterName, UserName and ContextName name the three entries.
	ClusterName, UserName, ContextName string
	// Command and Args run the exec plugin (see [LoginArgs]).
	Command string
	Args    []string
	// InstallHint is shown by kubectl when Command is not found.
	InstallHint string
	// SetCurrentContext makes ContextName the current context.
	SetCurrentContext bool
}

// Validate reports every problem with s, joined.
func (s Settings) Validate() error {
	var errs []error
	if u, err := url.Parse(s.Server); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("server %q must be an https:// URL: kubectl would send ID tokens to it", s.Server))
	}
	if s.ClusterName == "" || s.UserName == "" || s.ContextName == "" {
		errs = append(errs, errors.New("cluster, user and context names must not be empty"))
	}
	if s.Command == "" {
		errs = append(errs, errors.New("the exec command must not be empty"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// clientcmd's own checks of the entries we add, alone.
	if err := clientcmd.Validate(*s.entries()); err != nil {
		return err
	}
	return nil
}

// entries returns a config holding only s's cluster, user and context.
func (s Settings) entries() *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = s.Server
	cluster.CertificateAuthorityData = s.CAData
	cfg.Clusters[s.ClusterName] = cluster

	user := clientcmdapi.NewAuthInfo()
	user.Exec = &clientcmdapi.ExecConfig{
		APIVersion:      ExecAPIVersion,
		Command:         s.Command,
		Args:            append([]string(nil), s.Args...),
		InstallHint:     s.InstallHint,
		InteractiveMode: clientcmdapi.IfAvailableExecInteractiveMode,
	}
	cfg.AuthInfos[s.UserName] = user

	ctx := clientcmdapi.NewContext()
	ctx.Cluster, ctx.AuthInfo = s.ClusterName, s.UserName
	cfg.Contexts[s.ContextName] = ctx
	if s.SetCurrentContext {
		cfg.CurrentContext = s.ContextName
	}
	return cfg
}

// Merge adds s's entries to cfg, replacing entries of the same names and
// leaving every other entry, the preferences and the extensions alone. A
// replaced context keeps its namespace. It returns one line per entry saying
// what it did.
func Merge(cfg *clientcmdapi.Config, s Settings) []string {
	add := s.entries()
	var report []string
	verb := func(exists bool) string {
		if exists {
			return "replaced"
		}
		return "added"
	}
	for name, c := range add.Clusters {
		_, exists := cfg.Clusters[name]
		cfg.Clusters[name] = c
		report = append(report, fmt.Sprintf("%s cluster %q", verb(exists), name))
	}
	for name, u := range add.AuthInfos {
		_, exists := cfg.AuthInfos[name]
		cfg.AuthInfos[name] = u
		report = append(report, fmt.Sprintf("%s user %q", verb(exists), name))
	}
	for name, c := range add.Contexts {
		old, exists := cfg.Contexts[name]
		if exists && old.Namespace != "" {
			c.Namespace = old.Namespace
		}
		cfg.Contexts[name] = c
		report = append(report, fmt.Sprintf("%s context %q", verb(exists), name))
	}
	if add.CurrentContext != "" {
		cfg.CurrentContext = add.CurrentContext
		report = append(report, fmt.Sprintf("current context is now %q", add.CurrentContext))
	}
	return report
}

// Encode returns a new kubeconfig holding only s's entries.
func Encode(s Settings) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return clientcmd.Write(*s.entries())
}

// WriteFile merges s into the kubeconfig at path, creating it (0600) when
// missing, and returns what it did, one line per entry.
func WriteFile(path string, s Settings) ([]string, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.LoadFromFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cfg = clientcmdapi.NewConfig()
	case err != nil:
		return nil, fmt.Errorf("%s is not a kubeconfig this command can merge into (%w): fix it or choose another file with --output", path, err)
	}
	report := Merge(cfg, s)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return report, nil
}

// Login is what `frontgate login` needs to know, as kubeconfig arguments.
type Login struct {
	IssuerURL, ClientID string
	// Scopes are passed as --scopes when not nil; an empty, non-nil slice
	// asks for openid alone.
	Scopes []string
	// Grant is passed as --grant when not empty.
	Grant string
	// CAFile is passed as --ca-file when not empty.
	CAFile string
	// Extra are appended as they are.
	Extra []string
}

// LoginArgs returns the arguments of the exec plugin: `login` and its
// flags, each as --name=value so that no value can be taken for a flag.
func LoginArgs(l Login) []string {
	args := []string{"login", "--issuer-url=" + l.IssuerURL, "--client-id=" + l.ClientID}
	if l.Scopes != nil {
		args = append(args, "--scopes="+strings.Join(l.Scopes, ","))
	}
	if l.Grant != "" {
		args = append(args, "--grant="+l.Grant)
	}
	if l.CAFile != "" {
		args = append(args, "--ca-file="+l.CAFile)
	}
	return append(args, l.Extra...)
}

// DefaultNames derives the cluster, user and context names from the host of
// server: host, oidc@host, host.
func DefaultNames(server string) (cluster, user, context string) {
	host := server
	if u, err := url.Parse(server); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return host, "oidc@" + host, host
}

// DefaultPath is the kubeconfig kubectl reads first: the first entry of
// kubeconfigEnv ($KUBECONFIG), else ~/.kube/config.
func DefaultPath(kubeconfigEnv string) string {
	for _, p := range strings.Split(kubeconfigEnv, string(os.PathListSeparator)) {
		if p != "" {
			return p
		}
	}
	return clientcmd.RecommendedHomeFile
}
