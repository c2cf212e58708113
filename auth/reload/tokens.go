package reload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/frontgate/frontgate/auth"
)

// TokenSource is a token authenticator that must run (reach its issuers)
// before it is ready.
type TokenSource interface {
	auth.TokenAuthenticator
	Run(ctx context.Context)
	Ready() error
}

// Tokens is the token source in use, replaceable while requests flow. It
// implements [TokenSource].
type Tokens struct {
	mu      sync.RWMutex
	current TokenSource
	stop    context.CancelFunc
	ctx     context.Context // of Run; nil before Run
}

// NewTokens returns Tokens using first.
func NewTokens(first TokenSource) *Tokens {
	return &Tokens{current: first}
}

func (t *Tokens) source() TokenSource {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.current
}

// AuthenticateToken uses the current source.
func (t *Tokens) AuthenticateToken(ctx context.Context, token string) (*auth.Identity, bool, error) {
	return t.source().AuthenticateToken(ctx, token)
}

// Ready reports whether the current source is ready.
func (t *Tokens) Ready() error { return t.source().Ready() }

// Run runs the current source, and each one that replaces it, until ctx
// ends.
func (t *Tokens) Run(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	sourceCtx, stop := context.WithCancel(ctx)
	t.stop = stop
	current := t.current
	t.mu.Unlock()
	go current.Run(sourceCtx)
	<-ctx.Done()
}

// Replace starts next, waits up to timeout for it to become ready, and only
// then puts it in use and stops the previous source. If next does not
// become ready in time it is stopped and the current source stays.
func (t *Tokens) Replace(next TokenSource, timeout time.Duration) error {
	t.mu.RLock()
	runCtx := t.ctx
	t.mu.RUnlock()
	if runCtx == nil {
		return errors.New("reload: Replace before Run")
	}
	nextCtx, stopNext := context.WithCancel(runCtx)
	go next.Run(nextCtx)
	deadline := time.Now().Add(timeout)
	for {
		err := next.Ready()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			stopNext()
			return fmt.Errorf("the new configuration did not become ready within %s: %w", timeout, err)
		}
		select {
		case <-runCtx.Done():
			stopNext()
			return runCtx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.mu.Lock()
	stopPrevious := t.stop
	t.current, t.stop = next, stopNext
	t.mu.Unlock()
	stopPrevious()
	return nil
}
