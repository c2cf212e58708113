package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
)

// run executes the CLI with args and returns stdout, stderr and the error.
func run(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	d := deps{
		stdout: &stdout, stderr: &stderr,
		getenv:        func(k string) string { return env[k] },
		signalContext: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
	}
	cmd := newRootCommand(d)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return stdout.String(), stderr.String(), err
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name    string
		config  string
		args    []string
		check   func(t *testing.T, o *serveOptions)
		wantErr string
	}{
		{
			name:   "scalars, lists and maps",
			config: "upstream: https://10.0.0.1:6443\noidc-required-claim:\n  hd: example.com\n  tier: gold\nrequestheader-group-headers: [X-A, X-B]\nmax-groups: 50\nshutdown-grace: 5s\n",
			check: func(t *testing.T, o *serveOptions) {
				if o.upstream != "https://10.0.0.1:6443" || o.maxGroups != 50 || o.shutdownGrace.String() != "5s" {
					t.Errorf("scalars not applied: %+v", o)
				}
				if strings.Join(o.groupHeaders, ",") != "X-A,X-B" {
					t.Errorf("list = %q", o.groupHeaders)
				}
				if o.oidc.requiredClaims["hd"] != "example.com" || o.oidc.requiredClaims["tier"] != "gold" {
					t.Errorf("map = %v", o.oidc.requiredClaims)
				}
			},
		},
		{
			name:   "command line wins",
			config: "upstream: https://from-file:6443\nlog-format: json\n",
			args:   []string{"--upstream", "https://from-flag:6443"},
			check: func(t *testing.T, o *serveOptions) {
				if o.upstream != "https://from-flag:6443" || o.logFormat != "json" {
					t.Errorf("upstream %q log-format %q", o.upstream, o.logFormat)
				}
			},
		},
		{
			name:   "username prefix set in the file counts as set",
			config: "oidc-username-prefix: \"\"\n",
			check: func(t *testing.T, o *serveOptions) {
				if !o.oidc.usernamePrefixSet {
					t.Error("prefix not marked as set")
				}
			},
		},
		{name: "unknown key", config: "upstreams: x\n", wantErr: `unknown setting "upstreams"`},
		{name: "not a mapping", config: "- a\n- b\n", wantErr: "not a YAML mapping"},
		{name: "nested value", config: "upstream: {a: {b: c}}\n", wantErr: `setting "upstream"`},
		{name: "bad value", config: "max-groups: many\n", wantErr: `setting "max-groups"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newServeOptions(func(string) string { return "" })
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			o.addFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := applyConfigFile(fs, write(tt.config))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o.complete(fs)
			tt.check(t, o)
		})
	}
}

func TestUpstreamDefaultsToInClusterService(t *testing.T) {
	o := newServeOptions(func(k string) string {
		return map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}[k]
	})
	if o.upstream != "https://[fd00::1]:443" {
		t.Errorf("upstream = %q", o.upstream)
	}
}

func TestValidateNamesTheFlagAndTheFix(t *testing.T) {
	valid := func() *serveOptions {
		o := newServeOptions(func(string) string { return "" })
		o.upstream = "https://127.0.0.1:6443"
		o.proxyClientCertFile, o.proxyClientKeyFile = "c.crt", "c.key"
		o.oidc.issuerURL, o.oidc.clientID = "https://issuer", "kubernetes"
		return o
	}
	tests := []struct {
		name   string
		mutate func(*serveOptions)
		want   string
	}{
		{"valid", func(*serveOptions) {}, ""},
		{"no upstream", func(o *serveOptions) { o.upstream = "" }, "--upstream is required"},
		{"http upstream", func(o *serveOptions) { o.upstream = "http://127.0.0.1:8080" }, "must be an https:// URL"},
		{"no proxy cert", func(o *serveOptions) { o.proxyClientKeyFile = "" }, "--proxy-client-cert-file and --proxy-client-key-file are required"},
		{"cert without key", func(o *serveOptions) { o.tlsCertFile = "s.crt" }, "--tls-cert-file and --tls-private-key-file go together"},
		{"no identity source", func(o *serveOptions) { o.oidc.issuerURL, o.oidc.clientID = "", "" }, "no identity source"},
		{"issuer without client id", func(o *serveOptions) { o.oidc.clientID = "" }, "--oidc-issuer-url and --oidc-client-id go together"},
		{"client certificates alone", func(o *serveOptions) {
			o.oidc.issuerURL, o.oidc.clientID = "", ""
			o.clientCAFiles = []string{"ca.crt"}
		}, ""},
		{"authentication config alone", func(o *serveOptions) {
			o.oidc.issuerURL, o.oidc.clientID = "", ""
			o.authenticationConfig = "authn.yaml"
		}, ""},
		{"authentication config with oidc flags", func(o *serveOptions) {
			o.authenticationConfig = "authn.yaml"
			o.oidcFlagsSet = []string{"--oidc-issuer-url"}
		}, "--authentication-config and the --oidc-* flags are mutually exclusive"},
		{"mapping without CA", func(o *serveOptions) { o.clientCertMapping = "m.yaml" }, "need --client-ca-file"},
		{"bad listen", func(o *serveOptions) { o.listen = "8443" }, "--listen \"8443\""},
		{"bad log format", func(o *serveOptions) { o.logFormat = "xml" }, "--log-format \"xml\": use text or json"},
		{"bad log level", func(o *serveOptions) { o.logLevel = "loud" }, "--log-level loud"},
		{"no username header", func(o *serveOptions) { o.usernameHeaders = nil }, "--requestheader-username-headers is empty"},
		{"negative cache ttl", func(o *serveOptions) { o.tokenCacheTTL = -1 }, "--token-cache-ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.mutate(o)
			err := o.validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPKIInitThenFlags(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out, _, err := run(t, nil, "pki", "init", "--dir", dir, "--hosts", "localhost,127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "frontgate flags --requestheader-client-ca-file") {
		t.Errorf("pki init does not print the next command:\n%s", out)
	}
	for _, name := range []string{"requestheader-ca", "proxy-client", "serving-ca", "serving"} {
		info, err := os.Stat(filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s.key has mode %v, want 0600", name, info.Mode().Perm())
		}
	}
	client, err := pki.ReadCertificates(filepath.Join(dir, "proxy-client.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := pki.Pool(filepath.Join(dir, "requestheader-ca.crt"))
	if _, err := client[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("proxy client cert does not chain to the requestheader CA with clientAuth: %v", err)
	}
	serving, _ := pki.ReadCertificates(filepath.Join(dir, "serving.crt"))
	servingRoots, _ := pki.Pool(filepath.Join(dir, "serving-ca.crt"))
	if _, err := serving[0].Verify(x509.VerifyOptions{Roots: servingRoots, DNSName: "localhost"}); err != nil {
		t.Errorf("serving cert does not verify for localhost: %v", err)
	}

	t.Run("refuses to overwrite", func(t *testing.T) {
		_, _, err := run(t, nil, "pki", "init", "--dir", dir, "--hosts", "localhost")
		if err == nil || !strings.Contains(err.Error(), "never overwrites") {
			t.Fatalf("err = %v", err)
		}
	})

	caPath := filepath.Join(dir, "requestheader-ca.crt")
	certPath := filepath.Join(dir, "proxy-client.crt")
	t.Run("args", func(t *testing.T) {
		out, stderr, err := run(t, nil, "flags", "--requestheader-client-ca-file", caPath, "--proxy-client-cert-file", certPath)
		if err != nil {
			t.Fatal(err)
		}
		want := "--requestheader-client-ca-file=" + caPath + "\n" +
			"--requestheader-allowed-names=frontgate\n" +
			"--requestheader-username-headers=X-Remote-User\n" +
			"--requestheader-group-headers=X-Remote-Group\n" +
			"--requestheader-uid-headers=X-Remote-Uid\n" +
			"--requestheader-extra-headers-prefix=X-Remote-Extra-\n"
		if out != want {
			t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
		}
		if stderr != "" {
			t.Errorf("unexpected warnings: %s", stderr)
		}
	})
	t.Run("json with custom headers and no uid", func(t *testing.T) {
		out, _, err := run(t, nil, "flags", "--requestheader-client-ca-file", caPath, "--proxy-client-cert-file", certPath,
			"--requestheader-username-headers", "X-User", "--requestheader-uid-headers", "", "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var flags []apiserverFlag
		if err := json.Unmarshal([]byte(out), &flags); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, f := range flags {
			got[f.Name] = f.Value
		}
		if got["requestheader-username-headers"] != "X-User" {
			t.Errorf("username headers = %q", got["requestheader-username-headers"])
		}
		if _, ok := got["requestheader-uid-headers"]; ok {
			t.Error("uid headers printed although none are configured")
		}
	})
	t.Run("kubeadm", func(t *testing.T) {
		out, _, err := run(t, nil, "flags", "--requestheader-client-ca-file", caPath, "--proxy-client-cert-file", certPath, "--format", "kubeadm")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"apiVersion: kubeadm.k8s.io/v1beta4", "kind: ClusterConfiguration", "extraArgs:", "name: requestheader-allowed-names", "value: frontgate"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubeadm output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("warns when the cert does not chain to the CA", func(t *testing.T) {
		_, stderr, err := run(t, nil, "flags", "--requestheader-client-ca-file", filepath.Join(dir, "serving-ca.crt"), "--proxy-client-cert-file", certPath)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stderr, "does not chain to") {
			t.Errorf("no chain warning on stderr: %q", stderr)
		}
	})
	t.Run("warns that a serving cert lacks clientAuth", func(t *testing.T) {
		_, stderr, err := run(t, nil, "flags", "--requestheader-client-ca-file", filepath.Join(dir, "serving-ca.crt"), "--proxy-client-cert-file", filepath.Join(dir, "serving.crt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stderr, "clientAuth") {
			t.Errorf("no clientAuth warning on stderr: %q", stderr)
		}
	})
	t.Run("serve refuses a proxy cert without clientAuth", func(t *testing.T) {
		_, _, err := run(t, nil, "serve", "--upstream", "https://127.0.0.1:1", "--oidc-issuer-url", "https://issuer.example", "--oidc-client-id", "k",
			"--proxy-client-cert-file", filepath.Join(dir, "serving.crt"), "--proxy-client-key-file", filepath.Join(dir, "serving.key"))
		if err == nil || !strings.Contains(err.Error(), "clientAuth") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("serve refuses a cert that does not match its key", func(t *testing.T) {
		_, _, err := run(t, nil, "serve", "--upstream", "https://127.0.0.1:1", "--oidc-issuer-url", "https://issuer.example", "--oidc-client-id", "k",
			"--proxy-client-cert-file", certPath, "--proxy-client-key-file", filepath.Join(dir, "serving.key"))
		if err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "frontgate dev (commit unknown, go1.") {
		t.Fatalf("version printed %q, %v", out, err)
	}
}

func TestHelpShowsExamples(t *testing.T) {
	for _, args := range [][]string{{"serve", "--help"}, {"flags", "--help"}, {"pki", "init", "--help"}, {"version", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, _, err := run(t, nil, args...)
			if err != nil || !strings.Contains(out, "Examples:") {
				t.Errorf("help lacks examples (%v):\n%s", err, out)
			}
		})
	}
}
