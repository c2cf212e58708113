package clientcert

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const head = "apiVersion: frontgate/v1alpha1\nkind: ClientCertificateMapping\n"

func TestLoadMappingErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error
	}{
		{"not YAML", "mappings: [", []string{"not valid YAML"}},
		{"duplicate YAML key", head + "mappings: []\nmappings: []\n", []string{"not valid YAML"}},
		{"not an object", "- a\n- b\n", []string{"the file: must be an object"}},
		{"unknown top-level field", head + "mapping: []\n", []string{`unknown field "mapping"`}},
		{"wrong apiVersion", "apiVersion: v1\nkind: ClientCertificateMapping\nmappings: []\n", []string{"apiVersion", MappingAPIVersion}},
		{"no kind", "apiVersion: frontgate/v1alpha1\nmappings: []\n", []string{"kind"}},
		{"no entries", head + "mappings: []\n", []string{"at least one entry"}},
		{"entry not an object", head + "mappings: [x]\n", []string{"mappings[0]: must be an object"}},
		{"unknown entry field", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n- name: b\n  cas: [corp]\n  usernme: cert.subject.commonName\n", []string{"mappings[1]", `unknown field "usernme"`}},
		{"field in another case", head + "mappings:\n- name: a\n  cas: [corp]\n  Username: cert.subject.commonName\n", []string{"mappings[0]", `unknown field "Username"`}},
		{"missing name", head + "mappings:\n- cas: [corp]\n  username: cert.subject.commonName\n", []string{"mappings[0].name"}},
		{"bad name", head + "mappings:\n- name: Bad_Name\n  cas: [corp]\n  username: cert.subject.commonName\n", []string{"mappings[0].name", "Bad_Name"}},
		{"duplicate name", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n", []string{"mappings[1].name", "mappings[0]"}},
		{"no cas", head + "mappings:\n- name: a\n  username: cert.subject.commonName\n", []string{"mappings[0] (a).cas", `"corp"`}},
		{"cas not a list", head + "mappings:\n- name: a\n  cas: corp\n  username: cert.subject.commonName\n", []string{"mappings[0] (a).cas: must be a list of strings"}},
		{"unknown CA", head + "mappings:\n- name: a\n  cas: [corp, crop]\n  username: cert.subject.commonName\n", []string{"mappings[0] (a).cas", `"crop" is not a configured CA`}},
		{"unused CA", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n", []string{`CA "spare"`, "no entry"}},
		{"missing username", head + "mappings:\n- name: a\n  cas: [corp]\n  groups: cert.subject.organizations\n", []string{"mappings[0] (a).username", "required"}},
		{"username not a string in YAML", head + "mappings:\n- name: a\n  cas: [corp]\n  username: 42\n", []string{"mappings[0] (a).username: must be a string"}},
		{"condition is a YAML bool", head + "mappings:\n- name: a\n  cas: [corp]\n  condition: true\n  username: cert.subject.commonName\n", []string{"mappings[0] (a).condition: must be a string"}},
		{"compile error names the expression", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.comonName\n", []string{"mappings[0] (a).username", `"cert.subject.comonName"`, "comonName"}},
		{"typo in a field of cert", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subjet.commonName\n", []string{"mappings[0] (a).username", `"cert.subjet.commonName" does not compile`, "undefined field 'subjet'"}},
		{"typo in a field of the issuer", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  uid: cert.issuer.cn\n", []string{"mappings[0] (a).uid", "undefined field 'cn'"}},
		{"field of a string", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.ca.name\n", []string{"mappings[0] (a).username", "type 'string' does not support field selection"}},
		{"field of a list", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  groups: cert.dnsNames.first\n", []string{"mappings[0] (a).groups", "type 'list(string)' does not support field selection"}},
		{"name as username", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject\n", []string{"mappings[0] (a).username", "clientcert.Name", "must produce a string"}},
		{"timestamp compared with a string", head + "mappings:\n- name: a\n  cas: [corp]\n  condition: cert.notAfter > '2030-01-01'\n  username: cert.subject.commonName\n", []string{"mappings[0] (a).condition", "no matching overload"}},
		{"undeclared variable", head + "mappings:\n- name: a\n  cas: [corp]\n  username: claims.sub\n", []string{"mappings[0] (a).username", "claims"}},
		{"username of the wrong type", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.organizations\n", []string{"mappings[0] (a).username", "list(string)", "must produce a string"}},
		{"condition of the wrong type", head + "mappings:\n- name: a\n  cas: [corp]\n  condition: cert.subject.commonName\n  username: cert.subject.commonName\n", []string{"mappings[0] (a).condition", "must produce a bool"}},
		{"groups of the wrong type", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  groups: cert.notBefore\n", []string{"mappings[0] (a).groups", "string or a list of strings"}},
		{"empty expression", head + "mappings:\n- name: a\n  cas: [corp]\n  username: ' '\n", []string{"mappings[0] (a).username", "empty"}},
		{"unknown extra field", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  extra:\n  - key: example.org/a\n    expression: cert.serial\n", []string{"mappings[0] (a).extra[0]", `unknown field "expression"`}},
		{"extra key not domain-prefixed", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  extra:\n  - key: team\n    valueExpression: cert.serial\n", []string{"mappings[0] (a).extra[0].key", "domain-prefixed"}},
		{"extra key reserved", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  extra:\n  - key: authentication.kubernetes.io/x\n    valueExpression: cert.serial\n", []string{"extra[0].key", "reserved"}},
		{"extra key upper case", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  extra:\n  - key: Example.org/a\n    valueExpression: cert.serial\n", []string{"extra[0].key", "lower-case"}},
		{"extra key twice", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  extra:\n  - key: example.org/a\n    valueExpression: cert.serial\n  - key: example.org/a\n    valueExpression: cert.sha256\n", []string{"extra[1].key", "twice"}},
		{"extra value of the wrong type", head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n  extra:\n  - key: example.org/a\n    valueExpression: cert.notAfter\n", []string{"extra[0].valueExpression", "cert.notAfter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cas := []string{"corp"}
			if tt.name == "unused CA" {
				cas = append(cas, "spare")
			}
			path := writeFile(t, t.TempDir(), "mapping.yaml", []byte(tt.file))
			m, err := LoadMapping(path, cas)
			if err == nil {
				t.Fatalf("loaded %v, want an error", m.Entries())
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadMapping(t *testing.T) {
	dir := t.TempDir()
	t.Run("the documented example loads", func(t *testing.T) {
		m, err := LoadMapping(writeFile(t, dir, "spiffe.yaml", []byte(spiffeMapping)), []string{"spiffe"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Entries(), []string{"workloads"}) {
			t.Errorf("entries %q", m.Entries())
		}
	})
	t.Run("the example in docs/client-certificates.md loads", func(t *testing.T) {
		doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "client-certificates.md"))
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(doc), "```yaml\n")
		example, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Fatal("no yaml block in the document")
		}
		m, err := parseMapping([]byte(example), []string{"corp", "spiffe"}, DefaultCostLimit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m.Entries(), []string{"workloads", "admins", "people"}) {
			t.Errorf("entries %q", m.Entries())
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := LoadMapping(filepath.Join(dir, "nope.yaml"), []string{"corp"}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("file too large", func(t *testing.T) {
		big := head + "mappings: []\n#" + strings.Repeat("x", maxMappingFileBytes)
		_, err := LoadMapping(writeFile(t, dir, "big.yaml", []byte(big)), []string{"corp"})
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("null optional fields are absent", func(t *testing.T) {
		m := mustMapping(t, head+"mappings:\n- name: a\n  cas: [corp]\n  condition: null\n  username: cert.subject.commonName\n  groups: null\n  extra: null\n", "corp")
		if e := m.entries[0]; e.condition != nil || e.groups != nil || e.extra != nil {
			t.Errorf("entry %+v", e)
		}
	})
}

// FuzzLoadMapping feeds arbitrary files to the parser: it must never panic,
// and whatever it accepts must be a usable mapping.
func FuzzLoadMapping(f *testing.F) {
	f.Add([]byte(spiffeMapping))
	f.Add([]byte(head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.subject.commonName\n"))
	f.Add([]byte(head + "mappings:\n- name: a\n  cas: [corp]\n  username: cert.uris[0]\n  extra:\n  - key: example.org/a\n    valueExpression: cert.serial\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMapping(data, []string{"corp", "spiffe"}, DefaultCostLimit)
		if err != nil {
			if m != nil {
				t.Fatal("a mapping and an error")
			}
			return
		}
		if len(m.entries) == 0 {
			t.Fatal("accepted a mapping without entries")
		}
		for _, e := range m.entries {
			if e.username == nil || len(e.cas) == 0 || !entryName.MatchString(e.name) {
				t.Fatalf("accepted an incomplete entry %+v", e)
			}
		}
	})
}
