package proxy

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestUpstreamProbe(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusUnauthorized)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0) {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.WriteHeader(int(status.Load()))
	})
	u, _ := url.Parse(up.URL)
	p := NewUpstreamProbe(u, upstreamTransportsFor(up, nil).Ordinary, 10*time.Millisecond)
	if p.Ready() == nil {
		t.Fatal("ready before the first probe")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)

	wait := func(ready bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); (p.Ready() == nil) != ready; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("Ready() = %v, want ready %v", p.Ready(), ready)
			}
		}
	}
	wait(true) // 401 without anonymous access still means kube-apiserver serves
	status.Store(http.StatusInternalServerError)
	wait(false)
	if err := p.Ready(); !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q does not say why", err)
	}
	status.Store(http.StatusOK)
	wait(true)
	up.Close()
	wait(false)
}
