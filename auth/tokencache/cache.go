package tokencache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/frontgate/frontgate/auth"
)

// DefaultTTL is the longest an entry lives when Options.TTL is not positive;
// it is kube-apiserver's token cache TTL.
const DefaultTTL = 10 * time.Second

// DefaultMaxEntries bounds the cache when Options.MaxEntries is not positive.
const DefaultMaxEntries = 10000

// Options configure a cache made by [New].
type Options struct {
	// TTL is the longest an entry lives; DefaultTTL when not positive. An
	// entry never outlives the identity's Expires.
	TTL time.Duration
	// MaxEntries bounds the number of entries; DefaultMaxEntries when not
	// positive.
	MaxEntries int
	// Registerer receives the cache's metrics; nil registers none. Caches
	// sharing a registry share the metrics.
	Registerer prometheus.Registerer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// New returns a TokenAuthenticator that answers from a cache of next's
// successful authentications and asks next otherwise. It is safe for
// concurrent use; every caller gets its own copy of a cached identity.
//
// New panics if opts.Registerer refuses the metrics for another reason than
// their being registered already, as prometheus.MustRegister does.
func New(next auth.TokenAuthenticator, opts Options) auth.TokenAuthenticator {
	c := &cache{
		next:    next,
		ttl:     opts.TTL,
		max:     opts.MaxEntries,
		now:     opts.Now,
		entries: make(map[[sha256.Size]byte]*list.Element),
		lru:     list.New(),
		calls:   make(map[[sha256.Size]byte]*call),
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.max <= 0 {
		c.max = DefaultMaxEntries
	}
	if c.now == nil {
		c.now = time.Now
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "frontgate_token_cache_requests_total",
		Help: "Token authentications asked of the token cache, by result (hit or miss).",
	}, []string{"result"})
	entries := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "frontgate_token_cache_entries",
		Help: "Successful token authentications currently held by the token cache.",
	})
	must(register(opts.Registerer, &requests))
	must(register(opts.Registerer, &entries))
	c.hits = requests.WithLabelValues("hit")
	c.misses = requests.WithLabelValues("miss")
	c.size = entries
	return c
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// register registers *col on reg, or reuses the collector already registered
// there under the same name.
func register[C prometheus.Collector](reg prometheus.Registerer, col *C) error {
	if reg == nil {
		return nil
	}
	err := reg.Register(*col)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			*col = existing
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("registering token cache metrics: %w", err)
	}
	return nil
}

type key = [sha256.Size]byte

// cache is the TokenAuthenticator New returns.
type cache struct {
	next auth.TokenAuthenticator
	ttl  time.Duration
	max  int
	now  func() time.Time

	hits, misses prometheus.Counter
	// size is changed by deltas, so that caches sharing it add up.
	size prometheus.Gauge

	mu      sync.Mutex
	entries map[key]*list.Element // of *entry
	lru     *list.List            // front: most recently used
	calls   map[key]*call         // authentications under way
}

// entry is one cached success. id is never handed out, only copies of it.
type entry struct {
	key     key
	id      *auth.Identity
	expires time.Time
}

// call is an authentication under way that other callers of the same token
// wait for.
type call struct {
	done chan struct{}
	// Set before done is closed.
	id    *auth.Identity // a private copy
	ok    bool
	err   error
	retry bool // the leader's context ended or it panicked: ask again
}

// AuthenticateToken implements auth.TokenAuthenticator.
func (c *cache) AuthenticateToken(ctx context.Context, token string) (*auth.Identity, bool, error) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	if id := c.getLocked(k); id != nil {
		c.mu.Unlock()
		c.hits.Inc()
		return id, true, nil
	}
	c.mu.Unlock()
	c.misses.Inc()

	for {
		c.mu.Lock()
		// A call that just finished may have stored the answer.
		if id := c.getLocked(k); id != nil {
			c.mu.Unlock()
			return id, true, nil
		}
		if cl, ok := c.calls[k]; ok {
			c.mu.Unlock()
			select {
			case <-cl.done:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			if cl.retry {
				if err := ctx.Err(); err != nil {
					return nil, false, err
				}
				continue
			}
			return cloneIdentity(cl.id), cl.ok, cl.err
		}
		cl := &call{done: make(chan struct{}), retry: true}
		c.calls[k] = cl
		c.mu.Unlock()
		return c.lead(ctx, k, token, cl)
	}
}

// lead asks next for the token on behalf of every caller waiting on cl and
// caches a success.
func (c *cache) lead(ctx context.Context, k key, token string, cl *call) (id *auth.Identity, ok bool, err error) {
	defer func() {
		c.mu.Lock()
		delete(c.calls, k)
		if !cl.retry && ok && err == nil && id != nil {
			c.storeLocked(k, cl.id)
		}
		c.mu.Unlock()
		close(cl.done)
	}()
	id, ok, err = c.next.AuthenticateToken(ctx, token)
	cl.id, cl.ok, cl.err = cloneIdentity(id), ok, err
	cl.retry = err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	return id, ok, err
}

// getLocked returns a copy of the live entry for k, or nil; it drops k's
// entry when it has expired.
func (c *cache) getLocked(k key) *auth.Identity {
	el, ok := c.entries[k]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return nil
	}
	c.lru.MoveToFront(el)
	return cloneIdentity(e.id)
}

// storeLocked caches id for the TTL, but not past id.Expires, evicting the
// least recently used entry when the cache is full.
func (c *cache) storeLocked(k key, id *auth.Identity) {
	now := c.now()
	expires := now.Add(c.ttl)
	if !id.Expires.IsZero() && id.Expires.Before(expires) {
		expires = id.Expires
	}
	if !now.Before(expires) {
		return
	}
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*entry)
		e.id, e.expires = id, expires
		c.lru.MoveToFront(el)
		return
	}
	for len(c.entries) >= c.max {
		c.removeLocked(c.lru.Back())
	}
	c.entries[k] = c.lru.PushFront(&entry{key: k, id: id, expires: expires})
	c.size.Inc()
}

func (c *cache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.key)
	c.size.Dec()
}

// cloneIdentity returns a deep copy of id, or nil.
func cloneIdentity(id *auth.Identity) *auth.Identity {
	if id == nil {
		return nil
	}
	out := *id
	out.Groups = slices.Clone(id.Groups)
	if id.Extra != nil {
		out.Extra = maps.Clone(id.Extra)
		for k, v := range out.Extra {
			out.Extra[k] = slices.Clone(v)
		}
	}
	return &out
}
