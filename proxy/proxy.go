package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/frontgate/frontgate/auth"
)

// Config is everything [New] needs. Build it once at start-up.
type Config struct {
	// Upstream is kube-apiserver's URL.
	Upstream *url.URL
	// Authenticator establishes the caller's identity.
	Authenticator auth.Authenticator
	// HeaderNames are the identity headers kube-apiserver trusts.
	HeaderNames HeaderNames
	// CredentialHeaders name further request headers that carry credentials
	// meant for frontgate alone, such as RFC 9440 Client-Cert from a load
	// balancer. Like Authorization, they are removed from every forwarded
	// request, in any letter case.
	CredentialHeaders []string
	// Limits bound the identity headers of one request.
	Limits Limits
	// Transports reach Upstream with the front-proxy client certificate
	// (see [NewTransports]).
	Transports Transports
	// Passthrough, when set, forwards a bearer token that no authenticator
	// recognised (see [auth.Unrecognised]) unchanged, for kube-apiserver to
	// authenticate itself — service-account tokens, for example. Its
	// transports must NOT present the front-proxy certificate. Nil disables
	// passthrough: such requests are answered with 401.
	Passthrough *Transports
	// Ready reports whether requests can be served now; nil means always.
	Ready func() error
	// Discovery, when set, answers requests for exactly [DiscoveryPath]
	// itself, without authentication and without forwarding them (see
	// [DiscoveryHandler]). It is the listener's only unauthenticated path.
	Discovery http.Handler
	// Logger receives one access line per request.
	Logger *slog.Logger
	// Audit, when set, receives one event per request and per upgraded
	// session.
	Audit *AuditLog
	// TrustedProxies are load balancers whose X-Forwarded-For frontgate
	// believes: it is passed on to kube-apiserver and names the source IP in
	// the audit log. Every other client's X-Forwarded-For is replaced.
	TrustedProxies []netip.Prefix
	// Metrics records what the proxy does.
	Metrics *Metrics
}

// Handler authenticates each request, replaces whatever identity headers it
// carried with the identity frontgate established, and forwards it to
// kube-apiserver. Requests without an established identity are answered by
// frontgate and never forwarded.
type Handler struct {
	cfg      Config
	identity identityMatcher
	guard    *guard
	// proxy forwards ordinary requests; streamProxy, the same but for its
	// smaller copy buffers, the requests kube-apiserver answers with a
	// long-lived stream (see [streams]).
	proxy, streamProxy *httputil.ReverseProxy
}

// SetTransports puts new transports in use, for example after the
// front-proxy certificate or the upstream CA rotated. Requests that have
// started (watches, exec sessions) finish on the old transports, whose idle
// connections are closed; every new request uses the new ones. Whether
// passthrough is on is fixed by [New]: passthrough is used only if it was
// configured there.
func (h *Handler) SetTransports(t Transports, passthrough *Transports) {
	if h.cfg.Passthrough == nil {
		passthrough = nil
	}
	old := h.guard.upstream.Swap(&upstreamTransports{transports: t, passthrough: passthrough})
	old.transports.closeIdleConnections()
	old.passthrough.closeIdleConnections()
}

// New returns the proxy handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Upstream == nil || cfg.Authenticator == nil || cfg.Transports.Ordinary == nil || cfg.Transports.Upgrade == nil || cfg.Logger == nil || cfg.Metrics == nil {
		return nil, errors.New("proxy: Upstream, Authenticator, Transports, Logger and Metrics are required")
	}
	if cfg.Passthrough != nil && (cfg.Passthrough.Ordinary == nil || cfg.Passthrough.Upgrade == nil) {
		return nil, errors.New("proxy: Passthrough needs both transports")
	}
	if err := cfg.HeaderNames.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, identity: newIdentityMatcher(cfg.HeaderNames, cfg.CredentialHeaders...)}
	h.guard = &guard{identity: h.identity, metrics: cfg.Metrics}
	h.guard.upstream.Store(&upstreamTransports{transports: cfg.Transports, passthrough: cfg.Passthrough})
	h.proxy = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      h.guard,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.proxyError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		BufferPool:     copyBuffers,
	}
	stream := *h.proxy
	stream.BufferPool = streamBuffers
	h.streamProxy = &stream
	return h, nil
}

// forward is what the handler decided about one request, carried in its
// context to Rewrite, the transport guard and ModifyResponse.
type forward struct {
	auditID  string
	identity *auth.Identity // nil when passthrough
	// headers are the identity headers to set: nil when passthrough, and
	// dropped by modifyResponse once the request was sent.
	headers http.Header
	// passthrough forwards the client's own bearer token without the
	// front-proxy certificate.
	passthrough bool
	upgrade     string // "websocket", "spdy", other lower-case protocol, or ""
	switched    atomic.Bool
	// bytesToUpstream and bytesToClient count an upgraded session's bytes.
	bytesToUpstream, bytesToClient atomic.Int64
	// upstreamProto is the protocol kube-apiserver answered with
	// ("HTTP/2.0", "HTTP/1.1"), for the access log.
	upstreamProto string
}

type forwardKey struct{}

func forwardFrom(ctx context.Context) *forward {
	f, _ := ctx.Value(forwardKey{}).(*forward)
	return f
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m := h.cfg.Metrics
	m.inFlight.Inc()
	defer m.inFlight.Dec()
	rec := &recorder{ResponseWriter: w}
	auditID := uuid.NewString()
	var id *auth.Identity
	var f *forward
	defer func() { h.finish(rec, r, auditID, id, f, start) }()
	if id, f = h.decide(rec, r, auditID); f != nil {
		h.serveForward(rec, r, f)
	}
}

// decide authenticates r and returns who made it and how to forward it, or
// a nil forward when it answered r itself (discovery, refusals). It is
// apart from ServeHTTP for the stack of a watch: ServeHTTP's frame stays on
// the stack for as long as the response streams, and with decide's locals
// in it the goroutine would use too much of its stack for the garbage
// collector to halve it after the request grew it (BENCHMARKS.md, "Idle
// watches").
//
//go:noinline
func (h *Handler) decide(rec *recorder, r *http.Request, auditID string) (*auth.Identity, *forward) {
	m := h.cfg.Metrics
	refuse := func(refusal Refusal) {
		rec.Header().Set("Audit-ID", auditID)
		dropUnreadBody(rec, r)
		refusal.Write(rec)
	}

	if h.cfg.Discovery != nil && r.URL.Path == DiscoveryPath {
		dropUnreadBody(rec, r)
		h.cfg.Discovery.ServeHTTP(rec, r)
		return nil, nil
	}
	if h.cfg.Ready != nil {
		if err := h.cfg.Ready(); err != nil {
			refuse(RefuseNotReady(err))
			return nil, nil
		}
	}

	authStart := time.Now()
	id, ok, err := h.cfg.Authenticator.AuthenticateRequest(r)
	m.authDuration.Observe(time.Since(authStart).Seconds())
	switch {
	case err != nil && h.cfg.Passthrough != nil && auth.Unrecognised(err):
		m.authentications.WithLabelValues("passthrough", "").Inc()
		return id, &forward{auditID: auditID, passthrough: true, upgrade: upgradeProtocol(r.Header)}
	case err != nil:
		m.authentications.WithLabelValues("failure", auth.ReasonOf(err)).Inc()
		refuse(RefuseAuthentication(err))
		return id, nil
	case !ok:
		m.authentications.WithLabelValues("no_credentials", "").Inc()
		refuse(RefuseNoCredentials())
		return id, nil
	}
	m.authentications.WithLabelValues("success", "").Inc()

	headers, err := IdentityHeaders(id, h.cfg.HeaderNames, h.cfg.Limits)
	if err != nil {
		refusal := RefuseIdentity(err)
		if refusal.Code == http.StatusInternalServerError {
			h.cfg.Logger.Error("refusing to forward an identity that cannot be encoded safely", "source", id.Source, "error", err)
		}
		refuse(refusal)
		return id, nil
	}
	return id, &forward{auditID: auditID, identity: id, headers: headers, upgrade: upgradeProtocol(r.Header)}
}

// dropUnreadBody prepares an answer frontgate gives itself, without reading
// the request body. Left alone, net/http would read the unread body (up to
// 256 KiB) before sending the answer, with no deadline — the proxy server
// has no ReadTimeout, which would cut watches and exec sessions — so a client
// that declares a body and never sends it would hold the connection and its
// goroutine for ever without ever being authenticated. Over HTTP/1.x the
// answer therefore closes the connection and reading the body fails at once;
// HTTP/2 resets the stream by itself.
func dropUnreadBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 || r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// serveForward hands the request to the reverse proxy with its decision f:
// a long-lived stream to the one with small copy buffers.
func (h *Handler) serveForward(w http.ResponseWriter, r *http.Request, f *forward) {
	rp := h.proxy
	if f.upgrade == "" && streams(r) {
		rp = h.streamProxy
	}
	rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardKey{}, f)))
	if f.switched.Load() {
		// ServeHTTP returns when both sides of the upgraded session closed.
		h.cfg.Metrics.upgradedOpen.WithLabelValues(f.upgrade).Dec()
	}
}

// rewrite runs after ReverseProxy removed hop-by-hop headers (including any
// named in Connection), so the identity it sets reaches kube-apiserver. It
// does only infallible work: every decision was made in ServeHTTP.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(h.cfg.Upstream)
	if host, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil && isTrusted(host, h.cfg.TrustedProxies) {
		// A trusted load balancer's chain is kept; SetXForwarded appends.
		pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
	}
	pr.SetXForwarded()
	h.identity.sanitize(pr.Out.Header)
	f := forwardFrom(pr.In.Context())
	if f != nil {
		pr.Out.Header.Set("Audit-ID", f.auditID)
	}
	switch {
	case f == nil:
	case f.passthrough:
		// The client's own credential, for kube-apiserver to authenticate.
		for _, k := range []string{"Authorization", "Sec-Websocket-Protocol"} {
			if v, ok := pr.In.Header[k]; ok {
				pr.Out.Header[k] = v
			}
		}
	default:
		for k, v := range f.headers {
			pr.Out.Header[k] = v
		}
	}
}

// modifyResponse makes a refused upgrade close the client's connection; the
// upgrade transport closes kube-apiserver's (CVE-2018-1002105). A switched
// connection is counted, and so are the bytes copied over it.
func (h *Handler) modifyResponse(resp *http.Response) error {
	f := forwardFrom(resp.Request.Context())
	if f == nil {
		return nil
	}
	f.upstreamProto = resp.Proto
	// The request has been sent and the guard has checked its identity
	// headers: drop them, or a watch would keep the map for as long as it
	// streams. (The header values stay referenced by the request sent.)
	f.headers = nil
	if f.upgrade == "" {
		return nil
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		f.switched.Store(true)
		h.cfg.Metrics.upgrades.WithLabelValues(f.upgrade, "switched").Inc()
		h.cfg.Metrics.upgradedOpen.WithLabelValues(f.upgrade).Inc()
		if conn, ok := resp.Body.(io.ReadWriteCloser); ok {
			resp.Body = &countingConn{
				ReadWriteCloser: conn,
				session:         f,
				toClient:        h.cfg.Metrics.upgradedBytes.WithLabelValues(f.upgrade, "to_client"),
				toUpstream:      h.cfg.Metrics.upgradedBytes.WithLabelValues(f.upgrade, "to_upstream"),
			}
		}
		return nil
	}
	h.cfg.Metrics.upgrades.WithLabelValues(f.upgrade, "refused").Inc()
	resp.Header.Set("Connection", "close")
	return nil
}

// proxyError answers when kube-apiserver could not be asked or did not answer.
func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	f := forwardFrom(r.Context())
	if f != nil && f.upgrade != "" {
		h.cfg.Metrics.upgrades.WithLabelValues(f.upgrade, "error").Inc()
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; there is nobody to answer.
		return
	}
	if f != nil {
		w.Header().Set("Audit-ID", f.auditID)
	}
	if errors.Is(err, errUnauthenticatedForward) {
		h.cfg.Logger.Error("refused to forward a request without the identity frontgate established", "path", r.URL.Path)
		WriteStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "frontgate refused to forward this request: its identity headers were not the ones frontgate set")
		return
	}
	h.cfg.Logger.Warn("kube-apiserver request failed", "upstream", h.cfg.Upstream.Redacted(), "error", err)
	WriteStatus(w, http.StatusBadGateway, metav1.StatusReasonServiceUnavailable, fmt.Sprintf("frontgate could not reach kube-apiserver at %s: %s", h.cfg.Upstream.Redacted(), upstreamFailure(err)))
}

// upstreamFailure says why kube-apiserver gave no answer; a bare "EOF"
// becomes a sentence.
func upstreamFailure(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("kube-apiserver closed the connection without answering (%v)", err)
	}
	return err.Error()
}

// finish records the access log line and metrics of one request.
func (h *Handler) finish(rec *recorder, r *http.Request, auditID string, id *auth.Identity, f *forward, start time.Time) {
	code := rec.status
	if f != nil && f.switched.Load() {
		code = http.StatusSwitchingProtocols
	}
	if code == 0 {
		code = http.StatusOK
	}
	elapsed := time.Since(start)
	m := h.cfg.Metrics
	m.requests.WithLabelValues(strconv.Itoa(code), r.Method).Inc()
	if code != http.StatusSwitchingProtocols {
		m.requestDuration.WithLabelValues(r.Method).Observe(elapsed.Seconds())
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", code),
		slog.Duration("duration", elapsed),
		slog.Int64("bytes", rec.bytes),
		slog.String("remote", r.RemoteAddr),
		slog.String("proto", r.Proto),
		slog.String("audit_id", auditID),
	}
	if f != nil && f.upstreamProto != "" {
		attrs = append(attrs, slog.String("upstream_proto", f.upstreamProto))
	}
	switch {
	case id != nil:
		attrs = append(attrs, slog.String("user", id.Name), slog.Int("groups", len(id.Groups)), slog.String("authenticator", id.Source))
	case f != nil && f.passthrough:
		attrs = append(attrs, slog.String("authenticator", "passthrough"))
	}
	if f != nil && f.upgrade != "" {
		attrs = append(attrs, slog.String("upgrade", f.upgrade))
	}
	h.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	if h.cfg.Audit != nil {
		h.audit(rec, r, auditID, id, f, code, elapsed)
	}
}

// audit records the request, or the upgraded session that just ended.
func (h *Handler) audit(rec *recorder, r *http.Request, auditID string, id *auth.Identity, f *forward, code int, elapsed time.Duration) {
	e := &AuditEvent{Time: time.Now().UTC(), Stage: "ResponseComplete", AuditID: auditID, Code: code, LatencySeconds: elapsed.Seconds(), Bytes: rec.bytes}
	e.describe(r, h.cfg.TrustedProxies)
	switch {
	case id != nil:
		e.User, e.UID, e.Groups, e.Authenticator = id.Name, id.UID, id.Groups, id.Source
	case f != nil && f.passthrough:
		e.Authenticator = "passthrough"
	}
	if f != nil && f.switched.Load() {
		e.Stage, e.Upgrade = "SessionEnded", f.upgrade
		e.BytesToUpstream, e.BytesToClient = f.bytesToUpstream.Load(), f.bytesToClient.Load()
	}
	if err := h.cfg.Audit.Record(e); err != nil {
		h.cfg.Logger.Error("cannot write the audit log", "error", err)
	}
}

// upgradeProtocol returns the lower-cased protocol a request asks to switch
// to ("websocket", "spdy/3.1", ...), or "" for an ordinary request.
func upgradeProtocol(h http.Header) string {
	for _, v := range h.Values("Connection") {
		for _, token := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(token), "upgrade") {
				return metricProtocol(h.Get("Upgrade"))
			}
		}
	}
	return ""
}

// metricProtocol folds an Upgrade header value to a bounded label.
func metricProtocol(upgrade string) string {
	switch p := strings.ToLower(upgrade); {
	case p == "":
		return ""
	case p == "websocket":
		return "websocket"
	case strings.HasPrefix(p, "spdy/"):
		return "spdy"
	default:
		return "other"
	}
}

// recorder notes the status and size of a response. It unwraps to the
// original writer, so flushing and hijacking (upgrades) keep working.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap returns the original writer for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// countingConn is kube-apiserver's side of a switched connection, counting
// the bytes copied each way. It keeps CloseWrite, with which the reverse
// proxy passes a client's half-close on to kube-apiserver.
type countingConn struct {
	io.ReadWriteCloser
	session              *forward
	toClient, toUpstream prometheus.Counter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Read(p)
	c.toClient.Add(float64(n))
	c.session.bytesToClient.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.ReadWriteCloser.Write(p)
	c.toUpstream.Add(float64(n))
	c.session.bytesToUpstream.Add(int64(n))
	return n, err
}

// CloseWrite half-closes the connection to kube-apiserver.
func (c *countingConn) CloseWrite() error {
	if cw, ok := c.ReadWriteCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("CloseWrite: %w", http.ErrNotSupported)
}
