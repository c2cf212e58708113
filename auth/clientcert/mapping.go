package clientcert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Mapping file identification and limits.
const (
	// MappingAPIVersion and MappingKind identify a mapping file.
	MappingAPIVersion = "frontgate/v1alpha1"
	MappingKind       = "ClientCertificateMapping"

	maxMappingFileBytes = 1 << 20
	maxEntries          = 64
	maxExtra            = 64
	maxExpressionBytes  = 10_000
)

// Mapping turns verified certificates into identities: an ordered list of
// entries, compiled once by [LoadMapping]. It is immutable and safe for
// concurrent use.
type Mapping struct {
	entries []*entry
}

// entry is one compiled entry of a mapping file.
type entry struct {
	name      string
	cas       []string
	condition *program // nil: always applies
	username  *program
	groups    *program // nil: no groups
	uid       *program // nil: no uid
	extra     []extraProgram
}

type extraProgram struct {
	key  string
	prog *program
}

// Entries returns the names of the entries, in order.
func (m *Mapping) Entries() []string {
	names := make([]string, len(m.entries))
	for i, e := range m.entries {
		names[i] = e.name
	}
	return names
}

// caNames returns every CA name the entries refer to, in order.
func (m *Mapping) caNames() []string {
	var names []string
	for _, e := range m.entries {
		for _, ca := range e.cas {
			if !slices.Contains(names, ca) {
				names = append(names, ca)
			}
		}
	}
	return names
}

// LoadMapping reads and compiles the mapping file at path. caNames are the
// names of the configured CAs: every entry must name only those, and every
// CA must be named by at least one entry. Unknown fields, malformed
// expressions and expressions of the wrong type are errors naming the entry
// index, the field and the expression; nothing is compiled on the request
// path.
func LoadMapping(path string, caNames []string) (*Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client certificate mapping: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxMappingFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("client certificate mapping %s: %w", path, err)
	}
	m, err := parseMapping(data, caNames, DefaultCostLimit)
	if err != nil {
		return nil, fmt.Errorf("client certificate mapping %s: %w", path, err)
	}
	return m, nil
}

var (
	topFields   = []string{"apiVersion", "kind", "mappings"}
	entryFields = []string{"name", "cas", "condition", "username", "groups", "uid", "extra"}
	extraFields = []string{"key", "valueExpression"}
	// entryName is what an entry name may look like: it ends up in
	// Identity.Source, logs and metrics.
	entryName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// parseMapping is LoadMapping without the file.
func parseMapping(data []byte, caNames []string, costLimit uint64) (*Mapping, error) {
	if len(data) > maxMappingFileBytes {
		return nil, fmt.Errorf("the file is larger than %d bytes", maxMappingFileBytes)
	}
	raw, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	top, err := object(raw, "the file", topFields)
	if err != nil {
		return nil, err
	}
	var apiVersion, kind string
	if err := field(top, "apiVersion", "apiVersion", &apiVersion); err != nil {
		return nil, err
	}
	if err := field(top, "kind", "kind", &kind); err != nil {
		return nil, err
	}
	if apiVersion != MappingAPIVersion || kind != MappingKind {
		return nil, fmt.Errorf("apiVersion %q and kind %q: want apiVersion %q and kind %q", apiVersion, kind, MappingAPIVersion, MappingKind)
	}
	var items []json.RawMessage
	if err := field(top, "mappings", "mappings", &items); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errors.New("mappings: at least one entry is required")
	}
	if len(items) > maxEntries {
		return nil, fmt.Errorf("mappings: %d entries; at most %d are allowed", len(items), maxEntries)
	}
	m := &Mapping{}
	seen := map[string]int{}
	for i, item := range items {
		path := fmt.Sprintf("mappings[%d]", i)
		e, err := parseEntry(item, path, caNames, costLimit)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[e.name]; dup {
			return nil, fmt.Errorf("%s.name: %q is already the name of mappings[%d]", path, e.name, j)
		}
		seen[e.name] = i
		m.entries = append(m.entries, e)
	}
	for _, ca := range caNames {
		if !slices.Contains(m.caNames(), ca) {
			return nil, fmt.Errorf("CA %q (from --client-ca-file) is named by no entry: its certificates could never authenticate; add it to an entry's cas or remove it", ca)
		}
	}
	return m, nil
}

// parseEntry decodes and compiles one entry; path is "mappings[i]".
func parseEntry(raw json.RawMessage, path string, caNames []string, costLimit uint64) (*entry, error) {
	obj, err := object(raw, path, entryFields)
	if err != nil {
		return nil, err
	}
	e := &entry{}
	if err := field(obj, "name", path+".name", &e.name); err != nil {
		return nil, err
	}
	if !entryName.MatchString(e.name) {
		return nil, fmt.Errorf("%s.name: %q must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit", path, e.name)
	}
	path = fmt.Sprintf("%s (%s)", path, e.name)
	if err := field(obj, "cas", path+".cas", &e.cas); err != nil {
		return nil, err
	}
	if len(e.cas) == 0 {
		return nil, fmt.Errorf("%s.cas: name at least one CA (one of %s)", path, quoteList(caNames))
	}
	for _, ca := range e.cas {
		if !slices.Contains(caNames, ca) {
			return nil, fmt.Errorf("%s.cas: %q is not a configured CA; the CAs given with --client-ca-file are %s", path, ca, quoteList(caNames))
		}
	}
	exprs := []struct {
		name     string
		want     resultKind
		dst      **program
		required bool
	}{
		{"condition", resultBool, &e.condition, false},
		{"username", resultString, &e.username, true},
		{"groups", resultStrings, &e.groups, false},
		{"uid", resultString, &e.uid, false},
	}
	for _, x := range exprs {
		if raw, ok := obj[x.name]; !ok || isNull(raw) {
			if x.required {
				return nil, fmt.Errorf("%s.%s: a CEL expression is required", path, x.name)
			}
			continue
		}
		var expr string
		if err := field(obj, x.name, path+"."+x.name, &expr); err != nil {
			return nil, err
		}
		if *x.dst, err = compile(expr, x.want, costLimit); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", path, x.name, err)
		}
	}
	var extras []json.RawMessage
	if err := field(obj, "extra", path+".extra", &extras); err != nil {
		return nil, err
	}
	if len(extras) > maxExtra {
		return nil, fmt.Errorf("%s.extra: %d keys; at most %d are allowed", path, len(extras), maxExtra)
	}
	for j, raw := range extras {
		xpath := fmt.Sprintf("%s.extra[%d]", path, j)
		x, err := object(raw, xpath, extraFields)
		if err != nil {
			return nil, err
		}
		var key, expr string
		if err := field(x, "key", xpath+".key", &key); err != nil {
			return nil, err
		}
		if err := checkExtraKey(key); err != nil {
			return nil, fmt.Errorf("%s.key %q: %w", xpath, key, err)
		}
		for _, other := range e.extra {
			if other.key == key {
				return nil, fmt.Errorf("%s.key: %q appears twice", xpath, key)
			}
		}
		if err := field(x, "valueExpression", xpath+".valueExpression", &expr); err != nil {
			return nil, err
		}
		prog, err := compile(expr, resultStrings, costLimit)
		if err != nil {
			return nil, fmt.Errorf("%s.valueExpression: %w", xpath, err)
		}
		e.extra = append(e.extra, extraProgram{key: key, prog: prog})
	}
	return e, nil
}

// object decodes raw as a JSON object whose keys are all in allowed, compared
// exactly (encoding/json alone would accept any letter case).
func object(raw json.RawMessage, path string, allowed []string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%s: must be an object with the fields %s", path, strings.Join(allowed, ", "))
	}
	for k := range obj {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("%s: unknown field %q (the fields are %s)", path, k, strings.Join(allowed, ", "))
		}
	}
	return obj, nil
}

// field decodes obj[name] into dst when present; null counts as absent.
func field(obj map[string]json.RawMessage, name, path string, dst any) error {
	raw, ok := obj[name]
	if !ok || isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var what string
		switch dst.(type) {
		case *string:
			what = "a string (quote a CEL expression that YAML would read as another type)"
		case *[]string:
			what = "a list of strings"
		default:
			what = "a list"
		}
		return fmt.Errorf("%s: must be %s", path, what)
	}
	return nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// checkExtraKey accepts what kube-apiserver accepts as an extra key: a
// lower-case, domain-prefixed path outside the k8s.io and kubernetes.io
// domains.
func checkExtraKey(key string) error {
	if key == "" {
		return errors.New("the key must not be empty")
	}
	if key != strings.ToLower(key) {
		return errors.New("the key must be lower-case (kube-apiserver lower-cases extra keys)")
	}
	domain, rest, ok := strings.Cut(key, "/")
	if !ok || domain == "" || rest == "" || !strings.Contains(domain, ".") {
		return errors.New("the key must be a domain-prefixed path such as example.com/team")
	}
	for _, c := range key {
		if c <= ' ' || c == 0x7f {
			return errors.New("the key must not contain spaces or control characters")
		}
	}
	for _, reserved := range []string{"k8s.io", "kubernetes.io"} {
		if domain == reserved || strings.HasSuffix(domain, "."+reserved) {
			return fmt.Errorf("the domain %s is reserved for Kubernetes", reserved)
		}
	}
	return nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 0 {
		return "(none)"
	}
	return strings.Join(q, ", ")
}
