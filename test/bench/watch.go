package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// watchResult is the memory of one proxy process holding idle watches.
type watchResult struct {
	scenario    string
	clients     int
	want, open  int
	failed      int
	firstErr    string
	baseline    int64 // RSS with the clients connected, before any watch
	rss, hwm    int64 // with every watch open
	goroutines  [2]float64
	heapInuse   [2]float64
	stackInuse  [2]float64
	openingTime time.Duration
	load        string
}

func (w *watchResult) perStream() float64 {
	if w.open == 0 {
		return 0
	}
	return float64(w.rss-w.baseline) / float64(w.open)
}

// idleWatches opens n watches through t from len(t.clients) connections
// (n/len each), each established end to end (its first event read), and
// measures the RSS of t.pid before and with all of them open. metricsURL,
// when set, is frontgate's metrics listener, for goroutines and heap.
func idleWatches(t *target, n int, metricsURL string, timeout time.Duration, whileOpen func()) *watchResult {
	res := &watchResult{scenario: t.name, clients: len(t.clients), want: n}
	// One ordinary request per connection: connections up, token cached.
	for _, c := range t.clients {
		if _, err := t.do(context.Background(), c, 0); err != nil {
			res.firstErr = "warm-up: " + err.Error()
			return res
		}
	}
	time.Sleep(time.Second)
	res.baseline, _, _ = memory(t.pid)
	res.goroutines[0], res.heapInuse[0], res.stackInuse[0] = goMetrics(metricsURL)

	// What `kubectl get configmap bench --watch` asks for: a watch of the
	// collection, narrowed to the object by a field selector. (A GET of the
	// object's own path with ?watch=1 is no watch to kube-apiserver: it
	// answers it as a GET.)
	watchURL := *t.url
	watchURL.Path = path.Dir(t.url.Path)
	watchURL.RawQuery = url.Values{"fieldSelector": {"metadata.name=" + path.Base(t.url.Path)}, "resourceVersion": {"4711"}, "watch": {"true"}}.Encode()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		open, failed atomic.Int64
		errOnce      sync.Once
		wg           sync.WaitGroup
		established  sync.WaitGroup
	)
	sem := make(chan struct{}, 256) // watches being opened at once
	start := time.Now()
	deadline := time.AfterFunc(timeout, cancel)
	defer deadline.Stop()
	for i := range n {
		c := t.clients[i%len(t.clients)]
		wg.Add(1)
		established.Add(1)
		go func() {
			defer wg.Done()
			done := sync.OnceFunc(established.Done)
			defer done()
			fail := func(err error) {
				failed.Add(1)
				errOnce.Do(func() { res.firstErr = err.Error() })
			}
			sem <- struct{}{}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, watchURL.String(), nil)
			if t.authorization != nil {
				if authz, _ := t.authorization(int64(i)); authz != "" {
					req.Header.Set("Authorization", authz)
				}
			}
			resp, err := c.Do(req)
			if err != nil {
				<-sem
				fail(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				<-sem
				fail(fmt.Errorf("status %d", resp.StatusCode))
				return
			}
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				<-sem
				fail(fmt.Errorf("reading the first event: %w", err))
				return
			}
			<-sem
			open.Add(1)
			done()
			_, _ = io.Copy(io.Discard, resp.Body) // idle until cancelled
		}()
	}
	established.Wait()
	res.openingTime = time.Since(start)
	res.open, res.failed = int(open.Load()), int(failed.Load())
	time.Sleep(3 * time.Second) // let the proxy settle
	res.rss, res.hwm, _ = memory(t.pid)
	res.goroutines[1], res.heapInuse[1], res.stackInuse[1] = goMetrics(metricsURL)
	res.load = loadAverage()
	if whileOpen != nil {
		whileOpen()
	}
	cancel()
	wg.Wait()
	return res
}

// saveProfiles saves into dir the heap profile in text form, which ends
// with the runtime's MemStats as measured (HeapInuse, StackInuse); the heap
// profile taken after a garbage collection (gc=1: without it, the profile
// shows the heap as of the last collection, which with a growing heap may
// have been when only part of the watches were open); the MemStats again,
// after that collection; and the goroutine profile.
func saveProfiles(pprofURL, dir, prefix string) {
	for _, p := range []struct{ query, file string }{
		{"heap?debug=1", "heap.txt"}, // first: MemStats as measured
		{"heap?gc=1", "heap.pb.gz"},
		{"heap?debug=1", "heap-after-gc.txt"}, // after the collection
		{"goroutine", "goroutine.pb.gz"},
	} {
		download(pprofURL+"/debug/pprof/"+p.query, filepath.Join(dir, prefix+"-"+p.file))
	}
}

// saveCPUProfile saves into file a CPU profile of d (whole seconds, at
// least one) from pprofURL.
func saveCPUProfile(pprofURL string, d time.Duration, file string) {
	download(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", pprofURL, max(int(d.Seconds()), 1)), file)
}

// download saves what a GET of url answers with 200 into file, logging the
// outcome: profiles are a by-product of a run, never a reason to stop it.
func download(url, file string) {
	resp, err := http.Get(url)
	if err != nil {
		log.Printf("%s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	if err == nil {
		err = os.WriteFile(file, b, 0o644)
	}
	if err != nil {
		log.Printf("%s: %v", file, err)
		return
	}
	log.Printf("saved %s", file)
}

// goMetrics reads go_goroutines, go_memstats_heap_inuse_bytes and
// go_memstats_stack_inuse_bytes from a Prometheus endpoint; zeros when there
// is none.
func goMetrics(metricsURL string) (goroutines, heapInuse, stackInuse float64) {
	if metricsURL == "" {
		return 0, 0, 0
	}
	resp, err := http.Get(metricsURL + "/metrics")
	if err != nil {
		return 0, 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			goroutines = v
		case "go_memstats_heap_inuse_bytes":
			heapInuse = v
		case "go_memstats_stack_inuse_bytes":
			stackInuse = v
		}
	}
	return goroutines, heapInuse, stackInuse
}

// startupResult is the time from exec to /readyz 200, several times.
type startupResult struct {
	times []time.Duration // sorted
	err   string
	load  string
}

func startupTimes(bin, logFile string, mkArgs func(port, metricsPort int) []string, runs int) *startupResult {
	res := &startupResult{}
	for range runs {
		f, d, err := startFrontgate(bin, logFile, mkArgs)
		if err != nil {
			res.err = err.Error()
			break
		}
		res.times = append(res.times, d)
		f.stop()
	}
	slices.Sort(res.times)
	res.load = loadAverage()
	return res
}
