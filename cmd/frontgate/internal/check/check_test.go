package check

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
	"github.com/frontgate/frontgate/proxy"
)

// fixture is a healthy setup: a requestheader CA with frontgate's client
// certificate, a separate cluster CA with kube-apiserver's serving
// certificate, and the ConfigMap kube-apiserver would publish.
type fixture struct {
	now                      time.Time
	requestHeaderCA, otherCA *pki.Pair
	clusterCA                *pki.Pair
	proxyCert                *pki.Pair
	serving                  *pki.Pair
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{now: time.Now()}
	f.requestHeaderCA = newCA(t, "frontgate-requestheader-ca")
	f.otherCA = newCA(t, "some-other-ca")
	f.clusterCA = newCA(t, "cluster-ca")
	f.proxyCert = f.issue(t, f.requestHeaderCA, "frontgate", x509.ExtKeyUsageClientAuth)
	f.serving = issueWith(t, f.clusterCA, pki.Request{CommonName: "kube-apiserver", Hosts: []string{"127.0.0.1", "kubernetes"},
		Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Validity: 365 * 24 * time.Hour})
	return f
}

func newCA(t *testing.T, cn string) *pki.Pair {
	t.Helper()
	key, err := pki.NewKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA(cn, key, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func (f *fixture) issue(t *testing.T, ca *pki.Pair, cn string, usage x509.ExtKeyUsage) *pki.Pair {
	t.Helper()
	return issueWith(t, ca, pki.Request{CommonName: cn, Usage: []x509.ExtKeyUsage{usage}, Validity: 365 * 24 * time.Hour})
}

func issueWith(t *testing.T, ca *pki.Pair, req pki.Request) *pki.Pair {
	t.Helper()
	key, err := pki.NewKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Issue(req, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// intermediateCA makes a CA signed by parent (pki makes only roots).
func intermediateCA(t *testing.T, parent *pki.Pair, cn string) *pki.Pair {
	t.Helper()
	key, err := pki.NewKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * 365 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	return sign(t, tmpl, key, parent)
}

// reissued makes a new self-signed certificate for ca's subject and key.
func reissued(t *testing.T, ca *pki.Pair) *pki.Pair {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: ca.Cert.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * 365 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	return sign(t, tmpl, ca.Key, &pki.Pair{Cert: tmpl, Key: ca.Key})
}

func sign(t *testing.T, tmpl *x509.Certificate, key crypto.Signer, parent *pki.Pair) *pki.Pair {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, key.Public(), parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pki.Pair{Cert: cert, Key: key}
}

func pemOf(pairs ...*pki.Pair) string {
	var b bytes.Buffer
	for _, p := range pairs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
	}
	return b.String()
}

// configMap is what kube-apiserver publishes with the flags of
// `frontgate flags`.
func (f *fixture) configMap() map[string]string {
	return map[string]string{
		KeyClientCA:           pemOf(f.clusterCA),
		KeyRequestHeaderCA:    pemOf(f.requestHeaderCA),
		KeyAllowedNames:       `["frontgate"]`,
		KeyUsernameHeaders:    `["X-Remote-User"]`,
		KeyGroupHeaders:       `["X-Remote-Group"]`,
		KeyUIDHeaders:         `["X-Remote-Uid"]`,
		KeyExtraHeadersPrefix: `["X-Remote-Extra-"]`,
	}
}

func (f *fixture) inputs() Inputs {
	roots := x509.NewCertPool()
	roots.AddCert(f.clusterCA.Cert)
	return Inputs{
		ConfigMap:     f.configMap(),
		Headers:       proxy.DefaultHeaderNames(),
		ProxyCertFile: "proxy-client.crt",
		ProxyChain:    []*x509.Certificate{f.proxyCert.Cert},
		Upstream: &Upstream{URL: "https://127.0.0.1:6443", CAFile: "ca.crt", Roots: roots,
			Chain: []*x509.Certificate{f.serving.Cert}},
		Now: f.now,
	}
}

var allChecks = []string{"requestheader-ca", "proxy-cert", "proxy-cert-chain", "allowed-names", "proxy-cert-expiry",
	"username-headers", "group-headers", "uid-headers", "extra-headers-prefix", "ca-overlap", "upstream-ca"}

func TestRun(t *testing.T) {
	type want struct {
		check    string
		severity Severity
		message  string // substring
		fix      string // substring
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, f *fixture, in *Inputs)
		want   []want
	}{
		{name: "healthy", mutate: func(*testing.T, *fixture, *Inputs) {}},
		{name: "no requestheader CA", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			delete(in.ConfigMap, KeyRequestHeaderCA)
		}, want: []want{{"requestheader-ca", Error, "trusts no authenticating proxy", "--requestheader-client-ca-file"}}},
		{name: "malformed list", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyGroupHeaders] = "X-Remote-Group"
		}, want: []want{{"configmap", Error, "requestheader-group-headers is not a JSON list", "delete it"}}},
		{name: "malformed PEM", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyClientCA] = "garbage"
		}, want: []want{{"configmap", Error, "client-ca-file holds no PEM certificate", ""}}},
		{name: "no ConfigMap skips the cluster checks", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap = nil
		}},
		{name: "cert from another CA", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ProxyChain = []*x509.Certificate{f.issue(t, f.otherCA, "frontgate", x509.ExtKeyUsageClientAuth).Cert}
		}, want: []want{{"proxy-cert-chain", Error, `issuer "CN=some-other-ca") does not chain`, "add it to --requestheader-client-ca-file"}}},
		{name: "intermediate in the cert file", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			mid := intermediateCA(t, f.requestHeaderCA, "frontgate-intermediate")
			in.ProxyChain = []*x509.Certificate{f.issue(t, mid, "frontgate", x509.ExtKeyUsageClientAuth).Cert, mid.Cert}
		}},
		{name: "serverAuth only", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ProxyChain = []*x509.Certificate{f.issue(t, f.requestHeaderCA, "frontgate", x509.ExtKeyUsageServerAuth).Cert}
		}, want: []want{
			{"proxy-cert", Error, "lacks the clientAuth extended key usage", "extKeyUsage clientAuth"},
			{"proxy-cert-chain", OK, "chains to", ""},
		}},
		{name: "wrong CN", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ProxyChain = []*x509.Certificate{f.issue(t, f.requestHeaderCA, "Frontgate", x509.ExtKeyUsageClientAuth).Cert}
		}, want: []want{{"allowed-names", Error, `CN "Frontgate" is not in kube-apiserver's --requestheader-allowed-names ["frontgate"]`,
			"--requestheader-allowed-names=frontgate,Frontgate"}}},
		{name: "empty allowed names", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyAllowedNames] = "[]"
		}, want: []want{{"allowed-names", Warning, "ANY certificate", "--requestheader-allowed-names=frontgate"}}},
		{name: "allowed names absent", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			delete(in.ConfigMap, KeyAllowedNames)
		}, want: []want{{"allowed-names", Warning, "is empty", "--requestheader-allowed-names=frontgate"}}},
		{name: "expired", mutate: func(_ *testing.T, f *fixture, in *Inputs) {
			in.Now = f.proxyCert.Cert.NotAfter.Add(time.Hour)
			in.Upstream = nil
		}, want: []want{
			{"proxy-cert-expiry", Error, `the proxy client certificate (CN "frontgate") expired at`, "issue a new proxy client certificate"},
			{"proxy-cert-chain", OK, "", ""},
		}},
		{name: "expired before its CA was made", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ProxyChain = []*x509.Certificate{leafValid(t, f.requestHeaderCA, "frontgate", f.now.Add(-48*time.Hour), f.now.Add(-24*time.Hour)).Cert}
		}, want: []want{
			{"proxy-cert-expiry", Error, `the proxy client certificate (CN "frontgate") expired at`, "issue a new proxy client certificate"},
			{"proxy-cert-chain", OK, "chains to kube-apiserver's requestheader CA", ""},
		}},
		{name: "expired and from another CA", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ProxyChain = []*x509.Certificate{leafValid(t, f.otherCA, "frontgate", f.now.Add(-48*time.Hour), f.now.Add(-24*time.Hour)).Cert}
		}, want: []want{
			{"proxy-cert-expiry", Error, "expired at", ""},
			{"proxy-cert-chain", Error, "does not chain", "--requestheader-client-ca-file"},
		}},
		{name: "expired CA", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ConfigMap[KeyRequestHeaderCA] = pemOf(reissuedFor(t, f.requestHeaderCA, -time.Minute))
		}, want: []want{
			{"proxy-cert-expiry", Error, `its CA "CN=frontgate-requestheader-ca" expired at`, "renew CA"},
			{"proxy-cert-chain", OK, "", ""},
		}},
		{name: "expired intermediate", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			mid := intermediateCA(t, f.requestHeaderCA, "frontgate-intermediate")
			expiredMid := sign(t, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: mid.Cert.Subject,
				NotBefore: f.now.Add(-48 * time.Hour), NotAfter: f.now.Add(-time.Hour),
				KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}, mid.Key, f.requestHeaderCA)
			in.ProxyChain = []*x509.Certificate{f.issue(t, mid, "frontgate", x509.ExtKeyUsageClientAuth).Cert, expiredMid.Cert}
		}, want: []want{
			{"proxy-cert-expiry", Error, `its CA "CN=frontgate-intermediate" expired at`, "renew CA"},
			{"proxy-cert-chain", OK, "", ""},
		}},
		{name: "not yet valid", mutate: func(_ *testing.T, f *fixture, in *Inputs) {
			in.Now = f.proxyCert.Cert.NotBefore.Add(-time.Hour)
			in.Upstream = nil
		}, want: []want{{"proxy-cert-expiry", Error, "is not valid before", "issue a new"}}},
		{name: "expires in 10 days", mutate: func(_ *testing.T, f *fixture, in *Inputs) {
			in.Now = f.proxyCert.Cert.NotAfter.Add(-10*24*time.Hour - time.Hour)
			in.Upstream = nil
		}, want: []want{{"proxy-cert-expiry", Warning, "expires at", "issue a new proxy client certificate"}}},
		{name: "CA expires first", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ConfigMap[KeyRequestHeaderCA] = pemOf(reissuedFor(t, f.requestHeaderCA, 20*24*time.Hour))
		}, want: []want{{"proxy-cert-expiry", Warning, `its CA "CN=frontgate-requestheader-ca" expires at`, "renew CA"}}},
		{name: "username header mismatch", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Headers.Username = []string{"X-Custom-User"}
		}, want: []want{{"username-headers", Error,
			`frontgate sends "X-Custom-User", which kube-apiserver does not read (it reads ["X-Remote-User"]), so kube-apiserver refuses every request frontgate forwards (401)`,
			"set frontgate's --requestheader-username-headers=X-Remote-User"}}},
		{name: "kube-apiserver reads a header frontgate does not strip", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyUsernameHeaders] = `["X-Remote-User","X-Legacy-User"]`
		}, want: []want{{"username-headers", Error, `reads ["X-Legacy-User"], which frontgate does not strip from clients' requests, so a client can assert any username`,
			"--requestheader-username-headers=X-Remote-User,X-Legacy-User"}}},
		{name: "frontgate strips every name", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyUsernameHeaders] = `["X-Legacy-User","X-Remote-User"]`
			in.Headers.Username = []string{"X-Remote-User", "X-Legacy-User"}
		}},
		{name: "names compare case-insensitively", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyUsernameHeaders] = `["x-remote-user"]`
			in.ConfigMap[KeyExtraHeadersPrefix] = `["x-remote-extra-"]`
		}},
		{name: "no group header", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyGroupHeaders] = "null"
		}, want: []want{{"group-headers", Error, "groups frontgate forwards are dropped", "add --requestheader-group-headers=X-Remote-Group to kube-apiserver"}}},
		{name: "no username header", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			delete(in.ConfigMap, KeyUsernameHeaders)
		}, want: []want{{"username-headers", Error, "no request authenticates", "add --requestheader-username-headers=X-Remote-User to kube-apiserver"}}},
		{name: "cluster without uid header", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			delete(in.ConfigMap, KeyUIDHeaders)
		}, want: []want{{"uid-headers", Warning, "UIDs are dropped", "add --requestheader-uid-headers=X-Remote-Uid to kube-apiserver"}}},
		{name: "neither has a uid header", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			delete(in.ConfigMap, KeyUIDHeaders)
			in.Headers.UID = nil
		}, want: []want{{"uid-headers", Warning, "neither kube-apiserver nor frontgate", "to kube-apiserver and to frontgate"}}},
		{name: "frontgate without uid header still strips kubeadm's", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Headers.UID = nil
		}, want: []want{{"uid-headers", Warning, "not forwarded", "set frontgate's --requestheader-uid-headers=X-Remote-Uid"}}},
		{name: "frontgate without a non-default uid header kube-apiserver reads", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Headers.UID = nil
			in.ConfigMap[KeyUIDHeaders] = `["X-User-Uid"]`
		}, want: []want{{"uid-headers", Error, "a client can assert their UID", "set frontgate's --requestheader-uid-headers=X-User-Uid"}}},
		{name: "frontgate strips the uid header through another list", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Headers.UID = nil
			in.Headers.Username = []string{"X-Remote-User", "X-Remote-Uid"}
		}, want: []want{{"uid-headers", Warning, "not forwarded", "set frontgate's --requestheader-uid-headers=X-Remote-Uid"}}},
		{name: "uid header mismatch", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Headers.UID = []string{"X-Remote-Uid", "X-User-Uid"}
			in.ConfigMap[KeyUIDHeaders] = `["X-User-Uid"]`
		}, want: []want{{"uid-headers", Error, "UIDs frontgate forwards are dropped", "--requestheader-uid-headers=X-User-Uid"}}},
		{name: "shorter extra prefix", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyExtraHeadersPrefix] = `["X-Remote-Extra-","X-Remote-"]`
		}, want: []want{{"extra-headers-prefix", Error, `reads ["X-Remote-"], which frontgate does not strip`, "--requestheader-extra-headers-prefix=X-Remote-Extra-,X-Remote-"}}},
		{name: "no extra prefix", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ConfigMap[KeyExtraHeadersPrefix] = "[]"
		}, want: []want{{"extra-headers-prefix", Warning, "extra attributes frontgate forwards are dropped", "--requestheader-extra-headers-prefix=X-Remote-Extra-"}}},
		{name: "overlapping CA", mutate: func(_ *testing.T, f *fixture, in *Inputs) {
			in.ConfigMap[KeyClientCA] = pemOf(f.clusterCA, f.requestHeaderCA)
		}, want: []want{{"ca-overlap", Error, `share "CN=frontgate-requestheader-ca": a client certificate that CA issues with a CN in ["frontgate"]`, "--requestheader-client-ca-file=<that CA>"}}},
		{name: "overlapping CA and no allowed names", mutate: func(_ *testing.T, f *fixture, in *Inputs) {
			in.ConfigMap[KeyClientCA] = pemOf(f.requestHeaderCA)
			in.ConfigMap[KeyAllowedNames] = "[]"
		}, want: []want{
			{"ca-overlap", Error, "ANY client certificate of the cluster can assert any identity, system:masters included", "separate from --client-ca-file"},
			{"allowed-names", Warning, "", ""},
		}},
		{name: "overlap by a re-issued CA certificate", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			in.ConfigMap[KeyClientCA] = pemOf(reissued(t, f.requestHeaderCA))
		}, want: []want{{"ca-overlap", Error, "share", ""}}},
		{name: "requestheader CA signed by the client CA", mutate: func(t *testing.T, f *fixture, in *Inputs) {
			mid := intermediateCA(t, f.clusterCA, "frontgate-intermediate")
			in.ConfigMap[KeyRequestHeaderCA] = pemOf(mid)
			in.ProxyChain = []*x509.Certificate{f.issue(t, mid, "frontgate", x509.ExtKeyUsageClientAuth).Cert, mid.Cert}
		}, want: []want{{"ca-overlap", Error, `also chains to client-ca-file: kube-apiserver authenticates it as user "frontgate"`, ""}}},
		{name: "no proxy certificate", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.ProxyChain = nil
		}},
		{name: "upstream CA does not verify", mutate: func(_ *testing.T, f *fixture, in *Inputs) {
			in.Upstream.Roots = x509.NewCertPool()
			in.Upstream.Roots.AddCert(f.otherCA.Cert)
		}, want: []want{{"upstream-ca", Error, `presents a certificate (issuer "CN=cluster-ca") that --upstream-ca-file ca.crt does not verify`, "set --upstream-ca-file"}}},
		{name: "upstream host not in the certificate", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Upstream.URL = "https://10.0.0.9:6443"
		}, want: []want{{"upstream-ca", Error, "does not verify", "kubernetes, 127.0.0.1"}}},
		{name: "upstream unreachable", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Upstream.Chain, in.Upstream.DialErr = nil, &net.OpError{Op: "dial", Err: errors.New("connection refused")}
		}, want: []want{{"upstream-ca", Warning, "not checked: cannot reach kube-apiserver at https://127.0.0.1:6443 from here", "run frontgate check where frontgate runs"}}},
		{name: "upstream CA unreadable", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Upstream.Chain, in.Upstream.CAErr = nil, errors.New("open ca.crt: no such file")
		}, want: []want{{"upstream-ca", Error, "cannot read --upstream-ca-file", "set --upstream-ca-file"}}},
		{name: "no upstream", mutate: func(_ *testing.T, _ *fixture, in *Inputs) {
			in.Upstream = &Upstream{}
		}, want: []want{{"upstream-ca", Warning, "--upstream is not set", "give --upstream"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			in := f.inputs()
			tt.mutate(t, f, &in)
			got := Run(in)
			byCheck := map[string]Finding{}
			for _, g := range got {
				if _, dup := byCheck[g.Check]; dup {
					t.Errorf("two findings for %s", g.Check)
				}
				byCheck[g.Check] = g
				if g.Severity != OK && g.Fix == "" {
					t.Errorf("%s: %s finding without a fix", g.Check, g.Severity)
				}
				if g.Severity == OK && g.Fix != "" {
					t.Errorf("%s: ok finding with a fix %q", g.Check, g.Fix)
				}
				if strings.Contains(g.Message, "\n") || strings.Contains(g.Fix, "\n") {
					t.Errorf("%s: not one line: %q / %q", g.Check, g.Message, g.Fix)
				}
			}
			expected := map[string]bool{}
			for _, w := range tt.want {
				expected[w.check] = true
				g, found := byCheck[w.check]
				if !found {
					t.Errorf("no %s finding; got %+v", w.check, got)
					continue
				}
				if g.Severity != w.severity || !strings.Contains(g.Message, w.message) || !strings.Contains(g.Fix, w.fix) {
					t.Errorf("%s finding:\n got %s: %s\n     fix: %s\nwant %s: ...%s...\n     fix: ...%s...", w.check, g.Severity, g.Message, g.Fix, w.severity, w.message, w.fix)
				}
			}
			// Everything not expected otherwise passes.
			for _, g := range got {
				if !expected[g.Check] && g.Severity != OK {
					t.Errorf("unexpected %s finding %s: %s (fix: %s)", g.Severity, g.Check, g.Message, g.Fix)
				}
			}
			if HasErrors(got) != slices.ContainsFunc(tt.want, func(w want) bool { return w.severity == Error }) {
				t.Errorf("HasErrors = %v", HasErrors(got))
			}
		})
	}
}

// leafValid issues a clientAuth certificate valid from notBefore to notAfter.
func leafValid(t *testing.T, ca *pki.Pair, cn string, notBefore, notAfter time.Time) *pki.Pair {
	t.Helper()
	key, err := pki.NewKey("ecdsa")
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, &x509.Certificate{SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, key, ca)
}

// reissuedFor re-issues ca (same subject and key) valid for d from now.
func reissuedFor(t *testing.T, ca *pki.Pair, d time.Duration) *pki.Pair {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(8), Subject: ca.Cert.Subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(d),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	return sign(t, tmpl, ca.Key, &pki.Pair{Cert: tmpl, Key: ca.Key})
}

// TestRunSkipsWhatItCannotCheck checks which findings appear when inputs
// are missing.
func TestRunSkipsWhatItCannotCheck(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		mutate func(*Inputs)
		want   []string
	}{
		{"everything", func(*Inputs) {}, allChecks},
		{"no ConfigMap", func(in *Inputs) { in.ConfigMap = nil }, []string{"proxy-cert", "proxy-cert-expiry", "upstream-ca"}},
		{"no proxy certificate", func(in *Inputs) { in.ProxyChain = nil },
			[]string{"requestheader-ca", "username-headers", "group-headers", "uid-headers", "extra-headers-prefix", "ca-overlap", "upstream-ca"}},
		{"no requestheader CA", func(in *Inputs) { delete(in.ConfigMap, KeyRequestHeaderCA) }, []string{"requestheader-ca", "proxy-cert", "proxy-cert-expiry", "upstream-ca"}},
		{"no upstream", func(in *Inputs) { in.Upstream = nil }, allChecks[:len(allChecks)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := f.inputs()
			tt.mutate(&in)
			var got []string
			for _, g := range Run(in) {
				got = append(got, g.Check)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("checks = %v\nwant     %v", got, tt.want)
			}
		})
	}
}

func TestSourceFindings(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, ConfigMapName, errors.New("RBAC"))
	tests := []struct {
		name     string
		got      Finding
		severity Severity
		message  string
		fix      string
	}{
		{"ConfigMap missing", ConfigMapUnavailable(apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, ConfigMapName)),
			Error, "does not exist", "--kubeconfig and --context"},
		{"ConfigMap forbidden", ConfigMapUnavailable(forbidden), Error, "cannot read kube-system/extension-apiserver-authentication", "extension-apiserver-authentication-reader"},
		{"cluster unreachable", ConfigMapUnavailable(errors.New("dial tcp 127.0.0.1:1: connection refused")), Error, "connection refused", "--kubeconfig"},
		{"no certificate flag", ProxyCertUnavailable("", nil), Error, "--proxy-client-cert-file is not set", "--config"},
		{"unreadable certificate", ProxyCertUnavailable("c.crt", errors.New("open c.crt: permission denied")), Error, "permission denied", "--proxy-client-cert-file"},
		{"key matches", KeyPair("c.key", nil, nil), OK, "belongs to the certificate", ""},
		{"key unreadable", KeyPair("c.key", errors.New("open c.key: no such file"), nil), Warning, "not checked", "point --proxy-client-key-file"},
		{"key mismatch", KeyPair("c.key", nil, errors.New("tls: private key does not match public key")), Error, "does not belong", "the key that belongs"},
		{"through: ok", SelfSubjectReview("https://fg", &authv1.UserInfo{Username: "alice", UID: "u1", Groups: []string{"dev", "system:authenticated"},
			Extra: map[string]authv1.ExtraValue{"b": {"2"}, "a": {"1"}}}, nil, "frontgate"),
			OK, `through https://fg kube-apiserver sees you as user "alice", uid "u1", groups ["dev","system:authenticated"], extra a=["1"] b=["2"]`, ""},
		{"through: anonymous", SelfSubjectReview("https://fg", &authv1.UserInfo{Username: "system:anonymous"}, nil, "frontgate"), Error, "system:anonymous", "fix the errors above"},
		{"through: the proxy itself", SelfSubjectReview("https://fg", &authv1.UserInfo{Username: "frontgate"}, nil, "frontgate"), Error, "frontgate's own certificate", "ca-overlap"},
		{"through: 401", SelfSubjectReview("https://fg", nil, apierrors.NewUnauthorized("token expired"), ""), Error, "token expired", "check the token"},
		{"through: 403", SelfSubjectReview("https://fg", nil, forbidden, ""), Error, "failed", "--allow-reserved-identity"},
		{"through: TLS", SelfSubjectReview("https://fg", nil, errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), ""), Error, "unknown authority", "--through-ca-file"},
		{"through: unreachable", SelfSubjectReview("https://fg", nil, errors.New("connection refused"), ""), Error, "connection refused", "check --through"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.got
			if g.Severity != tt.severity || !strings.Contains(g.Message, tt.message) || !strings.Contains(g.Fix, tt.fix) || (g.Severity != OK) != (g.Fix != "") {
				t.Errorf("got %s: %s\n    fix: %s\nwant %s: ...%s...\n    fix: ...%s...", g.Severity, g.Message, g.Fix, tt.severity, tt.message, tt.fix)
			}
		})
	}
}

func TestWriteText(t *testing.T) {
	var b strings.Builder
	err := WriteText(&b, []Finding{
		{Severity: OK, Check: "proxy-cert", Message: "fine"},
		{Severity: Error, Check: "allowed-names", Message: "bad", Fix: "--requestheader-allowed-names=frontgate"},
		{Severity: Warning, Check: "uid-headers", Message: "meh", Fix: "add it"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "ok       proxy-cert: fine\n" +
		"error    allowed-names: bad\n" +
		"         fix: --requestheader-allowed-names=frontgate\n" +
		"warning  uid-headers: meh\n" +
		"         fix: add it\n" +
		"1 errors, 1 warnings, 1 ok\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
