package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

const (
	// refetchInterval is the least time between two JWKS refetches caused by
	// unknown key IDs.
	refetchInterval = 10 * time.Second
	// fetchTimeout bounds one JWKS download.
	fetchTimeout = 10 * time.Second
	// maxJWKSBytes bounds the size of a JWKS document.
	maxJWKSBytes = 1 << 20
	// minRSABits is the smallest RSA key accepted from the JWKS.
	minRSABits = 2048
)

// errRefetchLimited reports that a refetch was skipped by the rate limit.
var errRefetchLimited = errors.New("the JWKS was refetched less than 10s ago")

// unknownKeyError reports that no key of the JWKS matches the token's key ID
// (and algorithm), even after a refetch.
type unknownKeyError struct {
	kid string
	alg string
	// refetch is why the refetch did not happen or failed; nil when it
	// succeeded.
	refetch error
}

func (e *unknownKeyError) Error() string {
	msg := fmt.Sprintf("no %s key with key ID %q in the issuer's JWKS", e.alg, e.kid)
	if e.refetch != nil {
		msg += " (refetch: " + e.refetch.Error() + ")"
	}
	return msg
}

func (e *unknownKeyError) Unwrap() error { return e.refetch }

// signatureError reports that the token names a known key (or none), but its
// signature verifies with no candidate key.
type signatureError struct {
	kid string
	err error
}

func (e *signatureError) Error() string {
	return fmt.Sprintf("signature does not verify with the issuer's key %q: %v", e.kid, e.err)
}

func (e *signatureError) Unwrap() error { return e.err }

// remoteKeySet holds the verification keys of one issuer: the keys of its jwks_uri,
// refetched on an unknown key ID at most once per refetchInterval, with
// concurrent misses sharing one fetch.
type remoteKeySet struct {
	url     string
	client  *http.Client
	limiter *rate.Limiter
	now     func() time.Time
	fetches *prometheus.CounterVec
	log     *slog.Logger

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	inflight *fetchCall
}

// fetchCall is one JWKS download that several callers may wait for.
type fetchCall struct {
	done chan struct{}
	err  error
}

func newRemoteKeySet(jwksURL string, client *http.Client, now func() time.Time, fetches *prometheus.CounterVec, log *slog.Logger) *remoteKeySet {
	return &remoteKeySet{
		url:     jwksURL,
		client:  client,
		limiter: rate.NewLimiter(rate.Every(refetchInterval), 1),
		now:     now,
		fetches: fetches,
		log:     log,
	}
}

// verify verifies the signature of jws, a compact JWS with one signature,
// with the issuer's key it names (refetching the keys once, rate-limited,
// when it names an unknown one) and returns a typed error when it does not
// verify.
func (k *remoteKeySet) verify(ctx context.Context, jws *jose.JSONWebSignature) error {
	header := jws.Signatures[0].Header
	kid, alg := header.KeyID, header.Algorithm

	candidates, err := verifyWith(jws, k.current(), kid, alg)
	if err == nil {
		return nil
	}
	if candidates > 0 && kid != "" {
		// The key is known: the signature is bad, a refetch cannot help.
		return &signatureError{kid: kid, err: err}
	}
	refetchErr := k.refetch(ctx)
	candidates, err = verifyWith(jws, k.current(), kid, alg)
	if err == nil {
		return nil
	}
	if candidates > 0 {
		return &signatureError{kid: kid, err: err}
	}
	return &unknownKeyError{kid: kid, alg: alg, refetch: refetchErr}
}

// verifyWith verifies jws with every usable key matching kid (any key when
// kid is empty) and alg, until one verifies. It returns the number of keys
// tried and, when none verified, the last error.
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid, alg string) (int, error) {
	tried := 0
	err := errors.New("no matching key")
	for i := range keys {
		key := &keys[i]
		if kid != "" && key.KeyID != kid || !usableFor(key, alg) {
			continue
		}
		tried++
		if _, err = jws.Verify(key.Key); err == nil {
			return tried, nil
		}
	}
	return tried, err
}

// usableFor reports whether key may verify a signature made with alg: the
// key's type must fit the algorithm, and its use and alg, when given, must
// allow it.
func usableFor(key *jose.JSONWebKey, alg string) bool {
	if key.Use != "" && key.Use != "sig" {
		return false
	}
	if key.Algorithm != "" && key.Algorithm != alg {
		return false
	}
	switch pub := key.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve.Params().BitSize == 256
		case "ES384":
			return pub.Curve.Params().BitSize == 384
		case "ES512":
			return pub.Curve.Params().BitSize == 521
		}
	}
	return false
}

// current returns the keys in use; the slice is never modified in place.
func (k *remoteKeySet) current() []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// refetch downloads the JWKS again unless the rate limit forbids it; callers
// arriving while a download runs wait for that one instead. The download is
// not cancelled with ctx, as other callers may share it.
func (k *remoteKeySet) refetch(ctx context.Context) error {
	k.mu.Lock()
	call := k.inflight
	if call == nil {
		if !k.limiter.AllowN(k.now(), 1) {
			k.mu.Unlock()
			return errRefetchLimited
		}
		call = &fetchCall{done: make(chan struct{})}
		k.inflight = call
		go func() {
			err := k.fetch(context.WithoutCancel(ctx))
			k.mu.Lock()
			k.inflight = nil
			call.err = err
			k.mu.Unlock()
			close(call.done)
		}()
	}
	k.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch downloads the JWKS and, on success, replaces the keys in use.
func (k *remoteKeySet) fetch(ctx context.Context) error {
	keys, err := k.download(ctx)
	if err != nil {
		k.fetches.WithLabelValues("error").Inc()
		k.log.Warn("fetching the OIDC issuer's JWKS failed", "url", k.url, "err", err)
		return err
	}
	k.fetches.WithLabelValues("success").Inc()
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	k.log.Debug("fetched the OIDC issuer's JWKS", "url", k.url, "keys", len(keys))
	return nil
}

// download GETs the JWKS and returns its usable public keys. Keys that
// cannot be parsed, are symmetric or are weak are skipped, so that one odd
// key does not make the whole set unusable.
func (k *remoteKeySet) download(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", k.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: the JWKS is larger than %d bytes", k.url, maxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("GET %s: not a JWKS: %w", k.url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for i, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			k.log.Warn("skipping a JWKS key that cannot be parsed", "url", k.url, "index", i, "err", err)
			continue
		}
		if !key.IsPublic() {
			key = key.Public()
		}
		switch pub := key.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				k.log.Warn("skipping a weak RSA key of the JWKS", "url", k.url, "kid", key.KeyID, "bits", pub.N.BitLen())
				continue
			}
		case *ecdsa.PublicKey:
		default:
			k.log.Warn("skipping a JWKS key of an unsupported type", "url", k.url, "kid", key.KeyID)
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}
