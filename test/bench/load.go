package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// requestTimeout bounds one request of the load generator.
const requestTimeout = 10 * time.Second

// target is what one scenario sends requests to.
type target struct {
	name string
	url  *url.URL
	// clients are the connections: one HTTP/2 connection each.
	clients []*http.Client
	// authorization returns the Authorization header of request i ("" for
	// none) and false when the scenario has run out of credentials (the
	// cold scenarios' pre-signed tokens).
	authorization func(i int64) (string, bool)
	// pid is the proxy process whose CPU time and memory are reported; 0
	// when there is none (direct).
	pid int
	// upstreamPID is the upstream's process, for its CPU time.
	upstreamPID int
	// helperPIDs are further processes of the benchmark (etcd), not
	// reported but not counted as others' CPU either.
	helperPIDs []int
	// key is the scenario's -scenarios name ("bare", "cached", ...).
	key string
	// pprofURL serves the proxy's net/http/pprof (with -profile), else "".
	pprofURL string
}

// newClients returns n HTTP/2-only clients, each limited to one connection,
// trusting roots and presenting cert when not nil.
func newClients(n int, roots *x509.CertPool, cert *tls.Certificate) []*http.Client {
	out := make([]*http.Client, n)
	for i := range out {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		protocols := new(http.Protocols)
		protocols.SetHTTP2(true)
		out[i] = &http.Client{Transport: &http.Transport{
			TLSClientConfig:    cfg,
			Protocols:          protocols,
			ForceAttemptHTTP2:  true,
			MaxConnsPerHost:    1,
			DisableCompression: true,
		}}
	}
	return out
}

func closeClients(clients []*http.Client) {
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}

// do sends request i of t on client c and reads the whole answer.
func (t *target) do(ctx context.Context, c *http.Client, i int64) (bool, error) {
	authz, ok := "", true
	if t.authorization != nil {
		if authz, ok = t.authorization(i); !ok {
			return false, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req := (&http.Request{
		Method: http.MethodGet, URL: t.url, Host: t.url.Host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Accept": {"application/json, */*"}, "User-Agent": {"frontgate-bench"}},
	}).WithContext(ctx)
	if authz != "" {
		req.Header["Authorization"] = []string{authz}
	}
	resp, err := c.Do(req)
	if err != nil {
		return true, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return true, err
	}
	if resp.StatusCode != http.StatusOK {
		return true, fmt.Errorf("status %d", resp.StatusCode)
	}
	return true, nil
}

// result is one measured run.
type result struct {
	scenario string
	mode     string  // "saturation (closed loop, C in flight)" or "open loop"
	offered  float64 // requests/s offered; 0 for closed loop
	window   time.Duration
	ok       int
	errors   int
	dropped  int // open loop: not sent, too many outstanding
	firstErr string
	rps      float64
	lat      []time.Duration // sorted
	cpu      time.Duration   // proxy process CPU time in the window
	upCPU    time.Duration   // upstream process CPU time in the window
	rss, hwm int64           // proxy process, after the window
	load     string          // load average at the end
	// others is the CPU time the rest of the machine (other engineers'
	// builds and tests) used in the window: all busy CPU time minus that of
	// the runner, the proxy and the upstream.
	others time.Duration
	// steal is the CPU time the hypervisor took from the machine in the
	// window (see cpuTimes).
	steal time.Duration
	// roundValues are the figure the rounds were ranked by (see
	// medianRound), of every round in the order run, when the result is
	// the median of several rounds.
	roundValues []float64
}

// byP99 ranks fixed-load rounds by their p99 latency, in ms.
func byP99(r *result) float64 { return float64(r.pct(0.99)) / 1e6 }

// byThroughput ranks saturation rounds by requests per second.
func byThroughput(r *result) float64 { return r.rps }

// medianRound returns the round with the median figure by (the lower of the
// two middle ones for an even count), noting every round's figure in it.
func medianRound(rounds []*result, by func(*result) float64) *result {
	values := make([]float64, len(rounds))
	for i, r := range rounds {
		values[i] = by(r)
	}
	sorted := slices.Clone(rounds)
	slices.SortStableFunc(sorted, func(a, b *result) int { return cmp.Compare(by(a), by(b)) })
	m := *sorted[(len(sorted)-1)/2]
	m.roundValues = values
	return &m
}

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[int(p*float64(len(r.lat)-1)+0.5)]
}

func (r *result) cpuPerReq() time.Duration {
	if r.ok == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.ok)
}

func (r *result) upCPUPerReq() time.Duration {
	if r.ok == 0 {
		return 0
	}
	return r.upCPU / time.Duration(r.ok)
}

// meter snapshots the CPU time of the measured processes.
type meter struct {
	t                *target
	start            time.Time
	cpu, upCPU, self time.Duration
	machine          cpuTimes
}

// ownCPU is the CPU time of the runner and the helper processes.
func (t *target) ownCPU() time.Duration {
	total, _ := cpuTime(os.Getpid())
	for _, pid := range t.helperPIDs {
		d, _ := cpuTime(pid)
		total += d
	}
	return total
}

func startMeter(t *target) *meter {
	m := &meter{t: t, start: time.Now(), machine: machineTimes()}
	m.self = t.ownCPU()
	if t.pid != 0 {
		m.cpu, _ = cpuTime(t.pid)
	}
	if t.upstreamPID != 0 {
		m.upCPU, _ = cpuTime(t.upstreamPID)
	}
	return m
}

func (m *meter) stop(r *result) {
	r.window = time.Since(m.start)
	machine := machineTimes()
	busy := machine.busy - m.machine.busy - (m.t.ownCPU() - m.self)
	r.steal = machine.steal - m.machine.steal
	if m.t.pid != 0 {
		cpu, _ := cpuTime(m.t.pid)
		r.cpu = cpu - m.cpu
		r.rss, r.hwm, _ = memory(m.t.pid)
	}
	if m.t.upstreamPID != 0 {
		up, _ := cpuTime(m.t.upstreamPID)
		r.upCPU = up - m.upCPU
	}
	r.others = max(busy-r.cpu-r.upCPU, 0)
	r.load = loadAverage()
}

// recorder collects the outcomes of requests.
type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	errors   int
	firstErr error
}

func (rec *recorder) add(d time.Duration, err error) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err != nil {
		rec.errors++
		if rec.firstErr == nil {
			rec.firstErr = err
		}
		return
	}
	rec.lat = append(rec.lat, d)
}

func (rec *recorder) fill(r *result) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	r.lat = slices.Clone(rec.lat)
	slices.Sort(r.lat)
	r.ok, r.errors = len(r.lat), rec.errors
	if rec.firstErr != nil {
		r.firstErr = rec.firstErr.Error()
	}
	if r.window > 0 {
		r.rps = float64(r.ok) / r.window.Seconds()
	}
}

// closedLoop keeps concurrency requests in flight (spread over t's
// connections) for warmup, then measures for d; it stops early when t runs
// out of credentials.
func closedLoop(t *target, concurrency int, warmup, d time.Duration) *result {
	r := &result{scenario: t.name, mode: fmt.Sprintf("saturation (%d in flight)", concurrency)}
	var (
		seq       atomic.Int64
		measuring atomic.Bool
		stop      atomic.Bool
		rec       recorder
		wg        sync.WaitGroup
	)
	ctx := context.Background()
	exhausted := make(chan struct{})
	var exhaustOnce sync.Once
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := t.clients[w%len(t.clients)]
			for !stop.Load() {
				counted := measuring.Load()
				start := time.Now()
				sent, err := t.do(ctx, c, seq.Add(1))
				if !sent {
					exhaustOnce.Do(func() { close(exhausted) })
					return
				}
				if counted && !stop.Load() {
					rec.add(time.Since(start), err)
				}
			}
		}()
	}
	select {
	case <-time.After(warmup):
	case <-exhausted:
	}
	measuring.Store(true)
	m := startMeter(t)
	select {
	case <-time.After(d):
	case <-exhausted:
	}
	stop.Store(true)
	m.stop(r)
	wg.Wait()
	rec.fill(r)
	return r
}

// maxOutstanding bounds the requests an open-loop run has in flight; beyond
// it requests are dropped (counted) rather than queued without end.
const maxOutstanding = 4096

// openLoop sends rate requests per second on a fixed schedule, whatever the
// answers (so queueing shows in the latencies, measured from the scheduled
// send time), for warmup and then for d measured.
func openLoop(t *target, rate float64, warmup, d time.Duration) *result {
	r := &result{scenario: t.name, mode: "fixed rate", offered: rate}
	var (
		rec         recorder
		wg          sync.WaitGroup
		outstanding atomic.Int64
	)
	ctx := context.Background()
	interval := time.Duration(float64(time.Second) / rate)
	begin := time.Now()
	measureFrom := begin.Add(warmup)
	end := measureFrom.Add(d)
	var m *meter
	for i := int64(0); ; i++ {
		at := begin.Add(time.Duration(i) * interval)
		if !at.Before(end) {
			break
		}
		if m == nil && !at.Before(measureFrom) {
			m = startMeter(t)
		}
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		counted := !at.Before(measureFrom)
		if outstanding.Load() >= maxOutstanding {
			if counted {
				r.dropped++
			}
			continue
		}
		outstanding.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer outstanding.Add(-1)
			sent, err := t.do(ctx, t.clients[i%int64(len(t.clients))], i)
			if !sent {
				err = errors.New("out of pre-signed tokens")
			}
			if counted {
				rec.add(time.Since(at), err)
			}
		}()
	}
	if m == nil {
		m = startMeter(t)
	}
	m.stop(r)
	wg.Wait()
	rec.fill(r)
	return r
}
