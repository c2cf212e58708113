// Package explain holds the report of `frontgate explain`: what frontgate
// would do with one credential (a bearer token or a client certificate),
// and its text and JSON renderings. The command (cmd/frontgate/explain.go)
// fills the report with frontgate's own authenticators; this package only
// presents it. No report field ever holds the credential itself.
package explain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
)

// Outcomes of a [Report].
const (
	// Forward: frontgate would forward the request with Headers.
	Forward = "forward"
	// Refuse: frontgate would answer Status itself and forward nothing.
	Refuse = "refuse"
	// Passthrough: frontgate would forward the bearer token unchanged,
	// without its front-proxy certificate, for kube-apiserver to
	// authenticate (--token-passthrough).
	Passthrough = "passthrough"
)

// Results of a [Check].
const (
	Pass = "pass"
	Fail = "fail"
	Skip = "skip"
)

// Report is what frontgate would do with one credential. Its JSON field
// names are stable.
type Report struct {
	// Outcome is Forward, Refuse or Passthrough.
	Outcome string `json:"outcome"`
	// Verified is true when the credential's signature was checked and
	// holds (false with --skip-signature: everything else is then what
	// frontgate would do if the signature verified).
	Verified bool `json:"verified"`
	// Status is the HTTP status frontgate would answer with when it
	// refuses (401, 403, 431, 500, 503); 0 otherwise.
	Status int `json:"status,omitempty"`
	// Reason is the machine-readable reason of a refusal, as in the
	// Status body and the metrics (e.g. TokenExpired).
	Reason string `json:"reason,omitempty"`
	// Message is the refusal's message, exactly as frontgate would send it.
	Message string `json:"message,omitempty"`
	// Source describes the credential and what handled it.
	Source Source `json:"source"`
	// Checks are the results of every rule applied, in order.
	Checks []Check `json:"checks"`
	// Identity is what the credential maps to; nil when it maps to none.
	// It is set even when frontgate would refuse (an expired token's
	// identity, say): Outcome says whether it would be forwarded.
	Identity *Identity `json:"identity,omitempty"`
	// Headers are the identity header lines frontgate would send, in
	// order; empty unless Outcome is Forward.
	Headers []Header `json:"headers"`
}

// Source describes the credential and the configuration that handled it.
type Source struct {
	// Credential is "bearer token" or "client certificate".
	Credential string `json:"credential"`
	// Config names the settings that handled it, such as "--oidc-* flags"
	// or "--authentication-config /etc/frontgate/authn.yaml".
	Config string `json:"config,omitempty"`
	// Entry names the part of Config that matched: "jwt[0]", a mapping
	// entry of --client-cert-mapping, "--oidc-* flags".
	Entry string `json:"entry,omitempty"`
	// Authenticator is the identity's source as in frontgate's logs:
	// "oidc", "jwt", "client-certificate:<entry>".
	Authenticator string `json:"authenticator,omitempty"`
	// Issuer is the configured issuer that handled a token.
	Issuer string `json:"issuer,omitempty"`
	// Claims are a token's claims; verified only when Report.Verified.
	Claims map[string]json.RawMessage `json:"claims,omitempty"`
	// Certificate describes a client certificate's leaf.
	Certificate *Certificate `json:"certificate,omitempty"`
}

// Certificate describes a client certificate.
type Certificate struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	SHA256    string    `json:"sha256"`
	// ChainLength counts the certificates given, leaf included.
	ChainLength int `json:"chainLength"`
}

// Check is the result of one rule.
type Check struct {
	// Rule names the rule: a flag, a field path of a configuration file, a
	// registered claim.
	Rule string `json:"rule"`
	// Requirement says what the rule requires; may be empty.
	Requirement string `json:"requirement,omitempty"`
	// Result is Pass, Fail or Skip.
	Result string `json:"result"`
	// Message says why the rule failed or was skipped, or what passed.
	Message string `json:"message,omitempty"`
}

// Identity is an identity as kube-apiserver would see it.
type Identity struct {
	Username string              `json:"username"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra,omitempty"`
	// Expires is when the credential stops being valid, if known.
	Expires *time.Time `json:"expires,omitempty"`
}

// Header is one header line.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	if r.Checks == nil {
		r.Checks = []Check{}
	}
	if r.Headers == nil {
		r.Headers = []Header{}
	}
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

// WriteText writes r for a person, in the sections Source, Checks,
// Identity, Headers and Verdict. Values that are not plain printable text
// are quoted, so that a hostile claim cannot drive the terminal.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	field := func(name, value string) {
		if value != "" {
			line("  %-14s %s", name, value)
		}
	}

	line("Source")
	s := r.Source
	credential := s.Credential
	switch {
	case r.Verified && s.Certificate != nil:
		credential += ", chain verified"
	case r.Verified:
		credential += ", signature verified with the issuer's keys"
	default:
		credential += ", UNVERIFIED (signature not checked)"
	}
	field("credential", credential)
	field("configured by", s.Config)
	field("entry", s.Entry)
	field("authenticator", s.Authenticator)
	field("issuer", safe(s.Issuer))
	if c := s.Certificate; c != nil {
		field("subject", safe(c.Subject))
		field("issued by", safe(c.Issuer))
		field("serial", c.Serial)
		field("valid", c.NotBefore.UTC().Format(time.RFC3339)+" to "+c.NotAfter.UTC().Format(time.RFC3339))
		field("sha256", c.SHA256)
		chain := "leaf only"
		if c.ChainLength > 1 {
			chain = fmt.Sprintf("leaf and %d more", c.ChainLength-1)
		}
		field("chain", chain)
	}
	if len(s.Claims) > 0 {
		label := "claims"
		if !r.Verified {
			label = "claims (UNVERIFIED)"
		}
		line("  %s", label)
		names := make([]string, 0, len(s.Claims))
		width := 0
		for name := range s.Claims {
			names = append(names, name)
			width = max(width, len(safe(name)))
		}
		slices.Sort(names)
		for _, name := range names {
			line("    %-*s %s", width+1, safe(name)+":", compact(s.Claims[name]))
		}
	}

	line("Checks")
	for _, c := range r.Checks {
		text := c.Rule
		if c.Requirement != "" {
			text += " [" + c.Requirement + "]"
		}
		if c.Message != "" {
			text += ": " + c.Message
		}
		line("  %-4s  %s", c.Result, text)
	}

	line("Identity")
	if id := r.Identity; id == nil {
		line("  none")
	} else {
		if r.Outcome != Forward {
			line("  (what the credential maps to; frontgate would not forward it)")
		}
		field("username", safe(id.Username))
		field("uid", safe(id.UID))
		groups := make([]string, len(id.Groups))
		for i, g := range id.Groups {
			groups[i] = safe(g)
		}
		if len(groups) == 0 {
			field("groups", "none")
		} else {
			field("groups", strings.Join(groups, ", "))
		}
		keys := make([]string, 0, len(id.Extra))
		for k := range id.Extra {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			values := make([]string, len(id.Extra[k]))
			for i, v := range id.Extra[k] {
				values[i] = strconv.Quote(v)
			}
			field("extra", safe(k)+" = ["+strings.Join(values, ", ")+"]")
		}
		if id.Expires != nil {
			field("expires", id.Expires.UTC().Format(time.RFC3339))
		}
	}

	line("Headers")
	switch {
	case r.Outcome == Passthrough:
		line("  none: the Authorization header is forwarded unchanged, without frontgate's front-proxy certificate")
	case len(r.Headers) == 0:
		line("  none: nothing is forwarded")
	default:
		for _, h := range r.Headers {
			line("  %s: %s", h.Name, safe(h.Value))
		}
	}

	line("Verdict")
	switch r.Outcome {
	case Forward:
		if r.Verified {
			line("  forward: kube-apiserver receives the identity headers above")
		} else {
			line("  forward, IF the signature verifies (not checked: --skip-signature)")
		}
	case Passthrough:
		line("  passthrough: no configured issuer recognises the token; kube-apiserver authenticates it (--token-passthrough)")
	default:
		line("  refuse: %d %s: %s", r.Status, r.Reason, r.Message)
		if !r.Verified {
			line("  (the signature was not checked)")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// safe returns s as it is when it is plain printable text, else quoted.
func safe(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return strconv.Quote(s)
		}
	}
	return s
}

// compact returns a JSON value on one line, with every character that is
// not printable escaped (JSON allows some raw, such as DEL and C1 controls).
func compact(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return strconv.Quote(string(raw))
	}
	var b strings.Builder
	for _, r := range buf.String() {
		switch {
		case unicode.IsPrint(r) && r != unicode.ReplacementChar:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
