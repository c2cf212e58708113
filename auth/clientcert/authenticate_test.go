package clientcert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/frontgate/frontgate/auth"
)

func TestDefaultMapping(t *testing.T) {
	ca := newCA(t, "corp root")
	a := mustNew(t, Config{CAs: []CA{ca.named("corp")}})
	tests := []struct {
		name       string
		subject    pkix.Name
		wantName   string
		wantGroups []string
		wantReason string
	}{
		{"CN is the user, O are the groups", pkix.Name{CommonName: "alice", Organization: []string{"dev", "ops"}, OrganizationalUnit: []string{"ignored"}}, "alice", []string{"dev", "ops"}, ""},
		{"no O, no groups", pkix.Name{CommonName: "bob"}, "bob", nil, ""},
		{"empty O is dropped", pkix.Name{CommonName: "carol", Organization: []string{"", "devs"}}, "carol", []string{"devs"}, ""},
		{"empty CN is refused", pkix.Name{Organization: []string{"devs"}}, "", nil, auth.ReasonCertificateMapping},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := ca.leaf(t, tt.subject, nil)
			id, ok, err := a.AuthenticateRequest(tlsRequest(leaf))
			if tt.wantReason != "" {
				wantRefused(t, id, ok, err, tt.wantReason)
				return
			}
			if !ok || err != nil {
				t.Fatalf("got (%v, %v, %v)", id, ok, err)
			}
			if id.Name != tt.wantName || !slices.Equal(id.Groups, tt.wantGroups) || id.UID != "" || id.Extra != nil {
				t.Errorf("identity %+v, want name %q groups %q", id, tt.wantName, tt.wantGroups)
			}
			if id.Source != "client-certificate:default" {
				t.Errorf("source %q", id.Source)
			}
			if !id.Expires.Equal(leaf.NotAfter) {
				t.Errorf("expires %v, want the leaf's NotAfter %v", id.Expires, leaf.NotAfter)
			}
		})
	}
}

func TestNoCertificateIsNotAnError(t *testing.T) {
	a := mustNew(t, Config{CAs: []CA{newCA(t, "corp").named("corp")}})
	r := tlsRequest()
	r.Header.Set("Authorization", "Bearer token")
	if id, ok, err := a.AuthenticateRequest(r); id != nil || ok || err != nil {
		t.Fatalf("got (%v, %v, %v), want (nil, false, nil)", id, ok, err)
	}
	r.TLS = nil
	if id, ok, err := a.AuthenticateRequest(r); id != nil || ok || err != nil {
		t.Fatalf("plain HTTP: got (%v, %v, %v), want (nil, false, nil)", id, ok, err)
	}
}

func TestVerification(t *testing.T) {
	root := newCA(t, "corp root")
	inter := root.intermediate(t, "corp issuing", nil)
	other := newCA(t, "someone else")
	expiredInter := root.intermediate(t, "old issuing", func(c *x509.Certificate) { c.NotAfter = now.Add(-time.Minute) })
	alice := pkix.Name{CommonName: "alice"}

	revokedLeaf := root.leaf(t, alice, nil)
	revokedViaInter := inter.leaf(t, alice, nil)
	revokedInter := root.intermediate(t, "revoked issuing", nil)
	underRevokedInter := revokedInter.leaf(t, alice, nil)
	// A CRL with the right issuer name but signed by another key must be
	// ignored, not trusted.
	impostor := &testCA{cert: inter.cert, key: newKey(t)}
	notRevoked := inter.leaf(t, alice, nil)
	crls := []*x509.RevocationList{
		root.crl(t, revokedLeaf, revokedInter.cert),
		inter.crl(t, revokedViaInter),
	}
	forged := impostor.crl(t, notRevoked)
	if forged.CheckSignatureFrom(inter.cert) == nil {
		t.Fatal("the forged CRL verifies")
	}
	crls = append(crls, forged)

	a := mustNew(t, Config{CAs: []CA{root.named("corp")}, CRLs: crls})
	tests := []struct {
		name       string
		chain      []*x509.Certificate
		wantReason string
	}{
		{"valid leaf from the root", []*x509.Certificate{root.leaf(t, alice, nil)}, ""},
		{"valid leaf through an intermediate", []*x509.Certificate{inter.leaf(t, alice, nil), inter.cert}, ""},
		{"no extended key usage counts as any", []*x509.Certificate{root.leaf(t, alice, func(c *x509.Certificate) { c.ExtKeyUsage = nil })}, ""},
		{"expired", []*x509.Certificate{root.leaf(t, alice, func(c *x509.Certificate) { c.NotAfter = now.Add(-time.Second) })}, auth.ReasonCertificateExpired},
		{"not yet valid", []*x509.Certificate{root.leaf(t, alice, func(c *x509.Certificate) { c.NotBefore = now.Add(time.Minute) })}, auth.ReasonCertificateNotYetValid},
		{"expired intermediate", []*x509.Certificate{expiredInter.leaf(t, alice, nil), expiredInter.cert}, auth.ReasonCertificateExpired},
		{"wrong CA", []*x509.Certificate{other.leaf(t, alice, nil)}, auth.ReasonUnknownAuthority},
		{"intermediate not sent", []*x509.Certificate{inter.leaf(t, alice, nil)}, auth.ReasonUnknownAuthority},
		{"self-signed leaf", []*x509.Certificate{other.cert}, auth.ReasonUnknownAuthority},
		{"serverAuth only", []*x509.Certificate{root.leaf(t, alice, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })}, auth.ReasonCertificateUsage},
		{"intermediate restricted to serverAuth", func() []*x509.Certificate {
			sv := root.intermediate(t, "server issuing", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })
			return []*x509.Certificate{sv.leaf(t, alice, nil), sv.cert}
		}(), auth.ReasonCertificateUsage},
		{"leaf revoked by the root's CRL", []*x509.Certificate{revokedLeaf}, auth.ReasonCertificateRevoked},
		{"leaf revoked by the intermediate's CRL", []*x509.Certificate{revokedViaInter, inter.cert}, auth.ReasonCertificateRevoked},
		{"intermediate revoked", []*x509.Certificate{underRevokedInter, revokedInter.cert}, auth.ReasonCertificateRevoked},
		{"forged CRL is ignored", []*x509.Certificate{notRevoked, inter.cert}, ""},
		{"too many certificates", append([]*x509.Certificate{root.leaf(t, alice, nil)}, slices.Repeat([]*x509.Certificate{inter.cert}, maxChainCertificates)...), auth.ReasonInvalidCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := a.AuthenticateRequest(tlsRequest(tt.chain...))
			if tt.wantReason == "" {
				if !ok || err != nil || id.Name != "alice" {
					t.Fatalf("got (%+v, %v, %v), want alice", id, ok, err)
				}
				return
			}
			wantRefused(t, id, ok, err, tt.wantReason)
			if strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("message quotes the certificate: %v", err)
			}
		})
	}
}

func TestExpiresIsTheEarliestInTheChain(t *testing.T) {
	root := newCA(t, "root")
	soon := now.Add(30 * time.Minute)
	inter := root.intermediate(t, "short-lived issuing", func(c *x509.Certificate) { c.NotAfter = soon })
	leaf := inter.leaf(t, pkix.Name{CommonName: "alice"}, func(c *x509.Certificate) { c.NotAfter = soon.Add(-time.Second) })
	a := mustNew(t, Config{CAs: []CA{root.named("corp")}})
	id, ok, err := a.AuthenticateRequest(tlsRequest(leaf, inter.cert))
	if !ok {
		t.Fatal(err)
	}
	if !id.Expires.Equal(leaf.NotAfter) {
		t.Errorf("expires %v, want %v", id.Expires, leaf.NotAfter)
	}
}

const spiffeMapping = `
apiVersion: frontgate/v1alpha1
kind: ClientCertificateMapping
mappings:
- name: workloads
  cas: [spiffe]
  condition: cert.spiffeID.startsWith("spiffe://example.org/ns/")
  username: '"spiffe:" + cert.spiffeID.split("/")[6]'
  groups: '[cert.spiffeID.split("/")[4]]'
  uid: cert.spiffeID
  extra:
  - key: example.org/spiffe-id
    valueExpression: cert.spiffeID
  - key: example.org/dns
    valueExpression: cert.dnsNames
`

func TestSPIFFEMapping(t *testing.T) {
	ca := newCA(t, "spire")
	a := mustNew(t, Config{CAs: []CA{ca.named("spiffe")}, Mapping: mustMapping(t, spiffeMapping, "spiffe")})
	svid := ca.leaf(t, pkix.Name{}, func(c *x509.Certificate) {
		c.URIs = spiffeURI(t, "spiffe://example.org/ns/team-a/sa/ci")
	})
	id, ok, err := a.AuthenticateRequest(tlsRequest(svid))
	if !ok {
		t.Fatalf("refused: %v", err)
	}
	if id.Name != "spiffe:ci" || !slices.Equal(id.Groups, []string{"team-a"}) || id.UID != "spiffe://example.org/ns/team-a/sa/ci" {
		t.Errorf("identity %+v", id)
	}
	if got := id.Extra["example.org/spiffe-id"]; !slices.Equal(got, []string{"spiffe://example.org/ns/team-a/sa/ci"}) {
		t.Errorf("extra %v", id.Extra)
	}
	if _, ok := id.Extra["example.org/dns"]; ok {
		t.Errorf("an empty extra value must be omitted: %v", id.Extra)
	}
	if id.Source != "client-certificate:workloads" {
		t.Errorf("source %q", id.Source)
	}

	t.Run("another trust domain matches no entry", func(t *testing.T) {
		foreign := ca.leaf(t, pkix.Name{}, func(c *x509.Certificate) { c.URIs = spiffeURI(t, "spiffe://evil.example/ns/team-a/sa/ci") })
		id, ok, err := a.AuthenticateRequest(tlsRequest(foreign))
		wantRefused(t, id, ok, err, auth.ReasonNoCertificateMapping)
	})
	t.Run("two URI SANs are not an SVID", func(t *testing.T) {
		two := ca.leaf(t, pkix.Name{}, func(c *x509.Certificate) {
			c.URIs = append(spiffeURI(t, "spiffe://example.org/ns/team-a/sa/ci"), spiffeURI(t, "https://example.org/")...)
		})
		id, ok, err := a.AuthenticateRequest(tlsRequest(two))
		wantRefused(t, id, ok, err, auth.ReasonNoCertificateMapping)
	})
}

func TestConditionSelectsEntry(t *testing.T) {
	ca := newCA(t, "corp")
	m := mustMapping(t, `
apiVersion: frontgate/v1alpha1
kind: ClientCertificateMapping
mappings:
- name: admins
  cas: [corp]
  condition: '"platform" in cert.subject.organizationalUnits'
  username: '"admin:" + cert.subject.commonName'
  groups: '["platform-admins"]'
- name: robots
  cas: [corp]
  condition: cert.subject.commonName.endsWith(".robot")
  username: '"robot:" + cert.subject.commonName.split(".")[0]'
- name: staff
  cas: [corp]
  condition: cert.emailAddresses.exists(e, e.endsWith("@example.com"))
  username: cert.emailAddresses.filter(e, e.endsWith("@example.com"))[0]
  groups: cert.subject.organizationalUnits
`, "corp")
	a := mustNew(t, Config{CAs: []CA{ca.named("corp")}, Mapping: m})
	tests := []struct {
		name       string
		edit       func(*x509.Certificate)
		wantName   string
		wantSource string
		wantGroups []string
	}{
		{"first entry", func(c *x509.Certificate) {
			c.Subject = pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"platform"}}
			c.EmailAddresses = []string{"alice@example.com"}
		}, "admin:alice", "client-certificate:admins", []string{"platform-admins"}},
		{"second entry", func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "build.robot"} }, "robot:build", "client-certificate:robots", nil},
		{"third entry", func(c *x509.Certificate) {
			c.Subject = pkix.Name{CommonName: "bob", OrganizationalUnit: []string{"emea", "sales"}}
			c.EmailAddresses = []string{"bob@gmail.com", "bob@example.com"}
		}, "bob@example.com", "client-certificate:staff", []string{"emea", "sales"}},
		{"no entry", func(c *x509.Certificate) { c.Subject = pkix.Name{CommonName: "mallory"} }, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok, err := a.AuthenticateRequest(tlsRequest(ca.leaf(t, pkix.Name{}, tt.edit)))
			if tt.wantName == "" {
				wantRefused(t, id, ok, err, auth.ReasonNoCertificateMapping)
				return
			}
			if !ok {
				t.Fatalf("refused: %v", err)
			}
			if id.Name != tt.wantName || id.Source != tt.wantSource || !slices.Equal(id.Groups, tt.wantGroups) {
				t.Errorf("identity %+v, want %s from %s with groups %q", id, tt.wantName, tt.wantSource, tt.wantGroups)
			}
		})
	}
}

func TestTwoCAsWithDifferentMappings(t *testing.T) {
	corp := newCA(t, "corp root")
	spire := newCA(t, "spire root")
	m := mustMapping(t, `
apiVersion: frontgate/v1alpha1
kind: ClientCertificateMapping
mappings:
- name: workloads
  cas: [spiffe]
  username: '"spiffe:" + cert.spiffeID.split("/")[6]'
  groups: '[cert.spiffeID.split("/")[4]]'
  extra:
  - key: example.org/ca
    valueExpression: cert.ca
- name: people
  cas: [corp]
  username: '"corp:" + cert.subject.commonName'
  groups: cert.subject.organizations.map(o, "corp:" + o)
  uid: cert.sha256
  extra:
  - key: example.org/ca
    valueExpression: cert.ca
  - key: example.org/issuer
    valueExpression: cert.issuer.dn
  - key: example.org/serial
    valueExpression: cert.serial
  - key: example.org/valid
    valueExpression: string(cert.notAfter - cert.notBefore)
`, "corp", "spiffe")
	a := mustNew(t, Config{CAs: []CA{corp.named("corp"), spire.named("spiffe")}, Mapping: m})

	person := corp.leaf(t, pkix.Name{CommonName: "alice", Organization: []string{"devs"}}, nil)
	id, ok, err := a.AuthenticateRequest(tlsRequest(person))
	if !ok {
		t.Fatalf("corp certificate refused: %v", err)
	}
	want := NewCertificate(person, "corp")
	if id.Name != "corp:alice" || !slices.Equal(id.Groups, []string{"corp:devs"}) || id.UID != want.SHA256 || len(id.UID) != 64 {
		t.Errorf("corp identity %+v", id)
	}
	for key, value := range map[string]string{
		"example.org/ca":     "corp",
		"example.org/issuer": "CN=corp root,O=Example",
		"example.org/serial": person.SerialNumber.Text(16),
		"example.org/valid":  "7200s",
	} {
		if got := id.Extra[key]; !slices.Equal(got, []string{value}) {
			t.Errorf("extra %s = %q, want %q", key, got, value)
		}
	}

	svid := spire.leaf(t, pkix.Name{CommonName: "ignored"}, func(c *x509.Certificate) {
		c.URIs = spiffeURI(t, "spiffe://example.org/ns/team-a/sa/ci")
	})
	id, ok, err = a.AuthenticateRequest(tlsRequest(svid))
	if !ok {
		t.Fatalf("SVID refused: %v", err)
	}
	if id.Name != "spiffe:ci" || !slices.Equal(id.Extra["example.org/ca"], []string{"spiffe"}) {
		t.Errorf("SVID identity %+v", id)
	}

	t.Run("a corp certificate never reaches the workload entry", func(t *testing.T) {
		// The workload entry would fail on a certificate without a SPIFFE
		// ID; a corp certificate carrying one must still map as a person.
		tricky := corp.leaf(t, pkix.Name{CommonName: "eve"}, func(c *x509.Certificate) {
			c.URIs = spiffeURI(t, "spiffe://example.org/ns/kube-system/sa/admin")
		})
		id, ok, err := a.AuthenticateRequest(tlsRequest(tricky))
		if !ok || id.Name != "corp:eve" {
			t.Fatalf("got (%+v, %v, %v)", id, ok, err)
		}
	})
}

func TestExpressionFailuresRefuse(t *testing.T) {
	ca := newCA(t, "corp")
	const header = "apiVersion: frontgate/v1alpha1\nkind: ClientCertificateMapping\nmappings:\n"
	// fallback would accept anything: a failure must never fall through to it.
	const fallback = "- name: fallback\n  cas: [corp]\n  username: '\"fallback\"'\n"
	tests := []struct {
		name  string
		entry string
		cost  uint64
	}{
		{"index out of range in username", "- name: e\n  cas: [corp]\n  username: cert.uris[0]\n", 0},
		{"error in condition", "- name: e\n  cas: [corp]\n  condition: cert.dnsNames[1000] == 'x'\n  username: '\"never\"'\n", 0},
		{"error in groups", "- name: e\n  cas: [corp]\n  username: cert.subject.commonName\n  groups: '[cert.subject.organizations[5]]'\n", 0},
		{"error in uid", "- name: e\n  cas: [corp]\n  username: cert.subject.commonName\n  uid: string(int(cert.subject.commonName))\n", 0},
		{"error in extra", "- name: e\n  cas: [corp]\n  username: cert.subject.commonName\n  extra:\n  - key: example.org/x\n    valueExpression: cert.emailAddresses[1]\n", 0},
		{"dyn username of the wrong type", "- name: e\n  cas: [corp]\n  username: dyn(cert.dnsNames)\n", 0},
		{"dyn list with a non-string", "- name: e\n  cas: [corp]\n  username: cert.subject.commonName\n  groups: dyn([1, 2])\n", 0},
		{"empty username", "- name: e\n  cas: [corp]\n  username: cert.subject.serialNumber\n", 0},
		{"cost limit exceeded", "- name: e\n  cas: [corp]\n  username: cert.subject.commonName\n  groups: cert.dnsNames.map(a, cert.dnsNames.map(b, a + b)).map(l, l[0])\n", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cost := tt.cost
			if cost == 0 {
				cost = DefaultCostLimit
			}
			m, err := parseMapping([]byte(header+tt.entry+fallback), []string{"corp"}, cost)
			if err != nil {
				t.Fatalf("mapping: %v", err)
			}
			a := mustNew(t, Config{CAs: []CA{ca.named("corp")}, Mapping: m})
			leaf := ca.leaf(t, pkix.Name{CommonName: "alice"}, func(c *x509.Certificate) {
				for i := range 100 {
					c.DNSNames = append(c.DNSNames, strings.Repeat("a", i%10+1)+".example.org")
				}
			})
			id, ok, err := a.AuthenticateRequest(tlsRequest(leaf))
			wantRefused(t, id, ok, err, auth.ReasonCertificateMapping)
			var e *auth.Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, `entry "e"`) {
				t.Errorf("message does not name the entry: %v", err)
			}
			if e != nil && e.Err == nil {
				t.Errorf("no underlying error with the expression for the logs")
			}
		})
	}
	t.Run("the cost limit does not hit ordinary expressions", func(t *testing.T) {
		m := mustMapping(t, header+"- name: e\n  cas: [corp]\n  username: cert.subject.commonName\n  groups: cert.dnsNames.map(a, a.split('.')[0])\n", "corp")
		a := mustNew(t, Config{CAs: []CA{ca.named("corp")}, Mapping: m})
		leaf := ca.leaf(t, pkix.Name{CommonName: "alice"}, func(c *x509.Certificate) { c.DNSNames = []string{"a.example.org", "b.example.org"} })
		id, ok, err := a.AuthenticateRequest(tlsRequest(leaf))
		if !ok || !slices.Equal(id.Groups, []string{"a", "b"}) {
			t.Fatalf("got (%+v, %v, %v)", id, ok, err)
		}
	})
}

func TestAuthenticateCertificates(t *testing.T) {
	ca := newCA(t, "corp")
	a := mustNew(t, Config{CAs: []CA{ca.named("corp")}})
	if id, ok, err := a.AuthenticateCertificates(nil); id != nil || ok || err != nil {
		t.Fatalf("no certificate: (%v, %v, %v)", id, ok, err)
	}
	id, ok, err := a.AuthenticateCertificates([]*x509.Certificate{ca.leaf(t, pkix.Name{CommonName: "alice"}, nil)})
	if !ok || id.Name != "alice" {
		t.Fatalf("got (%v, %v, %v)", id, ok, err)
	}
}
