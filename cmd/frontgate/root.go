package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// deps are what commands take from the outside world, so tests can replace
// them.
type deps struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// signalContext returns a context cancelled on SIGINT or SIGTERM.
	signalContext func() (context.Context, context.CancelFunc)
	// openBrowser opens a URL in the user's browser without waiting for
	// the user (login).
	openBrowser func(url string) error
	// userCacheDir is where login caches tokens unless --cache-dir is given.
	userCacheDir func() (string, error)
	// now is the clock of login's token cache.
	now func() time.Time
}

func defaultDeps() deps {
	return deps{
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		signalContext: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		},
		openBrowser:  systemBrowser(os.Getenv),
		userCacheDir: os.UserCacheDir,
		now:          time.Now,
	}
}

func newRootCommand(d deps) *cobra.Command {
	root := &cobra.Command{
		Use:   "frontgate",
		Short: "An authenticating front proxy for kube-apiserver",
		Long: `frontgate authenticates kubectl users (OIDC ID tokens) and forwards their
requests to kube-apiserver with the identity in X-Remote-* headers, presenting
its own front-proxy client certificate. kube-apiserver trusts it through its
--requestheader-* flags, so frontgate needs no impersonation rights.`,
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.SetOut(d.stdout)
	root.SetErr(d.stderr)
	root.AddCommand(
		newServeCommand(d),
		newFlagsCommand(d),
		newPKICommand(d),
		newVersionCommand(d),
		newLoginCommand(d),
		newLogoutCommand(d),
		newKubeconfigCommand(d),
		newCheckCommand(d),
		newExplainCommand(d),
	)
	return root
}
