package e2e

import (
	"net/http"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestWhoAmI: `kubectl auth whoami` through frontgate shows exactly the
// identity mapped from the ID token: username <issuer>#sub, uid from sub,
// groups from amr with their prefix plus system:authenticated, extra from azp.
func TestWhoAmI(t *testing.T) {
	need(t)
	kc := kubeconfigFor(t, fg, idToken(t, cluster.ClientWeb, "alice"))
	got := kubectlWhoami(t, kc)
	if want := wantUserInfo("alice"); !sameUser(got, want) {
		t.Errorf("kubectl auth whoami through frontgate:\n got %s\nwant %s", fmtUser(got), fmtUser(want))
	}
}

// TestClaimMapping: the username and group prefix rules of kube-apiserver's
// --oidc-* flags, each through its own frontgate.
func TestClaimMapping(t *testing.T) {
	need(t)
	issuer := env.OIDC.Issuer
	tests := []struct {
		name       string
		args       []string
		wantUser   string
		wantGroups []string
	}{
		{name: "sub with default prefix is <issuer>#sub", wantUser: issuer + "#alice"},
		{name: "custom username prefix", args: []string{"--oidc-username-prefix", "oidc:"}, wantUser: "oidc:alice"},
		{name: "username prefix - disables prefixing", args: []string{"--oidc-username-prefix", "-"}, wantUser: "alice"},
		{name: "non-email username claim gets the issuer prefix", args: []string{"--oidc-username-claim", "azp"}, wantUser: issuer + "#web"},
		{name: "array groups claim without prefix", args: []string{"--oidc-groups-claim", "amr"},
			wantUser: issuer + "#alice", wantGroups: []string{"pwd"}},
		{name: "array groups claim with prefix", args: []string{"--oidc-groups-claim", "aud", "--oidc-groups-prefix", "aud:"},
			wantUser: issuer + "#alice", wantGroups: []string{"aud:web"}},
		{name: "string groups claim", args: []string{"--oidc-groups-claim", "azp", "--oidc-groups-prefix", "client:"},
			wantUser: issuer + "#alice", wantGroups: []string{"client:web"}},
	}
	token := idToken(t, cluster.ClientWeb, "alice")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFrontgate(t, cluster.FrontgateOptions{Args: tc.args})
			got := kubectlWhoami(t, kubeconfigFor(t, f, token))
			want := authv1.UserInfo{Username: tc.wantUser, Groups: append(tc.wantGroups, "system:authenticated")}
			if !sameUser(got, want) {
				t.Errorf("frontgate %s:\n got %s\nwant %s", strings.Join(tc.args, " "), fmtUser(got), fmtUser(want))
			}
		})
	}
}

// TestRequiredClaim: --oidc-required-claim admits tokens with the claim value
// and refuses others with 401 before anything is forwarded.
func TestRequiredClaim(t *testing.T) {
	need(t)
	token := idToken(t, cluster.ClientWeb, "alice")
	t.Run("present", func(t *testing.T) {
		f := startFrontgate(t, cluster.FrontgateOptions{Args: []string{"--oidc-required-claim", "azp=web"}})
		if _, u := whoami(t, fgClient(t, f, false), f.URL, bearer(token)); u == nil || u.Username != mappedName("alice") {
			t.Errorf("want alice admitted, got %v", u)
		}
	})
	t.Run("different value", func(t *testing.T) {
		f := startFrontgate(t, cluster.FrontgateOptions{Args: []string{"--oidc-required-claim", "azp=api"}})
		resp, _ := whoami(t, fgClient(t, f, false), f.URL, bearer(token))
		s := status(t, resp)
		if resp.code != http.StatusUnauthorized || !strings.Contains(s.Message, "azp") {
			t.Errorf("want 401 naming the claim azp, got %d: %s", resp.code, resp.body)
		}
		if n := upstreamRequests(t, f); n != 0 {
			t.Errorf("frontgate forwarded %v requests for a refused token", n)
		}
	})
}

// TestReservedIdentity: an identity with a system: username or group (here
// from a prefix, or from a sub claim that is system:masters) is refused with
// 403 and not forwarded, unless --allow-reserved-identity lists the name;
// then kube-apiserver sees it and grants what it grants.
func TestReservedIdentity(t *testing.T) {
	need(t)
	issuer := env.OIDC.Issuer
	tests := []struct {
		name     string
		args     []string
		user     string
		reserved string           // the reserved name; empty when allowed
		want     *authv1.UserInfo // identity when allowed
		canAll   bool             // the identity is cluster-admin
	}{
		{
			name: "group prefix system: refused",
			args: []string{"--oidc-groups-claim", "amr", "--oidc-groups-prefix", "system:"},
			user: "alice", reserved: "system:pwd",
		},
		{
			name: "group prefix system: allowed",
			args: []string{"--oidc-groups-claim", "amr", "--oidc-groups-prefix", "system:", "--allow-reserved-identity", "system:pwd"},
			user: "alice",
			want: &authv1.UserInfo{Username: issuer + "#alice", Groups: []string{"system:pwd", "system:authenticated"}},
		},
		{
			name: "system:masters group claim refused",
			args: []string{"--oidc-groups-claim", "sub"},
			user: mastersUser.ID, reserved: "system:masters",
		},
		{
			name: "system:masters allowed for another name is still refused",
			args: []string{"--oidc-groups-claim", "sub", "--allow-reserved-identity", "system:pwd"},
			user: mastersUser.ID, reserved: "system:masters",
		},
		{
			name:   "system:masters group claim allowed",
			args:   []string{"--oidc-groups-claim", "sub", "--allow-reserved-identity", "system:masters"},
			user:   mastersUser.ID,
			want:   &authv1.UserInfo{Username: issuer + "#system:masters", Groups: []string{"system:masters", "system:authenticated"}},
			canAll: true,
		},
		{
			name: "system: username refused",
			args: []string{"--oidc-username-prefix", "-"},
			user: sysAdmin.ID, reserved: "system:admin",
		},
		{
			name: "system: username allowed",
			args: []string{"--oidc-username-prefix", "-", "--allow-reserved-identity", "system:admin"},
			user: sysAdmin.ID,
			want: &authv1.UserInfo{Username: "system:admin", Groups: []string{"system:authenticated"}},
		},
	}
	tokens := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tokens[tc.user] == "" {
				tokens[tc.user] = idToken(t, cluster.ClientWeb, tc.user)
			}
			token := tokens[tc.user]
			f := startFrontgate(t, cluster.FrontgateOptions{Args: tc.args})
			resp, got := whoami(t, fgClient(t, f, false), f.URL, bearer(token))
			if tc.reserved != "" {
				s := status(t, resp)
				if resp.code != http.StatusForbidden || !strings.Contains(s.Message, tc.reserved) {
					t.Errorf("want 403 naming %s, got %d: %s", tc.reserved, resp.code, resp.body)
				}
				if n := upstreamRequests(t, f); n != 0 {
					t.Errorf("frontgate forwarded %v requests for a refused identity", n)
				}
				// kubectl shows the refusal as Forbidden too.
				_, errOut, err := kubectl(t, kubeconfigFor(t, f, token), "get", "configmaps")
				if err == nil || !strings.Contains(errOut, "Forbidden") {
					t.Errorf("kubectl get configmaps: want a Forbidden error, got err=%v stderr=%s", err, errOut)
				}
				return
			}
			if got == nil {
				t.Fatalf("want the identity forwarded, got %d: %s", resp.code, resp.body)
			}
			if !sameUser(*got, *tc.want) {
				t.Errorf("identity:\n got %s\nwant %s", fmtUser(*got), fmtUser(*tc.want))
			}
			if tc.canAll {
				out, _, _ := kubectl(t, kubeconfigFor(t, f, token), "auth", "can-i", "*", "*", "--all-namespaces")
				if strings.TrimSpace(out) != "yes" {
					t.Errorf("kubectl auth can-i '*' '*' as system:masters: %q, want yes", out)
				}
			}
		})
	}
}
