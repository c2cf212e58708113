package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/html"
)

// RedirectURI is the redirect URI registered for the OpenID Provider's
// clients. Nothing listens there: the harness stops at the redirect and
// reads the code from it.
const RedirectURI = "http://localhost/frontgate-e2e/callback"

// LoopbackRedirectURI is registered too: the loopback redirect of `frontgate
// login`, http://127.0.0.1:<port>/callback. For the native client the
// provider accepts it on any port (RFC 8252, section 7.3: it compares a
// loopback redirect's path and query, not its port).
const LoopbackRedirectURI = "http://127.0.0.1/callback"

// The example OpenID Provider's clients. "web" and "api" are confidential
// clients with client secret [ClientSecret]; "native" is a public client
// that uses PKCE and may refresh. "device" is registered only by
// [Cluster.StartDeviceOIDCProvider]: a confidential client (secret
// [ClientSecret]) for the device authorization grant alone.
const (
	ClientWeb    = "web"
	ClientAPI    = "api"
	ClientNative = "native"
	ClientDevice = "device"
	ClientSecret = "secret"
)

// User is a user of the example OpenID Provider, in the shape of its
// storage.User (the JSON of its USERS_FILE). The ID token's sub claim is ID.
type User struct {
	ID                string
	Username          string
	Password          string
	FirstName         string
	LastName          string
	Email             string
	EmailVerified     bool
	Phone             string
	PhoneVerified     bool
	PreferredLanguage string
	IsAdmin           bool
}

// DefaultUsers returns the users the harness gives the OpenID Provider when
// none are configured: alice, bob, carol, dave, erin and frank, each with
// ID and Username equal to the name and password name+"-password".
func DefaultUsers() []User {
	var users []User
	for _, n := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		users = append(users, NewUser(n))
	}
	return users
}

// NewUser returns a user whose ID and Username are name, with password
// name+"-password".
func NewUser(name string) User {
	return User{
		ID: name, Username: name, Password: name + "-password",
		FirstName: name, LastName: "E2E", Email: name + "@example.com", EmailVerified: true,
		PreferredLanguage: "en",
	}
}

// OIDCProvider is a running zitadel example OpenID Provider.
type OIDCProvider struct {
	// Issuer is the issuer URL, http://localhost:PORT/ (the example serves
	// plain HTTP and always names itself localhost).
	Issuer string
	// Port is the TCP port it listens on.
	Port int
	// Process is the provider's process.
	Process *Process

	cluster *Cluster
}

var opCounter atomic.Int32

// StartOIDCProvider starts another instance of the example OpenID Provider
// with the cluster's users, on port (0 = pick a free one), and waits until
// its discovery document is served. Each instance has its own signing key,
// so tokens of one are foreign to another.
func (c *Cluster) StartOIDCProvider(ctx context.Context, port int) (*OIDCProvider, error) {
	return c.startOIDCProvider(ctx, port, "oidc-provider", c.Tools.OIDCProvider)
}

// StartDeviceOIDCProvider is [Cluster.StartOIDCProvider] for the same
// provider built with one more client, [ClientDevice], which may use the
// device authorization grant (test/tools/oidc/main.go). Its device flow
// makes the username the subject, so a user's ID must equal its Username
// (as for [NewUser]) for a token to be issued.
func (c *Cluster) StartDeviceOIDCProvider(ctx context.Context, port int) (*OIDCProvider, error) {
	return c.startOIDCProvider(ctx, port, "oidc-provider-device", c.Tools.OIDCProviderDevice)
}

func (c *Cluster) startOIDCProvider(ctx context.Context, port int, name, bin string) (*OIDCProvider, error) {
	n := opCounter.Add(1)
	usersFile := filepath.Join(c.Dir, fmt.Sprintf("oidc-users-%d.json", n))
	users := map[string]User{}
	for _, u := range c.Users {
		users[u.ID] = u
	}
	data, err := json.MarshalIndent(users, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(usersFile, data, 0o600); err != nil {
		return nil, err
	}
	fixed := port != 0
	var lastErr error
	for range bindRetries {
		if !fixed {
			if port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		op := &OIDCProvider{Issuer: fmt.Sprintf("http://localhost:%d/", port), Port: port, cluster: c}
		op.Process, err = c.start(fmt.Sprintf("%s-%d", name, n), bin, nil, []string{
			fmt.Sprintf("PORT=%d", port),
			"REDIRECT_URI=" + RedirectURI + "," + LoopbackRedirectURI,
			"USERS_FILE=" + usersFile,
		})
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		client := &http.Client{Timeout: 2 * time.Second}
		lastErr = waitFor(wctx, "the OpenID Provider's discovery document", op.Process, 50*time.Millisecond, func(ctx context.Context) (bool, error) {
			return statusOK(get(ctx, client, op.Issuer+".well-known/openid-configuration"))
		})
		cancel()
		if lastErr == nil {
			return op, nil
		}
		op.Process.Stop()
		if fixed || !addrInUse(lastErr) {
			break
		}
	}
	return nil, lastErr
}

// Stop stops the provider.
func (op *OIDCProvider) Stop() { op.Process.Stop() }

// discovery is the part of the discovery document the flows need.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// IDToken obtains an ID token for user from the provider the way a person
// with a browser would, through the authorization-code flow: from the
// authorization endpoint through the login form up to the redirect URI
// ([OIDCProvider.Authorize]), then the code is exchanged at the token
// endpoint. clientID is [ClientWeb], [ClientAPI] (confidential, with
// [ClientSecret]) or [ClientNative] (PKCE). Extra scopes are added to
// "openid". The token is recorded with [Cluster.RecordSecret].
func (op *OIDCProvider) IDToken(ctx context.Context, clientID string, user User, scopes ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{}
	var disc discovery
	if err := getJSON(ctx, client, op.Issuer+".well-known/openid-configuration", &disc); err != nil {
		return "", err
	}

	state, nonce, verifier := randomString(), randomString(), randomString()+randomString()
	q := url.Values{
		"client_id":     {clientID},
		"redirect_uri":  {RedirectURI},
		"response_type": {"code"},
		"scope":         {strings.Join(append([]string{"openid"}, scopes...), " ")},
		"state":         {state},
		"nonce":         {nonce},
	}
	if clientID == ClientNative {
		sum := sha256.Sum256([]byte(verifier))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		q.Set("code_challenge_method", "S256")
	}
	loc, err := op.Authorize(ctx, disc.AuthorizationEndpoint+"?"+q.Encode(), user)
	if err != nil {
		return "", err
	}
	if e := loc.Query().Get("error"); e != "" {
		return "", fmt.Errorf("authorization failed: %s: %s", e, loc.Query().Get("error_description"))
	}
	if got := loc.Query().Get("state"); got != state {
		return "", fmt.Errorf("redirect carries state %q, want %q", got, state)
	}
	code := loc.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("redirect without a code: %s", loc.Redacted())
	}

	tokenForm := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {RedirectURI},
	}
	if clientID == ClientNative {
		tokenForm.Set("client_id", clientID)
		tokenForm.Set("code_verifier", verifier)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, disc.TokenEndpoint, strings.NewReader(tokenForm.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != ClientNative {
		req.SetBasicAuth(clientID, ClientSecret)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken          string `json:"id_token"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return "", fmt.Errorf("token response (%s): %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || tok.IDToken == "" {
		return "", fmt.Errorf("token request: %s: %s %s", resp.Status, tok.Error, tok.ErrorDescription)
	}
	op.cluster.RecordSecret(tok.IDToken)
	return tok.IDToken, nil
}

// Authorize completes a login that starts at authorizeURL, an authorization
// request to this provider made by any client (the harness, or `frontgate
// login`), the way a person with a fresh browser would: it opens the URL,
// follows the redirects to the login form, submits it with user's name and
// password, and follows the redirects up to, not into, the request's
// redirect_uri. It returns that last redirect, which carries the code and
// state, or an error and its description: following it (or not) is the
// caller's business, as it would be the browser's.
func (op *OIDCProvider) Authorize(ctx context.Context, authorizeURL string, user User) (*url.URL, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	au, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, fmt.Errorf("authorization URL: %w", err)
	}
	if !strings.HasPrefix(authorizeURL, op.Issuer) {
		return nil, fmt.Errorf("authorization URL %s is not on this provider (%s)", au.Redacted(), op.Issuer)
	}
	redirectURI := au.Query().Get("redirect_uri")
	if redirectURI == "" {
		return nil, fmt.Errorf("authorization URL %s has no redirect_uri", au.Redacted())
	}
	client := browser(func(u *url.URL) bool { return strings.HasPrefix(u.String(), redirectURI) })

	resp, err := do(ctx, client, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return nil, fmt.Errorf("authorization request: %w", err)
	}
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if loc, _ := resp.Location(); resp.StatusCode/100 == 3 && loc != nil {
		return loc, nil // no login needed: an error for the client, usually
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("authorization request: want the login page, got %s: %.300s", resp.Status, page)
	}
	form, err := parseForm(page, resp.Request.URL, isPasswordInput)
	if err != nil {
		return nil, fmt.Errorf("the login page: %w", err)
	}
	form.values.Set("username", user.Username)
	form.values.Set("password", user.Password)
	resp, err = do(ctx, client, http.MethodPost, form.action, form.values)
	if err != nil {
		return nil, fmt.Errorf("submitting the login form: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode/100 != 3 || loc == nil || !strings.HasPrefix(loc.String(), redirectURI) {
		if msg := loginError(body); msg != "" {
			return nil, fmt.Errorf("login as %q failed: %s", user.Username, msg)
		}
		return nil, fmt.Errorf("login: want a redirect to %s, got %s: %.300s", redirectURI, resp.Status, body)
	}
	return loc, nil
}

// ApproveDevice completes a device authorization (RFC 8628) the way its user
// would on another device with a fresh browser: opens verificationURI (the
// verification_uri a client printed), types userCode into the form there,
// logs in as user and presses Allow. It returns once the provider has
// recorded the approval; the client's next poll gets the tokens.
func (op *OIDCProvider) ApproveDevice(ctx context.Context, verificationURI, userCode string, user User) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !strings.HasPrefix(verificationURI, op.Issuer) {
		return fmt.Errorf("verification URI %s is not on this provider (%s)", verificationURI, op.Issuer)
	}
	client := browser(func(*url.URL) bool { return false })
	page, base, err := fetchPage(ctx, client, http.MethodGet, verificationURI, nil)
	if err != nil {
		return fmt.Errorf("opening the verification page: %w", err)
	}
	form, err := parseForm(page, base, func(name, typ string) bool { return name == "user_code" && typ != "hidden" })
	if err != nil {
		return fmt.Errorf("the verification page: %w", err)
	}
	form.values.Set("user_code", userCode)
	if page, base, err = fetchPage(ctx, client, http.MethodPost, form.action, form.values); err != nil {
		return fmt.Errorf("entering the code: %w", err)
	}
	if form, err = parseForm(page, base, isPasswordInput); err != nil {
		return fmt.Errorf("the page after entering the code: %w", err)
	}
	form.values.Set("username", user.Username)
	form.values.Set("password", user.Password)
	if page, base, err = fetchPage(ctx, client, http.MethodPost, form.action, form.values); err != nil {
		return fmt.Errorf("submitting the login form: %w", err)
	}
	allow, err := buttonTarget(page, base, "Allow")
	if err != nil {
		if msg := loginError(page); msg != "" {
			return fmt.Errorf("device login as %q failed: %s", user.Username, msg)
		}
		return fmt.Errorf("the consent page: %w", err)
	}
	if page, _, err = fetchPage(ctx, client, http.MethodGet, allow, nil); err != nil {
		return fmt.Errorf("pressing Allow: %w", err)
	}
	if !strings.Contains(string(page), "authorization allowed") {
		return fmt.Errorf("pressing Allow: the provider answered: %.300s", page)
	}
	return nil
}

// Requests counts the HTTP requests the provider has served so far, by URL
// path, from its request log.
func (op *OIDCProvider) Requests() (map[string]int, error) {
	data, err := op.Process.Log()
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `msg="http request"`) {
			continue
		}
		for _, field := range strings.Fields(line) {
			if p, ok := strings.CutPrefix(field, "path="); ok {
				counts[p]++
			}
		}
	}
	return counts, nil
}

// browser returns an HTTP client with its own cookie jar that follows
// redirects, except to a URL for which stop reports true.
func browser(stop func(*url.URL) bool) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if stop(req.URL) {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// fetchPage performs one request (a form post when form is not nil),
// following redirects, and returns the page and its URL; anything but 200
// is an error.
func fetchPage(ctx context.Context, client *http.Client, method, u string, form url.Values) ([]byte, *url.URL, error) {
	resp, err := do(ctx, client, method, u, form)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s %s: %s: %.300s", method, resp.Request.URL.Redacted(), resp.Status, page)
	}
	return page, resp.Request.URL, nil
}

// htmlForm is a page's form, ready to submit.
type htmlForm struct {
	action string
	values url.Values
}

// isPasswordInput matches a login form's password field (the device login
// page's has no type).
func isPasswordInput(name, typ string) bool { return typ == "password" || name == "password" }

// parseForm finds the first form in page with an input that want matches
// (by name and type) and returns its absolute action URL and its hidden
// inputs.
func parseForm(page []byte, base *url.URL, want func(name, typ string) bool) (*htmlForm, error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	var found *htmlForm
	var walk func(n *html.Node, form *htmlForm, matched *bool)
	walk = func(n *html.Node, form *htmlForm, matched *bool) {
		if n.Type == html.ElementNode && n.Data == "form" && found == nil {
			f := &htmlForm{action: attr(n, "action"), values: url.Values{}}
			var m bool
			for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
				walk(ch, f, &m)
			}
			if m {
				found = f
			}
			return
		}
		if n.Type == html.ElementNode && n.Data == "input" && form != nil {
			if want(attr(n, "name"), attr(n, "type")) {
				*matched = true
			}
			if attr(n, "type") == "hidden" {
				form.values.Set(attr(n, "name"), attr(n, "value"))
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch, form, matched)
		}
	}
	walk(doc, nil, nil)
	if found == nil {
		return nil, fmt.Errorf("no such form in: %.300s", page)
	}
	action, err := base.Parse(found.action)
	if err != nil {
		return nil, err
	}
	found.action = action.String()
	return found, nil
}

// buttonTarget returns the absolute URL a button labelled label navigates to
// (onclick="location.href='...'"), as a browser would on a click.
func buttonTarget(page []byte, base *url.URL, label string) (string, error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return "", fmt.Errorf("parsing: %w", err)
	}
	var onclick string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "button" && n.FirstChild != nil &&
			n.FirstChild.Type == html.TextNode && strings.TrimSpace(n.FirstChild.Data) == label {
			onclick = attr(n, "onclick")
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc)
	_, target, ok := strings.Cut(onclick, "location.href='")
	target, _, closed := strings.Cut(target, "'")
	if !ok || !closed {
		return "", fmt.Errorf("no %q button that navigates in: %.300s", label, page)
	}
	u, err := base.Parse(target)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// loginError returns the error text the login page shows, if any.
func loginError(page []byte) string {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return ""
	}
	var msg string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "p" && n.FirstChild != nil && n.FirstChild.Type == html.TextNode {
			if t := strings.TrimSpace(n.FirstChild.Data); t != "" {
				msg = t
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc)
	return msg
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func do(ctx context.Context, client *http.Client, method, u string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return client.Do(req)
}

func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	resp, err := do(ctx, client, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

func randomString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
