package proxy

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// errUnauthenticatedForward is returned instead of sending a request whose
// identity headers are not the ones frontgate set.
var errUnauthenticatedForward = errors.New("request has no identity established by frontgate")

// guard is the last step before a request leaves with the front-proxy
// client certificate. It fails closed: a request goes out only if it carries
// exactly the identity headers frontgate computed for it and no
// Authorization header. It then picks the HTTP/1.1 transport for upgrades
// and the HTTP/2-capable one for everything else.
type guard struct {
	identity          identityMatcher
	ordinary, upgrade http.RoundTripper
	metrics           *Metrics
}

// RoundTrip implements http.RoundTripper.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	f := forwardFrom(req.Context())
	if f == nil || !g.carriesExactly(req.Header, f.headers) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errUnauthenticatedForward
	}
	rt := g.ordinary
	if f.upgrade != "" {
		rt = g.upgrade
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
