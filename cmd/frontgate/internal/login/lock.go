package login

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockPollInterval is how often a waiting process tries the lock again.
const lockPollInterval = 50 * time.Millisecond

// exclusiveFileLock takes the lock at path by creating it with O_EXCL,
// waiting until ctx ends. A lock file older than staleAfter is left over
// from a process that died and is taken over. It is the fallback where
// flock(2) is missing: two waiters that find the same stale file at the
// same moment may both take it, which the rename below makes unlikely but
// not impossible.
func exclusiveFileLock(ctx context.Context, path string, staleAfter time.Duration) (func(), error) {
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
			_ = f.Close()
			return func() { _ = os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if info, err := os.Stat(path); err == nil && time.Since(info.ModTime()) > staleAfter {
			// Move the stale file aside first: only one waiter's rename
			// of this very file succeeds.
			stale := fmt.Sprintf("%s.stale-%d", path, os.Getpid())
			if os.Rename(path, stale) == nil {
				_ = os.Remove(stale)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(lockPollInterval):
		}
	}
}
