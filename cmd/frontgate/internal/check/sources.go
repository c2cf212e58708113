package check

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"

	authv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ConfigMapUnavailable is the finding when the ConfigMap could not be read
// with the admin kubeconfig.
func ConfigMapUnavailable(err error) Finding {
	const name = "configmap"
	switch {
	case apierrors.IsNotFound(err):
		return failure(name, "check that --kubeconfig and --context reach the cluster frontgate fronts; kube-apiserver writes this ConfigMap at start-up",
			"%s does not exist, so kube-apiserver's authentication settings are unknown", configMapRef)
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return failure(name, "use an admin kubeconfig (--kubeconfig, --context), or bind Role extension-apiserver-authentication-reader in kube-system to your user",
			"cannot read %s: %s", configMapRef, oneLine(err))
	default:
		return failure(name, "check --kubeconfig and --context: they must reach kube-apiserver as an admin",
			"cannot read %s: %s", configMapRef, oneLine(err))
	}
}

// ProxyCertUnavailable is the finding when frontgate's proxy client
// certificate could not be read; file is empty when none was given.
func ProxyCertUnavailable(file string, err error) Finding {
	const name = "proxy-cert"
	if file == "" {
		return failure(name, "give --proxy-client-cert-file (or --config with frontgate's settings)",
			"no proxy client certificate to check: --proxy-client-cert-file is not set")
	}
	return failure(name, "point --proxy-client-cert-file at frontgate's PEM proxy client certificate (run check where it is readable)",
		"cannot read --proxy-client-cert-file: %s", oneLine(err))
}

// KeyPair is the finding about --proxy-client-key-file: readErr when it
// could not be read (not checked), pairErr when it does not belong to the
// certificate.
func KeyPair(keyFile string, readErr, pairErr error) Finding {
	const name = "proxy-key"
	switch {
	case readErr != nil:
		fix := "run check as a user that can read the key (frontgate's), or leave --proxy-client-key-file out"
		if !errors.Is(readErr, fs.ErrPermission) {
			fix = "point --proxy-client-key-file at the key of --proxy-client-cert-file"
		}
		return warning(name, fix, "not checked: cannot read --proxy-client-key-file: %s", oneLine(readErr))
	case pairErr != nil:
		return failure(name, "give frontgate the key that belongs to --proxy-client-cert-file, or issue a new pair",
			"--proxy-client-key-file %s does not belong to the certificate: %s; frontgate refuses to start with it", keyFile, oneLine(pairErr))
	}
	return ok(name, "--proxy-client-key-file %s belongs to the certificate", keyFile)
}

// SelfSubjectReview is the finding of a SelfSubjectReview sent through
// frontgate at url: the identity kube-apiserver derived, or why the request
// failed. proxyCN is the proxy client certificate's CN, if known.
func SelfSubjectReview(url string, user *authv1.UserInfo, err error, proxyCN string) Finding {
	const name = "through"
	if err != nil {
		fix := "check the token (frontgate login; --token-file) and fix the errors above: kube-apiserver answers 401 when it refuses frontgate's certificate or headers"
		var status apierrors.APIStatus
		switch {
		case errors.As(err, &status) && status.Status().Code == http.StatusForbidden:
			fix = "a 403 from frontgate names a reserved identity (--allow-reserved-identity); from kube-apiserver, RBAC forbids creating selfsubjectreviews"
		case errors.As(err, &status):
		case strings.Contains(err.Error(), "x509:"):
			fix = "give --through-ca-file the CA of frontgate's serving certificate"
		default:
			fix = "check --through: frontgate must listen there"
		}
		return failure(name, fix, "SelfSubjectReview through %s failed: %s", url, oneLine(err))
	}
	switch user.Username {
	case "system:anonymous":
		return failure(name, "fix the errors above; kube-apiserver must accept frontgate's certificate and headers",
			"through %s kube-apiserver sees you as system:anonymous: it did not accept the identity frontgate forwarded", url)
	case proxyCN:
		if proxyCN != "" {
			return failure(name, "fix the ca-overlap and header findings above",
				"through %s kube-apiserver sees frontgate's own certificate (user %q), not the identity frontgate forwarded", url, proxyCN)
		}
	}
	return ok(name, "through %s kube-apiserver sees you as %s", url, FormatUser(user))
}

// FormatUser formats an identity in one line: username, uid, groups, extra.
func FormatUser(u *authv1.UserInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "user %q", u.Username)
	if u.UID != "" {
		fmt.Fprintf(&b, ", uid %q", u.UID)
	}
	fmt.Fprintf(&b, ", groups %s", quoteList(u.Groups))
	if len(u.Extra) > 0 {
		keys := make([]string, 0, len(u.Extra))
		for k := range u.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%s", k, quoteList(u.Extra[k]))
		}
		fmt.Fprintf(&b, ", extra %s", strings.Join(parts, " "))
	}
	return b.String()
}
