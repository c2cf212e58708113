package login

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCacheFilesArePrivate(t *testing.T) {
	h := newHarness(t)
	h.login(t)
	dirInfo, err := os.Stat(h.cfg.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := dirInfo.Mode().Perm(); perm != 0o700 {
		t.Errorf("cache directory mode %v, want 0700", perm)
	}
	entries, err := os.ReadDir(h.cfg.CacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 { // the entry and its lock file
		t.Errorf("cache holds %d files, want the entry and its lock", len(entries))
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), perm)
		}
	}
}

func TestCacheEntryPerIssuerClientAndScopes(t *testing.T) {
	base := Config{IssuerURL: "https://issuer.example", ClientID: "kubectl", CacheDir: "/c"}
	name := func(mutate func(c *Config)) string {
		c := base
		mutate(&c)
		return filepath.Base(newCache(&c).path())
	}
	same := name(func(*Config) {})
	tests := []struct {
		name     string
		mutate   func(c *Config)
		wantSame bool
	}{
		{"another issuer", func(c *Config) { c.IssuerURL = "https://other.example" }, false},
		{"issuer with a trailing slash is another issuer", func(c *Config) { c.IssuerURL += "/" }, false},
		{"another client", func(c *Config) { c.ClientID = "other" }, false},
		{"other scopes", func(c *Config) { c.Scopes = []string{"email"} }, false},
		{"no offline_access", func(c *Config) { c.Scopes = []string{} }, false},
		{"default scopes spelled out", func(c *Config) { c.Scopes = []string{"offline_access"} }, true},
		{"scope order and openid do not matter", func(c *Config) { c.Scopes = []string{"openid", "offline_access", "openid"} }, true},
		{"the secret does not matter", func(c *Config) { c.ClientSecret = "s" }, true},
		{"the grant does not matter", func(c *Config) { c.Grant = GrantDevice }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := name(tt.mutate)
			if (got == same) != tt.wantSame {
				t.Errorf("%s vs %s: same = %v, want %v", got, same, got == same, tt.wantSame)
			}
			if filepath.Ext(got) != cacheSuffix {
				t.Errorf("name %s", got)
			}
		})
	}
}

func TestCacheIgnoresDamagedAndForeignEntries(t *testing.T) {
	h := newHarness(t)
	h.login(t)
	path := newCache(&h.cfg).path()
	tests := []struct{ name, content string }{
		{"not JSON", "{"},
		{"another issuer", `{"issuer":"https://evil.example","clientID":"kubectl","scopes":["offline_access","openid"],"idToken":"x","expiry":"2999-01-01T00:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			before := h.op.authorizations.Load()
			if cred := h.login(t); cred.IDToken == "x" {
				t.Fatal("returned a foreign token")
			}
			if h.op.authorizations.Load() != before+1 {
				t.Error("did not log in again")
			}
		})
	}
}

func TestLockExcludes(t *testing.T) {
	impls := []struct {
		name    string
		acquire func(ctx context.Context, path string) (func(), error)
	}{
		{"platform lock", func(ctx context.Context, p string) (func(), error) { return acquireLock(ctx, p, time.Minute) }},
		{"O_EXCL lock file", func(ctx context.Context, p string) (func(), error) { return exclusiveFileLock(ctx, p, time.Minute) }},
	}
	for _, impl := range impls {
		t.Run(impl.name+"/parallel holders never overlap", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			var inside, maxInside, total atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 5 {
						unlock, err := impl.acquire(context.Background(), path)
						if err != nil {
							t.Error(err)
							return
						}
						n := inside.Add(1)
						if n > maxInside.Load() {
							maxInside.Store(n)
						}
						time.Sleep(time.Millisecond)
						inside.Add(-1)
						total.Add(1)
						unlock()
					}
				})
			}
			wg.Wait()
			if maxInside.Load() != 1 || total.Load() != 40 {
				t.Errorf("max holders %d, total %d; want 1 and 40", maxInside.Load(), total.Load())
			}
		})
		t.Run(impl.name+"/waiting ends with the context", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			unlock, err := impl.acquire(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, err := impl.acquire(ctx, path); err == nil {
				t.Fatal("took a held lock")
			}
		})
	}
	t.Run("O_EXCL lock file/stale lock is taken over", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.lock")
		if err := os.WriteFile(path, []byte("12345\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		unlock, err := exclusiveFileLock(ctx, path, time.Minute)
		if err != nil {
			t.Fatalf("stale lock not taken over: %v", err)
		}
		unlock()
	})
}

func TestLoginWaitsForTheLockAndReportsIt(t *testing.T) {
	h := newHarness(t)
	c := newCache(&h.cfg)
	ctx := context.Background()
	unlock, err := c.lock(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	h.cfg.Timeout = 200 * time.Millisecond
	_, err = Login(ctx, h.cfg)
	if !IsKind(err, KindTimeout) {
		t.Fatalf("err = %v, want a timeout naming the lock", err)
	}
	if h.op.authorizations.Load() != 0 {
		t.Error("logged in without the lock")
	}
}
