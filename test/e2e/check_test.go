package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/frontgate/frontgate/test/cluster"
)

// checkFinding and checkReport are `frontgate check -o json`'s output.
type checkFinding struct {
	Severity, Check, Message, Fix string
}

type checkReport struct {
	Findings []checkFinding
	User     *authv1.UserInfo
}

// find returns the finding of check name.
func (r checkReport) find(t *testing.T, name string) checkFinding {
	t.Helper()
	for _, f := range r.Findings {
		if f.Check == name {
			return f
		}
	}
	t.Fatalf("no %s finding in %+v", name, r.Findings)
	return checkFinding{}
}

// frontgatePKI returns the path of a file `frontgate pki init` wrote.
func frontgatePKI(name string) string { return filepath.Join(env.FrontgatePKIDir, name) }

// checkArgs are the flags of `frontgate check` for the shared cluster and
// the shared frontgate's settings.
func checkArgs() []string {
	return []string{"check", "-o", "json",
		"--kubeconfig", env.AdminKubeconfig,
		"--proxy-client-cert-file", frontgatePKI("proxy-client.crt"),
		"--proxy-client-key-file", frontgatePKI("proxy-client.key"),
		"--upstream", env.APIServerURL, "--upstream-ca-file", env.CAFile,
	}
}

// runCheck runs the frontgate binary's check command and returns its report
// and exit status.
func runCheck(t *testing.T, environ []string, args ...string) (checkReport, int) {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(c, env.FrontgateBinary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), environ...)
	err := cmd.Run()
	code, err := exitCode(err)
	if err != nil {
		t.Fatalf("frontgate %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	var r checkReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("frontgate check -o json printed no report (%v), exit %d:\nstdout: %s\nstderr: %s", err, code, stdout.String(), stderr.String())
	}
	return r, code
}

// proxyCert issues a client certificate with cn from frontgate's
// requestheader CA (the CA kube-apiserver trusts), valid from notBefore to
// notAfter, and returns its certificate and key files.
func proxyCert(t *testing.T, cn string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	caCert := readPEM(t, frontgatePKI("requestheader-ca.crt"), "CERTIFICATE")
	ca, err := x509.ParseCertificate(caCert)
	if err != nil {
		t.Fatal(err)
	}
	caKeyAny, err := x509.ParsePKCS8PrivateKey(readPEM(t, frontgatePKI("requestheader-ca.key"), "PRIVATE KEY"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, key.Public(), caKeyAny.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "proxy.crt"), filepath.Join(dir, "proxy.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// readPEM returns the first block of type typ in file.
func readPEM(t *testing.T, file, typ string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			t.Fatalf("%s holds no %s", file, typ)
		}
		if b.Type == typ {
			return b.Bytes
		}
	}
}

// seededConfigMap writes the cluster's real extension-apiserver-
// authentication ConfigMap, changed by mutate, to a file for
// --configmap-file. The shared kube-apiserver is left as it is.
func seededConfigMap(t *testing.T, mutate func(data map[string]string)) string {
	t.Helper()
	out := admin(t, "-n", "kube-system", "get", "configmap", "extension-apiserver-authentication", "-o", "yaml")
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(out), &cm); err != nil {
		t.Fatal(err)
	}
	mutate(cm.Data)
	b, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheck runs `frontgate check` against the shared cluster: the healthy
// setup passes, and each seeded misconfiguration is reported with its fix.
func TestCheck(t *testing.T) {
	need(t)
	now := time.Now()
	type want struct{ check, severity, message, fix string }
	tests := []struct {
		name     string
		args     func(t *testing.T) []string
		wantExit int
		want     []want
	}{
		{
			name: "healthy",
			args: func(*testing.T) []string { return checkArgs() },
		},
		{
			name: "wrong CN",
			args: func(t *testing.T) []string {
				cert, key := proxyCert(t, "not-frontgate", now.Add(-time.Hour), now.Add(365*24*time.Hour))
				return append(checkArgs(), "--proxy-client-cert-file", cert, "--proxy-client-key-file", key)
			},
			wantExit: 1,
			want: []want{{"allowed-names", "error", `CN "not-frontgate" is not in kube-apiserver's --requestheader-allowed-names ["frontgate"]`,
				"--requestheader-allowed-names=frontgate,not-frontgate"}},
		},
		{
			name: "header names differ from kube-apiserver's",
			args: func(*testing.T) []string {
				return append(checkArgs(), "--requestheader-username-headers", "X-Custom-User")
			},
			wantExit: 1,
			want: []want{{"username-headers", "error", `frontgate sends "X-Custom-User", which kube-apiserver does not read`,
				"set frontgate's --requestheader-username-headers=X-Remote-User"}},
		},
		{
			// frontgate still strips a client's X-Remote-Uid: UIDs are only
			// dropped, so this is a warning.
			name: "frontgate without the uid header kube-apiserver reads",
			args: func(*testing.T) []string {
				return append(checkArgs(), "--requestheader-uid-headers", "")
			},
			wantExit: 0,
			want: []want{{"uid-headers", "warning", `although kube-apiserver reads ["X-Remote-Uid"], so they are not forwarded`,
				"set frontgate's --requestheader-uid-headers=X-Remote-Uid"}},
		},
		{
			name: "expired certificate",
			args: func(t *testing.T) []string {
				cert, key := proxyCert(t, "frontgate", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
				return append(checkArgs(), "--proxy-client-cert-file", cert, "--proxy-client-key-file", key)
			},
			wantExit: 1,
			want: []want{{"proxy-cert-expiry", "error", `the proxy client certificate (CN "frontgate") expired at`,
				"issue a new proxy client certificate from the requestheader CA"}},
		},
		{
			name: "certificate expiring in 10 days",
			args: func(t *testing.T) []string {
				cert, key := proxyCert(t, "frontgate", now.Add(-time.Hour), now.Add(10*24*time.Hour+time.Hour))
				return append(checkArgs(), "--proxy-client-cert-file", cert, "--proxy-client-key-file", key)
			},
			want: []want{{"proxy-cert-expiry", "warning", "expires at", "issue a new proxy client certificate"}},
		},
		{
			name: "requestheader CA also in client-ca-file",
			args: func(t *testing.T) []string {
				ca, err := os.ReadFile(frontgatePKI("requestheader-ca.crt"))
				if err != nil {
					t.Fatal(err)
				}
				cm := seededConfigMap(t, func(d map[string]string) { d["client-ca-file"] += string(ca) })
				return append(checkArgs(), "--configmap-file", cm)
			},
			wantExit: 1,
			want: []want{{"ca-overlap", "error", "requestheader-client-ca-file and client-ca-file share",
				"--requestheader-client-ca-file=<that CA>"}},
		},
		{
			name: "wrong upstream CA",
			args: func(*testing.T) []string {
				return append(checkArgs(), "--upstream-ca-file", frontgatePKI("serving-ca.crt"))
			},
			wantExit: 1,
			want:     []want{{"upstream-ca", "error", "does not verify", "set --upstream-ca-file"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, code := runCheck(t, nil, tt.args(t)...)
			if code != tt.wantExit {
				t.Errorf("exit status %d, want %d; findings: %+v", code, tt.wantExit, r.Findings)
			}
			expected := map[string]bool{}
			for _, w := range tt.want {
				expected[w.check] = true
				f := r.find(t, w.check)
				if f.Severity != w.severity || !strings.Contains(f.Message, w.message) || !strings.Contains(f.Fix, w.fix) {
					t.Errorf("%s finding:\n got %s: %s\n     fix: %s\nwant %s: ...%s...\n     fix: ...%s...", w.check, f.Severity, f.Message, f.Fix, w.severity, w.message, w.fix)
				}
			}
			for _, f := range r.Findings {
				if !expected[f.Check] && f.Severity != "ok" {
					t.Errorf("unexpected %s finding %s: %s (fix: %s)", f.Severity, f.Check, f.Message, f.Fix)
				}
			}
			if len(r.Findings) < 12 {
				t.Errorf("only %d findings: %+v", len(r.Findings), r.Findings)
			}
		})
	}
}

// TestCheckThrough sends the SelfSubjectReview of `frontgate check
// --through` through the shared frontgate with a real ID token, and through
// a kubeconfig context whose exec plugin supplies it.
func TestCheckThrough(t *testing.T) {
	need(t)
	token := idToken(t, cluster.ClientWeb, "alice")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	cred, err := json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
		"status": map[string]any{"token": token},
	})
	if err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(dir, "credential.json")
	if err := os.WriteFile(credFile, cred, 0o600); err != nil {
		t.Fatal(err)
	}
	caData, err := os.ReadFile(frontgatePKI("serving-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	// A kubeconfig context as `frontgate kubeconfig` writes it, whose exec
	// plugin prints the ExecCredential `frontgate login` would.
	userKubeconfig := filepath.Join(dir, "user.kubeconfig")
	kc, err := yaml.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Config",
		"clusters": []any{map[string]any{"name": "fg", "cluster": map[string]any{"server": fg.URL, "certificate-authority-data": caData}}},
		"users": []any{map[string]any{"name": "fg", "user": map[string]any{"exec": map[string]any{
			"apiVersion": "client.authentication.k8s.io/v1", "command": "cat", "args": []string{credFile}, "interactiveMode": "Never",
		}}}},
		"contexts": []any{map[string]any{"name": "fg", "context": map[string]any{"cluster": "fg", "user": "fg"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(userKubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	want := wantUserInfo("alice")
	tests := []struct {
		name     string
		environ  []string
		args     []string
		wantExit int
		wantUser *authv1.UserInfo
		message  string
		fix      string
	}{
		{
			name:     "token file",
			args:     []string{"--through", fg.URL, "--token-file", tokenFile, "--through-ca-file", frontgatePKI("serving-ca.crt")},
			wantUser: &want,
			message:  `kube-apiserver sees you as user "` + want.Username + `", uid "alice"`,
		},
		{
			name: "kubeconfig context with an exec plugin",
			// --kubeconfig (admin) and the user's file, merged by
			// client-go's loading rules through $KUBECONFIG.
			environ:  []string{"KUBECONFIG=" + env.AdminKubeconfig + string(filepath.ListSeparator) + userKubeconfig},
			args:     []string{"--kubeconfig", "", "--context", "e2e-admin", "--through-context", "fg"},
			wantUser: &want,
			message:  `kube-apiserver sees you as user "` + want.Username + `"`,
		},
		{
			name:     "bad token",
			args:     []string{"--through", fg.URL, "--token", "not-a-token", "--through-ca-file", frontgatePKI("serving-ca.crt")},
			wantExit: 1,
			message:  "SelfSubjectReview through " + fg.URL + " failed: ",
			fix:      "check the token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, code := runCheck(t, tt.environ, append(checkArgs(), tt.args...)...)
			if code != tt.wantExit {
				t.Errorf("exit status %d, want %d; findings: %+v", code, tt.wantExit, r.Findings)
			}
			f := r.find(t, "through")
			if !strings.Contains(f.Message, tt.message) || !strings.Contains(f.Fix, tt.fix) {
				t.Errorf("through finding %s: %s (fix: %s); want ...%s... (fix ...%s...)", f.Severity, f.Message, f.Fix, tt.message, tt.fix)
			}
			if tt.wantUser != nil && (r.User == nil || !sameUser(*r.User, *tt.wantUser)) {
				t.Errorf("user = %+v, want %s", r.User, fmtUser(*tt.wantUser))
			}
			for _, f := range r.Findings {
				if f.Check != "through" && f.Severity != "ok" {
					t.Errorf("unexpected %s finding %s: %s", f.Severity, f.Check, f.Message)
				}
			}
		})
	}
}
