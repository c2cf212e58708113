package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/frontgate/frontgate/proxy"
)

// runClient executes the CLI with deps fit for the client commands.
func runClient(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	d := deps{
		stdout: &stdout, stderr: &stderr,
		getenv:        func(k string) string { return env[k] },
		signalContext: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		openBrowser:   func(string) error { return nil },
		userCacheDir:  func() (string, error) { return t.TempDir(), nil },
		now:           time.Now,
	}
	cmd := newRootCommand(d)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return stdout.String(), stderr.String(), err
}

func TestClientCommandsHelpShowsExamples(t *testing.T) {
	for _, args := range [][]string{{"login", "--help"}, {"logout", "--help"}, {"kubeconfig", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, _, err := runClient(t, nil, args...)
			if err != nil || !strings.Contains(out, "Examples:") {
				t.Errorf("help lacks examples (%v):\n%s", err, out)
			}
		})
	}
}

func TestLoginErrorsGoToStderrOnly(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"missing flags", []string{"login"}, nil, "--issuer-url is required"},
		{"remote http issuer", []string{"login", "--issuer-url", "http://issuer.example", "--client-id", "k"}, nil, "must use https"},
		{"listen off loopback", []string{"login", "--issuer-url", "https://issuer.example", "--client-id", "k", "--listen", "0.0.0.0:8000"}, nil, "must be a loopback address"},
		{"unreachable issuer", []string{"login", "--issuer-url", closed.URL, "--client-id", "k"}, nil, "cannot reach the issuer"},
		{"unknown exec apiVersion", []string{"login", "--issuer-url", closed.URL, "--client-id", "k"},
			map[string]string{"KUBERNETES_EXEC_INFO": `{"apiVersion":"client.authentication.k8s.io/v1alpha1","kind":"ExecCredential"}`}, "v1alpha1"},
		{"bad CA file", []string{"login", "--issuer-url", "https://issuer.example", "--client-id", "k", "--ca-file", "/nonexistent"}, nil, "--ca-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runClient(t, tt.env, append(tt.args, "--cache-dir", t.TempDir())...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing: it is the ExecCredential channel", stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr lacks the error: %q", stderr)
			}
		})
	}
}

func TestLogoutCommand(t *testing.T) {
	dir := t.TempDir()
	entry := filepath.Join(dir, "0123.json")
	if err := os.WriteFile(entry, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runClient(t, nil, "logout", "--issuer-url", "https://issuer.example", "--client-id", "k", "--cache-dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(entry); err != nil {
		t.Error("logout of one issuer removed another entry")
	}
	if _, _, err := runClient(t, nil, "login", "--logout", "--issuer-url", "https://issuer.example", "--client-id", "k", "--cache-dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runClient(t, nil, "logout", "--all", "--client-id", "k", "--cache-dir", dir); err == nil {
		t.Error("--all with --client-id was accepted")
	}
	_, stderr, err := runClient(t, nil, "logout", "--all", "--cache-dir", dir)
	if err != nil || !strings.Contains(stderr, "removed 1 cached token") {
		t.Fatalf("logout --all: %v, %q", err, stderr)
	}
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Error("logout --all left an entry")
	}
}

func TestKubeconfigCommand(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	mux.Handle(proxy.DiscoveryPath, proxy.DiscoveryHandler(proxy.Discovery{
		Issuers:  []proxy.DiscoveryIssuer{{URL: "https://login.example.com", ClientID: "kubectl", Scopes: []string{"offline_access", "groups"}}},
		CABundle: string(caPEM),
	}))

	t.Run("from discovery to stdout", func(t *testing.T) {
		out, stderr, err := runClient(t, nil, "kubeconfig", "--from", srv.URL, "--certificate-authority", caFile, "-o", "-")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		cfg, err := clientcmd.Load([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		user := cfg.AuthInfos["oidc@127.0.0.1"]
		if user == nil || user.Exec == nil || strings.Join(user.Exec.Args, " ") != "login --issuer-url=https://login.example.com --client-id=kubectl --scopes=offline_access,groups" {
			t.Fatalf("user = %+v", user)
		}
		if c := cfg.Clusters["127.0.0.1"]; c == nil || c.Server != srv.URL || !bytes.Equal(c.CertificateAuthorityData, caPEM) {
			t.Errorf("cluster = %+v", c)
		}
	})
	t.Run("merges into $KUBECONFIG", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(path, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: \"https://other:6443\"}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := runClient(t, map[string]string{"KUBECONFIG": path}, "kubeconfig", "--from", srv.URL, "--certificate-authority", caFile,
			"--context", "fg", "--grant", "device", "--login-arg=--no-browser")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if !strings.Contains(stderr, `added context "fg"`) {
			t.Errorf("stderr = %q", stderr)
		}
		cfg, err := clientcmd.LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Clusters["other"] == nil || cfg.CurrentContext != "fg" {
			t.Errorf("merged config = %+v", cfg)
		}
		if args := strings.Join(cfg.AuthInfos["oidc@127.0.0.1"].Exec.Args, " "); !strings.HasSuffix(args, "--grant=device --no-browser") {
			t.Errorf("args = %q", args)
		}
	})
	t.Run("login args keep their commas", func(t *testing.T) {
		out, stderr, err := runClient(t, nil, "kubeconfig", "--server", "https://fg.example:8443", "--issuer-url", "https://login.example.com", "--client-id", "k", "-o", "-",
			"--login-arg=--listen=127.0.0.1:8000,127.0.0.1:18000", "--login-arg", "--scopes=offline_access,groups")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		cfg, err := clientcmd.Load([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"login", "--issuer-url=https://login.example.com", "--client-id=k", "--listen=127.0.0.1:8000,127.0.0.1:18000", "--scopes=offline_access,groups"}
		if user := cfg.AuthInfos["oidc@fg.example"]; user == nil || user.Exec == nil || !slices.Equal(user.Exec.Args, want) {
			t.Fatalf("user = %+v, want args %q", user, want)
		}
	})
	t.Run("without discovery", func(t *testing.T) {
		out, _, err := runClient(t, nil, "kubeconfig", "--server", "https://fg.example:8443", "--issuer-url", "https://login.example.com", "--client-id", "k", "-o", "-")
		if err != nil || !strings.Contains(out, "server: https://fg.example:8443") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"kubeconfig", "-o", "-"}, "--server or --from is required"},
			{[]string{"kubeconfig", "--from", srv.URL, "-o", "-"}, "--certificate-authority"},
			{[]string{"kubeconfig", "--server", "http://fg.example", "--issuer-url", "https://i", "--client-id", "k", "-o", "-"}, "must be an https:// URL"},
		} {
			if _, _, err := runClient(t, nil, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: err = %v, want %q", tc.args, err, tc.want)
			}
		}
	})
}
