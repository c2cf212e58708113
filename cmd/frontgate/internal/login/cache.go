package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cacheEntry is one cache file: the tokens of one issuer, client and set of
// scopes.
type cacheEntry struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"clientID"`
	Scopes       []string  `json:"scopes"`
	IDToken      string    `json:"idToken"`
	Expiry       time.Time `json:"expiry"`
	Subject      string    `json:"subject"`
	RefreshToken string    `json:"refreshToken,omitempty"`
}

// cacheSuffix and lockSuffix end the names of cache and lock files.
const (
	cacheSuffix = ".json"
	lockSuffix  = ".lock"
)

// cacheKey names the entry of issuer, clientID and scopes: a hash, so that
// no URL or scope has to be escaped into a file name. scopes must be sorted.
func cacheKey(issuer, clientID string, scopes []string) string {
	h := sha256.New()
	for _, part := range []string{issuer, clientID, strings.Join(scopes, " ")} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// cache is the token cache of one Config.
type cache struct {
	dir, key         string
	issuer, clientID string
	scopes           []string
}

func newCache(c *Config) *cache {
	scopes := c.requestedScopes()
	return &cache{dir: c.CacheDir, key: cacheKey(c.IssuerURL, c.ClientID, scopes), issuer: c.IssuerURL, clientID: c.ClientID, scopes: scopes}
}

func (c *cache) path() string     { return filepath.Join(c.dir, c.key+cacheSuffix) }
func (c *cache) lockPath() string { return filepath.Join(c.dir, c.key+lockSuffix) }

// mkdir creates the cache directory, private to the user.
func (c *cache) mkdir() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return newError(KindCache, err, "cannot create the token cache directory %s (%v): fix its permissions or choose another with --cache-dir", c.dir, err)
	}
	return nil
}

// lock takes the entry's lock, waiting until ctx ends; staleAfter is how old
// an O_EXCL lock file must be to be taken over (where flock is missing).
func (c *cache) lock(ctx context.Context, staleAfter time.Duration) (unlock func(), err error) {
	if err := c.mkdir(); err != nil {
		return nil, err
	}
	unlock, err = acquireLock(ctx, c.lockPath(), staleAfter)
	if err != nil {
		if ctx.Err() != nil {
			return nil, newError(KindTimeout, err, "another frontgate login for %s is still running (lock %s): finish it, or wait and run the command again", c.issuer, c.lockPath())
		}
		return nil, newError(KindCache, err, "cannot lock the token cache %s (%v): fix its permissions or choose another --cache-dir", c.lockPath(), err)
	}
	return unlock, nil
}

// load returns the entry, or nil when there is none or it belongs to another
// issuer, client or set of scopes. A file that does not parse counts as
// none, so that a damaged cache heals with the next login.
func (c *cache) load() (*cacheEntry, error) {
	data, err := os.ReadFile(c.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, newError(KindCache, err, "cannot read the token cache %s (%v): fix its permissions or run frontgate logout", c.path(), err)
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || e.Issuer != c.issuer || e.ClientID != c.clientID || !slices.Equal(e.Scopes, c.scopes) {
		return nil, nil
	}
	return &e, nil
}

// save writes e atomically, 0600.
func (c *cache) save(e *cacheEntry) error {
	e.Issuer, e.ClientID, e.Scopes = c.issuer, c.clientID, c.scopes
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := c.mkdir(); err != nil {
		return err
	}
	if err := writeFileAtomic(c.path(), data); err != nil {
		return newError(KindCache, err, "cannot write the token cache %s (%v): fix its permissions or choose another --cache-dir", c.path(), err)
	}
	return nil
}

// remove deletes the entry; a missing entry is not an error.
func (c *cache) remove() error {
	if err := os.Remove(c.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return newError(KindCache, err, "cannot remove the token cache %s (%v): remove it by hand", c.path(), err)
	}
	return nil
}

// writeFileAtomic writes data to a new 0600 file next to path and renames it
// over path, so that readers see the old or the new content, never part.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeAll deletes every cache entry in dir (lock files stay: another
// process may hold one). A missing directory is not an error.
func removeAll(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, newError(KindCache, err, "cannot read the token cache directory %s (%v)", dir, err)
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), cacheSuffix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if err := errors.Join(errs...); err != nil {
		return n, newError(KindCache, err, "cannot remove every token in %s (%v): remove them by hand", dir, err)
	}
	return n, nil
}

// String describes the entry for messages, without any token.
func (e *cacheEntry) String() string {
	return fmt.Sprintf("token for %s (client %s) valid until %s", e.Issuer, e.ClientID, e.Expiry.Format(time.RFC3339))
}
