package check

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/frontgate/frontgate/proxy"
)

// reissueFix is the fix for a proxy client certificate kube-apiserver will
// not accept.
const reissueFix = "issue a new proxy client certificate from the requestheader CA with extKeyUsage clientAuth and an allowed CN (frontgate pki init does), and point --proxy-client-cert-file and --proxy-client-key-file at it (serve reloads changed files)"

// proxyCertificate reports what makes leaf unusable as a front-proxy client
// certificate whatever the CA: no clientAuth, an empty CN.
func proxyCertificate(file string, leaf *x509.Certificate) Finding {
	const name = "proxy-cert"
	if err := proxy.CheckClientCertificate(leaf); err != nil {
		return failure(name, reissueFix, "%s: %s", file, oneLine(err))
	}
	return ok(name, "%s: CN %q, extended key usage allows clientAuth", file, leaf.Subject.CommonName)
}

// chain verifies the proxy client certificate against kube-apiserver's
// requestheader CAs as kube-apiserver does (intermediates from the file,
// clientAuth). Validity in time is the expiry check's business: when a
// certificate is out of its validity, the chain is followed by signatures
// alone. It returns the chain, leaf first, root last.
func chain(file string, certs []*x509.Certificate, roots []*x509.Certificate, now time.Time) ([]*x509.Certificate, Finding) {
	const name = "proxy-cert-chain"
	leaf := certs[0]
	opts := x509.VerifyOptions{
		Roots:         pool(roots),
		Intermediates: pool(certs[1:]),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	chains, err := leaf.Verify(opts)
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage {
		// The missing clientAuth is reported by the proxy-cert check;
		// here only the chain matters.
		opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		chains, err = leaf.Verify(opts)
	}
	if err != nil {
		if bySignature := signatureChain(certs, roots); bySignature != nil && slices.ContainsFunc(bySignature, func(c *x509.Certificate) bool {
			return now.Before(c.NotBefore) || now.After(c.NotAfter)
		}) {
			chains, err = [][]*x509.Certificate{bySignature}, nil
		}
	}
	if err != nil {
		return nil, failure(name,
			fmt.Sprintf("give kube-apiserver the CA that signed the certificate (issuer %q): add it to --requestheader-client-ca-file (a bundle may hold several CAs), or use a proxy client certificate from a CA it already trusts", leaf.Issuer.String()),
			"%s (issuer %q) does not chain to kube-apiserver's %s (%s): %s; kube-apiserver ignores every identity frontgate forwards",
			file, leaf.Issuer.String(), KeyRequestHeaderCA, subjects(roots), oneLine(err))
	}
	root := chains[0][len(chains[0])-1]
	return chains[0], ok(name, "%s chains to kube-apiserver's requestheader CA %q", file, root.Subject.String())
}

// signatureChain follows signatures from the leaf through the file's
// intermediates to one of roots, ignoring validity periods; nil when there
// is no such chain.
func signatureChain(certs, roots []*x509.Certificate) []*x509.Certificate {
	path := []*x509.Certificate{certs[0]}
	for range len(certs) + 1 {
		cur := path[len(path)-1]
		for _, r := range roots {
			if cur.CheckSignatureFrom(r) == nil {
				return append(path, r)
			}
		}
		next := slices.IndexFunc(certs[1:], func(c *x509.Certificate) bool {
			return !slices.Contains(path, c) && cur.CheckSignatureFrom(c) == nil
		})
		if next < 0 {
			return nil
		}
		path = append(path, certs[1+next])
	}
	return nil
}

// allowedNames checks the leaf's CN against --requestheader-allowed-names
// (an exact, case-sensitive match; SANs are ignored).
func allowedNames(leaf *x509.Certificate, allowed []string) Finding {
	const name = "allowed-names"
	cn := leaf.Subject.CommonName
	if len(allowed) == 0 {
		return warning(name,
			fmt.Sprintf("add --requestheader-allowed-names=%s to kube-apiserver (plus the CN of any other front proxy using that CA, e.g. front-proxy-client)", flagValue(cn)),
			"kube-apiserver's --requestheader-allowed-names is empty: ANY certificate its requestheader CA signed can assert any identity, not only frontgate's")
	}
	if slices.Contains(allowed, cn) {
		return ok(name, "the proxy client certificate's CN %q is in kube-apiserver's --requestheader-allowed-names %s", cn, quoteList(allowed))
	}
	return failure(name,
		fmt.Sprintf("add the CN to kube-apiserver: --requestheader-allowed-names=%s, or use a proxy client certificate whose CN is one of %s", flagValue(append(slices.Clone(allowed), cn)...), quoteList(allowed)),
		"the proxy client certificate's CN %q is not in kube-apiserver's --requestheader-allowed-names %s (exact, case-sensitive match): kube-apiserver refuses frontgate's requests with 401",
		cn, quoteList(allowed))
}

// expiry checks that every certificate from the leaf up to the CA is valid
// now and for at least [ExpiryWarning].
func expiry(leaf *x509.Certificate, chain []*x509.Certificate, now time.Time) Finding {
	const name = "proxy-cert-expiry"
	fix := func(c *x509.Certificate) string {
		if c == leaf {
			return reissueFix
		}
		return fmt.Sprintf("renew CA %q; while both are in use, give kube-apiserver the old and the new CA in one --requestheader-client-ca-file bundle", c.Subject.String())
	}
	for _, c := range chain {
		if now.Before(c.NotBefore) {
			return failure(name, fix(c), "%s is not valid before %s (now %s): kube-apiserver refuses it; check the clocks",
				describe(c, leaf), c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		if now.After(c.NotAfter) {
			return failure(name, fix(c), "%s expired at %s: kube-apiserver refuses frontgate's requests with 401",
				describe(c, leaf), c.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	first := chain[0]
	for _, c := range chain {
		if c.NotAfter.Before(first.NotAfter) {
			first = c
		}
	}
	left := first.NotAfter.Sub(now)
	if left < ExpiryWarning {
		return warning(name, fix(first), "%s expires at %s, in %s", describe(first, leaf), first.NotAfter.UTC().Format(time.RFC3339), days(left))
	}
	return ok(name, "%s is valid until %s (%s)", describe(first, leaf), first.NotAfter.UTC().Format(time.RFC3339), days(left))
}

// caOverlap reports a requestheader CA that also signs ordinary client
// certificates: then client certificates can assert identities, and
// frontgate's certificate authenticates on its own.
func caOverlap(c *Cluster, proxyChain []*x509.Certificate, now time.Time) Finding {
	const name = "ca-overlap"
	fix := "give kube-apiserver a requestheader CA that signs nothing but front proxies (frontgate pki init makes one): --requestheader-client-ca-file=<that CA> with --requestheader-allowed-names=<frontgate's CN>, separate from --client-ca-file"
	var shared []*x509.Certificate
	for _, rh := range c.RequestHeaderCA {
		if slices.ContainsFunc(c.ClientCA, func(cc *x509.Certificate) bool { return sameCA(rh, cc) }) {
			shared = append(shared, rh)
		}
	}
	if len(shared) > 0 {
		if len(c.AllowedNames) == 0 {
			return failure(name, fix,
				"%s and %s share %s and --requestheader-allowed-names is empty: ANY client certificate of the cluster can assert any identity, system:masters included (kube-apiserver 1.35+ refuses to start like this)",
				KeyRequestHeaderCA, KeyClientCA, subjects(shared))
		}
		return failure(name, fix,
			"%s and %s share %s: a client certificate that CA issues with a CN in %s (e.g. through an approved CertificateSigningRequest) can assert any identity, and frontgate's certificate also authenticates as a user on its own",
			KeyRequestHeaderCA, KeyClientCA, subjects(shared), quoteList(c.AllowedNames))
	}
	if len(proxyChain) > 0 && len(c.ClientCA) > 0 {
		leaf := proxyChain[0]
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: pool(c.ClientCA), Intermediates: pool(proxyChain[1:]), CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err == nil {
			return failure(name, fix,
				"frontgate's proxy client certificate also chains to %s: kube-apiserver authenticates it as user %q whenever a request carries no identity headers",
				KeyClientCA, leaf.Subject.CommonName)
		}
	}
	return ok(name, "no requestheader CA is also in %s", KeyClientCA)
}

// sameCA reports whether a and b are one CA: the same certificate, or the
// same subject and key (a re-issued CA certificate verifies the same leaves).
func sameCA(a, b *x509.Certificate) bool {
	return a.Equal(b) || (bytes.Equal(a.RawSubject, b.RawSubject) && bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo))
}

// Upstream is what the caller found out about kube-apiserver at frontgate's
// --upstream.
type Upstream struct {
	// URL is --upstream; empty when not set.
	URL string
	// CAFile is --upstream-ca-file; empty means the system roots.
	CAFile string
	// Roots is CAFile's content; nil means the system roots.
	Roots *x509.CertPool
	// CAErr is why CAFile could not be read.
	CAErr error
	// Chain is the certificate chain kube-apiserver presented, leaf first.
	Chain []*x509.Certificate
	// DialErr is why no chain was obtained.
	DialErr error
}

// check verifies kube-apiserver's serving certificate for the host of URL
// with the upstream CA, as frontgate will.
func (u *Upstream) check(now time.Time) Finding {
	const name = "upstream-ca"
	caFix := "set --upstream-ca-file to the CA that signed kube-apiserver's serving certificate (kubeadm: /etc/kubernetes/pki/ca.crt; in a pod: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)"
	what := "--upstream-ca-file " + u.CAFile
	if u.CAFile == "" {
		what = "the system roots (no --upstream-ca-file)"
	}
	switch {
	case u.URL == "":
		return warning(name, "give --upstream (as frontgate serve gets it) to check kube-apiserver's serving certificate from here",
			"not checked: --upstream is not set")
	case u.CAErr != nil:
		return failure(name, caFix, "cannot read --upstream-ca-file: %s", oneLine(u.CAErr))
	case u.DialErr != nil || len(u.Chain) == 0:
		reason := "no certificate"
		if u.DialErr != nil {
			reason = oneLine(u.DialErr)
		}
		return warning(name, "run frontgate check where frontgate runs, or give the --upstream this machine reaches",
			"not checked: cannot reach kube-apiserver at %s from here: %s", u.URL, reason)
	}
	host := u.URL
	if parsed, err := url.Parse(u.URL); err == nil && parsed.Hostname() != "" {
		host = parsed.Hostname()
	}
	leaf := u.Chain[0]
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: u.Roots, Intermediates: pool(u.Chain[1:]), DNSName: host, CurrentTime: now,
	})
	if err != nil {
		fix := caFix
		var hostErr x509.HostnameError
		if errors.As(err, &hostErr) {
			fix = fmt.Sprintf("point --upstream at a name kube-apiserver's certificate holds (%s), or add %s to its serving certificate (kube-apiserver --tls-cert-file; kubeadm: apiServer.certSANs)", sans(leaf), host)
		}
		return failure(name, fix, "kube-apiserver at %s presents a certificate (issuer %q) that %s does not verify: %s; frontgate cannot reach kube-apiserver",
			u.URL, leaf.Issuer.String(), what, oneLine(err))
	}
	return ok(name, "kube-apiserver's serving certificate at %s verifies with %s", u.URL, what)
}

// pool makes a certificate pool of certs.
func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// describe names c in a message: "the proxy client certificate" or the CA.
func describe(c, leaf *x509.Certificate) string {
	if c == leaf {
		return fmt.Sprintf("the proxy client certificate (CN %q)", c.Subject.CommonName)
	}
	return fmt.Sprintf("its CA %q", c.Subject.String())
}

// days formats d in days, for expiry messages.
func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// sans lists a serving certificate's names.
func sans(c *x509.Certificate) string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// flagValue joins values for a flag given as --name=a,b.
func flagValue(values ...string) string { return strings.Join(values, ",") }

// oneLine makes an error message fit one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
