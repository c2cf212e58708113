package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	apiservercel "k8s.io/apiserver/pkg/cel"
)

// DefaultCostLimit bounds the runtime cost of evaluating one expression of a
// mapping file, as kube-apiserver's per-call limit does for its CEL. An
// evaluation that exceeds it fails, and the certificate is refused.
const DefaultCostLimit = 1_000_000

// Certificate is the value of the "cert" variable of mapping expressions: the
// verified client (leaf) certificate. Expressions see it as a CEL object
// whose fields have the lower-camel-case names of the package documentation,
// for example cert.subject.commonName for Subject.CommonName.
type Certificate struct {
	// Subject is the certificate's subject.
	Subject Name
	// Issuer is the certificate's issuer (the CA or intermediate that signed it).
	Issuer Name
	// DNSNames are the DNS subject alternative names.
	DNSNames []string
	// EmailAddresses are the email subject alternative names.
	EmailAddresses []string
	// URIs are the URI subject alternative names, SPIFFE IDs included.
	URIs []string
	// IPAddresses are the IP subject alternative names, in text form.
	IPAddresses []string
	// SPIFFEID is the SPIFFE ID when the certificate is an X.509-SVID (exactly
	// one URI SAN, with the spiffe scheme); empty otherwise.
	SPIFFEID string
	// Serial is the serial number in lower-case hexadecimal, without
	// separators or leading zeros.
	Serial string
	// NotBefore and NotAfter bound the validity period (CEL timestamps).
	NotBefore time.Time
	NotAfter  time.Time
	// SHA256 is the SHA-256 fingerprint of the DER certificate, lower-case hex.
	SHA256 string
	// CA is the name of the configured CA the certificate was verified
	// against (the name given with --client-ca-file).
	CA string
}

// Name is a distinguished name as the mapping expressions see it.
type Name struct {
	// CommonName is the CN attribute; empty when absent.
	CommonName string
	// SerialNumber is the serialNumber attribute (not the certificate serial).
	SerialNumber string
	// Organizations are the O attributes, in order.
	Organizations []string
	// OrganizationalUnits are the OU attributes, in order.
	OrganizationalUnits []string
	// DN is the whole name in RFC 2253 form, as Go's pkix.Name.String
	// writes it, for example "CN=alice,OU=dev,O=Example".
	DN string
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

// The cert variable is declared and passed the way kube-apiserver declares
// and passes the user variable of its CEL (k8s.io/apiserver's
// authentication/cel): an object type of k8s.io/apiserver/pkg/cel, so that
// expressions are type-checked field by field when the mapping file is
// loaded, and a plain map at evaluation. cel-go's ext.NativeTypes, which
// would read the Go structs directly, is not used (GO-2026-6094).
//
// Each object type is one list of fields, from which both its declaration
// ([objectType]) and its value ([objectValue]) are built.

// celField is one field of an object type of the cert variable: its CEL name
// and type, and its value in the Go struct T.
type celField[T any] struct {
	name string
	typ  *apiservercel.DeclType
	get  func(*T) any
}

var (
	stringType     = apiservercel.StringType
	stringListType = apiservercel.NewListType(apiservercel.StringType, -1)
	timestampType  = apiservercel.TimestampType
)

// nameFields are the fields of cert.subject and cert.issuer.
var nameFields = []celField[Name]{
	{"commonName", stringType, func(n *Name) any { return n.CommonName }},
	{"serialNumber", stringType, func(n *Name) any { return n.SerialNumber }},
	{"organizations", stringListType, func(n *Name) any { return n.Organizations }},
	{"organizationalUnits", stringListType, func(n *Name) any { return n.OrganizationalUnits }},
	{"dn", stringType, func(n *Name) any { return n.DN }},
}

// nameType is the CEL type of cert.subject and cert.issuer.
var nameType = objectType("clientcert.Name", nameFields)

// certFields are the fields of cert.
var certFields = []celField[Certificate]{
	{"subject", nameType, func(c *Certificate) any { return objectValue(nameFields, &c.Subject) }},
	{"issuer", nameType, func(c *Certificate) any { return objectValue(nameFields, &c.Issuer) }},
	{"dnsNames", stringListType, func(c *Certificate) any { return c.DNSNames }},
	{"emailAddresses", stringListType, func(c *Certificate) any { return c.EmailAddresses }},
	{"uris", stringListType, func(c *Certificate) any { return c.URIs }},
	{"ipAddresses", stringListType, func(c *Certificate) any { return c.IPAddresses }},
	{"spiffeID", stringType, func(c *Certificate) any { return c.SPIFFEID }},
	{"serial", stringType, func(c *Certificate) any { return c.Serial }},
	{"notBefore", timestampType, func(c *Certificate) any { return c.NotBefore }},
	{"notAfter", timestampType, func(c *Certificate) any { return c.NotAfter }},
	{"sha256", stringType, func(c *Certificate) any { return c.SHA256 }},
	{"ca", stringType, func(c *Certificate) any { return c.CA }},
}

// certType is the CEL type of the cert variable.
var certType = objectType("clientcert.Certificate", certFields)

// objectType declares the CEL object type name with fields, every one of
// them always present.
func objectType[T any](name string, fields []celField[T]) *apiservercel.DeclType {
	decls := make(map[string]*apiservercel.DeclField, len(fields))
	for _, f := range fields {
		decls[f.name] = apiservercel.NewDeclField(f.name, f.typ, true, nil, nil)
	}
	return apiservercel.NewObjectType(name, decls)
}

// objectValue is the CEL value of v: a map from each field's CEL name to its
// value.
func objectValue[T any](fields []celField[T], v *T) map[string]any {
	m := make(map[string]any, len(fields))
	for _, f := range fields {
		m[f.name] = f.get(v)
	}
	return m
}

// certVars returns the variables of evaluations over cert: cert itself as a
// map. Build them once per certificate and pass them to every expression.
func certVars(cert *Certificate) map[string]any {
	return map[string]any{"cert": objectValue(certFields, cert)}
}

// celEnv is the one CEL environment of mapping expressions: the cert
// variable, the standard library, and cel-go's strings, lists and sets
// extensions and optional types. It is safe for concurrent use.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	base, err := cel.NewEnv(
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Lists(),
		ext.Sets(),
	)
	if err != nil {
		return nil, err
	}
	// The declared types are resolved first, then those of the base
	// environment, as in k8s.io/apiserver's cel/environment.
	typeOpts, err := apiservercel.NewDeclTypeProvider(certType).EnvOptions(base.CELTypeProvider())
	if err != nil {
		return nil, err
	}
	return base.Extend(append(typeOpts, cel.Variable("cert", certType.CelType()))...)
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

// eval runs the program over vars, from [certVars]. Any error, including an exceeded cost
// limit, is returned; no partial result is. Errors do not quote the
// expression: the caller adds it where only the operator sees it.
func (p *program) eval(vars map[string]any) (ref.Val, error) {
	out, _, err := p.prg.Eval(vars)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (p *program) evalBool(vars map[string]any) (bool, error) {
	out, err := p.eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("produced %s, not a bool: %w", out.Type(), errWrongType)
	}
	return bool(b), nil
}

func (p *program) evalString(vars map[string]any) (string, error) {
	out, err := p.eval(vars)
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
func (p *program) evalStrings(vars map[string]any) ([]string, error) {
	out, err := p.eval(vars)
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
