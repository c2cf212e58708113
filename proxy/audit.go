package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// AuditEvent is one line of the audit log: a request frontgate answered or
// forwarded, or an upgraded session (exec, attach, port-forward) when it
// ended. It never holds a credential.
type AuditEvent struct {
	Time time.Time `json:"time"`
	// Stage is ResponseComplete, or SessionEnded for an upgraded session.
	Stage string `json:"stage"`
	// AuditID is also sent to kube-apiserver as the Audit-ID request header,
	// which it adopts, so one grep finds the request in both audit logs.
	AuditID       string   `json:"auditID"`
	SourceIP      string   `json:"sourceIP"`
	User          string   `json:"user,omitempty"`
	UID           string   `json:"uid,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Authenticator string   `json:"authenticator,omitempty"`
	// ImpersonatedUser is the Impersonate-User the client asked for
	// (kubectl --as); kube-apiserver authorizes it.
	ImpersonatedUser string `json:"impersonatedUser,omitempty"`
	// Verb, APIGroup ... Name are parsed from the request as kube-apiserver
	// parses them.
	Verb        string `json:"verb"`
	APIGroup    string `json:"apiGroup,omitempty"`
	APIVersion  string `json:"apiVersion,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
	Path        string `json:"path"`
	Code        int    `json:"code"`
	// LatencySeconds is until the response ended; for a session, its
	// duration.
	LatencySeconds float64 `json:"latencySeconds"`
	// Bytes is the size of the response body frontgate wrote.
	Bytes     int64  `json:"bytes"`
	UserAgent string `json:"userAgent,omitempty"`
	// Upgrade is the session's protocol (websocket, spdy); BytesToUpstream
	// and BytesToClient what it carried each way.
	Upgrade         string `json:"upgrade,omitempty"`
	BytesToUpstream int64  `json:"bytesToUpstream,omitempty"`
	BytesToClient   int64  `json:"bytesToClient,omitempty"`
}

// AuditLog writes AuditEvents as JSON lines. It is safe for concurrent use.
type AuditLog struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder
}

// NewAuditLog writes events to w.
func NewAuditLog(w io.Writer) *AuditLog {
	return &AuditLog{w: w, enc: json.NewEncoder(w)}
}

// Record writes one event.
func (a *AuditLog) Record(e *AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.enc.Encode(e)
}

// requestInfo parses requests as kube-apiserver does.
var requestInfo = &request.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// describe fills the event's request fields from r.
func (e *AuditEvent) describe(r *http.Request, trusted []netip.Prefix) {
	e.Path = r.URL.Path
	e.UserAgent = r.UserAgent()
	e.ImpersonatedUser = r.Header.Get("Impersonate-User")
	e.SourceIP = SourceIP(r, trusted)
	info, err := requestInfo.NewRequestInfo(r)
	if err != nil {
		e.Verb = strings.ToLower(r.Method)
		return
	}
	e.Verb, e.APIGroup, e.APIVersion = info.Verb, info.APIGroup, info.APIVersion
	e.Resource, e.Subresource, e.Namespace, e.Name = info.Resource, info.Subresource, info.Namespace, info.Name
}

// SourceIP is the client's address: the connection's peer, or — only when
// that peer is a trusted proxy — the nearest address in X-Forwarded-For
// that is not itself a trusted proxy.
func SourceIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !isTrusted(host, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		if _, err := netip.ParseAddr(hop); err != nil {
			return host
		}
		if !isTrusted(hop, trusted) {
			return hop
		}
	}
	return host
}

func isTrusted(host string, trusted []netip.Prefix) bool {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// RotatingFile is an append-only file that is renamed to PATH.1 (PATH.2 ...)
// when it would grow past MaxBytes, keeping MaxBackups old files.
type RotatingFile struct {
	path       string
	maxBytes   int64
	maxBackups int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotatingFile opens (or creates, 0600) path for appending.
func OpenRotatingFile(path string, maxBytes int64, maxBackups int) (*RotatingFile, error) {
	r := &RotatingFile{path: path, maxBytes: maxBytes, maxBackups: maxBackups}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, info.Size()
	return nil
}

// Write appends p, rotating first if p would not fit.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.maxBytes > 0 && r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, fmt.Errorf("rotating %s: %w", r.path, err)
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return err
	}
	for i := r.maxBackups; i > 0; i-- {
		from := r.path
		if i > 1 {
			from = fmt.Sprintf("%s.%d", r.path, i-1)
		}
		if err := os.Rename(from, fmt.Sprintf("%s.%d", r.path, i)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if r.maxBackups == 0 {
		if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return r.open()
}

// Close closes the file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
