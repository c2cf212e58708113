package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The protocol rules of upgrades (exec, attach, cp, port-forward), as
// kubectl uses them over WebSocket and SPDY; test/e2e proves the same
// against a real kube-apiserver and node agent.

// rawRequest sends one HTTP/1.1 request head over a new TLS connection to
// the proxy and reads the response head. The response body stays unread.
func rawRequest(t *testing.T, proxyURL, head string) (*tls.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	u, _ := url.Parse(proxyURL)
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, strings.ReplaceAll(head, "HOST", u.Host)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

// counter returns the value of the counter name with exactly labels, or 0.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// switchAndEcho is an upstream handler that answers an upgrade with 101 and
// the response header lines given, then echoes each line it reads as
// "echo:<line>".
func switchAndEcho(t *testing.T, responseHeader string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n" + responseHeader + "\r\n")
		_ = brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo:" + line)
			_ = brw.Flush()
		}
	}
}

// TestUpgradesPassEndToEndHeadersUnchanged: a WebSocket and a SPDY upgrade,
// each from an HTTP/1.1 client, reach kube-apiserver over HTTP/1.1 with the
// front-proxy client certificate and the identity, every end-to-end header
// unchanged (Sec-WebSocket-*, X-Stream-Protocol-Version and others) except
// the bearer-token subprotocol; kube-apiserver's 101 reaches the client with
// its headers, and the bytes copied each way are counted.
func TestUpgradesPassEndToEndHeadersUnchanged(t *testing.T) {
	tests := []struct {
		name, proto string
		head        string
		// want are the end-to-end request headers kube-apiserver must see.
		want http.Header
		// response is the 101's header lines; wantResponse what the client
		// must see of them.
		response     string
		wantResponse http.Header
	}{{
		name:  "websocket",
		proto: "websocket",
		head: "GET /api/v1/namespaces/ns/pods/p/exec?command=sh&stdin=true HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer alice\r\n" +
			"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
			"Sec-WebSocket-Protocol: v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.YWxpY2U, v4.channel.k8s.io\r\n" +
			"Sec-WebSocket-Extensions: permessage-deflate\r\nOrigin: https://example.com\r\nX-Custom: kept\r\nUser-Agent: kubectl/v1.37.2\r\n\r\n",
		want: http.Header{
			"Upgrade":                  {"websocket"},
			"Sec-Websocket-Version":    {"13"},
			"Sec-Websocket-Key":        {"dGhlIHNhbXBsZSBub25jZQ=="},
			"Sec-Websocket-Protocol":   {"v5.channel.k8s.io, v4.channel.k8s.io"},
			"Sec-Websocket-Extensions": {"permessage-deflate"},
			"Origin":                   {"https://example.com"},
			"X-Custom":                 {"kept"},
			"User-Agent":               {"kubectl/v1.37.2"},
		},
		response:     "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n",
		wantResponse: http.Header{"Upgrade": {"websocket"}, "Sec-Websocket-Accept": {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, "Sec-Websocket-Protocol": {"v5.channel.k8s.io"}},
	}, {
		name:  "spdy",
		proto: "spdy",
		head: "POST /api/v1/namespaces/ns/pods/p/portforward HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer alice\r\nContent-Length: 0\r\n" +
			"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n" +
			"X-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: channel.k8s.io\r\nX-Custom: kept\r\n\r\n",
		want: http.Header{
			"Upgrade":                   {"SPDY/3.1"},
			"X-Stream-Protocol-Version": {"portforward.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"},
			"X-Custom":                  {"kept"},
		},
		response:     "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n",
		wantResponse: http.Header{"Upgrade": {"SPDY/3.1"}, "X-Stream-Protocol-Version": {"portforward.k8s.io"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var seen *http.Request
			echo := switchAndEcho(t, tt.response)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = r.Clone(context.Background())
				mu.Unlock()
				echo(w, r)
			})
			p, reg := newTestProxyWithMetrics(t, up)
			conn, br, resp := rawRequest(t, p.URL, tt.head)
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			for k, v := range tt.wantResponse {
				if got := resp.Header.Values(k); !slices.Equal(got, v) {
					t.Errorf("response header %s = %q, want %q", k, got, v)
				}
			}
			_, _ = io.WriteString(conn, "hello\n")
			if reply, err := br.ReadString('\n'); err != nil || reply != "echo:hello\n" {
				t.Fatalf("reply %q, %v", reply, err)
			}
			conn.Close()

			mu.Lock()
			got := seen
			mu.Unlock()
			if got.ProtoMajor != 1 {
				t.Errorf("upgrade reached kube-apiserver over %s, want HTTP/1.1", got.Proto)
			}
			if got.TLS == nil || len(got.TLS.PeerCertificates) == 0 || got.TLS.PeerCertificates[0].Subject.CommonName != "frontgate" {
				t.Error("upgrade reached kube-apiserver without the front-proxy client certificate")
			}
			if u := got.Header.Values("X-Remote-User"); !slices.Equal(u, []string{"alice"}) || got.Header.Get("Authorization") != "" {
				t.Errorf("X-Remote-User %q, Authorization %q: want alice and none", u, got.Header.Get("Authorization"))
			}
			for k, v := range tt.want {
				if g := got.Header.Values(k); !slices.Equal(g, v) {
					t.Errorf("kube-apiserver got %s = %q, want %q", k, g, v)
				}
			}
			for k, want := range map[string]float64{"to_upstream": float64(len("hello\n")), "to_client": float64(len("echo:hello\n"))} {
				labels := map[string]string{"protocol": tt.proto, "direction": k}
				eventuallyTrue(t, func() bool { return counter(t, reg, "frontgate_upgraded_bytes_total", labels) == want },
					func() string {
						return fmt.Sprintf("frontgate_upgraded_bytes_total%v = %v, want %v", labels, counter(t, reg, "frontgate_upgraded_bytes_total", labels), want)
					})
			}
		})
	}
}

// eventuallyTrue polls cond for up to 5 s and fails with msg() if it never
// holds.
func eventuallyTrue(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
	}
}

// TestUpgradeHalfClose: a client that half-closes its side of a switched
// connection (stdin EOF) keeps receiving what kube-apiserver still sends;
// kube-apiserver sees the EOF.
func TestUpgradeHalfClose(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
		_ = brw.Flush()
		in, err := io.ReadAll(brw) // until the client's EOF
		if err != nil {
			_, _ = brw.WriteString("read error: " + err.Error())
			_ = brw.Flush()
			return
		}
		_, _ = brw.WriteString("got " + string(in) + "\n")
		_ = brw.Flush()
		time.Sleep(100 * time.Millisecond)
		_, _ = brw.WriteString("still flowing\n")
		_ = brw.Flush()
	})
	p := newTestProxy(t, up)
	conn, br, resp := rawRequest(t, p.URL, "POST /api/v1/namespaces/ns/pods/p/exec HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer alice\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _ = io.WriteString(conn, "stdin data")
	if err := conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading after the half-close: %v (got %q)", err, rest)
	}
	if want := "got stdin data\nstill flowing\n"; string(rest) != want {
		t.Errorf("after the half-close the client got %q, want %q", rest, want)
	}
}

// TestRefusedUpgradeClosesBothConnectionsAndFallbackWorks: kube-apiserver
// refusing the WebSocket upgrade (as a server without WebSocket support
// does) reaches the client as that response, frontgate closes the client's
// connection and its own to kube-apiserver, and the SPDY upgrade kubectl
// falls back to, on a new connection, switches.
func TestRefusedUpgradeClosesBothConnectionsAndFallbackWorks(t *testing.T) {
	const refusal = `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"websocket not supported","code":400}`
	var mu sync.Mutex
	states := map[net.Conn]http.ConnState{}
	echo := switchAndEcho(t, "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, refusal)
			return
		}
		echo(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if s != http.StateHijacked {
			states[c] = s
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p, reg := newTestProxyWithMetrics(t, &upstream{Server: srv})

	conn, br, resp := rawRequest(t, p.URL, "GET /api/v1/namespaces/ns/pods/p/exec?command=sh HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer alice\r\n"+
		"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || string(body) != refusal {
		t.Fatalf("got %d %q, want kube-apiserver's 400 %q", resp.StatusCode, body, refusal)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("client connection still open after the refused upgrade: %v", err)
	}
	conn.Close()
	eventuallyTrue(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range states {
			if s != http.StateClosed {
				return false
			}
		}
		return len(states) == 1
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("frontgate's connections to kube-apiserver after the refused upgrade: %v, want one, closed", states)
	})

	conn, br, resp = rawRequest(t, p.URL, "POST /api/v1/namespaces/ns/pods/p/exec?command=sh HTTP/1.1\r\nHost: HOST\r\nAuthorization: Bearer alice\r\nContent-Length: 0\r\n"+
		"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Stream-Protocol-Version") != "v4.channel.k8s.io" {
		t.Fatalf("SPDY fallback: status %d, protocol %q", resp.StatusCode, resp.Header.Get("X-Stream-Protocol-Version"))
	}
	_, _ = io.WriteString(conn, "hello\n")
	if reply, err := br.ReadString('\n'); err != nil || reply != "echo:hello\n" {
		t.Fatalf("SPDY fallback: reply %q, %v", reply, err)
	}
	for labels, want := range map[[2]string]float64{{"websocket", "refused"}: 1, {"spdy", "switched"}: 1} {
		if got := counter(t, reg, "frontgate_upgrades_total", map[string]string{"protocol": labels[0], "result": labels[1]}); got != want {
			t.Errorf("frontgate_upgrades_total{protocol=%s,result=%s} = %v, want %v", labels[0], labels[1], got, want)
		}
	}
}
