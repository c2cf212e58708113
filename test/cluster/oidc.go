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

// The example OpenID Provider's clients. "web" and "api" are confidential
// clients with client secret [ClientSecret]; "native" is a public client
// that uses PKCE.
const (
	ClientWeb    = "web"
	ClientAPI    = "api"
	ClientNative = "native"
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
		op.Process, err = c.start(fmt.Sprintf("oidc-provider-%d", n), c.Tools.OIDCProvider, nil, []string{
			fmt.Sprintf("PORT=%d", port),
			"REDIRECT_URI=" + RedirectURI,
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

// discovery is the part of the discovery document the flow needs.
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// IDToken obtains an ID token for user from the provider the way a person
// with a browser would, through the authorization-code flow: GET the
// authorization endpoint, follow the redirects to the login form, submit it
// with the user's name and password, follow the redirects up to (not into)
// the redirect URI, and exchange the code at the token endpoint. clientID is
// [ClientWeb], [ClientAPI] (confidential, with [ClientSecret]) or
// [ClientNative] (PKCE). Extra scopes are added to "openid". The token is
// recorded with [Cluster.RecordSecret].
func (op *OIDCProvider) IDToken(ctx context.Context, clientID string, user User, scopes ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), RedirectURI) {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}

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
	resp, err := do(ctx, client, http.MethodGet, disc.AuthorizationEndpoint+"?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("authorization request: %w", err)
	}
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("authorization request: want the login page, got %s: %s", resp.Status, page)
	}
	form, err := parseLoginForm(page, resp.Request.URL)
	if err != nil {
		return "", err
	}
	form.values.Set("username", user.Username)
	form.values.Set("password", user.Password)
	resp, err = do(ctx, client, http.MethodPost, form.action, form.values)
	if err != nil {
		return "", fmt.Errorf("submitting the login form: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	loc, _ := resp.Location()
	if resp.StatusCode/100 != 3 || loc == nil || !strings.HasPrefix(loc.String(), RedirectURI) {
		if msg := loginError(body); msg != "" {
			return "", fmt.Errorf("login as %q failed: %s", user.Username, msg)
		}
		return "", fmt.Errorf("login: want a redirect to %s, got %s: %.300s", RedirectURI, resp.Status, body)
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
	resp, err = client.Do(req)
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

// loginForm is the login page's form, ready to submit.
type loginForm struct {
	action string
	values url.Values
}

// parseLoginForm finds the form with a password field in page and returns
// its absolute action URL and its hidden inputs.
func parseLoginForm(page []byte, base *url.URL) (*loginForm, error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return nil, fmt.Errorf("parsing the login page: %w", err)
	}
	var found *loginForm
	var walk func(n *html.Node, form *loginForm, hasPassword *bool)
	walk = func(n *html.Node, form *loginForm, hasPassword *bool) {
		if n.Type == html.ElementNode && n.Data == "form" && found == nil {
			f := &loginForm{action: attr(n, "action"), values: url.Values{}}
			var pw bool
			for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
				walk(ch, f, &pw)
			}
			if pw {
				found = f
			}
			return
		}
		if n.Type == html.ElementNode && n.Data == "input" && form != nil {
			switch attr(n, "type") {
			case "password":
				*hasPassword = true
			case "hidden":
				form.values.Set(attr(n, "name"), attr(n, "value"))
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch, form, hasPassword)
		}
	}
	walk(doc, nil, nil)
	if found == nil {
		return nil, fmt.Errorf("no login form with a password field in: %.300s", page)
	}
	action, err := base.Parse(found.action)
	if err != nil {
		return nil, err
	}
	found.action = action.String()
	return found, nil
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
