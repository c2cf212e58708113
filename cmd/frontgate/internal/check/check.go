// Package check verifies that kube-apiserver trusts frontgate the way
// frontgate expects to be trusted: it compares what kube-apiserver published
// in kube-system/extension-apiserver-authentication with frontgate's header
// names and front-proxy client certificate, and checks the certificates'
// validity and kube-apiserver's serving certificate.
//
// The checks are pure: the caller (`frontgate check`) reads the ConfigMap,
// the files and the network and passes what it found, with a clock. Every
// check yields a [Finding] with a severity, and every finding that is not
// [OK] carries a one-line fix.
package check

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/frontgate/frontgate/proxy"
)

// Severity says how bad a finding is.
type Severity string

// The severities, from good to bad.
const (
	// OK: the check passed.
	OK Severity = "ok"
	// Warning: frontgate works, but less safely or less completely than it
	// could, or something could not be checked from here.
	Warning Severity = "warning"
	// Error: frontgate's identities are refused, dropped or forgeable.
	Error Severity = "error"
)

// Finding is the result of one check.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check names the check, e.g. "allowed-names".
	Check string `json:"check"`
	// Message says what was found, in one line.
	Message string `json:"message"`
	// Fix says what to change, in one line (the exact flag where there is
	// one); empty for OK findings.
	Fix string `json:"fix,omitempty"`
}

// ExpiryWarning is how long before a certificate expires a warning is given.
const ExpiryWarning = 30 * 24 * time.Hour

// Where kube-apiserver publishes its authentication settings.
const (
	ConfigMapNamespace = "kube-system"
	ConfigMapName      = "extension-apiserver-authentication"
)

// Inputs are everything the checks look at.
type Inputs struct {
	// ConfigMap is the data of kube-system/extension-apiserver-authentication;
	// nil when it could not be read (the caller reports why, see
	// [ConfigMapUnavailable]), which skips every check that needs it.
	ConfigMap map[string]string
	// Headers are frontgate's identity header names.
	Headers proxy.HeaderNames
	// ProxyCertFile is frontgate's --proxy-client-cert-file, for messages.
	ProxyCertFile string
	// ProxyChain is that file's content, leaf first; nil when it could not
	// be read (the caller reports why, see [ProxyCertUnavailable]), which
	// skips every check that needs it.
	ProxyChain []*x509.Certificate
	// Upstream is what was found about kube-apiserver's serving
	// certificate; nil skips that check.
	Upstream *Upstream
	// Now is the time to check validity at.
	Now time.Time
}

// Run performs every check that its inputs allow, in a stable order.
func Run(in Inputs) []Finding {
	var out []Finding
	var cluster *Cluster
	if in.ConfigMap != nil {
		var findings []Finding
		cluster, findings = ParseConfigMap(in.ConfigMap)
		out = append(out, findings...)
	}
	if len(in.ProxyChain) > 0 {
		out = append(out, proxyCertificate(in.ProxyCertFile, in.ProxyChain[0]))
	}
	var verified []*x509.Certificate
	if cluster != nil && len(in.ProxyChain) > 0 {
		var f Finding
		verified, f = chain(in.ProxyCertFile, in.ProxyChain, cluster.RequestHeaderCA, in.Now)
		out = append(out, f, allowedNames(in.ProxyChain[0], cluster.AllowedNames))
	}
	if len(in.ProxyChain) > 0 {
		if verified == nil {
			verified = in.ProxyChain
		}
		out = append(out, expiry(in.ProxyChain[0], verified, in.Now))
	}
	if cluster != nil {
		out = append(out, headers(in.Headers, cluster)...)
		out = append(out, caOverlap(cluster, in.ProxyChain, in.Now))
	}
	if in.Upstream != nil {
		out = append(out, in.Upstream.check(in.Now))
	}
	return out
}

// HasErrors reports whether any finding is an [Error].
func HasErrors(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// Count returns how many findings have severity s.
func Count(findings []Finding, s Severity) int {
	n := 0
	for _, f := range findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// WriteText writes one line per finding, severity first, and the fix
// indented on the next line, then a summary line.
func WriteText(w io.Writer, findings []Finding) error {
	var b strings.Builder
	for _, f := range findings {
		fmt.Fprintf(&b, "%-7s  %s: %s\n", f.Severity, f.Check, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(&b, "         fix: %s\n", f.Fix)
		}
	}
	fmt.Fprintf(&b, "%d errors, %d warnings, %d ok\n", Count(findings, Error), Count(findings, Warning), Count(findings, OK))
	_, err := io.WriteString(w, b.String())
	return err
}

// quoteList formats names as a JSON array, the way the ConfigMap holds them.
func quoteList(names []string) string {
	if len(names) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(names)
	return string(b)
}

func ok(check, format string, args ...any) Finding {
	return Finding{Severity: OK, Check: check, Message: fmt.Sprintf(format, args...)}
}

func warning(check, fix, format string, args ...any) Finding {
	return Finding{Severity: Warning, Check: check, Message: fmt.Sprintf(format, args...), Fix: fix}
}

func failure(check, fix, format string, args ...any) Finding {
	return Finding{Severity: Error, Check: check, Message: fmt.Sprintf(format, args...), Fix: fix}
}
