package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// FuzzConfigFile applies arbitrary --config files to serve's flags, with
// --upstream and --log-level given on the command line. applyConfigFile must
// not panic; every error must start with "--config PATH"; a file that is not
// a YAML mapping, or that has a key that is not a flag name (or is
// "config"), must be refused, naming the key; the command line always wins;
// and a file that is accepted changes only the flags it names, a string flag
// to the string given.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"upstream: https://from-file:6443\nlog-format: json\nmax-groups: 50\ntoken-passthrough: true\n",
		"oidc-issuer-url: https://issuer.example.com\noidc-client-id: kubernetes\noidc-signing-algs: [RS256, ES256]\noidc-required-claim: {hd: example.com}\n",
		"requestheader-username-headers: []\ntrusted-proxy-cidrs: null\nclient-ca-file: [a=/x.pem, /y.pem]\n",
		"upstreams: x\n",
		"config: other.yaml\n",
		"- a\n- b\n",
		"upstream: {a: {b: c}}\n",
		"max-groups: many\n",
		"token-cache-ttl: 1e400\n",
		"1: x\n",
		"oidc-username-prefix: \"\"\n",
		"{\"log-level\": \"debug\", \"shutdown-grace\": \"5s\"}",
		"a: &a [*a, *a]\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	cli := []string{"--upstream=https://from-flag:6443", "--log-level=warn"}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		o := newServeOptions(func(string) string { return "" })
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(cli); err != nil {
			t.Fatal(err)
		}
		before := map[string]string{}
		fs.VisitAll(func(fl *pflag.Flag) { before[fl.Name] = fl.Value.String() })

		err := applyConfigFile(fs, path)

		if o.upstream != "https://from-flag:6443" || o.logLevel != "warn" {
			t.Fatalf("the file overrode the command line: upstream %q, log-level %q", o.upstream, o.logLevel)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "--config "+path) {
			t.Fatalf("the error does not name the file: %v", err)
		}
		var settings map[string]any
		if yaml.Unmarshal(data, &settings) != nil {
			if err == nil || !strings.Contains(err.Error(), "not a YAML mapping") {
				t.Fatalf("a file that is not a YAML mapping gave %v", err)
			}
			return
		}
		for key := range settings {
			if fs.Lookup(key) == nil || key == "config" {
				if err == nil {
					t.Fatalf("unknown setting %q accepted", key)
				}
				if !strings.Contains(err.Error(), "setting ") {
					t.Fatalf("the error for a file with the unknown setting %q names no setting: %v", key, err)
				}
			}
		}
		if err != nil {
			if !fuzzNamesAKey(err.Error(), settings) {
				t.Fatalf("the error names no key of the file: %v", err)
			}
			return
		}
		fs.VisitAll(func(fl *pflag.Flag) {
			v, named := settings[fl.Name]
			switch {
			case !named && fl.Value.String() != before[fl.Name]:
				t.Fatalf("flag %q not in the file changed from %q to %q", fl.Name, before[fl.Name], fl.Value.String())
			case named && fl.Value.Type() == "string" && fl.Name != "upstream" && fl.Name != "log-level":
				if want, ok := fuzzScalar(v); ok && fl.Value.String() != want {
					t.Fatalf("flag %q = %q, the file says %q", fl.Name, fl.Value.String(), want)
				}
			}
		})
	})
}

// fuzzNamesAKey reports whether msg quotes one of the keys of settings.
func fuzzNamesAKey(msg string, settings map[string]any) bool {
	for key := range settings {
		if strings.Contains(msg, fmt.Sprintf("setting %q", key)) {
			return true
		}
	}
	return false
}

// fuzzScalar is the string a flag receives for a scalar YAML value.
func fuzzScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}
