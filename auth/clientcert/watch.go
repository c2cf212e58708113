package clientcert

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// DefaultWatchInterval is how often [Authenticator.Watch] looks at the files
// when given no interval; kube-apiserver checks its authentication
// configuration file as often.
const DefaultWatchInterval = time.Minute

// Watch reloads the configuration from files whenever their content changes,
// until ctx ends: it reads them every interval, and on a change loads them
// with [Files.Load] and applies them with [Authenticator.Update], keeping the
// trusted proxies and clock. A file that cannot be read, or a new
// configuration that is invalid, is logged and the current configuration
// stays; the same content is not retried until it changes again. files
// should be those whose [Files.Load] built the Authenticator: Watch starts
// from the content that was loaded then, so no change is missed.
func (a *Authenticator) Watch(ctx context.Context, files Files, interval time.Duration, logger *slog.Logger) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	last := a.state.Load().digest
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sum, err := files.digest()
		if err != nil {
			logger.Warn("client certificate files unreadable; keeping the current configuration", "error", err)
			continue
		}
		if sum == last {
			continue
		}
		last = sum
		if err := a.Reload(files); err != nil {
			logger.Error("client certificate configuration not reloaded; keeping the current one", "error", err)
			continue
		}
		logger.Info("client certificate configuration reloaded")
	}
}

// Reload loads files and applies them with [Authenticator.Update], keeping
// the trusted proxies and the clock; on any error the current configuration
// stays. It suits a reload on SIGHUP; [Authenticator.Watch] calls it when the
// files change.
func (a *Authenticator) Reload(files Files) error {
	cfg, err := files.Load()
	if err != nil {
		return err
	}
	cur := a.state.Load()
	cfg.TrustedProxies = cur.trusted
	cfg.Now = cur.now
	return a.Update(cfg)
}

// digest hashes the content of every file.
func (f Files) digest() ([32]byte, error) {
	paths, err := f.paths()
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p.path)
		if err != nil {
			return [32]byte{}, fmt.Errorf("%s: %w", p.flag, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p.path, len(data))
		h.Write(data)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}
