// Package logbuffer takes log output off the request path: a [Writer]
// appends each line to a buffer and returns, and one goroutine of its own
// writes whatever has accumulated in a single call. Idle, a line goes out at
// once; under load, many lines share one write(2), and no request waits for
// the log's file or pipe. Lines keep their order and none is dropped: when
// the buffer is full, Write waits for it to drain.
package logbuffer

import (
	"io"
	"sync"
)

// DefaultLimit is the most bytes a Writer holds before Write waits.
const DefaultLimit = 1 << 20

// Writer is an io.Writer that hands its writes to a goroutine of its own.
// Close flushes it. It is safe for concurrent use.
type Writer struct {
	out   io.Writer
	limit int

	mu      sync.Mutex
	cond    sync.Cond // signals new lines, drained lines and closing
	pending []byte
	closed  bool
	err     error // the first error of out
	done    chan struct{}
}

// New returns a Writer that writes to out and holds at most limit bytes
// (DefaultLimit when limit ≤ 0); a single larger write is held whole.
func New(out io.Writer, limit int) *Writer {
	if limit <= 0 {
		limit = DefaultLimit
	}
	w := &Writer{out: out, limit: limit, done: make(chan struct{})}
	w.cond.L = &w.mu
	go w.run()
	return w
}

// Write copies p for the writing goroutine and returns len(p) and nil; it
// waits while the buffer is full. After Close it writes to out directly.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for !w.closed && len(w.pending) > 0 && len(w.pending)+len(p) > w.limit {
		w.cond.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // after what is pending
		return w.out.Write(p)
	}
	w.pending = append(w.pending, p...)
	w.cond.Broadcast()
	w.mu.Unlock()
	return len(p), nil
}

// run writes what is pending until the Writer is closed and drained.
func (w *Writer) run() {
	defer close(w.done)
	var batch []byte
	w.mu.Lock()
	for {
		for len(w.pending) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.pending) == 0 {
			w.mu.Unlock()
			return
		}
		batch, w.pending = w.pending, batch[:0]
		w.mu.Unlock()
		_, err := w.out.Write(batch)
		w.mu.Lock()
		if err != nil && w.err == nil {
			w.err = err
		}
		w.cond.Broadcast() // room for waiting writers
	}
}

// Close writes everything pending, stops the goroutine and returns the first
// error writing to out. Later writes go to out directly.
func (w *Writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
