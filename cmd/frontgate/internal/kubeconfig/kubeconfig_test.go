package kubeconfig

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/frontgate/frontgate/proxy"
)

func testSettings() Settings {
	return Settings{
		Server:      "https://frontgate.example.com:8443",
		CAData:      []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		ClusterName: "frontgate.example.com", UserName: "oidc@frontgate.example.com", ContextName: "frontgate.example.com",
		Command:     "frontgate",
		Args:        LoginArgs(Login{IssuerURL: "https://login.example.com", ClientID: "kubectl", Scopes: []string{"offline_access", "groups"}}),
		InstallHint: "install frontgate", SetCurrentContext: true,
	}
}

// checkEntries checks that cfg holds s's entries as kubectl will read them.
func checkEntries(t *testing.T, cfg *clientcmdapi.Config, s Settings) {
	t.Helper()
	cluster := cfg.Clusters[s.ClusterName]
	if cluster == nil || cluster.Server != s.Server || string(cluster.CertificateAuthorityData) != string(s.CAData) {
		t.Errorf("cluster = %+v", cluster)
	}
	user := cfg.AuthInfos[s.UserName]
	if user == nil || user.Exec == nil {
		t.Fatalf("user = %+v", user)
	}
	e := user.Exec
	if e.APIVersion != ExecAPIVersion || e.Command != "frontgate" || e.InteractiveMode != clientcmdapi.IfAvailableExecInteractiveMode || e.InstallHint == "" {
		t.Errorf("exec = %+v", e)
	}
	wantArgs := []string{"login", "--issuer-url=https://login.example.com", "--client-id=kubectl", "--scopes=offline_access,groups"}
	if !reflect.DeepEqual(e.Args, wantArgs) {
		t.Errorf("args = %q, want %q", e.Args, wantArgs)
	}
	ctx := cfg.Contexts[s.ContextName]
	if ctx == nil || ctx.Cluster != s.ClusterName || ctx.AuthInfo != s.UserName {
		t.Errorf("context = %+v", ctx)
	}
}

func TestWriteFile(t *testing.T) {
	existing := `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443"}
- name: frontgate.example.com
  cluster: {server: "https://old.example:8443"}
users:
- name: admin
  user: {token: static-admin-token}
contexts:
- name: prod
  context: {cluster: prod, user: admin, namespace: kube-system}
- name: frontgate.example.com
  context: {cluster: frontgate.example.com, user: admin, namespace: team-a}
current-context: prod
preferences: {}
`
	tests := []struct {
		name        string
		content     *string
		setCurrent  bool
		wantCurrent string
		wantReport  []string
	}{
		{name: "create", setCurrent: true, wantCurrent: "frontgate.example.com",
			wantReport: []string{`added cluster "frontgate.example.com"`, `added user "oidc@frontgate.example.com"`, `added context "frontgate.example.com"`}},
		{name: "merge keeps other entries", content: &existing, wantCurrent: "prod",
			wantReport: []string{`replaced cluster "frontgate.example.com"`, `added user "oidc@frontgate.example.com"`, `replaced context "frontgate.example.com"`}},
		{name: "merge and switch context", content: &existing, setCurrent: true, wantCurrent: "frontgate.example.com",
			wantReport: []string{`current context is now "frontgate.example.com"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "config")
			if tt.content != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s := testSettings()
			s.SetCurrentContext = tt.setCurrent
			report, err := WriteFile(path, s)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(report, "\n")
			for _, want := range tt.wantReport {
				if !strings.Contains(joined, want) {
					t.Errorf("report lacks %q:\n%s", want, joined)
				}
			}
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", info.Mode().Perm())
			}
			cfg, err := clientcmd.LoadFromFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, cfg, s)
			if cfg.CurrentContext != tt.wantCurrent {
				t.Errorf("current context %q, want %q", cfg.CurrentContext, tt.wantCurrent)
			}
			if tt.content != nil {
				if cfg.Clusters["prod"] == nil || cfg.AuthInfos["admin"] == nil || cfg.AuthInfos["admin"].Token != "static-admin-token" || cfg.Contexts["prod"] == nil || cfg.Contexts["prod"].Namespace != "kube-system" {
					t.Errorf("other entries were not preserved: %+v", cfg)
				}
				if ns := cfg.Contexts["frontgate.example.com"].Namespace; ns != "team-a" {
					t.Errorf("replaced context lost its namespace: %q", ns)
				}
			}
			// kubectl can use it.
			if _, err := clientcmd.NewNonInteractiveClientConfig(*cfg, s.ContextName, nil, nil).ClientConfig(); err != nil {
				t.Errorf("client-go cannot use the context: %v", err)
			}
		})
	}
	t.Run("a file that is not a kubeconfig is left alone", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(path, []byte("clusters: 42\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := WriteFile(path, testSettings()); err == nil || !strings.Contains(err.Error(), "is not a kubeconfig") {
			t.Fatalf("err = %v", err)
		}
		if data, _ := os.ReadFile(path); string(data) != "clusters: 42\n" {
			t.Errorf("file changed to %q", data)
		}
	})
}

func TestEncodeForStdout(t *testing.T) {
	s := testSettings()
	data, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, cfg, s)
	if len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 || len(cfg.Contexts) != 1 || cfg.CurrentContext != s.ContextName {
		t.Errorf("stdout kubeconfig holds more than the three entries: %+v", cfg)
	}
	for _, want := range []string{"interactiveMode: IfAvailable", "apiVersion: client.authentication.k8s.io/v1", "installHint: install frontgate"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("YAML lacks %q:\n%s", want, data)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Settings)
		want   string
	}{
		{"http server", func(s *Settings) { s.Server = "http://frontgate.example" }, "must be an https:// URL"},
		{"no names", func(s *Settings) { s.UserName = "" }, "names must not be empty"},
		{"no command", func(s *Settings) { s.Command = "" }, "exec command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSettings()
			tt.mutate(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLoginArgs(t *testing.T) {
	tests := []struct {
		name string
		in   Login
		want []string
	}{
		{"minimal", Login{IssuerURL: "https://i", ClientID: "c"}, []string{"login", "--issuer-url=https://i", "--client-id=c"}},
		{"openid only", Login{IssuerURL: "https://i", ClientID: "c", Scopes: []string{}}, []string{"login", "--issuer-url=https://i", "--client-id=c", "--scopes="}},
		{"all", Login{IssuerURL: "https://i", ClientID: "c", Scopes: []string{"a", "b"}, Grant: "device", CAFile: "/ca.pem", Extra: []string{"--no-browser"}},
			[]string{"login", "--issuer-url=https://i", "--client-id=c", "--scopes=a,b", "--grant=device", "--ca-file=/ca.pem", "--no-browser"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LoginArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaultNamesAndPath(t *testing.T) {
	c, u, x := DefaultNames("https://frontgate.example.com:8443")
	if c != "frontgate.example.com" || u != "oidc@frontgate.example.com" || x != "frontgate.example.com" {
		t.Errorf("names %q %q %q", c, u, x)
	}
	sep := string(os.PathListSeparator)
	if got := DefaultPath(sep + "/a/config" + sep + "/b/config"); got != "/a/config" {
		t.Errorf("DefaultPath = %q", got)
	}
	if got := DefaultPath(""); got != clientcmd.RecommendedHomeFile {
		t.Errorf("DefaultPath = %q", got)
	}
}

func TestFetch(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	doc := proxy.Discovery{
		Issuers:  []proxy.DiscoveryIssuer{{URL: "https://login.example.com", ClientID: "kubectl", Scopes: []string{"groups"}}, {URL: "https://other.example", ClientID: "k2"}},
		CABundle: caPEM,
	}
	mux.Handle(proxy.DiscoveryPath, proxy.DiscoveryHandler(doc))

	t.Run("fetched over verified TLS", func(t *testing.T) {
		got, err := Fetch(context.Background(), srv.Client(), srv.URL+"/")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, doc) {
			t.Errorf("got %+v", got)
		}
		iss, err := SelectIssuer(got, "https://other.example")
		if err != nil || iss.ClientID != "k2" {
			t.Errorf("SelectIssuer = %+v, %v", iss, err)
		}
		if _, err := SelectIssuer(got, ""); err == nil || !strings.Contains(err.Error(), "choose one with --issuer-url") {
			t.Errorf("err = %v", err)
		}
		if _, err := SelectIssuer(got, "https://nope.example"); err == nil || !strings.Contains(err.Error(), "does not accept tokens from --issuer-url") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := Fetch(context.Background(), &http.Client{}, srv.URL)
		if err == nil || !strings.Contains(err.Error(), "--certificate-authority") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("http is refused", func(t *testing.T) {
		_, err := Fetch(context.Background(), srv.Client(), strings.Replace(srv.URL, "https:", "http:", 1))
		if err == nil || !strings.Contains(err.Error(), "https://") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not frontgate", func(t *testing.T) {
		_, err := Fetch(context.Background(), srv.Client(), srv.URL+"/elsewhere")
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("err = %v", err)
		}
	})
}
