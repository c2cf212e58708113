package logbuffer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer that records its writes.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	// gate, when set, is received from before each write.
	gate chan struct{}
	err  error
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	b.buf.Write(p)
	return len(p), b.err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConcurrentWritersKeepTheirOrder(t *testing.T) {
	const writers, lines = 8, 2000
	out := &syncBuffer{}
	w := New(out, 4096)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "writer=%d line=%d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, line := range got {
		var g, i int
		if _, err := fmt.Sscanf(line, "writer=%d line=%d", &g, &i); err != nil {
			t.Fatalf("torn line %q", line)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if out.writes >= writers*lines {
		t.Logf("no batching happened: %d writes", out.writes)
	}
}

func TestWriteWaitsWhileTheBufferIsFull(t *testing.T) {
	out := &syncBuffer{gate: make(chan struct{})}
	w := New(out, 10)
	line := []byte("0123456789\n") // 11 bytes: more than the limit, held whole
	if _, err := w.Write(line); err != nil {
		t.Fatal(err)
	}
	// The goroutine now waits at the gate with the first line, or has not
	// taken it yet; either way a second and third line cannot both fit.
	wrote := make(chan struct{})
	go func() {
		_, _ = w.Write(line)
		_, _ = w.Write(line)
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("Write did not wait for a full buffer to drain")
	case <-time.After(100 * time.Millisecond):
	}
	close(out.gate) // let every write through
	<-wrote
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), strings.Repeat(string(line), 3); got != want {
		t.Errorf("out = %q, want %q", got, want)
	}
}

func TestCloseFlushesAndReportsTheFirstError(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"ok", nil},
		{"out fails", errors.New("broken pipe")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncBuffer{err: tt.err}
			w := New(out, 0)
			fmt.Fprintln(w, "before close")
			if err := w.Close(); !errors.Is(err, tt.err) {
				t.Errorf("Close = %v, want %v", err, tt.err)
			}
			// After Close, writes go straight to out.
			fmt.Fprintln(w, "after close")
			if got := out.String(); got != "before close\nafter close\n" {
				t.Errorf("out = %q", got)
			}
		})
	}
}
