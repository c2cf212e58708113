package oidc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// Defaults of the discovery backoff and the periodic JWKS refresh.
	defaultBackoffMin      = 500 * time.Millisecond
	defaultBackoffMax      = 30 * time.Second
	defaultRefreshInterval = 15 * time.Minute
	// httpTimeout bounds one request to the issuer.
	httpTimeout = 30 * time.Second
)

// Authenticator authenticates OIDC ID tokens of one issuer. It implements
// auth.TokenAuthenticator. Create it with [New], start [Authenticator.Run]
// and check [Authenticator.Ready]; it is safe for concurrent use.
type Authenticator struct {
	issuer         string
	clientID       string
	usernameClaim  string
	usernamePrefix string
	groupsClaim    string
	groupsPrefix   string
	uidClaim       string
	extraClaims    map[string]string
	requiredClaims map[string]string
	algs           []string
	now            func() time.Time
	log            *slog.Logger
	client         *http.Client
	jwksFetches    *prometheus.CounterVec

	// Timings of Run; tests shorten them.
	backoffMin, backoffMax, refreshInterval time.Duration

	running atomic.Bool
	// state is nil until discovery and the first JWKS fetch succeed.
	state atomic.Pointer[verifierState]

	mu      sync.Mutex
	lastErr error // of the last failed discovery attempt
}

// verifierState is what discovery produces.
type verifierState struct {
	verifier *oidc.IDTokenVerifier
	keys     *remoteKeySet
}

// New validates opts and returns an Authenticator that is not ready until
// [Authenticator.Run] has reached the issuer. It does no network I/O. Errors
// name the flag to fix, for example "--oidc-client-id is required".
func New(opts Options) (*Authenticator, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	a := &Authenticator{
		issuer:          opts.IssuerURL,
		clientID:        opts.ClientID,
		usernameClaim:   opts.UsernameClaim,
		usernamePrefix:  opts.UsernamePrefix,
		groupsClaim:     opts.GroupsClaim,
		groupsPrefix:    opts.GroupsPrefix,
		uidClaim:        opts.UIDClaim,
		extraClaims:     maps.Clone(opts.ExtraClaims),
		requiredClaims:  maps.Clone(opts.RequiredClaims),
		algs:            dedupe(opts.SigningAlgs),
		now:             opts.Now,
		log:             opts.Logger,
		backoffMin:      defaultBackoffMin,
		backoffMax:      defaultBackoffMax,
		refreshInterval: defaultRefreshInterval,
	}
	if a.usernameClaim == "" {
		a.usernameClaim = DefaultUsernameClaim
	}
	if len(a.algs) == 0 {
		a.algs = []string{DefaultSigningAlg}
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("issuer", a.issuer)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	a.client = &http.Client{Transport: transport, Timeout: httpTimeout}

	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "frontgate_oidc_jwks_fetches_total",
		Help: "JWKS downloads from the OIDC issuer, by result (success or error).",
	}, []string{"result"})
	fetches.WithLabelValues("success")
	fetches.WithLabelValues("error")
	if err := register(opts.Registerer, &fetches); err != nil {
		return nil, err
	}
	a.jwksFetches = fetches
	return a, nil
}

// register registers *c on reg, or reuses the collector already registered
// there under the same name (several authenticators then share it).
func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(*c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("registering OIDC metrics: %w", err)
	}
	return nil
}

func dedupe(s []string) []string {
	var out []string
	seen := make(map[string]bool, len(s))
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// Run discovers the issuer and fetches its JWKS, retrying with exponential
// backoff (500ms doubling up to 30s) while that fails and logging each failed
// attempt; then it refreshes the JWKS every 15 minutes so that keys the
// issuer withdrew stop being accepted. It returns when ctx ends. Run must be
// called once; further calls return at once.
func (a *Authenticator) Run(ctx context.Context) {
	if !a.running.CompareAndSwap(false, true) {
		a.log.Error("oidc.Authenticator.Run called twice; ignoring the second call")
		return
	}
	delay := a.backoffMin
	for attempt := 1; ; attempt++ {
		err := a.discover(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		a.lastErr = err
		a.mu.Unlock()
		a.log.Warn("the OIDC issuer is unreachable; retrying", "attempt", attempt, "retryIn", delay, "err", err)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(delay*2, a.backoffMax)
	}
	a.log.Info("the OIDC issuer is ready")

	ticker := time.NewTicker(a.refreshInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			// fetch logs its failures and keeps the previous keys.
			_ = a.state.Load().keys.fetch(ctx)
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// discover reads the issuer's discovery document, fetches the JWKS it names
// and, on success, makes the authenticator ready.
func (a *Authenticator) discover(ctx context.Context) error {
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, a.client), a.issuer)
	if err != nil {
		return fmt.Errorf("discovery: %s", truncate(err.Error(), 512))
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&doc); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	if doc.JWKSURI == "" {
		return errors.New("discovery: the discovery document has no jwks_uri")
	}
	if err := checkURL(doc.JWKSURI); err != nil {
		return fmt.Errorf("discovery: jwks_uri %q %w", doc.JWKSURI, err)
	}
	keys := newRemoteKeySet(doc.JWKSURI, a.client, a.algs, a.now, a.jwksFetches, a.log)
	if err := keys.fetch(ctx); err != nil {
		return fmt.Errorf("fetching the JWKS: %w", err)
	}
	verifier := oidc.NewVerifier(a.issuer, keys, &oidc.Config{
		ClientID:             a.clientID,
		SupportedSigningAlgs: a.algs,
		Now:                  a.now,
	})
	a.state.Store(&verifierState{verifier: verifier, keys: keys})
	return nil
}

// Ready returns nil once the issuer has been discovered and its keys fetched;
// before that, an error saying the issuer is unreachable, with the last
// error of [Authenticator.Run].
func (a *Authenticator) Ready() error {
	if a.state.Load() != nil {
		return nil
	}
	a.mu.Lock()
	err := a.lastErr
	a.mu.Unlock()
	if err == nil {
		return fmt.Errorf("OIDC issuer %q is unreachable: discovery has not completed yet", a.issuer)
	}
	return fmt.Errorf("OIDC issuer %q is unreachable: %w", a.issuer, err)
}
