package proxy

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
)

// copyBufferSize is the size of the buffers ordinary response bodies are
// copied with: httputil.ReverseProxy's own default, so only where the
// buffers come from changes.
const copyBufferSize = 32 << 10

// streamBufferSize is the size of the buffers streaming responses (watches,
// logs -f) are copied with. Such a response holds its buffer for as long as
// it stays open, mostly idle, minutes to hours: with 32 KiB, ten thousand
// watches hold 320 MiB of buffers that carry nothing (BENCHMARKS.md, "Idle
// watches"). 4 KiB is one page and a size class of its own, so nothing is
// rounded up around it, and it is the size of the buffer net/http's HTTP/2
// server gives each stream's writes anyway. An event or log line up to
// 4 KiB is copied in one read, write and flush, as with 32 KiB; a larger
// one takes one more of each per 4 KiB. BenchmarkWatchEvents measures what
// that costs when events come back to back: 1.8 times the CPU time
// (upstream, proxy and client together) of 32 KiB buffers for 8 KiB events,
// 2.2 times for 64 KiB ones (8 KiB buffers: 1.2 and 1.3 times) — on streams
// that are idle nearly all the time.
const streamBufferSize = 4 << 10

// copyBuffers recycles the buffers httputil.ReverseProxy copies ordinary
// response bodies with. Without a pool it allocates (and zeroes) a fresh
// 32 KiB buffer for every response, which was most of the bytes a proxied
// request allocated and a large share of the garbage collector's work
// (BENCHMARKS.md).
var copyBuffers httputil.BufferPool = &bufferPool{}

// streamBuffers recycles the smaller buffers of streaming responses (see
// [streams]).
var streamBuffers httputil.BufferPool = &streamBufferPool{}

type bufferPool struct{ pool sync.Pool }

// Get returns a buffer of copyBufferSize bytes.
func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[copyBufferSize]byte); ok {
		return buf[:]
	}
	return make([]byte, copyBufferSize)
}

// Put returns a buffer obtained from Get; others are dropped.
func (b *bufferPool) Put(buf []byte) {
	if len(buf) != copyBufferSize {
		return
	}
	b.pool.Put((*[copyBufferSize]byte)(buf))
}

// streamBufferPool is bufferPool for streamBufferSize. Buffers are pooled as
// pointers to arrays, so that Put does not allocate; hence one type per
// size.
type streamBufferPool struct{ pool sync.Pool }

// Get returns a buffer of streamBufferSize bytes.
func (b *streamBufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[streamBufferSize]byte); ok {
		return buf[:]
	}
	return make([]byte, streamBufferSize)
}

// Put returns a buffer obtained from Get; others are dropped.
func (b *streamBufferPool) Put(buf []byte) {
	if len(buf) != streamBufferSize {
		return
	}
	b.pool.Put((*[streamBufferSize]byte)(buf))
}

// streams reports whether kube-apiserver answers r with a stream that stays
// open, mostly idle, for as long as the client wants: a watch (?watch=true,
// or the legacy /watch/ paths), or a pod's log followed (?follow=true). It
// reads r as kube-apiserver does: the request info audit.go uses, and for
// follow kube-apiserver's conversion of a query parameter to a bool (any
// value but "0" and "false" is true). A wrong answer costs only speed, never
// correctness: it chooses the size of the buffer the response is copied
// with.
func streams(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	// Necessary conditions first: the request info decodes a list's options,
	// microseconds on every list.
	var query url.Values
	if !strings.Contains(r.URL.Path, "/watch/") {
		if r.URL.RawQuery == "" {
			return false
		}
		query = r.URL.Query()
		_, watch := query["watch"]
		_, follow := query["follow"]
		if !watch && !follow {
			return false
		}
	}
	info, err := requestInfo.NewRequestInfo(r)
	switch {
	case err != nil || !info.IsResourceRequest:
		return false
	case info.Verb == "watch":
		return true
	case info.APIGroup == "" && info.Resource == "pods" && info.Subresource == "log" && info.Name != "":
		if query == nil { // a pod named "watch"
			query = r.URL.Query()
		}
		values := query["follow"]
		var follow bool
		_ = runtime.Convert_Slice_string_To_bool(&values, &follow, nil)
		return follow
	default:
		return false
	}
}
