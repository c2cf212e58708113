package login

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// callback is one redirect to the loopback listener that carried the right
// state. The grant's outcome goes back on result, for the page the browser
// shows.
type callback struct {
	code, errCode, errDescription string
	result                        chan error
}

// authCode runs the authorization code grant with PKCE on a loopback
// redirect.
func (is *issuer) authCode(ctx context.Context) (*cacheEntry, error) {
	c := is.cfg
	ln, host, err := listenLoopback(c.listenAddrs())
	if err != nil {
		return nil, newError(KindConfig, err, "cannot listen for the login redirect (%v): free the port or give another loopback address with --listen", err)
	}
	redirect := "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + CallbackPath
	oc := *is.oauth
	oc.RedirectURL = redirect
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	authURL := oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	callbacks := make(chan callback, 1)
	srv := &http.Server{
		Handler:           &callbackHandler{state: state, callbacks: callbacks},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // lets the callback page finish
	}()

	is.openOrPrint(authURL)
	hint := fmt.Sprintf("if the browser showed an error from the issuer, make sure it allows the redirect URI %s for client %q", redirect, c.ClientID)
	select {
	case <-ctx.Done():
		return nil, contextError(ctx, c.timeout(), hint)
	case cb := <-callbacks:
		entry, err := is.finishAuthCode(ctx, &oc, cb, verifier, nonce)
		cb.result <- err
		return entry, err
	}
}

// finishAuthCode exchanges the code from the callback and verifies the ID
// token.
func (is *issuer) finishAuthCode(ctx context.Context, oc *oauth2.Config, cb callback, verifier, nonce string) (*cacheEntry, error) {
	if cb.errCode != "" {
		return nil, is.tokenError(ctx, &oauth2.RetrieveError{ErrorCode: cb.errCode, ErrorDescription: cb.errDescription}, "")
	}
	if cb.code == "" {
		return nil, newError(KindIssuer, nil, "%s redirected back without a code: run the command again", is.cfg.IssuerURL)
	}
	tok, err := oc.Exchange(ctx, cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, is.tokenError(ctx, err, "")
	}
	return is.verified(ctx, tok, nonce)
}

// openOrPrint opens url in the browser, or prints it when it cannot.
func (is *issuer) openOrPrint(url string) {
	c := is.cfg
	w := c.prompt()
	if c.OpenBrowser != nil {
		err := c.OpenBrowser(url)
		if err == nil {
			fmt.Fprintf(w, "frontgate: opened a browser to log in at %s; waiting for you to finish there (Ctrl-C to cancel)\n", c.IssuerURL)
			return
		}
		fmt.Fprintf(w, "frontgate: cannot open a browser (%s)\n", oneLine(err.Error()))
	}
	fmt.Fprintf(w, "frontgate: to log in at %s, open this URL in a browser on this machine (on another machine, use --grant device):\n\n    %s\n\n", c.IssuerURL, url)
}

// listenLoopback listens on the first of addrs that is free and returns the
// host as written there.
func listenLoopback(addrs []string) (net.Listener, string, error) {
	var errs []error
	for _, addr := range addrs {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return ln, host, nil
	}
	return nil, "", errors.Join(errs...)
}

// randomString returns 256 random bits, base64url.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// callbackHandler receives the redirect from the issuer.
type callbackHandler struct {
	state     string
	callbacks chan<- callback
	taken     atomic.Bool
}

// ServeHTTP implements http.Handler.
func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != CallbackPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(h.state)) != 1 {
		writePage(w, http.StatusBadRequest, "This is not the login frontgate is waiting for", "The state does not match: start over from the terminal.")
		return
	}
	if !h.taken.CompareAndSwap(false, true) {
		writePage(w, http.StatusConflict, "Already done", "This login has already been handled; see the terminal.")
		return
	}
	cb := callback{code: q.Get("code"), errCode: q.Get("error"), errDescription: q.Get("error_description"), result: make(chan error, 1)}
	h.callbacks <- cb // buffered, and only one callback gets here
	select {
	case err := <-cb.result:
		if err != nil {
			writePage(w, http.StatusOK, "Login failed", err.Error())
			return
		}
		writePage(w, http.StatusOK, "Logged in", "You can close this window and return to the terminal.")
	case <-r.Context().Done():
	}
}

// writePage answers the browser with a minimal HTML page.
func writePage(w http.ResponseWriter, code int, title, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>frontgate: %[1]s</title></head><body><h1>%[1]s</h1><p>%[2]s</p></body></html>\n",
		html.EscapeString(title), html.EscapeString(message))
}
