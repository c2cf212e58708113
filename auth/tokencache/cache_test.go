package tokencache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/frontgate/frontgate/auth"
)

var testNow = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeAuth answers from a table of tokens and counts its calls per token.
// Unknown tokens are "not mine".
type fakeAuth struct {
	mu      sync.Mutex
	answers map[string]answer
	calls   map[string]int
	// block, when set, is waited for by every call.
	block chan struct{}
	// started receives one value per call when set.
	started chan struct{}
}

type answer struct {
	id  *auth.Identity
	ok  bool
	err error
}

func newFake() *fakeAuth {
	return &fakeAuth{answers: map[string]answer{}, calls: map[string]int{}}
}

func (f *fakeAuth) set(token string, a answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[token] = a
}

func (f *fakeAuth) count(token string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[token]
}

func (f *fakeAuth) AuthenticateToken(ctx context.Context, token string) (*auth.Identity, bool, error) {
	f.mu.Lock()
	f.calls[token]++
	a, block, started := f.answers[token], f.block, f.started
	f.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if a.id == nil {
		return nil, a.ok, a.err
	}
	// Return a fresh copy, as a real authenticator builds a new identity.
	id := *a.id
	id.Groups = append([]string(nil), a.id.Groups...)
	return &id, a.ok, a.err
}

func success(name string, expires time.Time) answer {
	return answer{id: &auth.Identity{Name: name, Groups: []string{"dev"}, Extra: map[string][]string{"example.com/team": {"a"}}, Source: "oidc", Expires: expires}, ok: true}
}

type fixture struct {
	fake  *fakeAuth
	clock *testClock
	reg   *prometheus.Registry
	c     auth.TokenAuthenticator
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{fake: newFake(), clock: &testClock{t: testNow}, reg: prometheus.NewRegistry()}
	opts.Now, opts.Registerer = f.clock.Now, f.reg
	f.c = New(f.fake, opts)
	return f
}

// metric returns the value of the named metric with the given result label
// ("" for none), or 0.
func (f *fixture) metric(t *testing.T, name, result string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			if result != "" && !hasLabel(m, "result", result) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func (f *fixture) auth(t *testing.T, token string) (*auth.Identity, bool, error) {
	t.Helper()
	return f.c.AuthenticateToken(context.Background(), token)
}

func TestCacheHitsAndMisses(t *testing.T) {
	f := newFixture(t, Options{})
	f.fake.set("tok-a", success("alice", testNow.Add(time.Hour)))
	f.fake.set("tok-b", success("bob", time.Time{}))

	steps := []struct {
		token     string
		wantName  string
		wantCalls int
		hits      float64
		misses    float64
	}{
		{token: "tok-a", wantName: "alice", wantCalls: 1, hits: 0, misses: 1},
		{token: "tok-a", wantName: "alice", wantCalls: 1, hits: 1, misses: 1},
		{token: "tok-b", wantName: "bob", wantCalls: 1, hits: 1, misses: 2},
		{token: "tok-b", wantName: "bob", wantCalls: 1, hits: 2, misses: 2},
		{token: "tok-a", wantName: "alice", wantCalls: 1, hits: 3, misses: 2},
	}
	for i, st := range steps {
		t.Run(fmt.Sprintf("%d-%s", i, st.token), func(t *testing.T) {
			id, ok, err := f.auth(t, st.token)
			if err != nil || !ok || id.Name != st.wantName {
				t.Fatalf("got %+v, %v, %v", id, ok, err)
			}
			if got := f.fake.count(st.token); got != st.wantCalls {
				t.Errorf("calls = %d, want %d", got, st.wantCalls)
			}
			if got := f.metric(t, "frontgate_token_cache_requests_total", "hit"); got != st.hits {
				t.Errorf("hits = %v, want %v", got, st.hits)
			}
			if got := f.metric(t, "frontgate_token_cache_requests_total", "miss"); got != st.misses {
				t.Errorf("misses = %v, want %v", got, st.misses)
			}
		})
	}
	if got := f.metric(t, "frontgate_token_cache_entries", ""); got != 2 {
		t.Errorf("entries = %v, want 2", got)
	}
}

// An entry lives min(TTL, Expires-now).
func TestCacheLifetime(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		expires time.Duration // from now; 0 = none
		after   time.Duration // when to ask again
		cached  bool
	}{
		{name: "default TTL, within", after: 9 * time.Second, cached: true},
		{name: "default TTL, at 10s", after: 10 * time.Second, cached: false},
		{name: "custom TTL, within", ttl: time.Minute, after: 59 * time.Second, cached: true},
		{name: "custom TTL, past", ttl: time.Minute, after: 61 * time.Second, cached: false},
		{name: "exp before TTL, within", expires: 3 * time.Second, after: 2 * time.Second, cached: true},
		{name: "capped at exp", expires: 3 * time.Second, after: 3 * time.Second, cached: false},
		{name: "exp after TTL, TTL wins", expires: time.Hour, after: 11 * time.Second, cached: false},
		{name: "already expired identity is not cached", expires: -time.Second, after: 0, cached: false},
		{name: "no exp: TTL only", after: 9 * time.Second, cached: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{TTL: tt.ttl})
			var exp time.Time
			if tt.expires != 0 {
				exp = testNow.Add(tt.expires)
			}
			f.fake.set("tok", success("alice", exp))
			if _, ok, err := f.auth(t, "tok"); !ok {
				t.Fatalf("first call: %v", err)
			}
			f.clock.Advance(tt.after)
			_, _, _ = f.auth(t, "tok")
			wantCalls := 2
			if tt.cached {
				wantCalls = 1
			}
			if got := f.fake.count("tok"); got != wantCalls {
				t.Errorf("calls = %d, want %d", got, wantCalls)
			}
		})
	}
}

// Failures and "not mine" answers always go to the wrapped authenticator.
func TestCacheDoesNotCacheFailures(t *testing.T) {
	tests := []struct {
		name string
		ans  answer
	}{
		{name: "rejected", ans: answer{err: &auth.Error{Reason: auth.ReasonTokenExpired, Message: "token expired"}}},
		{name: "foreign issuer", ans: answer{err: &auth.Error{Reason: auth.ReasonInvalidIssuer, Message: "not mine"}}},
		{name: "not mine", ans: answer{}},
		{name: "ok with an error", ans: answer{id: &auth.Identity{Name: "x"}, ok: true, err: errors.New("inconsistent")}},
		{name: "ok without identity", ans: answer{ok: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.fake.set("tok", tt.ans)
			for range 3 {
				_, ok, err := f.auth(t, "tok")
				if ok != tt.ans.ok || !errors.Is(err, tt.ans.err) {
					t.Fatalf("got %v, %v; want %v, %v", ok, err, tt.ans.ok, tt.ans.err)
				}
			}
			if got := f.fake.count("tok"); got != 3 {
				t.Errorf("calls = %d, want 3", got)
			}
			if got := f.metric(t, "frontgate_token_cache_entries", ""); got != 0 {
				t.Errorf("entries = %v, want 0", got)
			}
		})
	}
}

// A token that failed is asked again once it succeeds (a rotated key).
func TestCacheFailureThenSuccess(t *testing.T) {
	f := newFixture(t, Options{})
	f.fake.set("tok", answer{err: &auth.Error{Reason: auth.ReasonUnknownKey}})
	if _, ok, _ := f.auth(t, "tok"); ok {
		t.Fatal("accepted")
	}
	f.fake.set("tok", success("alice", time.Time{}))
	if _, ok, err := f.auth(t, "tok"); !ok {
		t.Fatalf("refused: %v", err)
	}
}

// The cache holds at most MaxEntries, evicting the least recently used.
func TestCacheBound(t *testing.T) {
	f := newFixture(t, Options{MaxEntries: 3})
	for i := range 10 {
		f.fake.set(fmt.Sprint("tok-", i), success(fmt.Sprint("user-", i), time.Time{}))
	}
	ask := func(i int) {
		if _, ok, err := f.auth(t, fmt.Sprint("tok-", i)); !ok {
			t.Fatalf("tok-%d: %v", i, err)
		}
	}
	ask(0)
	ask(1)
	ask(2)
	ask(0) // 0 is now the most recently used; 1 the least
	ask(3) // evicts 1
	if got := f.metric(t, "frontgate_token_cache_entries", ""); got != 3 {
		t.Errorf("entries = %v, want 3", got)
	}
	for _, tt := range []struct {
		i         int
		wantCalls int
	}{{0, 1}, {2, 1}, {3, 1}, {1, 2}} {
		ask(tt.i)
		if got := f.fake.count(fmt.Sprint("tok-", tt.i)); got != tt.wantCalls {
			t.Errorf("tok-%d calls = %d, want %d", tt.i, got, tt.wantCalls)
		}
	}
	for i := 4; i < 10; i++ {
		ask(i)
	}
	if got := f.metric(t, "frontgate_token_cache_entries", ""); got != 3 {
		t.Errorf("entries after many = %v, want 3", got)
	}
	c := f.c.(*cache)
	c.mu.Lock()
	n, l := len(c.entries), c.lru.Len()
	c.mu.Unlock()
	if n != 3 || l != 3 {
		t.Errorf("map has %d entries and list %d, want 3", n, l)
	}
}

// Callers get copies: modifying one does not change what others get.
func TestCacheReturnsCopies(t *testing.T) {
	f := newFixture(t, Options{})
	f.fake.set("tok", success("alice", time.Time{}))
	first, _, _ := f.auth(t, "tok")
	want := *first
	want.Groups = []string{"dev"}
	want.Extra = map[string][]string{"example.com/team": {"a"}}
	first.Groups[0] = "system:masters"
	first.Extra["example.com/team"][0] = "evil"
	first.Name = "mallory"
	for range 2 {
		got, ok, err := f.auth(t, "tok")
		if !ok || err != nil {
			t.Fatal(err)
		}
		want.Name = "alice"
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("got %+v, want %+v", *got, want)
		}
		got.Groups[0] = "changed"
	}
}

// The raw token is never a key: entries are keyed by its SHA-256.
func TestCacheKeysAreHashes(t *testing.T) {
	f := newFixture(t, Options{})
	f.fake.set("secret-token", success("alice", time.Time{}))
	f.auth(t, "secret-token")
	c := f.c.(*cache)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[sha256.Sum256([]byte("secret-token"))]; !ok || len(c.entries) != 1 {
		t.Errorf("entries are not keyed by the token's SHA-256")
	}
}

// Concurrent misses for one token make one call; everyone gets the answer.
func TestCacheMergesConcurrentMisses(t *testing.T) {
	tests := []struct {
		name string
		ans  answer
	}{
		{name: "success", ans: success("alice", time.Time{})},
		{name: "failure", ans: answer{err: &auth.Error{Reason: auth.ReasonInvalidSignature}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.fake.set("tok", tt.ans)
			f.fake.block = make(chan struct{})
			f.fake.started = make(chan struct{}, 100)
			const n = 30
			var wg sync.WaitGroup
			var oks atomic.Int32
			for range n {
				wg.Go(func() {
					id, ok, err := f.c.AuthenticateToken(context.Background(), "tok")
					if ok != tt.ans.ok || !errors.Is(err, tt.ans.err) {
						t.Errorf("got %v, %v, %v", id, ok, err)
					}
					if ok {
						oks.Add(1)
						id.Groups = append(id.Groups, "mine") // each caller owns its copy
					}
				})
			}
			<-f.fake.started
			time.Sleep(50 * time.Millisecond)
			close(f.fake.block)
			wg.Wait()
			if got := f.fake.count("tok"); got != 1 {
				t.Errorf("calls = %d, want 1", got)
			}
		})
	}
}

// When the caller doing the work gives up, a waiting caller asks again
// instead of inheriting the cancellation.
func TestCacheLeaderCancelled(t *testing.T) {
	f := newFixture(t, Options{})
	f.fake.set("tok", success("alice", time.Time{}))
	f.fake.block = make(chan struct{})
	f.fake.started = make(chan struct{}, 10)

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderDone := make(chan error, 1)
	go func() {
		_, _, err := f.c.AuthenticateToken(leaderCtx, "tok")
		leaderDone <- err
	}()
	<-f.fake.started
	waiterDone := make(chan *auth.Identity, 1)
	go func() {
		id, _, _ := f.c.AuthenticateToken(context.Background(), "tok")
		waiterDone <- id
	}()
	time.Sleep(20 * time.Millisecond) // let the waiter join
	cancelLeader()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	<-f.fake.started // the waiter asks again
	close(f.fake.block)
	if id := <-waiterDone; id == nil || id.Name != "alice" {
		t.Fatalf("waiter got %+v", id)
	}
}

// A waiter whose own context ends stops waiting.
func TestCacheWaiterCancelled(t *testing.T) {
	f := newFixture(t, Options{})
	f.fake.set("tok", success("alice", time.Time{}))
	f.fake.block = make(chan struct{})
	f.fake.started = make(chan struct{}, 10)
	go f.c.AuthenticateToken(context.Background(), "tok")
	<-f.fake.started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, ok, err := f.c.AuthenticateToken(ctx, "tok"); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, %v; want deadline exceeded", ok, err)
	}
	close(f.fake.block)
}

// Many tokens from many goroutines, with evictions and expiry, under -race.
func TestCacheConcurrentUse(t *testing.T) {
	f := newFixture(t, Options{MaxEntries: 16, TTL: time.Second})
	for i := range 64 {
		if i%5 == 0 {
			f.fake.set(fmt.Sprint("tok-", i), answer{err: &auth.Error{Reason: auth.ReasonTokenExpired}})
			continue
		}
		f.fake.set(fmt.Sprint("tok-", i), success(fmt.Sprint("user-", i), testNow.Add(time.Duration(i)*time.Second)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for j := range 500 {
				i := (g*31 + j*7) % 64
				id, ok, err := f.c.AuthenticateToken(context.Background(), fmt.Sprint("tok-", i))
				if i%5 == 0 {
					if ok || err == nil {
						t.Errorf("tok-%d accepted", i)
					}
				} else if !ok || id.Name != fmt.Sprint("user-", i) {
					t.Errorf("tok-%d: %+v, %v", i, id, err)
				} else {
					id.Groups[0] = "scribble"
				}
				if j%100 == 0 {
					f.clock.Advance(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if got := f.metric(t, "frontgate_token_cache_entries", ""); got > 16 || got < 0 {
		t.Errorf("entries = %v, want at most 16", got)
	}
	c := f.c.(*cache)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) != c.lru.Len() || len(c.entries) > 16 || len(c.calls) != 0 {
		t.Errorf("inconsistent: %d entries, %d in the list, %d calls", len(c.entries), c.lru.Len(), len(c.calls))
	}
	if got := f.metric(t, "frontgate_token_cache_entries", ""); int(got) != len(c.entries) {
		t.Errorf("gauge %v != %d entries", got, len(c.entries))
	}
}

// Two caches may share a registry.
func TestCacheSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(newFake(), Options{Registerer: reg})
	New(newFake(), Options{Registerer: reg})
}
