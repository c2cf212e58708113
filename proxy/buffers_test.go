package proxy

import "testing"

func TestCopyBuffers(t *testing.T) {
	buf := copyBuffers.Get()
	if len(buf) != copyBufferSize || cap(buf) != copyBufferSize {
		t.Fatalf("Get returned len %d cap %d, want %d", len(buf), cap(buf), copyBufferSize)
	}
	copyBuffers.Put(buf)
	copyBuffers.Put(make([]byte, 10)) // not ours: dropped
	for range 3 {
		if got := copyBuffers.Get(); len(got) != copyBufferSize {
			t.Fatalf("Get after Put returned len %d, want %d", len(got), copyBufferSize)
		}
	}
}
