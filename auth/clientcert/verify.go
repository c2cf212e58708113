package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/frontgate/frontgate/auth"
)

// maxChainCertificates bounds the certificates a client may present (leaf
// included), over TLS or in RFC 9440 headers, so chain building stays cheap.
const maxChainCertificates = 10

// state is one immutable configuration of an Authenticator; a reload
// replaces it as a whole.
type state struct {
	cas     []string               // CA names, in configuration order
	roots   *x509.CertPool         // every anchor of every CA
	anchors map[[32]byte][]string  // anchor fingerprint → names of the CAs holding it
	crls    map[string][]*crlEntry // by the issuer's raw subject
	mapping *Mapping
	trusted []netip.Prefix
	now     func() time.Time
}

// crlEntry is one CRL, with its revoked serials indexed and the result of
// checking its signature against each candidate issuer remembered.
type crlEntry struct {
	crl     *x509.RevocationList
	revoked map[string]bool   // serial numbers, in decimal
	sigOK   sync.Map          // issuer fingerprint [32]byte → bool
	anchor  *x509.Certificate // the CA certificate that signed it, if one did
}

// newState validates cfg and indexes it.
func newState(cfg Config) (*state, error) {
	if len(cfg.CAs) == 0 {
		return nil, errors.New("client certificates: at least one CA is required (--client-ca-file)")
	}
	s := &state{
		roots:   x509.NewCertPool(),
		anchors: map[[32]byte][]string{},
		crls:    map[string][]*crlEntry{},
		mapping: cfg.Mapping,
		now:     cfg.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	var all []*x509.Certificate
	for _, ca := range cfg.CAs {
		if err := checkCAName(ca.Name); err != nil {
			return nil, err
		}
		if slices.Contains(s.cas, ca.Name) {
			return nil, fmt.Errorf("client certificates: two CAs are named %q", ca.Name)
		}
		if len(ca.Certificates) == 0 {
			return nil, fmt.Errorf("client certificates: CA %q has no certificate", ca.Name)
		}
		s.cas = append(s.cas, ca.Name)
		for _, c := range ca.Certificates {
			if c == nil {
				return nil, fmt.Errorf("client certificates: CA %q has a nil certificate", ca.Name)
			}
			if !c.BasicConstraintsValid || !c.IsCA {
				return nil, fmt.Errorf("client certificates: CA %q: %q is not a CA certificate", ca.Name, c.Subject.String())
			}
			sum := sha256.Sum256(c.Raw)
			if !slices.Contains(s.anchors[sum], ca.Name) {
				s.anchors[sum] = append(s.anchors[sum], ca.Name)
			}
			s.roots.AddCert(c)
			all = append(all, c)
		}
	}
	if cfg.Mapping != nil {
		for _, name := range cfg.Mapping.caNames() {
			if !slices.Contains(s.cas, name) {
				return nil, fmt.Errorf("client certificates: the mapping refers to CA %q, which is not configured", name)
			}
		}
		for _, name := range s.cas {
			if !slices.Contains(cfg.Mapping.caNames(), name) {
				return nil, fmt.Errorf("client certificates: CA %q is named by no mapping entry", name)
			}
		}
	}
	for i, crl := range cfg.CRLs {
		if crl == nil {
			return nil, fmt.Errorf("client certificates: CRL %d is nil", i)
		}
		e := &crlEntry{crl: crl, revoked: map[string]bool{}}
		for _, rc := range crl.RevokedCertificateEntries {
			if rc.SerialNumber != nil {
				e.revoked[rc.SerialNumber.String()] = true
			}
		}
		// A CRL issued by a configured CA must verify now; one issued by an
		// intermediate is checked against it when a chain uses it.
		named := false
		for _, c := range all {
			if string(c.RawSubject) != string(crl.RawIssuer) {
				continue
			}
			named = true
			if crl.CheckSignatureFrom(c) == nil {
				e.anchor = c
				break
			}
		}
		if named && e.anchor == nil {
			return nil, fmt.Errorf("client certificates: the CRL of %q is not signed by the configured CA of that name", crl.Issuer.String())
		}
		key := string(crl.RawIssuer)
		s.crls[key] = append(s.crls[key], e)
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("client certificates: invalid trusted proxy prefix %v", p)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("client certificates: trusted proxy prefix %v covers every address; any client could then claim any certificate", p)
		}
		s.trusted = append(s.trusted, p.Masked())
	}
	return s, nil
}

// trustedProxy reports whether remoteAddr (host:port, as in
// http.Request.RemoteAddr) is inside a trusted prefix.
func (s *state) trustedProxy(remoteAddr string) bool {
	if len(s.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range s.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// verified is the outcome of a successful verification.
type verified struct {
	leaf    *x509.Certificate
	cas     []string  // names of the CAs some unrevoked chain ends at, in configuration order
	expires time.Time // earliest NotAfter along the chains
}

// verify checks the leaf against the configured CAs: time, chain, clientAuth
// usage, then revocation. Every failure is an *auth.Error.
func (s *state) verify(certs []*x509.Certificate) (*verified, error) {
	leaf := certs[0]
	now := s.now()
	who := describe(leaf)
	if now.Before(leaf.NotBefore) {
		return nil, &auth.Error{Reason: auth.ReasonCertificateNotYetValid, Message: fmt.Sprintf("the client certificate %s is not valid before %s", who, formatTime(leaf.NotBefore))}
	}
	if now.After(leaf.NotAfter) {
		return nil, &auth.Error{Reason: auth.ReasonCertificateExpired, Message: fmt.Sprintf("the client certificate %s expired at %s", who, formatTime(leaf.NotAfter))}
	}
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         s.roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, classify(who, err)
	}
	v := &verified{leaf: leaf}
	var revoked error
	for _, chain := range chains {
		if err := s.checkRevocation(chain); err != nil {
			revoked = err
			continue
		}
		for _, name := range s.anchors[sha256.Sum256(chain[len(chain)-1].Raw)] {
			if !slices.Contains(v.cas, name) {
				v.cas = append(v.cas, name)
			}
		}
		for _, c := range chain {
			if v.expires.IsZero() || c.NotAfter.Before(v.expires) {
				v.expires = c.NotAfter
			}
		}
	}
	if len(v.cas) == 0 {
		if revoked != nil {
			return nil, revoked
		}
		return nil, &auth.Error{Reason: auth.ReasonUnknownAuthority, Message: fmt.Sprintf("the client certificate %s does not chain to a configured CA", who)}
	}
	slices.SortFunc(v.cas, func(a, b string) int { return slices.Index(s.cas, a) - slices.Index(s.cas, b) })
	return v, nil
}

// checkRevocation reports the first certificate of chain (anchor excluded)
// listed in a CRL signed by its issuer.
func (s *state) checkRevocation(chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		c, issuer := chain[i], chain[i+1]
		for _, e := range s.crls[string(c.RawIssuer)] {
			if !e.revoked[c.SerialNumber.String()] || !e.signedBy(issuer) {
				continue
			}
			what := "client certificate"
			if i > 0 {
				what = "intermediate CA certificate"
			}
			return &auth.Error{Reason: auth.ReasonCertificateRevoked, Message: fmt.Sprintf("the %s %s is revoked by the CRL of %q", what, describe(c), e.crl.Issuer.String())}
		}
	}
	return nil
}

// signedBy reports whether issuer's key signed the CRL, remembering the
// answer per issuer.
func (e *crlEntry) signedBy(issuer *x509.Certificate) bool {
	if e.anchor != nil && e.anchor.Equal(issuer) {
		return true
	}
	sum := sha256.Sum256(issuer.Raw)
	if ok, found := e.sigOK.Load(sum); found {
		return ok.(bool)
	}
	ok := e.crl.CheckSignatureFrom(issuer) == nil
	e.sigOK.Store(sum, ok)
	return ok
}

// classify turns an x509 verification error into an *auth.Error.
func classify(who string, err error) error {
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return &auth.Error{Reason: auth.ReasonUnknownAuthority, Message: fmt.Sprintf("the client certificate %s is not signed by a CA given with --client-ca-file", who), Err: err}
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		switch invalid.Reason {
		case x509.Expired:
			return &auth.Error{Reason: auth.ReasonCertificateExpired, Message: fmt.Sprintf("a certificate in the chain of %s is outside its validity period: %s", who, invalid.Detail), Err: err}
		case x509.IncompatibleUsage:
			return &auth.Error{Reason: auth.ReasonCertificateUsage, Message: fmt.Sprintf("the client certificate %s is not valid for client authentication: its extended key usage (or an issuer's) lacks clientAuth", who), Err: err}
		}
	}
	return &auth.Error{Reason: auth.ReasonInvalidCertificate, Message: fmt.Sprintf("the client certificate %s does not verify: %v", who, err), Err: err}
}

// describe names a certificate in messages: its subject and issuer.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (issuer %q)", truncate(c.Subject.String(), 200), truncate(c.Issuer.String(), 200))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
