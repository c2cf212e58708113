package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/frontgate/frontgate/auth"
	"github.com/frontgate/frontgate/auth/clientcert"
	"github.com/frontgate/frontgate/auth/oidc"
	"github.com/frontgate/frontgate/auth/reload"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/explain"
	"github.com/frontgate/frontgate/cmd/frontgate/internal/pki"
	"github.com/frontgate/frontgate/proxy"
)

// maxTokenFileBytes bounds what --token-file reads.
const maxTokenFileBytes = 1 << 20

// explainOptions are explain's own flags; the serve flags live in
// serveOptions.
type explainOptions struct {
	token, tokenFile, certFile string
	skipSignature              bool
	output                     string
	timeout                    time.Duration
}

// tokenSource is one configured source of bearer tokens, as `frontgate
// explain` sees it.
type tokenSource struct {
	// config names where it is configured, e.g. "--oidc-* flags".
	config  string
	explain *explainFunc
}

// explainFunc is the offline explanation (oidc.Authenticator.Explain) of the
// first token source a configuration loaded. explain never reloads, so that
// source is the one in use.
type explainFunc struct {
	f func(ctx context.Context, token string) *oidc.Explanation
}

// setFirst records f unless a function was recorded already.
func (e *explainFunc) setFirst(f func(ctx context.Context, token string) *oidc.Explanation) {
	if e.f == nil {
		e.f = f
	}
}

func newExplainCommand(d deps) *cobra.Command {
	o := newServeOptions(d.getenv)
	e := &explainOptions{output: "text", timeout: 10 * time.Second}
	// The --config file holds serve's settings only: explain's own flags
	// (the token above all) never come from it.
	serveFlags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(serveFlags)
	cmd := &cobra.Command{
		Use:   "explain (--token-file FILE | --token JWT | --cert FILE)",
		Short: "Show, offline, the identity frontgate would forward for a token or client certificate",
		Long: `explain shows what frontgate serve, with the same flags and --config file,
would do with one bearer token or client certificate: the identity it would
forward (username, uid, groups, extra), which authenticator and which entry
matched, the result of every validation rule, and the exact identity headers
-- or exactly why it would refuse, with the status and message serve would send.

No kube-apiserver is needed. For a token the issuer's discovery document and
keys are fetched to verify the signature, unless --skip-signature is given:
then the claims are decoded without verification, clearly marked UNVERIFIED,
and everything else is checked as serve would. The token is never printed
or logged.

The exit status is 0 when frontgate would forward the request (or pass the
token through), and 1 when it would refuse it or explain cannot run.`,
		Example: `  # A token from a file, with serve's config file:
  frontgate explain --config /etc/frontgate/config.yaml --token-file token.jwt

  # The token of kubectl's exec plugin, from stdin, claims only, as JSON:
  frontgate login --issuer-url https://login.example.com --client-id kubernetes | jq -r .status.token |
    frontgate explain --config config.yaml --token-file - --skip-signature -o json

  # A client certificate with a mapping file:
  frontgate explain --client-ca-file corp=corp-ca.pem --client-cert-mapping mapping.yaml --cert alice.crt`,
		// A stray argument may be the token itself: never echo it.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return errors.New("explain takes no arguments; give the token with --token-file (or --token) and a certificate with --cert")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.configFile != "" {
				if err := applyConfigFile(serveFlags, o.configFile); err != nil {
					return err
				}
			}
			o.complete(cmd.Flags())
			if err := e.validate(o); err != nil {
				return err
			}
			logLevel := "warn"
			if cmd.Flags().Changed("log-level") {
				logLevel = o.logLevel
			}
			logger, err := newLogger(d.stderr, o.logFormat, logLevel)
			if err != nil {
				return err
			}
			ctx, cancel := d.signalContext()
			defer cancel()
			registry := prometheus.NewRegistry()
			watches := &fileWatches{metrics: reload.NewMetrics(registry), logger: logger}
			sources, err := o.buildIdentitySources(logger, registry, watches)
			if err != nil {
				return err
			}

			var report *explain.Report
			var credential string
			if e.certFile != "" {
				credential = "client certificate"
				chain, err := pki.ReadCertificates(e.certFile)
				if err != nil {
					return fmt.Errorf("--cert: %w", err)
				}
				report = explainCertificate(o, sources, chain)
			} else {
				credential = "token"
				if len(sources.tokens) == 0 {
					return errors.New("no token issuer is configured (--oidc-issuer-url with --oidc-client-id, or --authentication-config), so serve would answer every bearer token with 401")
				}
				token, err := e.readToken(cmd.InOrStdin())
				if err != nil {
					return err
				}
				report = e.explainToken(ctx, o, sources, token)
			}

			write := explain.WriteText
			if e.output == "json" {
				write = explain.WriteJSON
			}
			if err := write(d.stdout, report); err != nil {
				return err
			}
			if report.Outcome == explain.Refuse {
				return fmt.Errorf("frontgate would refuse this %s: %d %s", credential, report.Status, report.Reason)
			}
			return nil
		},
	}
	cmd.Flags().AddFlagSet(serveFlags)
	fs := cmd.Flags()
	fs.StringVar(&e.token, "token", e.token, "the bearer token (an OIDC ID token) to explain; visible to other local users in the process list, so prefer --token-file")
	fs.StringVar(&e.tokenFile, "token-file", e.tokenFile, "file holding the bearer token to explain; - reads it from stdin")
	fs.StringVar(&e.certFile, "cert", e.certFile, "PEM file of the client certificate to explain, leaf first, then any intermediates (needs --client-ca-file)")
	fs.BoolVar(&e.skipSignature, "skip-signature", e.skipSignature, "do not fetch the issuer's keys: decode the token's claims WITHOUT verifying its signature and explain them, marked unverified")
	fs.StringVarP(&e.output, "output", "o", e.output, "output format: text or json")
	fs.DurationVar(&e.timeout, "timeout", e.timeout, "how long to wait for the issuers' discovery documents and keys")
	return cmd
}

// validate checks what explain needs: its own flags and the identity
// sources. Unlike serve it needs no upstream, proxy certificate or
// listener.
func (e *explainOptions) validate(o *serveOptions) error {
	var errs []error
	given := 0
	for _, set := range []bool{e.token != "", e.tokenFile != "", e.certFile != ""} {
		if set {
			given++
		}
	}
	if given != 1 {
		errs = append(errs, errors.New("give exactly one of --token-file, --token or --cert"))
	}
	if e.certFile != "" && e.skipSignature {
		errs = append(errs, errors.New("--skip-signature applies to tokens; a certificate is always verified against --client-ca-file, offline"))
	}
	if e.certFile != "" && len(o.clientCAFiles) == 0 {
		errs = append(errs, errors.New("--cert needs --client-ca-file: without it serve accepts no client certificate"))
	}
	if e.output != "text" && e.output != "json" {
		errs = append(errs, fmt.Errorf("--output %q: use text or json", e.output))
	}
	if e.timeout <= 0 {
		errs = append(errs, errors.New("--timeout must be positive"))
	}
	errs = append(errs, o.validateIdentitySources()...)
	if _, err := parseLevel(o.logLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// readToken returns the token of --token or --token-file, trimmed. Errors
// never contain it.
func (e *explainOptions) readToken(stdin io.Reader) (string, error) {
	raw := e.token
	if e.tokenFile != "" {
		var r io.Reader = stdin
		if e.tokenFile != "-" {
			f, err := os.Open(e.tokenFile)
			if err != nil {
				return "", fmt.Errorf("--token-file: %w", err)
			}
			defer f.Close()
			r = f
		}
		data, err := io.ReadAll(io.LimitReader(r, maxTokenFileBytes+1))
		if err != nil {
			return "", fmt.Errorf("--token-file %s: %w", e.tokenFile, err)
		}
		if len(data) > maxTokenFileBytes {
			return "", fmt.Errorf("--token-file %s: larger than %d bytes; it must hold one token", e.tokenFile, maxTokenFileBytes)
		}
		raw = string(data)
	}
	token := strings.TrimSpace(raw)
	if token == "" {
		if e.tokenFile != "" {
			return "", fmt.Errorf("--token-file %s holds no token", e.tokenFile)
		}
		return "", errors.New("--token is empty")
	}
	return token, nil
}

// explainToken reports what serve would do with token: the offline
// explanation of the token source its issuer selects and, unless
// --skip-signature, serve's own authenticator once the issuers are ready.
func (e *explainOptions) explainToken(ctx context.Context, o *serveOptions, s *identitySources, token string) *explain.Report {
	r := &explain.Report{Source: explain.Source{Credential: "bearer token"}}
	var x *oidc.Explanation
	for _, t := range s.tokens {
		x = t.explain.f(ctx, token)
		r.Source.Config = t.config
		if auth.ReasonOf(x.Err) != auth.ReasonInvalidIssuer {
			break
		}
	}
	r.Source.Issuer, r.Source.Claims = x.Issuer, x.Claims
	if x.MappedBy != r.Source.Config {
		r.Source.Entry = x.MappedBy
	}

	signature := explain.Check{Rule: "signature", Requirement: "verifies with a key of the issuer's JWKS"}
	mapped, authErr := x.Identity, x.Err
	var notReady error
	switch {
	case e.skipSignature:
		signature.Result, signature.Message = explain.Skip, "not checked (--skip-signature): the claims are UNVERIFIED"
		if authErr == nil && mapped != nil {
			_, _, authErr = refuseReserved(mapped, o.allowReserved)
		}
	default:
		stop := runTokenSources(ctx, s)
		defer stop()
		if notReady = waitReady(ctx, s.ready, e.timeout); notReady != nil {
			signature.Result, signature.Message = explain.Skip, fmt.Sprintf("not checked: the issuers were not ready within --timeout %s", e.timeout)
			break
		}
		authCtx, cancel := context.WithTimeout(ctx, e.timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(authCtx, http.MethodGet, "https://frontgate.invalid/api", nil)
		if err != nil {
			panic(err) // a constant, valid URL
		}
		req.Header.Set("Authorization", "Bearer "+token)
		// serve's own authenticator: every source, the token cache and the
		// reserved-name rule, exactly as a request meets them.
		id, ok, err := s.authenticator.AuthenticateRequest(req)
		authErr = err
		if ok {
			mapped = id
		} else if err == nil {
			authErr = &auth.Error{Reason: "Unauthorized", Message: "no credentials: send a bearer token (an OIDC ID token) in the Authorization header"}
		}
		signature.Result, signature.Message = signatureResult(ok, err)
		r.Verified = signature.Result == explain.Pass
	}
	r.Checks = append(r.Checks, signature)
	for _, c := range x.Checks {
		result := map[string]string{oidc.CheckPassed: explain.Pass, oidc.CheckFailed: explain.Fail, oidc.CheckSkipped: explain.Skip}[c.Outcome]
		r.Checks = append(r.Checks, explain.Check{Rule: c.Rule, Requirement: c.Requirement, Result: result, Message: c.Message})
	}
	if mapped != nil {
		r.Source.Authenticator = mapped.Source
	}

	switch {
	case notReady != nil:
		// serve answers every request with 503 until its issuers are ready.
		r.Checks = append(r.Checks, identityChecks(o, mapped)...)
		r.Identity = identityOf(mapped)
		refusal := proxy.RefuseNotReady(notReady)
		r.Outcome, r.Status, r.Reason, r.Message = explain.Refuse, refusal.Code, auth.ReasonIssuerUnavailable, refusal.Message
		return r
	case authErr != nil && o.tokenPassthrough && auth.Unrecognised(authErr):
		r.Outcome = explain.Passthrough
		return r
	}
	finish(r, o, mapped, authErr)
	return r
}

// signatureResult tells from serve's verdict on a token whether its
// signature was checked and held: auth/oidc verifies the signature before
// the claims, and checks format, issuer and algorithm before the signature.
func signatureResult(ok bool, err error) (string, string) {
	if ok {
		return explain.Pass, "verified with the issuer's keys"
	}
	switch auth.ReasonOf(err) {
	case auth.ReasonUnknownKey, auth.ReasonInvalidSignature:
		return explain.Fail, err.Error()
	case auth.ReasonMalformedToken, auth.ReasonInvalidIssuer, auth.ReasonUnsupportedAlg, auth.ReasonIssuerUnavailable, "Unauthorized", "Unknown":
		return explain.Skip, "not checked: the token was refused before its signature (see below)"
	default:
		return explain.Pass, "verified with the issuer's keys"
	}
}

// runTokenSources runs the token sources as serve does (issuer discovery
// and keys) until the returned function is called; that function waits for
// them to stop.
func runTokenSources(ctx context.Context, s *identitySources) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, run := range s.background {
		wg.Go(func() { run(ctx) })
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// waitReady waits until ready returns nil, ctx ends or timeout passes, and
// returns ready's last error.
func waitReady(ctx context.Context, ready func() error, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-deadline.C:
			return err
		case <-tick.C:
		}
	}
}

// explainCertificate reports what serve would do with a client certificate
// presented in the TLS handshake.
func explainCertificate(o *serveOptions, s *identitySources, chain []*x509.Certificate) *explain.Report {
	leaf := chain[0]
	sum := sha256.Sum256(leaf.Raw)
	r := &explain.Report{Source: explain.Source{
		Credential: "client certificate",
		Config:     "--client-ca-file " + strings.Join(o.clientCAFiles, ", "),
		Certificate: &explain.Certificate{
			Subject:     leaf.Subject.String(),
			Issuer:      leaf.Issuer.String(),
			Serial:      leaf.SerialNumber.Text(16),
			NotBefore:   leaf.NotBefore,
			NotAfter:    leaf.NotAfter,
			SHA256:      hex.EncodeToString(sum[:]),
			ChainLength: len(chain),
		},
	}}
	if o.clientCertMapping != "" {
		r.Source.Config += " with --client-cert-mapping " + o.clientCertMapping
	}
	id, ok, err := s.certs.AuthenticateCertificates(chain)
	check := explain.Check{Rule: "certificate", Requirement: "valid now, chains to a --client-ca-file CA, allows clientAuth, not revoked; a mapping entry applies"}
	var mapped *auth.Identity
	switch {
	case ok:
		mapped = id
		check.Result, check.Message = explain.Pass, "mapped by "+id.Source
		r.Source.Authenticator = id.Source
		r.Source.Entry = strings.TrimPrefix(id.Source, clientcert.SourcePrefix)
		_, _, err = refuseReserved(id, o.allowReserved)
	case err == nil:
		err = &auth.Error{Reason: auth.ReasonInvalidCertificate, Message: "no certificate in --cert"}
		fallthrough
	default:
		check.Result, check.Message = explain.Fail, err.Error()
	}
	reason := auth.ReasonOf(err)
	r.Verified = ok || reason == auth.ReasonNoCertificateMapping || reason == auth.ReasonCertificateMapping || reason == auth.ReasonReservedIdentity
	r.Checks = append(r.Checks, check)
	finish(r, o, mapped, err)
	return r
}

// refuseReserved applies serve's reserved-name rule (auth.RefuseReserved)
// to an established identity.
func refuseReserved(id *auth.Identity, allowed []string) (*auth.Identity, bool, error) {
	established := auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, bool, error) { return id, true, nil })
	return auth.RefuseReserved(established, allowed).AuthenticateRequest(&http.Request{Header: http.Header{}})
}

// finish adds the checks of the established identity and the verdict, as
// serve's proxy handler decides it: authErr is the authenticator's error.
func finish(r *explain.Report, o *serveOptions, mapped *auth.Identity, authErr error) {
	r.Checks = append(r.Checks, identityChecks(o, mapped)...)
	r.Identity = identityOf(mapped)
	if authErr != nil {
		refusal := proxy.RefuseAuthentication(authErr)
		r.Outcome, r.Status, r.Reason, r.Message = explain.Refuse, refusal.Code, auth.ReasonOf(authErr), refusal.Message
		return
	}
	names := o.headerNames()
	headers, err := proxy.IdentityHeaders(mapped, names, proxy.Limits{MaxGroups: o.maxGroups, MaxHeaderBytes: o.maxIdentityHeaderBytes})
	if err != nil {
		refusal := proxy.RefuseIdentity(err)
		reason := auth.ReasonOf(err)
		if refusal.Code == http.StatusRequestHeaderFieldsTooLarge {
			reason = "RequestHeaderFieldsTooLarge"
		}
		r.Outcome, r.Status, r.Reason, r.Message = explain.Refuse, refusal.Code, reason, refusal.Message
		return
	}
	r.Outcome, r.Headers = explain.Forward, headerLines(headers, names)
}

// identityChecks reports the rules serve applies to every established
// identity, each with proxy.IdentityHeaders or auth.RefuseReserved
// themselves; none when there is no identity.
func identityChecks(o *serveOptions, id *auth.Identity) []explain.Check {
	if id == nil {
		return nil
	}
	names := o.headerNames()
	result := func(err error, passed string) (string, string) {
		if err != nil {
			return explain.Fail, err.Error()
		}
		return explain.Pass, passed
	}
	reserved := explain.Check{Rule: "--allow-reserved-identity", Requirement: "no system: username or group unless listed"}
	_, _, err := refuseReserved(id, o.allowReserved)
	reserved.Result, reserved.Message = result(err, "")

	values := explain.Check{Rule: "identity values", Requirement: "a username; valid UTF-8 without control characters"}
	values.Result, values.Message = result(id.Validate(), "")
	checks := []explain.Check{reserved, values}

	groups := explain.Check{Rule: "--max-groups", Requirement: limitText(o.maxGroups, "groups")}
	size := explain.Check{Rule: "--max-identity-header-bytes", Requirement: limitText(o.maxIdentityHeaderBytes, "bytes of identity headers")}
	if values.Result == explain.Fail {
		groups.Result, groups.Message = explain.Skip, "the identity cannot be encoded"
		size.Result, size.Message = explain.Skip, groups.Message
		return append(checks, groups, size)
	}
	_, err = proxy.IdentityHeaders(id, names, proxy.Limits{MaxGroups: o.maxGroups})
	groups.Result, groups.Message = result(err, fmt.Sprintf("%d group(s)", len(id.Groups)))
	unlimited, _ := proxy.IdentityHeaders(id, names, proxy.Limits{})
	_, err = proxy.IdentityHeaders(id, names, proxy.Limits{MaxHeaderBytes: o.maxIdentityHeaderBytes})
	size.Result, size.Message = result(err, fmt.Sprintf("%d bytes", wireBytes(headerLines(unlimited, names))))
	return append(checks, groups, size)
}

// limitText describes a limit of --max-* flags, where 0 means none.
func limitText(limit int, what string) string {
	if limit == 0 {
		return "no limit"
	}
	return fmt.Sprintf("at most %d %s", limit, what)
}

// headerLines orders the identity headers as a person reads them: user,
// uid, groups, then extras by name.
func headerLines(h http.Header, names proxy.HeaderNames) []explain.Header {
	first := []string{textproto.CanonicalMIMEHeaderKey(names.Username[0])}
	if len(names.UID) > 0 {
		first = append(first, textproto.CanonicalMIMEHeaderKey(names.UID[0]))
	}
	first = append(first, textproto.CanonicalMIMEHeaderKey(names.Group[0]))
	var rest []string
	for name := range h {
		if !slices.Contains(first, name) {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	var lines []explain.Header
	for _, name := range append(first, rest...) {
		for _, v := range h[name] {
			lines = append(lines, explain.Header{Name: name, Value: v})
		}
	}
	return lines
}

// wireBytes is the size of lines in HTTP/1.1, "Name: value\r\n" each, as
// --max-identity-header-bytes counts them.
func wireBytes(lines []explain.Header) int {
	n := 0
	for _, l := range lines {
		n += len(l.Name) + len(l.Value) + 4
	}
	return n
}

// identityOf converts an identity for the report.
func identityOf(id *auth.Identity) *explain.Identity {
	if id == nil {
		return nil
	}
	out := &explain.Identity{Username: id.Name, UID: id.UID, Groups: id.Groups, Extra: id.Extra}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	if !id.Expires.IsZero() {
		t := id.Expires.UTC()
		out.Expires = &t
	}
	return out
}
