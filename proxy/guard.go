package proxy

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// errUnauthenticatedForward is returned instead of sending a request whose
// identity headers are not the ones frontgate set.
var errUnauthenticatedForward = errors.New("request has no identity established by frontgate")

// guard is the last step before a request leaves. It fails closed: a
// request goes out with the front-proxy client certificate only if it
// carries exactly the identity headers frontgate computed for it and no
// Authorization header; a passthrough request goes out on the certificate-less
// transports and only if it carries no identity header at all. It then picks
// the HTTP/1.1 transport for upgrades and the HTTP/2-capable one otherwise.
type guard struct {
	identity identityMatcher
	upstream atomic.Pointer[upstreamTransports]
	metrics  *Metrics
}

// upstreamTransports are the transports in use; replaced as a whole when
// credentials rotate.
type upstreamTransports struct {
	transports  Transports
	passthrough *Transports
}

// RoundTrip implements http.RoundTripper.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	f := forwardFrom(req.Context())
	up := g.upstream.Load()
	var transports *Transports
	switch {
	case f == nil:
	case f.passthrough:
		if up.passthrough != nil && !g.carriesIdentity(req.Header) {
			transports = up.passthrough
		}
	case g.carriesExactly(req.Header, f.headers):
		transports = &up.transports
	}
	if transports == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errUnauthenticatedForward
	}
	rt := transports.Ordinary
	if f.upgrade != "" {
		rt = transports.Upgrade
	}
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	g.metrics.upstreamDuration.WithLabelValues(code).Observe(time.Since(start).Seconds())
	return resp, err
}

// carriesIdentity reports whether h has any identity header (Authorization
// aside, which a passthrough request keeps).
func (g *guard) carriesIdentity(h http.Header) bool {
	for key := range h {
		if key != "Authorization" && g.identity.matches(key) {
			return true
		}
	}
	return false
}

// carriesExactly reports whether the credential and identity headers of h
// are exactly want: same names, same values, in the same order.
func (g *guard) carriesExactly(h, want http.Header) bool {
	found := 0
	for key, values := range h {
		if !g.identity.matches(key) {
			continue
		}
		found++
		expected, ok := want[key]
		if !ok || !slices.Equal(values, expected) {
			return false
		}
	}
	return found == len(want) && found > 0
}
