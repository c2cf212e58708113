package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/frontgate/frontgate/auth/reload"
)

// reloadReadyTimeout bounds how long reloaded token sources may take to
// reach their issuers before the reload is abandoned.
const reloadReadyTimeout = 30 * time.Second

// fileWatches creates the watchers that re-apply configuration when its
// files change, and collects them to run with the server.
type fileWatches struct {
	metrics *reload.Metrics
	logger  *slog.Logger
	runs    []func(context.Context)
}

// add watches paths under name. Call it before the files are first read, so
// that a change made in between is reloaded rather than missed.
func (w *fileWatches) add(name string, paths []string, apply func() error) error {
	watcher, err := reload.New(reload.Options{Name: name, Paths: paths, Apply: apply, Logger: w.logger, Metrics: w.metrics})
	if err != nil {
		return err
	}
	w.runs = append(w.runs, watcher.Run)
	return nil
}

// tokens returns the token source load makes. When paths are given it is
// reloaded whenever they change: the new source must load and become ready
// before it replaces the old one.
func (w *fileWatches) tokens(name string, paths []string, load func() (reload.TokenSource, error)) (reload.TokenSource, error) {
	if len(paths) == 0 {
		return load()
	}
	var tokens *reload.Tokens
	if err := w.add(name, paths, func() error {
		next, err := load()
		if err != nil {
			return err
		}
		return tokens.Replace(next, reloadReadyTimeout)
	}); err != nil {
		return nil, err
	}
	first, err := load()
	if err != nil {
		return nil, err
	}
	tokens = reload.NewTokens(first)
	return tokens, nil
}
