package e2e

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// delayProxy is a TCP proxy on loopback that makes a kube-apiserver slow:
// every byte is delivered latency after it was read, and each direction of
// each connection carries at most bytesPerSecond. It passes TLS through
// untouched (kube-apiserver's certificate names 127.0.0.1, whatever the
// port), and can break every open connection, refuse new ones, or freeze:
// keep every connection open and deliver nothing, as a network partition
// or a hung peer does.
type delayProxy struct {
	target string
	l      net.Listener

	latency        atomic.Int64 // time.Duration
	bytesPerSecond atomic.Int64 // 0 = unlimited
	refuse         atomic.Bool  // close new connections at once
	frozen         atomic.Bool  // deliver nothing, close nothing

	mu     sync.Mutex
	conns  map[*proxyConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newDelayProxy listens on 127.0.0.1 and forwards to target (host:port);
// it is closed when the test ends.
func newDelayProxy(t testing.TB, target string, latency time.Duration, bytesPerSecond int64) *delayProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{target: target, l: l, conns: map[*proxyConn]struct{}{}}
	p.latency.Store(int64(latency))
	p.bytesPerSecond.Store(bytesPerSecond)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// URL is the proxy's https URL.
func (p *delayProxy) URL() string { return "https://" + p.l.Addr().String() }

// Set changes the latency and bandwidth of every connection from now on.
func (p *delayProxy) Set(latency time.Duration, bytesPerSecond int64) {
	p.latency.Store(int64(latency))
	p.bytesPerSecond.Store(bytesPerSecond)
}

// Refuse makes the proxy close every new connection at once (on) or
// forward it again (off).
func (p *delayProxy) Refuse(on bool) { p.refuse.Store(on) }

// Freeze stops (on) or resumes (off) delivering bytes on every connection,
// open or new, without closing any.
func (p *delayProxy) Freeze(on bool) { p.frozen.Store(on) }

// BreakAll closes every open connection, both ends, and returns how many
// there were.
func (p *delayProxy) BreakAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.close()
	}
	return len(p.conns)
}

// proxyConn is one proxied connection: the client's and kube-apiserver's
// ends.
type proxyConn struct {
	client, upstream net.Conn
	once             sync.Once
	closed           chan struct{}
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.closed)
		c.client.Close()
		c.upstream.Close()
	})
}

// Close stops the proxy and closes every connection.
func (p *delayProxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.l.Close()
	p.BreakAll()
	p.wg.Wait()
}

func (p *delayProxy) track(c *proxyConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c *proxyConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.close()
}

func (p *delayProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			client.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(client)
		}()
	}
}

func (p *delayProxy) serve(client net.Conn) {
	upstream, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{client: client, upstream: upstream, closed: make(chan struct{})}
	if !p.track(c) {
		c.close()
		return
	}
	defer p.untrack(c)
	done := make(chan struct{}, 2)
	go func() { p.pipe(c, upstream, client); done <- struct{}{} }()
	go func() { p.pipe(c, client, upstream); done <- struct{}{} }()
	// One direction ended (EOF or a break): end the other too, as a
	// middlebox dropping the connection would.
	<-done
	c.close()
	<-done
}

// chunk is bytes read at a time, delivered latency later.
type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies src to dst, each chunk delivered latency after it was read
// and paced to the bandwidth. The queue in between is short, so a slow
// reader slows the writer down (TCP back-pressure reaches kube-apiserver).
func (p *delayProxy) pipe(c *proxyConn, dst, src net.Conn) {
	queue := make(chan chunk, 4)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, 8<<10)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- chunk{data: buf[:n], at: time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	drop := func() {
		c.close()
		for range queue {
		}
	}
	for ch := range queue {
		time.Sleep(time.Until(ch.at.Add(time.Duration(p.latency.Load()))))
		for p.frozen.Load() {
			select {
			case <-c.closed:
				drop()
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := dst.Write(ch.data); err != nil {
			drop()
			return
		}
		if bps := p.bytesPerSecond.Load(); bps > 0 {
			time.Sleep(time.Duration(int64(len(ch.data)) * int64(time.Second) / bps))
		}
	}
	// src reached EOF: pass the half-close on.
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
