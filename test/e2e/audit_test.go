package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/frontgate/frontgate/test/cluster"
)

// TestAuditLog: with --audit-log-path, a request through frontgate is one
// JSON line naming the user and the request as kube-apiserver parses it, and
// its auditID is the Audit-ID kube-apiserver used: the same request is found
// in kube-apiserver's own audit log under that ID, as the same user. A
// request frontgate refuses is audited too. No token appears in the log.
func TestAuditLog(t *testing.T) {
	need(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	f := startFrontgate(t, cluster.FrontgateOptions{Args: append(slices.Clone(defaultArgs), "--audit-log-path", path)})
	ns := namespace(t, "e2e-audit")
	token := idToken(t, cluster.ClientWeb, "dave")
	client := fgClient(t, f, false)

	forwarded := send(t, client, http.MethodGet, f.URL+"/api/v1/namespaces/"+ns+"/configmaps/settings", bearer(token), nil)
	refused := send(t, client, http.MethodGet, f.URL+"/api/v1/namespaces/"+ns+"/configmaps", bearer("not-a-token"), nil)
	auditID := forwarded.header.Get("Audit-ID")
	if forwarded.code != http.StatusForbidden || auditID == "" {
		t.Fatalf("forwarded request: HTTP %d, Audit-ID %q", forwarded.code, auditID)
	}

	type event struct {
		AuditID, User, Verb, Resource, Namespace, Name string
		Code                                           int
	}
	var events []event
	eventually(t, 10*time.Second, func() error {
		events = nil
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, needle := range append(secretNeedles(token), "not-a-token") {
			if strings.Contains(string(data), needle) {
				t.Fatal("a token is in frontgate's audit log")
			}
		}
		scanner := bufio.NewScanner(bytes.NewReader(data))
		for scanner.Scan() {
			var e event
			if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
				return fmt.Errorf("audit line %q: %v", scanner.Text(), err)
			}
			events = append(events, e)
		}
		if len(events) < 2 {
			return fmt.Errorf("%d audit events", len(events))
		}
		return nil
	})
	want := event{AuditID: auditID, User: mappedName("dave"), Verb: "get", Resource: "configmaps", Namespace: ns, Name: "settings", Code: 403}
	if events[0] != want {
		t.Errorf("frontgate audited %+v, want %+v", events[0], want)
	}
	if r := events[1]; r.Code != 401 || r.User != "" || r.AuditID == "" || r.AuditID != refused.header.Get("Audit-ID") {
		t.Errorf("refused request audited as %+v (Audit-ID header %q)", r, refused.header.Get("Audit-ID"))
	}

	// kube-apiserver's own audit log has the same request under that ID.
	eventually(t, 30*time.Second, func() error {
		data, err := os.ReadFile(env.APIServerAuditLog)
		if err != nil {
			return err
		}
		scanner := bufio.NewScanner(bytes.NewReader(data))
		scanner.Buffer(make([]byte, 1<<20), 1<<20)
		for scanner.Scan() {
			var e struct {
				AuditID string `json:"auditID"`
				Stage   string `json:"stage"`
				User    struct {
					Username string `json:"username"`
				} `json:"user"`
				Verb      string `json:"verb"`
				ObjectRef struct {
					Resource, Namespace, Name string
				} `json:"objectRef"`
			}
			if json.Unmarshal(scanner.Bytes(), &e) != nil || e.AuditID != auditID {
				continue
			}
			if e.User.Username != mappedName("dave") || e.Verb != "get" || e.ObjectRef.Resource != "configmaps" || e.ObjectRef.Name != "settings" {
				t.Errorf("kube-apiserver audited %s as %+v", auditID, e)
			}
			return nil
		}
		return fmt.Errorf("auditID %s not in kube-apiserver's audit log yet", auditID)
	})
}
