package check

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/frontgate/frontgate/proxy"
)

// headerKind is one kind of identity header: username, group, uid or extra.
type headerKind struct {
	check, flag string
	// frontgate's and kube-apiserver's names; defaults are the names
	// suggested when both are empty.
	frontgate, cluster, defaults []string
	// prefix: the names are prefixes (extra attributes).
	prefix bool
	// what a client could forge through an unstripped header, and what
	// is lost when kube-apiserver does not read frontgate's header.
	forged, lost string
	// missing is the finding when kube-apiserver reads no such header.
	missing Severity
	// missingMessage says what happens then.
	missingMessage string
}

// headers compares frontgate's identity header names with kube-apiserver's.
// kube-apiserver must read the header frontgate sets, and frontgate must
// strip from clients' requests every header kube-apiserver reads: else a
// client could send one itself and add to, or replace, the identity.
func headers(names proxy.HeaderNames, c *Cluster) []Finding {
	def := proxy.DefaultHeaderNames()
	kinds := []headerKind{
		{check: "username-headers", flag: "--requestheader-username-headers", frontgate: names.Username, cluster: c.UsernameHeaders, defaults: def.Username,
			forged: "any username", lost: "kube-apiserver refuses every request frontgate forwards (401)",
			missing: Error, missingMessage: "kube-apiserver reads no username header, so no request authenticates through frontgate (401)"},
		{check: "group-headers", flag: "--requestheader-group-headers", frontgate: names.Group, cluster: c.GroupHeaders, defaults: def.Group,
			forged: "any group, system:masters included", lost: "users lose every group frontgate forwards",
			missing: Error, missingMessage: "kube-apiserver reads no group header, so the groups frontgate forwards are dropped"},
		{check: "uid-headers", flag: "--requestheader-uid-headers", frontgate: names.UID, cluster: c.UIDHeaders, defaults: def.UID,
			forged: "their UID", lost: "the UIDs frontgate forwards are dropped",
			missing: Warning, missingMessage: "kube-apiserver reads no UID header (--requestheader-uid-headers, kube-apiserver 1.32+, on by default since 1.33), so UIDs are dropped"},
		{check: "extra-headers-prefix", flag: "--requestheader-extra-headers-prefix", frontgate: names.ExtraPrefix, cluster: c.ExtraHeaderPrefixes, defaults: def.ExtraPrefix, prefix: true,
			forged: "extra attributes", lost: "the extra attributes frontgate forwards are dropped",
			missing: Warning, missingMessage: "kube-apiserver reads no extra-attribute headers, so the extra attributes frontgate forwards are dropped"},
	}
	out := make([]Finding, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.compare(names))
	}
	return out
}

func (k headerKind) compare(names proxy.HeaderNames) Finding {
	if len(k.cluster) == 0 {
		suggest := k.frontgate
		if len(suggest) == 0 {
			suggest = k.defaults
		}
		fix := fmt.Sprintf("add %s=%s to kube-apiserver", k.flag, flagValue(suggest...))
		msg := k.missingMessage
		if len(k.frontgate) == 0 {
			fix = fmt.Sprintf("add %s=%s to kube-apiserver and to frontgate", k.flag, flagValue(suggest...))
			msg = fmt.Sprintf("neither kube-apiserver nor frontgate has %s: they are not forwarded", k.flag)
		}
		return Finding{Severity: k.missing, Check: k.check, Message: msg, Fix: fix}
	}
	var problems []string
	if len(k.frontgate) > 0 && !containsFold(k.cluster, k.frontgate[0]) {
		problems = append(problems, fmt.Sprintf("frontgate sends %q, which kube-apiserver does not read (it reads %s), so %s", k.frontgate[0], quoteList(k.cluster), k.lost))
	}
	var unstripped []string
	for _, name := range k.cluster {
		if !stripped(names, name, k.prefix) {
			unstripped = append(unstripped, name)
		}
	}
	if len(unstripped) > 0 {
		problems = append(problems, fmt.Sprintf("kube-apiserver reads %s, which frontgate does not strip from clients' requests, so a client can assert %s", quoteList(unstripped), k.forged))
	}
	if len(problems) > 0 {
		return failure(k.check,
			fmt.Sprintf("set frontgate's %s=%s, as kube-apiserver has it (frontgate sets the first and strips them all)", k.flag, flagValue(k.cluster...)),
			"%s", strings.Join(problems, "; "))
	}
	if len(k.frontgate) == 0 {
		// Only possible for UIDs, and only when frontgate strips kube-
		// apiserver's names through another list.
		return warning(k.check, fmt.Sprintf("set frontgate's %s=%s", k.flag, flagValue(k.cluster...)),
			"frontgate has no %s although kube-apiserver reads %s, so they are not forwarded", k.flag, quoteList(k.cluster))
	}
	return ok(k.check, "frontgate sends %q, which kube-apiserver reads, and strips every name kube-apiserver reads %s", k.frontgate[0], quoteList(k.cluster))
}

// stripped reports whether frontgate removes a client's header name (or,
// for a prefix, any header under it) before forwarding, by asking the proxy's
// own sanitiser.
func stripped(names proxy.HeaderNames, name string, prefix bool) bool {
	probe := strings.TrimSpace(name)
	if prefix {
		probe += "probe-key"
	}
	h := http.Header{}
	h.Set(probe, "probe")
	proxy.Sanitize(h, names)
	return len(h) == 0
}

// containsFold reports whether list holds name, ignoring letter case and
// surrounding space, as kube-apiserver compares header names.
func containsFold(list []string, name string) bool {
	for _, l := range list {
		if strings.EqualFold(strings.TrimSpace(l), strings.TrimSpace(name)) {
			return true
		}
	}
	return false
}
