package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// auditBuffer collects audit lines.
type auditBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *auditBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *auditBuffer) events(t *testing.T) []AuditEvent {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var events []AuditEvent
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var e AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		events = append(events, e)
	}
	return events
}

func TestAuditLog(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Audit-ID", r.Header.Get("Audit-ID"))
		_, _ = io.WriteString(w, `{"kind":"Pod"}`)
	})
	var out auditBuffer
	p := newTestProxy(t, up, func(c *Config) { c.Audit = NewAuditLog(&out) })
	client := p.Client()

	resp, _ := do(t, client, "GET", p.URL+"/api/v1/namespaces/team-a/pods/web-1/log", http.Header{
		"Authorization": {"Bearer alice"}, "Impersonate-User": {"bob"}, "User-Agent": {"kubectl/v1.37.2"},
	})
	forwardedID := up.seen()[0].Header.Get("Audit-ID")
	refused, _ := do(t, client, "DELETE", p.URL+"/apis/apps/v1/namespaces/team-a/deployments/web", http.Header{"Authorization": {"Bearer expired"}})

	events := out.events(t)
	if len(events) != 2 {
		t.Fatalf("%d audit events, want 2", len(events))
	}
	got, want := events[0], AuditEvent{
		Stage: "ResponseComplete", AuditID: forwardedID, SourceIP: "127.0.0.1", User: "alice", Groups: []string{"devs"},
		Authenticator: "test", ImpersonatedUser: "bob", Verb: "get", APIVersion: "v1", Resource: "pods", Subresource: "log",
		Namespace: "team-a", Name: "web-1", Path: "/api/v1/namespaces/team-a/pods/web-1/log", Code: 200, Bytes: 14, UserAgent: "kubectl/v1.37.2",
	}
	got.Time, got.LatencySeconds = time.Time{}, 0
	if forwardedID == "" || resp.Header.Get("Audit-ID") != forwardedID {
		t.Errorf("Audit-ID sent to kube-apiserver %q, returned to the client %q", forwardedID, resp.Header.Get("Audit-ID"))
	}
	if !equalJSON(got, want) {
		t.Errorf("forwarded request audited as\n%+v\nwant\n%+v", got, want)
	}
	r := events[1]
	if r.Code != 401 || r.Verb != "delete" || r.APIGroup != "apps" || r.Resource != "deployments" || r.User != "" || r.AuditID == "" || refused.Header.Get("Audit-ID") != r.AuditID {
		t.Errorf("refused request audited as %+v (Audit-ID header %q)", r, refused.Header.Get("Audit-ID"))
	}
	for _, e := range events {
		line, _ := json.Marshal(e)
		if bytes.Contains(line, []byte("alice\"}")) || bytes.Contains(line, []byte("Bearer")) {
			t.Errorf("audit line holds a credential: %s", line)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestAuditLogRecordsUpgradedSessions(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo:" + line)
		_ = brw.Flush()
	})
	var out auditBuffer
	p := newTestProxy(t, up, func(c *Config) { c.Audit = NewAuditLog(&out) })
	conn, resp := rawUpgrade(t, p.URL, "")
	_, _ = io.WriteString(conn, "hello\n")
	reply, _ := bufio.NewReader(io.MultiReader(resp.Body, conn)).ReadString('\n')
	conn.Close()
	if reply != "echo:hello\n" {
		t.Fatalf("reply %q", reply)
	}
	var e AuditEvent
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if events := out.events(t); len(events) == 1 {
			e = events[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no audit event for the session")
		}
	}
	if e.Stage != "SessionEnded" || e.Code != 101 || e.Upgrade != "websocket" || e.Subresource != "exec" || e.BytesToUpstream != 6 || e.BytesToClient != 11 {
		t.Errorf("session audited as %+v, want SessionEnded 101 websocket exec with 6 bytes up and 11 down", e)
	}
}

func TestSourceIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct client", "192.0.2.1:5000", "", "192.0.2.1"},
		{"untrusted client's X-Forwarded-For is ignored", "192.0.2.1:5000", "203.0.113.9", "192.0.2.1"},
		{"trusted load balancer", "10.1.1.1:5000", "203.0.113.9", "203.0.113.9"},
		{"chain of trusted proxies", "10.1.1.1:5000", "203.0.113.9, 10.2.2.2", "203.0.113.9"},
		{"spoofed leftmost entry", "10.1.1.1:5000", "1.2.3.4, 203.0.113.9", "203.0.113.9"},
		{"garbage in the chain", "10.1.1.1:5000", "203.0.113.9, not-an-ip", "10.1.1.1"},
		{"trusted without header", "10.1.1.1:5000", "", "10.1.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "https://frontgate/api", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := SourceIP(r, trusted); got != tt.want {
				t.Errorf("SourceIP = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRotatingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	f, err := OpenRotatingFile(path, 20, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"first line 1\n", "second line\n", "third line\n", "fourth line\n"} {
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"audit.log": "fourth line\n", "audit.log.1": "third line\n", "audit.log.2": "second line\n"}
	for name, content := range want {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(path), name))
		if err != nil || string(data) != content {
			t.Errorf("%s = %q (%v), want %q", name, data, err, content)
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Error("more backups than allowed")
	}
	info, _ := os.Stat(path)
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
}

func TestClientAuditIDIsReplaced(t *testing.T) {
	up := newUpstream(t, nil)
	p := newTestProxy(t, up)
	do(t, p.Client(), "GET", p.URL+"/api", http.Header{"Authorization": {"Bearer alice"}, "Audit-Id": {"chosen-by-the-client"}})
	if got := up.seen()[0].Header.Values("Audit-Id"); len(got) != 1 || got[0] == "chosen-by-the-client" {
		t.Errorf("kube-apiserver got Audit-ID %q, want one frontgate chose", got)
	}
}
