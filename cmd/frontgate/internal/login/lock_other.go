//go:build !unix

package login

import (
	"context"
	"time"
)

// acquireLock takes the lock at path with an O_EXCL lock file: this system
// has no flock(2).
func acquireLock(ctx context.Context, path string, staleAfter time.Duration) (func(), error) {
	return exclusiveFileLock(ctx, path, staleAfter)
}
