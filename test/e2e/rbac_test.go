package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestRBACAllow: a Role granted (by the admin, directly) to the mapped
// username lets the user read configmaps through frontgate.
func TestRBACAllow(t *testing.T) {
	need(t)
	ns := namespace(t, "e2e-rbac-allow")
	kc := kubeconfigFor(t, fg, idToken(t, cluster.ClientWeb, "bob"))
	admin(t, "-n", ns, "create", "configmap", "visible", "--from-literal=k=v")

	if _, errOut, err := kubectl(t, kc, "-n", ns, "get", "configmaps"); err == nil || !strings.Contains(errOut, "Forbidden") {
		t.Fatalf("before the grant: want Forbidden, got err=%v stderr=%s", err, errOut)
	}
	grantRole(t, ns, mappedName("bob"), "get,list,watch", "configmaps")
	eventually(t, 15*time.Second, func() error {
		out, errOut, err := kubectl(t, kc, "-n", ns, "get", "configmaps", "-o", "name")
		if err != nil {
			return fmt.Errorf("%v: %s", err, errOut)
		}
		if strings.TrimSpace(out) != "configmap/visible" {
			return fmt.Errorf("got %q, want configmap/visible", out)
		}
		return nil
	})
	if got := mustKubectl(t, kc, "-n", ns, "get", "configmap", "visible", "-o", "jsonpath={.data.k}"); got != "v" {
		t.Errorf("data.k = %q, want v", got)
	}
}

// TestRBACForbidden: kube-apiserver's Forbidden answer reaches the client
// byte for byte as it answers the same identity directly (admin with
// impersonation of exactly that user, uid, groups and extra), and kubectl
// prints the same error.
func TestRBACForbidden(t *testing.T) {
	need(t)
	ns := namespace(t, "e2e-rbac-forbidden")
	token := idToken(t, cluster.ClientWeb, "bob")
	id := wantUserInfo("bob")
	path := "/api/v1/namespaces/" + ns + "/secrets"

	via := send(t, fgClient(t, fg, false), http.MethodGet, fg.URL+path, bearer(token), nil)
	direct := send(t, adminClient(t), http.MethodGet, env.APIServerURL+path, impersonationHeaders(id), nil)
	if via.code != http.StatusForbidden {
		t.Fatalf("through frontgate: HTTP %d, want 403: %s", via.code, via.body)
	}
	s := status(t, via)
	mustContain(t, "the Forbidden message", s.Message, fmt.Sprintf(`User %q cannot list resource "secrets"`, id.Username))
	if via.code != direct.code || !bytes.Equal(via.body, direct.body) {
		t.Errorf("403 through frontgate differs from the direct one:\nfrontgate: %d %s\ndirect:    %d %s", via.code, via.body, direct.code, direct.body)
	}
	if a, b := via.header.Get("Content-Type"), direct.header.Get("Content-Type"); a != b {
		t.Errorf("Content-Type through frontgate %q, direct %q", a, b)
	}

	_, viaErr, err := kubectl(t, kubeconfigFor(t, fg, token), "-n", ns, "get", "secrets")
	if err == nil {
		t.Fatal("kubectl get secrets through frontgate succeeded, want Forbidden")
	}
	_, directErr, _ := kubectl(t, env.AdminKubeconfig, "-n", ns, "get", "secrets",
		"--as", id.Username, "--as-uid", id.UID, "--as-group", "oidc:pwd")
	if viaErr != directErr {
		t.Errorf("kubectl error through frontgate differs from the direct one:\nfrontgate: %s\ndirect:    %s", viaErr, directErr)
	}
	mustContain(t, "kubectl's error", viaErr, "Error from server (Forbidden)")
}

// TestImpersonation: `kubectl --as` through frontgate is checked by
// kube-apiserver against the user frontgate forwarded: refused without the
// impersonate permission (with the same answer kube-apiserver gives that user
// directly), honoured with it.
func TestImpersonation(t *testing.T) {
	need(t)
	token := idToken(t, cluster.ClientWeb, "carol")
	kc := kubeconfigFor(t, fg, token)
	carol := wantUserInfo("carol")
	// carol's username and groups, authenticated directly by kube-apiserver
	// with a client certificate (impersonation cannot be nested).
	directKC, err := env.WriteDirectKubeconfig(filepath.Join(t.TempDir(), "direct.kubeconfig"), carol.Username, "oidc:pwd")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := env.DirectHTTPClient(carol.Username, "oidc:pwd")
	if err != nil {
		t.Fatal(err)
	}
	const target = "e2e-impersonated"
	const path = "/api/v1/namespaces/default/configmaps"

	// refused checks that impersonating as through frontgate is refused
	// exactly as kube-apiserver refuses carol directly.
	refused := func(t *testing.T, as string) {
		t.Helper()
		hdr := bearer(token)
		hdr.Set("Impersonate-User", as)
		via := send(t, fgClient(t, fg, false), http.MethodGet, fg.URL+path, hdr, nil)
		ref := send(t, direct, http.MethodGet, env.APIServerURL+path, http.Header{"Impersonate-User": {as}}, nil)
		if via.code != http.StatusForbidden {
			t.Fatalf("impersonating %s through frontgate: HTTP %d, want 403: %s", as, via.code, via.body)
		}
		mustContain(t, "the Forbidden message", status(t, via).Message, fmt.Sprintf(`User %q cannot impersonate`, carol.Username))
		if !bytes.Equal(via.body, ref.body) || via.code != ref.code {
			t.Errorf("refusal through frontgate differs from the direct one:\nfrontgate: %d %s\ndirect:    %d %s", via.code, via.body, ref.code, ref.body)
		}
		// kubectl get --raw needs no discovery, so its error is the request's.
		_, viaErr, err := kubectl(t, kc, "--as", as, "get", "--raw", path)
		_, refErr, _ := kubectl(t, directKC, "--as", as, "get", "--raw", path)
		if err == nil || viaErr != refErr {
			t.Errorf("kubectl --as %s through frontgate: err=%v\n%s\ndirect:\n%s", as, err, viaErr, refErr)
		}
	}

	t.Run("without permission", func(t *testing.T) { refused(t, target) })

	t.Run("with permission", func(t *testing.T) {
		admin(t, "create", "clusterrole", "e2e-impersonate", "--verb=impersonate", "--resource=users", "--resource-name="+target)
		admin(t, "create", "clusterrolebinding", "e2e-impersonate", "--clusterrole=e2e-impersonate", "--user="+carol.Username)
		eventually(t, 15*time.Second, func() error {
			out, errOut, err := kubectl(t, kc, "--as", target, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
			if err != nil {
				return fmt.Errorf("%v: %s", err, errOut)
			}
			if out != target {
				return fmt.Errorf("username %q, want %q", out, target)
			}
			return nil
		})
		got := kubectlWhoami(t, kc, "--as", target)
		if got.Username != target || strings.Join(got.Groups, ",") != "system:authenticated" {
			t.Errorf("impersonated identity: %s", fmtUser(got))
		}
		// The permission covers one user only.
		refused(t, "someone-else")
	})
}
