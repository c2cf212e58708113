// Command bench is frontgate's load generator and scenario runner
// (`make bench`, or `go run ./test/bench` from the repository). Everything
// runs on loopback, bounded in time and count, and the results are printed
// as markdown tables (BENCHMARKS.md).
//
// Against one fast local HTTPS upstream that answers like kube-apiserver (a
// process of its own, HTTP/2, verifying the front-proxy certificate when
// presented), in the same run, it measures:
//
//   - direct: the load generator straight to the upstream;
//   - bare: a bare httputil.ReverseProxy (a process of its own) over exactly
//     frontgate's upstream transports (proxy.NewTransports) and listener
//     settings: the floor any proxy pays;
//   - frontgate (the built binary, `frontgate serve`, a local OpenID issuer)
//     with a cached token; with a fresh token per request (cold
//     verification, RS256 and ES256, tokens signed before the run); with a
//     client certificate (--client-ca-file).
//
// For each: closed-loop saturation (fixed concurrency, fixed duration) and
// open-loop fixed offered rates (25 % and 50 % of the bare proxy's
// saturation) with p50/p90/p99 latency, CPU time per request of the proxy
// process (/proc/PID/stat) and its RSS (/proc/PID/status); then the memory
// of idle watches (N long-lived streams from 100 HTTP/2 connections) in a
// fresh frontgate and a fresh bare proxy, and frontgate's time from exec to
// /readyz 200 with the issuer up.
//
// With -real it also runs a smaller scenario against a real kube-apiserver
// (test/cluster; needs FRONTGATE_TOOLS_DIR, see `make tools`): GET of a
// ConfigMap, direct with a client certificate vs through frontgate with a
// cached token, same user and RBAC.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/frontgate/frontgate/test/cluster"
)

type config struct {
	duration, warmup time.Duration
	concurrency      int
	conns            int
	watches          int
	watchClients     int
	startups         int
	rounds           int
	coldTokens       int
	waitQuiet        time.Duration
	quietBelow       float64
	frontgateBinary  string
	real, realOnly   bool
	realDuration     time.Duration
	keep             bool
	timeout          time.Duration
	out              string
	resourcePath     string
	rates            []float64
	parts            map[string]bool
	scenarios        map[string]bool // empty: all
	profile          bool
	frontgateFlags   []string
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		runRole(role)
		return
	}
	var cfg config
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "measured time of each run")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before each run")
	flag.IntVar(&cfg.concurrency, "concurrency", 64, "requests in flight in the saturation runs")
	flag.IntVar(&cfg.conns, "conns", 8, "HTTP/2 connections of the load generator")
	flag.IntVar(&cfg.watches, "watches", 10000, "idle watches held open at once (0 skips)")
	flag.IntVar(&cfg.watchClients, "watch-clients", 100, "HTTP/2 connections the watches are spread over")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of the saturation and of every fixed offered load, the scenarios taking turns; the median round (by throughput, by p99) is reported")
	flag.IntVar(&cfg.startups, "startups", 10, "times frontgate is started for start-to-ready")
	flag.IntVar(&cfg.coldTokens, "cold-tokens", 40000, "tokens signed before each cold saturation run (the run stops early when they run out)")
	flag.DurationVar(&cfg.waitQuiet, "wait-quiet", 0, "before measuring, wait up to this long for the 1-minute load average to drop below -quiet-below")
	flag.Float64Var(&cfg.quietBelow, "quiet-below", 0.7, "see -wait-quiet")
	flag.StringVar(&cfg.frontgateBinary, "frontgate-binary", "", "frontgate binary to run (default: build ./cmd/frontgate as make build does)")
	flag.BoolVar(&cfg.real, "real", false, "also run the real kube-apiserver scenario (needs FRONTGATE_TOOLS_DIR)")
	flag.BoolVar(&cfg.realOnly, "real-only", false, "run only the real kube-apiserver scenario")
	flag.DurationVar(&cfg.realDuration, "real-duration", 5*time.Second, "measured time of each run against the real kube-apiserver")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the working directory (logs, PKI)")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "give up after this long")
	flag.BoolVar(&cfg.profile, "profile", false, "save profiles of frontgate (run with --profiling) and of the bare proxy in the working directory (use with -keep): CPU profiles of every fixed offered load, heap and goroutine profiles holding the idle watches")
	flag.StringVar(&cfg.out, "out", "", "also write the markdown report to this file")
	flag.StringVar(&proxyCPUs, "proxy-cpus", "", "pin the proxies under test (bare and frontgate) to these CPUs (taskset list, e.g. 1); start the runner itself with `taskset -c 0`, so that the load generator and the upstream keep off them")
	scenarios := flag.String("scenarios", "", "local scenarios to run, comma-separated from direct, bare, cached, cert, cold-rs256, cold-es256 (default: all)")
	extraFlags := flag.String("frontgate-flags", "", "further `frontgate serve` flags, space-separated (e.g. \"--log-level warn\" to measure without the access log)")
	rates := flag.String("rates", "0.25,0.5", "fixed offered loads, as fractions of the bare proxy's saturation, comma-separated (empty: none)")
	parts := flag.String("parts", "load,startup,watches", "local parts to run: load (saturation and fixed rates), startup, watches")
	flag.Parse()
	cfg.frontgateFlags = strings.Fields(*extraFlags)
	cfg.scenarios = map[string]bool{}
	for _, sc := range strings.Split(*scenarios, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			cfg.scenarios[sc] = true
		}
	}
	cfg.parts = map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		cfg.parts[strings.TrimSpace(p)] = true
	}
	cfg.resourcePath = "/api/v1/namespaces/default/configmaps/bench"
	cfg.rates = nil
	for _, r := range strings.Split(*rates, ",") {
		if r = strings.TrimSpace(r); r != "" {
			v, err := strconv.ParseFloat(r, 64)
			if err != nil || v <= 0 {
				log.Fatalf("-rates: %q is not a positive fraction", r)
			}
			cfg.rates = append(cfg.rates, v)
		}
	}

	if cfg.rounds < 1 {
		log.Fatalf("-rounds: %d; give 1 or more", cfg.rounds)
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")
	if err := checkPinning(); err != nil {
		log.Fatal(err)
	}
	time.AfterFunc(cfg.timeout, func() {
		log.Printf("gave up after -timeout %s", cfg.timeout)
		os.Exit(2)
	})

	var report strings.Builder
	w := io.MultiWriter(os.Stdout, &report)
	if err := run(&cfg, w); err != nil {
		log.Fatal(err)
	}
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report.String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func run(cfg *config, w io.Writer) error {
	ctx := context.Background()
	root, err := cluster.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "frontgate-bench-")
	if err != nil {
		return err
	}
	if cfg.keep {
		log.Printf("working directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := cfg.frontgateBinary
	if bin == "" {
		log.Printf("building frontgate")
		if bin, err = buildFrontgate(root, dir); err != nil {
			return err
		}
	}
	printMachine(w)
	waitQuiet(cfg)
	if !cfg.realOnly {
		if err := runLocal(cfg, w, dir, bin); err != nil {
			return err
		}
	}
	if cfg.real || cfg.realOnly {
		waitQuiet(cfg)
		if err := runReal(ctx, cfg, w, dir, bin); err != nil {
			return err
		}
	}
	return nil
}

// waitQuiet waits, up to cfg.waitQuiet, for the 1-minute load average to
// drop below cfg.quietBelow.
func waitQuiet(cfg *config) {
	deadline := time.Now().Add(cfg.waitQuiet)
	for l := load1(); l >= cfg.quietBelow && time.Now().Before(deadline); l = load1() {
		log.Printf("load average %s: waiting for it to drop below %.2f (until %s)", loadAverage(), cfg.quietBelow, deadline.Format(time.TimeOnly))
		time.Sleep(20 * time.Second)
	}
}

func printMachine(w io.Writer) {
	fmt.Fprintf(w, "## Machine\n\n")
	// runtime.NumCPU counts only the CPUs the runner may use (one when it
	// is pinned), so the machine's are counted in /proc/cpuinfo.
	model, cpus := "unknown", runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			switch k = strings.TrimSpace(k); {
			case ok && k == "processor":
				n++
			case ok && k == "model name" && model == "unknown":
				model = strings.TrimSpace(v)
			}
		}
		cpus = max(n, 1)
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	kernel, _ := exec.Command("uname", "-r").Output()
	fmt.Fprintf(w, "- CPUs: %d (%s)\n- %s\n- %s, kernel %s\n- load average at start: %s\n\n",
		cpus, model, mem, runtime.Version(), strings.TrimSpace(string(kernel)), loadAverage())
	if proxyCPUs != "" {
		fmt.Fprintf(w, "Proxies under test pinned to CPU %s; the runner (load generator) and the upstream run on the others.\n\n", proxyCPUs)
	}
}

// runLocal runs every scenario against the fast local upstream.
func runLocal(cfg *config, w io.Writer, dir, bin string) error {
	p, err := newBenchPKI(dir)
	if err != nil {
		return err
	}
	is, err := startIssuer()
	if err != nil {
		return err
	}
	defer is.stop()

	upstream, err := startRole("upstream", filepath.Join(dir, "upstream.log"),
		"-cert", p.servingCert, "-key", p.servingKey, "-client-ca", filepath.Join(dir, "requestheader-ca.crt"))
	if err != nil {
		return err
	}
	defer upstream.stop()
	upstreamURL := "https://" + upstream.addr
	bareArgs := []string{"-cert", p.servingCert, "-key", p.servingKey, "-upstream", upstreamURL,
		"-upstream-ca", p.caFile, "-client-cert", p.proxyCert, "-client-key", p.proxyKey}
	loadArgs, barePprof, err := withPprof(cfg, bareArgs)
	if err != nil {
		return err
	}
	bare, err := startRole("bare", filepath.Join(dir, "bare.log"), loadArgs...)
	if err != nil {
		return err
	}
	defer func() { bare.stop() }()
	mkArgs := func(port, mport int) []string {
		args := append(frontgateArgs(p, upstreamURL, is.URL, port, mport), cfg.frontgateFlags...)
		if cfg.profile {
			args = append(args, "--profiling")
		}
		return args
	}
	fg, _, err := startFrontgate(bin, filepath.Join(dir, "frontgate.log"), mkArgs)
	if err != nil {
		return err
	}
	defer func() { fg.stop() }()

	roots := p.ca.CertPool()
	userCert := p.user.TLSCertificate()
	mkURL := func(base string) *url.URL {
		u, _ := url.Parse(base + cfg.resourcePath)
		return u
	}
	// One token per connection, as each kubectl has its own; cached after
	// the warm-up.
	cachedTokens := make([]string, cfg.conns)
	for i := range cachedTokens {
		if cachedTokens[i], err = is.token(jose.RS256, fmt.Sprintf("user-%d", i), i); err != nil {
			return err
		}
	}
	direct := &target{name: "direct", url: mkURL(upstreamURL), clients: newClients(cfg.conns, roots, nil), upstreamPID: upstream.pid()}
	bareT := &target{name: "bare ReverseProxy", url: mkURL("https://" + bare.addr), clients: newClients(cfg.conns, roots, nil), pid: bare.pid(), upstreamPID: upstream.pid()}
	cached := &target{name: "frontgate, cached token", url: mkURL(fg.url), clients: newClients(cfg.conns, roots, nil), pid: fg.pid(), upstreamPID: upstream.pid(),
		authorization: func(i int64) (string, bool) { return "Bearer " + cachedTokens[i%int64(len(cachedTokens))], true }}
	cert := &target{name: "frontgate, client certificate", url: mkURL(fg.url), clients: newClients(cfg.conns, roots, &userCert), pid: fg.pid(), upstreamPID: upstream.pid()}
	cold := map[jose.SignatureAlgorithm]*coldTokens{}
	var coldTargets []*target
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		ct := &coldTokens{is: is, alg: alg}
		cold[alg] = ct
		coldTargets = append(coldTargets, &target{name: "frontgate, fresh " + string(alg) + " token per request", url: mkURL(fg.url), clients: newClients(cfg.conns, roots, nil),
			pid: fg.pid(), upstreamPID: upstream.pid(), authorization: ct.next})
	}
	var targets []*target
	for i, t := range append([]*target{direct, bareT, cached, cert}, coldTargets...) {
		key := []string{"direct", "bare", "cached", "cert", "cold-rs256", "cold-es256"}[i]
		if len(cfg.scenarios) == 0 || cfg.scenarios[key] || key == "bare" {
			t.key = key
			if cfg.profile && t.pid != 0 {
				t.pprofURL = fg.metricsURL
				if t == bareT {
					t.pprofURL = barePprof
				}
			}
			targets = append(targets, t) // bare always: it sets the offered rates
		}
	}

	verify := map[jose.SignatureAlgorithm]time.Duration{}
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		if verify[alg], err = is.verifyCost(alg, time.Second); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "## Fast local TLS upstream\n\n")
	fmt.Fprintf(w, "Raw signature verification measured in this run (go-jose ParseSignedCompact + Verify, one core): RS256 %s, ES256 %s.\n\n", us(verify[jose.RS256]), us(verify[jose.ES256]))

	// refill makes n unused tokens ready when t is a cold scenario.
	refill := func(t *target, n int) error {
		for alg, ct := range cold {
			if t.authorization != nil && strings.Contains(t.name, string(alg)) {
				log.Printf("signing up to %d %s tokens", n, alg)
				return ct.refill(n)
			}
		}
		return nil
	}
	sat := map[*target]*result{}
	open := map[float64]map[*target]*result{}
	var bareSat float64
	if cfg.parts["load"] {
		// Saturation, then fixed offered loads as fractions of the bare
		// proxy's saturation; in both the scenarios take turns, round after
		// round, so that a slow spell of the machine neither decides a
		// scenario's figure nor falls on one scenario only.
		rounds := map[*target][]*result{}
		for round := 1; round <= cfg.rounds; round++ {
			for _, t := range targets {
				if err := refill(t, cfg.coldTokens); err != nil {
					return err
				}
				log.Printf("saturation, round %d of %d: %s (load %s)", round, cfg.rounds, t.name, loadAverage())
				rounds[t] = append(rounds[t], closedLoop(t, cfg.concurrency, cfg.warmup, cfg.duration))
			}
		}
		for t, rs := range rounds {
			sat[t] = medianRound(rs, byThroughput)
		}
		fmt.Fprintf(w, "### Saturation: closed loop, %d requests in flight over %d HTTP/2 connections, %s measured after %s warm-up%s\n\n", cfg.concurrency, cfg.conns, cfg.duration, cfg.warmup, roundsNote(cfg.rounds, "throughput"))
		printRuns(w, targets, sat, false, cfg.duration)

		bareSat = sat[bareT].rps
		for _, frac := range cfg.rates {
			rate := frac * bareSat
			rounds = map[*target][]*result{}
			for round := 1; round <= cfg.rounds; round++ {
				for _, t := range targets {
					if err := refill(t, int(rate*(cfg.warmup+cfg.duration).Seconds()*1.05)+100); err != nil {
						return err
					}
					log.Printf("%.0f req/s, round %d of %d: %s (load %s)", rate, round, cfg.rounds, t.name, loadAverage())
					var profiling sync.WaitGroup
					if t.pprofURL != "" {
						file := filepath.Join(dir, fmt.Sprintf("cpu-%s-%.0fpct-round%d.pb.gz", t.key, frac*100, round))
						profiling.Go(func() {
							time.Sleep(cfg.warmup)
							saveCPUProfile(t.pprofURL, cfg.duration, file)
						})
					}
					rounds[t] = append(rounds[t], openLoop(t, rate, cfg.warmup, cfg.duration))
					profiling.Wait()
				}
			}
			open[frac] = map[*target]*result{}
			for t, rs := range rounds {
				open[frac][t] = medianRound(rs, byP99)
			}
			fmt.Fprintf(w, "### Fixed offered load: %.0f %% of the bare proxy's saturation = %.0f requests/s, %s measured after %s warm-up%s\n\n", frac*100, rate, cfg.duration, cfg.warmup, roundsNote(cfg.rounds, "p99"))
			printRuns(w, targets, open[frac], true, cfg.duration)
		}
		for _, t := range targets {
			closeClients(t.clients)
		}
	}

	startup := &startupResult{}
	if cfg.parts["startup"] {
		// Start to ready.
		log.Printf("start to ready, %d times", cfg.startups)
		startup = startupTimes(bin, filepath.Join(dir, "frontgate-startup.log"), mkArgs, cfg.startups)
		fmt.Fprintf(w, "### Start to ready (exec of `frontgate serve` to /readyz 200, issuer up, polled every 1 ms), %d starts\n\n", len(startup.times))
		if len(startup.times) > 0 {
			fmt.Fprintf(w, "min %s, median %s, max %s (load %s)\n\n", ms(startup.times[0]), ms(startup.times[len(startup.times)/2]), ms(startup.times[len(startup.times)-1]), startup.load)
		}
		if startup.err != "" {
			fmt.Fprintf(w, "error: %s\n\n", startup.err)
		}
	}

	// Idle watches, each proxy fresh.
	var watches []*watchResult
	if cfg.watches > 0 && cfg.parts["watches"] {
		fg.stop()
		bare.stop()
		freshFG, _, err := startFrontgate(bin, filepath.Join(dir, "frontgate-watch.log"), mkArgs)
		if err != nil {
			return err
		}
		fg = freshFG
		var fgWhileOpen func()
		if cfg.profile {
			fgWhileOpen = func() { saveProfiles(fg.metricsURL, dir, "frontgate-watches") }
		}
		log.Printf("%d idle watches through frontgate", cfg.watches)
		wt := &target{name: "frontgate, cached token", url: mkURL(fg.url), clients: newClients(cfg.watchClients, roots, nil), pid: fg.pid(),
			authorization: func(i int64) (string, bool) { return "Bearer " + cachedTokens[i%int64(len(cachedTokens))], true }}
		watches = append(watches, idleWatches(wt, cfg.watches, fg.metricsURL, 3*time.Minute, fgWhileOpen))
		closeClients(wt.clients)
		fg.stop()

		watchArgs, pprofURL, err := withPprof(cfg, bareArgs)
		if err != nil {
			return err
		}
		if bare, err = startRole("bare", filepath.Join(dir, "bare-watch.log"), watchArgs...); err != nil {
			return err
		}
		var whileOpen func()
		if pprofURL != "" {
			whileOpen = func() { saveProfiles(pprofURL, dir, "bare-watches") }
		}
		log.Printf("%d idle watches through the bare proxy", cfg.watches)
		bt := &target{name: "bare ReverseProxy", url: mkURL("https://" + bare.addr), clients: newClients(cfg.watchClients, roots, nil), pid: bare.pid()}
		watches = append(watches, idleWatches(bt, cfg.watches, "", 3*time.Minute, whileOpen))
		closeClients(bt.clients)
		fmt.Fprintf(w, "### Idle watches: %d streams from %d HTTP/2 connections, each with its first event received, then idle\n\n", cfg.watches, cfg.watchClients)
		fmt.Fprintf(w, "| proxy | open (failed) | opened in | RSS before | RSS with watches | RSS per watch | goroutines before → with | Go heap in use per watch | goroutine stacks per watch | load avg |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range watches {
			gor, heap, stack := "—", "—", "—"
			if r.goroutines[1] > 0 {
				n := float64(max(r.open, 1))
				gor = fmt.Sprintf("%.0f → %.0f", r.goroutines[0], r.goroutines[1])
				heap = kib((r.heapInuse[1] - r.heapInuse[0]) / n)
				stack = kib((r.stackInuse[1] - r.stackInuse[0]) / n)
			}
			fmt.Fprintf(w, "| %s | %d (%d) | %s | %s | %s | **%s** | %s | %s | %s | %s |\n", r.scenario, r.open, r.failed, r.openingTime.Round(10*time.Millisecond), mib(r.baseline), mib(r.rss), kib(r.perStream()), gor, heap, stack, r.load)
			if r.firstErr != "" {
				fmt.Fprintf(w, "\nfirst error (%s): %s\n", r.scenario, r.firstErr)
			}
		}
		fmt.Fprintln(w)
	}

	// Targets.
	fmt.Fprintf(w, "### Targets\n\n| target | measured | |\n|---|---|---|\n")
	if bareSat > 0 && sat[cached] != nil {
		ratio := sat[cached].rps / bareSat
		fmt.Fprintf(w, "| cached token: throughput ≥ 90 %% of the bare ReverseProxy | median of %d rounds %.0f / %.0f req/s = %.0f %% | %s |\n", cfg.rounds, sat[cached].rps, bareSat, ratio*100, metMissed(ratio >= 0.9))
	}
	if half := open[0.5]; half != nil && half[cached] != nil && half[direct] != nil {
		added := half[cached].pct(0.99) - half[direct].pct(0.99)
		addedBare := half[cached].pct(0.99) - half[bareT].pct(0.99)
		fmt.Fprintf(w, "| cached token: p99 added latency ≤ 1 ms at half of saturation | median p99 of %d rounds %s vs direct %s: %+.2f ms (vs bare: %+.2f ms) | %s |\n",
			cfg.rounds, ms(half[cached].pct(0.99)), ms(half[direct].pct(0.99)), float64(added)/1e6, float64(addedBare)/1e6, metMissed(added <= time.Millisecond))
	}
	for i, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		if sat[coldTargets[i]] == nil || sat[cached] == nil {
			continue
		}
		extra := sat[coldTargets[i]].cpuPerReq() - sat[cached].cpuPerReq()
		fmt.Fprintf(w, "| cold %s (end to end, informative): extra CPU per request over cached ÷ raw verify | (%s − %s) ÷ %s = %.2f× | see go test benchmarks |\n",
			alg, us(sat[coldTargets[i]].cpuPerReq()), us(sat[cached].cpuPerReq()), us(verify[alg]), float64(extra)/float64(verify[alg]))
	}
	if len(watches) > 0 && watches[0].open > 0 {
		fmt.Fprintf(w, "| ≤ 24 KiB of frontgate RSS per idle watch at %d watches from %d clients | %s | %s |\n", watches[0].open, cfg.watchClients, kib(watches[0].perStream()), metMissed(watches[0].perStream() <= 24*1024 && watches[0].open == cfg.watches))
	}
	if len(startup.times) > 0 {
		worst := startup.times[len(startup.times)-1]
		fmt.Fprintf(w, "| start to ready ≤ 200 ms, issuer up | median %s, max %s | %s |\n", ms(startup.times[len(startup.times)/2]), ms(worst), metMissed(worst <= 200*time.Millisecond))
	}
	fmt.Fprintf(w, "\nload average at the end: %s\n\n", loadAverage())
	return nil
}

// coldTokens hands out pre-signed tokens, each once.
type coldTokens struct {
	is     *issuer
	alg    jose.SignatureAlgorithm
	tokens []string
	next_  atomic.Int64
}

// refill makes n unused tokens available (signing while nothing runs).
func (c *coldTokens) refill(n int) error {
	used := int(c.next_.Load())
	left := max(len(c.tokens)-used, 0)
	if left >= n {
		return nil
	}
	fresh, err := c.is.tokens(c.alg, n-left)
	if err != nil {
		return err
	}
	c.tokens = append(c.tokens[min(used, len(c.tokens)):], fresh...)
	c.next_.Store(0)
	return nil
}

func (c *coldTokens) next(int64) (string, bool) {
	i := c.next_.Add(1) - 1
	if int(i) >= len(c.tokens) {
		return "", false
	}
	return "Bearer " + c.tokens[i], true
}

func printRuns(w io.Writer, targets []*target, runs map[*target]*result, open bool, planned time.Duration) {
	if open {
		fmt.Fprintf(w, "| scenario | achieved req/s | p50 | p90 | p99 | p99 of each round (ms) | errors (dropped) | proxy CPU/req | upstream CPU/req | proxy RSS (peak) | load avg | others' CPU (steal) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	} else {
		fmt.Fprintf(w, "| scenario | req/s | req/s of each round | p50 | p90 | p99 | errors | proxy CPU/req | upstream CPU/req | proxy RSS (peak) | load avg | others' CPU (steal) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	}
	var notes []string
	for _, t := range targets {
		r := runs[t]
		if r == nil {
			continue
		}
		cpu, rss := "—", "—"
		if t.pid != 0 {
			cpu = us(r.cpuPerReq())
			rss = fmt.Sprintf("%s (%s)", mib(r.rss), mib(r.hwm))
		}
		each := make([]string, len(r.roundValues))
		for i, v := range r.roundValues {
			each[i] = fmt.Sprintf("%.0f", v)
			if open {
				each[i] = fmt.Sprintf("%.2f", v)
			}
		}
		eachRound := strings.Join(each, ", ")
		if eachRound == "" {
			eachRound = "—"
		}
		rps, errs := fmt.Sprintf("%.0f | %s", r.rps, eachRound), fmt.Sprintf("%d", r.errors)
		if open {
			rps, errs = fmt.Sprintf("%.0f", r.rps), fmt.Sprintf("%s | %d (%d)", eachRound, r.errors, r.dropped)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f (%.2f) cores |\n", r.scenario, rps, ms(r.pct(0.5)), ms(r.pct(0.9)), ms(r.pct(0.99)), errs, cpu, us(r.upCPUPerReq()), rss, r.load, r.others.Seconds()/r.window.Seconds(), r.steal.Seconds()/r.window.Seconds())
		if r.firstErr != "" {
			notes = append(notes, fmt.Sprintf("%s: first error: %s", r.scenario, r.firstErr))
		}
		if !open && r.window < planned*95/100 {
			notes = append(notes, fmt.Sprintf("%s: measured for %s only (ran out of pre-signed tokens)", r.scenario, r.window.Round(time.Millisecond)))
		}
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
}

func metMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/1e3) }
func mib(b int64) string        { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b float64) string      { return fmt.Sprintf("%.1f KiB", b/1024) }

// withPprof returns the bare proxy's arguments with net/http/pprof served on a
// free loopback port, and that port's URL, when cfg.profile; otherwise args
// unchanged and "".
func withPprof(cfg *config, args []string) ([]string, string, error) {
	if !cfg.profile {
		return args, "", nil
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return append(slices.Clone(args), "-pprof-listen", addr), "http://" + addr, nil
}

// roundsNote is the heading's note on rounds ranked by what, or "" for one.
func roundsNote(rounds int, what string) string {
	if rounds < 2 {
		return ""
	}
	return fmt.Sprintf(", %d rounds (each row is the scenario's round with the median %s)", rounds, what)
}
