package proxy

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/frontgate/frontgate/auth"
	"io"
	"net/http"
	"strings"
	"time"
)

// DiscoveryPath is where frontgate serves its [Discovery] document, on the
// proxy listener and without authentication. It is the only path frontgate
// answers itself without authenticating the caller, and it is never
// forwarded to kube-apiserver.
const DiscoveryPath = "/.well-known/frontgate"

// Discovery is what a client needs to build a kubeconfig for frontgate: the
// OpenID issuers whose ID tokens frontgate accepts, the client ID and scopes
// to request from each, and the CA bundle that verifies frontgate's serving
// certificate. Everything in it is public; it has no field for a secret.
type Discovery struct {
	// Issuers are the OpenID providers frontgate accepts tokens from.
	Issuers []DiscoveryIssuer `json:"issuers"`
	// CABundle is PEM: the certificates that verify frontgate's serving
	// certificate. Empty means the client's system roots.
	CABundle string `json:"caBundle,omitempty"`
}

// DiscoveryIssuer is one OpenID provider and the public client that
// `frontgate login` should use with it.
type DiscoveryIssuer struct {
	// URL is the issuer URL, exactly as in the tokens' iss claim.
	URL string `json:"url"`
	// ClientID is the client to log in as; ID tokens' aud must contain it.
	ClientID string `json:"clientID"`
	// Scopes are requested in addition to openid; empty means the
	// client's default.
	Scopes []string `json:"scopes,omitempty"`
}

// discoveryMaxAge is how long clients and caches may reuse the document.
const discoveryMaxAge = 5 * time.Minute

// maxDiscoveryBytes bounds the document a client accepts.
const maxDiscoveryBytes = 1 << 20

// Validate reports, joined, every reason d should not be served: an issuer
// without URL or client ID, an issuer URL that is not https (http only on a
// loopback host), or a CA bundle with anything but certificates in it (a
// private key there would be published to everyone).
func (d Discovery) Validate() error {
	var errs []error
	if len(d.Issuers) == 0 {
		errs = append(errs, errors.New("discovery: no issuer"))
	}
	for i, iss := range d.Issuers {
		if err := auth.CheckIssuerURL(iss.URL); err != nil {
			errs = append(errs, fmt.Errorf("discovery: issuer %d URL %q %w", i, iss.URL, err))
		}
		if iss.ClientID == "" {
			errs = append(errs, fmt.Errorf("discovery: issuer %d (%s) has no client ID", i, iss.URL))
		}
		for _, s := range iss.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
				errs = append(errs, fmt.Errorf("discovery: issuer %d (%s) scope %q is not a valid scope token", i, iss.URL, s))
			}
		}
	}
	if _, err := certificatesOnly(d.CABundle); err != nil {
		errs = append(errs, fmt.Errorf("discovery: CA bundle: %w", err))
	}
	return errors.Join(errs...)
}

// certificatesOnly returns bundle re-encoded with its CERTIFICATE blocks
// only, and an error naming anything else it held or a certificate that
// does not parse.
func certificatesOnly(bundle string) (string, error) {
	var out bytes.Buffer
	var errs []error
	rest := []byte(bundle)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			errs = append(errs, fmt.Errorf("holds a %q PEM block; only certificates may be published", block.Type))
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			errs = append(errs, fmt.Errorf("holds a certificate that does not parse: %w", err))
			continue
		}
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes})
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		errs = append(errs, errors.New("holds data that is not PEM"))
	}
	return out.String(), errors.Join(errs...)
}

// DiscoveryHandler serves d as JSON at [DiscoveryPath] for GET and HEAD,
// with an ETag and a Cache-Control of a few minutes. Any other path is 404,
// any other method 405. Call [Discovery.Validate] first: the handler
// publishes only the certificates of d.CABundle and drops every other PEM
// block, so a misconfigured bundle can never leak a key.
//
// Mount it in front of authentication, for exactly r.URL.Path ==
// DiscoveryPath, and never forward that path.
func DiscoveryHandler(d Discovery) http.Handler {
	published := Discovery{Issuers: make([]DiscoveryIssuer, 0, len(d.Issuers))}
	for _, iss := range d.Issuers {
		published.Issuers = append(published.Issuers, DiscoveryIssuer{URL: iss.URL, ClientID: iss.ClientID, Scopes: append([]string(nil), iss.Scopes...)})
	}
	published.CABundle, _ = certificatesOnly(d.CABundle)
	body, err := json.MarshalIndent(published, "", "  ")
	if err != nil { // cannot happen: only strings and slices of strings
		panic(fmt.Sprintf("proxy: encoding the discovery document: %v", err))
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	cacheControl := fmt.Sprintf("public, max-age=%d", int(discoveryMaxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path != DiscoveryPath {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// ParseDiscovery reads, decodes and validates a discovery document, as
// `frontgate kubeconfig --from` receives it; it reads at most 1 MiB. Unknown
// fields are ignored so that newer servers can add some.
func ParseDiscovery(r io.Reader) (Discovery, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDiscoveryBytes+1))
	if err != nil {
		return Discovery{}, fmt.Errorf("discovery: reading the document: %w", err)
	}
	if len(data) > maxDiscoveryBytes {
		return Discovery{}, fmt.Errorf("discovery: document larger than %d bytes", maxDiscoveryBytes)
	}
	var d Discovery
	if err := json.Unmarshal(data, &d); err != nil {
		return Discovery{}, fmt.Errorf("discovery: not a frontgate discovery document: %w", err)
	}
	if err := d.Validate(); err != nil {
		return Discovery{}, err
	}
	return d, nil
}
