package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
)

// DefaultCostLimit bounds the runtime cost of evaluating one expression of a
// mapping file, as kube-apiserver's per-call limit does for its CEL. An
// evaluation that exceeds it fails, and the certificate is refused.
const DefaultCostLimit = 1_000_000

// Certificate is the value of the "cert" variable of mapping expressions: the
// verified client (leaf) certificate. Field names in CEL are those of the cel
// tags, for example cert.subject.commonName.
type Certificate struct {
	// Subject is the certificate's subject.
	Subject Name `cel:"subject"`
	// Issuer is the certificate's issuer (the CA or intermediate that signed it).
	Issuer Name `cel:"issuer"`
	// DNSNames are the DNS subject alternative names.
	DNSNames []string `cel:"dnsNames"`
	// EmailAddresses are the email subject alternative names.
	EmailAddresses []string `cel:"emailAddresses"`
	// URIs are the URI subject alternative names, SPIFFE IDs included.
	URIs []string `cel:"uris"`
	// IPAddresses are the IP subject alternative names, in text form.
	IPAddresses []string `cel:"ipAddresses"`
	// SPIFFEID is the SPIFFE ID when the certificate is an X.509-SVID (exactly
	// one URI SAN, with the spiffe scheme); empty otherwise.
	SPIFFEID string `cel:"spiffeID"`
	// Serial is the serial number in lower-case hexadecimal, without
	// separators or leading zeros.
	Serial string `cel:"serial"`
	// NotBefore and NotAfter bound the validity period (CEL timestamps).
	NotBefore time.Time `cel:"notBefore"`
	NotAfter  time.Time `cel:"notAfter"`
	// SHA256 is the SHA-256 fingerprint of the DER certificate, lower-case hex.
	SHA256 string `cel:"sha256"`
	// CA is the name of the configured CA the certificate was verified
	// against (the name given with --client-ca-file).
	CA string `cel:"ca"`
}

// Name is a distinguished name as the mapping expressions see it.
type Name struct {
	// CommonName is the CN attribute; empty when absent.
	CommonName string `cel:"commonName"`
	// SerialNumber is the serialNumber attribute (not the certificate serial).
	SerialNumber string `cel:"serialNumber"`
	// Organizations are the O attributes, in order.
	Organizations []string `cel:"organizations"`
	// OrganizationalUnits are the OU attributes, in order.
	OrganizationalUnits []string `cel:"organizationalUnits"`
	// DN is the whole name in RFC 2253 form, as Go's pkix.Name.String
	// writes it, for example "CN=alice,OU=dev,O=Example".
	DN string `cel:"dn"`
}

// NewCertificate returns the CEL view of c as verified against the CA named
// caName.
func NewCertificate(c *x509.Certificate, caName string) Certificate {
	sum := sha256.Sum256(c.Raw)
	out := Certificate{
		Subject:        newName(c.Subject),
		Issuer:         newName(c.Issuer),
		DNSNames:       nonNil(c.DNSNames),
		EmailAddresses: nonNil(c.EmailAddresses),
		URIs:           []string{},
		IPAddresses:    []string{},
		Serial:         c.SerialNumber.Text(16),
		NotBefore:      c.NotBefore.UTC(),
		NotAfter:       c.NotAfter.UTC(),
		SHA256:         hex.EncodeToString(sum[:]),
		CA:             caName,
	}
	for _, u := range c.URIs {
		out.URIs = append(out.URIs, u.String())
	}
	if len(c.URIs) == 1 && strings.EqualFold(c.URIs[0].Scheme, "spiffe") {
		out.SPIFFEID = out.URIs[0]
	}
	for _, ip := range c.IPAddresses {
		out.IPAddresses = append(out.IPAddresses, ip.String())
	}
	return out
}

func newName(n pkix.Name) Name {
	return Name{
		CommonName:          n.CommonName,
		SerialNumber:        n.SerialNumber,
		Organizations:       nonNil(n.Organization),
		OrganizationalUnits: nonNil(n.OrganizationalUnit),
		DN:                  n.String(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// celEnv is the one CEL environment of mapping expressions: the cert
// variable, the standard library, and cel-go's strings, lists and sets
// extensions and optional types. It is safe for concurrent use.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	// Libraries that register types of their own come before the native
	// types, which replace the type provider.
	return cel.NewEnv(
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Lists(),
		ext.Sets(),
		ext.NativeTypes(reflect.TypeFor[Certificate](), ext.ParseStructTags(true)),
		cel.Variable("cert", cel.ObjectType("clientcert.Certificate")),
	)
})

// resultKind is what an expression must produce.
type resultKind int

const (
	resultBool resultKind = iota
	resultString
	resultStrings // a string or a list of strings
)

func (k resultKind) String() string {
	switch k {
	case resultBool:
		return "a bool"
	case resultString:
		return "a string"
	default:
		return "a string or a list of strings"
	}
}

// program is one compiled expression.
type program struct {
	expr string
	want resultKind
	prg  cel.Program
}

// compile parses and type-checks expr, checks its result type and plans it
// with a runtime cost limit. The error quotes the expression.
func compile(expr string, want resultKind, costLimit uint64) (*program, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("the expression is empty")
	}
	if len(expr) > maxExpressionBytes {
		return nil, fmt.Errorf("the expression is longer than %d bytes", maxExpressionBytes)
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("expression %q does not compile: %w", expr, iss.Err())
	}
	if !acceptsType(ast.OutputType(), want) {
		return nil, fmt.Errorf("expression %q has type %s; it must produce %s", expr, ast.OutputType(), want)
	}
	prg, err := env.Program(ast, cel.CostLimit(costLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", expr, err)
	}
	return &program{expr: expr, want: want, prg: prg}, nil
}

// acceptsType reports whether a checked result type t can produce want; dyn
// is accepted and checked at evaluation.
func acceptsType(t *types.Type, want resultKind) bool {
	if t.Kind() == types.DynKind {
		return true
	}
	switch want {
	case resultBool:
		return t.Kind() == types.BoolKind
	case resultString:
		return t.Kind() == types.StringKind
	default:
		if t.Kind() == types.StringKind {
			return true
		}
		if t.Kind() != types.ListKind || len(t.Parameters()) != 1 {
			return false
		}
		k := t.Parameters()[0].Kind()
		return k == types.StringKind || k == types.DynKind
	}
}

// errWrongType is returned by evaluations whose dyn result has the wrong type.
var errWrongType = errors.New("wrong result type")

// eval runs the program over cert. Any error, including an exceeded cost
// limit, is returned; no partial result is. Errors do not quote the
// expression: the caller adds it where only the operator sees it.
func (p *program) eval(cert *Certificate) (ref.Val, error) {
	out, _, err := p.prg.Eval(map[string]any{"cert": cert})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (p *program) evalBool(cert *Certificate) (bool, error) {
	out, err := p.eval(cert)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("produced %s, not a bool: %w", out.Type(), errWrongType)
	}
	return bool(b), nil
}

func (p *program) evalString(cert *Certificate) (string, error) {
	out, err := p.eval(cert)
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok {
		return "", fmt.Errorf("produced %s, not a string: %w", out.Type(), errWrongType)
	}
	return string(s), nil
}

// evalStrings returns a string result as a one-element list (none when it
// is empty) and a list of strings as it is.
func (p *program) evalStrings(cert *Certificate) ([]string, error) {
	out, err := p.eval(cert)
	if err != nil {
		return nil, err
	}
	if s, ok := out.(types.String); ok {
		if s == "" {
			return nil, nil
		}
		return []string{string(s)}, nil
	}
	list, ok := out.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("produced %s, not a string or a list of strings: %w", out.Type(), errWrongType)
	}
	var res []string
	for it := list.Iterator(); it.HasNext() == types.True; {
		elem := it.Next()
		s, ok := elem.(types.String)
		if !ok {
			return nil, fmt.Errorf("produced a list with a %s element: %w", elem.Type(), errWrongType)
		}
		res = append(res, string(s))
	}
	return res, nil
}
