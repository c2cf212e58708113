package login

import (
	"errors"
	"fmt"
	"github.com/frontgate/frontgate/auth"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Grant is an OAuth 2.0 grant that logs the user in interactively.
type Grant string

// The grants [Login] can run.
const (
	// GrantAuthCode is the authorization code grant with PKCE on a loopback
	// redirect: the user logs in in a browser on this machine.
	GrantAuthCode Grant = "auth-code"
	// GrantDevice is the device authorization grant (RFC 8628): the user
	// logs in on any device with a URL and a code printed here.
	GrantDevice Grant = "device"
)

// CallbackPath is the path of the loopback redirect URI. The issuer must
// allow http://127.0.0.1/callback with any port (RFC 8252, section 7.3) or,
// with fixed ports, each http://HOST:PORT/callback in [Config.ListenAddrs].
const CallbackPath = "/callback"

// Defaults of the optional [Config] fields.
const (
	DefaultTimeout     = 5 * time.Minute
	DefaultMinValidity = time.Minute
)

// DefaultListenAddr is where the loopback redirect listens unless told
// otherwise: any free port on 127.0.0.1.
const DefaultListenAddr = "127.0.0.1:0"

// Config is everything [Login] and [Logout] need.
type Config struct {
	// IssuerURL is the OpenID issuer, exactly as in its tokens' iss claim:
	// https, or http for a loopback host.
	IssuerURL string
	// ClientID is the OAuth client; ID tokens' aud must contain it.
	ClientID string
	// ClientSecret authenticates a confidential client; empty for a public
	// client. It is never printed.
	ClientSecret string
	// Scopes are requested besides openid, which is always requested. Nil
	// means the default: offline_access when the issuer lists it in
	// scopes_supported.
	Scopes []string
	// Grant is the interactive grant; empty means GrantAuthCode.
	Grant Grant
	// ListenAddrs are the loopback addresses (host:port, port 0 for any)
	// tried in order for the redirect listener; empty means
	// DefaultListenAddr. The redirect URI uses the host as written here.
	ListenAddrs []string
	// OpenBrowser opens url in the user's browser and returns without
	// waiting for the user. Nil, or an error, means the URL is printed to
	// Prompt instead.
	OpenBrowser func(url string) error
	// HTTPClient reaches the issuer; nil means http.DefaultClient.
	HTTPClient *http.Client
	// CacheDir holds the token cache; required.
	CacheDir string
	// Prompt receives every message for the user (stderr); nil discards them.
	Prompt io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds one Login, waiting for the lock included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MinValidity is how long a cached ID token must still be valid to be
	// returned without refreshing; zero means DefaultMinValidity.
	MinValidity time.Duration
}

// Validate reports every problem with c, joined, without any I/O. Each
// message names the flag of `frontgate login` that fixes it.
func (c *Config) Validate() error {
	var errs []error
	if c.IssuerURL == "" {
		errs = append(errs, errors.New("--issuer-url is required: the OpenID issuer to log in with"))
	} else if err := auth.CheckIssuerURL(c.IssuerURL); err != nil {
		errs = append(errs, fmt.Errorf("--issuer-url %q %w", c.IssuerURL, err))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("--client-id is required: the OAuth client frontgate accepts tokens for"))
	}
	switch c.Grant {
	case "", GrantAuthCode, GrantDevice:
	default:
		errs = append(errs, fmt.Errorf("--grant %q: use auth-code or device", c.Grant))
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			errs = append(errs, fmt.Errorf("--scopes: %q is not a scope", s))
		}
	}
	for _, addr := range c.ListenAddrs {
		if err := checkListenAddr(addr); err != nil {
			errs = append(errs, fmt.Errorf("--listen %q %w", addr, err))
		}
	}
	if c.CacheDir == "" {
		errs = append(errs, errors.New("--cache-dir is required: no user cache directory was found"))
	}
	if c.Timeout < 0 || c.MinValidity < 0 {
		errs = append(errs, errors.New("--timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// checkListenAddr accepts host:port with a loopback host.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if !auth.IsLoopbackHost(host) {
		return errors.New("must be a loopback address such as 127.0.0.1:0 or localhost:8000: the redirect must not be reachable from the network")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return errors.New("has an invalid port")
	}
	return nil
}

// requestedScopes returns the scopes as configured, for the cache key: sorted,
// without duplicates, with openid, and with offline_access when Scopes is nil.
func (c *Config) requestedScopes() []string {
	scopes := []string{"openid"}
	if c.Scopes == nil {
		scopes = append(scopes, "offline_access")
	}
	scopes = append(scopes, c.Scopes...)
	slices.Sort(scopes)
	return slices.Compact(scopes)
}

// effectiveScopes returns the scopes to request from an issuer that lists
// supported in its discovery document: requestedScopes, minus the default
// offline_access when the issuer does not list it.
func (c *Config) effectiveScopes(supported []string) []string {
	scopes := c.requestedScopes()
	if c.Scopes == nil && !slices.Contains(supported, "offline_access") {
		scopes = slices.DeleteFunc(scopes, func(s string) bool { return s == "offline_access" })
	}
	return scopes
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) grant() Grant {
	if c.Grant == "" {
		return GrantAuthCode
	}
	return c.Grant
}

func (c *Config) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c *Config) minValidity() time.Duration {
	if c.MinValidity == 0 {
		return DefaultMinValidity
	}
	return c.MinValidity
}

func (c *Config) listenAddrs() []string {
	if len(c.ListenAddrs) == 0 {
		return []string{DefaultListenAddr}
	}
	return c.ListenAddrs
}

func (c *Config) prompt() io.Writer {
	if c.Prompt == nil {
		return io.Discard
	}
	return c.Prompt
}

func (c *Config) httpClient() *http.Client {
	if c.HTTPClient == nil {
		return http.DefaultClient
	}
	return c.HTTPClient
}
