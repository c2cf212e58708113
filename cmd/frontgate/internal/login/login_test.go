package login

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness is a fake OP, a fake browser and a Config that uses them.
type harness struct {
	op      *fakeOP
	clock   *testClock
	browser *browser
	prompt  *syncBuffer
	cfg     Config
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	clock := newTestClock()
	h := &harness{op: newFakeOP(t, clock), clock: clock, browser: &browser{}, prompt: &syncBuffer{}}
	h.cfg = Config{
		IssuerURL:   h.op.issuer(),
		ClientID:    h.op.client,
		CacheDir:    filepath.Join(t.TempDir(), "cache"),
		OpenBrowser: h.browser.open,
		Prompt:      h.prompt,
		Now:         clock.Now,
		Timeout:     20 * time.Second,
	}
	return h
}

func (h *harness) login(t *testing.T) Credential {
	t.Helper()
	cred, err := Login(context.Background(), h.cfg)
	if err != nil {
		t.Fatalf("Login: %v\nprompt:\n%s", err, h.prompt)
	}
	return cred
}

func TestAuthCodeLoginThenCache(t *testing.T) {
	h := newHarness(t)
	cred := h.login(t)
	if cred.IDToken == "" || !cred.Expiry.Equal(h.clock.Now().Add(time.Hour)) {
		t.Errorf("credential expiry %v, want exp = now+1h", cred.Expiry)
	}
	if got := h.op.authorizations.Load(); got != 1 {
		t.Errorf("authorizations = %d, want 1", got)
	}
	if page := h.browser.lastPage(); !strings.HasPrefix(page, "200 ") || !strings.Contains(page, "Logged in") {
		t.Errorf("browser page = %q", page)
	}
	if scope := h.op.lastScope.Load(); scope != "offline_access openid" {
		t.Errorf("scope = %q, want openid and offline_access", scope)
	}
	if !strings.Contains(h.prompt.String(), "opened a browser") {
		t.Errorf("prompt = %q", h.prompt)
	}
	again := h.login(t)
	if !same(again, cred) || h.op.authorizations.Load() != 1 || h.op.refreshes.Load() != 0 {
		t.Errorf("second login did not come from the cache")
	}
}

func TestNoBrowserPrintsTheURL(t *testing.T) {
	h := newHarness(t)
	h.cfg.OpenBrowser = nil
	done := make(chan error, 1)
	go func() { _, err := Login(context.Background(), h.cfg); done <- err }()
	var authURL string
	for deadline := time.Now().Add(10 * time.Second); authURL == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(h.prompt.String(), "\n") {
			if s := strings.TrimSpace(line); strings.HasPrefix(s, h.op.issuer()+"/authorize?") {
				authURL = s
			}
		}
	}
	if authURL == "" {
		t.Fatalf("no URL printed:\n%s", h.prompt)
	}
	_ = h.browser.open(authURL) // the user pastes it
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRefreshBeforeExpiryAndInteractiveFallback(t *testing.T) {
	tests := []struct {
		name            string
		setup           func(h *harness)
		advance         time.Duration
		wantRefreshes   int32
		wantAuthorizes  int32
		wantSameToken   bool
		wantPromptMatch string
	}{
		{name: "valid token is reused", advance: 30 * time.Minute, wantAuthorizes: 1, wantSameToken: true},
		{name: "token about to expire is refreshed", advance: time.Hour - 30*time.Second, wantRefreshes: 1, wantAuthorizes: 1},
		{name: "expired token is refreshed", advance: 2 * time.Hour, wantRefreshes: 1, wantAuthorizes: 1},
		{
			name: "failed refresh falls back to interactive login", advance: 2 * time.Hour,
			setup:         func(h *harness) { h.op.refreshFails = true },
			wantRefreshes: 1, wantAuthorizes: 2, wantPromptMatch: "cannot refresh the token (the issuer refused the refresh token (invalid_grant: refresh token revoked)); logging in again",
		},
		{
			name: "without offline_access support there is no refresh token", advance: 2 * time.Hour,
			setup:          func(h *harness) { h.op.scopesSupported = []string{"openid"} },
			wantAuthorizes: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			first := h.login(t)
			h.clock.Advance(tt.advance)
			second := h.login(t)
			if got := h.op.refreshes.Load(); got != tt.wantRefreshes {
				t.Errorf("refreshes = %d, want %d", got, tt.wantRefreshes)
			}
			if got := h.op.authorizations.Load(); got != tt.wantAuthorizes {
				t.Errorf("authorizations = %d, want %d", got, tt.wantAuthorizes)
			}
			if same(first, second) != tt.wantSameToken {
				t.Errorf("same token = %v, want %v", same(first, second), tt.wantSameToken)
			}
			if !second.Expiry.After(h.clock.Now().Add(DefaultMinValidity)) {
				t.Errorf("returned a token valid until %v at %v", second.Expiry, h.clock.Now())
			}
			if tt.wantPromptMatch != "" && !strings.Contains(h.prompt.String(), tt.wantPromptMatch) {
				t.Errorf("prompt lacks %q:\n%s", tt.wantPromptMatch, h.prompt)
			}
			// And the result is cached: a third call makes no request.
			before := h.op.refreshes.Load() + h.op.authorizations.Load()
			if third := h.login(t); !same(third, second) || h.op.refreshes.Load()+h.op.authorizations.Load() != before {
				t.Error("refreshed token was not cached")
			}
		})
	}
}

func TestParallelLoginsLogInOnce(t *testing.T) {
	h := newHarness(t)
	const n = 8
	creds := make([]Credential, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { creds[i], errs[i] = Login(context.Background(), h.cfg) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		if !same(creds[i], creds[0]) {
			t.Errorf("login %d got another token", i)
		}
	}
	if got := h.op.authorizations.Load(); got != 1 {
		t.Errorf("%d parallel logins ran %d interactive logins, want 1", n, got)
	}
}

func TestDeviceGrant(t *testing.T) {
	t.Run("approved after a pending poll", func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Grant = GrantDevice
		h.cfg.OpenBrowser = nil
		h.op.devicePending = 1
		cred := h.login(t)
		if cred.IDToken == "" || h.op.deviceAuths.Load() != 1 || h.op.authorizations.Load() != 0 {
			t.Errorf("device grant not used: %d device authorizations, %d authorizations", h.op.deviceAuths.Load(), h.op.authorizations.Load())
		}
		for _, want := range []string{"enter the code WDJB-MJHT", h.op.issuer() + "/device"} {
			if !strings.Contains(h.prompt.String(), want) {
				t.Errorf("prompt lacks %q:\n%s", want, h.prompt)
			}
		}
	})
	t.Run("denied", func(t *testing.T) {
		h := newHarness(t)
		h.cfg.Grant = GrantDevice
		h.op.denyDevice = true
		_, err := Login(context.Background(), h.cfg)
		if !IsKind(err, KindCancelled) {
			t.Fatalf("err = %v, want cancelled", err)
		}
	})
}

func TestIDTokenIsVerifiedBeforeCaching(t *testing.T) {
	tests := []struct {
		name  string
		setup func(op *fakeOP)
		want  string
	}{
		{"signed by an unknown key", func(op *fakeOP) { op.signWithRogue = true }, "does not verify"},
		{"wrong nonce", func(op *fakeOP) { op.wrongNonce = true }, "nonce"},
		{"no ID token", func(op *fakeOP) { op.omitIDToken = true }, "without an ID token"},
		{"for another client", func(op *fakeOP) { op.audience = "someone-else" }, "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.setup(h.op)
			_, err := Login(context.Background(), h.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			entries, _ := filepath.Glob(filepath.Join(h.cfg.CacheDir, "*"+cacheSuffix))
			if len(entries) != 0 {
				t.Errorf("cached %v after a failed verification", entries)
			}
		})
	}
}

func TestCallbackWithWrongStateIsRefused(t *testing.T) {
	h := newHarness(t)
	opened := make(chan string, 1)
	h.cfg.OpenBrowser = func(u string) error { opened <- u; return nil }
	done := make(chan error, 1)
	go func() { _, err := Login(context.Background(), h.cfg); done <- err }()
	var authURL string
	select {
	case authURL = <-opened:
	case err := <-done:
		t.Fatalf("login ended before opening the browser: %v", err)
	}
	redirect := mustQuery(t, authURL, "redirect_uri")
	resp, err := http.Get(redirect + "?state=forged&code=stolen")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forged callback got %d, want 400", resp.StatusCode)
	}
	resp, err = http.Get(strings.TrimSuffix(redirect, CallbackPath) + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("other path got %d, want 404", resp.StatusCode)
	}
	_ = h.browser.open(authURL)
	if err := <-done; err != nil {
		t.Fatalf("the real callback after a forged one failed: %v", err)
	}
}

func TestLogout(t *testing.T) {
	h := newHarness(t)
	h.login(t)
	if err := Logout(context.Background(), h.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(newCache(&h.cfg).path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cache file still there: %v", err)
	}
	h.login(t)
	if got := h.op.authorizations.Load(); got != 2 {
		t.Errorf("after logout, authorizations = %d, want 2", got)
	}
	t.Run("logout twice is fine", func(t *testing.T) {
		if err := Logout(context.Background(), h.cfg); err != nil {
			t.Fatal(err)
		}
		if err := Logout(context.Background(), h.cfg); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("all", func(t *testing.T) {
		h.login(t)
		other := h.cfg
		other.Scopes = []string{"email"}
		if _, err := Login(context.Background(), other); err != nil {
			t.Fatal(err)
		}
		n, err := LogoutAll(h.cfg.CacheDir)
		if err != nil || n != 2 {
			t.Fatalf("LogoutAll = %d, %v; want 2 entries removed", n, err)
		}
	})
}

func TestErrorsAreOneLineAndSayWhatToDo(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	notAnIssuer := httptest.NewServer(http.NotFoundHandler())
	defer notAnIssuer.Close()
	tlsIssuer := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsIssuer.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsIssuer.StartTLS()
	defer tlsIssuer.Close()

	tests := []struct {
		name    string
		setup   func(h *harness)
		ctx     func() (context.Context, context.CancelFunc)
		kind    Kind
		want    []string
		waitFor time.Duration
	}{
		{
			name: "issuer unreachable", setup: func(h *harness) { h.cfg.IssuerURL = closedURL },
			kind: KindIssuerUnreachable, want: []string{"cannot reach the issuer at " + closedURL, "check --issuer-url"},
		},
		{
			name: "issuer certificate not trusted", setup: func(h *harness) { h.cfg.IssuerURL = tlsIssuer.URL },
			kind: KindIssuerUnreachable, want: []string{"is not trusted", "--ca-file"},
		},
		{
			name: "not an issuer", setup: func(h *harness) { h.cfg.IssuerURL = notAnIssuer.URL },
			kind: KindIssuer, want: []string{"is not an OpenID issuer", "404", "check --issuer-url"},
		},
		{
			name: "wrong client secret", setup: func(h *harness) { h.cfg.ClientSecret = "wrong" },
			kind: KindClientMisconfigured, want: []string{`refused client "kubectl"`, "invalid_client", "--client-secret"},
		},
		{
			name: "issuer rejects the client at the authorization endpoint", setup: func(h *harness) { h.op.denyAuthorize = "unauthorized_client" },
			kind: KindClientMisconfigured, want: []string{"unauthorized_client", "--client-id"},
		},
		{
			name: "device grant not offered", setup: func(h *harness) { h.op.noDevice = true; h.cfg.Grant = GrantDevice },
			kind: KindClientMisconfigured, want: []string{"does not offer the device grant", "--grant auth-code"},
		},
		{
			name: "user cancelled at the issuer", setup: func(h *harness) { h.op.denyAuthorize = "access_denied" },
			kind: KindCancelled, want: []string{"denied", "run the command again"},
		},
		{
			name: "user interrupted", setup: func(h *harness) { h.cfg.OpenBrowser = func(string) error { return nil } },
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(300*time.Millisecond, cancel)
				return ctx, cancel
			},
			kind: KindCancelled, want: []string{"login cancelled"},
		},
		{
			name: "timeout", setup: func(h *harness) {
				h.cfg.OpenBrowser = func(string) error { return nil }
				h.cfg.Timeout = 300 * time.Millisecond
			},
			kind: KindTimeout, want: []string{"no login completed within 300ms", "--timeout", "redirect URI http://127.0.0.1:"},
		},
		{
			name: "bad flags", setup: func(h *harness) {
				h.cfg.IssuerURL = "http://issuer.example"
				h.cfg.ClientID = ""
				h.cfg.Grant = "implicit"
			},
			kind: KindConfig, want: []string{"must use https", "--client-id is required", `--grant "implicit"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.setup(h)
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			_, err := Login(ctx, h.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind {
				t.Fatalf("err = %v (%T), want kind %d", err, err, tt.kind)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("message is not one line: %q", msg)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			if h.cfg.ClientSecret != "" && strings.Contains(msg+h.prompt.String(), h.cfg.ClientSecret) {
				t.Error("the client secret was printed")
			}
		})
	}
}

func mustQuery(t *testing.T, rawURL, key string) string {
	t.Helper()
	i := strings.Index(rawURL, "?")
	if i < 0 {
		t.Fatalf("no query in %s", rawURL)
	}
	q, err := url.ParseQuery(rawURL[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return q.Get(key)
}

// same reports whether two credentials are the same token.
func same(a, b Credential) bool {
	return a.IDToken == b.IDToken && a.Expiry.Equal(b.Expiry)
}

func TestConfidentialClient(t *testing.T) {
	h := newHarness(t)
	h.op.secret = "s3cret-value"
	h.cfg.ClientSecret = "s3cret-value"
	h.login(t)
	h.clock.Advance(2 * time.Hour)
	h.login(t) // refresh, authenticated the same way
	if h.op.refreshes.Load() != 1 || h.op.authorizations.Load() != 1 {
		t.Errorf("refreshes %d, authorizations %d", h.op.refreshes.Load(), h.op.authorizations.Load())
	}
	if strings.Contains(h.prompt.String()+h.browser.lastPage(), "s3cret-value") {
		t.Error("the client secret was shown")
	}
}
