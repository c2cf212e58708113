package clientcert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/frontgate/frontgate/auth"
)

// SourcePrefix starts Identity.Source of every identity this package
// establishes; the mapping entry's name follows ("default" without a
// mapping file).
const SourcePrefix = "client-certificate:"

// Authenticator authenticates client certificates: presented in the TLS
// handshake, or passed on by a trusted TLS-terminating proxy in RFC 9440
// headers. It implements auth.Authenticator, is safe for concurrent use, and
// its configuration can be replaced at run time with [Authenticator.Update].
type Authenticator struct {
	state atomic.Pointer[state]
	// hint is the acceptable-CA list advertised by [Authenticator.TLSConfig]:
	// the CAs of the configuration given to New.
	hint *x509.CertPool
}

// New validates cfg and returns an Authenticator. It does no I/O.
func New(cfg Config) (*Authenticator, error) {
	s, err := newState(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{hint: s.roots}
	a.state.Store(s)
	return a, nil
}

// Update validates cfg and, when it is valid, makes it the configuration of
// every later request; otherwise it returns the error and the current
// configuration stays. Requests in flight finish with the configuration they
// started with.
func (a *Authenticator) Update(cfg Config) error {
	s, err := newState(cfg)
	if err != nil {
		return err
	}
	a.state.Store(s)
	return nil
}

// TLSConfig returns a clone of base (a new Config when base is nil) set up
// for frontgate's listener: ClientAuth is tls.RequestClientCert, so that a
// client may present a certificate and callers with bearer tokens still
// connect without one; crypto/tls then verifies nothing, and
// [Authenticator.AuthenticateRequest] does all verification. ClientCAs, the
// acceptable-CA hint sent to clients, lists the CAs given to New: clients
// built on crypto/tls (kubectl) send a certificate only when its issuer is
// listed, so a CA added by a later [Authenticator.Update] is used for
// verification at once but advertised only after a restart.
func (a *Authenticator) TLSConfig(base *tls.Config) *tls.Config {
	var c *tls.Config
	if base == nil {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		c = base.Clone()
	}
	c.ClientAuth = tls.RequestClientCert
	c.ClientCAs = a.hint
	return c
}

// AuthenticateRequest authenticates the client certificate of r, with the
// three outcomes of auth.Authenticator. The certificate is read from the RFC
// 9440 headers when r.RemoteAddr is a trusted proxy and it sent a
// Client-Cert header, and otherwise from the TLS handshake
// (r.TLS.PeerCertificates); from any other address the headers are ignored.
// No certificate is (nil, false, nil). It does not modify r.
func (a *Authenticator) AuthenticateRequest(r *http.Request) (*auth.Identity, bool, error) {
	s := a.state.Load()
	var certs []*x509.Certificate
	if s.trustedProxy(r.RemoteAddr) {
		var err error
		if certs, err = forwardedChain(r.Header); err != nil {
			return nil, false, err
		}
	}
	if certs == nil && r.TLS != nil {
		certs = r.TLS.PeerCertificates
	}
	if len(certs) == 0 {
		return nil, false, nil
	}
	return s.authenticate(certs)
}

// AuthenticateCertificates authenticates a presented chain, leaf first,
// exactly as AuthenticateRequest does for a certificate from the TLS
// handshake. An offline "what would this certificate map to" command can use
// it.
func (a *Authenticator) AuthenticateCertificates(certs []*x509.Certificate) (*auth.Identity, bool, error) {
	if len(certs) == 0 {
		return nil, false, nil
	}
	return a.state.Load().authenticate(certs)
}

func (s *state) authenticate(certs []*x509.Certificate) (*auth.Identity, bool, error) {
	if len(certs) > maxChainCertificates {
		return nil, false, &auth.Error{Reason: auth.ReasonInvalidCertificate, Message: fmt.Sprintf("the client presented %d certificates; at most %d are accepted", len(certs), maxChainCertificates)}
	}
	v, err := s.verify(certs)
	if err != nil {
		return nil, false, err
	}
	id, err := s.identify(v)
	if err != nil {
		return nil, false, err
	}
	id.Expires = v.expires
	return id, true, nil
}

// identify maps a verified certificate: the first entry that names one of
// its CAs and whose condition holds wins. A failing expression refuses the
// certificate; it never falls through to a later entry.
func (s *state) identify(v *verified) (*auth.Identity, error) {
	if s.mapping == nil {
		return defaultIdentity(v.leaf)
	}
	views := map[string]map[string]any{} // the CEL variables, by CA name
	view := func(ca string) map[string]any {
		if vars, ok := views[ca]; ok {
			return vars
		}
		c := NewCertificate(v.leaf, ca)
		vars := certVars(&c)
		views[ca] = vars
		return vars
	}
	for _, e := range s.mapping.entries {
		ca := ""
		for _, name := range v.cas {
			if slices.Contains(e.cas, name) {
				ca = name
				break
			}
		}
		if ca == "" {
			continue
		}
		vars := view(ca)
		if e.condition != nil {
			ok, err := e.condition.evalBool(vars)
			if err != nil {
				return nil, e.failure(v.leaf, "condition", e.condition, err)
			}
			if !ok {
				continue
			}
		}
		return e.identity(v.leaf, vars)
	}
	return nil, &auth.Error{Reason: auth.ReasonNoCertificateMapping, Message: fmt.Sprintf("the client certificate %s (CA %s) matches no entry of the client certificate mapping", describe(v.leaf), quoteList(v.cas))}
}

// identity evaluates every expression of e; any failure refuses the whole
// certificate. vars are the CEL variables of the certificate, from certVars.
func (e *entry) identity(leaf *x509.Certificate, vars map[string]any) (*auth.Identity, error) {
	name, err := e.username.evalString(vars)
	if err != nil {
		return nil, e.failure(leaf, "username", e.username, err)
	}
	if name == "" {
		return nil, e.failure(leaf, "username", e.username, errors.New("produced an empty username"))
	}
	id := &auth.Identity{Name: name, Source: SourcePrefix + e.name}
	if e.groups != nil {
		groups, err := e.groups.evalStrings(vars)
		if err != nil {
			return nil, e.failure(leaf, "groups", e.groups, err)
		}
		id.Groups = nonEmpty(groups)
	}
	if e.uid != nil {
		if id.UID, err = e.uid.evalString(vars); err != nil {
			return nil, e.failure(leaf, "uid", e.uid, err)
		}
	}
	for _, x := range e.extra {
		values, err := x.prog.evalStrings(vars)
		if err != nil {
			return nil, e.failure(leaf, "extra "+x.key, x.prog, err)
		}
		if len(values) == 0 {
			continue
		}
		if id.Extra == nil {
			id.Extra = map[string][]string{}
		}
		id.Extra[x.key] = values
	}
	return id, nil
}

// failure is the error of a failed expression. The client learns the entry,
// the field and the cause; the expression itself is only in Err, for logs.
func (e *entry) failure(leaf *x509.Certificate, what string, p *program, err error) error {
	return &auth.Error{
		Reason:  auth.ReasonCertificateMapping,
		Message: fmt.Sprintf("the client certificate %s could not be mapped: entry %q, %s: %v", describe(leaf), e.name, what, err),
		Err:     fmt.Errorf("mapping entry %q, %s expression %q: %w", e.name, what, p.expr, err),
	}
}

// defaultIdentity is Kubernetes' own mapping: CN is the username, each O a
// group.
func defaultIdentity(leaf *x509.Certificate) (*auth.Identity, error) {
	if leaf.Subject.CommonName == "" {
		return nil, &auth.Error{Reason: auth.ReasonCertificateMapping, Message: fmt.Sprintf("the client certificate %s has an empty common name (CN), which is the username without a mapping file", describe(leaf))}
	}
	return &auth.Identity{
		Name:   leaf.Subject.CommonName,
		Groups: nonEmpty(leaf.Subject.Organization),
		Source: SourcePrefix + "default",
	}, nil
}

// nonEmpty returns a copy of list without empty strings, or nil.
func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
