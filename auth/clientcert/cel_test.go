package clientcert

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"
)

// fieldCert has a distinct value in every field, so that a field read from
// the wrong place shows.
var fieldCert = Certificate{
	Subject: Name{
		CommonName:          "alice",
		SerialNumber:        "S-1",
		Organizations:       []string{"devs", "ops"},
		OrganizationalUnits: []string{"platform"},
		DN:                  "CN=alice,OU=platform,O=devs+O=ops",
	},
	Issuer: Name{
		CommonName:          "corp root",
		SerialNumber:        "S-2",
		Organizations:       []string{"Example"},
		OrganizationalUnits: []string{"pki", "roots"},
		DN:                  "CN=corp root,OU=pki+OU=roots,O=Example",
	},
	DNSNames:       []string{"alice.example.org"},
	EmailAddresses: []string{"alice@example.org", "a@example.org"},
	URIs:           []string{"spiffe://example.org/ns/a/sa/b"},
	IPAddresses:    []string{"192.0.2.1", "2001:db8::1"},
	SPIFFEID:       "spiffe://example.org/ns/a/sa/b",
	Serial:         "1f",
	NotBefore:      time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC),
	NotAfter:       time.Date(2030, 6, 1, 14, 0, 0, 0, time.UTC),
	SHA256:         strings.Repeat("ab", 32),
	CA:             "corp",
}

// certFieldTests are every field of the cert variable: its checked type and
// its value for fieldCert (nil: not compared).
var certFieldTests = []struct {
	expr string
	typ  *cel.Type
	want any
}{
	{"cert.subject", cel.ObjectType("clientcert.Name"), nil},
	{"cert.subject.commonName", cel.StringType, "alice"},
	{"cert.subject.serialNumber", cel.StringType, "S-1"},
	{"cert.subject.organizations", cel.ListType(cel.StringType), []string{"devs", "ops"}},
	{"cert.subject.organizationalUnits", cel.ListType(cel.StringType), []string{"platform"}},
	{"cert.subject.dn", cel.StringType, "CN=alice,OU=platform,O=devs+O=ops"},
	{"cert.issuer", cel.ObjectType("clientcert.Name"), nil},
	{"cert.issuer.commonName", cel.StringType, "corp root"},
	{"cert.issuer.serialNumber", cel.StringType, "S-2"},
	{"cert.issuer.organizations", cel.ListType(cel.StringType), []string{"Example"}},
	{"cert.issuer.organizationalUnits", cel.ListType(cel.StringType), []string{"pki", "roots"}},
	{"cert.issuer.dn", cel.StringType, "CN=corp root,OU=pki+OU=roots,O=Example"},
	{"cert.dnsNames", cel.ListType(cel.StringType), []string{"alice.example.org"}},
	{"cert.emailAddresses", cel.ListType(cel.StringType), []string{"alice@example.org", "a@example.org"}},
	{"cert.uris", cel.ListType(cel.StringType), []string{"spiffe://example.org/ns/a/sa/b"}},
	{"cert.ipAddresses", cel.ListType(cel.StringType), []string{"192.0.2.1", "2001:db8::1"}},
	{"cert.spiffeID", cel.StringType, "spiffe://example.org/ns/a/sa/b"},
	{"cert.serial", cel.StringType, "1f"},
	{"cert.notBefore", cel.TimestampType, time.Date(2030, 6, 1, 10, 0, 0, 0, time.UTC)},
	{"cert.notAfter", cel.TimestampType, time.Date(2030, 6, 1, 14, 0, 0, 0, time.UTC)},
	{"cert.sha256", cel.StringType, strings.Repeat("ab", 32)},
	{"cert.ca", cel.StringType, "corp"},
}

func TestCertFields(t *testing.T) {
	env, err := celEnv()
	if err != nil {
		t.Fatal(err)
	}
	vars := certVars(&fieldCert)
	for _, tt := range certFieldTests {
		t.Run(tt.expr, func(t *testing.T) {
			ast, iss := env.Compile(tt.expr)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			if !ast.OutputType().IsExactType(tt.typ) {
				t.Errorf("type %s, want %s", ast.OutputType(), tt.typ)
			}
			prg, err := env.Program(ast)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := prg.Eval(vars)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(out.Value(), tt.want) {
				t.Errorf("value %#v, want %#v", out.Value(), tt.want)
			}
		})
	}
	t.Run("every declared field is tested", func(t *testing.T) {
		tested := map[string]bool{}
		for _, tt := range certFieldTests {
			tested[tt.expr] = true
		}
		var declared []string
		for _, f := range certFields {
			declared = append(declared, "cert."+f.name)
		}
		for _, f := range nameFields {
			declared = append(declared, "cert.subject."+f.name, "cert.issuer."+f.name)
		}
		for _, expr := range declared {
			if !tested[expr] {
				t.Errorf("%s has no test", expr)
			}
		}
		if len(declared) != len(certFieldTests) {
			t.Errorf("%d declared fields, %d tests", len(declared), len(certFieldTests))
		}
	})
}

// docRow is a row of the table of the cert variable in
// docs/client-certificates.md: one or more expressions in backquotes (a
// leading "." continues the first one's parent), then the type.
var docRow = regexp.MustCompile("^\\| (`[^|]+`) \\|([^|]*)\\|")

// TestCertFieldsDocumented checks the table of the cert variable in
// docs/client-certificates.md against certFieldTests: every documented
// expression is a field with the documented type, and every field but the
// two names themselves is documented.
func TestCertFieldsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "client-certificates.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "### The `cert` variable")
	if !ok {
		t.Fatal("no section on the cert variable in the document")
	}
	docTypes := map[string]string{"string": "string", "list(string)": "list(string)", "timestamp": "google.protobuf.Timestamp"}
	documented := map[string]string{} // expression: documented type, "" for none
	for line := range strings.Lines(table) {
		m := docRow.FindStringSubmatch(line)
		if m == nil || m[1] == "`expression`" {
			continue
		}
		exprs := strings.Split(m[1], ", ")
		first := strings.Trim(exprs[0], "`")
		parent := first[:strings.LastIndex(first, ".")]
		for _, e := range exprs {
			e = strings.Trim(e, "`")
			if strings.HasPrefix(e, ".") {
				e = parent + e
			}
			typ := strings.TrimSpace(m[2])
			if typ != "" {
				if typ, ok = docTypes[typ]; !ok {
					t.Errorf("%s: unknown documented type %q", e, m[2])
				}
			}
			documented[e] = typ
		}
	}
	for _, tt := range certFieldTests {
		typ, ok := documented[tt.expr]
		switch {
		case !ok && tt.expr != "cert.subject" && tt.expr != "cert.issuer":
			t.Errorf("%s is not documented", tt.expr)
		case ok && typ != "" && typ != tt.typ.String():
			t.Errorf("%s is documented as %s, but has type %s", tt.expr, typ, tt.typ)
		}
		delete(documented, tt.expr)
	}
	for e := range documented {
		t.Errorf("%s is documented but is not a field", e)
	}
}
