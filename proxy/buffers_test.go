package proxy

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBufferPools(t *testing.T) {
	for _, tc := range []struct {
		name string
		pool httputil.BufferPool
		size int
	}{
		{"copyBuffers", copyBuffers, copyBufferSize},
		{"streamBuffers", streamBuffers, streamBufferSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := tc.pool.Get()
			if len(buf) != tc.size || cap(buf) != tc.size {
				t.Fatalf("Get returned len %d cap %d, want %d", len(buf), cap(buf), tc.size)
			}
			tc.pool.Put(buf)
			tc.pool.Put(make([]byte, 10))                              // not ours: dropped
			tc.pool.Put(make([]byte, copyBufferSize+streamBufferSize)) // nor this
			for range 3 {
				if got := tc.pool.Get(); len(got) != tc.size {
					t.Fatalf("Get after Put returned len %d, want %d", len(got), tc.size)
				}
			}
		})
	}
}

// TestStreams: which requests kube-apiserver answers with a long-lived
// stream, and so get the small copy buffers.
func TestStreams(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		// Watches, as clients ask for them.
		{"GET", "/api/v1/namespaces/default/configmaps?watch=true", true},
		{"GET", "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=4711", true},
		{"GET", "/api/v1/pods?allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=540&watch=true", true},
		{"GET", "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dbench&watch=true", true},
		{"GET", "/apis/apps/v1/namespaces/default/deployments?watch=true", true},
		{"GET", "/apis/example.com/v1/widgets?watch=true", true},
		// kube-apiserver reads any value but 0 and false as true, and
		// decodes the parameter's name.
		{"GET", "/api/v1/namespaces/default/configmaps?watch", true},
		{"GET", "/api/v1/namespaces/default/configmaps?watch=yes", true},
		{"GET", "/api/v1/namespaces/default/configmaps?w%61tch=true", true},
		{"GET", "/api/v1/namespaces/default/configmaps?watch=false", false},
		{"GET", "/api/v1/namespaces/default/configmaps?watch=FALSE", false},
		{"GET", "/api/v1/namespaces/default/configmaps?watch=0", false},
		// The legacy watch paths.
		{"GET", "/api/v1/watch/pods", true},
		{"GET", "/api/v1/watch/namespaces/default/configmaps", true},
		{"GET", "/api/v1/watch/namespaces/default/configmaps/bench", true},
		{"GET", "/apis/apps/v1/watch/namespaces/default/deployments", true},
		// A pod's log, followed.
		{"GET", "/api/v1/namespaces/default/pods/web-0/log?follow=true&container=app", true},
		{"GET", "/api/v1/namespaces/default/pods/web-0/log?follow=1", true},
		{"GET", "/api/v1/namespaces/default/pods/web-0/log?follow=false", false},
		{"GET", "/api/v1/namespaces/default/pods/web-0/log", false},
		{"GET", "/api/v1/namespaces/default/pods/web-0/log?tailLines=10", false},
		// A pod named "watch": its path holds "/watch/".
		{"GET", "/api/v1/namespaces/default/pods/watch/log?follow=true", true},
		{"GET", "/api/v1/namespaces/default/pods/watch/log", false},
		// Ordinary requests.
		{"GET", "/api/v1/namespaces/default/configmaps/bench", false},
		{"GET", "/api/v1/namespaces/default/configmaps?limit=500", false},
		{"GET", "/api/v1/namespaces/default/configmaps?labelSelector=app%3Dweb", false},
		{"GET", "/api", false},
		{"GET", "/apis/apps/v1", false},
		{"GET", "/openapi/v3?watch=true", false},
		{"GET", "/healthz?watch=true", false},
		// A GET of one object ignores watch=true: kube-apiserver answers it
		// as a GET.
		{"GET", "/api/v1/namespaces/default/configmaps/bench?watch=true", false},
		// follow means nothing but on a pod's log.
		{"GET", "/api/v1/namespaces/default/configmaps?follow=true", false},
		{"GET", "/apis/example.com/v1/namespaces/default/pods/web-0/log?follow=true", false},
		// Only GETs stream.
		{"POST", "/api/v1/namespaces/default/configmaps?watch=true", false},
		{"DELETE", "/api/v1/namespaces/default/configmaps?watch=true", false},
		{"HEAD", "/api/v1/namespaces/default/configmaps?watch=true", false},
		{"POST", "/api/v1/watch/namespaces/default/configmaps", false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, "https://frontgate.example.com"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := streams(r); got != tc.want {
				t.Errorf("streams = %v, want %v", got, tc.want)
			}
		})
	}
}

// countingPool counts the buffers taken from a pool.
type countingPool struct {
	httputil.BufferPool
	gets atomic.Int64
}

func (p *countingPool) Get() []byte {
	p.gets.Add(1)
	return p.BufferPool.Get()
}

// TestStreamsThroughTheHandler: watches and followed logs are copied with
// the small buffers and still reach the client event by event, as each
// arrives, however large; other responses keep the large buffers.
func TestStreamsThroughTheHandler(t *testing.T) {
	big := `{"type":"MODIFIED","object":{"data":"` + strings.Repeat("x", 3*streamBufferSize+123) + `"}}` + "\n"
	for _, tc := range []struct {
		name, path string
		first      string // sent, flushed, and read before the second is sent
		stream     bool   // copied with the small buffers
	}{
		{"watch", "/api/v1/namespaces/default/configmaps?watch=true", `{"type":"ADDED"}` + "\n", true},
		{"watch, an event larger than the buffer", "/api/v1/namespaces/default/configmaps?watch=true", big, true},
		{"legacy watch path", "/api/v1/watch/namespaces/default/configmaps", `{"type":"ADDED"}` + "\n", true},
		{"logs -f", "/api/v1/namespaces/default/pods/web-0/log?follow=true", "line 1\n", true},
		{"logs -f, a line larger than the buffer", "/api/v1/namespaces/default/pods/web-0/log?follow=true", big, true},
		{"a list streamed in chunks", "/api/v1/namespaces/default/configmaps", big, false},
		{"logs", "/api/v1/namespaces/default/pods/web-0/log", "line 1\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			second := `{"type":"DELETED"}` + "\n"
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tc.first)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, second)
			})
			p := newTestHandler(t, up)
			ordinary := &countingPool{BufferPool: p.handler.proxy.BufferPool}
			small := &countingPool{BufferPool: p.handler.streamProxy.BufferPool}
			p.handler.proxy.BufferPool, p.handler.streamProxy.BufferPool = ordinary, small
			p = serveTestHandler(t, p)

			req, _ := http.NewRequest("GET", p.server.URL+tc.path, nil)
			req.Header.Set("Authorization", "Bearer alice")
			resp, err := p.server.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// The first event must arrive while kube-apiserver holds the
			// stream open: nothing may wait for more data or for the end.
			body := bufio.NewReader(resp.Body)
			got := make(chan string, 1)
			go func() {
				line, _ := body.ReadString('\n')
				got <- line
			}()
			select {
			case line := <-got:
				if line != tc.first {
					t.Fatalf("first event: got %d bytes %.40q, want %d bytes %.40q", len(line), line, len(tc.first), tc.first)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the first event did not arrive while the stream was open")
			}
			close(release)
			rest, err := io.ReadAll(body)
			if err != nil || string(rest) != second {
				t.Fatalf("rest of the stream: %q, %v; want %q", rest, err, second)
			}

			wantSmall, wantOrdinary := int64(0), int64(1)
			if tc.stream {
				wantSmall, wantOrdinary = 1, 0
			}
			if small.gets.Load() != wantSmall || ordinary.gets.Load() != wantOrdinary {
				t.Errorf("copy buffers taken: %d small, %d ordinary; want %d and %d", small.gets.Load(), ordinary.gets.Load(), wantSmall, wantOrdinary)
			}
		})
	}
}
