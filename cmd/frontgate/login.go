package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/login"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
)

// loginOptions are the flags of `frontgate login` and `frontgate logout`.
type loginOptions struct {
	issuerURL, clientID, clientSecret string
	scopes                            []string
	grant                             string
	noBrowser                         bool
	listen                            []string
	caFile, cacheDir                  string
	timeout                           time.Duration
}

func newLoginOptions() *loginOptions {
	return &loginOptions{grant: string(login.GrantAuthCode), listen: []string{login.DefaultListenAddr}, timeout: login.DefaultTimeout}
}

// addCacheFlags registers the flags that name a cache entry; login and
// logout share them.
func (o *loginOptions) addCacheFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.issuerURL, "issuer-url", o.issuerURL, "OpenID issuer URL, exactly as the tokens' iss claim (https; http only on a loopback host)")
	fs.StringVar(&o.clientID, "client-id", o.clientID, "OAuth client ID; frontgate must accept tokens for it (its --oidc-client-id)")
	fs.StringSliceVar(&o.scopes, "scopes", o.scopes, "scopes to request besides openid, which is always requested (default: offline_access when the issuer supports it; --scopes= for openid alone)")
	fs.StringVar(&o.cacheDir, "cache-dir", o.cacheDir, "token cache directory (default: <user cache dir>/frontgate/tokens)")
}

func (o *loginOptions) addFlags(fs *pflag.FlagSet) {
	o.addCacheFlags(fs)
	fs.StringVar(&o.clientSecret, "client-secret", o.clientSecret, "client secret of a confidential client (never printed; prefer public clients: this ends up in the kubeconfig)")
	fs.StringVar(&o.grant, "grant", o.grant, "how to log in when no token can be refreshed: auth-code (browser on this machine) or device (a code to enter on any device, for SSH sessions and headless machines)")
	fs.BoolVar(&o.noBrowser, "no-browser", o.noBrowser, "do not open a browser; print the URL to open instead")
	fs.StringSliceVar(&o.listen, "listen", o.listen, "loopback addresses for the auth-code redirect, tried in order (port 0: any free port); the issuer must allow http://HOST:PORT"+login.CallbackPath)
	fs.StringVar(&o.caFile, "ca-file", o.caFile, "CA bundle that verifies the issuer's certificate (default: system roots)")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the login to complete, waiting for another running login included")
}

// config builds the login configuration: reads --ca-file and resolves the
// cache directory.
func (o *loginOptions) config(d deps, fs *pflag.FlagSet) (login.Config, error) {
	cacheDir, err := o.resolveCacheDir(d)
	if err != nil {
		return login.Config{}, err
	}
	client := &http.Client{Timeout: 30 * time.Second}
	if o.caFile != "" {
		pool, err := pki.Pool(o.caFile)
		if err != nil {
			return login.Config{}, fmt.Errorf("--ca-file: %w", err)
		}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.Transport = transport
	}
	cfg := login.Config{
		IssuerURL:    o.issuerURL,
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		Grant:        login.Grant(o.grant),
		ListenAddrs:  o.listen,
		HTTPClient:   client,
		CacheDir:     cacheDir,
		Prompt:       d.stderr,
		Now:          d.now,
		Timeout:      o.timeout,
	}
	if fs.Changed("scopes") {
		cfg.Scopes = append([]string{}, o.scopes...)
	}
	if !o.noBrowser {
		cfg.OpenBrowser = d.openBrowser
	}
	return cfg, nil
}

func (o *loginOptions) resolveCacheDir(d deps) (string, error) {
	if o.cacheDir != "" {
		return o.cacheDir, nil
	}
	if d.userCacheDir == nil {
		return "", errors.New("--cache-dir is required: no user cache directory is known")
	}
	dir, err := d.userCacheDir()
	if err != nil {
		return "", fmt.Errorf("--cache-dir is required: %w", err)
	}
	return filepath.Join(dir, "frontgate", "tokens"), nil
}

func newLoginCommand(d deps) *cobra.Command {
	o := newLoginOptions()
	var logout bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in with OpenID Connect and print an ExecCredential for kubectl",
		Long: `login is a kubectl exec credential plugin (client.authentication.k8s.io/v1,
and v1beta1 when kubectl asks for it in KUBERNETES_EXEC_INFO). It prints an
ExecCredential on stdout whose token is an ID token from --issuer-url and
whose expirationTimestamp is that token's exp. Messages for you go to stderr.

Tokens are cached under --cache-dir (files 0600, one per issuer, client and
scopes, locked so that parallel kubectl calls log in once). A cached token is
used while it is valid for at least another minute, then refreshed with its
refresh token; only when that fails does login ask you to log in again:

  auth-code  opens a browser on this machine (or prints the URL with
             --no-browser) and receives the answer on a loopback redirect,
             http://127.0.0.1:<port>` + login.CallbackPath + `, with PKCE. Register that
             redirect URI for the client (any port, RFC 8252), or fix the
             ports with --listen.
  device     prints a URL and a code to enter on any device (RFC 8628), for
             SSH sessions and machines without a browser.

Every ID token is verified with the issuer's keys before it is cached or
printed. 'frontgate kubeconfig' writes the kubeconfig entry that runs this
command; 'frontgate logout' (or login --logout) removes the cached token.`,
		Example: `  # As kubectl runs it (see 'frontgate kubeconfig'):
  frontgate login --issuer-url https://login.example.com --client-id kubectl

  # Over SSH, with the device grant:
  frontgate login --issuer-url https://login.example.com --client-id kubectl --grant device

  # Fixed redirect ports, for issuers that need the exact redirect URI:
  frontgate login --issuer-url https://login.example.com --client-id kubectl \
    --listen 127.0.0.1:8000,127.0.0.1:18000

  # A local test issuer over http, ID token only, no refresh token:
  frontgate login --issuer-url http://localhost:9998/ --client-id native --scopes=`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := d.signalContext()
			defer cancel()
			cfg, err := o.config(d, cmd.Flags())
			if err != nil {
				return err
			}
			if logout {
				return runLogout(ctx, d, cfg)
			}
			info, err := login.ReadExecInfo(d.getenv(login.ExecInfoEnv))
			if err != nil {
				return err
			}
			cred, err := login.Login(ctx, cfg)
			if err != nil {
				return err
			}
			return login.WriteExecCredential(d.stdout, info.APIVersion, cred)
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&logout, "logout", false, "remove the cached token instead of logging in (as 'frontgate logout')")
	return cmd
}

func newLogoutCommand(d deps) *cobra.Command {
	o := newLoginOptions()
	var all bool
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Remove the tokens 'frontgate login' cached",
		Long: `logout removes the cached ID and refresh tokens of one issuer, client and set
of scopes (the same flags as login), or every cached token with --all. The
next 'frontgate login' logs in again. The refresh token is not revoked at the
issuer.`,
		Example: `  frontgate logout --issuer-url https://login.example.com --client-id kubectl

  # Every cached token:
  frontgate logout --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := d.signalContext()
			defer cancel()
			cfg, err := o.config(d, cmd.Flags())
			if err != nil {
				return err
			}
			if all {
				if cmd.Flags().Changed("issuer-url") || cmd.Flags().Changed("client-id") || cmd.Flags().Changed("scopes") {
					return errors.New("--all removes every token: give it without --issuer-url, --client-id and --scopes")
				}
				n, err := login.LogoutAll(cfg.CacheDir)
				if err != nil {
					return err
				}
				fmt.Fprintf(d.stderr, "frontgate: removed %d cached token(s) from %s\n", n, cfg.CacheDir)
				return nil
			}
			return runLogout(ctx, d, cfg)
		},
	}
	o.addCacheFlags(cmd.Flags())
	cmd.Flags().BoolVar(&all, "all", false, "remove every cached token")
	return cmd
}

// runLogout removes the cached token of cfg and says so on stderr.
func runLogout(ctx context.Context, d deps, cfg login.Config) error {
	if err := login.Logout(ctx, cfg); err != nil {
		return err
	}
	fmt.Fprintf(d.stderr, "frontgate: removed the cached token of %s (client %s) from %s\n", cfg.IssuerURL, cfg.ClientID, cfg.CacheDir)
	return nil
}

// systemBrowser returns a function that opens a URL in the user's browser
// and returns without waiting for the user. The browser never inherits
// stdout, which carries the ExecCredential. On Linux and BSD it needs a
// graphical session, so that a text browser never takes over the terminal.
func systemBrowser(getenv func(string) string) func(url string) error {
	return func(url string) error {
		var cmd *exec.Cmd
		switch runtime.GOOS {
		case "darwin":
			cmd = exec.Command("open", url)
		case "windows":
			cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
		default:
			if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
				return errors.New("no graphical session: DISPLAY and WAYLAND_DISPLAY are unset")
			}
			cmd = exec.Command("xdg-open", url)
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
		if err := cmd.Start(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done: // openers usually hand over and exit at once
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Base(cmd.Path), err)
			}
			return nil
		case <-time.After(3 * time.Second): // still running: it is the browser
			return nil
		}
	}
}
