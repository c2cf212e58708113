package proxy

import (
	"net/http/httputil"
	"sync"
)

// copyBufferSize is the size of the buffers response bodies are copied
// with: httputil.ReverseProxy's own default, so only where the buffers come
// from changes.
const copyBufferSize = 32 << 10

// copyBuffers recycles the buffers httputil.ReverseProxy copies response
// bodies with. Without a pool it allocates (and zeroes) a fresh 32 KiB
// buffer for every response, which was most of the bytes a proxied request
// allocated and a large share of the garbage collector's work
// (BENCHMARKS.md). A streaming response (a watch, logs -f) keeps its buffer
// until it ends.
var copyBuffers httputil.BufferPool = &bufferPool{}

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
