package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/check"
)

// checkSetup is `frontgate pki init` output, the ConfigMap kube-apiserver
// would publish for it, and one TLS server that plays kube-apiserver at
// --upstream and frontgate at --through.
type checkSetup struct {
	dir, configMap, server string
}

const goodToken = "good-token"

func newCheckSetup(t *testing.T, mutate func(map[string]string)) *checkSetup {
	t.Helper()
	s := &checkSetup{dir: filepath.Join(t.TempDir(), "pki")}
	if _, _, err := run(t, nil, "pki", "init", "--dir", s.dir, "--hosts", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(s.file(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	data := map[string]string{
		check.KeyClientCA:           read("serving-ca.crt"),
		check.KeyRequestHeaderCA:    read("requestheader-ca.crt"),
		check.KeyAllowedNames:       `["frontgate"]`,
		check.KeyUsernameHeaders:    `["X-Remote-User"]`,
		check.KeyGroupHeaders:       `["X-Remote-Group"]`,
		check.KeyUIDHeaders:         `["X-Remote-Uid"]`,
		check.KeyExtraHeadersPrefix: `["X-Remote-Extra-"]`,
	}
	if mutate != nil {
		mutate(data)
	}
	cm := corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: check.ConfigMapNamespace, Name: check.ConfigMapName}, Data: data}
	out, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	s.configMap = filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(s.configMap, out, 0o600); err != nil {
		t.Fatal(err)
	}

	cert, err := tls.LoadX509KeyPair(s.file("serving.crt"), s.file("serving.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/selfsubjectreviews" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+goodToken {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
				Status: metav1.StatusFailure, Code: 401, Reason: metav1.StatusReasonUnauthorized, Message: "token expired at 2026-01-01T00:00:00Z"})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(authv1.SelfSubjectReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"},
			Status:   authv1.SelfSubjectReviewStatus{UserInfo: authv1.UserInfo{Username: "alice", UID: "a-1", Groups: []string{"dev", "system:authenticated"}}},
		})
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the upstream check hangs up after the handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.server = srv.URL
	return s
}

func (s *checkSetup) file(name string) string { return filepath.Join(s.dir, name) }

// args are the flags of a healthy check against the setup.
func (s *checkSetup) args(extra ...string) []string {
	return append([]string{"check", "--configmap-file", s.configMap,
		"--proxy-client-cert-file", s.file("proxy-client.crt"), "--proxy-client-key-file", s.file("proxy-client.key"),
		"--upstream", s.server, "--upstream-ca-file", s.file("serving-ca.crt")}, extra...)
}

func TestCheckCommand(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(goodToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		mutate   func(map[string]string)
		args     func(s *checkSetup) []string
		env      func(t *testing.T, s *checkSetup) map[string]string
		wantErr  string
		wantOut  []string
		wantJSON func(t *testing.T, r checkReport)
	}{
		{
			name:    "healthy",
			args:    func(s *checkSetup) []string { return s.args() },
			wantOut: []string{"ok       allowed-names: the proxy client certificate's CN \"frontgate\"", "ok       proxy-key:", "ok       upstream-ca:", "0 errors, 0 warnings, 12 ok\n"},
		},
		{
			name:    "wrong CN is an error with its fix",
			mutate:  func(d map[string]string) { d[check.KeyAllowedNames] = `["front-proxy-client"]` },
			args:    func(s *checkSetup) []string { return s.args() },
			wantErr: "1 of 12 checks failed",
			wantOut: []string{"error    allowed-names:", "         fix: add the CN to kube-apiserver: --requestheader-allowed-names=front-proxy-client,frontgate"},
		},
		{
			name: "header names from --config",
			args: func(s *checkSetup) []string {
				cfg := filepath.Join(filepath.Dir(s.configMap), "frontgate.yaml")
				if err := os.WriteFile(cfg, []byte("requestheader-uid-headers: []\n"), 0o600); err != nil {
					panic(err)
				}
				return s.args("--config", cfg)
			},
			// frontgate still strips a client's X-Remote-Uid, so the UID is
			// only dropped, not forgeable: a warning.
			wantOut: []string{"warning  uid-headers:", "fix: set frontgate's --requestheader-uid-headers=X-Remote-Uid"},
		},
		{
			name: "json",
			args: func(s *checkSetup) []string { return s.args("-o", "json") },
			wantJSON: func(t *testing.T, r checkReport) {
				if len(r.Findings) != 12 || r.User != nil {
					t.Errorf("report = %+v", r)
				}
				for _, f := range r.Findings {
					if f.Severity != check.OK {
						t.Errorf("finding %+v", f)
					}
				}
			},
		},
		{
			name: "through with a token file",
			args: func(s *checkSetup) []string {
				return s.args("--through", s.server, "--token-file", tokenFile, "--through-ca-file", s.file("serving-ca.crt"))
			},
			wantOut: []string{`ok       through: through ` + "https://127.0.0.1", `kube-apiserver sees you as user "alice", uid "a-1", groups ["dev","system:authenticated"]`},
		},
		{
			name: "through as json",
			args: func(s *checkSetup) []string {
				return s.args("-o", "json", "--through", s.server, "--token", goodToken, "--through-ca-file", s.file("serving-ca.crt"))
			},
			wantJSON: func(t *testing.T, r checkReport) {
				if r.User == nil || r.User.Username != "alice" || r.User.UID != "a-1" {
					t.Errorf("user = %+v", r.User)
				}
			},
		},
		{
			name: "through with a bad token",
			args: func(s *checkSetup) []string {
				return s.args("--through", s.server, "--token", "bad", "--through-ca-file", s.file("serving-ca.crt"))
			},
			wantErr: "1 of 13 checks failed",
			wantOut: []string{"error    through: SelfSubjectReview through https://127.0.0.1", "token expired at 2026-01-01T00:00:00Z", "fix: check the token"},
		},
		{
			name:    "through without its CA",
			args:    func(s *checkSetup) []string { return s.args("--through", s.server, "--token", goodToken) },
			wantErr: "checks failed",
			wantOut: []string{"error    through:", "fix: give --through-ca-file"},
		},
		{
			name: "through a kubeconfig context",
			args: func(s *checkSetup) []string { return s.args("--through-context", "fg") },
			env: func(t *testing.T, s *checkSetup) map[string]string {
				ca, err := os.ReadFile(s.file("serving-ca.crt"))
				if err != nil {
					t.Fatal(err)
				}
				cfg := clientcmdapi.NewConfig()
				cfg.Clusters["fg"] = &clientcmdapi.Cluster{Server: s.server, CertificateAuthorityData: ca}
				cfg.AuthInfos["fg"] = &clientcmdapi.AuthInfo{Token: goodToken}
				cfg.Contexts["fg"] = &clientcmdapi.Context{Cluster: "fg", AuthInfo: "fg"}
				path := filepath.Join(t.TempDir(), "kubeconfig")
				if err := clientcmd.WriteToFile(*cfg, path); err != nil {
					t.Fatal(err)
				}
				return map[string]string{"KUBECONFIG": path}
			},
			wantOut: []string{`kube-apiserver sees you as user "alice"`},
		},
		{
			name: "cluster unreachable is a finding",
			args: func(s *checkSetup) []string {
				return []string{"check", "--kubeconfig", filepath.Join(s.dir, "missing.kubeconfig"), "--proxy-client-cert-file", s.file("proxy-client.crt")}
			},
			wantErr: "checks failed",
			wantOut: []string{"error    configmap: cannot read kube-system/extension-apiserver-authentication", "ok       proxy-cert:", "warning  upstream-ca: not checked: --upstream is not set"},
		},
		{
			name: "key of another certificate",
			args: func(s *checkSetup) []string {
				return []string{"check", "--configmap-file", s.configMap, "--proxy-client-cert-file", s.file("proxy-client.crt"), "--proxy-client-key-file", s.file("serving.key")}
			},
			wantErr: "checks failed",
			wantOut: []string{"error    proxy-key:", "does not belong to the certificate"},
		},
		{name: "bad output", args: func(s *checkSetup) []string { return s.args("-o", "yaml") }, wantErr: `--output "yaml": use text or json`},
		{name: "through without token", args: func(s *checkSetup) []string { return s.args("--through", s.server) }, wantErr: "--through needs --token or --token-file"},
		{name: "token without through", args: func(s *checkSetup) []string { return s.args("--token", "x") }, wantErr: "go with --through"},
		{name: "two tokens", args: func(s *checkSetup) []string {
			return s.args("--through", s.server, "--token", "x", "--token-file", "y")
		}, wantErr: "--token and --token-file exclude each other"},
		{name: "through and context", args: func(s *checkSetup) []string {
			return s.args("--through", s.server, "--token", "x", "--through-context", "fg")
		}, wantErr: "--through and --through-context exclude each other"},
		{name: "context with token", args: func(s *checkSetup) []string { return s.args("--through-context", "fg", "--token", "x") }, wantErr: "leave out --token"},
		{name: "through over http", args: func(s *checkSetup) []string { return s.args("--through", "http://127.0.0.1:1", "--token", "x") }, wantErr: "must be frontgate's https:// URL"},
		{name: "unreadable ConfigMap file", args: func(s *checkSetup) []string {
			return []string{"check", "--configmap-file", filepath.Join(s.dir, "none.yaml")}
		}, wantErr: "--configmap-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newCheckSetup(t, tt.mutate)
			var env map[string]string
			if tt.env != nil {
				env = tt.env(t, s)
			}
			out, _, err := run(t, env, tt.args(s)...)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v; stdout:\n%s", err, out)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q; stdout:\n%s", err, tt.wantErr, out)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if tt.wantJSON != nil {
				var r checkReport
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Fatalf("stdout is not JSON: %v\n%s", err, out)
				}
				tt.wantJSON(t, r)
			}
		})
	}
}
