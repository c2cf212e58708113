package reload

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is how often a [Watcher] reads its files by default.
const DefaultInterval = 10 * time.Second

// Metrics count reloads and record when the certificates loaded expire; one
// set serves every Watcher of a process.
type Metrics struct {
	reloads     *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	certExpiry  *prometheus.GaugeVec
}

// NewMetrics creates the reload collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontgate_config_reload_total",
			Help: "Reloads of configuration files after their content changed, by config and result (success or failure; a failure keeps the previous configuration).",
		}, []string{"config", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "frontgate_config_last_reload_success_timestamp_seconds",
			Help: "When each configuration was last loaded successfully (at start-up or on reload), as a Unix time.",
		}, []string{"config"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "frontgate_certificate_expiry_timestamp_seconds",
			Help: "When the certificate in use from each file expires (its NotAfter), as a Unix time; file is the flag that names it.",
		}, []string{"file"}),
	}
	reg.MustRegister(m.reloads, m.lastSuccess, m.certExpiry)
	return m
}

// ObserveCertificate records when the certificate now in use from the file
// named by flag expires.
func (m *Metrics) ObserveCertificate(flag string, leaf *x509.Certificate) {
	m.certExpiry.WithLabelValues(flag).Set(float64(leaf.NotAfter.Unix()))
}

// Options configure a [Watcher].
type Options struct {
	// Name labels the configuration in logs and metrics, e.g.
	// "authentication-config".
	Name string
	// Paths are the files to watch.
	Paths []string
	// Apply loads the files and, only if they are valid, puts them in use.
	// An error keeps the configuration in use.
	Apply func() error
	// Interval between reads; 0 means DefaultInterval.
	Interval time.Duration
	Logger   *slog.Logger
	Metrics  *Metrics
}

// Watcher calls Apply whenever the content of its files changes.
type Watcher struct {
	opts Options
	last [32]byte
	// unreadable is set while the files cannot be read, so that an outage
	// counts as one failed reload rather than one per interval.
	unreadable bool
}

// New reads the files once, so create it before the configuration is first
// loaded: a change made in between is then reloaded, never missed. It
// records the first load as a success.
func New(opts Options) (*Watcher, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{opts: opts}
	sum, err := w.digest()
	if err != nil {
		return nil, err
	}
	w.last = sum
	opts.Metrics.lastSuccess.WithLabelValues(opts.Name).SetToCurrentTime()
	opts.Metrics.reloads.WithLabelValues(opts.Name, "success")
	opts.Metrics.reloads.WithLabelValues(opts.Name, "failure")
	return w, nil
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.check()
	}
}

// check reloads once if the content changed.
func (w *Watcher) check() {
	log := w.opts.Logger.With("config", w.opts.Name)
	sum, err := w.digest()
	if err != nil {
		if !w.unreadable {
			w.unreadable = true
			w.opts.Metrics.reloads.WithLabelValues(w.opts.Name, "failure").Inc()
			log.Error("configuration files unreadable; keeping the current configuration", "error", err)
		}
		return
	}
	w.unreadable = false
	if sum == w.last {
		return
	}
	// The same content is not retried until it changes again.
	w.last = sum
	if err := w.opts.Apply(); err != nil {
		w.opts.Metrics.reloads.WithLabelValues(w.opts.Name, "failure").Inc()
		log.Error("configuration not reloaded; keeping the current one", "error", err)
		return
	}
	w.opts.Metrics.reloads.WithLabelValues(w.opts.Name, "success").Inc()
	w.opts.Metrics.lastSuccess.WithLabelValues(w.opts.Name).SetToCurrentTime()
	log.Info("configuration reloaded")
}

// digest hashes the names and content of the files.
func (w *Watcher) digest() ([32]byte, error) {
	h := sha256.New()
	for _, p := range w.opts.Paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return [32]byte{}, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
		h.Write(data)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}
