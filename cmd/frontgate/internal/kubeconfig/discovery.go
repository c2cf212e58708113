package kubeconfig

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/frontgate/frontgate/cmd/frontgate/internal/login"
	"github.com/frontgate/frontgate/proxy"
)

// Fetch reads the discovery document of the frontgate at base (https only)
// with client, which must verify frontgate's certificate.
func Fetch(ctx context.Context, client *http.Client, base string) (proxy.Discovery, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return proxy.Discovery{}, fmt.Errorf("--from %q must be frontgate's https:// URL", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + proxy.DiscoveryPath
	u.RawQuery, u.Fragment = "", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return proxy.Discovery{}, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if login.IsCertificateError(err) {
			return proxy.Discovery{}, fmt.Errorf("the certificate of %s is not trusted (%v): give frontgate's CA with --certificate-authority", base, err)
		}
		return proxy.Discovery{}, fmt.Errorf("cannot reach frontgate at %s (%v): check --from and your network", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return proxy.Discovery{}, fmt.Errorf("%s answered %s for %s: is it frontgate, and recent enough to serve discovery? Otherwise give --server, --issuer-url and --client-id", base, resp.Status, proxy.DiscoveryPath)
	}
	d, err := proxy.ParseDiscovery(resp.Body)
	if err != nil {
		return proxy.Discovery{}, fmt.Errorf("%s: %w", u, err)
	}
	return d, nil
}

// SelectIssuer returns the issuer of d whose URL is issuerURL, or the only
// one when issuerURL is empty.
func SelectIssuer(d proxy.Discovery, issuerURL string) (proxy.DiscoveryIssuer, error) {
	var urls []string
	for _, iss := range d.Issuers {
		if issuerURL == "" && len(d.Issuers) == 1 || iss.URL == issuerURL {
			return iss, nil
		}
		urls = append(urls, iss.URL)
	}
	if issuerURL == "" {
		return proxy.DiscoveryIssuer{}, fmt.Errorf("frontgate accepts tokens from several issuers; choose one with --issuer-url: %s", strings.Join(urls, ", "))
	}
	return proxy.DiscoveryIssuer{}, fmt.Errorf("frontgate does not accept tokens from --issuer-url %s; it accepts: %s", issuerURL, strings.Join(urls, ", "))
}
