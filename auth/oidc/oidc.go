package oidc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/frontgate/frontgate/auth"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
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
// auth.TokenAuthenticator. Create it with [New] (kube-apiserver's --oidc-*
// flags) or [NewIssuer] (a [ClaimMapper] of the caller's), start
// [Authenticator.Run] and check [Authenticator.Ready]; it is safe for
// concurrent use.
//
// Verification (issuer, signature, algorithm, audience, expiry) is the same
// for both constructors; only the mapping of verified claims to an identity
// differs.
type Authenticator struct {
	issuer       string
	discoveryURL string
	audiences    []string
	// audienceText names the accepted audiences in messages.
	audienceText string
	algs         []string
	joseAlgs     []jose.SignatureAlgorithm
	// algsHint names the setting of the algorithms in messages, if any.
	algsHint    string
	mapper      ClaimMapper
	now         func() time.Time
	log         *slog.Logger
	client      *http.Client
	jwksFetches *prometheus.CounterVec

	// Timings of Run; tests shorten them.
	backoffMin, backoffMax, refreshInterval time.Duration

	running atomic.Bool
	// keys is nil until discovery and the first JWKS fetch succeed.
	keys atomic.Pointer[remoteKeySet]

	mu      sync.Mutex
	lastErr error // of the last failed discovery attempt
}

// New validates opts and returns an Authenticator that maps claims as
// kube-apiserver's legacy --oidc-* flags do. It is not ready until
// [Authenticator.Run] has reached the issuer, and does no network I/O.
// Errors name the flag to fix, for example "--oidc-client-id is required".
func New(opts Options) (*Authenticator, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m := &legacyMapper{
		usernameClaim:  opts.UsernameClaim,
		usernamePrefix: opts.UsernamePrefix,
		groupsClaim:    opts.GroupsClaim,
		groupsPrefix:   opts.GroupsPrefix,
		uidClaim:       opts.UIDClaim,
		extraClaims:    maps.Clone(opts.ExtraClaims),
		requiredClaims: maps.Clone(opts.RequiredClaims),
	}
	if m.usernameClaim == "" {
		m.usernameClaim = DefaultUsernameClaim
	}
	return newAuthenticator(settings{
		issuer:       opts.IssuerURL,
		audiences:    []string{opts.ClientID},
		audienceText: fmt.Sprintf("the client ID %q (--oidc-client-id)", opts.ClientID),
		algs:         opts.SigningAlgs,
		algsHint:     "--oidc-signing-algs",
		mapper:       m,
		rootCAs:      opts.RootCAs,
		registerer:   opts.Registerer,
		logger:       opts.Logger,
		now:          opts.Now,
	})
}

// NewIssuer validates opts and returns an Authenticator that verifies tokens
// of opts.IssuerURL exactly as [New] does, and hands the verified claims to
// opts.Mapper. Like New, it does no network I/O.
func NewIssuer(opts IssuerOptions) (*Authenticator, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	text := opts.AudienceDescription
	if text == "" {
		text = "any of the audiences " + auth.QuoteList(opts.Audiences)
	}
	return newAuthenticator(settings{
		issuer:       opts.IssuerURL,
		discoveryURL: opts.DiscoveryURL,
		audiences:    dedupe(opts.Audiences),
		audienceText: text,
		algs:         opts.SigningAlgs,
		mapper:       opts.Mapper,
		rootCAs:      opts.RootCAs,
		registerer:   opts.Registerer,
		logger:       opts.Logger,
		now:          opts.Now,
	})
}

// settings are the validated inputs common to New and NewIssuer.
type settings struct {
	issuer, discoveryURL   string
	audiences              []string
	audienceText, algsHint string
	algs                   []string
	mapper                 ClaimMapper
	rootCAs                *x509.CertPool
	registerer             prometheus.Registerer
	logger                 *slog.Logger
	now                    func() time.Time
}

func newAuthenticator(s settings) (*Authenticator, error) {
	a := &Authenticator{
		issuer:          s.issuer,
		discoveryURL:    s.discoveryURL,
		audiences:       s.audiences,
		audienceText:    s.audienceText,
		algs:            dedupe(s.algs),
		algsHint:        s.algsHint,
		mapper:          s.mapper,
		now:             s.now,
		log:             s.logger,
		backoffMin:      defaultBackoffMin,
		backoffMax:      defaultBackoffMax,
		refreshInterval: defaultRefreshInterval,
	}
	if len(a.algs) == 0 {
		a.algs = []string{DefaultSigningAlg}
	}
	for _, alg := range a.algs {
		a.joseAlgs = append(a.joseAlgs, jose.SignatureAlgorithm(alg))
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("issuer", a.issuer)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: s.rootCAs, MinVersion: tls.VersionTLS12}
	var rt http.RoundTripper = transport
	if a.discoveryURL != "" {
		rt = &discoveryRoundTripper{
			base:      transport,
			wellKnown: strings.TrimSuffix(a.issuer, "/") + wellKnownPath,
			discovery: a.discoveryURL,
		}
	}
	a.client = &http.Client{Transport: rt, Timeout: httpTimeout}

	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "frontgate_oidc_jwks_fetches_total",
		Help: "JWKS downloads from the OIDC issuer, by result (success or error).",
	}, []string{"result"})
	fetches.WithLabelValues("success")
	fetches.WithLabelValues("error")
	if err := register(s.registerer, &fetches); err != nil {
		return nil, err
	}
	a.jwksFetches = fetches
	return a, nil
}

// wellKnownPath is where discovery documents live under the issuer URL.
const wellKnownPath = "/.well-known/openid-configuration"

// discoveryRoundTripper reads the discovery document from another URL than
// the issuer's, as kube-apiserver does for issuer.discoveryURL: only a GET of
// exactly the issuer's well-known URL is redirected.
type discoveryRoundTripper struct {
	base      http.RoundTripper
	wellKnown string
	discovery string
}

func (d *discoveryRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet || r.URL.String() != d.wellKnown {
		return d.base.RoundTrip(r)
	}
	u, err := url.Parse(d.discovery)
	if err != nil {
		return nil, err
	}
	clone := r.Clone(r.Context())
	clone.URL, clone.Host = u, ""
	return d.base.RoundTrip(clone)
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
			_ = a.keys.Load().fetch(ctx)
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
		return fmt.Errorf("discovery: %s", auth.Truncate(err.Error(), 512))
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
	if err := auth.CheckIssuerURL(doc.JWKSURI); err != nil {
		return fmt.Errorf("discovery: jwks_uri %q %w", doc.JWKSURI, err)
	}
	keys := newRemoteKeySet(doc.JWKSURI, a.client, a.now, a.jwksFetches, a.log)
	if err := keys.fetch(ctx); err != nil {
		return fmt.Errorf("fetching the JWKS: %w", err)
	}
	a.keys.Store(keys)
	return nil
}

// Ready returns nil once the issuer has been discovered and its keys fetched;
// before that, an error saying the issuer is unreachable, with the last
// error of [Authenticator.Run].
func (a *Authenticator) Ready() error {
	if a.keys.Load() != nil {
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
